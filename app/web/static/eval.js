// An evaluation run's report, read again every 2 seconds until every case is graded.
"use strict";

const runId = decodeURIComponent(location.pathname.split("/")[2] || "");
document.getElementById("run-id").textContent = runId;

function render(report) {
  const rate = report.pass_rate === null ? "" : ` (${Math.round(report.pass_rate * 100)} %)`;
  document.getElementById("summary").textContent =
    `${report.service}: ${report.done} of ${report.cases} cases graded, ${report.passed} passed${rate}` +
    (report.done === report.cases ? "." : "; more to come.");
  const body = document.querySelector("#results tbody");
  body.replaceChildren();
  for (const r of report.results) {
    const row = el("tr", r.passed ? "passed" : "failed");
    const answer = r.answer === null ? "(no answer)" : typeof r.answer === "string" ? r.answer : JSON.stringify(r.answer);
    row.append(el("td", "name", r.name), el("td", "verdict", r.passed ? "pass" : "fail"),
      el("td", "score", r.score.toFixed(2)), el("td", "reason", r.reason), el("td", "answer", answer));
    body.append(row);
  }
  return report.done === report.cases;
}

async function refresh() {
  try {
    const resp = await fetch(`/api/evals/${encodeURIComponent(runId)}`);
    const data = await resp.json();
    if (!resp.ok) {
      document.getElementById("summary").textContent = data.message || `HTTP ${resp.status}`;
    } else if (render(data)) {
      return; // every case graded: nothing more will change
    }
  } catch (e) {
    document.getElementById("summary").textContent = "The web process is not reachable; trying again.";
  }
  setTimeout(refresh, 2000);
}

refresh();
