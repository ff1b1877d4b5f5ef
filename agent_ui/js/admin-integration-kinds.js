// What differs between the kinds of integration on the admin page: the create
// form (a Smartly bot posting to a Chatlayer Webhook channel, or a Chatlayer bot
// offloading to this desk), the card's rows, the edit form, and for an
// offloading integration the handback action's JSON editor. Errors are shown at
// the field the server names. `ui` is admin-integrations.js's
// {field, formError, load}.

import { errorText, patch, post } from "./api.js";
import { copyField } from "./copy.js";
import { h } from "./dom.js";
import { toast } from "./toast.js";

export const OFFLOADING = "chatlayer-offloading";

/** Per kind: its label, and the once-shown URL that carries the key. */
export const KINDS = {
  smartly: {
    label: "Smartly bot (Chatlayer Webhook channel)", name: "Smartly",
    urlField: "smartly_webhook_url", urlLabel: "Smartly webhook URL", urlId: "smartly-url",
  },
  [OFFLOADING]: {
    label: "Chatlayer bot (Offloading webhook)", name: "Offloading",
    urlField: "offloading_webhook_url", urlLabel: "Offloading webhook URL", urlId: "offloading-url",
  },
};

/** The kind of integration `i` (an unknown kind reads as Smartly). */
export function kindOf(i) {
  return KINDS[i.kind] || KINDS.smartly;
}

/** What is sent to un-pause the bot when `handback_action` is null (channels.chatlayer_actions). */
const DEFAULT_HANDBACK = { pauseBot: false };
const MAX_ACTION = 4000; // integrations.MAX_ACTION, as JSON

/** Show `err` at the fields it names (a `.field-error` line under each, aria-invalid);
 * what names no field here goes to the form's `.form-error`. */
export function fieldErrors(form, err) {
  for (const line of form.querySelectorAll(".field-error")) line.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const general = form.querySelector(".form-error");
  const rest = [];
  for (const f of err?.fields || []) {
    const input = form.querySelector(`[name="${CSS.escape(f.field)}"]:not(:disabled)`);
    if (!input) {
      rest.push(`${f.field}: ${f.message}`);
      continue;
    }
    const line = h("p", { class: "field-error", id: `${input.id}-error`, role: "alert" }, f.message);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", line.id);
    input.after(line);
  }
  const text = !err ? "" : err.fields?.length ? rest.join("; ") : errorText(err);
  general.textContent = text;
  general.hidden = !text;
}

function radio(name, value, label, checked) {
  const input = h("input", { type: "radio", name, value, id: `${name}-${value}`, checked });
  input.defaultChecked = checked; // what form.reset() goes back to
  return h("label", { class: "kind-choice", for: input.id }, input, " ", label);
}

