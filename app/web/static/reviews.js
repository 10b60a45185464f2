// The reviewers' inbox. Every text goes into the page with textContent: a claim's reason is data.
"use strict";

const cards = new Map(); // review id -> its <li>, kept across updates (and so its buttons' state)

function when(seconds) {
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function amount(value) {
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: 2 });
}

async function decide(review, approved, card) {
  const buttons = card.querySelectorAll("button");
  const outcome = card.querySelector(".outcome");
  buttons.forEach((b) => { b.disabled = true; });
  outcome.textContent = approved ? "Approving…" : "Rejecting…";
  try {
    const resp = await fetch(`/api/reviews/${encodeURIComponent(review.id)}/decision`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ approved }),
    });
    if (resp.ok) {
      outcome.textContent = (approved ? "Approved" : "Rejected") + ": the agent goes on.";
      return;
    }
    const body = await resp.json().catch(() => ({}));
    outcome.textContent = `Not decided: ${body.message || "HTTP " + resp.status}`;
  } catch (e) {
    outcome.textContent = `Not decided: ${e}`;
  }
  buttons.forEach((b) => { b.disabled = false; });
}

function card(review) {
  const claim = review.claim;
  const li = el("li", "review");
  li.dataset.id = review.id;
  li.append(el("h2", "reason", claim.reason));
  const details = el("dl");
  const rows = [
    ["Amount", amount(claim.amount)],
    ["Category", claim.category],
    ["Place of service", claim.placeOfService],
    ["Date", claim.date || "not given"],
    ["Asked by", review.agent],
    ["Invocation", review.invocationId],
    ["Requested", when(review.requestedAt)],
  ];
  if (review.timesOutAt) rows.push(["Times out", when(review.timesOutAt)]);
  for (const [name, value] of rows) {
    details.append(el("dt", "", name));
    details.append(el("dd", name === "Times out" ? "deadline" : "", String(value)));
  }
  li.append(details);
  const approve = el("button", "approve", "Approve");
  const reject = el("button", "reject", "Reject");
  approve.addEventListener("click", () => decide(review, true, li));
  reject.addEventListener("click", () => decide(review, false, li));
  li.append(approve, reject, el("span", "outcome", ""));
  return li;
}

function render(reviews) {
  const list = document.getElementById("reviews");
  const pending = new Set(reviews.map((r) => r.id));
  for (const [id, li] of cards) {
    if (!pending.has(id)) {
      li.remove();
      cards.delete(id);
    }
  }
  for (const review of reviews) {
    if (!cards.has(review.id)) cards.set(review.id, card(review));
    list.append(cards.get(review.id)); // (re)appended in the inbox's order
  }
  const n = reviews.length;
  document.getElementById("status").textContent =
    n === 0 ? "No pending reviews." : `${n} pending review${n === 1 ? "" : "s"}`;
}

function connect() {
  const status = document.getElementById("status");
  const source = new EventSource("/api/reviews/stream");
  source.addEventListener("reviews", (e) => render(JSON.parse(e.data).reviews));
  source.addEventListener("unreachable", (e) => {
    status.textContent = `${JSON.parse(e.data).message} (retrying)`;
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      status.textContent = "The web process cannot be reached (retrying).";
      setTimeout(connect, 2000);
    }
  });
}

connect();
