// The sign-in form.

import { ApiError, post } from "./api.js";
import { $ } from "./dom.js";

/** Show the form; resolves with the login answer ({user, csrf_token}). */
export function signIn(note = null) {
  const section = $("#signin");
  const form = $("#signin-form");
  const error = $("#signin-error");
  const noteEl = $("#signin-note");
  const submit = $("#signin-submit");
  section.hidden = false;
  noteEl.textContent = note || "";
  noteEl.hidden = !note;
  error.hidden = true;
  $("#signin-password").value = "";
  const username = $("#signin-username");
  (username.value ? $("#signin-password") : username).focus();
  return new Promise((resolve) => {
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      error.hidden = true;
      const name = username.value.trim();
      const password = $("#signin-password").value;
      if (!name || !password) {
        error.textContent = "Enter your username and password.";
        error.hidden = false;
        return;
      }
      submit.disabled = true;
      submit.textContent = "Signing in…";
      try {
        const data = await post("/api/login", { username: name, password }, { quiet401: true });
        section.hidden = true;
        form.onsubmit = null;
        resolve(data);
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) error.textContent = "Wrong username or password.";
        else if (err instanceof ApiError && err.status === 429) {
          error.textContent = `Too many attempts. Try again in ${err.retryAfter || "a few"} seconds.`;
        } else error.textContent = err.message || "Could not sign in.";
        error.hidden = false;
        $("#signin-password").select();
      } finally {
        submit.disabled = false;
        submit.textContent = "Sign in";
      }
    };
  });
}
