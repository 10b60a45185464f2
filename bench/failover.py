"""What a node crash costs, phase by phase, read from the surviving nodes' own logs.

restate-server logs (in its default "pretty" format) one record per event, its first line
`<UTC timestamp> <LEVEL> <target>`, then the message, then indented `key: value` fields. The
events that mark the phases of a failover are logged at INFO by default, but for the controller's
choice of a new leader, logged at DEBUG by its scheduler (LOG_FILTER turns that one on):

    Selecting node N2 as partition processor leader ...   the cluster controller chose N2 to lead
    N1:3 transitioned from Alive to Dead (gossip-age=11)   the failure detector gave up on N1
    Cluster controller switching to leader mode            the cluster controller moved
    Won metadata cluster leadership                        the metadata store (Raft) re-elected
    Processor became Leader of epoch e9                    a partition processor leads
        campaign_duration: 61ms 250µs 617ns                (from its new epoch to leader: the
                                                           announcement in the log)
        partition_id: 0

Nodes are named n1..n3 by us and N1..N3 by the cluster (in the order they joined): each node
says which it is ("My Node ID is N3:1") at start-up.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dev.cluster import RestateCluster

RECORD = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z +([A-Z]+) +(\S+)")
FIELD = re.compile(r"^ {4}(\w+): (.*)$")
NODE_ID = re.compile(r"My Node ID is (N\d+):\d+")
DEAD = re.compile(r"^(N\d+):\d+ transitioned from .* to Dead\b")
LEADER = re.compile(r"^Processor became Leader of epoch e(\d+)")
SELECTED = re.compile(r"^Selecting node (N\d+) as partition processor leader for partition (\d+)")
DURATION_PART = re.compile(r"([\d.]+)(ns|µs|us|ms|s|m)\b")
UNIT_S = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}

# The phases of a failover, in order; they add up to "every in-flight invocation done"
# (bench/cluster.py measures them, bench/NOTES.md says what marks each).
PHASES = ("detection", "epoch", "campaign", "resumption", "delivery")

# The servers' log filter for a failover measured phase by phase: INFO, and the scheduler's DEBUG
# record of each leader it chooses (a few lines per leader change; while a node is down, a line
# per heartbeat that no new replica can be placed).
LOG_FILTER = "info,restate_admin::cluster_controller::service::scheduler=debug"


def duration_s(text: str) -> float:
    """restate's human-readable durations ("1s 531ms 254µs 417ns") in seconds."""
    return sum(float(n) * UNIT_S[unit] for n, unit in DURATION_PART.findall(text))


def timestamp(text: str) -> float:
    """A log timestamp (UTC, microseconds) as seconds since the epoch, like time.time()."""
    return datetime.fromisoformat(text + "+00:00").timestamp()


@dataclass(frozen=True)
class Event:
    at: float  # seconds since the epoch (the server's clock: the same machine's as ours)
    node: str  # whose log: n1, n2, n3
    level: str
    target: str  # the Rust module that logged it
    message: str  # the record's first line of text
    fields: dict[str, str] = field(default_factory=dict, compare=False)

    def partition(self) -> int | None:
        value = self.fields.get("partition_id")
        return int(value) if value is not None and value.isdigit() else None


