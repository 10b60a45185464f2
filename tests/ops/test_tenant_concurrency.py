"""A tenant's runs, at most N at once: restate-server 1.7's per-scope concurrency limits (a preview).

The stack of `TENANT_CONCURRENCY=2 make run`: the server with vqueues and protocol v7 turned on, and
the rule `tenant/*` at 2 (dev/stack.py's `tenant_limits`). A run sent through the scoped ingress
path with the tenant as its limit key waits its turn: the others queue, none is refused; another
tenant's runs are not held up. Each LLM call of the stand-in takes 0.5 s, so a run takes a second.
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from dev.harness import Tour
from dev.stack import TENANT_SCOPE, tenant_limit_server_env, tenant_limits
from tests.conftest import fresh, running_tour

pytestmark = pytest.mark.e2e

LIMIT = 2


@pytest.fixture(scope="module")
def limited_tour(tmp_path_factory: pytest.TempPathFactory, _no_real_openai: None) -> Iterator[Tour]:
    with running_tour(tmp_path_factory, "limited", tenant_limit_server_env()) as stack:
        tenant_limits(stack.admin, LIMIT)
        yield stack


@pytest.fixture
def stack(limited_tour: Tour) -> Iterator[Tour]:
    yield from fresh(limited_tour)


def scoped_run(stack: Tour, tenant: str, city: str) -> httpx.Response:
    return stack.http.post(
        f"/restate/scope/{TENANT_SCOPE}/call/WeatherAgent/run",
        json={"message": f"What is the weather like in {city}? ({tenant})"},
        headers={"x-tenant": tenant, "x-restate-limit-key": tenant},
        timeout=120,
    )


def most_at_once(stack: Tour, marker: str) -> int:
    """How many runs of `marker` had an LLM call in flight at the same time, at most (from the
    stand-in's log of its calls: each call's start and end)."""
    calls = [c for c in stack.llm_calls(marker) if "end" in c]
    edges = sorted([(c["t"], 1) for c in calls] + [(c["end"], -1) for c in calls])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_a_tenants_runs_queue_beyond_its_limit_and_none_is_refused(stack: Tour) -> None:
    stack.llm.latency(500)
    with ThreadPoolExecutor(8) as pool:
        acme = [pool.submit(scoped_run, stack, "acme", "Tokyo") for _ in range(6)]
        other = [pool.submit(scoped_run, stack, "other", "Tokyo") for _ in range(2)]
        answers = [f.result() for f in acme + other]

    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers if a.status_code != 200]
    assert all(a.json() == "The weather in Tokyo is currently cloudy, 17 degrees Celsius." for a in answers)
    # Six runs of acme, at most two at a time; the other tenant's two ran beside them.
    assert most_at_once(stack, "(acme)") <= LIMIT
    assert most_at_once(stack, "(other)") == 2
