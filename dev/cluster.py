"""Three Restate Server nodes on one machine, as one cluster: what `make cluster` and its tests run.

Every node is the same restate-server binary as `make run`'s, with its own data directory and its
own ports on 127.0.0.1. They share a cluster name, each knows where all three metadata servers
are, every log record is written to two of them, the metadata is replicated among all three, and
n2 and n3 each run a processor for every partition while n1 runs the cluster controller
(CONTROL_NODE), so the cluster keeps working while any one node is down. Only the first node
provisions the cluster; the other two join it. A dead node is noticed and its partitions led
elsewhere within a fraction of a second (FAILOVER_ENV).

    node  ingress  admin + UI  node-to-node   (`make cluster`)
    n1    8080     9070        15122          the tour's curl commands work unchanged; controller
    n2    28080    29070       25122          partitions
    n3    38080    39070       35122          partitions

`restatectl` (npm, pinned with the server) reads the cluster's state, e.g. which node leads
each partition:  npx restatectl -s http://127.0.0.1:25122 partitions list
"""

import json
import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from dev.stack import LOOPBACK, Admin, Ports, RestateServer, StackError, find_restate_binary

CLUSTER_NAME = "tour-cluster"
NODE_NAMES = ("n1", "n2", "n3")


# How fast the cluster notices a dead node and moves its partitions (docs/cluster.md, "Node loss":
# what each one trades, and what to use across hosts or zones). Loopback, one machine.
FAILOVER_ENV = {
    # Failure detector: gossip every 50 ms (default 100 ms); a node unheard of for 6 ticks (300 ms;
    # default 10 ticks, 1 s) is declared dead. Gossip also travels through the third node, so one
    # late message is not enough.
    "RESTATE_GOSSIP_TICK_INTERVAL": "50ms",
    "RESTATE_GOSSIP_FAILURE_THRESHOLD": "6",
    # A node that hears no gossip at all for this many ticks thinks itself cut off; 60 x 50 ms keeps
    # the default's 3 s.
    "RESTATE_GOSSIP_LONELINESS_THRESHOLD": "60",
    # The cluster controller asks every node for its partitions' state this often (default
    # 1.5 s). A node whose process died refuses the connection at once, so the controller hands its
    # leaderships to a caught-up replica without waiting for the failure detector: a crashed
    # process is noticed within about 0.1 s. Each new answer also has the chosen replica try again
    # to take the leadership (it cannot while the metadata store elects a new leader). A host that
    # vanishes without a word is left to the detector: the request then has to time out (3 s).
    "RESTATE_ADMIN__HEARTBEAT_INTERVAL": "50ms",
    # Which node leads which partition travels with every gossip message (default: every 10th,
    # 0.5 s here). The ingress that took a call learns the new leader from it; until then its
    # retries (50 ms doubling to 1 s, not configurable) go to the dead one and back off further.
    "RESTATE_GOSSIP_EXTRAS_EXCHANGE_FREQUENCY": "1",
    # Metadata store (Raft among the three): ticks of 50 ms (default 100 ms), a heartbeat every
    # tick (default 2) and an election after 3-6 silent ticks (default 10-20): a new metadata
    # leader 0.15-0.3 s after the old one's last heartbeat instead of 1-2 s. A new partition
    # leader needs the metadata store to take its epoch, so when the dead node also led the
    # metadata store, this election comes first.
    "RESTATE_METADATA_SERVER__RAFT_TICK_INTERVAL": "50ms",
    "RESTATE_METADATA_SERVER__RAFT_HEARTBEAT_TICK": "1",
    "RESTATE_METADATA_SERVER__RAFT_ELECTION_TICK": "3",
    # One HTTP/2 connection to the endpoint per running invocation (make run: up to 8 share one).
    # A new leader sends every interrupted invocation to the endpoint at once; Restate fills a
    # connection before it opens the next, so with 8 per connection most of that burst could land
    # on one of the endpoint's two processes (70 % of a core against 10 % for the other) and wait
    # for it. One per connection, the process that is free accepts the next one.
    "RESTATE_WORKER__INVOKER__HTTP2_STREAMS_PER_CONNECTION_LIMIT": "1",
}
# n1 is the control node: it runs the cluster controller (the admin node with the lowest id is the
# active one), a metadata server, a log server and an ingress, but no partition processor. The
# partitions are led and followed on n2 and n3. So the node that leads a partition is never the
# one that decides who leads next: when it dies, the surviving controller notices at its next
# status request and moves the leadership at once. With every role everywhere, losing the
# partition leader's node often lost the controller too, and the cluster waited for the failure
# detector's verdict to pick a new controller first (0.35-0.54 s instead of 0.03-0.30 s). n2 and
# n3 keep the admin role: while n1 is down, one of them runs the controller. Data written by an
# earlier layout (every role on every node) is taken over as it is: n1 drops its processors.
CONTROL_NODE = "n1"
CONTROL_ROLES = "[admin,metadata-server,log-server,http-ingress]"
# One processor on each of the two worker nodes: a leader and a caught-up follower. Set with
# restatectl after provisioning (the server has no option for it), which also resets a cluster
# whose data dates from when every node ran every partition.
PARTITION_REPLICATION = "2"


