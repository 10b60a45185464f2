"""A run's page as a remote control: its status, its journal, its trace, and what a person can do.

    GET  /api/runs/<invocation id>            status, journal, answer, deployments, allowed actions
    POST /api/runs/<invocation id>/pause      stop its attempts (while a dependency is down, say)
    POST /api/runs/<invocation id>/resume     {"deployment": "keep" | "latest" | "dp_..."}: go on
    POST /api/runs/<invocation id>/cancel     end it, running its compensations (a TerminalError)
    POST /api/runs/<invocation id>/kill       end it at once, running no more of its code
    POST /api/runs/<invocation id>/rerun      {"from": N, "deployment": "keep" | "latest"}: a new
                                              run with this one's journal up to entry N, the rest
                                              done again -> {"new_invocation_id": ...}
    GET  /api/runs/<invocation id>/trace      where the run's trace is, with traces on

This is Restate's admin API (`PATCH /invocations/<id>/pause|resume|cancel|kill|restart-as-new`,
SQL over `sys_invocation` and `sys_journal`), called by this process on the server side: the
browser never reaches the admin API. Restate decides what is allowed; its refusals are passed
on in plain words (409 a run still running, 400 a step that never finished, ...). The actions
are on only where RUN_CONTROLS says so: by default when this process listens on this machine
only (docs/front-door.md says who may use them). A rerun is possible for as long as Restate
keeps the finished run's journal (JOURNAL_RETENTION_DAYS, 7; docs/control.md).
"""

import json
import re
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.web.answers import json_body, message
from app.web.settings import Settings

INVOCATION_ID = re.compile(r"inv_[0-9A-Za-z]{20,40}")
DEPLOYMENT = re.compile(r"keep|latest|dp_[0-9A-Za-z]{20,40}")
LLM_STEPS = ("call LLM", "LLM call")
ACTIONS = (
    "pause",
    "resume",
    "cancel",
    "kill",
    "rerun",
)  # the Agents SDK's journaled call, and the manual loop's


def invocation_id(request: Request) -> str | Response:
    """The path's invocation id, or the 400 that says it is not one."""
    run_id: str = request.path_params["run_id"]
    if not INVOCATION_ID.fullmatch(run_id):
        return message(400, f"not an invocation id: {run_id[:60]!r} (they look like inv_1abc...)")
    return run_id


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def admin_query(client: httpx.AsyncClient, sql: str) -> list[dict[str, Any]]:
    """Rows of Restate's SQL introspection (`client`: the admin API)."""
    resp = await client.post("/query", json={"query": sql}, headers={"accept": "application/json"})
    resp.raise_for_status()
    rows: list[dict[str, Any]] = resp.json().get("rows", [])
    return rows


# --- reading a run -------------------------------------------------------------------------------


def journal_rows(entries: list[dict[str, Any]], own_id: str) -> list[dict[str, Any]]:
    """The run's commands in journal order, each with what completed it, for people to read:
    `{"index", "kind", "label", "done", "failed", "invocation"}` (`invocation`: the run a call
    started). Notifications are folded into their commands; a resolved awakeable is a row."""
    results: dict[int, str] = {}  # completion id -> "Success" | "Failure" | ...
    for entry in entries:
        lite = json.loads(entry["entry_lite_json"])
        note = lite.get("Notification")
        if note and "CompletionId" in note.get("id", {}):
            results[note["id"]["CompletionId"]] = str(note.get("result"))
    rows, llm_calls = [], 0
    for entry in entries:
        lite = json.loads(entry["entry_lite_json"])
        kind, label, invoked = entry["entry_type"].split(": ", 1)[-1], entry.get("name") or "", None
        if "Notification" in lite:
            if lite["Notification"].get("ty") == "Signal" and "SignalIndex" in lite["Notification"].get(
                "id", {}
            ):
                rows.append({"index": entry["index"], "kind": "Signal", "label": "awakeable resolved",
                             "done": True, "failed": lite["Notification"].get("result") == "Failure"})  # fmt: skip
            continue
        command = next(iter(lite["Command"].values())) or {}
        ids = [v for k, v in command.items() if k.endswith("completion_id") and isinstance(v, int)]
        outcome = [results.get(i) for i in ids]
        if kind == "Run" and label in LLM_STEPS:
            llm_calls += 1
            kind, label = "LLM", f"{label} #{llm_calls}"
        elif kind in ("Call", "OneWayCall"):
            (target_kind, target), *_ = command["invocation_target"].items()
            key = f"/{target['key']}" if target_kind != "Service" else ""
            label = f"{target['name']}{key}/{target['handler']}"
            invoked = command.get("invocation_id")
        elif kind == "Output":
            outcome, label = [command.get("result")], "the answer"
        elif kind == "Input":
            label = "the request"
        rows.append(
            {
                "index": entry["index"],
                "kind": kind,
                "label": label,
                "done": None not in outcome,
                "failed": "Failure" in outcome,
                "invocation": invoked if invoked != own_id else None,
            }
        )
    return rows


