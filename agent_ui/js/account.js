// One's own account: the password (current + new, twice) and the display name
// colleagues see. `requireNewPassword` is the screen shown before anything else
// when the password must be changed (the generated first admin's, or one an
// admin marked); `openAccount` is the dialog behind the name in the top bar.

import { ApiError, errorText, patch, post } from "./api.js";
import { h, mount } from "./dom.js";
import { toast } from "./toast.js";

const MIN_PASSWORD = 8;

function passwordField(id, label, autocomplete) {
  return [h("label", { for: id }, label),
    h("input", { id, type: "password", autocomplete, minlength: String(MIN_PASSWORD), required: true })];
}

/** A password form (current, new, again) that posts to /api/me/password; calls `done`. */
function passwordForm(prefix, done, submitText) {
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary", id: `${prefix}-submit` }, submitText);
  const form = h("form", { id: `${prefix}-form`, novalidate: true },
    ...passwordField(`${prefix}-current`, "Current password", "current-password"),
    ...passwordField(`${prefix}-new`, "New password", "new-password"),
    h("p", { class: "hint" }, `At least ${MIN_PASSWORD} characters, not the current one.`),
    ...passwordField(`${prefix}-again`, "New password again", "new-password"),
    error, submit);
  const value = (name) => form.querySelector(`#${prefix}-${name}`).value;
  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    if (value("new").length < MIN_PASSWORD) return fail(`The new password needs at least ${MIN_PASSWORD} characters.`);
    if (value("new") !== value("again")) return fail("The two new passwords differ.");
    submit.disabled = true;
    try {
      await post("/api/me/password", { current: value("current"), new: value("new") });
      form.reset();
      done();
    } catch (err) {
      const field = err instanceof ApiError && err.fields[0]?.field;
      if (field === "current") fail("That is not your current password.");
      else fail(errorText(err));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/**
 * The page shown instead of the console until the password is changed: resolves once
 * it is. `signOut` is offered too (the API answers nothing else meanwhile).
 */
export function requireNewPassword(me, signOut) {
  return new Promise((resolve) => {
    const section = h("section", { id: "password-change", class: "signin", "aria-labelledby": "password-change-title" });
    const form = passwordForm("pwchange", () => {
      section.remove();
      toast("Password changed.");
      resolve();
    }, "Change password and continue");
    form.classList.add("signin-card");
    form.prepend(h("h1", { id: "password-change-title" }, "Choose a new password"),
      h("p", { class: "form-note" }, `${me.username}, your password must be changed before you continue.`));
    form.append(h("button", { type: "button", class: "link-button", onclick: () => { section.remove(); signOut(); } }, "Sign out"));
    section.append(form);
    document.body.prepend(section);
    form.querySelector("#pwchange-current").focus();
  });
}

/** The account dialog: display name and password. `onName(name)` after a rename. */
export function openAccount(me, onName) {
  let dialog = document.getElementById("dlg-account");
  if (!dialog) {
    dialog = h("dialog", { id: "dlg-account", class: "dialog", "aria-labelledby": "dlg-account-title" });
    document.body.append(dialog);
  }
  const nameInput = h("input", { id: "account-display-name", maxlength: "100", autocomplete: "name", placeholder: me.username });
  nameInput.value = me.display_name && me.display_name !== me.username ? me.display_name : "";
  const nameError = h("p", { class: "form-error", role: "alert", hidden: true });
  const nameForm = h("form", { id: "account-name-form", novalidate: true },
    h("label", { for: "account-display-name" }, "Display name"), nameInput,
    h("p", { class: "hint" }, "Shown to colleagues; empty: your username."), nameError,
    h("div", { class: "dialog-actions" }, h("button", { type: "submit", class: "small-button", id: "account-name-save" }, "Save name")));
  nameForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    nameError.hidden = true;
    const name = nameInput.value.trim() || null;
    try {
      const out = await patch("/api/me", { display_name: name });
      onName(out.display_name);
      toast("Display name saved.");
    } catch (err) {
      nameError.textContent = errorText(err);
      nameError.hidden = false;
    }
  });
  const pwForm = passwordForm("account-pw", () => {
    toast("Password changed. Your other sessions were signed out.");
    dialog.close();
  }, "Change password");
  mount(dialog, h("h2", { id: "dlg-account-title" }, "Your account"),
    h("p", { class: "dialog-sub" }, `Signed in as ${me.username} (${me.role}).`),
    nameForm, h("h3", {}, "Password"), pwForm,
    h("div", { class: "dialog-actions" }, h("button", { type: "button", class: "ghost", onclick: () => dialog.close() }, "Close")));
  dialog.showModal();
  nameInput.focus();
}
