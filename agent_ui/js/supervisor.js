// The supervisor's view: live queue with over-threshold highlight, colleagues
// with presence and load, assign / re-assign any conversation, and a chart of
// queue length and waiting times that follows the stream.

import { assign } from "./actions.js";
import { get } from "./api.js";
import { counter, elapsedSeconds, everySecond, refreshCounters } from "./clock.js";
import { badge, h, mount } from "./dom.js";
import { duration, langLabel, roughDuration } from "./format.js";
import { queueChart } from "./chart.js";
import { store } from "./store.js";

const HOURS = 4;
const BUCKET_SECONDS = 300;
const HISTORY_EVERY_MS = 60_000;

let host = null;
let active = false;
let history = [];
let historyTimer = null;
let refetchTimer = null;
let parts = null;
const choices = new Map(); // ticket id -> username picked in its select

function statCard(label, value, id, extra = "") {
  return h("div", { class: ["stat", extra], id },
    h("span", { class: "stat-value" }, value), h("span", { class: "stat-label" }, label));
}

function agentsSorted() {
  return [...store.agents.values()].sort((a, b) =>
    Number(b.online) - Number(a.online) || a.username.localeCompare(b.username));
}

function assignControl(t) {
  const id = `assign-${t.id}`;
  const select = h("select", { id, "aria-label": `Assign conversation #${t.id} to`, class: "assign-select" },
    h("option", { value: "" }, t.state === "queued" ? "Assign to…" : "Re-assign to…"));
  for (const a of agentsSorted()) {
    if (a.username === t.assignee) continue;
    select.append(h("option", { value: a.username },
      `${a.username} (${a.online ? "online" : "offline"}, ${store.loadOf(a.username)} open)`));
  }
  if (t.state === "assigned") select.append(h("option", { value: "__queue__" }, "Back to the queue"));
  select.value = choices.get(t.id) || "";
  select.addEventListener("change", () => choices.set(t.id, select.value));
  const button = h("button", {
    type: "button", class: "small-button", id: `assign-go-${t.id}`,
    onclick: async () => {
      const to = select.value;
      if (!to) {
        select.focus();
        return;
      }
      button.disabled = true;
      if (await assign(t.id, to === "__queue__" ? null : to)) choices.delete(t.id);
      button.disabled = false;
    },
  }, "Assign");
  return h("div", { class: "assign" }, select, button);
}

function ticketLink(t) {
  return h("a", { href: `#/ticket/${t.id}`, class: "row-link", dir: "auto", title: t.end_user || null }, t.end_user || `#${t.id}`);
}

function badges(t) {
  return h("span", { class: "badges" },
    t.lang ? badge(langLabel(t.lang), "lang") : null,
    t.platform ? badge(t.platform, "platform") : null,
    t.category ? badge(t.category, "category") : null);
}

function queueTable() {
  const queued = store.queued();
  if (!queued.length) return h("p", { class: "empty" }, "Nobody is waiting.");
  return h("table", { class: "table", id: "sup-queue" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "#"), h("th", { scope: "col" }, "End user"),
      h("th", { scope: "col" }, "Tags"), h("th", { scope: "col" }, "Waiting"), h("th", { scope: "col" }, "Assign"))),
    h("tbody", {}, queued.map((t) => h("tr", { dataset: { ticketId: String(t.id), overHost: "" } },
      h("td", { class: "num" }, String(t.id)), h("td", {}, ticketLink(t)), h("td", {}, badges(t)),
      h("td", {}, counter(t.opened_at, store.threshold, "span", "counter wait")),
      h("td", {}, assignControl(t))))));
}

function assignedTable() {
  const assigned = [...store.mine(), ...store.others()].sort((a, b) => (a.claimed_at || "").localeCompare(b.claimed_at || ""));
  if (!assigned.length) return h("p", { class: "empty" }, "No conversation is with an agent right now.");
  return h("table", { class: "table", id: "sup-assigned" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "#"), h("th", { scope: "col" }, "End user"),
      h("th", { scope: "col" }, "Agent"), h("th", { scope: "col" }, "Waited"), h("th", { scope: "col" }, "First reply"),
      h("th", { scope: "col" }, "With agent for"), h("th", { scope: "col" }, "Re-assign"))),
    h("tbody", {}, assigned.map((t) => h("tr", { dataset: { ticketId: String(t.id) } },
      h("td", { class: "num" }, String(t.id)), h("td", {}, ticketLink(t), badges(t)),
      h("td", { class: "assignee" }, h("span", { class: "cut name-cut", title: t.assignee || null }, t.assignee || "—")),
      h("td", {}, duration(t.wait_seconds)),
      h("td", {}, t.first_response_seconds == null ? h("span", { class: "muted" }, "not yet") : duration(t.first_response_seconds)),
      h("td", {}, counter(t.claimed_at, null)),
      h("td", {}, assignControl(t))))));
}

