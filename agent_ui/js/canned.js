// Canned responses: `/` and letters in the reply box suggest saved replies by
// shortcut (arrows move, Enter or Tab inserts, Esc closes; an ARIA listbox), and
// a dialog manages them (GET/POST/PATCH/DELETE /api/canned-responses). Shared ones
// are managed by supervisors and admins, personal ones by their owner. The text is
// stored as written; {agent} (my display name) and {end_user} (the ticket's end
// user) are filled here, when it is inserted.

import { errorText, get, patch, post, request } from "./api.js";
import { h, mount } from "./dom.js";
import { store } from "./store.js";
import { toast } from "./toast.js";

let items = null; // [{id, scope, shortcut, text, editable}] once loaded
let loading = null;
let myName = null;
let loadedFor = null; // the user they were loaded for: another sign-in reloads

async function load(force = false) {
  if (loadedFor !== store.me?.id) {
    items = null;
    myName = null;
  }
  if (items && !force) return items;
  if (!loading || force) {
    const forUser = store.me?.id;
    loading = Promise.all([get("/api/canned-responses"), myName ? null : get("/api/me")])
      .then(([list, me]) => {
        items = list.canned_responses;
        loadedFor = forUser;
        if (me) myName = me.display_name || me.username;
        return items;
      })
      .finally(() => { loading = null; });
  }
  return loading;
}

/** The text with its placeholders filled. */
export function fillPlaceholders(text, { agent, endUser }) {
  return text.replaceAll("{agent}", agent).replaceAll("{end_user}", endUser);
}

/** Shortcuts starting with `query` first, then those containing it; personal before shared. */
function matching(query) {
  const q = query.toLowerCase();
  const found = (items || []).filter((c) => c.shortcut.includes(q));
  const rank = (c) => (c.shortcut.startsWith(q) ? 0 : 2) + (c.scope === "personal" ? 0 : 1);
  return found.sort((a, b) => rank(a) - rank(b) || a.shortcut.localeCompare(b.shortcut)).slice(0, 8);
}

/** The `/word` just before the caret (at the start or after white space), or null. */
function slashToken(textarea) {
  const before = textarea.value.slice(0, textarea.selectionStart);
  const m = /(^|\s)\/([a-z0-9_-]*)$/i.exec(before);
  if (!m || textarea.selectionStart !== textarea.selectionEnd) return null;
  return { start: before.length - m[2].length - 1, end: before.length, query: m[2] };
}

/**
 * Suggestions on `textarea` (inside `form`, whose Enter handler must not see the keys
 * used here: they are caught in the capture phase). `context()` gives {endUser}.
 */
