// The warren web page: overview, jobs list, job detail, dead letters
// grouped with replay and purge of a group, schedules. No framework, no
// build step. Every value that comes from a job (ids, worker names, args,
// errors, hosts) is put in the page with textContent, never as HTML.
// Actions send the token (kept in this browser's localStorage) in the
// X-Warren-Token header with a JSON body: see docs/web.md.
"use strict";

const STATES = ["queued", "scheduled", "running", "retrying", "succeeded", "dead"];
const main = document.getElementById("main");

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "href") e.setAttribute("href", v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function stateBadge(s) { return el("span", { class: "state " + (s || "") }, s || "-"); }

function jobLink(id) { return el("a", { href: "#/job/" + encodeURIComponent(id) }, id); }

function table(headers, rows, id) {
  const thead = el("thead", null, el("tr", null, ...headers.map(h =>
    el("th", { class: h.cls || "" }, h.label || h))));
  const tbody = el("tbody", null, ...rows);
  return el("div", { class: "scroll" }, el("table", id ? { id } : null, thead, tbody));
}

function show(...nodes) { main.replaceChildren(...nodes.filter(n => n !== null && n !== undefined)); }

function failure(err) { show(el("p", { class: "error" }, "Error: " + err.message)); }

function drawChart(canvas, minutes) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width = canvas.clientWidth * (window.devicePixelRatio || 1);
  const h = canvas.height = canvas.clientHeight * (window.devicePixelRatio || 1);
  const now = Math.floor(Date.now() / 60000);
  const counts = new Array(60).fill(0);
  for (const m of minutes) {
    const idx = 59 - (now - Math.floor(Date.parse(m.minute) / 60000));
    if (idx >= 0 && idx < 60) counts[idx] = m.finished;
  }
  const max = Math.max(1, ...counts);
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#2b6cb0";
  const bw = w / 60;
  counts.forEach((c, i) => {
    const bh = (c / max) * (h - 14);
    ctx.fillRect(i * bw + 1, h - bh, Math.max(1, bw - 2), bh);
  });
  ctx.fillStyle = "#6b7785";
  ctx.font = (11 * (window.devicePixelRatio || 1)) + "px sans-serif";
  ctx.fillText("max " + max + "/min", 4, 12 * (window.devicePixelRatio || 1));
}

async function overview() {
  const [report, queues] = await Promise.all([
    api("/api/report?since=24h"),
    api("/api/queues").catch(() => ({ queues: [] })),
  ]);
  const cards = el("div", { class: "cards", id: "state-counts" }, ...STATES.map(s =>
    el("a", { class: "card", href: "#/jobs?state=" + s },
      el("div", { class: "n" }, report.states[s] || 0), stateBadge(s))));
  const canvas = el("canvas", { id: "chart", "aria-label": "jobs finished per minute" });
  const qrows = queues.queues.map(q => el("tr", null, el("td", null, q.name),
    el("td", { class: "num" }, q.exists ? q.ready : "-"),
    el("td", { class: "num" }, q.exists ? q.consumers : "-"),
    el("td", { class: "num" }, q.dead ? el("a", { href: "#/dead" }, q.dead) : 0)));
  const wrows = report.workers.map(w => el("tr", null,
    el("td", null, el("a", { href: "#/jobs?worker=" + encodeURIComponent(w.worker || "") },
      w.worker || "(unknown)")),
    el("td", { class: "num" }, w.succeeded), el("td", { class: "num" }, w.retried),
    el("td", { class: "num" }, w.dead),
    el("td", { class: "num" }, (100 * w.failure_rate).toFixed(1) + "%"),
    el("td", { class: "num hide" }, w.p95_ms === null ? "-" : w.p95_ms),
    el("td", { class: "hide error" }, w.top_errors.length ? w.top_errors[0].error : "")));
  const hour = report.last_hour_by_worker || {};
  const hrows = Object.keys(hour).sort().map(w => el("tr", null, el("td", null, w || "(unknown)"),
    ...STATES.map(s => el("td", { class: "num" }, hour[w][s] || 0))));
  show(el("h2", null, "Jobs by state (last 24 h)"), cards,
    el("h2", null, "Finished per minute (last hour)"), canvas,
    el("h2", null, "Queues"), table(["queue", { label: "ready", cls: "num" },
      { label: "consumers", cls: "num" }, { label: "dead", cls: "num" }], qrows),
    el("h2", null, "Workers (last 24 h)"), table(["worker", { label: "succeeded", cls: "num" },
      { label: "retried", cls: "num" }, { label: "dead", cls: "num" },
      { label: "failure", cls: "num" }, { label: "p95 ms", cls: "num hide" },
      { label: "top error", cls: "hide" }], wrows),
    el("h2", null, "Workers by state (last hour)"), table(["worker",
      ...STATES.map(s => ({ label: s, cls: "num" }))], hrows));
  drawChart(canvas, report.minutes);
}

