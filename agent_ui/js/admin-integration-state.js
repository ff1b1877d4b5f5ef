// An integration disabled or enabled again (POST .../disable|enable), and deleted
// (DELETE /api/integrations/{id}), the deletion confirmed by typing the integration's
// name; with its conversations only when that box is ticked (else 409 while it has
// any). `ui` is admin-integrations.js's {formError, load}.

import { post, request } from "./api.js";
import { h } from "./dom.js";
import { toast } from "./toast.js";

function path(i, tail = "") {
  return `/api/integrations/${encodeURIComponent(i.id)}${tail}`;
}

/** "Disabled" in a card's header while it is. */
export function disabledBadge(i) {
  return i.disabled ? h("span", { class: "badge badge-warn", id: `int-disabled-${i.id}` }, "Disabled") : null;
}

function toggleForm(i, ui) {
  const form = h("form", { class: "inline-form" },
    h("button", { type: "submit", class: "small-button", id: `int-toggle-${i.id}` }, i.disabled ? "Enable" : "Disable"),
    h("span", { class: "hint" }, i.disabled
      ? "Its webhooks are refused (403) and nothing is stored; its replies wait."
      : "Refuse its webhooks (nothing stored); its queued replies wait until enabled again."),
    h("p", { class: "form-error", role: "alert", hidden: true }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ui.formError(form, null);
    try {
      await post(path(i, i.disabled ? "/enable" : "/disable"));
      toast(`Integration “${i.name}” ${i.disabled ? "enabled" : "disabled"}.`);
      await ui.load();
    } catch (err) {
      ui.formError(form, err);
    }
  });
  return form;
}

function deleteForm(i, ui) {
  const typed = h("input", { id: `int-delete-name-${i.id}`, name: "confirm", autocomplete: "off", spellcheck: "false" });
  const withConversations = h("input", { id: `int-delete-all-${i.id}`, name: "with_conversations", type: "checkbox" });
  const button = h("button", { type: "submit", class: "small-button danger", id: `int-delete-${i.id}`, disabled: true }, "Delete for good");
  typed.addEventListener("input", () => { button.disabled = typed.value !== i.name; });
  const form = h("form", { class: "form-grid", novalidate: true },
    h("label", { class: "check-field" }, withConversations, " Also delete its conversations, messages, tickets and deliveries"),
    h("div", { class: "field" }, h("label", { for: typed.id }, "Type the integration's name to confirm"), typed),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, button));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ui.formError(form, null);
    if (typed.value !== i.name) return;
    button.disabled = true;
    try {
      const out = await request("DELETE", path(i, `?with_conversations=${withConversations.checked}`));
      toast(`Integration “${out.deleted.name}” deleted, with ${out.deleted.conversations} conversation(s).`);
      await ui.load();
    } catch (err) {
      ui.formError(form, err);
      button.disabled = false;
    }
  });
  return h("details", { class: "edit-box danger-box" }, h("summary", {}, "Delete…"), form);
}

/** A card's disable/enable and delete actions. */
export function stateActions(i, ui) {
  return [toggleForm(i, ui), deleteForm(i, ui)];
}
