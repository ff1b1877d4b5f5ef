// The supervisor's view: live queue with over-threshold highlight, the queue by
// category and language, first-response breaches highlighted and counted,
// colleagues with status, console, open conversations against capacity and the
// oldest they hold, assign / re-assign any conversation, and a chart of queue
// length and waiting times that follows the stream.
//
// Tickets come from the store (live from frames). Colleagues (GET /api/agents)
// and the queue overview (GET /api/queue: the groups, each integration's
// first-response target) are fetched again shortly after any frame that may
// change them, and every 30 s.

import { assign } from "./actions.js";
import { get, serverNow } from "./api.js";
import { counter, elapsedSeconds, everySecond, refreshCounters } from "./clock.js";
import { badge, h, mount } from "./dom.js";
import { duration, langLabel, roughDuration } from "./format.js";
import { queueChart } from "./chart.js";
import { store } from "./store.js";

const HOURS = 4;
const BUCKET_SECONDS = 300;
const HISTORY_EVERY_MS = 60_000;
const LIVE_EVERY_MS = 30_000;
const LIVE_DEBOUNCE_MS = 400;
const LIVE_FRAMES = new Set(["ticket.created", "ticket.updated", "user.status", "presence"]);
const STATUS_LABEL = { online: "Online", away: "Away", offline: "Offline" };
const STATUS_ORDER = { online: 0, away: 1, offline: 2 };

let host = null;
let active = false;
let history = [];
let historyTimer = null;
let refetchTimer = null;
let parts = null;
let liveTimer = null;
let liveEvery = null;
let overview = null; // the last GET /api/queue, with `fetchedAt` (server clock, ms)
const choices = new Map(); // ticket id -> username picked in its select

function statCard(label, value, id, extra = "") {
  return h("div", { class: ["stat", extra], id },
    h("span", { class: "stat-value" }, value), h("span", { class: "stat-label" }, label));
}

function agentsSorted() {
  return [...store.agents.values()].sort((a, b) =>
    (STATUS_ORDER[a.status] ?? 3) - (STATUS_ORDER[b.status] ?? 3)
    || Number(Boolean(b.connected)) - Number(Boolean(a.connected))
    || a.username.localeCompare(b.username));
}

// --- first-response breaches ---------------------------------------------------

/** The first-response target of the ticket's integration, in seconds (null: none). */
function targetOf(t) {
  const target = overview?.first_response_targets?.[t.integration_id];
  return typeof target === "number" && target > 0 ? target : null;
}

/** Open, not answered yet, and older than its integration's first-response target. */
function breaching(t) {
  if (t.first_response_at || (t.state !== "queued" && t.state !== "assigned")) return false;
  const target = targetOf(t);
  return target !== null && (elapsedSeconds(t.opened_at) ?? 0) > target;
}

function breaches() {
  return [...store.queued(), ...store.mine(), ...store.others()].filter(breaching);
}

function breachFlag(t) {
  const target = targetOf(t);
  return h("span", {
    class: "breach-flag", hidden: true,
    title: target ? `No first reply within the target of ${roughDuration(target)}` : null,
  }, "First reply overdue");
}

/** Mark the rows past their target and count them (each second: time alone makes a breach). */
function markBreaches() {
  if (!parts) return;
  const ids = new Set(breaches().map((t) => String(t.id)));
  for (const row of host.querySelectorAll("#sup-queue tr[data-ticket-id], #sup-assigned tr[data-ticket-id]")) {
    const on = ids.has(row.dataset.ticketId);
    row.classList.toggle("breach", on);
    if (on) row.dataset.breach = "1";
    else delete row.dataset.breach;
    const flag = row.querySelector(".breach-flag");
    if (flag) flag.hidden = !on;
  }
  const card = parts.stats.querySelector("#stat-breaches");
  if (card) {
    const value = card.querySelector(".stat-value");
    if (value.textContent !== String(ids.size)) value.textContent = String(ids.size);
    card.classList.toggle("over", ids.size > 0);
  }
}

