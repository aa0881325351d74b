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
      if (current.length === 1) current.push([current[0][0] + 1, current[0][1]]); // one point: a short dash
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

  // One time chart of the last `window` seconds ending at `now`; series: [{index, className}].
  function timeChart(rows, now, window, metric, title, series, format) {
    const xs = rows.map((r) => W * (1 - (now - r[0]) / window));
    let top = 0;
    let count = 0;
    for (const s of series) {
      for (const r of rows) if (num(r[s.index])) { top = Math.max(top, r[s.index]); count += 1; }
    }
    const last = [...rows].reverse().find((r) => num(r[series[0].index]));
    const { figure, svg } = frame(metric, title, format(last ? last[series[0].index] : null), format(top || null), count);
    const scale = top > 0 ? top * 1.1 : 1;
    for (const s of series) svg.append(...lines(rows.map((r, i) => [xs[i], r[s.index]]), scale, `line ${s.className}`));
    return figure;
  }

  // How much time the x axis spans: the samples kept (at most the window), at least MIN_SPAN seconds.
  const MIN_SPAN = 300;
  function span(rows, now, window) {
    const oldest = rows.length ? rows[0][0] : now;
    return Math.min(window, Math.max(MIN_SPAN, now - oldest));
  }

  // The four charts of one instance, from rows [t, memory, cpu, rps, p50, p99] (fields name the columns).
  function instanceCharts(rows, fields, now, window) {
    const at = (name) => fields.indexOf(name);
    const visible = rows.filter((r) => now - r[0] <= window);
    window = span(visible, now, window);
    return [
      timeChart(visible, now, window, "memory", "memory", [{ index: at("memory"), className: "memory" }], bytes),
      timeChart(visible, now, window, "cpu", "CPU", [{ index: at("cpu"), className: "cpu" }], percent),
      timeChart(visible, now, window, "rps", "requests", [{ index: at("rps"), className: "rps" }], rate),
      timeChart(visible, now, window, "latency", "p50 / p99",
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

  window.ParadiseCharts = { instanceCharts, qualityChart, span, bytes, percent, rate, millis };
})();
