// evlog's live page: the pipeline from server-sent events, the analytics panels from
// /api/panels, the SQL box through /api/sql. No framework; charts by uPlot (vendored).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const COLORS = ["#2f6fde", "#e07b2a", "#1e8e4e", "#b03fb0", "#c0392b", "#2aa1b3", "#7f6a3a", "#555"];
const HISTORY_S = 300;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function getJSON(path, options) {
  const r = await fetch(path, { credentials: "same-origin", ...options });
  if (!r.ok) throw new Error(`${r.status} ${(await r.text()).trim()}`);
  return r.json();
}

const fmt = (v, digits = 0) =>
  v === null || v === undefined || Number.isNaN(v) ? "–"
    : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });

function width(node) { return Math.max(280, node.clientWidth || node.parentElement.clientWidth - 24); }

// -- the pipeline -------------------------------------------------------------------------------

const P = { t: [], appended: [], projected: [], lag: [], p50: [], p99: [], p999: [], budget: [] };
let budgetMs = 50;
let rateChart = null;
let latencyChart = null;

function pushPoint(p) {
  if (p.error) return;
  if (P.t.length && p.t <= P.t[P.t.length - 1]) return;
  const rtv = p.read_to_visible || {};
  P.t.push(p.t);
  P.appended.push(p.appended_per_s);
  P.projected.push(p.projected_per_s);
  P.lag.push(p.lag_events);
  P.p50.push(rtv.p50 ?? null);
  P.p99.push(rtv.p99 ?? null);
  P.p999.push(rtv["p99.9"] ?? null);
  P.budget.push(budgetMs);
  while (P.t.length && P.t[0] <= p.t - HISTORY_S) for (const k in P) P[k].shift();
}

function showNumbers(p) {
  if (p.error) return;
  $("#stat-appended").textContent = fmt(p.appended_per_s);
  $("#stat-projected").textContent = fmt(p.projected_per_s);
  $("#stat-lag-events").textContent = fmt(p.lag_events);
  $("#stat-lag-seconds").textContent = fmt(p.lag_seconds, 3);
  $("#stat-head").textContent = fmt(p.log_head);
  $("#stat-position").textContent = fmt(p.position);
  $("#stat-dead").textContent = fmt(p.dead_letters);
  if (p.push) showPush(p.push);
  if (p.latency) showStages(p.latency);
  if (p.sources) showSources(p.sources);
}

function showStages(latency) {
  const body = $("#stages tbody");
  body.replaceChildren();
  for (const [stage, s] of Object.entries(latency)) {
    const row = el("tr", {}, el("td", { text: stage }));
    for (const q of ["p50", "p99", "p99.9"]) {
      const cell = el("td", { class: "num", text: fmt(s[q], 2) });
      if (stage !== "read_to_commit" && s[q] !== null && s[q] > budgetMs) cell.classList.add("over");
      row.append(cell);
    }
    row.append(el("td", { class: "num", text: fmt(s.events) }));
    body.append(row);
  }
}

// `evlog serve`'s figures: what was pushed, and what its checks refused (nothing stored).
function showPush(push) {
  $("#push").hidden = false;
  for (const k of ["appended", "duplicates", "rejected", "busy", "syslog"]) {
    $(`#push-${k}`).textContent = fmt(push[k]);
  }
  const refused = Object.entries(push.refused || {});
  $("#push-refused").textContent = refused.length
    ? refused.map(([reason, n]) => `${reason} ${fmt(n)}`).join(", ")
    : "none";
}

function showSources(sources) {
  const body = $("#sources tbody");
  body.replaceChildren();
  for (const s of sources) {
    const pct = s.size ? `${fmt((100 * s.offset) / s.size, 1)}%` : "–";
    const at = s.line !== null && s.line !== undefined ? `line ${fmt(s.line)}` : "–";
    const when = s.updated ? new Date(s.updated * 1000).toLocaleTimeString() : "–";
    body.append(el("tr", {}, el("td", { text: s.source }), el("td", { text: at }),
      el("td", { class: "num", text: pct }), el("td", { class: "num", text: fmt(s.last_seq) }),
      el("td", { text: when })));
  }
}

async function showDeadLetters() {
  const { dead_letters: rows } = await getJSON("/api/deadletters");
  const body = $("#deadletters tbody");
  body.replaceChildren();
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted", text: "none" })));
  for (const d of rows) {
    body.append(el("tr", {}, el("td", { text: d.id }), el("td", { text: d.source }),
      el("td", { text: d.position ?? "" }), el("td", { text: d.error }),
      el("td", {}, el("a", { href: `/api/deadletters/${d.id}/raw`, target: "_blank", text: "raw" }))));
  }
}

function lineChart(node, title, series, data, opts = {}) {
  return new uPlot({
    width: width(node), height: 220, title,
    scales: { x: { time: opts.time !== false } },
    series: [{}, ...series],
    axes: [{}, { size: 60 }],
    legend: { live: true },
    ...opts.extra,
  }, data, node);
}

