// Small live charts for the dashboard, drawn as plain SVG (no library, no CDN): each instance's last hour
// (memory, CPU, requests/s, p50/p99 latency) and each client's quality runs (score line, failure bars).
// Only numbers are drawn; labels are set with textContent. Exposed as window.ParadiseCharts for app.js.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const W = 240;
  const H = 56;
  const PAD = 3;

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const num = (v) => typeof v === "number" && Number.isFinite(v);

  function bytes(v) {
    if (!num(v)) return "–";
    if (v >= 1024 ** 3) return `${(v / 1024 ** 3).toFixed(2)} GiB`;
    return `${(v / 1024 ** 2).toFixed(v >= 100 * 1024 ** 2 ? 0 : 1)} MiB`;
  }
  const percent = (v) => (num(v) ? `${v.toFixed(1)} %` : "–");
  const rate = (v) => (num(v) ? `${v < 10 ? v.toFixed(2) : v.toFixed(0)}/s` : "–");
  const millis = (v) => (num(v) ? (v < 10 ? `${v.toFixed(1)} ms` : `${v.toFixed(0)} ms`) : "–");

  // Polylines of (x, value) points, broken where a value is missing; y scaled to [0, top].
  function lines(points, top, className) {
    const out = [];
    let current = [];
    const flush = () => {
      if (current.length === 1) { // a lone point (first sample, a gap on both sides): a short dash ending at it
        const [x, y] = current[0];
        current.unshift([Math.max(0, x - 6).toFixed(1), y]);
      }
      if (current.length) out.push(svgEl("polyline", { class: className, points: current.map((p) => p.join(",")).join(" ") }));
      current = [];
    };
    for (const [x, v] of points) {
      if (!num(v)) { flush(); continue; }
      const y = H - PAD - (Math.min(v, top) / top) * (H - 2 * PAD);
      current.push([x.toFixed(1), y.toFixed(1)]);
    }
    flush();
    return out;
  }

  function frame(metric, title, latestText, maxText, count) {
    const figure = el("figure", "chart");
    figure.dataset.metric = metric;
    const caption = el("figcaption");
    caption.append(el("span", "chart-title", title), el("span", "chart-max", `max ${maxText}`),
      el("span", "chart-value", latestText));
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "spark", role: "img", preserveAspectRatio: "none" });
    svg.dataset.points = String(count);
    const label = svgEl("title");
    label.textContent = `${title}: now ${latestText}, max ${maxText}`;
    svg.append(label, svgEl("line", { class: "baseline", x1: 0, y1: H - PAD, x2: W, y2: H - PAD }));
    figure.append(caption, svg);
    return { figure, svg };
  }

  // One time chart of the last `spanSeconds` ending at `now`; series: [{index, className}].
  function timeChart(rows, now, spanSeconds, metric, title, series, format) {
    const xs = rows.map((r) => W * (1 - (now - r[0]) / spanSeconds));
    let top = 0;
    let count = 0;
    for (const s of series) {
      for (const r of rows) if (num(r[s.index])) { top = Math.max(top, r[s.index]); count += 1; }
    }
    const last = [...rows].reverse().find((r) => num(r[series[0].index]));
    // Several series (p50, p99): "4.0 / 9.9 ms", the unit said once.
    const values = series.map((s) => format(last ? last[s.index] : null));
    const latest = values.map((v, i) => (i < values.length - 1 ? v.replace(/ ms$/, "") : v)).join(" / ");
    const { figure, svg } = frame(metric, title, latest, format(top || null), count);
    const scale = top > 0 ? top * 1.1 : 1;
    for (const s of series) svg.append(...lines(rows.map((r, i) => [xs[i], r[s.index]]), scale, `line ${s.className}`));
    return figure;
  }

  // How much time the x axis spans: the samples kept (at most the window kept), at least MIN_SPAN seconds.
  const MIN_SPAN = 300;
  function span(rows, now, windowSeconds) {
    const oldest = rows.length ? rows[0][0] : now;
    return Math.min(windowSeconds, Math.max(MIN_SPAN, now - oldest));
  }

  // The four charts of one instance, from rows [t, memory, cpu, rps, p50, p99] (fields name the columns).
  function instanceCharts(rows, fields, now, windowSeconds) {
    const at = (name) => fields.indexOf(name);
    const visible = rows.filter((r) => now - r[0] <= windowSeconds);
    const spanSeconds = span(visible, now, windowSeconds);
    return [
      timeChart(visible, now, spanSeconds, "memory", "memory", [{ index: at("memory"), className: "memory" }], bytes),
      timeChart(visible, now, spanSeconds, "cpu", "CPU", [{ index: at("cpu"), className: "cpu" }], percent),
      timeChart(visible, now, spanSeconds, "rps", "requests", [{ index: at("rps"), className: "rps" }], rate),
      timeChart(visible, now, spanSeconds, "latency", "p50/p99",
        [{ index: at("p50"), className: "p50" }, { index: at("p99"), className: "p99" }], millis),
    ];
  }

  // A client's recorded quality runs: the score (0-100) as a line, failing tests as bars under it.
  function qualityChart(runs) {
    const n = runs.length;
    const scores = runs.filter((r) => num(r.score)).length;
    const last = runs[n - 1] || {};
    const text = n ? `score ${num(last.score) ? last.score : "–"} · ${num(last.failures) ? last.failures : "–"} failing` : "no runs yet";
    const { figure, svg } = frame("quality", `quality over ${n} run${n === 1 ? "" : "s"}`, text, "100", scores);
    figure.classList.add("quality-chart");
    const step = n > 1 ? (W - 8) / (n - 1) : 0;
    const xs = runs.map((_, i) => 4 + i * step);
    const worst = Math.max(1, ...runs.map((r) => (num(r.failures) ? r.failures : 0)));
    runs.forEach((r, i) => {
      if (!num(r.failures) || r.failures <= 0) return;
      const h = ((H / 2) * r.failures) / worst;
      const bar = svgEl("rect", { class: "failures", x: xs[i] - 2, y: H - PAD - h, width: 4, height: h });
      bar.dataset.failures = String(r.failures);
      svg.append(bar);
    });
    svg.append(...lines(runs.map((r, i) => [xs[i], r.score]), 100, "line score"));
    return figure;
  }

  function chartCard(title, note, charts) {
    const card = el("article", "chart-card");
    const head = el("header");
    head.append(el("strong", null, title), note);
    const grid = el("div", "chart-grid");
    grid.append(...charts);
    card.append(head, grid);
    return card;
  }

  // The page's copy of the last hour: the first snapshot's history, then each "samples" message appended
  // (rows older than the window dropped, instances no longer sampled forgotten: bounded like the bridge's).
  function board() {
    const lastHour = new Map(); // "client/service" -> rows [t, memory, cpu, rps, p50, p99]
    let fields = ["t", "memory", "cpu", "rps", "p50", "p99"];
    let seconds = 3600; // the window kept

    function take(data) {
      fields = data.fields;
      seconds = data.window;
      lastHour.clear();
      for (const [key, rows] of Object.entries(data.instances)) lastHour.set(key, rows);
    }

    function add(message) {
      fields = message.fields;
      for (const [key, row] of Object.entries(message.instances)) {
        const rows = lastHour.get(key) || [];
        rows.push(row);
        while (rows.length && row[0] - rows[0][0] > seconds) rows.shift();
        lastHour.set(key, rows);
      }
      for (const key of [...lastHour.keys()]) if (!(key in message.instances)) lastHour.delete(key);
    }

    // One card per instance (four charts, its state), then one per client with recorded quality runs.
    function render(clients, now) {
      const cards = [];
      const runs = [];
      for (const client of clients) {
        for (const inst of client.instances) {
          const rows = lastHour.get(`${client.client_id}/${inst.service}`) || [];
          const minutes = Math.round(span(rows, now, seconds) / 60);
          const card = chartCard(`${client.client_id}/${inst.service}`, el("span", "muted", `last ${minutes} min`),
            instanceCharts(rows, fields, now, seconds));
          card.dataset.client = client.client_id;
          card.dataset.service = inst.service;
          card.querySelector("header").append(el("span", `state state-${inst.state}`, inst.state));
          cards.push(card);
        }
        if (client.quality_runs && client.quality_runs.length) {
          const card = chartCard(client.client_id, el("span", "muted", "quality runs"), [qualityChart(client.quality_runs)]);
          card.classList.add("quality-card");
          card.dataset.client = client.client_id;
          runs.push(card);
        }
      }
      return [...cards, ...runs];
    }

    return { take, add, render };
  }

  window.ParadiseCharts = { board, instanceCharts, qualityChart };
})();