def standard_ports() -> list[Ports]:
    """`make cluster`'s ports (see the table above); the endpoint stays on APP_PORT (9080).

    RESTATE_CLUSTER_PORTS moves them: nine numbers, ingress,admin,node-to-node of n1 then n2, n3.
    """
    if spec := os.environ.get("RESTATE_CLUSTER_PORTS"):
        numbers = [int(n) for n in spec.replace(";", ",").split(",") if n.strip()]
        if len(numbers) != 9:
            raise StackError(
                f"RESTATE_CLUSTER_PORTS needs nine ports (ingress,admin,node of n1, n2, n3), not {spec!r}"
            )
        return [Ports(*numbers[i : i + 3]) for i in range(0, 9, 3)]
    return [Ports(8080, 9070, 15122), Ports(28080, 29070, 25122), Ports(38080, 39070, 35122)]


def node_env(index: int, ports: Sequence[Ports]) -> dict[str, str]:
    """What makes node `index` one of the cluster's three rather than a cluster of its own."""
    return {
        "RESTATE_CLUSTER_NAME": CLUSTER_NAME,
        "RESTATE_ADVERTISED_ADDRESS": f"http://{LOOPBACK}:{ports[index].node}",
        # Any one reachable metadata server is enough to find the cluster, so list all of them.
        "RESTATE_METADATA_CLIENT__ADDRESSES": json.dumps([f"http://{LOOPBACK}:{p.node}" for p in ports]),
        # Two copies of the log and of each partition: one node may fail without losing anything.
        "RESTATE_DEFAULT_REPLICATION": "2",
        # Exactly one node creates the cluster; the others wait for it and join.
        "RESTATE_AUTO_PROVISION": "true" if index == 0 else "false",
        # Three nodes on one machine: a quarter each of RocksDB's default 2 GiB.
        "RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE": "512 MB",
        # The control node leads no partition (see CONTROL_NODE).
        **({"RESTATE_ROLES": CONTROL_ROLES} if NODE_NAMES[index] == CONTROL_NODE else {}),
    }


@dataclass(frozen=True)
class Processor:
    """One row of `restatectl partitions list`: a partition's processor on one node."""

    partition: int
    node: str  # node name (n1, n2, n3)
    mode: str  # Leader, Follower, ...
    status: str  # Active, Starting, ...


