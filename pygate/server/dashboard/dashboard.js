// pygate dashboard: polls the admin listener's report endpoints (/logs/report/NAME)
// and draws them as plain SVG. No libraries: the admin listener may have no internet,
// and the charts needed here are bars and one line.
"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  // The admin token: from the address bar's fragment once (#token=..., never sent to
  // the server), else from this tab's sessionStorage, else typed into the login form.
  // Every poll sends it as a header, the way the rest of the admin API expects it; it
  // never goes into a cookie, so another site cannot make the browser send it.
  const TOKEN_KEY = "pygate-admin-token";
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem(TOKEN_KEY, fragment.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  let token = sessionStorage.getItem(TOKEN_KEY);
  const login = document.getElementById("login");
  login.addEventListener("submit", (event) => {
    event.preventDefault();
    token = login.token.value.trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    login.token.value = "";
    login.hidden = true;
    refresh();
  });
  const refreshSeconds = Math.max(1, Number(params.get("refresh")) || 5);
  const controls = document.getElementById("controls");
  const since = params.get("since") || "1h";
  if (![...controls.since.options].some((o) => o.value === since)) {
    controls.since.append(new Option(since, since));
  }
  controls.since.value = since;
  let selectedRoute = params.get("route") || "";
  let refreshes = 0;

  const SVG = "http://www.w3.org/2000/svg";
  const STATUS_CLASSES = ["2xx", "3xx", "4xx", "5xx"];
  const QUANTILES = ["p50", "p95", "p99"];

  function node(ns, tag, attrs = {}, children = []) {
    const element = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, value);
    for (const child of [].concat(children)) {
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return element;
  }
  const html = (tag, attrs, children) => node(null, tag, attrs, children);
  const svg = (tag, attrs, children) => node(SVG, tag, attrs, children);

  function compact(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return String(Math.round(n * 100) / 100);
  }
  // A round axis maximum (1, 2 or 5 times a power of ten) at or above `max`.
  function niceMax(max) {
    if (max <= 0) return 1;
    const power = 10 ** Math.floor(Math.log10(max));
    return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= max);
  }
  const label = (text) => (text === "" ? "(none)" : text);

  async function fetchReport(name, query) {
    const url = new URL(`/logs/report/${name}`, location.origin);
    for (const [key, value] of Object.entries(query)) if (value) url.searchParams.set(key, value);
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(url, { headers, cache: "no-store" });
    const body = await response.json();
    if (response.status === 401) login.hidden = false;
    if (!response.ok) {
      throw new Error(`${name}: ${body.message || body.error || "HTTP " + response.status}`);
    }
    return body.rows.map((row) => Object.fromEntries(body.columns.map((c, i) => [c, row[i]])));
  }

  function legend(items) {
    return html("div", { class: "legend" },
      items.map(([cls, text]) => html("span", {}, [html("i", { class: cls }), text])));
  }

  // Traffic: a stacked column per bucket (by status class) and the 5xx share as a line.
  function trafficChart(rows) {
    const width = 1100, height = 240, left = 48, right = 44, top = 10, bottom = 24;
    const plotW = width - left - right, plotH = height - top - bottom;
    const yMax = niceMax(Math.max(0, ...rows.map((r) => Number(r.requests))));
    const pctMax = niceMax(Math.max(5, ...rows.map((r) => Number(r.server_error_pct))));
    const step = plotW / Math.max(1, rows.length);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "requests over time" });
    for (let i = 0; i <= 4; i++) {
      const y = top + plotH - (plotH * i) / 4;
      chart.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }));
      chart.append(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, compact((yMax * i) / 4)));
      chart.append(svg("text", { x: width - right + 6, y: y + 4 }, `${compact((pctMax * i) / 4)}%`));
    }
    const labelEvery = Math.ceil(rows.length / 12);
    // "HH:MM" within a day; with the date ("MM-DD HH:MM") over longer windows.
    const multiDay = rows.length > 1 && String(rows[0].time).slice(0, 10) !== String(rows.at(-1).time).slice(0, 10);
    const timeLabel = (time) => String(time).slice(multiDay ? 5 : 11, 16);
    const points = [];
    rows.forEach((row, i) => {
      const x = left + i * step;
      let y = top + plotH;
      for (const cls of STATUS_CLASSES) {
        const value = Number(row[`status_${cls}`]);
        if (!value) continue;
        const h = (plotH * value) / yMax;
        y -= h;
        chart.append(svg("rect", {
          class: `s${cls}`, x: x + step * 0.1, y, width: Math.max(1, step * 0.8), height: h,
          "data-series": cls, "data-time": row.time, "data-value": value,
        }, svg("title", {}, `${row.time} UTC: ${value} ${cls}`)));
      }
      points.push(`${x + step / 2},${top + plotH - (plotH * Number(row.server_error_pct)) / pctMax}`);
      if (i % labelEvery === 0) {
        chart.append(svg("text", { x: x + step / 2, y: height - 6, "text-anchor": "middle" },
          timeLabel(row.time)));
      }
    });
    chart.append(svg("polyline", { class: "errline", points: points.join(" ") }));
    return [chart, legend([...STATUS_CLASSES.map((c) => [`s${c}`, c]), ["errline", "5xx %"]])];
  }

  // Horizontal bars: one group per row, one bar per series (e.g. p50/p95/p99).
  function barChart(rows, { key, series }) {
    if (!rows.length) return html("p", { class: "empty" }, "nothing in this window");
    const width = 540, labelW = 150, valueW = 60, barH = 14, gap = 8;
    const groupH = series.length * barH + gap;
    const max = Math.max(...rows.flatMap((r) => series.map((s) => Number(r[s.column]))), 0) || 1;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${rows.length * groupH + gap}`, role: "img" });
    rows.forEach((row, i) => {
      const y0 = gap + i * groupH;
      chart.append(svg("text", { x: 0, y: y0 + (series.length * barH) / 2 + 4 }, label(key(row))));
      series.forEach((s, j) => {
        const value = Number(row[s.column]);
        const w = ((width - labelW - valueW) * value) / max;
        const y = y0 + j * barH;
        chart.append(svg("rect", {
          class: s.cls, x: labelW, y, width: Math.max(1, w), height: barH - 2,
          "data-label": key(row), "data-series": s.name, "data-value": value,
        }, svg("title", {}, `${label(key(row))} ${s.name}: ${value}`)));
        chart.append(svg("text", { class: "value", x: labelW + w + 4, y: y + barH - 4 }, compact(value)));
      });
    });
    const parts = [chart];
    if (series.length > 1) parts.push(legend(series.map((s) => [s.cls, s.name])));
    return parts;
  }

  function slowestTable(rows) {
    if (!rows.length) return html("p", { class: "empty" }, "nothing in this window");
    const columns = [["time", "time (UTC)"], ["request_id", "request id"], ["route", "route"],
      ["consumer", "consumer"], ["method", "method"], ["path", "path"], ["status", "status", true],
      ["latency_ms", "ms", true], ["upstream_ms", "upstream ms", true]];
    return html("table", {}, [
      html("thead", {}, html("tr", {}, columns.map(([, title, num]) => html("th", num ? { class: "num" } : {}, title)))),
      html("tbody", {}, rows.map((row) => html("tr", {}, columns.map(([c, , num]) =>
        html("td", { class: num ? "num" : c === "request_id" ? "rid" : "" }, String(row[c])))))),
    ]);
  }

  function totals(traffic, latency) {
    const sum = (column) => traffic.reduce((acc, r) => acc + Number(r[column]), 0);
    const requests = sum("requests");
    const errors = sum("status_5xx");
    const worstP99 = Math.max(0, ...latency.map((r) => Number(r.p99_ms)));
    const items = [
      ["requests", requests], ["4xx", sum("status_4xx")], ["5xx", errors],
      ["5xx %", requests ? Math.round((10000 * errors) / requests) / 100 : 0],
      ["rate limited", sum("rate_limited")], ["worst route p99 ms", worstP99],
    ];
    return items.map(([name, value]) =>
      html("div", { class: "total", "data-total": name, "data-value": value }, [html("b", {}, compact(value)), html("span", {}, name)]));
  }

  const PANELS = {
    traffic: (rows) => (rows.length ? trafficChart(rows) : html("p", { class: "empty" }, "no traffic")),
    latency: (rows) => barChart(rows, { key: (r) => r.route,
      series: QUANTILES.map((q) => ({ name: q, column: `${q}_ms`, cls: q })) }),
    consumers: (rows) => barChart(rows, { key: (r) => r.consumer,
      series: [{ name: "requests", column: "requests", cls: "bar" }] }),
    errors: (rows) => barChart(rows, { key: (r) => `${r.status} ${r.error_kind}`.trim(),
      series: [{ name: "requests", column: "requests", cls: "s5xx" }] }),
    "rate-limits": (rows) => barChart(rows, { key: (r) => `${label(r.route)} / ${label(r.consumer)}`,
      series: [{ name: "rejected", column: "rejected", cls: "s4xx" }] }),
    slowest: slowestTable,
  };
  const TAKES_ROUTE = new Set(["traffic", "latency", "errors", "rate-limits", "slowest"]);

  function updateRouteChoices(latencyRows) {
    const select = controls.route;
    const known = new Set([...select.options].map((o) => o.value));
    for (const row of latencyRows) {
      if (!known.has(row.route) && row.route !== "") select.append(html("option", { value: row.route }, row.route));
    }
    select.value = selectedRoute;
  }

  async function refresh() {
    const since = controls.since.value;
    const names = Object.keys(PANELS);
    const results = await Promise.allSettled(names.map((name) =>
      fetchReport(name, { since, route: TAKES_ROUTE.has(name) ? selectedRoute : "" })));
    const problems = [];
    const data = {};
    names.forEach((name, i) => {
      const panel = document.querySelector(`[data-report="${name}"] .chart`);
      const result = results[i];
      if (result.status === "rejected") {
        problems.push(result.reason.message);
        return;
      }
      data[name] = result.value;
      panel.replaceChildren(...[].concat(PANELS[name](result.value)));
      panel.dataset.rows = result.value.length;
    });
    if (data.traffic && data.latency) {
      document.getElementById("totals").replaceChildren(...totals(data.traffic, data.latency));
    }
    if (data.latency) updateRouteChoices(data.latency);
    const problem = document.getElementById("problem");
    problem.hidden = problems.length === 0;
    problem.textContent = problems.join("; ");
    refreshes += 1;
    document.body.dataset.refreshes = refreshes;
    document.getElementById("updated").textContent =
      `updated ${new Date().toISOString().slice(11, 19)} UTC · every ${refreshSeconds} s`;
  }

  // Filters live in the address bar too, so a view can be bookmarked or shared.
  controls.addEventListener("change", () => {
    selectedRoute = controls.route.value;
    const next = new URL(location.href);
    next.searchParams.set("since", controls.since.value);
    if (selectedRoute) next.searchParams.set("route", selectedRoute);
    else next.searchParams.delete("route");
    history.replaceState(null, "", next);
    refresh();
  });

  // Poll with setTimeout after each refresh ends, so a slow store never piles up requests.
  async function loop() {
    try {
      await refresh();
    } catch (error) {
      const problem = document.getElementById("problem");
      problem.hidden = false;
      problem.textContent = String(error);
    }
    setTimeout(loop, refreshSeconds * 1000);
  }
  loop();
})();
