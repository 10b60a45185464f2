"""The benchmark's bookkeeping, without running a benchmark: the report bench/RESULTS.md is written
from whatever sections bench/results.json holds, and the waiting benchmark finds every review
request in an endpoint log. (Figures belong in bench/, never in assertions.)"""

import json
from pathlib import Path
from typing import Any

import pytest

from bench import results
from bench.__main__ import slope
from bench.approvals import review_awakeables

WAITING_AT_SCALE = {
    "marks": [1000, 10000],
    "arrival_rate_per_s": 50.0,
    "arrival_window": 50,
    "achieved_rate_per_s": [49.8, 49.9],
    "max_running_seen": 61,
    "at": {
        "idle": {"endpoint_rss_mb": 300.0, "server_rss_mb": 170.0, "server_disk_mb": 1.0},
        "1000": {"endpoint_rss_mb": 310.0, "server_rss_mb": 180.0, "server_disk_mb": 5.0, "suspended": 1000},
        "10000": {
            "endpoint_rss_mb": 311.0,
            "server_rss_mb": 280.0,
            "server_disk_mb": 40.0,
            "suspended": 10000,
        },
    },
    "endpoint_kb_per_waiting": 0.11,
    "server_rss_kb_per_waiting": 11.4,
    "server_disk_kb_per_waiting": 3.98,
    "resolve_all_s": 250.0,
    "resolve_per_s": 40.0,
    "resolve_window": 32,
    "completed": 10000,
    "failed": 0,
    "trouble": {"endpoint_connection_crashes": 0, "llm_connection_errors": 0, "server_retries": 0},
    "settings": "test",
}

