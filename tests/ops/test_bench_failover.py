"""The failover benchmark's reading of restate-server logs, without a cluster: the phases of a
node loss are marked by log records, so their parsing is checked on records as the server writes
them (its default "pretty" format). Figures belong in bench/, never in assertions."""

from pathlib import Path

import pytest

from bench.cluster import p90
from bench.failover import ClusterLogs, duration_s, timestamp

N2_LOG = """\
2026-11-27T13:14:01.686467Z INFO restate_node
  My Node ID is N3:1
    node_name: n2
on rs:worker-1
2026-11-27T13:14:19.723043Z WARN restate_core::network::grpc::connector
  Error while receiving network message from peer, connection will be dropped
    err: code: 'Unknown error'
on rs:worker-2
2026-11-27T13:14:19.760000Z DEBUG restate_admin::cluster_controller::service::scheduler
  Selecting node N3 as partition processor leader for partition 1
on rs:worker-0
2026-11-27T13:14:19.761000Z DEBUG restate_admin::cluster_controller::service::scheduler
  Selecting node N3 as partition processor leader for partition 0
on rs:worker-0
2026-11-27T13:14:19.801000Z INFO restate_worker::partition_processor_manager
  Failed obtaining new leader epoch. Continue running as follower
    partition_id: 0
    err: other error: [retryable] [http://127.0.0.1:54717/] The service is currently unavailable: tcp connect error
on rs:worker-2
2026-11-27T13:14:21.268090Z INFO restate_node::failure_detector::node_state
  N1:2 transitioned from Alive to Dead (gossip-age=11)
on rs:worker-3
2026-11-27T13:14:21.572139Z INFO restate_worker::partition::leadership
  Processor became Leader of epoch e3
    campaign_duration: 60ms 713µs 643ns
    partition_id: 0
on rt:pp-0
  in restate_worker::partition::run
    partition_id: 0
"""

N3_LOG = """\
2026-11-27T13:14:01.700000Z INFO restate_node
  My Node ID is N2:1
on rs:worker-1
2026-11-27T13:14:21.266568Z INFO restate_node::failure_detector::node_state
  N1:2 transitioned from Suspect(since 100.541778ms ago) to Dead (gossip-age=12)
on rs:worker-1
2026-11-27T13:14:21.313507Z INFO restate_metadata_server::raft::server::member
  Won metadata cluster leadership
on rs:worker-4
2026-11-27T13:14:22.116825Z INFO restate_worker::partition::leadership
  Processor became Leader of epoch e4
    campaign_duration: 1s 66ms 984µs 766ns
    partition_id: 0
on rt:pp-0
"""


@pytest.fixture
def logs(tmp_path: Path) -> ClusterLogs:
    (tmp_path / "n2.log").write_text(N2_LOG)
    (tmp_path / "n3.log").write_text(N3_LOG[:-40])  # the last record is still being written
    return ClusterLogs({"n2": tmp_path / "n2.log", "n3": tmp_path / "n3.log"})


def test_the_events_of_a_failover_are_read_from_the_logs(logs: ClusterLogs, tmp_path: Path) -> None:
    assert logs.node_id("n2") == "N3" and logs.node_id("n3") == "N2"
    start = timestamp("2026-11-27T13:14:19.700000")
    deaths = logs.deaths(start, of="N1")
    assert [(e.node, round(e.at - start, 3)) for e in deaths] == [("n3", 1.567), ("n2", 1.568)]
    assert logs.deaths(start, of="N3") == []
    assert len(logs.metadata_elections(start)) == 1
    # The controller chose N3 (n2) to lead partition 0 before the detector's verdict.
    chosen = logs.selections(start, partition=0)
    assert [(e.node, round(e.at - start, 3), logs.chosen_node(e)) for e in chosen] == [("n2", 0.061, "N3")]
    # Only whole lines are read: n3's last leadership is not there yet, then it is.
    assert [e.node for e in logs.leaderships(start, partition=0)] == ["n2"]
    with (tmp_path / "n3.log").open("a") as f:
        f.write(N3_LOG[-40:])
    leaders = logs.leaderships(start, partition=0)
    assert [(e.node, e.fields["campaign_duration"]) for e in leaders] == [
        ("n2", "60ms 713µs 643ns"),
        ("n3", "1s 66ms 984µs 766ns"),
    ]
    assert logs.current_leader(0) == "n3"  # the highest epoch
    assert logs.flaps(start, start + 10) == {
        "leader_changes": 2,
        "nodes_declared_dead": 2,
        "metadata_elections": 1,
    }


def test_durations_and_percentiles() -> None:
    assert duration_s("60ms 713µs 643ns") == pytest.approx(0.060713643)
    assert duration_s("1s 531ms") == pytest.approx(1.531)
    assert p90([float(n) for n in range(1, 11)]) == 9.0  # of 10 rounds: the second-slowest
    assert p90([1.0, 2.0, 3.0]) == 3.0