class NodeLog:
    """One node's log file, read incrementally (it only grows, also across restarts).

    The last record read may still be growing (its fields come on the lines after its message):
    it is read again, whole, on the next read."""

    def __init__(self, node: str, path: Path) -> None:
        self.node = node
        self.path = path
        self.offset = 0  # where the last record read starts
        self.last_read: Event | None = None  # its event, replaced when it is read again
        self.events: list[Event] = []
        self.node_id: str | None = None  # N1, N2, N3: the cluster's name for this node

    def read(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        # Only whole lines: the server may be half-way through writing the last one.
        text = chunk[: chunk.rfind(b"\n") + 1].decode(errors="replace")
        records: list[tuple[int, list[str]]] = []  # (byte offset in the chunk, lines)
        at = 0
        for line in text.splitlines(keepends=True):
            if RECORD.match(line) or not records:
                records.append((at, []))
            records[-1][1].append(line.rstrip("\n"))
            at += len(line.encode())
        if not records:
            return
        if self.last_read is not None:  # the last event appended: read again below
            self.events.pop()
            self.last_read = None
        for _, lines in records:
            self.last_read = self._add(lines)
        self.offset += records[-1][0]

    def _add(self, lines: list[str]) -> Event | None:
        head = RECORD.match(lines[0])
        if head is None:
            return None  # lines before the first record head: nothing to mark a phase
        message = lines[1].strip() if len(lines) > 1 else ""
        fields: dict[str, str] = {}
        for line in lines[2:]:
            if found := FIELD.match(line):
                fields.setdefault(found.group(1), found.group(2))
        event = Event(timestamp(head.group(1)), self.node, head.group(2), head.group(3), message, fields)
        self.events.append(event)
        if found_id := NODE_ID.search(message):
            self.node_id = found_id.group(1)
        return event


class ClusterLogs:
    """The three nodes' logs as one timeline of the events that matter for a failover."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.logs = {name: NodeLog(name, path) for name, path in paths.items()}

    @classmethod
    def of(cls, cluster: RestateCluster) -> "ClusterLogs":
        return cls({node.node_name: node.log_path for node in cluster.nodes})

    def read(self) -> None:
        for log in self.logs.values():
            log.read()

    def node_id(self, name: str) -> str | None:
        self.read()
        return self.logs[name].node_id

    def events(self, since: float, until: float = float("inf")) -> list[Event]:
        self.read()
        found = [e for log in self.logs.values() for e in log.events if since <= e.at <= until]
        return sorted(found, key=lambda e: e.at)

    def leaderships(
        self, since: float, until: float = float("inf"), partition: int | None = None
    ) -> list[Event]:
        """Every time a partition processor became leader (a leader change: a new epoch)."""
        return [
            e
            for e in self.events(since, until)
            if LEADER.match(e.message) and (partition is None or e.partition() == partition)
        ]

    def current_leader(self, partition: int) -> str | None:
        """The node that took the partition's highest epoch, as its log says: exact, and needs no
        round trip to the cluster (restatectl's view lags by up to a second)."""
        best: tuple[int, str] | None = None
        for e in self.leaderships(0.0, partition=partition):
            epoch = int(LEADER.match(e.message).group(1))  # type: ignore[union-attr]
            if best is None or epoch > best[0]:
                best = (epoch, e.node)
        return best[1] if best else None

    def deaths(self, since: float, until: float = float("inf"), of: str | None = None) -> list[Event]:
        """Failure-detector verdicts "node X is dead" (of one node: its cluster id, e.g. N1)."""
        found = []
        for e in self.events(since, until):
            if (dead := DEAD.match(e.message)) and (of is None or dead.group(1) == of):
                found.append(e)
        return found

    def selections(self, since: float, until: float = float("inf"), partition: int = 0) -> list[Event]:
        """The cluster controller choosing a leader for the partition (needs LOG_FILTER)."""
        return [
            e
            for e in self.events(since, until)
            if (chosen := SELECTED.match(e.message)) and int(chosen.group(2)) == partition
        ]

    @staticmethod
    def chosen_node(selection: Event) -> str:
        """N2 for "Selecting node N2 as partition processor leader ..." """
        return SELECTED.match(selection.message).group(1)  # type: ignore[union-attr]

    def metadata_elections(self, since: float, until: float = float("inf")) -> list[Event]:
        return [
            e for e in self.events(since, until) if e.message.startswith("Won metadata cluster leadership")
        ]

    def flaps(self, since: float, until: float) -> dict[str, int]:
        """What a healthy cluster should not do: leader changes of partitions, nodes declared dead,
        metadata (Raft) leader elections."""
        return {
            "leader_changes": len(self.leaderships(since, until)),
            "nodes_declared_dead": len(self.deaths(since, until)),
            "metadata_elections": len(self.metadata_elections(since, until)),
        }
