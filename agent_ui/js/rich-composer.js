// Rich replies: a dialog that composes one Chatlayer message object (quick replies,
// a button template, an image or a video by URL, a carousel) within Chatlayer's
// limits, previews it as the end user sees it (render-message.js `renderRich`) and
// sends it: POST /api/tickets/{id}/messages {"message": <the object>}.
//
// The server is the judge of the message: its 422 field errors (such as
// "message.attachment.payload.buttons.0.url") are shown at the input they name.
// One Idempotency-Key per composed message, as the reply box does: sending the same
// message again after a lost answer ("Try again") sends nothing twice; a message
// changed since its last attempt is another message and gets a key of its own.

import { ApiError, errorText, newIdempotencyKey, post } from "./api.js";
import { h, mount } from "./dom.js";
import { renderRich } from "./render-message.js";
import { store } from "./store.js";

/** Chatlayer's limits (the server checks them too). */
export const LIMITS = { quickReplies: 13, buttons: 3, cards: 10, cardButtons: 3 };

const KINDS = [["quick_replies", "Quick replies"], ["buttons", "Buttons"], ["image", "Image"],
  ["video", "Video"], ["carousel", "Carousel"]];
const BUTTON_TYPES = [["web_url", "Link (web_url)"], ["postback", "Postback"], ["phone_number", "Phone call"]];
const P = "message.attachment.payload";
const SHORT = "(20 characters at most)";

const blankReply = () => ({ title: "", payload: "", image_url: "" });
const blankButton = (type = "web_url") => ({ type, title: "", value: "" });
const blankCard = () => ({ title: "", subtitle: "", image_url: "", item_url: "", buttons: [] });
// `attempt`: {key, json}, the Idempotency-Key of the message last sent from this draft.
const blankDraft = () => ({
  kind: "quick_replies", text: "", replies: [blankReply()], buttons: [blankButton()], url: "", cards: [blankCard()],
  attempt: null,
});

// --- the message -------------------------------------------------------------

/** `obj[key] = value` when the (optional) value is not blank. */
function optional(obj, key, value) {
  if (value.trim()) obj[key] = value.trim();
  return obj;
}

function buttonOf(b) {
  return { type: b.type, title: b.title.trim(), [b.type === "web_url" ? "url" : "payload"]: b.value.trim() };
}

function cardOf(c) {
  const card = { title: c.title.trim() };
  optional(card, "subtitle", c.subtitle);
  optional(card, "image_url", c.image_url);
  optional(card, "item_url", c.item_url);
  if (c.buttons.length) card.buttons = c.buttons.map(buttonOf);
  return card;
}

/** The Chatlayer message object a draft stands for (required fields even when blank). */
export function messageOf(d) {
  switch (d.kind) {
    case "quick_replies":
      return { text: d.text.trim(), quick_replies: d.replies.map((r) =>
        optional({ content_type: "text", title: r.title.trim(), payload: r.payload.trim() }, "image_url", r.image_url)) };
    case "buttons":
      return { attachment: { type: "template", payload: { template_type: "button", text: d.text.trim(), buttons: d.buttons.map(buttonOf) } } };
    case "image":
    case "video":
      return { attachment: { type: d.kind, payload: { url: d.url.trim() } } };
    default:
      return { attachment: { type: "template", payload: { template_type: "generic", elements: d.cards.map(cardOf) } } };
  }
}

// --- the dialog --------------------------------------------------------------

let dlg = null;
let ui = null; // {form, kind, fields, preview, error, send, sub}
let ticket = null; // the ticket the open dialog writes to
let draft = null;
const drafts = new Map(); // ticket id -> draft, kept until sent

const idOf = (field) => `rich-${field.replaceAll(".", "-")}`;

