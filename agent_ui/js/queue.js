// The sidebar of the agent view: the queue (oldest first, live wait counters,
// badges) and "my conversations"; staff also see their colleagues' ones. Each
// ticket shows its labels, and a box above the lists keeps only the tickets with one
// label; a link at the end opens the Resolved view (#/resolved).

import { counter, refreshCounters } from "./clock.js";
import { badge, h, mount } from "./dom.js";
import { langLabel, reasonLabel } from "./format.js";
import { store } from "./store.js";

let host = null;
let listsHost = null;
let labelBox = null;
let labelOptions = null;
let selectedId = null;

/** The label the lists are narrowed to ("" for all), as stored: trimmed, lower-case. */
function labelFilter() {
  return labelBox ? labelBox.value.trim().toLowerCase() : "";
}

function labelled(tickets) {
  const label = labelFilter();
  return label ? tickets.filter((t) => (t.labels || []).includes(label)) : tickets;
}

function fillLabelOptions() {
  const used = new Set([...store.tickets.values()].flatMap((t) => t.labels || []));
  const have = [...labelOptions.children].map((o) => o.value).join("\n");
  const want = [...used].sort();
  if (have !== want.join("\n")) labelOptions.replaceChildren(...want.map((l) => h("option", { value: l })));
}

function titled(el, label) {
  el.title = label;
  return el;
}

function item(t, { showAssignee = false } = {}) {
  const queued = t.state === "queued";
  const unread = store.unread.has(t.id);
  const fresh = store.justAssigned.has(t.id);
  return h("a", {
    class: ["ticket-item", unread && "unread", fresh && "just-assigned"],
    href: `#/ticket/${t.id}`,
    dataset: { ticketId: String(t.id), state: t.state, overHost: "", ...(fresh ? { justAssigned: "1" } : {}) },
    "aria-current": t.id === selectedId ? "true" : null,
  },
  h("span", { class: "ticket-line" },
    h("span", { class: "ticket-user", dir: "auto", title: t.end_user || "" }, t.end_user || `Ticket #${t.id}`),
    fresh ? h("span", { class: "fresh-tag", title: "Assigned to you, not opened yet" }, "New") : null,
    unread ? h("span", { class: "unread-dot", title: "New message" }, h("span", { class: "visually-hidden" }, "new message")) : null,
    queued
      ? titled(counter(t.opened_at, store.threshold, "span", "counter wait"), "Waiting for")
      : titled(counter(t.claimed_at || t.opened_at, null, "span", "counter open"), "With an agent for")),
  h("span", { class: "ticket-line badges" },
    t.lang ? badge(langLabel(t.lang), "lang") : null,
    t.platform ? badge(t.platform, "platform") : null,
    t.category ? badge(t.category, "category") : null,
    showAssignee && t.assignee ? badge(t.assignee, "assignee") : null,
    (t.labels || []).map((l) => badge(l, "label")),
    !t.category && queued ? h("span", { class: "reason" }, reasonLabel(t.reason)) : null));
}

function section(id, title, tickets, empty, opts) {
  return h("section", { class: "list-section", "aria-labelledby": id },
    h("h2", { id, class: "list-title" }, title, h("span", { class: "count", "aria-label": `${tickets.length} conversations` }, String(tickets.length))),
    tickets.length
      ? h("nav", { class: "ticket-items", "aria-label": title }, tickets.map((t) => item(t, opts)))
      : h("p", { class: "empty" }, empty));
}

export function renderLists() {
  if (!host) return;
  const focusedId = document.activeElement?.closest?.(".ticket-item")?.dataset.ticketId;
  const parts = [
    section("list-queue", "Waiting", labelled(store.queued()), "No one is waiting. A chime will announce new conversations."),
    section("list-mine", "My conversations", labelled(store.mine()), "Claim a waiting conversation to start."),
  ];
  if (store.isStaff) {
    parts.push(section("list-others", "With colleagues", labelled(store.others()), "No colleague has an open conversation.", { showAssignee: true }));
  }
  parts.push(h("p", { class: "list-more" },
    h("a", { href: "#/resolved", id: "resolved-link" }, "Resolved conversations →")));
  mount(listsHost, ...parts);
  fillLabelOptions();
  refreshCounters(host);
  if (focusedId) host.querySelector(`.ticket-item[data-ticket-id="${CSS.escape(focusedId)}"]`)?.focus();
}

export function selectTicket(id) {
  selectedId = id;
  renderLists();
}

/** Ticket ids in the order shown (for j/k navigation). */
export function ticketOrder() {
  return labelled([...store.queued(), ...store.mine(), ...(store.isStaff ? store.others() : [])]).map((t) => t.id);
}

export function initQueue(el) {
  host = el;
  labelBox = h("input", {
    id: "list-label-filter", type: "search", list: "list-label-options", maxlength: "50", autocomplete: "off",
    spellcheck: "false", placeholder: "Filter by label", "aria-label": "Show only the conversations with this label",
  });
  labelBox.addEventListener("input", renderLists);
  labelOptions = h("datalist", { id: "list-label-options" });
  listsHost = h("div", { class: "lists" });
  mount(host, h("div", { class: "list-filter" }, labelBox, labelOptions), listsHost);
  store.on("tickets", renderLists);
  store.on("unread", renderLists);
  renderLists();
}
