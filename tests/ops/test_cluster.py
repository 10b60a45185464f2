"""Scale-out: the same tour on a three-node Restate cluster, with the endpoint as two processes.

One partition, so "the node that leads the partition" is a single node (n2 or n3), followed on the
other one, while n1 runs the cluster controller; the server suspends a waiting invocation after 2 s, so pending approvals are suspended ones.
The tests run in order on one cluster, each starting with all three nodes up.
"""

import itertools
import os
import re
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dev.cluster import CONTROL_NODE, NODE_NAMES
from dev.harness import FORCE_REPLAY, ClusterTour, Tour, wait_until
from tests.conftest import running_tour

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def cluster_tour(tmp_path_factory: pytest.TempPathFactory, _no_real_openai: None) -> Iterator[ClusterTour]:
    env = {"RESTATE_DEFAULT_NUM_PARTITIONS": "1"}
    if not FORCE_REPLAY:
        env["RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT"] = "2s"
    with running_tour(tmp_path_factory, "cluster", env, kind=ClusterTour) as stack:
        assert isinstance(stack, ClusterTour)
        yield stack


@pytest.fixture
def cluster(cluster_tour: ClusterTour) -> Iterator[ClusterTour]:
    """All three nodes up, the partition led and followed, calls going through n1."""
    stack = cluster_tour
    for node in stack.cluster.nodes:
        if not node.alive():
            stack.cluster.start_node(node.node_name)
    stack.cluster.wait_leaders(timeout=60, followers=1)
    stack.use_node("n1")
    stack.llm.reset()
    yield stack
    stack.llm.reset()


def claim() -> tuple[str, str]:
    marker = f"cluster claim {next(_ids)}"
    return f"Process my hospital bill of 3000USD for a broken leg ({marker}).", marker


def approve_through(stack: Tour, command: str) -> None:
    """Resolve the awakeable of a printed approve command through `stack`'s current ingress."""
    found = re.search(r"/restate/awakeables/\S+/resolve", command)
    assert found, command
    resp = stack.http.post(found.group(0), json=True)
    assert resp.status_code in (200, 202), resp.text


def history_texts(stack: Tour, key: str) -> list[str]:
    resp = stack.http.get(f"/Chat/{key}/get_history")
    assert resp.status_code == 200, resp.text
    return [
        item["content"] if isinstance(item["content"], str) else "".join(p["text"] for p in item["content"])
        for item in resp.json()
    ]


@pytest.mark.crash
def test_the_partition_leader_crashes_and_nothing_is_lost(cluster: ClusterTour) -> None:
    stack = cluster
    # Written before the crash: two chat sessions, and two claims waiting for a human.
    sessions = {f"cluster-chat-{next(_ids)}": name for name in ("Ada", "Grace")}
    for key, name in sessions.items():
        assert stack.call(f"Chat/{key}/message", {"message": f"My name is {name}."}).status_code == 200
    claims = [claim() for _ in range(2)]
    pending = {marker: stack.send("HumanClaimApprovalAgent/run", {"message": p}) for p, marker in claims}
    approvals = {marker: stack.wait_review(marker)[0] for marker in pending}
    for invocation in pending.values():
        stack.wait_status(invocation, "suspended", timeout=30)
    # And weather questions in flight at the moment of the crash.
    stack.llm.latency(1500)
    cities = ["Paris", "Tokyo", "Madrid"]
    flying = {city: stack.send("WeatherAgent/run", {"message": f"Weather in {city}?"}) for city in cities}
    wait_until(lambda: all(stack.llm_calls(f"Weather in {c}?") for c in cities), what="the LLM calls")

    leader = stack.cluster.wait_leaders(followers=1)[0]
    survivor = next(name for name in NODE_NAMES if name != leader)
    stack.use_node(survivor)
    stack.cluster.kill_node(leader)
    new_leader = stack.cluster.wait_leaders(timeout=60)[0]
    stack.llm.latency(0)

    assert new_leader != leader
    # The weather invocations finish through another node's ingress.
    for city, invocation in flying.items():
        resp = stack.output(invocation)
        assert resp.status_code == 200, resp.text
        assert city in resp.json()
    # The approvals, printed before the crash, resolve through another node.
    for marker, invocation in pending.items():
        approve_through(stack, approvals[marker])
        resp = stack.output(invocation)
        assert resp.status_code == 200, resp.text
        assert (
            resp.json()
            == f"The claim of 3,000 USD for broken leg ({marker}) was approved by a human reviewer."
        )
        # The LLM call before the approval came from the journal, not from the LLM again.
        assert len(stack.llm_calls(marker)) == 2
        assert len(stack.review_requests(marker)) == 1
    # Every chat message is still there, and the sessions go on.
    for key, name in sessions.items():
        assert history_texts(stack, key) == [
            f"My name is {name}.",
            f"Nice to meet you, {name}! I will remember your name.",
        ]
        assert (
            stack.call(f"Chat/{key}/message", {"message": "What is my name?"}).json()
            == f"Your name is {name}."
        )
        assert len(history_texts(stack, key)) == 4
        assert len(stack.llm_calls(f"My name is {name}.")) == 1


