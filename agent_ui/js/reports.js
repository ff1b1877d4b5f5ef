// The reports view (supervisors and admins): the tickets handed over in a range of
// UTC dates, per day, agent, integration or category (GET /api/reports/tickets), a
// chart of handovers per day with the median wait, and the CSV of the range;
// satisfaction (average, ratings 1 to 5, surveys answered) from csat.js.

import { errorText, get, serverNow } from "./api.js";
import { CSAT_COLUMNS } from "./csat.js";
import { h, mount } from "./dom.js";
import { duration } from "./format.js";
import { reportChart } from "./report-chart.js";

const DAY_MS = 86_400_000;
const DEFAULT_DAYS = 7;
const GROUPINGS = [["day", "Day"], ["agent", "Agent"], ["integration", "Integration"], ["category", "Category"]];
const COLUMNS = [
  ["handovers", "Handovers", String],
  ["wait_median_seconds", "Median wait", duration],
  ["wait_p90_seconds", "p90 wait", duration],
  ["first_response_median_seconds", "Median first response", duration],
  ["first_response_p90_seconds", "p90 first response", duration],
  ["handling_median_seconds", "Median handling", duration],
  ["requeues", "Re-queues", String],
  ["auto_resolved", "Auto-resolved", String],
  ...CSAT_COLUMNS,
];

let host = null;
let parts = null;
let days = [];
let asked = 0; // the latest request: older answers are dropped

/** "YYYY-MM-DD" (UTC) of a time in milliseconds. */
function utcDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

function query() {
  const q = new URLSearchParams({ from: parts.from.value, to: parts.to.value });
  if (parts.label.value.trim()) q.set("label", parts.label.value.trim());
  return q;
}

function csvHref() {
  return new URL(`/api/reports/tickets.csv?${query()}`, location.origin).href;
}

function cell(column, group) {
  const [key, , show, read] = column;
  const value = read ? read(group) : group[key];
  return h("td", { class: "num" }, value === null || value === undefined ? "—" : show(value));
}

function row(group, by) {
  const label = by === "integration" && group.key ? `${group.label} (${group.key})` : group.label;
  return h("tr", { dataset: { key: group.key ?? "" } },
    h("th", { scope: "row" }, h("span", { class: "report-label", title: label }, label)),
    COLUMNS.map((c) => cell(c, group)));
}

function table(report) {
  const heading = GROUPINGS.find(([value]) => value === report.by)[1];
  if (!report.total.handovers) return h("p", { class: "empty", id: "report-empty" }, "No handover in this range.");
  return h("table", { class: "table report-table", id: "report-table" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, heading), COLUMNS.map(([, title]) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, report.groups.map((g) => row(g, report.by))),
    h("tfoot", {}, row({ ...report.total, label: "All" }, report.by)));
}

function renderChart() {
  mount(parts.chart, reportChart(days, parts.chart.clientWidth || 760));
}

function setError(text) {
  parts.error.textContent = text || "";
  parts.error.hidden = !text;
}

async function load() {
  const mine = ++asked;
  const by = parts.by.value;
  parts.csv.href = csvHref();
  parts.csv.setAttribute("download", `tickets-${parts.from.value}-to-${parts.to.value}.csv`);
  parts.table.setAttribute("aria-busy", "true");
  try {
    const perDay = await get(`/api/reports/tickets?${query()}&by=day`);
    const grouped = by === "day" ? perDay : await get(`/api/reports/tickets?${query()}&by=${encodeURIComponent(by)}`);
    if (mine !== asked) return;
    setError("");
    days = perDay.groups;
    renderChart();
    mount(parts.table, table(grouped));
    parts.summary.textContent = `${perDay.total.handovers} handovers from ${perDay.from} to ${perDay.to} (UTC dates)`;
  } catch (err) {
    if (mine === asked) setError(errorText(err));
  } finally {
    if (mine === asked) parts.table.removeAttribute("aria-busy");
  }
}

function field(label, control) {
  return h("label", { class: "report-field" }, h("span", {}, label), control);
}

function build() {
  const today = serverNow();
  parts = {
    from: h("input", { type: "date", id: "report-from", value: utcDay(today - (DEFAULT_DAYS - 1) * DAY_MS), required: true }),
    to: h("input", { type: "date", id: "report-to", value: utcDay(today), required: true }),
    by: h("select", { id: "report-by" }, GROUPINGS.map(([value, label]) => h("option", { value }, label))),
    label: h("input", { type: "text", id: "report-label", maxlength: "50", autocomplete: "off", spellcheck: "false", placeholder: "any" }),
    csv: h("a", { id: "report-csv", class: "button-link" }, "Download CSV"),
    error: h("p", { class: "form-error", id: "report-error", role: "alert", hidden: true }),
    summary: h("p", { class: "muted report-summary", id: "report-summary", "aria-live": "polite" }),
    chart: h("div", { class: "chart-host", id: "report-chart" }),
    table: h("div", { class: "card-body", id: "report-groups" }),
  };
  const form = h("form", { class: "report-controls", id: "report-form", novalidate: true },
    field("From", parts.from), field("To", parts.to), field("Group by", parts.by), field("Label", parts.label),
    h("button", { type: "submit", class: "primary", id: "report-show" }, "Show"), parts.csv);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    load();
  });
  for (const control of [parts.from, parts.to, parts.by, parts.label]) control.addEventListener("change", load);
  let lastWidth = 0;
  new ResizeObserver(() => {
    const w = parts.chart.clientWidth;
    if (Math.abs(w - lastWidth) > 8) {
      lastWidth = w;
      renderChart();
    }
  }).observe(parts.chart);
  mount(host, h("div", { class: "reports" },
    h("h1", { class: "view-title" }, "Reports"),
    h("p", { class: "muted" }, "Tickets by the UTC date of their handover. Waits and first responses are measured from the handover, handling from the first assignment to the resolution."),
    form, parts.error, parts.summary,
    h("section", { class: "card chart-card", "aria-labelledby": "report-chart-title" },
      h("div", { class: "card-head" }, h("h2", { id: "report-chart-title" }, "Handovers per day"),
        h("ul", { class: "legend" },
          h("li", { class: "legend-handovers" }, "handovers"),
          h("li", { class: "legend-median" }, "median wait (min)"))),
      parts.chart),
    h("section", { class: "card", "aria-labelledby": "report-groups-title" },
      h("h2", { id: "report-groups-title" }, "Figures"), parts.table)));
}

/** Show or hide the view (`el`: its section); shown, it loads the current range. */
export function showReports(el, on) {
  if (!on) return;
  if (host !== el) {
    host = el;
    parts = null;
  }
  if (!parts) build();
  load();
}