function assignControl(t) {
  const id = `assign-${t.id}`;
  const select = h("select", { id, "aria-label": `Assign conversation #${t.id} to`, class: "assign-select" },
    h("option", { value: "" }, t.state === "queued" ? "Assign to…" : "Re-assign to…"));
  for (const a of agentsSorted()) {
    if (a.username === t.assignee) continue;
    const cap = a.max_concurrent ? ` / ${a.max_concurrent}` : " open";
    select.append(h("option", { value: a.username },
      `${a.username} (${STATUS_LABEL[a.status] || (a.online ? "online" : "offline")}, ${store.loadOf(a.username)}${cap})`));
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
      h("td", { class: "num" }, String(t.id)), h("td", {}, ticketLink(t)), h("td", {}, badges(t), breachFlag(t)),
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
      h("td", { class: "num" }, String(t.id)), h("td", {}, ticketLink(t), badges(t), breachFlag(t)),
      h("td", { class: "assignee" }, h("span", { class: "cut name-cut", title: t.assignee || null }, t.assignee || "—")),
      h("td", {}, duration(t.wait_seconds)),
      h("td", {}, t.first_response_seconds == null ? h("span", { class: "muted" }, "not yet") : duration(t.first_response_seconds)),
      h("td", {}, counter(t.claimed_at, null)),
      h("td", {}, assignControl(t))))));
}

/** The opening time of the oldest open conversation `username` holds (live, from the store). */
function oldestHeld(username) {
  let oldest = null;
  for (const t of store.tickets.values()) {
    if (t.state === "assigned" && t.assignee === username && (!oldest || t.opened_at < oldest)) oldest = t.opened_at;
  }
  return oldest;
}

function agentsList() {
  const agents = agentsSorted();
  if (!agents.length) return h("p", { class: "empty" }, "No colleagues yet.");
  return h("ul", { class: "agents", id: "sup-agents" }, agents.map((a) => {
    const load = store.loadOf(a.username);
    const cap = a.max_concurrent || null;
    const status = STATUS_LABEL[a.status] ? a.status : "offline";
    const oldest = oldestHeld(a.username);
    const full = cap !== null && load >= cap;
    return h("li", {
      class: ["agent", a.online ? "online" : "offline", `status-${status}`, full && "full", cap !== null && load > cap && "above"],
      dataset: { username: a.username, status, connected: String(Boolean(a.connected)) },
    },
    h("span", { class: ["presence", `status-${status}`], "aria-hidden": "true" }),
    h("span", { class: "agent-name", title: a.username }, a.username),
    h("span", { class: "agent-status" }, STATUS_LABEL[status]),
    h("span", { class: "agent-load", title: cap ? `${load} open conversations, capacity ${cap}` : `${load} open conversations` },
      cap ? `${load} / ${cap}` : `${load} open`),
    h("span", { class: "agent-meta" }, h("span", { class: "agent-role" }, a.role), " · ",
      h("span", { class: "agent-console" }, a.connected ? "console open" : "no console")),
    h("meter", {
      class: "load", min: "0", max: String(cap || Math.max(3, load)), value: String(load),
      high: cap ? String(Math.max(cap - 0.5, 0)) : null, "aria-label": `${a.username}: ${load} open${cap ? ` of ${cap}` : ""}`,
    }),
    h("span", { class: "agent-oldest", title: "Waiting time of the oldest conversation they hold, since its handover" },
      oldest ? counter(oldest, null, "span", "counter") : "—"));
  }));
}

// --- the queue by category and by language ---------------------------------------

function since(seconds) {
  return new Date(overview.fetchedAt - seconds * 1000).toISOString();
}

