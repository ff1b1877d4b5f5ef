// Beside an open ticket, the end user's earlier conversations (GET
// /api/tickets/{id}/history: the earlier tickets of the same conversation one may
// open), each a link to the ticket with its whole transcript.

import { get } from "./api.js";
import { h, mount } from "./dom.js";
import { fullTime } from "./format.js";

const FRESH_MS = 60_000;
const cache = new Map(); // ticket id -> {at, tickets}
// Tickets whose box the agent opened: it stays open when the ticket view is drawn
// again (a stream event re-renders it).
const opened = new Set();

function entry(t) {
  return h("li", {},
    h("a", { href: `#/ticket/${t.id}`, class: "earlier-link", dataset: { ticketId: String(t.id) } },
      h("span", { class: "ticket-id" }, `#${t.id}`), " ",
      h("span", {}, fullTime(t.resolved_at || t.opened_at)),
      t.assignee ? h("span", { class: "muted" }, ` · ${t.assignee}`) : null,
      (t.labels || []).length ? h("span", { class: "muted" }, ` · ${t.labels.join(", ")}`) : null));
}

function fill(el, tickets) {
  el.hidden = !tickets.length;
  if (!tickets.length) return;
  const id = Number(el.dataset.ticketId);
  const box = h("details", { open: opened.has(id) },
    h("summary", {}, `Earlier conversations (${tickets.length})`),
    h("ul", { class: "earlier-list" }, tickets.map(entry)));
  box.addEventListener("toggle", () => {
    if (box.open) opened.add(id); else opened.delete(id);
  });
  mount(el, box);
}

/** The earlier conversations of ticket `id`: a box filled from a cache or when loaded. */
export function earlierConversations(id) {
  const el = h("div", { class: "earlier", id: "earlier-conversations", hidden: true, dataset: { ticketId: String(id) } });
  const known = cache.get(id);
  if (known) fill(el, known.tickets);
  if (!known || Date.now() - known.at > FRESH_MS) {
    get(`/api/tickets/${id}/history`).then((out) => {
      cache.set(id, { at: Date.now(), tickets: out.tickets });
      const shown = document.querySelector(`#earlier-conversations[data-ticket-id="${id}"]`);
      if (shown) fill(shown, out.tickets);
    }).catch(() => {});
  }
  return el;
}
