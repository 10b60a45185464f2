"""A second version of the endpoint beside the first, for runs that must finish on the code they
started on (docs/control.md, "Two versions side by side").

    make deploy                                   # python -m dev.deploy --port 9081, beside `make run`
    FAIL_ON_DENVER=false make deploy              # a fix
    OPENAI_MODEL=gpt-4.1-mini make deploy         # another model

It starts `python -m app` on the port with what `make run` gives its own endpoint (the stand-in
model when there is no OPENAI_API_KEY, the request-signing key, the ingress and the web process),
plus whatever the environment says, and registers it as a deployment of its own, *without*
`force`: the deployment on :9080 stays, and every run already started stays pinned to it. New
runs go to this one, the latest. Its deployment id is printed; it serves until Ctrl-C.

Settings: RESTATE_DIR (.restate), RESTATE_ADMIN_URL (http://localhost:9070),
RESTATE_INGRESS_PORT (8080), WEB_PORT (8000).
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from dev.identity import ensure_identity
from dev.stack import LOOPBACK, REPO, Admin, Endpoint, StackError, stand_in_env


def second_version_env(state_dir: Path) -> dict[str, str]:
    """The endpoint settings `make run` uses, read from what it left in `state_dir`."""
    _, keys = ensure_identity(state_dir / "identity")
    env = {"RESTATE_IDENTITY_KEYS": keys}
    stand_in = state_dir / "offline-llm.url"
    if not os.environ.get("OPENAI_API_KEY") and stand_in.exists():
        env.update(stand_in_env(stand_in.read_text().strip()))
    ingress = os.environ.get("RESTATE_INGRESS_PORT", "8080")
    web = f"http://localhost:{os.environ.get('WEB_PORT', '8000')}"
    env.update(
        RESTATE_INGRESS_URL=f"http://localhost:{ingress}",
        PUBLIC_WEB_URL=web,
        STREAM_LIVE_URL=web,
        RESTATE_ADMIN_URL=os.environ.get("RESTATE_ADMIN_URL", "http://localhost:9070"),
    )
    # What the shell says wins: the fix, the other model.
    env.update(
        {k: v for k, v in os.environ.items() if k in env or k.startswith(("OPENAI_", "FAIL_", "LLM_"))}
    )
    return env


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.deploy", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, required=True, help="where the second version listens (e.g. 9081)"
    )
    args = parser.parse_args()
    state_dir = Path(os.environ.get("RESTATE_DIR", REPO / ".restate")).resolve()
    admin = Admin(os.environ.get("RESTATE_ADMIN_URL", "http://localhost:9070"))
    endpoint = Endpoint(
        args.port,
        second_version_env(state_dir),
        state_dir / f"endpoint-{args.port}.log",
        on_line=lambda line: print(f"[app:{args.port}] {line}", flush=True),
    )
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        endpoint.start()
        endpoint.wait_ready()
        deployment = admin.register(f"http://{LOOPBACK}:{args.port}", force=False)
        print(
            f"[deploy] registered http://{LOOPBACK}:{args.port} as {deployment['id']}, beside the others: "
            "runs already started stay where they are pinned, new runs come here. Ctrl-C stops it.",
            flush=True,
        )
        while not stopping and endpoint.alive():
            time.sleep(0.3)
        return 0 if stopping else 1
    except StackError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        endpoint.stop()


if __name__ == "__main__":
    sys.exit(main())
