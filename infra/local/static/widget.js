// kefu web chat widget: a dependency-free client of the web-api.
// Usage: <div id="kefu-chat"></div><script src="/widget.js" data-api=""></script>
// data-api: base URL of the API (empty = same origin). Sessions survive reloads (localStorage).
(function () {
  "use strict";
  const script = document.currentScript;
  const api = (script && script.dataset.api) || "";
  const mount = document.getElementById("kefu-chat");
  if (!mount) return;

  const STORE = "kefu.session";
  let session = JSON.parse(localStorage.getItem(STORE) || "null");
  let lastSeq = 0;
  const seen = new Set();

  mount.innerHTML =
    '<div class="kefu-log" role="log" aria-live="polite"></div>' +
    '<form class="kefu-form"><input class="kefu-input" name="text" autocomplete="off" ' +
    'maxlength="2000" placeholder="输入您的问题 / Type your question" aria-label="message">' +
    '<button type="submit">发送 Send</button></form>' +
    '<div class="kefu-status" aria-live="polite"></div>';
  const log = mount.querySelector(".kefu-log");
  const form = mount.querySelector(".kefu-form");
  const input = mount.querySelector(".kefu-input");
  const status = mount.querySelector(".kefu-status");

  // Text with [label](https://…) links drawn as links; everything else stays text (no HTML).
  function fill(row, text) {
    const link = /\[([^\[\]]+)\]\((https?:\/\/[^\s()"<>]+)\)/g;
    let at = 0;
    for (const m of text.matchAll(link)) {
      row.append(text.slice(at, m.index));
      const a = document.createElement("a");
      a.href = m[2];
      a.textContent = m[1];
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      row.append(a);
      at = m.index + m[0].length;
    }
    row.append(text.slice(at));
  }

  // Buttons that send a follow-up question; only the newest message keeps its buttons.
  function offer(replies) {
    log.querySelectorAll(".kefu-quick").forEach((old) => old.remove());
    if (!replies || !replies.length) return;
    const bar = document.createElement("div");
    bar.className = "kefu-quick";
    for (const reply of replies) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = reply;
      button.addEventListener("click", () => {
        bar.remove();
        send(reply);
      });
      bar.appendChild(button);
    }
    log.appendChild(bar);
  }

  function show(author, text, seq, quickReplies) {
    if (seq && seen.has(seq)) return;
    if (seq) seen.add(seq);
    const row = document.createElement("div");
    row.className = "kefu-msg kefu-" + author;
    row.dataset.author = author;
    if (seq) row.dataset.seq = seq;
    fill(row, text);
    log.appendChild(row);
    offer(quickReplies);
    log.scrollTop = log.scrollHeight;
  }

  async function call(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (session) headers.Authorization = "Bearer " + session.visitor_token;
    const res = await fetch(api + path, {
      method,
      headers,
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error((data.error && data.error.message) || res.statusText);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  // One session request at a time: the poll loop and the first send share it.
  let opening = null;
  function ensureSession() {
    if (session) return Promise.resolve();
    if (!opening) {
      opening = call("POST", "/v1/web/sessions", {})
        .then((created) => {
          session = created;
          localStorage.setItem(STORE, JSON.stringify(session));
        })
        .finally(() => {
          opening = null;
        });
    }
    return opening;
  }

  function newId() {
    return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random())
      .replace(/[^A-Za-z0-9_-]/g, "");
  }

  // Sends with retries: the same client_message_id makes retries idempotent.
  async function send(text) {
    const id = newId();
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await ensureSession();
        const ack = await call("POST", "/v1/web/messages", { client_message_id: id, text });
        show("customer", text, ack.seq);
        status.textContent = "";
        return;
      } catch (err) {
        if (err.status === 401 || err.status === 404) {
          resetSession(); // the conversation is gone: send it in a fresh one
          continue;
        }
        if (err.status && err.status < 500) {
          status.textContent = err.message;
          return;
        }
        status.textContent = "网络不稳定，正在重试… / retrying…";
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      }
    }
    status.textContent = "发送失败 / not sent";
  }

  // The conversation is gone (token expired, data reset): start a fresh one, and forget
  // the old one's messages so the new sequence numbers are not mistaken for seen ones.
  function resetSession() {
    localStorage.removeItem(STORE);
    session = null;
    lastSeq = 0;
    seen.clear();
    log.replaceChildren();
  }

  // Long poll: asks for everything after the last seq, so a reconnect never misses a message.
  async function poll() {
    for (;;) {
      try {
        await ensureSession();
        const data = await call("GET", "/v1/web/messages?after=" + lastSeq + "&wait=20");
        for (const m of data.messages) {
          lastSeq = Math.max(lastSeq, m.seq);
          show(m.author, m.text, m.seq, m.quick_replies);
        }
      } catch (err) {
        if (err.status === 401 || err.status === 404) resetSession();
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await send(text);
  });

  poll();
})();
