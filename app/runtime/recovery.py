"""Fast recovery: when the endpoint (re)starts, it asks Restate to retry its waiting invocations now.

After a crash Restate retries with backoff, so an endpoint that comes back sits idle until the
next attempt is due (up to a minute with Restate's default policy). With RESTATE_ADMIN_URL set
(`make run` sets it; for a cluster, a comma-separated list of its nodes' admin APIs), the
endpoint tells Restate it is back as soon as it listens: invocations of its services that are
backing off are retried at once. A paused invocation stays paused: a person paused it (while a
dependency is down, say; docs/control.md), or Restate did after too many attempts, and a person
resumes it, perhaps on another deployment.
"""

import asyncio
import logging
from collections.abc import Iterable

import httpx

logger = logging.getLogger(__name__)


async def retry_waiting_invocations(admin_url: str, services: Iterable[str]) -> list[str]:
    """Retry the backing-off invocations of `services` now; returns their ids."""
    names = sorted(set(services))
    if not names:
        return []
    quoted = ", ".join("'" + name.replace("'", "''") + "'" for name in names)
    sql = f"SELECT id FROM sys_invocation WHERE status = 'backing-off' AND target_service_name IN ({quoted})"
    async with httpx.AsyncClient(base_url=admin_url.rstrip("/"), timeout=10) as admin:
        resp = await admin.post("/query", json={"query": sql}, headers={"accept": "application/json"})
        resp.raise_for_status()
        ids = [row["id"] for row in resp.json().get("rows", [])]
        answers = await asyncio.gather(*(admin.patch(f"/invocations/{i}/resume") for i in ids))
    return [i for i, answer in zip(ids, answers, strict=True) if answer.status_code < 300]


async def announce_return(admin_url: str, services: Iterable[str], own_url: str) -> None:
    """Once this endpoint answers on `own_url`, ask Restate to retry its invocations now."""
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(100):  # up to ~10 s for the server socket to be up
            try:
                if (await client.get(f"{own_url}/health")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    # A cluster has an admin API on every node (`make cluster` lists all three): any live one will do.
    errors = []
    for url in (u.strip() for u in admin_url.split(",") if u.strip()):
        try:
            resumed = await retry_waiting_invocations(url, services)
            break
        except httpx.HTTPError as e:
            errors.append(f"{url}: {e}")
    else:
        logger.warning("Could not ask Restate to retry waiting invocations (%s)", "; ".join(errors))
        return
    if resumed:
        logger.info("Back up: asked Restate to retry %d waiting invocation(s) now", len(resumed))