/** A labelled input bound to `obj[key]`, answering for the server's `field`. */
function input(label, obj, key, field, { multiline = false, type = "text", placeholder = "", hint = "" } = {}) {
  const id = idOf(field);
  const errorId = `${id}-error`;
  const el = h(multiline ? "textarea" : "input", {
    id, type: multiline ? null : type, rows: multiline ? "2" : null, maxlength: "2000",
    placeholder, value: obj[key], autocomplete: "off", "aria-describedby": errorId, dataset: { field },
    oninput: () => {
      obj[key] = el.value;
      clearError(el);
      if (type !== "url") renderPreview();
    },
    // A URL is previewed once it is written (the field left): never a half-typed host.
    onchange: () => { if (type === "url") renderPreview(); },
  });
  return h("div", { class: "rich-field" },
    h("label", { for: id }, label, hint ? h("span", { class: "hint" }, ` ${hint}`) : null), el,
    h("p", { class: "field-error", id: errorId, role: "alert", hidden: true }));
}

/** A repeatable group: its rows, an add button within `max`, and the group's own error line. */
function group(label, rows, field, { noun, max, min, make, row }) {
  const errorId = `${idOf(field)}-error`;
  const add = h("button", {
    type: "button", class: "small-button rich-add", disabled: rows.length >= max, dataset: { add: field },
    onclick: () => {
      rows.push(make());
      renderFields(`${field}.${rows.length - 1}`);
    },
  }, `Add ${noun}`);
  return h("fieldset", { class: "rich-group", dataset: { field }, "aria-describedby": errorId },
    h("legend", {}, label, h("span", { class: "hint" }, ` (${min ? `${min} to ` : "up to "}${max})`)),
    rows.map((r, i) => h("fieldset", { class: "rich-row", dataset: { field: `${field}.${i}` } },
      h("legend", {}, `${noun[0].toUpperCase()}${noun.slice(1)} ${i + 1}`),
      row(r, `${field}.${i}`),
      h("p", { class: "field-error", id: `${idOf(`${field}.${i}`)}-error`, role: "alert", hidden: true }),
      h("button", {
        type: "button", class: "link-button rich-remove", disabled: rows.length <= min,
        "aria-label": `Remove ${noun} ${i + 1}`,
        onclick: () => {
          rows.splice(i, 1);
          renderFields(rows.length ? `${field}.${Math.max(0, i - 1)}` : `add:${field}`);
        },
      }, "Remove"))),
    h("p", { class: "field-error", id: errorId, role: "alert", hidden: true }), add);
}

function buttonRow(b, field) {
  const typeId = idOf(`${field}.type`);
  const select = h("select", {
    id: typeId, dataset: { field: `${field}.type` }, "aria-describedby": `${typeId}-error`,
    onchange: () => {
      b.type = select.value;
      renderFields(`${field}.type`);
    },
  }, BUTTON_TYPES.map(([value, label]) => h("option", { value, selected: b.type === value }, label)));
  const value = b.type === "web_url"
    ? input("URL", b, "value", `${field}.url`, { type: "url", placeholder: "https://" })
    : b.type === "phone_number" ? input("Phone number", b, "value", `${field}.payload`, { type: "tel", placeholder: "+32 2 123 45 67" })
      : input("Payload", b, "value", `${field}.payload`, { hint: "(given to the bot, never shown)" });
  return [h("div", { class: "rich-field" }, h("label", { for: typeId }, "Type"), select,
    h("p", { class: "field-error", id: `${typeId}-error`, role: "alert", hidden: true })),
    input("Title", b, "title", `${field}.title`, { hint: SHORT }), value];
}

function buttonGroup(rows, field, min, max) {
  return group("Buttons", rows, field, { noun: "button", min, max, make: () => blankButton(), row: buttonRow });
}