/** The new integration form; `onCreated(answer)` gets the 201 answer (its once-only values). */
export function createForm(ui, onCreated) {
  const { field } = ui;
  const name = h("input", { id: "int-name", name: "name", required: true, maxlength: "200", autocomplete: "off" });
  const url = h("input", { id: "int-channel", name: "channel_url", type: "url", required: true, maxlength: "2000", placeholder: "https://…/chatlayer/webhook", autocomplete: "off" });
  const apiUrl = h("input", { id: "int-api-url", name: "api_url", type: "url", required: true, maxlength: "2000", value: "https://api.chatlayer.ai", autocomplete: "off" });
  const apiToken = h("input", { id: "int-api-token", name: "api_token", type: "password", required: true, maxlength: "2000", autocomplete: "new-password" });
  const token = h("input", { id: "int-token", name: "verify_token", maxlength: "500", autocomplete: "off", placeholder: "leave empty to generate one" });
  const kinds = h("fieldset", { class: "kind-choices" }, h("legend", {}, "Kind"),
    Object.entries(KINDS).map(([value, k]) => radio("kind", value, k.label, value === "smartly")));
  const smartly = h("div", { class: "kind-fields", dataset: { kind: "smartly" } },
    field("Chatlayer channel URL", url, "Where agent replies are POSTed: the bot's Chatlayer Webhook channel."));
  const offloading = h("div", { class: "kind-fields", dataset: { kind: OFFLOADING } },
    field("Chatlayer API URL", apiUrl, "Chatlayer's API for your region, e.g. https://api.chatlayer.ai: replies and the handback go through it."),
    field("Chatlayer API token", apiToken, "An access token of the bot's Chatlayer workspace. Stored, never shown again."));
  const tokenHint = h("p", { class: "hint" });
  const form = h("form", { class: "card form-grid", id: "integration-form", novalidate: true },
    h("h2", {}, "New integration"),
    field("Name", name), kinds, smartly, offloading,
    h("div", { class: "field" }, h("label", { for: token.id }, "Verify token"), token, tokenHint),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary", id: "int-create" }, "Create integration")));
  const kind = () => form.querySelector("input[name=kind]:checked")?.value || "smartly";
  const sync = () => {
    for (const box of [smartly, offloading]) {
      box.hidden = box.dataset.kind !== kind();
      for (const input of box.querySelectorAll("input")) input.disabled = box.hidden;
    }
    tokenHint.textContent = kind() === OFFLOADING
      ? "Chatlayer sends it with its health check when you save the Offloading webhook: paste it there too."
      : "The channel's verify token, sent with every reply.";
  };
  kinds.addEventListener("change", () => { fieldErrors(form, null); sync(); });
  sync();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    fieldErrors(form, null);
    const body = { kind: kind(), name: name.value.trim() };
    if (kind() === OFFLOADING) Object.assign(body, { api_url: apiUrl.value.trim(), api_token: apiToken.value.trim() });
    else body.channel_url = url.value.trim();
    if (token.value.trim()) body.verify_token = token.value.trim();
    form.querySelector("#int-create").disabled = true;
    try {
      const created = await post("/api/integrations", body);
      form.reset();
      sync();
      await onCreated(created);
    } catch (err) {
      fieldErrors(form, err);
    } finally {
      form.querySelector("#int-create").disabled = false;
    }
  });
  return form;
}

function row(label, value) {
  return h("div", { class: "kv" }, h("span", { class: "k" }, label), value);
}

/** The card's rows that depend on the kind: where the bot posts and where replies go. */
export function kindRows(i) {
  const verify = row("Verify token", copyField("verify token", i.verify_token, { id: `token-${i.id}`, secret: true }));
  if (i.kind !== OFFLOADING) {
    return [
      row("Chatlayer URL", copyField("Chatlayer webhook URL", i.chatlayer_webhook_url, { id: `chatlayer-url-${i.id}` })),
      verify,
      row("Channel URL", h("span", { class: "v mono", dir: "ltr" }, i.channel_url)),
    ];
  }
  return [
    row("Kind", h("span", { class: "v", id: `kind-${i.id}` }, KINDS[OFFLOADING].label)),
    verify,
    row("API URL", h("span", { class: "v mono", dir: "ltr", id: `api-url-${i.id}` }, i.api_url || "")),
    row("API token", h("span", { class: "v", id: `api-token-${i.id}` }, i.api_token_set ? "set" : "not set")),
    row("Bot", i.bot_id
      ? h("span", { class: "v mono", dir: "ltr", id: `bot-${i.id}` }, i.bot_id)
      : h("span", { class: "v muted", id: `bot-${i.id}` }, "bound by its first event")),
  ];
}