async function jobs(params) {
  const q = new URLSearchParams(params);
  if (!q.get("limit")) q.set("limit", "100");
  const data = await api("/api/jobs?" + q.toString());
  const state = el("select", { name: "state" }, el("option", { value: "" }, "any state"),
    ...STATES.map(s => { const o = el("option", { value: s }, s); if (q.get("state") === s) o.selected = true; return o; }));
  const worker = el("input", { name: "worker", placeholder: "worker" });
  worker.value = q.get("worker") || "";
  const since = el("input", { name: "since", placeholder: "since, e.g. 1h", size: "8" });
  since.value = q.get("since") || "";
  const form = el("form", { class: "filters" }, state, worker, since, el("button", null, "Filter"));
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (state.value) p.set("state", state.value);
    if (worker.value) p.set("worker", worker.value);
    if (since.value) p.set("since", since.value);
    location.hash = "#/jobs?" + p.toString();
  });
  const rows = data.jobs.map(j => el("tr", null, el("td", null, jobLink(j.id)),
    el("td", null, j.worker || "-"), el("td", null, stateBadge(j.state)),
    el("td", { class: "num" }, j.attempt), el("td", { class: "hide" }, j.updated_at),
    el("td", { class: "hide error" }, j.error || "")));
  show(el("h2", null, "Jobs"), form, table(["id", "worker", "state",
    { label: "attempt", cls: "num" }, { label: "updated", cls: "hide" },
    { label: "last error", cls: "hide" }], rows),
    data.jobs.length ? null : el("p", { class: "muted" }, "No jobs match."));
}

async function job(id) {
  const j = await api("/api/jobs/" + encodeURIComponent(id));
  const dl = el("dl", { id: "job-fields" });
  const add = (k, v) => dl.append(el("dt", null, k), el("dd", null, v));
  add("id", j.id);
  add("worker", j.worker || "-");
  add("queue", j.queue || "-");
  add("state", stateBadge(j.state));
  add("attempt", j.attempt);
  if (j.replay) add("replay", j.replay); // replayed from dead letters N times
  if (j.priority !== null) add("priority", j.priority);
  add("created", j.created_at);
  add("updated", j.updated_at);
  if (j.progress) {
    const pct = j.progress.total ? Math.min(100, 100 * j.progress.done / j.progress.total) : 0;
    const bar = el("div", { class: "progress" }, el("div"));
    bar.firstChild.style.width = pct.toFixed(0) + "%";
    add("progress", el("span", null, bar, j.progress.done + " / " + (j.progress.total ?? "?")));
  }
  if (j.error) add("last error", el("span", { class: "error" }, j.error));
  const rows = j.timeline.map(e => el("tr", null, el("td", { class: "time" }, e.at),
    el("td", { class: "num" }, e.replay ? e.attempt + " (replay " + e.replay + ")" : e.attempt),
    el("td", null, e.event),
    el("td", { class: "hide" }, e.host || ""),
    el("td", { class: "num" }, e.duration_ms === null ? "" : e.duration_ms + " ms"),
    el("td", { class: "error" }, (e.error || "") +
      (e.delay_ms !== null ? " (next in " + e.delay_ms + " ms)" : "") +
      (e.reason ? " [" + e.reason + "]" : ""))));
  show(el("h2", null, "Job"), dl,
    el("h2", null, "Arguments"), el("pre", { id: "job-args" },
      j.args === null ? "(not recorded)" : (typeof j.args === "string" ? j.args : JSON.stringify(j.args, null, 2))),
    el("h2", null, "Timeline"), table(["at", { label: "attempt", cls: "num" }, "event",
      { label: "host", cls: "hide" }, { label: "duration", cls: "num" }, "error"], rows));
}

// ---- dead letters ----------------------------------------------------------

const TOKEN_KEY = "warren-token";

function tokenForm() {
  const input = el("input", { id: "token", type: "password", autocomplete: "off",
    placeholder: localStorage.getItem(TOKEN_KEY) ? "token saved" : "token (web.token_file)",
    "aria-label": "action token" });
  const note = el("span", { class: "muted", id: "token-state" },
    localStorage.getItem(TOKEN_KEY) ? "Token saved in this browser." : "");
  const forget = el("button", { type: "button", id: "token-forget" }, "Forget");
  const form = el("form", { id: "token-form", class: "filters" }, input,
    el("button", { id: "token-save" }, "Save token"), forget, note);
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    if (!input.value.trim()) return;
    localStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    input.placeholder = "token saved";
    note.textContent = "Token saved in this browser.";
  });
  forget.addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    input.placeholder = "token (web.token_file)";
    note.textContent = "Token forgotten.";
  });
  return form;
}

