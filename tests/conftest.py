import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

from dev.harness import FORCE_REPLAY, Tour

# Keys and endpoints of a real OpenAI account must never reach the processes under test: every
# LLM call goes to the offline stand-in, and a test can never spend money.
_REAL_OPENAI_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "OPENAI_MODEL",
)


@pytest.fixture(scope="session", autouse=True)
def _no_real_openai() -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in _REAL_OPENAI_VARS if name in os.environ}
    yield
    os.environ.update(saved)


@contextlib.contextmanager
def running_tour(
    factory: pytest.TempPathFactory,
    name: str,
    server_env: dict[str, str] | None = None,
    kind: type[Tour] = Tour,
) -> Iterator[Tour]:
    """A real stack (restate-server, offline LLM, endpoint, web) on free ports, torn down even on failure.

    `kind=ClusterTour`: three restate-server nodes and an endpoint of two processes."""
    workdir = factory.mktemp(name)
    stack = kind(workdir, server_env)
    try:
        stack.start()
        yield stack
    except BaseException:
        for log in sorted([*workdir.glob("*.log"), *workdir.glob("cluster/*.log")]):
            print(f"--- {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        raise
    finally:
        stack.stop()
        for data in ("data", "cluster"):
            shutil.rmtree(workdir / data, ignore_errors=True)


@pytest.fixture(scope="session")
def tour(tmp_path_factory: pytest.TempPathFactory, _no_real_openai: None) -> Iterator[Tour]:
    """One real stack for the session, with the server settings `make run` uses."""
    with running_tour(tmp_path_factory, "tour") as stack:
        yield stack


@pytest.fixture(scope="module")
def quick_suspend_tour(tmp_path_factory: pytest.TempPathFactory, _no_real_openai: None) -> Iterator[Tour]:
    """A stack whose server suspends an invocation after 2 s without progress (the default is 1 min)."""
    env = {} if FORCE_REPLAY else {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "2s"}
    with running_tour(tmp_path_factory, "quick-suspend", env) as stack:
        yield stack


def fresh(stack: Tour) -> Iterator[Tour]:
    """The stack with the stand-in's faults cleared, the endpoint and web running with default settings."""
    stack.llm.reset()
    if stack.endpoint is None or not stack.endpoint.alive() or stack.endpoint_overrides:
        if stack.endpoint is not None:
            stack.endpoint.stop()
        stack.start_endpoint()
    if stack.web is None or not stack.web.alive() or stack.web_overrides:
        stack.restart_web()
    yield stack
    stats = stack.llm.stats()
    stack.llm.reset()
    # A test must not pass while the stand-in refused what the real API would refuse (400), or had
    # no scripted answer (422): both mean the tour sent something a real model would not answer.
    if stats["invalid_requests"] or stats["unscripted_requests"]:
        refused = [
            f"{c['status']} {c.get('agent', '')}: {c['error']}" for c in stats["calls"] if "error" in c
        ]
        pytest.fail("the offline LLM refused requests during this test:\n" + "\n".join(refused[:10]))


@pytest.fixture
def stack(tour: Tour) -> Iterator[Tour]:
    yield from fresh(tour)


@pytest.fixture
def waiting_stack(quick_suspend_tour: Tour) -> Iterator[Tour]:
    yield from fresh(quick_suspend_tour)
