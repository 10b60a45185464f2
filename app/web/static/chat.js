// The conversation of Chat/<key>, and a box for the next message. Texts go in with textContent.
"use strict";

const key = decodeURIComponent(location.pathname.split("/")[2] || "");
const base = `/api/chat/${encodeURIComponent(key)}`;
let sending = false;

function message(role, text, pending) {
  const li = el("li", role + (pending ? " pending" : ""));
  li.append(el("span", "role", role === "user" ? "You" : "Assistant"), el("span", "text", text));
  return li;
}

function render(messages) {
  const list = document.getElementById("messages");
  list.replaceChildren(...messages.map((m) => message(m.role, m.text, false)));
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const resp = await fetch(`${base}/history`);
    const body = await resp.json();
    if (!resp.ok) {
      status.textContent = body.message;
      return;
    }
    if (!sending) render(body.messages);
    if (!sending && !status.dataset.error) {
      status.textContent = body.messages.length ? "" : "No messages yet: say something.";
    }
  } catch (e) {
    status.textContent = "The web process cannot be reached (retrying).";
  }
}

async function send(event) {
  event.preventDefault();
  const input = document.getElementById("message");
  const button = document.querySelector("#send button");
  const status = document.getElementById("status");
  const text = input.value;
  if (!text.trim()) return;
  sending = true;
  input.disabled = button.disabled = true;
  delete status.dataset.error;
  document.getElementById("messages").append(message("user", text, true));
  status.textContent = "The assistant is answering…";
  try {
    const resp = await fetch(`${base}/message`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message: text }),
    });
    const body = await resp.json().catch(() => ({}));
    if (resp.ok) {
      input.value = "";
      status.textContent = "";
    } else {
      status.textContent = `Not sent: ${body.message || "HTTP " + resp.status}`;
      status.dataset.error = "1";
    }
  } catch (e) {
    status.textContent = `Not sent: ${e}`;
    status.dataset.error = "1";
  }
  sending = false;
  input.disabled = button.disabled = false;
  input.focus();
  await refresh();
}

document.getElementById("chat-key").textContent = key;
document.title = `Chat ${key}`;
document.getElementById("send").addEventListener("submit", send);
refresh();
setInterval(() => { if (!sending) refresh(); }, 3000);