function drawPipeline() {
  const rateData = [P.t, P.appended, P.projected, P.lag];
  const latData = [P.t, P.p50, P.p99, P.p999, P.budget];
  if (!rateChart) {
    rateChart = lineChart($("#chart-rate"), "", [
      { label: "appended", stroke: COLORS[0], width: 2 },
      { label: "projected", stroke: COLORS[1], width: 2, dash: [4, 3] },
      { label: "lag (events)", stroke: COLORS[4], width: 1, scale: "lag" },
    ], rateData, { extra: { axes: [{}, { size: 60 }, { side: 1, scale: "lag", size: 50, grid: { show: false } }] } });
    latencyChart = lineChart($("#chart-latency"), "", [
      { label: "p50 ms", stroke: COLORS[2], width: 2, spanGaps: false },
      { label: "p99 ms", stroke: COLORS[4], width: 2, spanGaps: false },
      { label: "p99.9 ms", stroke: COLORS[3], width: 1, spanGaps: false },
      { label: "budget", stroke: "#999", dash: [6, 4] },
    ], latData);
  } else {
    rateChart.setData(rateData);
    latencyChart.setData(latData);
  }
}

function connect() {
  const pill = $("#conn");
  const source = new EventSource("/api/pipeline/stream");
  source.addEventListener("hello", (e) => {
    const snap = JSON.parse(e.data);
    budgetMs = snap.budget_ms;
    for (const k in P) P[k].length = 0;
    for (const p of snap.history) pushPoint(p);
    if (snap.history.length) showNumbers({ ...snap.history[snap.history.length - 1], latency: snap.latency, sources: snap.sources });
    drawPipeline();
    pill.dataset.state = "live"; pill.textContent = "live";
  });
  source.addEventListener("point", (e) => {
    const p = JSON.parse(e.data);
    pushPoint(p); showNumbers(p); drawPipeline();
    document.body.dataset.points = String(P.t.length);
  });
  source.onerror = () => { pill.dataset.state = "lost"; pill.textContent = "reconnecting"; };
}

// -- analytics panels ---------------------------------------------------------------------------

const toTime = (v) => (typeof v === "number" ? v : Date.parse(v.length === 10 ? `${v}T00:00:00Z` : `${v}Z`) / 1000);

function drawLine(node, panel, res) {
  const cols = res.columns;
  let xs, series, data;
  if (panel.series) {
    const si = cols.indexOf(panel.series);
    const yi = cols.findIndex((c, i) => i !== 0 && i !== si);
    const names = [...new Set(res.rows.map((r) => String(r[si])))];
    const xsSet = [...new Set(res.rows.map((r) => toTime(r[0])))].sort((a, b) => a - b);
    const at = new Map(xsSet.map((x, i) => [x, i]));
    const ys = names.map(() => xsSet.map(() => null));
    for (const r of res.rows) ys[names.indexOf(String(r[si]))][at.get(toTime(r[0]))] = r[yi];
    xs = xsSet; series = names.map((n, i) => ({ label: n, stroke: COLORS[i % COLORS.length], width: 2 }));
    data = [xs, ...ys];
  } else {
    xs = res.rows.map((r) => toTime(r[0]));
    series = cols.slice(1).map((c, i) => ({ label: c, stroke: COLORS[i % COLORS.length], width: 2, scale: i ? "y2" : "y" }));
    data = [xs, ...cols.slice(1).map((_, i) => res.rows.map((r) => r[i + 1]))];
  }
  const axes = [{}, { size: 60 }];
  if (!panel.series && cols.length > 2) axes.push({ side: 1, scale: "y2", size: 60, grid: { show: false } });
  node.replaceChildren();
  new uPlot({ width: width(node), height: 240, series: [{}, ...series], axes,
    scales: { x: { time: true } } }, data, node);
}

function drawBars(node, res) {
  const max = Math.max(1, ...res.rows.map((r) => Number(r[1]) || 0));
  const box = el("div", { class: "bars" });
  for (const r of res.rows) {
    const detail = res.columns.slice(2).map((c, i) => `${c} ${fmt(r[i + 2], 1)}`).join(" · ");
    const fill = el("span", { class: "fill" });
    fill.style.width = `${(100 * (Number(r[1]) || 0)) / max}%`;
    box.append(el("div", { class: "name", title: `${r[0]}${detail ? ` (${detail})` : ""}`, text: r[0] ?? "(none)" }),
      el("div", { class: "bar", title: detail }, fill, el("span", { class: "text", text: fmt(r[1], 1) })));
  }
  node.replaceChildren(box);
}

function drawHeatmap(node, res) {
  const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const grid = new Map(res.rows.map((r) => [`${r[0]}-${r[1]}`, Number(r[2])]));
  const max = Math.max(1, ...grid.values());
  const box = el("div", { class: "heat" }, el("div"));
  for (let h = 0; h < 24; h++) box.append(el("div", { class: "muted", text: h % 3 ? "" : h }));
  for (let d = 1; d <= 7; d++) {
    box.append(el("div", { class: "muted", text: days[d - 1] }));
    for (let h = 0; h < 24; h++) {
      const v = grid.get(`${d}-${h}`) || 0;
      const cell = el("div", { class: "cell", title: `${days[d - 1]} ${h}:00 — ${v}` });
      cell.style.opacity = v ? String(0.12 + (0.88 * v) / max) : "0.04";
      box.append(cell);
    }
  }
  node.replaceChildren(box);
}

