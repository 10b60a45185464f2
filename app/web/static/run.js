// A run's page: its status, journal and controls from Restate (/api/runs/<id>), and, for a
// streaming run, its progress events, live. Events reconnect from the last one seen: none lost,
// none twice.
"use strict";

const runId = decodeURIComponent(location.pathname.split("/")[2] || "");
let next = 0; // offset of the next event we have not shown
let source = null;

function describe(event) {
  switch (event.type) {
    case "llm_start":
      return `${event.agent} calls the model`;
    case "llm_end":
      return event.tool_calls && event.tool_calls.length
        ? `the model asks for ${event.tool_calls.join(", ")}`
        : "the model answers";
    case "tool_start":
      return `${event.tool} for ${event.city}`;
    case "tool_end": {
      const r = event.result || {};
      const result = "temperature" in r ? `${r.temperature} °C, ${r.description}` : JSON.stringify(r);
      return `${event.tool} for ${event.city}: ${result}`;
    }
    case "done":
      return event.output;
    case "error":
      return event.message;
    default:
      return JSON.stringify(event);
  }
}

function show(event) {
  document.getElementById("events-section").hidden = false;
  if (event.offset < next) return; // seen already (a reconnect may overlap)
  next = event.offset + 1;
  const li = el("li", event.type);
  li.append(el("span", "offset", `#${event.offset}`), el("span", "type", event.type), el("span", "text", describe(event)));
  document.getElementById("events").append(li);
}

// The text an LLM call streams: one row per attempt, growing as the deltas come. A voided
// attempt's row is struck through: the model is writing the answer again (see app/advanced/streaming/topic.py).
// Text comes live first (no offset), then again from the topic (with its offset): `at` says where
// a delta starts in its attempt's text, so each character is shown once, across reconnects too.
const attempts = {}; // attempt id -> its row

function text(event) {
  if (event.offset !== undefined) {
    if (event.offset < next) return;
    next = event.offset + 1;
  }
  if (event.type === "text_start") {
    const live = attempts[event.attempt];
    if (live) {
      // Shown live already: the topic's copy puts the row in its place among the events.
      if (event.offset !== undefined) {
        live.querySelector(".offset").textContent = `#${event.offset}`;
        document.getElementById("events").append(live);
      }
      return;
    }
    document.getElementById("events-section").hidden = false;
    const li = el("li", "text");
    const offset = event.offset !== undefined ? `#${event.offset}` : "live";
    li.append(el("span", "offset", offset), el("span", "type", "text"), el("span", "text", ""));
    attempts[event.attempt] = li;
    document.getElementById("events").append(li);
    return;
  }
  const li = attempts[event.attempt];
  if (!li) return; // its start came before this page's first event
  if (event.type === "text_delta") {
    // Counted in code points, as the endpoint counts them (Python's len).
    const have = li.dataset.chars ? Number(li.dataset.chars) : 0;
    const delta = Array.from(event.delta);
    if (event.at <= have && event.at + delta.length > have) {
      li.querySelector(".text").textContent += delta.slice(have - event.at).join("");
      li.dataset.chars = String(event.at + delta.length);
    }
  } else if (event.type === "text_void") {
    li.classList.add("void");
    li.querySelector(".type").textContent = "text_void";
    li.title = event.reason;
  }
}

function finished(event) {
  show(event);
  source.close();
  document.getElementById("status").textContent = event.type === "done" ? "Done." : "Failed.";
}

async function explain() {
  // EventSource hides why a connection failed: ask the long-poll route, which says it in JSON.
  try {
    const resp = await fetch(`/streams/${encodeURIComponent(runId)}/events?offset=${next}&wait=0`);
    if (resp.status === 404 || resp.status === 400) {
      // Not a streaming run (or not one any more): the section stays hidden, with why.
      document.getElementById("status").textContent = (await resp.json()).message;
      return;
    }
  } catch (e) {
    // the web process is down: try again
  }
  document.getElementById("status").textContent = "Reconnecting…";
  setTimeout(connect, 1000);
}

function connect() {
  const status = document.getElementById("status");
  source = new EventSource(`/streams/${encodeURIComponent(runId)}?offset=${next}`);
  source.addEventListener("open", () => { status.textContent = "Live: waiting for events…"; });
  for (const type of ["llm_start", "llm_end", "tool_start", "tool_end"]) {
    source.addEventListener(type, (e) => show(JSON.parse(e.data)));
  }
  for (const type of ["text_start", "text_delta", "text_void"]) {
    source.addEventListener(type, (e) => text(JSON.parse(e.data)));
  }
  source.addEventListener("done", (e) => finished(JSON.parse(e.data)));
  source.addEventListener("idle", () => {
    // The stream ended after a quiet spell; read on from where we are.
    source.close();
    connect();
  });
  source.addEventListener("message", (e) => show(JSON.parse(e.data)));
  source.addEventListener("error", (e) => {
    const data = e.data ? JSON.parse(e.data) : {};
    if (data.offset !== undefined) {
      finished(data); // the run's own error event
    } else {
      source.close(); // the connection broke: reconnect from our own offset
      explain();
    }
  });
}

// With traces on (make run-traced), a link to the run's trace. Its spans reach the trace viewer a
// moment after they happen: ask again for a while.
async function findTrace(tries) {
  try {
    const resp = await fetch(`/api/runs/${encodeURIComponent(runId)}/trace`);
    const body = await resp.json();
    if (resp.ok) {
      document.getElementById("trace-link").href = body.url;
      document.getElementById("trace").hidden = false;
      return;
    }
    if (!body.traces) return; // traces are off
  } catch (e) {
    // the web process is restarting: try again
  }
  if (tries > 1) setTimeout(() => findTrace(tries - 1), 2000);
}

