// Every tenant's budget, use and reservations (/api/spend), read again every second.
"use strict";

function budgetText(budget) {
  if (!budget || (budget.max_tokens === null && budget.max_cost_usd === null)) return "none";
  const parts = [];
  if (budget.max_tokens !== null) parts.push(`${budget.max_tokens.toLocaleString("en")} tokens`);
  if (budget.max_cost_usd !== null) parts.push(`${budget.max_cost_usd} USD`);
  return parts.join(", ");
}

function render(tenants) {
  const body = document.querySelector("#tenants tbody");
  body.replaceChildren(...tenants.map((t) => {
    const tr = el("tr");
    tr.dataset.tenant = t.tenant;
    const used = `${t.used.tokens.toLocaleString("en")} tokens, ${t.used.cost_usd.toFixed(6)} USD, ${t.used.calls} calls`;
    const reserved = `${t.reserved.toLocaleString("en")} tokens (${t.runs_in_flight.length} runs)`;
    const left = t.left === null ? "no limit" : `${t.left.toLocaleString("en")} tokens`;
    for (const [cls, text] of [["tenant", t.tenant], ["budget", budgetText(t.budget)], ["used", used],
      ["reserved", reserved], ["left", left], ["runs", String(t.used.runs)]]) {
      tr.append(el("td", cls, text));
    }
    return tr;
  }));
  document.getElementById("status").textContent = tenants.length ? "" : "No tenant has spent anything yet.";
}

async function load() {
  try {
    const resp = await fetch("/api/spend");
    const body = await resp.json();
    if (resp.ok) render(body.tenants); else document.getElementById("status").textContent = body.message;
  } catch (e) {
    document.getElementById("status").textContent = "The web process cannot be reached: trying again…";
  }
  setTimeout(load, 1000);
}

load();