FLOOR = {
    "steps": [0, 10, 50],
    "latency": {
        name: {"median_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "runs": 5}
        for name in ("steps_0", "steps_10", "steps_50", "noop", "plain", "durable")
    },
    "noop_ms_per_step": 1.1,
    "endpoint_cpu_ms_per_step": 0.4,
    "server_cpu_ms_per_step": 0.6,
    "agent_ms_per_step": 3.3,
    "agent_endpoint_cpu_ms_per_step": 1.2,
    "agent_server_cpu_ms_per_step": 1.5,
    "cpu_runs": 40,
}


@pytest.fixture
def results_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "results.json"
    monkeypatch.setattr(results, "RESULTS", path)
    return path


def test_report_shows_the_new_sections_and_any_misbehaviour_figures(results_file: Path) -> None:
    results_file.write_text(
        json.dumps(
            {
                "floor": FLOOR,
                "waiting_at_scale": WAITING_AT_SCALE,
                # The shape another benchmark may record: a headline figure and a matrix.
                "misbehaviour": {
                    "max_llm_calls": 11,
                    "matrix": {"WeatherAgent": {"unknown_tool": 10, "refusal": 1}, "Chat": {"refusal": 1}},
                },
            }
        )
    )
    text = results.write_report()
    assert text == (results_file.parent / "RESULTS.md").read_text()
    assert "## 2. The per-step floor" in text
    assert "| no-op step (the floor) | 1.1 | 0.4 | 0.6 |" in text
    assert "| gap (agent − floor) | 2.2 | 0.8 | 0.9 |" in text
    assert "## 5. Waiting at scale" in text
    assert "| **per waiting approval** (1,000 → 10,000) | **0.11 KB** | **11.4 KB** | **3.98 KB** |" in text
    assert "| 1000 waiting approvals add < 5 MB |" in text
    assert "## 8. Misbehaviour" in text
    assert "| max_llm_calls | 11 |" in text
    assert "| WeatherAgent | 10 | 1 |" in text
    assert "| Chat |  | 1 |" in text


def test_report_shows_the_time_to_first_token(results_file: Path) -> None:
    def ms(median: float) -> dict[str, float]:
        return {"median_ms": median, "p95_ms": median + 10, "p99_ms": median + 20, "runs": 8}

    results_file.write_text(
        json.dumps(
            {
                "streaming": {
                    "first_token_ms": {
                        "plain": ms(160.0),
                        "durable": ms(316.0),
                        "durable_poll_20ms": ms(266.0),
                    },
                    "model_first_word_ms": {
                        "plain": ms(157.0),
                        "durable": ms(221.0),
                        "durable_poll_20ms": ms(206.0),
                    },
                    "delivery_ms": {"plain": ms(3.0), "durable": ms(95.0), "durable_poll_20ms": ms(60.0)},
                    "token_ms": 20,
                    "runs": 8,
                    "web_poll_seconds": {"durable": 0.25, "durable_poll_20ms": 0.02},
                }
            }
        )
    )
    text = results.write_report()
    assert "## 9. Streaming: time to first token" in text
    assert "the stand-in writing a word every 20 ms" in text
    assert "| plain Agents SDK, `Runner.run_streamed` in-process | 160.0 | 170.0 | 157.0 | 3.0 | 8 |" in text
    assert "(polls every 0.25 s) | 316.0 | 326.0 | 221.0 | 95.0 | 8 |" in text
    assert "| the same, the web process polling every 0.02 s | 266.0 |" in text


def test_report_shows_pushed_delivery_and_the_local_model(results_file: Path) -> None:
    def ms(median: float) -> dict[str, float]:
        return {"median_ms": median, "p95_ms": median + 10, "p99_ms": median + 20, "runs": 8}

    runs = {"plain": [{"ms": 5000.0, "llm_calls": 2}], "durable": [{"ms": 4000.0, "llm_calls": 1}]}
    results_file.write_text(
        json.dumps(
            {
                "streaming": {
                    "first_token_ms": {"plain": ms(160.0), "durable": ms(250.0)},
                    "model_first_word_ms": {"plain": ms(157.0), "durable": ms(220.0)},
                    "delivery_ms": {"plain": ms(3.0), "durable": ms(30.0)},
                    "token_ms": 20,
                    "runs": 8,
                    "delivery": "pushed",
                    "durable_minus_plain_ms": 90.0,
                },
                "local_model": {
                    "plain_ms": 5000.0, "durable_ms": 4000.0, "ratio": 0.8, "model": "SmolLM2-135M-Instruct",
                    "ms_per_llm_call": {"plain": 2500.0, "durable": 4000.0}, "runs": runs,
                },
            }
        )
    )  # fmt: skip
    text = results.write_report()
    assert "(pushed: the topic answers its waiting reader) | 250.0 | 260.0 | 220.0 | 30.0 | 8 |" in text
    assert "| the same, the web process polling every" not in text
    assert (
        "| streamed text delivery ≤ 20 ms | model's first word → reader, median | 30.0 ms | **no** |" in text
    )
    assert "| first token ≤ plain + 60 ms | durable − plain, medians | +90.0 ms | **no** |" in text
    assert "## 10. A real small model (SmolLM2-135M-Instruct on llama.cpp's server" in text
    assert "| durable | 4000 | 1 | 1 |" in text
    assert "Durable / plain: **0.8x** (medians); per LLM call, 4000.0 ms durable, 2500.0 ms plain." in text


def test_report_without_any_figures(results_file: Path) -> None:
    assert "## Targets" in results.write_report()


def test_every_review_request_is_found_also_when_two_workers_print_at_once(tmp_path: Path) -> None:
    def review(n: int, awakeable: str) -> str:
        resolve = f"curl 127.0.0.1:8080/restate/awakeables/{awakeable}/resolve --json"
        return (
            f'🔔 Human review requested for claim: {{"reason":"broken leg (bench {n})"}}\n'
            f"   approve: {resolve} 'true'\n   reject:  {resolve} 'false'"
        )

    # print() writes the text and its final newline apart: another worker's lines can come between.
    log = tmp_path / "endpoint.log"
    log.write_text(
        review(1, "sign_1a") + review(2, "sign_1b") + "\n\nINFO other line\n" + review(3, "sign_1c") + "\n"
    )
    assert review_awakeables(log) == {1: "sign_1a", 2: "sign_1b", 3: "sign_1c"}


def test_slope() -> None:
    assert slope((0, 10, 50), [5.0, 15.0, 55.0]) == pytest.approx(1.0)


def _throughput(rps: float) -> dict[str, object]:
    return {
        "rps": rps,
        "latency": {"median_ms": 100.0},
        "cpu_percent": {"endpoint": 100, "servers": 60, "llm": 10},
    }


CLUSTER_ROUND = {
    "killed": "n1",
    "in_flight_at_kill": 16,
    "first_completion_s": 0.8,
    "all_in_flight_done_s": 0.9,
    "phases": {"detection": 0.08, "epoch": 0.12, "campaign": 0.05, "resumption": 0.48, "delivery": 0.02},
    "noticed_by": "failure detector",
    "metadata_leader_after_s": 0.3,
    "leader_changes": 1,
}
CLUSTER = {
    "partitions": 4,
    "endpoint_workers": 2,
    "single": {"c64": _throughput(40.0), "c64_l200": _throughput(45.0)},
    "cluster": {"c64": _throughput(30.0), "c64_l200": _throughput(35.0)},
    "c64_ratio": 0.75,
    "c64_l200_ratio": 0.78,
    "stability": {
        "load": {"seconds": 16.0, "leader_changes": 0, "nodes_declared_dead": 0, "metadata_elections": 0},
        "idle": {
            "seconds": 120.0,
            "leader_changes": 0,
            "nodes_declared_dead": 0,
            "metadata_elections": 0,
            "servers_cpu_percent": 4.2,
        },
    },
    "failover": {
        "rounds": [
            CLUSTER_ROUND,
            {
                **CLUSTER_ROUND,
                "killed": "n2",
                "phases": {},
                "noticed_by": None,
                "metadata_leader_after_s": None,
            },
        ],
        "first_completion_median_s": 0.8,
        "run_before_kill_median_s": 0.55,
        "all_in_flight_done_median_s": 0.9,
        "all_in_flight_done_p90_s": 1.2,
        "phases": {"detection": 0.08, "epoch": 0.12, "campaign": 0.05, "resumption": 0.48, "delivery": 0.02},
        "phased_rounds": 1,
        "steady_flaps": {"leader_changes": 0, "nodes_declared_dead": 0, "metadata_elections": 0},
        "rounds_with_a_second_leader_change": 0,
        "rounds_with_metadata_leader_lost": 1,
        "control_node_loss": {
            "rounds": [{**CLUSTER_ROUND, "killed": "n1", "leader_changes": 0}] * 3,
            "all_in_flight_done_median_s": 0.53,
            "all_in_flight_done_max_s": 0.61,
            "leader_changes": 0,
        },
    },
}


def test_report_shows_the_failover_phases_and_the_flaps(results_file: Path) -> None:
    results_file.write_text(json.dumps({"cluster": CLUSTER}))
    text = results.write_report()
    assert "| node loss: in-flight invocations done < 1 s | leader SIGKILLed" in text
    assert "median of 2 rounds | 0.9 s | yes |" in text
    assert "| … and p90 < 1.5 s | the same, 90th percentile | 1.2 s | yes |" in text
    assert (
        "| a healthy cluster keeps its leaders | leader changes under load (16 s) and idle (120 s) | 0 / 0 | yes |"
        in text
    )
    assert "load (16 s): 0 leader changes, 0 nodes declared dead, 0 metadata elections" in text
    assert "detection 0.08 s, epoch 0.12 s, campaign 0.05 s, resumption 0.48 s, delivery 0.02 s" in text
    assert (
        "| 1 | n1 | 16 | 0.9 | 0.8 | 0.08 | 0.12 | 0.05 | 0.48 | 0.02 | failure detector | 0.3 | 1 |" in text
    )
    assert "| 2 | n2 | 16 | 0.9 | 0.8 | — | — | — | — | — | — | — | 1 |" in text
    assert "a run took 0.55 s under the same load before the kills" in text
    assert "the three servers used 4.2 % of a core while idle" in text
    assert (
        "| … also when the controller's node dies | control node SIGKILLed → every invocation in "
        "flight done, slowest of 3 rounds | 0.61 s | yes |" in text
    )
    assert (
        "3 rounds: every invocation in flight done after 0.53 s (median; slowest 0.61 s), with 0 leader"
        in text
    )


def test_report_weighs_cpu_per_run_against_the_floor(results_file: Path) -> None:
    measured = json.loads((Path(results.__file__).parent / "results.json").read_text())
    cpu: dict[str, Any] = {
        "endpoint": {"durable": 9.0, "floor": 2.0, "plain": 6.0},
        "server": {"durable": 3.0, "floor": 2.0},
        "shaped": {"endpoint": 2.5, "server": 2.9},
    }

    def report() -> str:
        sections = {"overhead": measured["overhead"], "floor": measured["floor"]}
        results_file.write_text(
            json.dumps({name: {**s, "cpu_ms_per_run": cpu} for name, s in sections.items()})
        )
        return results.write_report()

    # 3.0 > 1.2 × 2.0 and 9.0 > 6.0 + 1.2 × 2.0 = 8.4: both unmet
    text = report()
    assert (
        "| server CPU per run ≤ 1.2 × its floor | WeatherAgent run / no-op invocation + 3 journaled steps "
        in text
    )
    assert "| 3.0 / 2.0 ms | **no** |" in text
    assert "| 9.0 / 8.4 ms | **no** |" in text
    assert "its invocation included | 2.5 | 2.9 |\n| plain agent (in the bench's process) | 6.0 | — |" in text
    cpu["endpoint"]["durable"], cpu["server"]["durable"] = 8.0, 2.4
    text = report()
    assert "| 2.4 / 2.0 ms | yes |" in text
    assert "| 8.0 / 8.4 ms | yes |" in text