class RestateCluster:
    """Three RestateServer nodes, started, crashed and restarted one by one or together."""

    def __init__(
        self,
        base_dir: Path,
        ports: Sequence[Ports],
        extra_env: dict[str, str] | None = None,
        identity_pem: Path | None = None,
    ) -> None:
        assert len(ports) == len(NODE_NAMES)
        self.base_dir = base_dir
        self.nodes = [
            RestateServer(
                base_dir / name,
                ports[i],
                # The failover settings last: TOUR_SERVER_ENV, which every server gets, has its
                # own value for the endpoint connections.
                {**node_env(i, ports), **(extra_env or {}), **FAILOVER_ENV},
                log_path=base_dir / f"{name}.log",
                identity_pem=identity_pem,
                node_name=name,
            )
            for i, name in enumerate(NODE_NAMES)
        ]

    def node(self, name: str) -> RestateServer:
        return self.nodes[NODE_NAMES.index(name)]

    def alive(self) -> list[RestateServer]:
        return [node for node in self.nodes if node.alive()]

    def admin_urls(self, alive_only: bool = False) -> list[str]:
        """The nodes' admin APIs: any of them administers the whole cluster."""
        nodes = self.alive() if alive_only else self.nodes
        return [f"http://{LOOPBACK}:{node.ports.admin}" for node in nodes]

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> None:
        for node in self.nodes:
            node.start()
        self.wait_ready(timeout)
        self.replicate_partitions(timeout)

    def replicate_partitions(self, timeout: float) -> None:
        """A processor for every partition on each worker node (see PARTITION_REPLICATION); stored
        in the cluster's metadata, so setting it again on a restart changes nothing."""
        self.restatectl("config", "set", "--yes", "--partition-replication", PARTITION_REPLICATION)
        self.wait_leaders(timeout, followers=int(PARTITION_REPLICATION) - 1)

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Every running node answers, every partition has an active leader, and every node's admin
        API can query all partitions."""
        for node in self.alive():
            node.wait_ready(timeout)
        self.wait_leaders(timeout)
        self.wait_queryable(timeout)

    def wait_queryable(self, timeout: float = 60.0) -> None:
        """Until every running node's admin API answers SQL over the invocations of all partitions.

        A node that has just (re)joined answers "expecting a partition store" for a few seconds,
        until it has caught up with the partitions it is assigned.
        """
        deadline = time.monotonic() + timeout
        for node, url in zip(self.alive(), self.admin_urls(alive_only=True), strict=True):
            admin = Admin(url)
            while True:
                try:
                    admin.query("SELECT id FROM sys_invocation LIMIT 1")
                    break
                except (StackError, httpx.HTTPError) as e:
                    if time.monotonic() > deadline:
                        raise StackError(f"{node.name} cannot query the cluster's state: {e}") from e
                    time.sleep(0.25)

    def wait_leaders(self, timeout: float = 60.0, followers: int = 0) -> dict[int, str]:
        """Until every partition has an active leader (and `followers` active followers); returns
        partition -> leader node."""
        deadline = time.monotonic() + timeout
        last = "no answer from restatectl yet"
        while time.monotonic() < deadline:
            try:
                processors = self.processors()
            except StackError as e:
                last = str(e)
            else:
                active = [p for p in processors if p.status == "Active"]
                leaders = {p.partition: p.node for p in active if p.mode == "Leader"}
                following: dict[int, int] = {}
                for p in active:
                    if p.mode == "Follower":
                        following[p.partition] = following.get(p.partition, 0) + 1
                partitions = {p.partition for p in processors}
                if partitions and all(
                    part in leaders and following.get(part, 0) >= followers for part in partitions
                ):
                    return leaders
                last = f"leaders {leaders}, followers {following}"
            time.sleep(0.25)
        raise StackError(f"the cluster has no leader for every partition after {timeout:.0f}s ({last})")

    def kill_node(self, name: str) -> None:
        """SIGKILL: the node crashes, as a machine that loses power would."""
        self.node(name).kill()

    def start_node(self, name: str, timeout: float = 60.0) -> None:
        node = self.node(name)
        node.start()
        node.wait_ready(timeout)
        self.wait_queryable(timeout)

    def kill(self) -> None:
        """SIGKILL to every node: the whole cluster loses power."""
        for node in self.nodes:
            node.kill()

    def stop(self) -> None:
        """SIGTERM to all nodes at once (one by one, the last two would wait for each other)."""
        stoppers = [threading.Thread(target=node.stop) for node in self.nodes]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()

    # --- looking inside ----------------------------------------------------------------------
    def restatectl(self, *args: str, timeout: float = 10.0) -> str:
        """Run restatectl against the running nodes; its standard output."""
        addresses = ",".join(f"http://{LOOPBACK}:{node.ports.node}" for node in self.alive())
        if not addresses:
            raise StackError("no node of the cluster is running")
        try:
            done = subprocess.run(
                [*find_restate_binary("restatectl"), "--address", addresses, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as e:
            raise StackError(f"restatectl {' '.join(args)} did not answer within {timeout:.0f}s") from e
        if done.returncode != 0:
            raise StackError(f"restatectl {' '.join(args)} failed: {done.stderr.strip()[-300:]}")
        return done.stdout

    def table(self, *args: str) -> list[dict[str, str]]:
        """The first table restatectl prints, as rows of {column: value} (columns are single words)."""
        rows: list[dict[str, str]] = []
        header: list[str] = []
        for line in self.restatectl(*args).splitlines():
            fields = line.split()
            if not header:
                header = fields if fields[:1] in (["NODE"], ["ID"]) else []
            elif not fields:
                break  # a blank line ends the table (e.g. before the "Dead nodes" table)
            else:
                rows.append(dict(zip(header, fields, strict=False)))
        return rows

    def processors(self) -> list[Processor]:
        """The partition processors of the running nodes, as `restatectl partitions list` has them."""
        names = {row["NODE"]: row["NAME"] for row in self.table("nodes", "list")}
        # restatectl keeps reporting a crashed node's processors for a few seconds: skip them.
        running = {node.node_name for node in self.alive()}
        found = []
        for row in self.table("partitions", "list"):
            name = names.get(row["NODE"].split(":")[0], row["NODE"])
            if name in running:
                found.append(Processor(int(row["ID"]), name, row["MODE"], row["STATUS"]))
        return found
