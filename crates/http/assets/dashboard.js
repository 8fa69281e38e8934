// Conductor dashboard: everything from /api/v1, live from /api/v1/events. No dependencies.
"use strict";
(function () {
  const $ = (sel) => document.querySelector(sel);
  const PAGE = 25;
  const THRESHOLD = 80; // the SIM warning mark, percent
  let token = localStorage.getItem("conductor-token") || "";
  let cursors = [null]; // `before` of each page shown so far; last = current
  let nextCursor = null;
  let current = null; // message shown in the detail view
  let refreshTimer = null;

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401) {
      const t = window.prompt("This Conductor needs an API token:");
      if (t) { token = t.trim(); localStorage.setItem("conductor-token", token); return api(method, path, body); }
    }
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const e = (data && data.error) || {};
      throw new Error((e.field ? e.field + ": " : "") + (e.message || res.statusText));
    }
    return data;
  }

  function when(t) {
    if (!t) return "";
    const d = new Date(t);
    return isNaN(d) ? t : d.toLocaleString();
  }

  function bars(dbm) {
    if (dbm == null) return '<span class="muted">no signal data</span>';
    const level = dbm >= -65 ? 5 : dbm >= -75 ? 4 : dbm >= -85 ? 3 : dbm >= -95 ? 2 : dbm >= -105 ? 1 : 0;
    let html = '<span class="bars" title="' + dbm + ' dBm">';
    for (let i = 1; i <= 5; i++) html += '<i class="' + (i <= level ? "on" : "") + '" style="height:' + (i * 20) + '%"></i>';
    return html + "</span> " + dbm + " dBm";
  }

  function gauge(s) {
    const high = s.percent >= THRESHOLD;
    return '<div class="gauge" title="warning above ' + THRESHOLD + ' %"><div class="fill' + (high ? " high" : "") +
      '" style="width:' + Math.min(100, s.percent) + '%"></div><div class="mark" style="left:' + THRESHOLD + '%"></div></div>' +
      '<div class="muted">SIM ' + esc(s.memory) + " " + esc(s.display) + "</div>";
  }

  async function loadModems() {
    const data = await api("GET", "/api/v1/modems");
    const select = $("#send-modem");
    const chosen = select.value;
    select.innerHTML = '<option value="">any modem</option>';
    $("#modems").innerHTML = data.modems.length ? data.modems.map((m) => {
      select.insertAdjacentHTML("beforeend", '<option value="' + esc(m.id) + '">' + esc(m.id) + "</option>");
      return '<div class="card modem" data-id="' + esc(m.id) + '"><h3>' + esc(m.id) +
        ' <span class="state ' + esc(m.state) + '">' + esc(m.state) + (m.stale && m.state !== "unknown" ? " (stale)" : "") + "</span></h3>" +
        "<div>" + esc(m.operator || "no operator") + (m.registration ? ' <span class="muted">' + esc(m.registration) + "</span>" : "") + "</div>" +
        "<div>" + bars(m.signal_dbm) + "</div>" +
        (m.sim_storage || []).map(gauge).join("") +
        (m.last_error ? '<div class="muted">' + esc(m.last_error) + "</div>" : "") +
        '<div class="muted">' + esc([m.manufacturer, m.model].filter(Boolean).join(" ")) + "</div></div>";
    }).join("") : '<p class="muted">No modem has reported yet.</p>';
    select.value = chosen;
  }

  async function loadQueue() {
    const [queued, sending] = await Promise.all([
      api("GET", "/api/v1/messages?direction=outbound&status=queued&limit=20"),
      api("GET", "/api/v1/messages?direction=outbound&status=sending&limit=20"),
    ]);
    const rows = sending.messages.concat(queued.messages);
    $("#queue-count").textContent = rows.length ? "(" + rows.length + (queued.next_cursor ? "+" : "") + ")" : "(empty)";
    $("#queue").innerHTML = rows.map((m) =>
      '<li data-id="' + m.id + '">#' + m.id + " → " + esc(m.phone_number) + ' <span class="status ' + m.status + '">' + m.status +
      "</span> " + esc(m.content.slice(0, 60)) + "</li>").join("");
  }

  function filterQuery() {
    const p = new URLSearchParams();
    for (const [id, key] of [["#f-direction", "direction"], ["#f-status", "status"], ["#f-q", "q"], ["#f-number", "number"]]) {
      const v = $(id).value.trim();
      if (v) p.set(key, v);
    }
    p.set("limit", PAGE);
    const before = cursors[cursors.length - 1];
    if (before) p.set("before", before);
    return p.toString();
  }

  async function loadMessages() {
    const shown = new Set(Array.from(document.querySelectorAll("#messages tbody tr")).map((tr) => tr.dataset.id));
    const data = await api("GET", "/api/v1/messages?" + filterQuery());
    nextCursor = data.next_cursor;
    $("#messages tbody").innerHTML = data.messages.map((m) =>
      '<tr data-id="' + m.id + '" class="' + (shown.size && !shown.has(String(m.id)) ? "fresh" : "") + '"><td>' + m.id + "</td><td>" + esc(when(m.timestamp)) +
      "</td><td>" + (m.direction === "inbound" ? "←" : "→") + "</td><td>" + esc(m.phone_number) +
      '</td><td class="text">' + esc(m.content) + '</td><td class="status ' + m.status + '">' + m.status +
      "</td><td>" + esc(m.modem_id || m.sending_modem || "") + "</td></tr>").join("");
    $("#older").disabled = !nextCursor;
    $("#newer").disabled = cursors.length <= 1;
    $("#page-info").textContent = "page " + cursors.length;
  }

  async function loadTotals() {
    const text = await fetch("/metrics", { headers: token ? { Authorization: "Bearer " + token } : {} }).then((r) => r.ok ? r.text() : "");
    const get = (dir, st) => { const m = text.match(new RegExp('conductor_messages\\{direction="' + dir + '",status="' + st + '"\\} (\\d+)')); return m ? +m[1] : 0; };
    if (text) $("#totals").textContent = "unread " + get("inbound", "unread") + " · queued " + get("outbound", "queued") +
      " · sent " + get("outbound", "sent") + " · delivered " + get("outbound", "delivered") + " · failed " + get("outbound", "failed");
  }

  async function loadStats() {
    const s = await api("GET", "/api/v1/stats?bucket=hour");
    const byHour = new Map(s.series.map((b) => [b.bucket, b]));
    const start = new Date(s.since);
    const hours = [];
    for (let i = 1; i <= 24; i++) {
      const key = new Date(start.getTime() + i * 3600e3).toISOString().slice(0, 13) + ":00:00Z";
      hours.push(byHour.get(key) || { bucket: key, inbound: 0, outbound: 0 });
    }
    const max = Math.max(1, ...hours.map((h) => h.inbound + h.outbound));
    $("#chart").innerHTML = hours.map((h) =>
      '<div class="col" title="' + esc(h.bucket.slice(11, 16)) + " UTC: " + h.inbound + " in, " + h.outbound + ' out">' +
      '<div class="in" style="height:' + (100 * h.inbound / max) + '%"></div>' +
      '<div class="out" style="height:' + (100 * h.outbound / max) + '%"></div></div>').join("");
    const d = s.delivery;
    $("#success").textContent = d.success_rate == null ? "" :
      "· delivery success " + (100 * d.success_rate).toFixed(1) + " % (" + d.delivered + " delivered, " + d.failed + " failed)";
  }

  function refreshAll() {
    const first = cursors.length === 1;
    Promise.all([loadModems(), loadQueue(), first ? loadMessages() : null, loadTotals(), loadStats()].filter(Boolean))
      .catch((e) => console.warn(e));
    if (current) showDetail(current.id, true);
  }

  function soon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshAll, 250);
  }

  async function showDetail(id, quiet) {
    const d = await api("GET", "/api/v1/messages/" + id);
    const m = d.message;
    current = m;
    const rows = [["id", m.id], ["direction", m.direction], ["number", m.phone_number], ["status", m.status], ["text", m.content],
      ["time", when(m.timestamp)], ["modem", m.modem_id || m.sending_modem], ["parts", m.parts_received + "/" + m.parts_total],
      ["attempts", m.attempts], ["reason", m.reason], ["sent", when(m.sent_at)], ["delivered", when(m.delivered_at)], ["source", m.source]];
    $("#detail-body").innerHTML = "<h3>Message #" + m.id + "</h3><dl>" +
      rows.filter((r) => r[1] !== null && r[1] !== undefined && r[1] !== "").map((r) => "<dt>" + r[0] + '</dt><dd class="' + (r[0] === "status" ? "status " + esc(r[1]) : "") + '">' + esc(r[1]) + "</dd>").join("") +
      "</dl><h4>History</h4><ul class=\"plain\">" + d.history.map((e) => "<li>" + esc(when(e.at)) + " " + esc(e.kind) + (e.detail ? ' <span class="muted">' + esc(JSON.stringify(e.detail)) + "</span>" : "") + "</li>").join("") + "</ul>" +
      (d.reports.length ? "<h4>Delivery reports</h4><ul class=\"plain\">" + d.reports.map((r) => "<li>" + esc(when(r.received_at)) + " " + esc(r.category) + " (TP-ST " + r.status_code + ")</li>").join("") + "</ul>" : "");
    $("#act-read").hidden = !(m.direction === "inbound" && m.status === "unread");
    $("#act-cancel").hidden = m.status !== "queued";
    $("#act-requeue").hidden = !["unknown", "failed", "cancelled", "duplicate", "expired", "blocked"].includes(m.status);
    if (!quiet && !$("#detail").open) $("#detail").showModal();
  }

  async function act(verb) {
    if (!current) return;
    try { await api("POST", "/api/v1/messages/" + current.id + "/" + verb); } catch (e) { alert(e.message); }
    soon();
  }

  function connect() {
    const url = "/api/v1/events" + (token ? "?access_token=" + encodeURIComponent(token) : "");
    const source = new EventSource(url);
    source.onopen = () => { $("#live").textContent = "live"; $("#live").classList.remove("off"); };
    source.onerror = () => { $("#live").textContent = "reconnecting"; $("#live").classList.add("off"); };
    source.onmessage = soon;
    for (const kind of ["received", "received_incomplete", "completed_late", "queued", "claimed", "sent", "delivered", "failed", "duplicate",
      "unknown", "requeued", "cancelled", "read", "retry_scheduled", "status_report", "modem_up", "modem_down", "sim_full", "capacity_cleanup", "interrupted",
      "expired", "blocked", "held", "number_blocked", "number_unblocked"]) {
      source.addEventListener(kind, soon);
    }
  }

  $("#send-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { to: $("#send-to").value.trim(), text: $("#send-text").value };
    if ($("#send-modem").value) body.modem = $("#send-modem").value;
    $("#send-button").disabled = true;
    try {
      const m = await api("POST", "/api/v1/messages", body);
      $("#send-result").textContent = "queued as #" + m.id;
      $("#send-text").value = "";
    } catch (e) {
      $("#send-result").textContent = e.message;
    } finally {
      $("#send-button").disabled = false;
    }
    soon();
  });
  $("#messages tbody").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr");
    if (tr) showDetail(tr.dataset.id).catch((e) => alert(e.message));
  });
  $("#queue").addEventListener("click", (ev) => {
    const li = ev.target.closest("li");
    if (li) showDetail(li.dataset.id).catch((e) => alert(e.message));
  });
  $("#detail").addEventListener("close", () => { current = null; });
  $("#act-read").addEventListener("click", () => act("read"));
  $("#act-requeue").addEventListener("click", () => act("requeue"));
  $("#act-cancel").addEventListener("click", () => act("cancel"));
  $("#older").addEventListener("click", () => { if (nextCursor) { cursors.push(nextCursor); loadMessages(); } });
  $("#newer").addEventListener("click", () => { if (cursors.length > 1) { cursors.pop(); loadMessages(); } });
  let filterTimer = null;
  $("#filters").addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => { cursors = [null]; loadMessages().catch((e) => console.warn(e)); }, 300);
  });
  $("#filters").addEventListener("submit", (ev) => ev.preventDefault());

  refreshAll();
  loadMessages().catch((e) => console.warn(e));
  connect();
  // A safety net in case the stream is cut by a proxy: refresh the cards every 30 s.
  setInterval(() => loadModems().catch(() => {}), 30000);
})();