def with_rerun_points(rows: list[dict[str, Any]], finished: bool) -> list[dict[str, Any]]:
    """Each step (`Run`, `LLM`, `Call`) gets `rerun_from`: the `from` that reruns it and what
    follows, keeping what came before; None where Restate would refuse (a run not finished, or an
    earlier command never completed)."""
    all_done_before = True
    for row in rows:
        rerunnable = finished and all_done_before and row["kind"] in ("Run", "LLM", "Call")
        row["rerun_from"] = row["index"] - 1 if rerunnable else None
        all_done_before = all_done_before and row["done"]
    return rows


def allowed(status: str) -> dict[str, bool]:
    """What Restate accepts for a run in this status (docs/control.md has the table)."""
    ended = status == "completed"
    return {
        "pause": status in ("running", "backing-off"),
        "resume": status == "paused",
        "cancel": not ended,
        "kill": not ended,
        "rerun": ended,
    }


async def run(request: Request) -> Response:
    run_id = invocation_id(request)
    if isinstance(run_id, Response):
        return run_id
    settings = _settings(request)
    try:
        async with httpx.AsyncClient(base_url=settings.admin_url, timeout=10) as admin:
            found = await admin_query(
                admin,
                "SELECT id, target, status, created_at, modified_at, completed_at, pinned_deployment_id, "
                "restarted_from, retry_count, next_retry_at, last_failure, completion_result, "
                f"completion_failure, journal_size FROM sys_invocation WHERE id = '{run_id}'",
            )
            if not found:
                return message(404, f"Restate knows no run {run_id} (never started, or purged since).")
            entries = await admin_query(
                admin,
                "SELECT index, entry_type, name, entry_lite_json FROM sys_journal "
                f"WHERE id = '{run_id}' ORDER BY index",
            )
            deployments = (await admin.get("/deployments")).json().get("deployments", [])
    except httpx.HTTPError as e:
        return message(502, f"Restate's admin API at {settings.admin_url} could not be reached: {e}")
    info = found[0]
    status = str(info["status"])
    answer = None
    if status == "completed" and info.get("completion_result") == "success":
        out = await request.app.state.ingress.get(f"/restate/invocation/{quote(run_id, safe='')}/output")
        answer = out.text if out.status_code == 200 else None
    latest = max(deployments, key=lambda d: d.get("created_at", ""), default=None)
    return JSONResponse(
        {
            # (The admin API leaves out the columns that are null.)
            **{
                k: info.get(k)
                for k in ("id", "target", "status", "created_at", "modified_at", "completed_at")
            },
            **{
                k: info.get(k)
                for k in ("restarted_from", "retry_count", "next_retry_at", "completion_result")
            },
            "last_failure": (info.get("last_failure") or "").split("\n")[0][:500] or None,
            "completion_failure": info.get("completion_failure"),
            "answer": answer,
            "deployment": info.get("pinned_deployment_id"),
            "latest_deployment": latest["id"] if latest else None,
            "deployments": [{"id": d["id"], "uri": d.get("uri")} for d in deployments],
            "journal": with_rerun_points(journal_rows(entries, run_id), finished=status == "completed"),
            "journal_kept": bool(entries) or status != "completed",
            "allowed": allowed(status),
            "controls": settings.run_controls,
        }
    )


# --- steering a run ------------------------------------------------------------------------------

# Restate's refusals, in plain words: (what its message contains, what the page says).
PLAIN = [
    ("is still running or the deployment id is not pinned",
     "A run moves to another deployment only when it is paused: pause it first."),
    ("is still running", "This run has not finished: only a finished run can be rerun. Wait for it, or cancel it."),
    ("without respective Completions",
     "A step before this one never finished in this run: rerun from that step or an earlier one."),
    ("deployment was not found",
     "That deployment is gone (removed from Restate): rerun on the latest deployment instead."),
    ("parameter 'deployment' is invalid", "That is not a deployment id (they look like dp_1abc...)."),
    ("input is not available",
     "This run's journal is no longer kept (JOURNAL_RETENTION_DAYS after it ends): it cannot be rerun."),
    ("cannot be paused", "Only a running or retrying run can be paused."),
    ("cannot be resumed", "Only a paused run can be resumed."),
    ("already completed", "This run has already finished."),
    ("not running yet", "This run has not started yet."),
    ("does not exist", "Restate knows no such run (never started, or purged since)."),
]  # fmt: skip


