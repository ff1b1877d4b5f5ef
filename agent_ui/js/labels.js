// A ticket's labels in its header: chips, with a remove button and an input with
// suggestions (GET /api/labels, most used first) for who may manage the ticket (its
// assignee, or staff); saved with PATCH /api/tickets/{id}, which answers the ticket's
// summary (a ticket.updated frame tells the other consoles).

import { errorText, get, patch } from "./api.js";
import { h } from "./dom.js";
import { store } from "./store.js";
import { toast } from "./toast.js";

const SUGGEST_DELAY_MS = 150;
let suggestTimer = 0;
let suggestAsked = 0;

/** May the signed-in user change the labels of `t` (`roles.can_manage`)? */
export function canLabel(t) {
  return store.isStaff || (t.assignee_id !== null && t.assignee_id === store.me?.id);
}

async function save(t, labels) {
  const refocus = document.activeElement?.id === "label-input";
  try {
    store.upsertTicket(await patch(`/api/tickets/${t.id}`, { labels }));
  } catch (err) {
    toast(`Labels not saved: ${errorText(err)}`, "error");
  }
  if (refocus) document.getElementById("label-input")?.focus();
}

function suggest(input, datalist, current) {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(async () => {
    const mine = ++suggestAsked;
    try {
      const out = await get(`/api/labels?prefix=${encodeURIComponent(input.value.trim())}`);
      if (mine !== suggestAsked) return;
      datalist.replaceChildren(...out.labels.filter((s) => !current.includes(s.label))
        .map((s) => h("option", { value: s.label, label: `${s.label} (${s.tickets})` })));
    } catch {
      // suggestions are a convenience; typing still works
    }
  }, SUGGEST_DELAY_MS);
}

function chip(t, label, labels, editable) {
  return h("li", { class: "label-chip", dataset: { label } },
    h("span", { class: "label-text", dir: "auto", title: label }, label),
    editable ? h("button", {
      type: "button", class: "label-remove", "aria-label": `Remove label ${label}`, title: "Remove",
      onclick: () => save(t, labels.filter((l) => l !== label)),
    }, "×") : null);
}

/** The labels of `t` for its header: chips, and an input when one may change them. */
export function labelEditor(t) {
  const labels = t.labels || [];
  const editable = canLabel(t);
  const chips = h("ul", { class: "labels", id: "ticket-labels", "aria-label": "Labels" },
    labels.map((l) => chip(t, l, labels, editable)));
  if (!editable) return labels.length ? h("div", { class: "labels-editor" }, chips) : null;
  const datalist = h("datalist", { id: "label-suggestions" });
  const input = h("input", {
    id: "label-input", class: "label-input", list: "label-suggestions", maxlength: "50",
    placeholder: "Add label", "aria-label": "Add a label (Enter)", autocomplete: "off", spellcheck: "false",
    dataset: { ticket: String(t.id) },
  });
  // A header rebuilt by a live update keeps what is being typed in the box it replaces
  // (still in the page while this runs), with its suggestions and its focus.
  const shown = document.getElementById("label-input");
  const before = shown?.dataset.ticket === String(t.id) ? shown : null;
  if (before) {
    input.value = before.value;
    datalist.replaceChildren(...[...(before.list?.children || [])].map((o) => o.cloneNode(true)));
    if (document.activeElement === before) {
      const [start, end] = [before.selectionStart, before.selectionEnd];
      // The header is mounted before this runs (`mount` is synchronous).
      queueMicrotask(() => {
        if (!input.isConnected) return;
        input.focus();
        input.setSelectionRange(start, end);
      });
    }
  }
  input.addEventListener("focus", () => suggest(input, datalist, labels));
  input.addEventListener("input", () => suggest(input, datalist, labels));
  input.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    const label = input.value.trim().toLowerCase();
    input.value = "";
    if (label && !labels.includes(label)) save(t, [...labels, label]);
  });
  return h("div", { class: "labels-editor" }, chips, input, datalist);
}
