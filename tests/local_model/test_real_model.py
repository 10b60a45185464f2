"""A real small model (SmolLM2-135M behind llama.cpp's OpenAI-compatible server), over the Chat
Completions API: no one here scripted it, and it misbehaves in ways no script does.

The guarantees, not the words: every invocation ends, answered or failed with a terminal error,
within its bound of LLM calls; nothing is left retrying or paused; every LLM call is in the
journal; a SIGKILL mid-run does not ask the model again for what the journal holds. The model
server's requests are counted by its proxy (dev/local_model.py). `make test-local-model`.
"""

import itertools
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from dev.harness import LocalModelTour, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.local_model]

MAX_TURNS, LLM_MAX_ATTEMPTS = 3, 2
ENDPOINT_ENV = {"AGENT_MAX_TURNS": str(MAX_TURNS), "LLM_MAX_ATTEMPTS": str(LLM_MAX_ATTEMPTS)}
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, _no_real_openai: None) -> Iterator[LocalModelTour]:
    workdir = tmp_path_factory.mktemp("local-model")
    stack = LocalModelTour(workdir, endpoint_env=ENDPOINT_ENV)
    try:
        stack.start()
        yield stack
    except BaseException:
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
        raise
    finally:
        stack.stop()
        shutil.rmtree(workdir / "data", ignore_errors=True)


def llm_steps(stack: LocalModelTour, invocation: str) -> int:
    return stack.run_steps(invocation).count("call LLM")


def left_retrying(stack: LocalModelTour) -> list[dict[str, Any]]:
    return stack.admin.query(
        "SELECT target, status FROM sys_invocation WHERE status IN ('backing-off', 'paused')"
    )


CASES = [
    ("WeatherAgent/run", {"message": "What is the weather like in San Francisco?"}, 1),
    ("Chat/{key}/message", {"message": "My name is Alice. Say hello."}, 1),
    ("HumanClaimApprovalAgent/run", {"message": "Process my clinic bill of 500USD for a sprained ankle."}, 1),
]


@pytest.mark.parametrize(("path", "body", "agent_runs"), CASES, ids=[c[0].split("/")[0] for c in CASES])
def test_every_invocation_ends_within_its_bound_of_llm_calls(
    real: LocalModelTour, path: str, body: dict[str, Any], agent_runs: int
) -> None:
    before = real.model.chat_completions
    resp = real.http.post("/" + path.replace("{key}", f"real-{next(_keys)}"), json=body, timeout=600)

    made = real.model.chat_completions - before
    assert 1 <= made <= agent_runs * MAX_TURNS * LLM_MAX_ATTEMPTS
    if resp.status_code != 200:  # ended all the same: a terminal error that says what went wrong
        assert resp.status_code >= 400 and resp.json()["message"], resp.text
    assert isinstance(resp.json(), str) or "message" in resp.json()
    # Each LLM call the run made is a journaled step (an attempt that failed and was retried is one).
    assert 1 <= llm_steps(real, resp.headers["x-restate-id"]) <= made
    assert left_retrying(real) == []


def a_run_cut_between_two_llm_calls(real: LocalModelTour) -> tuple[str, int] | None:
    """A WeatherAgent run whose second LLM call is in flight (the model called the tool), and the
    model's request count before it; None if the model answered without the tool, three times."""
    for _ in range(3):
        before = real.model.chat_completions
        invocation = real.send("WeatherAgent/run", {"message": "What is the weather like in San Francisco?"})

        def second_call_or_end(invocation: str = invocation, before: int = before) -> bool:
            return (
                real.model.chat_completions - before >= 2
                or real.invocation(invocation)["status"] == "completed"
            )

        wait_until(second_call_or_end, timeout=300, what="a second LLM call, or the end of the run")
        if real.invocation(invocation)["status"] != "completed":
            return invocation, before
    return None


@pytest.mark.crash
def test_a_sigkill_mid_run_does_not_ask_the_model_again(real: LocalModelTour) -> None:
    real.model.set_adapt(True)  # llama.cpp's tool calling, made to work (dev/local_model.py)
    try:
        cut = a_run_cut_between_two_llm_calls(real)
        if cut is None:
            pytest.skip("the model answered without the tool three times: no run with two LLM calls to cut")
        invocation, before = cut
        journaled = llm_steps(real, invocation)  # the first call, in the journal; the second in flight
        real.kill_endpoint()
        real.restart_endpoint(**real.endpoint_overrides)

        resp = real.output(invocation, timeout=600)
        assert resp.status_code in (200, 400, 500, 502), resp.text
        made = real.model.chat_completions - before
        # The run's calls, each asked once, and the one the SIGKILL cut, asked again: no more.
        assert journaled >= 1 and made <= llm_steps(real, invocation) + 1, (journaled, made)
    finally:
        real.model.set_adapt(False)