async function act(verb, queue, g) {
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) {
    document.getElementById("action-result").textContent = "Enter the token first (web.token_file).";
    document.getElementById("token").focus();
    return;
  }
  const r = await fetch("/api/dead/" + verb, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Warren-Token": token, Accept: "application/json" },
    body: JSON.stringify({ queue, worker: g.worker, reason: g.reason, error: g.error }),
  });
  const body = await r.json().catch(() => ({ error: r.statusText }));
  let text;
  if (!r.ok && body.error && r.status !== 503) {
    text = "Refused: " + body.error;
  } else {
    const n = verb === "replay" ? body.replayed : body.purged;
    text = (verb === "replay" ? "replayed " : "purged ") + (n || 0) + " letter(s) of " + queue;
    if (body.skipped) text += "; kept " + body.skipped + " without a worker name";
    if (body.refused) text += "; the broker refused " + body.refused;
    if (body.error) text += "; then: " + body.error;
  }
  await dead(text);
}

async function dead(message) {
  const data = await api("/api/dead");
  const rows = [];
  const notes = [];
  for (const q of data.queues) {
    if (!q.exists) continue;
    notes.push(el("li", null, q.count + " letter(s) in " + q.dead_queue +
      (q.scanned < q.count ? " (grouped: the first " + q.scanned + ")" : "")));
    for (const g of q.groups) {
      const replay = el("button", { type: "button", class: "replay" }, "Replay");
      const purge = el("button", { type: "button", class: "purge danger" }, "Purge");
      if (!data.actions) {
        replay.disabled = purge.disabled = true;
        replay.title = purge.title = "actions are off: set web.token_file";
      }
      replay.addEventListener("click", () => act("replay", q.queue, g).catch(failure));
      purge.addEventListener("click", () => {
        if (window.confirm("Purge " + g.count + " dead letter(s) of " + (g.worker || "(no worker)") +
          " from " + q.queue + "? They are gone for good.")) act("purge", q.queue, g).catch(failure);
      });
      rows.push(el("tr", { class: "dead-group", "data-queue": q.queue, "data-worker": g.worker,
        "data-reason": g.reason, "data-error": g.error },
        el("td", { class: "num count" }, g.count),
        el("td", null, el("a", { href: "#/jobs?worker=" + encodeURIComponent(g.worker) }, g.worker || "(none)")),
        el("td", null, g.reason || "-"), el("td", { class: "error" }, g.error),
        el("td", { class: "hide" }, q.queue), el("td", { class: "actions" }, replay, purge)));
    }
  }
  show(el("h2", null, "Dead letters"),
    el("p", { id: "action-result", role: "status", class: "muted" }, message || ""),
    el("ul", { class: "muted" }, ...notes),
    table([{ label: "count", cls: "num" }, "worker", "reason", "error",
      { label: "queue", cls: "hide" }, ""], rows, "dead-groups"),
    rows.length ? null : el("p", { class: "muted" }, "No dead letters."),
    data.actions ? tokenForm() : el("p", { class: "muted" },
      "Replay and purge are off: set web.token_file in the config of warren web."));
}

// ---- schedules ------------------------------------------------------------

function every(ms) {
  const units = [[86400000, "d"], [3600000, "h"], [60000, "m"], [1000, "s"]];
  for (const [n, u] of units) if (ms >= n && ms % n === 0) return ms / n + u;
  return ms + "ms";
}

async function schedules() {
  const data = await api("/api/schedules");
  const rows = data.schedules.map(s => el("tr", null, el("td", null, s.name),
    el("td", null, s.worker), el("td", null, s.cron ? "cron " + s.cron : "every " + every(s.every_ms)),
    el("td", null, s.next_fire || "-"), el("td", { class: "hide" }, s.last_fire || "-"),
    el("td", { class: "num" }, s.count ?? 0), el("td", { class: "hide" }, s.source),
    el("td", null, s.status)));
  show(el("h2", null, "Schedules"), table(["name", "worker", "when", "next fire",
    { label: "last fire", cls: "hide" }, { label: "fired", cls: "num" },
    { label: "source", cls: "hide" }, "status"], rows, "schedules"),
    rows.length ? null : el("p", { class: "muted" }, "No schedules."));
}

async function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  try {
    if (path.startsWith("/job/")) await job(decodeURIComponent(path.slice(5)));
    else if (path === "/jobs") await jobs(query || "");
    else if (path === "/dead") await dead();
    else if (path === "/schedules") await schedules();
    else await overview();
  } catch (err) { failure(err); }
}

document.getElementById("search").addEventListener("submit", ev => {
  ev.preventDefault();
  const id = document.getElementById("search-id").value.trim();
  if (id) location.hash = "#/job/" + encodeURIComponent(id);
});
window.addEventListener("hashchange", route);
route();
setInterval(() => { if ((location.hash || "#/") === "#/" && document.visibilityState === "visible") route(); }, 10000);
