// A streaming run's progress events, live. Reconnects from the last event seen: none lost, none twice.
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

document.getElementById("run-id").textContent = runId;
findTrace(30);
document.title = `Run ${runId}`;
connect();