@pytest.mark.crash
def test_the_control_node_crashes_and_the_runs_in_flight_go_on_untouched(cluster: ClusterTour) -> None:
    stack = cluster
    # n1 runs the cluster controller and no partition processor: it is never the leader to lose.
    assert {p.node for p in stack.cluster.processors()} == set(NODE_NAMES) - {CONTROL_NODE}
    leader = stack.cluster.wait_leaders(followers=1)[0]
    stack.use_node(next(name for name in NODE_NAMES if name not in (CONTROL_NODE, leader)))
    stack.llm.latency(1000)
    cities = ["Berlin", "London", "Chicago"]
    flying = {city: stack.send("WeatherAgent/run", {"message": f"Weather in {city}?"}) for city in cities}
    wait_until(lambda: all(stack.llm_calls(f"Weather in {c}?") for c in cities), what="the LLM calls")

    stack.cluster.kill_node(CONTROL_NODE)

    for city, invocation in flying.items():
        resp = stack.output(invocation)
        assert resp.status_code == 200, resp.text
        assert city in resp.json()
        # Nothing was started again: each run made its two LLM calls once.
        assert len(stack.llm_calls(f"Weather in {city}?")) == 2
    assert stack.cluster.wait_leaders()[0] == leader


@pytest.mark.crash
def test_an_endpoint_process_crashes_under_load_and_every_invocation_completes(cluster: ClusterTour) -> None:
    stack = cluster
    workers = stack.worker_pids()
    assert len(workers) == 2
    stack.llm.latency(300)
    cities = ["Paris", "Tokyo", "Berlin", "Madrid", "London", "Chicago"] * 8

    with ThreadPoolExecutor(max_workers=16) as pool:
        calls = [
            (city, pool.submit(stack.call, "WeatherAgent/run", {"message": f"Weather in {city}?"}))
            for city in cities
        ]
        wait_until(lambda: len(stack.llm.stats()["calls"]) >= 12, what="the load to be under way")
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        answers = [(city, call.result(timeout=120)) for city, call in calls]

    for city, resp in answers:
        assert resp.status_code == 200, resp.text
        assert resp.json().startswith(f"The weather in {city} is currently")
    # The crashed process was replaced; the endpoint as a whole never went away.
    replaced = wait_until(lambda: len(pids := stack.worker_pids()) == 2 and pids, what="a new worker")
    assert victim not in replaced
    assert stack.endpoint is not None and stack.endpoint.alive()
    assert "was killed (signal 9); starting a new one" in (stack.workdir / "endpoint.log").read_text()


@pytest.mark.crash
def test_the_whole_cluster_restarts_and_keeps_its_state(cluster: ClusterTour) -> None:
    stack = cluster
    key = f"cluster-chat-{next(_ids)}"
    stack.call(f"Chat/{key}/message", {"message": "My name is Lin."})
    prompt, marker = claim()
    invocation = stack.send("HumanClaimApprovalAgent/run", {"message": prompt})
    approve, _ = stack.wait_review(marker)
    stack.wait_status(invocation, "suspended", timeout=30)
    done = stack.call("WeatherAgent/run", {"message": "Weather in Oslo?"}, headers={"idempotency-key": key})

    stack.restart_server(kill=True)  # all three nodes SIGKILLed, then started on their data

    assert history_texts(stack, key) == [
        "My name is Lin.",
        "Nice to meet you, Lin! I will remember your name.",
    ]
    assert stack.call(f"Chat/{key}/message", {"message": "What is my name?"}).json() == "Your name is Lin."
    approve_through(stack, approve)
    resp = stack.output(invocation)
    assert resp.status_code == 200
    assert (
        resp.json() == f"The claim of 3,000 USD for broken leg ({marker}) was approved by a human reviewer."
    )
    assert len(stack.llm_calls(marker)) == 2
    # A call repeated with the same idempotency key gets the stored answer, with no new LLM call.
    again = stack.call("WeatherAgent/run", {"message": "Weather in Oslo?"}, headers={"idempotency-key": key})
    assert again.status_code == 200 and again.json() == done.json()
    assert len(stack.llm_calls("Weather in Oslo?")) == 2
