import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Tour

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


@pytest.fixture(scope="session")
def tour(tmp_path_factory: pytest.TempPathFactory, _no_real_openai: None) -> Iterator[Tour]:
    """One real stack for the session: restate-server, offline LLM and endpoint on free ports."""
    workdir: Path = tmp_path_factory.mktemp("tour")
    stack = Tour(workdir)
    try:
        stack.start()
        yield stack
    except BaseException:
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        raise
    finally:
        stack.stop()
        shutil.rmtree(workdir / "data", ignore_errors=True)


@pytest.fixture
def stack(tour: Tour) -> Iterator[Tour]:
    """The session's stack with the stand-in's faults cleared and a running endpoint."""
    tour.llm.reset()
    if tour.endpoint is None or not tour.endpoint.alive() or tour.endpoint_overrides:
        if tour.endpoint is not None:
            tour.endpoint.stop()
        tour.start_endpoint()
    yield tour
    tour.llm.reset()
