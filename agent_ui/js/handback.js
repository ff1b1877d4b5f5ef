// Hand back to the bot (Chatlayer Offloading tickets): a button in the ticket's
// actions and its confirm dialog, with an optional closing message, that posts
// `POST /api/tickets/{id}/handback {"closing_message"?}`. The answer is the ticket's
// summary (now resolved); how the hand-back reached Chatlayer is shown in the
// transcript (its system message's delivery, live).

import { errorText, post } from "./api.js";
import { h } from "./dom.js";
import { store } from "./store.js";
import { toast } from "./toast.js";

const KIND = "chatlayer-offloading";

let dlg = null;
let ui = null;
let ticket = null;

/** A ticket this user may hand back: a Chatlayer Offloading one in the hands of an
 * agent, and that agent is me, or I am staff (who may manage any). */
export function canHandBack(t) {
  if (!t || t.integration_kind !== KIND || t.state !== "assigned") return false;
  return t.assignee_id === store.me?.id || store.isStaff;
}

function showError(err) {
  ui.error.textContent = err ? errorText(err) : "";
  ui.error.hidden = !err;
}

async function submit() {
  if (!ticket || ui.submit.disabled) return;
  const t = ticket;
  const closing = ui.text.value.trim();
  ui.submit.disabled = true;
  showError(null);
  try {
    const summary = await post(`/api/tickets/${t.id}/handback`, closing ? { closing_message: closing } : {});
    store.upsertTicket(summary);
    dlg.close();
    toast(`Conversation #${t.id} handed back to the bot.`);
  } catch (err) {
    showError(err);
  } finally {
    ui.submit.disabled = false;
  }
}

function build() {
  const text = h("textarea", {
    id: "handback-message", rows: "3", maxlength: "4000",
    placeholder: "Thanks — the assistant will take it from here.",
  });
  const error = h("p", { class: "form-error", id: "handback-error", role: "alert", hidden: true });
  const submitButton = h("button", { type: "submit", class: "primary", id: "handback-submit" }, "Hand back");
  const sub = h("p", { class: "dialog-sub", id: "handback-sub" });
  const form = h("form", { id: "handback-form" },
    h("h2", { id: "dlg-handback-title" }, "Hand back to the bot"), sub,
    h("label", { for: "handback-message" }, "Closing message (optional)"), text, error,
    h("div", { class: "dialog-actions" },
      h("button", { type: "button", class: "ghost", onclick: () => dlg.close() }, "Cancel"), submitButton));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit();
  });
  text.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      submit();
    }
  });
  dlg = h("dialog", { id: "dlg-handback", class: "dialog", "aria-labelledby": "dlg-handback-title" }, form);
  document.body.append(dlg);
  ui = { text, error, submit: submitButton, sub };
}

/** Ask before handing ticket `t` back to its Chatlayer bot. */
export function openHandback(t) {
  if (!canHandBack(t)) return;
  if (!dlg) build();
  ticket = t;
  ui.sub.textContent = `The Chatlayer bot takes the conversation with ${t.end_user || "the end user"} `
    + `(#${t.id}) again and this ticket is resolved. A closing message is optional and is sent to the end user.`;
  ui.text.value = "";
  showError(null);
  if (!dlg.open) dlg.showModal();
  ui.text.focus();
}

/** The ticket action's button, or null when `t` cannot be handed back by me. */
export function handbackButton(t) {
  if (!canHandBack(t)) return null;
  return h("button", {
    type: "button", id: "handback-button", "aria-haspopup": "dialog",
    title: "End the handover: the Chatlayer bot answers again", onclick: () => openHandback(t),
  }, "Hand back to the bot");
}