function agentsList() {
  const agents = agentsSorted();
  if (!agents.length) return h("p", { class: "empty" }, "No colleagues yet.");
  const max = Math.max(3, ...agents.map((a) => store.loadOf(a.username)));
  return h("ul", { class: "agents", id: "sup-agents" }, agents.map((a) => {
    const load = store.loadOf(a.username);
    return h("li", { class: ["agent", a.online ? "online" : "offline"], dataset: { username: a.username } },
      h("span", { class: ["presence", a.online ? "online" : "offline"], title: a.online ? "online" : "offline" }),
      h("span", { class: "agent-name", title: a.username }, a.username),
      h("span", { class: "agent-role" }, a.role),
      h("meter", { class: "load", min: "0", max: String(max), value: String(load), "aria-label": `${a.username} load` }),
      h("span", { class: "agent-load" }, `${load} open`));
  }));
}

function stats() {
  const queued = store.queued();
  const oldest = queued[0];
  const over = queued.filter((t) => (elapsedSeconds(t.opened_at) ?? 0) > store.threshold).length;
  const online = [...store.agents.values()].filter((a) => a.online).length;
  return [
    statCard("waiting now", String(queued.length), "stat-waiting"),
    statCard("longest wait", oldest ? counter(oldest.opened_at, store.threshold, "span", "counter") : "—", "stat-oldest", over ? "over" : ""),
    statCard(`over ${roughDuration(store.threshold)}`, String(over), "stat-over", over ? "over" : ""),
    statCard("colleagues online", String(online), "stat-online"),
    statCard("with agents", String(store.mine().length + store.others().length), "stat-assigned"),
  ];
}

function liveHistory() {
  // the stored history plus "now" computed from the live queue
  const queued = store.queued();
  const now = {
    at: new Date().toISOString(), waiting: queued.length,
    oldest_wait_seconds: queued.length ? elapsedSeconds(queued[0].opened_at) : 0,
    mean_wait_seconds: null,
  };
  return [...history, now];
}

function renderChart() {
  if (!parts) return;
  mount(parts.chart, queueChart(liveHistory(), store.threshold, parts.chart.clientWidth || 760));
}

function render() {
  if (!host || !active) return;
  const focusedId = document.activeElement?.id;
  mount(parts.stats, ...stats());
  mount(parts.queue, queueTable());
  mount(parts.assigned, assignedTable());
  mount(parts.agents, agentsList());
  renderChart();
  refreshCounters(host);
  if (focusedId) document.getElementById(focusedId)?.focus();
}

async function loadHistory() {
  try {
    const data = await get(`/api/queue/history?hours=${HOURS}&bucket_seconds=${BUCKET_SECONDS}`);
    history = data.points || [];
    renderChart();
  } catch {
    /* the chart keeps its last data */
  }
}

function soon() {
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(loadHistory, 2000);
}

function build() {
  parts = {
    stats: h("div", { class: "stats", id: "sup-stats" }),
    chart: h("div", { class: "chart-host", id: "sup-chart" }),
    queue: h("div", { class: "card-body" }),
    assigned: h("div", { class: "card-body" }),
    agents: h("div", { class: "card-body" }),
  };
  let lastWidth = 0;
  new ResizeObserver(() => {
    const w = parts.chart.clientWidth;
    if (active && Math.abs(w - lastWidth) > 8) {
      lastWidth = w;
      renderChart();
    }
  }).observe(parts.chart);
  mount(host, h("div", { class: "sup" },
    h("h1", { class: "view-title" }, "Supervisor"),
    parts.stats,
    h("section", { class: "card chart-card", "aria-labelledby": "chart-title" },
      h("div", { class: "card-head" }, h("h2", { id: "chart-title" }, `Queue, last ${HOURS} hours`),
        h("ul", { class: "legend" },
          h("li", { class: "legend-waiting" }, "waiting"),
          h("li", { class: "legend-oldest" }, "longest wait (min)"),
          h("li", { class: "legend-mean" }, "mean wait when taken (min)"),
          h("li", { class: "legend-threshold" }, "threshold"))),
      parts.chart),
    h("div", { class: "sup-grid" },
      h("section", { class: "card", "aria-labelledby": "sup-queue-title" }, h("h2", { id: "sup-queue-title" }, "Waiting"), parts.queue),
      h("section", { class: "card", "aria-labelledby": "sup-agents-title" }, h("h2", { id: "sup-agents-title" }, "Colleagues"), parts.agents)),
    h("section", { class: "card", "aria-labelledby": "sup-assigned-title" }, h("h2", { id: "sup-assigned-title" }, "With agents"), parts.assigned)));
}

export function showSupervisor(on) {
  active = on;
  clearInterval(historyTimer);
  if (!on) return;
  if (!parts) build();
  render();
  loadHistory();
  store.loadAgents();
  historyTimer = setInterval(loadHistory, HISTORY_EVERY_MS);
}

export function initSupervisor(el) {
  host = el;
  store.on("tickets", () => {
    render();
    if (active) soon();
  });
  store.on("agents", render);
  let tick = 0;
  everySecond(() => {
    if (!active) return;
    tick += 1;
    if (tick % 5 === 0) {
      renderChart();
      mount(parts.stats, ...stats());
      refreshCounters(parts.stats);
    }
  });
}
