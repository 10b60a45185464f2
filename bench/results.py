"""Where benchmark figures go: bench/results.json (merged, one section per benchmark)."""

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from dev.stack import find_restate_server

RESULTS = Path(__file__).resolve().parent / "results.json"


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    out = {pkg: metadata.version(pkg) for pkg in ("restate-sdk", "openai-agents", "openai", "hypercorn")}
    server = subprocess.run([*find_restate_server(), "--version"], capture_output=True, text=True)
    out["restate-server"] = server.stdout.strip().split()[-1] if server.stdout.strip() else "unknown"
    return out


def record(section: str, figures: dict[str, Any]) -> None:
    """Merge one benchmark's figures into bench/results.json, with versions and machine."""
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = figures
    data["versions"] = versions()
    data["machine"] = machine()
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
