// DevOps Paradise Bridge dashboard: plain JS, no build step. All data arrives over /dashboard/ws after the
// admin token has been sent as the first message; everything is rendered with textContent (never HTML).
"use strict";

(() => {
  const TOKEN_KEY = "devops-paradise.admin-token";
  const CLOSE_AUTH = 4401;
  const MAX_EVENTS = 200;
  const TROUBLE = new Set(["unhealthy", "failed"]);
  const LIVE = new Set(["running", "unhealthy"]);
  const $ = (id) => document.getElementById(id);

  let socket = null;
  let retries = 0;
  let skewMs = 0; // server clock minus ours, so uptimes are right even if the clocks differ
  const events = [];
  const seen = new Set();
  const quality = new Map(); // client id -> its last "quality" message (jobs, last run, report link)
  const charts = window.ParadiseCharts.board(); // the last hour of each instance, the runs of each client
  let clientsNow = []; // the last snapshot's clients, for the charts

  // ---- token --------------------------------------------------------------------------------------------

  function takeTokenFromFragment() {
    const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (!match) return;
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search); // keep it out of the address bar
  }

  function showLogin(message) {
    $("main").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("token-input").focus();
  }

  function showMain() {
    $("login").hidden = true;
    $("main").hidden = false;
    $("forget").hidden = false;
  }

  function setStatus(kind, text) {
    const status = $("status");
    status.className = `status status-${kind}`;
    status.textContent = text;
  }

  // ---- socket -------------------------------------------------------------------------------------------

  function connect() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      setStatus("offline", "not connected");
      showLogin("");
      return;
    }
    setStatus("connecting", "connecting…");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/dashboard/ws`);
    socket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token }));
    ws.onmessage = (message) => receive(JSON.parse(message.data));
    ws.onclose = (event) => closed(ws, event);
  }

  function closed(ws, event) {
    if (socket !== ws) return; // replaced on purpose (new token, forget)
    socket = null;
    if (event.code === CLOSE_AUTH) {
      sessionStorage.removeItem(TOKEN_KEY);
      setStatus("error", "token refused");
      showLogin(`The bridge refused the admin token: ${event.reason || "invalid admin token"}.`);
      return;
    }
    retries = Math.min(retries + 1, 6);
    const delay = Math.min(500 * 2 ** retries, 15000);
    setStatus("offline", `disconnected; retrying in ${Math.round(delay / 1000)} s`);
    setTimeout(connect, delay);
  }

  function disconnect() {
    const ws = socket;
    socket = null;
    if (ws) ws.close(1000, "bye");
  }

  function receive(message) {
    if (message.type === "snapshot") {
      retries = 0;
      skewMs = Date.parse(message.server_time) - Date.now();
      setStatus("live", "live");
      showMain();
      if (message.events) message.events.slice().reverse().forEach(addEvent);
      if (message.history) charts.take(message.history);
      clientsNow = message.clients;
      renderClients(message.clients);
      renderCharts();
      renderPorts(message.ports);
      renderEvents();
    } else if (message.type === "event") {
      addEvent(message.event);
      renderEvents();
    } else if (message.type === "samples") {
      charts.add(message);
      renderCharts();
    } else if (message.type === "quality") {
      quality.set(message.client, message);
      const cell = document.querySelector(`tr.instance-row[data-client="${CSS.escape(message.client)}"] td.quality`);
      if (cell) fillQuality(cell, message); // in place: no re-render of the table between snapshots
    }
  }

  // ---- rendering ----------------------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function renderClients(clients) {
    const body = $("instances").tBodies[0];
    const rows = [];
    let running = 0;
    let trouble = 0;
    for (const client of clients) {
      rows.push(clientRow(client));
      for (const inst of client.instances) {
        rows.push(instanceRow(client, inst));
        if (inst.state === "running") running += 1;
        if (TROUBLE.has(inst.state)) trouble += 1;
      }
    }
    body.replaceChildren(...rows);
    $("no-clients").hidden = clients.length > 0;
    $("count-clients").textContent = clients.length;
    $("count-running").textContent = running;
    $("count-trouble").textContent = trouble;
    tick();
  }

  function clientRow(client) {
    const row = el("tr", "client-row");
    row.dataset.client = client.client_id;
    const cell = el("td");
    cell.colSpan = 8;
    const A = window.ParadiseActions;
    const actions = el("span", "actions");
    actions.append(A.button("restart", "restart all", client.client_id), A.button("rotate", "rotate token", client.client_id),
      A.button("delete", "delete", client.client_id));
    cell.append(el("strong", "client-id", client.client_id), el("span", "muted", ` ${client.workspace}`),
      el("span", "profile", client.profile), actions);
    row.append(cell);
    return row;
  }

  function instanceRow(client, inst) {
    const row = el("tr", "instance-row");
    row.dataset.client = client.client_id;
    row.dataset.service = inst.service;
    row.dataset.state = inst.state;
    const state = el("td", "state-cell");
    state.append(el("span", `state state-${inst.state}`, inst.state));
    if (inst.step) state.append(el("span", "step", inst.step));
    const uptime = el("td", "uptime", "–");
    if (LIVE.has(inst.state) && inst.started_at) uptime.dataset.since = inst.started_at;
    const activity = el("td", inst.service === "quality" ? "quality" : "activity");
    if (inst.service === "quality") fillQuality(activity, quality.get(client.client_id));
    row.append(serviceCell(inst), state, el("td", "port", inst.port), uptime,
      el("td", "restarts", inst.restarts), errorCell(inst), activity, actionCell(client, inst));
    return row;
  }

  function serviceCell(inst) {
    // The version it runs (docs/rollouts.md); what the launch ran (image or command digest) on hover.
    const cell = el("td", "service", inst.service);
    const version = el("span", "version", inst.version || "default");
    if (inst.version_id) version.title = inst.version_id;
    cell.append(" ", version);
    return cell;
  }

  function actionCell(client, inst) {
    const cell = el("td", "actions");
    cell.append(window.ParadiseActions.button("restart", "restart", client.client_id, inst.service));
    return cell;
  }

  function renderCharts() {
    const cards = charts.render(clientsNow, (Date.now() + skewMs) / 1000);
    $("charts").replaceChildren(...cards);
    $("no-charts").hidden = cards.length > 0;
  }

  // ---- quality: the running job, else the last run, and the report link -------------------------------

  function fillQuality(cell, message) {
    const status = message && message.status;
    const parts = [];
    const jobs = (status && Array.isArray(status.running)) ? status.running : [];
    for (const job of jobs) parts.push(jobBlock(job));
    if (jobs.length === 0 && status && status.last) parts.push(lastBlock(status.last, status.last_report));
    if (message && typeof message.report_url === "string" && message.report_url.startsWith("/dashboard/report/")) {
      const link = el("a", "report-link", "report");
      link.href = message.report_url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      parts.push(link);
    }
    if (parts.length === 0) parts.push(el("span", "muted", "–"));
    cell.dataset.running = String(jobs.length);
    cell.replaceChildren(...parts);
  }

  function jobBlock(job) {
    const block = el("div", "quality-job");
    block.dataset.tool = job.tool;
    const total = Number(job.total) > 0 ? Number(job.total) : 1;
    const value = Math.min(Math.max(Number(job.progress) || 0, 0), total);
    const bar = el("progress", "quality-progress");
    bar.max = total;
    bar.value = value;
    block.append(el("span", "tool", job.tool), el("span", "quality-value", `${value.toFixed(2)} / ${total}`), bar,
      el("span", "step", job.message));
    return block;
  }

  function lastBlock(last, report) {
    const block = el("div", "quality-last");
    block.dataset.tool = last.tool;
    block.dataset.status = last.status;
    const facts = [];
    const score = last.score ?? (report ? report.score : null);
    if (score !== null && score !== undefined) facts.push(el("span", "score", `score ${score}`));
    if (last.failures !== null && last.failures !== undefined) {
      const failures = el("span", "failures", `${last.failures} failure${last.failures === 1 ? "" : "s"}`);
      failures.dataset.count = String(last.failures);
      if (Array.isArray(last.failed) && last.failed.length) failures.title = last.failed.join("\n");
      facts.push(failures);
    }
    if (last.findings !== null && last.findings !== undefined) facts.push(el("span", "findings", `${last.findings} findings`));
    if (last.trend && last.trend.direction) facts.push(el("span", `trend trend-${last.trend.direction.replace(/\W/g, "-")}`,
      last.trend.direction));
    const when = Date.parse(last.finished_at);
    block.append(el("span", "tool", last.tool), el("span", `state quality-${last.status}`, last.status), ...facts,
      el("time", "muted", Number.isNaN(when) ? "" : new Date(when).toLocaleTimeString()));
    return block;
  }

  function errorCell(inst) {
    const cell = el("td", "last-error");
    if (!inst.last_error) {
      cell.classList.add("none");
      cell.textContent = "–";
      return cell;
    }
    if (!inst.last_log || inst.last_log.length === 0) {
      cell.textContent = inst.last_error;
      return cell;
    }
    const details = el("details");
    details.append(el("summary", null, inst.last_error), el("pre", null, inst.last_log.join("\n")));
    cell.append(details);
    return cell;
  }

  function renderPorts(ports) {
    const share = ports.size ? (100 * ports.leased) / ports.size : 0;
    $("pool-fill").style.width = `${share.toFixed(1)}%`;
    $("pool-range").textContent = ports.range;
    $("pool-text").textContent = `${ports.leased} of ${ports.size} ports leased, ${ports.size - ports.leased} free`;
    $("count-ports").textContent = `${ports.leased} / ${ports.size}`;
    $("leases").replaceChildren(...ports.leases.map((lease) => {
      const item = el("li", null);
      item.append(el("span", "port", lease.port), el("span", null, ` ${lease.client_id}/${lease.service}`));
      return item;
    }));
  }

  function addEvent(event) {
    if (seen.has(event.id)) return;
    seen.add(event.id);
    events.push(event);
    events.sort((a, b) => b.id - a.id);
    while (events.length > MAX_EVENTS) seen.delete(events.pop().id);
  }

  function renderEvents() {
    $("events").replaceChildren(...events.map((event) => {
      const item = el("li", `event level-${event.level}`);
      const where = [event.client_id, event.service].filter(Boolean).join("/") || "bridge";
      item.append(el("time", null, new Date(event.ts).toLocaleTimeString()), el("span", "where", where),
        el("span", "kind", event.kind), el("span", "message", event.message));
      return item;
    }));
  }

  function formatDuration(seconds) {
    if (seconds < 60) return `${seconds}s`;
    const m = Math.floor(seconds / 60);
    if (m < 60) return `${m}m ${seconds % 60}s`;
    const h = Math.floor(m / 60);
    return h < 48 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  function tick() {
    const now = Date.now() + skewMs;
    for (const cell of document.querySelectorAll("td.uptime[data-since]")) {
      const seconds = Math.max(0, Math.floor((now - Date.parse(cell.dataset.since)) / 1000));
      cell.textContent = formatDuration(seconds);
    }
  }

  // ---- start --------------------------------------------------------------------------------------------

  function start() {
    takeTokenFromFragment();
    window.ParadiseActions.attach($("main"));
    $("login-form").addEventListener("submit", (submit) => {
      submit.preventDefault();
      const token = $("token-input").value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      $("token-input").value = "";
      disconnect();
      connect();
    });
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      disconnect();
      setStatus("offline", "not connected");
      showLogin("");
    });
    window.addEventListener("hashchange", () => {
      if (!location.hash.includes("token=")) return;
      takeTokenFromFragment();
      disconnect();
      connect();
    });
    setInterval(tick, 1000);
    connect();
  }

  start();
})();
