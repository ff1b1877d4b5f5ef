// The Resolved view (#/resolved): the resolved conversations one may see (an agent:
// their own; staff: all), the latest closed first, a page at a time, filtered by
// integration, agent, label, end user and the UTC dates of the closing
// (GET /api/tickets?state=resolved&...). A row opens the ticket with its transcript.

import { errorText, get } from "./api.js";
import { h, mount } from "./dom.js";
import { fullTime } from "./format.js";
import { store } from "./store.js";

const PER_PAGE = 25;
const FILTERS = ["integration", "agent", "label", "end_user", "from", "to"];

let host = null;
let parts = null;
let page = 1;
let asked = 0; // the latest request: older answers are dropped

function query() {
  const q = new URLSearchParams({ state: "resolved", page: String(page), per_page: String(PER_PAGE) });
  for (const name of FILTERS) {
    const value = parts[name].value.trim();
    if (value) q.set(name, value);
  }
  return q;
}

function row(t) {
  return h("tr", { dataset: { ticketId: String(t.id) } },
    h("td", {}, h("a", { href: `#/ticket/${t.id}`, class: "resolved-open" }, `#${t.id}`)),
    h("td", {}, h("span", { class: "resolved-user", dir: "auto", title: t.end_user }, t.end_user)),
    h("td", {}, t.assignee || "—"),
    h("td", {}, h("span", { class: "resolved-integration", title: t.integration_id }, t.integration_id)),
    h("td", { class: "resolved-labels" }, (t.labels || []).map((l) => h("span", { class: "label-chip", dir: "auto" }, l))),
    h("td", {}, fullTime(t.resolved_at)));
}

function table(out) {
  if (!out.tickets.length) return h("p", { class: "empty", id: "resolved-empty" }, "No resolved conversation matches.");
  return h("table", { class: "table resolved-table", id: "resolved-table" },
    h("thead", {}, h("tr", {}, ["Ticket", "End user", "Agent", "Integration", "Labels", "Resolved"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, out.tickets.map(row)));
}

function setError(text) {
  parts.error.textContent = text || "";
  parts.error.hidden = !text;
}

async function load() {
  const mine = ++asked;
  parts.results.setAttribute("aria-busy", "true");
  try {
    const out = await get(`/api/tickets?${query()}`);
    if (mine !== asked) return;
    setError("");
    const pages = Math.max(1, Math.ceil(out.total / PER_PAGE));
    mount(parts.results, table(out));
    parts.summary.textContent = `${out.total} resolved · page ${page} of ${pages}`;
    parts.prev.disabled = page <= 1;
    parts.next.disabled = page >= pages;
  } catch (err) {
    if (mine === asked) setError(errorText(err));
  } finally {
    if (mine === asked) parts.results.removeAttribute("aria-busy");
  }
}

function field(label, control) {
  return h("label", { class: "report-field" }, h("span", {}, label), control);
}

async function fillChoices() {
  try {
    const [agents, labels] = await Promise.all([get("/api/agents"), get("/api/labels")]);
    parts.agentList.replaceChildren(...agents.agents.map((a) => h("option", { value: a.username })));
    parts.labelList.replaceChildren(...labels.labels.map((l) => h("option", { value: l.label })));
  } catch {
    // the lists only help typing
  }
}

function build() {
  parts = {
    integration: h("input", { id: "resolved-integration", placeholder: "any", spellcheck: "false" }),
    agent: h("input", { id: "resolved-agent", placeholder: "any", list: "resolved-agents", spellcheck: "false" }),
    label: h("input", { id: "resolved-label", placeholder: "any", list: "resolved-labels", spellcheck: "false" }),
    end_user: h("input", { id: "resolved-end-user", placeholder: "any", spellcheck: "false" }),
    from: h("input", { type: "date", id: "resolved-from" }),
    to: h("input", { type: "date", id: "resolved-to" }),
    agentList: h("datalist", { id: "resolved-agents" }),
    labelList: h("datalist", { id: "resolved-labels" }),
    error: h("p", { class: "form-error", id: "resolved-error", role: "alert", hidden: true }),
    summary: h("p", { class: "muted", id: "resolved-summary", "aria-live": "polite" }),
    results: h("div", { class: "card-body", id: "resolved-results" }),
    prev: h("button", { type: "button", id: "resolved-prev" }, "Previous"),
    next: h("button", { type: "button", id: "resolved-next" }, "Next"),
  };
  if (!store.isStaff) parts.agent.value = store.me?.username || "";
  const form = h("form", { class: "report-controls", id: "resolved-form", novalidate: true },
    field("Integration", parts.integration), field("Agent", parts.agent), field("Label", parts.label),
    field("End user", parts.end_user), field("Resolved from", parts.from), field("to", parts.to),
    h("button", { type: "submit", class: "primary", id: "resolved-show" }, "Show"),
    parts.agentList, parts.labelList);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    page = 1;
    load();
  });
  for (const name of ["from", "to"]) parts[name].addEventListener("change", () => { page = 1; load(); });
  parts.prev.addEventListener("click", () => { page = Math.max(1, page - 1); load(); });
  parts.next.addEventListener("click", () => { page += 1; load(); });
  mount(host, h("div", { class: "reports resolved" },
    h("h1", { class: "view-title" }, "Resolved"),
    h("p", { class: "muted" }, store.isStaff
      ? "Resolved conversations, the latest closed first. Dates are UTC days of the closing."
      : "Your resolved conversations, the latest closed first. Dates are UTC days of the closing."),
    form, parts.error, parts.summary,
    h("section", { class: "card", "aria-label": "Resolved conversations" }, parts.results,
      h("div", { class: "pager" }, parts.prev, parts.next))));
}

/** Show the view (`el`: its section): built once, then the current filters reloaded. */
export function showResolved(el, on) {
  if (!on) return;
  if (host !== el) {
    host = el;
    parts = null;
  }
  if (!parts) {
    page = 1;
    build();
    fillChoices();
  }
  load();
}
