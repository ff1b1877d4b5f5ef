// The admin forms' parts: a labelled field, and a server error shown in a form
// (its `.form-error` line, and aria-invalid on the inputs whose field it names).
// Text only through textContent (dom.js).

import { errorText } from "./api.js";
import { h } from "./dom.js";

/** A labelled `input` with an optional hint under it. */
export function field(label, input, hint) {
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint ? h("p", { class: "hint" }, hint) : null);
}

/** Show `err` in `form` (null clears it): its text in the `.form-error` line, and
 * aria-invalid on every input named by one of its `fields` (`nameOf` maps a field
 * path such as `events[2]` to the input name). */
export function formError(form, err, nameOf = (path) => path) {
  const el = form.querySelector(".form-error");
  el.textContent = err ? errorText(err) : "";
  el.hidden = !err;
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const f of err?.fields || []) {
    for (const input of form.querySelectorAll(`[name="${CSS.escape(nameOf(f.field))}"]`)) input.setAttribute("aria-invalid", "true");
  }
}
