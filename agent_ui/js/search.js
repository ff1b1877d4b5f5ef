// Search: a box above the ticket lists opens a dialog over GET /api/search. Each result
// is a link to its ticket scrolled to the message (#/ticket/<id>/m/<message id>); the
// snippet's matched words are <mark> elements made here around Text nodes, never markup.

import { errorText, get } from "./api.js";
import { h, mount } from "./dom.js";
import { fullTime } from "./format.js";

const KIND = { user: "End user", bot: "Bot", agent: "Agent", note: "Internal note" };
const PAGE = 20;

let dialog = null;
let form = null;
let input = null;
let stateSelect = null;
let list = null;
let more = null;
let status = null;
let query = null; // the parameters of the results on screen
let nextBefore = null;

/** The snippet's parts ([text, matched]) as Text nodes and <mark> elements. */
export function snippetNodes(parts) {
  return parts.map(([text, matched]) => (matched ? h("mark", {}, String(text)) : document.createTextNode(String(text))));
}

function resultItem(r) {
  return h("li", {},
    h("a", {
      class: "search-hit", href: `#/ticket/${Number(r.ticket_id)}/m/${Number(r.message_id)}`,
      dataset: { ticket: String(r.ticket_id), message: String(r.message_id) },
      onclick: () => dialog.close(),
    },
    h("span", { class: "search-meta" }, `#${r.ticket_id} · ${KIND[r.kind] || r.kind} · ${fullTime(r.created_at)}`),
    h("span", { class: "search-snippet", dir: "auto" }, snippetNodes(r.snippet))));
}

async function load(append) {
  const params = new URLSearchParams({ ...query, limit: String(PAGE) });
  if (append && nextBefore !== null) params.set("before", String(nextBefore));
  status.textContent = "Searching…";
  more.hidden = true;
  try {
    const page = await get(`/api/search?${params}`);
    if (!append) mount(list);
    for (const r of page.results) list.append(resultItem(r));
    nextBefore = page.next_before;
    more.hidden = nextBefore === null;
    const shown = list.children.length;
    status.textContent = shown ? `${shown}${nextBefore === null ? "" : "+"} message${shown === 1 ? "" : "s"} found.` : "Nothing found.";
  } catch (err) {
    if (!append) mount(list);
    status.textContent = `Could not search: ${errorText(err)}`;
  }
}

function submit(ev) {
  ev.preventDefault();
  const q = input.value.trim();
  if (!q) {
    input.focus();
    return;
  }
  query = { q };
  if (stateSelect.value) query.state = stateSelect.value;
  nextBefore = null;
  load(false);
}

function build() {
  input = h("input", {
    id: "search-input", type: "search", name: "q", maxlength: "200", autocomplete: "off",
    placeholder: "Words to find, e.g. remboursement", "aria-label": "Words to find",
  });
  stateSelect = h("select", { id: "search-state", "aria-label": "Ticket state" },
    h("option", { value: "" }, "Any state"), h("option", { value: "queued" }, "Waiting"),
    h("option", { value: "assigned" }, "Open"), h("option", { value: "resolved" }, "Resolved"),
    h("option", { value: "abandoned" }, "Closed unanswered"));
  list = h("ol", { id: "search-results", class: "search-results", "aria-label": "Search results" });
  status = h("p", { id: "search-status", class: "dialog-sub", role: "status" });
  more = h("button", { type: "button", id: "search-more", class: "small-button", hidden: true, onclick: () => load(true) }, "More results");
  form = h("form", { class: "search-form", role: "search", onsubmit: submit },
    input, stateSelect, h("button", { type: "submit", class: "primary", id: "search-submit" }, "Search"));
  dialog = h("dialog", { id: "dlg-search", class: "dialog search-dialog", "aria-labelledby": "dlg-search-title" },
    h("h2", { id: "dlg-search-title" }, "Search messages"),
    h("p", { class: "dialog-sub" }, "Every word must match; case and accents do not matter. Newest first."),
    form, status, list,
    h("div", { class: "dialog-actions" }, more, h("button", { type: "button", class: "ghost", onclick: () => dialog.close() }, "Close")));
  document.body.append(dialog);
}

/** Open the search dialog, its box focused; with `q`, searching for it at once. */
export function openSearch(q = "") {
  if (!dialog) build();
  if (!dialog.open) dialog.showModal();
  if (q) {
    input.value = q;
    form.requestSubmit();
  }
  input.focus();
  input.select();
}

/** The search box above the ticket lists (#ticket-list moves into a column with it). */
export function initSearch() {
  const lists = document.getElementById("ticket-list");
  const box = h("input", {
    id: "list-search-input", type: "search", name: "q", maxlength: "200", autocomplete: "off",
    placeholder: "Search messages", "aria-label": "Search messages",
  });
  const bar = h("form", {
    class: "list-search", role: "search", id: "list-search",
    onsubmit: (ev) => {
      ev.preventDefault();
      openSearch(box.value.trim());
    },
  }, box, h("button", { type: "submit", class: "small-button", id: "list-search-submit" }, "Search"));
  const column = h("div", { class: "list-column" });
  lists.replaceWith(column);
  column.append(bar, lists);
}

/** Forget the results (signing out). */
export function resetSearch() {
  if (!dialog) return;
  if (dialog.open) dialog.close();
  input.value = "";
  document.getElementById("list-search-input").value = "";
  mount(list);
  status.textContent = "";
  more.hidden = true;
  query = null;
  nextBefore = null;
}