function drawTable(node, res, limit = 200) {
  const head = el("tr", {}, ...res.columns.map((c) => el("th", { text: c })));
  const body = el("tbody");
  for (const r of res.rows.slice(0, limit)) {
    body.append(el("tr", {}, ...r.map((v) => el("td", {
      class: typeof v === "number" ? "num" : "",
      text: v === null ? "" : typeof v === "object" ? JSON.stringify(v) : v,
    }))));
  }
  node.replaceChildren(el("table", { class: "grid" }, el("thead", {}, head), body));
}

const panelState = new Map();

function buildPanels(panels) {
  const box = $("#panels");
  for (const p of panels) {
    const chart = el("div", { class: "chart" });
    const sql = el("details", {}, el("summary", { text: "SQL" }), el("pre", { text: p.sql }));
    const links = el("div", { class: "links" },
      el("a", { href: `/api/panels/${p.id}.csv`, download: `${p.id}.csv`, text: "CSV" }),
      el("a", { href: `/api/panels/${p.id}.parquet`, download: `${p.id}.parquet`, text: "Parquet" }),
      el("span", { class: "muted rows" }), sql);
    const node = el("div", { class: "panel", id: `panel-${p.id}`, "data-group": p.group, "data-state": "loading" },
      el("h3", { text: p.title }), chart, p.note ? el("div", { class: "muted", text: p.note }) : "", links);
    box.append(node);
    panelState.set(p.id, { panel: p, node, chart, last: "" });
  }
}

async function refreshPanel(id) {
  const s = panelState.get(id);
  let res;
  try {
    res = await getJSON(`/api/panels/${id}`);
  } catch (err) {
    res = { error: String(err) };
  }
  if (res.as_of) $(".rows", s.node).dataset.asOf = new Date(res.as_of * 1000).toLocaleTimeString();
  const text = JSON.stringify(res.error ?? res.rows);
  if (text === s.last) return;  // unchanged: leave the chart alone
  s.last = text;
  if (res.error || !res.rows.length) {
    s.chart.replaceChildren(el("div", { class: res.error ? "error" : "empty",
      text: res.error ? res.error : "no data yet" }));
    s.node.dataset.state = "empty";
    $(".rows", s.node).textContent = "";
    return;
  }
  const kind = s.panel.chart;
  if (kind === "line") drawLine(s.chart, s.panel, res);
  else if (kind === "bars") drawBars(s.chart, res);
  else if (kind === "heatmap") drawHeatmap(s.chart, res);
  else drawTable(s.chart, res);
  s.node.dataset.state = "ready";
  s.node.dataset.rows = String(res.rows.length);
  $(".rows", s.node).textContent = `${res.rows.length} rows, as of ${$(".rows", s.node).dataset.asOf}`;
}

async function refreshAll() {
  if (document.hidden) return;
  await Promise.all([...panelState.keys()].map(refreshPanel));
  await showDeadLetters().catch(() => {});
}

// -- SQL box ------------------------------------------------------------------------------------

async function runSql(event) {
  event?.preventDefault();
  const status = $("#sql-status");
  const out = $("#sql-result");
  const chart = $("#sql-chart");
  status.textContent = "running…";
  const started = performance.now();
  let res;
  try {
    res = await getJSON("/api/sql", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sql: $("#sql-text").value }),
    });
  } catch (err) {
    res = { error: String(err) };
  }
  chart.replaceChildren();
  if (res.error) {
    status.textContent = "";
    out.replaceChildren(el("pre", { class: "error", text: res.error }));
    out.dataset.state = "error";
    return;
  }
  const ms = performance.now() - started;
  status.textContent = `${res.rows.length} rows${res.truncated ? " (first ones only)" : ""} in ${fmt(ms)} ms`;
  drawTable(out, res, 1000);
  out.dataset.state = "ready";
  out.dataset.rows = String(res.rows.length);
  if (res.chart && res.rows.length) {
    const cols = [res.chart.x, ...res.chart.y];
    const idx = cols.map((c) => res.columns.indexOf(c));
    drawLine(chart, { series: null }, { columns: cols, rows: res.rows.map((r) => idx.map((i) => r[i])) });
  }
}

// -- start --------------------------------------------------------------------------------------

async function start() {
  const info = await getJSON("/api/info");
  budgetMs = info.budget_ms;
  $("#where").textContent = `${info.log} → ${info.duckdb} (${info.mode})`;
  buildPanels(info.panels);
  connect();
  await refreshAll();
  setInterval(refreshAll, 5000);
  $("#sql-form").addEventListener("submit", runSql);
  $("#sql-text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) runSql(e); });
  document.body.dataset.ready = "1";
}

window.addEventListener("DOMContentLoaded", () => {
  start().catch((err) => {
    document.body.prepend(el("pre", { class: "error", text: `evlog: ${err}` }));
  });
});