function groupTable(id, label, groups, show) {
  if (!overview) return h("p", { class: "empty loading" }, "Loading…");
  if (!groups.length) return h("p", { class: "empty" }, "Nobody is waiting.");
  return h("table", { class: "table groups", id },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, label), h("th", { scope: "col" }, "Waiting"),
      h("th", { scope: "col" }, "Longest wait"))),
    h("tbody", {}, groups.map((g) => h("tr", { dataset: { key: g.key ?? "", overHost: "" } },
      h("td", {}, g.key === null ? h("span", { class: "muted" }, "none")
        : h("span", { class: "cut group-key", title: g.key }, show(g.key))),
      h("td", { class: "num group-waiting" }, String(g.waiting)),
      h("td", {}, counter(since(g.oldest_wait_seconds), store.threshold, "span", "counter wait"))))));
}

function groups() {
  return h("div", { class: "groups-grid" },
    groupTable("sup-by-category", "Category", overview?.by_category || [], (k) => k),
    groupTable("sup-by-language", "Language", overview?.by_language || [], langLabel));
}

function stats() {
  const queued = store.queued();
  const oldest = queued[0];
  const over = queued.filter((t) => (elapsedSeconds(t.opened_at) ?? 0) > store.threshold).length;
  const online = [...store.agents.values()].filter((a) => a.online).length;
  const overdue = breaches().length;
  return [
    statCard("waiting now", String(queued.length), "stat-waiting"),
    statCard("longest wait", oldest ? counter(oldest.opened_at, store.threshold, "span", "counter") : "—", "stat-oldest", over ? "over" : ""),
    statCard(`over ${roughDuration(store.threshold)}`, String(over), "stat-over", over ? "over" : ""),
    statCard("first replies overdue", String(overdue), "stat-breaches", overdue ? "over" : ""),
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
  mount(parts.groups, groups());
  renderChart();
  refreshCounters(host);
  markBreaches();
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

async function loadOverview() {
  try {
    const data = await get("/api/queue");
    overview = { ...data, fetchedAt: serverNow() };
    if (active && parts) {
      mount(parts.groups, groups());
      refreshCounters(parts.groups);
      markBreaches();
    }
  } catch {
    /* the groups keep their last data */
  }
}

/** Colleagues and the queue overview again, shortly (several frames make one fetch). */
function refreshLive() {
  clearTimeout(liveTimer);
  liveTimer = setTimeout(() => {
    if (!active) return;
    loadOverview();
    store.loadAgents();
  }, LIVE_DEBOUNCE_MS);
}

function build() {
  parts = {
    stats: h("div", { class: "stats", id: "sup-stats" }),
    chart: h("div", { class: "chart-host", id: "sup-chart" }),
    queue: h("div", { class: "card-body" }),
    assigned: h("div", { class: "card-body" }),
    agents: h("div", { class: "card-body" }),
    groups: h("div", { class: "card-body" }),
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
    h("section", { class: "card", "aria-labelledby": "sup-groups-title" },
      h("h2", { id: "sup-groups-title" }, "Waiting by category and language"), parts.groups),
    h("section", { class: "card", "aria-labelledby": "sup-assigned-title" }, h("h2", { id: "sup-assigned-title" }, "With agents"), parts.assigned)));
}

export function showSupervisor(on) {
  active = on;
  clearInterval(historyTimer);
  clearInterval(liveEvery);
  clearTimeout(liveTimer);
  if (!on) {
    overview = null;
    return;
  }
  if (!parts) build();
  render();
  loadHistory();
  loadOverview();
  store.loadAgents();
  historyTimer = setInterval(loadHistory, HISTORY_EVERY_MS);
  liveEvery = setInterval(refreshLive, LIVE_EVERY_MS);
}

export function initSupervisor(el) {
  host = el;
  store.on("tickets", () => {
    render();
    if (active) soon();
  });
  store.on("agents", render);
  store.on("frame", (frame) => {
    if (active && LIVE_FRAMES.has(frame.type)) refreshLive();
  });
  let tick = 0;
  everySecond(() => {
    if (!active) return;
    markBreaches();
    tick += 1;
    if (tick % 5 === 0) {
      renderChart();
      mount(parts.stats, ...stats());
      refreshCounters(parts.stats);
    }
  });
}