def plain(status: int, said: str) -> str:
    for needle, words in PLAIN:
        if needle in said:
            return words
    if status == 422:
        return f"Restate cannot do that for this run (workflows are not rerun): {said}"
    return f"Restate refused: {said}"


def _params(action: str, body: dict[str, Any]) -> dict[str, str] | Response:
    """The admin API's query parameters for `action`, checked."""
    allowed_keys = {"resume": {"deployment"}, "rerun": {"from", "deployment"}}.get(action, set())
    if unknown := set(body) - allowed_keys:
        return message(
            400, f"{action} takes no field {sorted(unknown)[0]!r} (fields: {sorted(allowed_keys)})"
        )
    params = {}
    if "deployment" in body:
        deployment = body["deployment"]
        if not isinstance(deployment, str) or not DEPLOYMENT.fullmatch(deployment):
            return message(400, 'deployment: "keep", "latest" or a deployment id (dp_...)')
        if not (action == "resume" and deployment == "keep"):  # (keep: where it is pinned)
            params["deployment"] = deployment
    if action == "rerun":
        start = body.get("from")
        if not isinstance(start, int) or isinstance(start, bool) or start < 0:
            return message(400, "from: the index of the last journal entry to keep (a whole number >= 0)")
        params["from"] = str(start)
    return params


async def act(request: Request) -> Response:
    run_id = invocation_id(request)
    if isinstance(run_id, Response):
        return run_id
    settings = _settings(request)
    action: str = request.path_params["action"]
    if action not in ACTIONS:
        return message(404, f"no such action: {action[:40]!r} (actions: {', '.join(ACTIONS)})")
    if not settings.run_controls:
        return message(403, "run controls are off here (RUN_CONTROLS=on turns them on; docs/front-door.md)")
    body = await json_body(request)
    if isinstance(body, Response):
        return body
    params = _params(action, body)
    if isinstance(params, Response):
        return params
    path = "restart-as-new" if action == "rerun" else action
    try:
        async with httpx.AsyncClient(base_url=settings.admin_url, timeout=30) as admin:
            resp = await admin.patch(f"/invocations/{run_id}/{path}", params=params)
    except httpx.HTTPError as e:
        return message(502, f"Restate's admin API at {settings.admin_url} could not be reached: {e}")
    if resp.status_code >= 300:
        try:
            said = str(resp.json().get("message") or resp.text)
        except ValueError:
            said = resp.text or f"HTTP {resp.status_code}"
        status = resp.status_code if 400 <= resp.status_code < 500 else 502
        return message(status, plain(resp.status_code, said), restate=said)
    answer = resp.json() if resp.content else {}
    return JSONResponse({"action": action, "id": run_id, **answer}, status_code=200)


# --- its trace -----------------------------------------------------------------------------------


async def trace(request: Request) -> Response:
    """With traces on (`make run-traced` sets TRACES_URL), Phoenix is asked for a span of the run
    (restate-server tags each with `restate.invocation.id`); a sub-agent's run is found in its
    caller's trace. 404 when traces are off, or when Phoenix has no span of it (yet: spans reach
    it within a second or two)."""
    settings = _settings(request)
    run_id = invocation_id(request)
    if isinstance(run_id, Response):
        return run_id
    if not settings.traces_url:
        return message(404, "traces are off: start the tour with `make run-traced`", traces=False)
    spans = f"{settings.traces_url}/v1/projects/{quote(settings.traces_project, safe='')}/spans"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.get(
                spans, params={"attribute": f"restate.invocation.id:{run_id}", "limit": 1}
            )
    except httpx.HTTPError as e:
        return message(
            502, f"the trace viewer at {settings.traces_url} could not be reached: {e}", traces=True
        )
    found = resp.json().get("data", []) if resp.status_code == 200 else []
    if not found:
        return message(404, f"no trace of {run_id} in the trace viewer (yet)", traces=True)
    trace_id = str(found[0]["context"]["trace_id"])
    # Phoenix's own address for a trace, whichever project holds it.
    url = f"{settings.traces_url}/redirects/traces/{trace_id}"
    return JSONResponse({"url": url, "trace_id": trace_id, "traces": True})


routes = [
    Route("/api/runs/{run_id}", run),
    Route("/api/runs/{run_id}/trace", trace),
    Route("/api/runs/{run_id}/{action:str}", act, methods=["POST"]),
]