function fieldsOf(d) {
  switch (d.kind) {
    case "quick_replies":
      return [input("Text", d, "text", "message.text", { multiline: true }),
        group("Quick replies", d.replies, "message.quick_replies", {
          noun: "quick reply", min: 1, max: LIMITS.quickReplies, make: blankReply,
          row: (r, f) => [input("Title", r, "title", `${f}.title`, { hint: SHORT }),
            input("Payload", r, "payload", `${f}.payload`, { hint: "(given to the bot, never shown)" }),
            input("Image URL", r, "image_url", `${f}.image_url`, { type: "url", hint: "(optional)", placeholder: "https://" })],
        })];
    case "buttons":
      return [input("Text", d, "text", `${P}.text`, { multiline: true }), buttonGroup(d.buttons, `${P}.buttons`, 1, LIMITS.buttons)];
    case "image":
    case "video":
      return [input(d.kind === "image" ? "Image URL" : "Video URL", d, "url", `${P}.url`, { type: "url", placeholder: "https://" })];
    default:
      return [group("Cards", d.cards, `${P}.elements`, {
        noun: "card", min: 1, max: LIMITS.cards, make: blankCard,
        row: (c, f) => [input("Title", c, "title", `${f}.title`, { hint: "(80 characters at most)" }),
          input("Subtitle", c, "subtitle", `${f}.subtitle`, { hint: "(optional)" }),
          input("Image URL", c, "image_url", `${f}.image_url`, { type: "url", hint: "(optional)", placeholder: "https://" }),
          input("Page URL", c, "item_url", `${f}.item_url`, { type: "url", hint: "(optional)", placeholder: "https://" }),
          buttonGroup(c.buttons, `${f}.buttons`, 0, LIMITS.cardButtons)],
      })];
  }
}

/** Rebuild the inputs (after a row was added or removed); `focus`: a field to move to. */
function renderFields(focus = null) {
  mount(ui.fields, fieldsOf(draft));
  renderPreview();
  if (!focus) return;
  const target = focus.startsWith("add:")
    ? ui.fields.querySelector(`[data-add="${focus.slice(4)}"]`)
    : ui.fields.querySelector(`[data-field="${focus}"]`);
  (target?.matches("fieldset") ? target.querySelector("input, select, textarea") : target)?.focus();
}

function renderPreview() {
  const message = messageOf(draft);
  mount(ui.preview, renderRich(message) || h("p", { class: "empty" }, "Nothing to show yet."));
  if (draft.attempt && draft.attempt.json !== JSON.stringify(message)) ui.send.textContent = "Send";
}

// --- errors ------------------------------------------------------------------

function errorLine(el) {
  return el ? document.getElementById(`${el.id || idOf(el.dataset.field)}-error`) : null;
}

function clearError(el) {
  el.removeAttribute("aria-invalid");
  const line = errorLine(el);
  if (line) line.hidden = true;
}

function clearErrors() {
  for (const el of ui.form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const line of ui.form.querySelectorAll(".field-error")) line.hidden = true;
  ui.error.hidden = true;
}

/** The element answering for a server field path: itself, or the nearest group holding it. */
function elementFor(path) {
  const parts = String(path).split(".");
  while (parts.length > 1) {
    const el = ui.fields.querySelector(`[data-field="${CSS.escape(parts.join("."))}"]`);
    if (el) return el;
    parts.pop();
  }
  return null;
}

/** Each 422 field error beside its input; those without one in the line above Send. */
function showFieldErrors(fields) {
  const general = [];
  let first = null;
  for (const f of fields) {
    const el = elementFor(f.field);
    if (!el) {
      general.push(`${f.field}: ${f.message}`);
      continue;
    }
    el.setAttribute("aria-invalid", "true");
    const line = errorLine(el);
    if (!line) {
      general.push(`${f.field}: ${f.message}`);
      continue;
    }
    line.textContent = line.hidden ? f.message : `${line.textContent}; ${f.message}`;
    line.hidden = false;
    first ||= el.matches("fieldset") ? el.querySelector("input, select, textarea") || el : el;
  }
  if (general.length) showError(general.join("; "));
  first?.focus();
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = false;
}

// --- sending -----------------------------------------------------------------

/** The composed message's key: kept while it is unchanged, so a retry is not sent twice. */
function keyFor(message) {
  const json = JSON.stringify(message);
  if (!draft.attempt || draft.attempt.json !== json) draft.attempt = { key: newIdempotencyKey(), json };
  return draft.attempt.key;
}