/** Edit what the kind has: name, channel URL or API URL and token, verify token. */
export function editForm(i, ui) {
  const offloading = i.kind === OFFLOADING;
  const input = (key, label, props) => {
    const el = h("input", { id: `edit-${key}-${i.id}`, maxlength: "2000", autocomplete: "off", ...props });
    return [el, h("label", { for: el.id }, label), el];
  };
  const [name, ...nameField] = input("name", "Name", { name: "name", value: i.name, maxlength: "200" });
  const [url, ...urlField] = offloading
    ? input("api-url", "API URL", { name: "api_url", type: "url", value: i.api_url || "" })
    : input("channel", "Channel URL", { name: "channel_url", type: "url", value: i.channel_url });
  const [apiToken, ...apiTokenField] = offloading
    ? input("api-token", "New API token", { name: "api_token", type: "password", placeholder: "unchanged", autocomplete: "new-password" })
    : [null];
  const [token, ...tokenField] = input("token", "Verify token", { name: "verify_token", value: i.verify_token, maxlength: "500" });
  const form = h("form", { class: "inline-form edit-form", novalidate: true },
    nameField, urlField, apiToken ? apiTokenField : null, tokenField,
    h("button", { type: "submit", class: "small-button", id: `save-${i.id}` }, "Save"),
    h("p", { class: "form-error", role: "alert", hidden: true }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    fieldErrors(form, null);
    const body = {};
    if (name.value.trim() !== i.name) body.name = name.value.trim();
    if (url.value.trim() !== (offloading ? i.api_url || "" : i.channel_url)) body[url.name] = url.value.trim();
    if (apiToken?.value.trim()) body.api_token = apiToken.value.trim();
    if (token.value.trim() !== i.verify_token) body.verify_token = token.value.trim();
    if (!Object.keys(body).length) return;
    try {
      await patch(`/api/integrations/${encodeURIComponent(i.id)}`, body);
      toast("Integration saved.");
      await ui.load();
    } catch (err) {
      fieldErrors(form, err);
    }
  });
  const what = offloading ? "name, API URL, API token or verify token" : "name, channel URL or verify token";
  return h("details", { class: "edit-box" }, h("summary", {}, `Edit ${what}`), form);
}

/** The handback action as typed: [object, null] or [null, what is wrong]. */
function parseAction(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return [null, `not valid JSON: ${err.message}`];
  }
  if (!value || typeof value !== "object" || Array.isArray(value) || !Object.keys(value).length) {
    return [null, "must be a non-empty JSON object"];
  }
  if (JSON.stringify(value).length > MAX_ACTION) return [null, `must be at most ${MAX_ACTION} characters as JSON`];
  return [value, null];
}

/** The conversation action sent to Chatlayer when an agent hands a conversation back
 * to the bot: a JSON editor checked as typed, saved, or reset to the default (null). */
export function handbackForm(i, ui) {
  const current = i.handback_action || DEFAULT_HANDBACK;
  const area = h("textarea", { id: `handback-${i.id}`, name: "handback_action", rows: "5", class: "json-editor", spellcheck: "false", dir: "ltr" });
  area.value = JSON.stringify(current, null, 2);
  const save = h("button", { type: "submit", class: "small-button", id: `save-handback-${i.id}` }, "Save handback action");
  const reset = h("button", { type: "button", class: "small-button", id: `reset-handback-${i.id}`, disabled: !i.handback_action }, "Reset to default");
  const form = h("form", { class: "form-grid handback-form", novalidate: true },
    h("div", { class: "field" },
      h("label", { for: area.id }, "Conversation action (JSON)"), area,
      h("p", { class: "hint" }, `Sent to Chatlayer's conversation actions API on “Hand back to the bot”. Default: ${JSON.stringify(DEFAULT_HANDBACK)}.`)),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, reset, save));
  const check = () => {
    const [, problem] = parseAction(area.value);
    fieldErrors(form, problem ? { fields: [{ field: "handback_action", message: problem }] } : null);
    save.disabled = Boolean(problem);
    return !problem;
  };
  area.addEventListener("input", check);
  const send = async (action, done) => {
    try {
      await patch(`/api/integrations/${encodeURIComponent(i.id)}`, { handback_action: action });
      toast(done);
      await ui.load();
    } catch (err) {
      fieldErrors(form, err);
    }
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (check()) send(parseAction(area.value)[0], "Handback action saved.");
  });
  reset.addEventListener("click", () => send(null, "Handback action reset to the default."));
  return h("details", { class: "edit-box handback-box" },
    h("summary", {}, `Handback action (${i.handback_action ? "custom" : "default"})`), form);
}

/** The card's actions that only one kind has. */
export function kindActions(i, ui) {
  return i.kind === OFFLOADING ? [handbackForm(i, ui)] : [];
}