// --- the run as Restate keeps it, and the controls ------------------------------------------------

let run = null; // the latest /api/runs/<id>

function fact(dl, name, value) {
  if (value === null || value === undefined || value === "") return;
  dl.append(el("dt", null, name));
  const dd = el("dd");
  if (value instanceof Node) dd.append(value); else dd.textContent = String(value);
  dl.append(dd);
}

function runLink(id) {
  const a = el("a", null, id);
  a.href = `/runs/${encodeURIComponent(id)}`;
  return a;
}

function options(select, choices) {
  const chosen = select.value;
  select.replaceChildren(...choices.map(([value, label]) => {
    const option = el("option", null, label);
    option.value = value;
    return option;
  }));
  if (choices.some(([value]) => value === chosen)) select.value = chosen;
}

function render(r) {
  run = r;
  const said = r.status === "completed"
    ? (r.completion_result === "success" ? "Completed." : `Failed: ${r.completion_failure}`)
    : `${r.status[0].toUpperCase()}${r.status.slice(1)}.`;
  document.getElementById("run-status").textContent = said;
  const dl = document.getElementById("facts");
  dl.replaceChildren();
  fact(dl, "handler", r.target);
  fact(dl, "deployment", r.deployment && `${r.deployment}${r.deployment === r.latest_deployment ? " (the latest)" : ""}`);
  fact(dl, "rerun of", r.restarted_from && runLink(r.restarted_from));
  fact(dl, "attempts failed", r.status !== "completed" && r.retry_count ? r.retry_count : null);
  fact(dl, "last failure", r.status !== "completed" ? r.last_failure : null);
  fact(dl, "started", r.created_at);
  fact(dl, "finished", r.completed_at);

  const allowed = r.controls ? r.allowed : {};
  for (const action of ["pause", "resume", "cancel", "kill"]) {
    document.getElementById(action).disabled = !allowed[action];
  }
  document.getElementById("controls-off").hidden = r.controls;
  const latest = r.latest_deployment;
  const pinned = r.deployment ? [["keep", `its own (${r.deployment})`]] : [];
  const newest = latest && latest !== r.deployment ? [[latest, `the latest (${latest})`]] : [];
  options(document.getElementById("resume-on"), [...pinned, ...newest]);
  document.getElementById("resume-on").disabled = !allowed.resume || newest.length === 0;
  options(document.getElementById("rerun-on"), [
    // (Its id, not "keep": Restate refuses a deployment that is gone only when named.)
    ...(r.deployment ? [[r.deployment, `its own deployment (${r.deployment})`]] : []),
    ["latest", `the latest deployment${latest ? ` (${latest})` : ""}`],
  ]);

  document.getElementById("answer-section").hidden = r.answer === null;
  if (r.answer !== null) {
    let answer = r.answer;
    try {
      const value = JSON.parse(r.answer);
      answer = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    } catch (e) {
      // not JSON: shown as it came
    }
    document.getElementById("answer").textContent = answer;
  }

  const body = document.getElementById("journal");
  body.replaceChildren();
  for (const row of r.journal) {
    const tr = el("tr", row.failed ? "failed" : "");
    tr.append(el("td", "index", String(row.index)));
    const step = el("td");
    step.append(el("span", null, row.label || "—"));
    if (row.invocation) step.append(" ", runLink(row.invocation));
    tr.append(step, el("td", "kind", row.kind), el("td", "state", row.failed ? "failed" : row.done ? "done" : "not finished"));
    const cell = el("td");
    if (row.rerun_from !== null && r.controls) {
      const button = el("button", "rerun", "Rerun from here");
      button.type = "button";
      button.addEventListener("click", () => rerun(row.rerun_from));
      cell.append(button);
    }
    tr.append(cell);
    body.append(tr);
  }
  document.getElementById("journal-section").hidden = r.journal.length === 0;
  if (!r.journal_kept) refuse("Restate no longer keeps this run's journal: it cannot be rerun.");
}

async function load() {
  try {
    const resp = await fetch(`/api/runs/${encodeURIComponent(runId)}`);
    const body = await resp.json();
    if (!resp.ok) {
      document.getElementById("run-status").textContent = body.message;
      if (resp.status === 400 || resp.status === 404) return; // nothing to come back for
    } else {
      render(body);
    }
  } catch (e) {
    document.getElementById("run-status").textContent = "The web process cannot be reached: trying again…";
  }
  // A run that has not finished changes by itself: read it again.
  if (!run || run.status !== "completed") setTimeout(load, 1000);
}

function refuse(text) {
  const p = document.getElementById("refusal");
  p.textContent = text;
  p.hidden = !text;
}

async function act(action, body) {
  refuse("");
  const resp = await fetch(`/api/runs/${encodeURIComponent(runId)}/${action}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const answer = await resp.json();
  if (!resp.ok) {
    refuse(answer.message);
    return null;
  }
  return answer; // (the page reads the run again every second until it has finished)
}

async function rerun(from) {
  const answer = await act("rerun", { from, deployment: document.getElementById("rerun-on").value });
  if (answer) location.assign(`/runs/${encodeURIComponent(answer.new_invocation_id)}`);
}

document.getElementById("pause").addEventListener("click", () => act("pause"));
document.getElementById("resume").addEventListener("click", () => {
  const on = document.getElementById("resume-on").value;
  act("resume", on && on !== "keep" ? { deployment: on } : {});
});
document.getElementById("cancel").addEventListener("click", () => act("cancel"));
document.getElementById("kill").addEventListener("click", () => {
  if (confirm("Kill this run? It stops at once: no more of its code runs, and nothing it did is undone.")) act("kill");
});

document.getElementById("run-id").textContent = runId;
load();
findTrace(30);
document.title = `Run ${runId}`;
connect();