async function send() {
  if (!ticket || ui.send.disabled) return;
  const target = ticket;
  const message = messageOf(draft);
  clearErrors();
  ui.send.disabled = true;
  ui.send.textContent = "Sending…";
  try {
    const answer = await post(`/api/tickets/${target.id}/messages`, { message },
      { headers: { "Idempotency-Key": keyFor(message) } });
    drafts.delete(target.id);
    store.upsertMessage(target.id, answer);
    ui.send.textContent = "Send";
    dlg.close();
  } catch (err) {
    if (err instanceof ApiError && err.status === 422 && err.fields.length) {
      ui.send.textContent = "Send";
      showFieldErrors(err.fields);
    } else {
      // Nothing or something may have been done: the same message goes with the same key.
      ui.send.textContent = "Try again";
      showError(`Not sent: ${errorText(err)}`);
    }
  } finally {
    ui.send.disabled = false;
  }
}

function build() {
  const kind = h("select", {
    id: "rich-kind",
    onchange: () => {
      draft.kind = kind.value;
      clearErrors();
      renderFields();
    },
  }, KINDS.map(([value, label]) => h("option", { value }, label)));
  const fields = h("div", { class: "rich-fields", id: "rich-fields" });
  const preview = h("div", { class: "rich-preview-body", id: "rich-preview" });
  const error = h("p", { class: "form-error", id: "rich-error", role: "alert", hidden: true });
  const sendButton = h("button", { type: "submit", class: "primary", id: "rich-send" }, "Send");
  const sub = h("p", { class: "dialog-sub", id: "rich-sub" });
  const form = h("form", { id: "rich-form", class: "rich-form", novalidate: true },
    h("h2", { id: "dlg-rich-title" }, "Rich reply"), sub,
    h("div", { class: "rich-columns" },
      h("div", { class: "rich-inputs" },
        h("div", { class: "rich-field" }, h("label", { for: "rich-kind" }, "Kind"), kind), fields),
      h("section", { class: "rich-preview", "aria-labelledby": "rich-preview-title" },
        h("h3", { id: "rich-preview-title" }, "Preview"), preview,
        h("p", { class: "hint" }, "As the end user sees it. Buttons here do nothing."))),
    error,
    h("div", { class: "dialog-actions" },
      h("span", { class: "hint rich-keys" }, "Ctrl+Enter sends · Esc closes"),
      h("button", { type: "button", class: "ghost", onclick: () => dlg.close() }, "Cancel"), sendButton));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    send();
  });
  form.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" || ev.isComposing) return;
    if (ev.ctrlKey || ev.metaKey) {
      ev.preventDefault();
      send();
    } else if (ev.target instanceof HTMLInputElement) ev.preventDefault(); // Enter in a field sends nothing
  });
  dlg = h("dialog", { id: "dlg-rich", class: "dialog rich-dialog", "aria-labelledby": "dlg-rich-title" }, form);
  document.body.append(dlg);
  ui = { form, kind, fields, preview, error, send: sendButton, sub };
}

/** Open the composer for ticket `t` (its draft kept until sent, per ticket). */
export function openRichComposer(t) {
  if (!t) return;
  if (!dlg) build();
  ticket = t;
  if (!drafts.has(t.id)) drafts.set(t.id, blankDraft());
  draft = drafts.get(t.id);
  ui.sub.textContent = `To ${t.end_user || "the end user"} (#${t.id}), delivered as composed.`;
  ui.kind.value = draft.kind;
  ui.send.textContent = "Send";
  clearErrors();
  renderFields();
  if (!dlg.open) dlg.showModal();
  ui.kind.focus();
}

/** The composer's button, beside the reply box; `current()` gives the open ticket. */
export function richButton(current) {
  return h("button", {
    type: "button", class: "ghost", id: "rich-button", "aria-haspopup": "dialog",
    title: "Quick replies, buttons, an image or video, a carousel",
    onclick: () => openRichComposer(current()),
  }, "Rich…");
}