export function attachCanned(form, textarea, context) {
  const list = h("ul", { class: "canned-suggest", id: "canned-suggest", role: "listbox", "aria-label": "Canned responses", hidden: true });
  textarea.setAttribute("role", "combobox");
  textarea.setAttribute("aria-autocomplete", "list");
  textarea.setAttribute("aria-controls", list.id);
  textarea.setAttribute("aria-expanded", "false");
  textarea.after(list);
  let shown = [];
  let active = 0;
  let token = null;

  function close() {
    shown = [];
    token = null;
    list.hidden = true;
    list.replaceChildren();
    textarea.setAttribute("aria-expanded", "false");
    textarea.removeAttribute("aria-activedescendant");
  }

  function render() {
    mount(list, shown.map((c, i) => h("li", {
      role: "option", id: `canned-opt-${c.id}`, class: "canned-option", "aria-selected": String(i === active),
      dataset: { shortcut: c.shortcut },
      onmousedown: (ev) => { ev.preventDefault(); insert(i); },
    }, h("span", { class: "canned-shortcut" }, `/${c.shortcut}`),
    h("span", { class: "canned-scope" }, c.scope === "shared" ? "shared" : "mine"),
    h("span", { class: "canned-text" }, c.text))));
    list.hidden = shown.length === 0;
    textarea.setAttribute("aria-expanded", String(shown.length > 0));
    if (shown.length) {
      textarea.setAttribute("aria-activedescendant", `canned-opt-${shown[active].id}`);
      list.children[active]?.scrollIntoView({ block: "nearest" });
    } else textarea.removeAttribute("aria-activedescendant");
  }

  async function update() {
    token = slashToken(textarea);
    if (!token) return close();
    try {
      await load();
    } catch {
      return close();
    }
    token = slashToken(textarea); // it may have changed while loading
    if (!token) return close();
    shown = matching(token.query);
    active = 0;
    render();
  }

  function insert(i) {
    const c = shown[i];
    if (!c || !token) return;
    const { endUser } = context();
    const text = fillPlaceholders(c.text, { agent: myName || store.me?.username || "", endUser: endUser || "" });
    const value = textarea.value;
    textarea.value = value.slice(0, token.start) + text + value.slice(token.end);
    const caret = token.start + text.length;
    textarea.setSelectionRange(caret, caret);
    close();
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    textarea.focus();
  }

  textarea.addEventListener("input", () => { update(); });
  textarea.addEventListener("click", () => { update(); });
  textarea.addEventListener("blur", () => setTimeout(close, 100));
  form.addEventListener("keydown", (ev) => {
    if (ev.target !== textarea || list.hidden || !shown.length) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      active = (active + (ev.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      render();
    } else if ((ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) || ev.key === "Tab") {
      insert(active);
    } else if (ev.key === "Escape") {
      close();
    } else return;
    ev.preventDefault();
    ev.stopImmediatePropagation();
  }, true);
}

// --- management ----------------------------------------------------------------

function dialog() {
  let dlg = document.getElementById("dlg-canned");
  if (dlg) return dlg;
  dlg = h("dialog", { id: "dlg-canned", class: "dialog dialog-wide", "aria-labelledby": "dlg-canned-title" });
  document.body.append(dlg);
  return dlg;
}

/** The dialog listing canned responses, with a form to add or change one. */
export async function openCannedManager() {
  const dlg = dialog();
  let editing = null; // the item being changed, or null: a new one
  const shortcut = h("input", { id: "canned-shortcut", maxlength: "50", required: true, autocomplete: "off", placeholder: "greeting" });
  const text = h("textarea", { id: "canned-text", rows: "3", maxlength: "4000", required: true, placeholder: "Hello {end_user}, I am {agent}. How can I help?" });
  const scope = h("select", { id: "canned-scope" },
    h("option", { value: "personal" }, "Only me"),
    store.isStaff ? h("option", { value: "shared" }, "Shared with everyone") : null);
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const list = h("ul", { class: "canned-list", id: "canned-list" });
  const title = h("h3", { class: "canned-form-title" }, "New canned response");
  const cancelEdit = h("button", { type: "button", class: "ghost", hidden: true, onclick: () => edit(null) }, "Cancel edit");
  const form = h("form", { class: "canned-form", id: "canned-form" }, title,
    h("label", { for: "canned-shortcut" }, "Shortcut (typed as /shortcut: a-z, 0-9, _ and -)"), shortcut,
    h("label", { for: "canned-text" }, "Text ({agent} and {end_user} are filled in when inserted)"), text,
    h("label", { for: "canned-scope" }, "Who can use it"), scope, error,
    h("div", { class: "dialog-actions" }, cancelEdit, h("button", { type: "submit", class: "primary", id: "canned-save" }, "Save")));

  function edit(item) {
    editing = item;
    shortcut.value = item ? item.shortcut : "";
    text.value = item ? item.text : "";
    scope.value = item ? item.scope : "personal";
    scope.disabled = Boolean(item);
    title.textContent = item ? `Change /${item.shortcut}` : "New canned response";
    cancelEdit.hidden = !item;
    error.hidden = true;
    if (item) shortcut.focus();
  }

  function renderList() {
    mount(list, items.length ? items.map((c) => h("li", { class: "canned-item", dataset: { shortcut: c.shortcut, scope: c.scope } },
      h("span", { class: "canned-shortcut" }, `/${c.shortcut}`),
      h("span", { class: "canned-scope" }, c.scope === "shared" ? "shared" : "mine"),
      h("span", { class: "canned-text" }, c.text),
      c.editable ? h("span", { class: "canned-actions" },
        h("button", { type: "button", class: "link-button", "aria-label": `Edit /${c.shortcut}`, onclick: () => edit(c) }, "Edit"),
        h("button", { type: "button", class: "link-button", "aria-label": `Delete /${c.shortcut}`, onclick: () => remove(c) }, "Delete")) : null))
      : h("li", { class: "empty" }, "No canned responses yet."));
  }

  async function remove(c) {
    try {
      await request("DELETE", `/api/canned-responses/${c.id}`);
      await load(true);
      if (editing?.id === c.id) edit(null);
      renderList();
    } catch (err) {
      toast(`Could not delete /${c.shortcut}: ${errorText(err)}`, "error");
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    try {
      if (editing) await patch(`/api/canned-responses/${editing.id}`, { shortcut: shortcut.value, text: text.value });
      else await post("/api/canned-responses", { shortcut: shortcut.value, text: text.value, scope: scope.value });
      await load(true);
      edit(null);
      renderList();
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    }
  });

  mount(dlg, h("h2", { id: "dlg-canned-title" }, "Canned responses"),
    h("p", { class: "dialog-sub" }, "Type / and a shortcut in the reply box to insert one."),
    list, form,
    h("div", { class: "dialog-actions" }, h("button", { type: "button", class: "ghost", onclick: () => dlg.close() }, "Close")));
  try {
    await load(true);
  } catch (err) {
    toast(`Could not load canned responses: ${errorText(err)}`, "error");
    return;
  }
  renderList();
  edit(null);
  if (!dlg.open) dlg.showModal();
  shortcut.focus();
}
