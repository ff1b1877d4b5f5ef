// An integration's once-only values: the webhook URL that carries its key (the
// Smartly or the Offloading URL, by kind) and the signing secret of its replies,
// shown right after creation or rotation until hidden (the server keeps only the
// key's hash, and never shows the secret again); the rotation of either with a
// grace period, and when each was last rotated. `ui` is admin-integrations.js's
// {formError, load, render}.

import { post } from "./api.js";
import { copyField } from "./copy.js";
import { h } from "./dom.js";
import { fullTime, roughDuration } from "./format.js";
import { kindOf, OFFLOADING } from "./admin-integration-kinds.js";
import { toast } from "./toast.js";

// integration id -> {url, urlNote: "created"|"rotated", signingSecret, signingNote}
const shown = new Map();

/** Keep the once-only values of an answer of POST /api/integrations (`"created"`),
 * rotate-key (`"rotated"`) or rotate-signing-secret (`"signing"`). */
export function remember(answer, what) {
  const values = { ...shown.get(answer.id) };
  const url = answer[kindOf(answer).urlField];
  if (what !== "signing" && url) Object.assign(values, { url, urlNote: what });
  if (answer.signing_secret) {
    Object.assign(values, { signingSecret: answer.signing_secret, signingNote: what === "created" ? "created" : "rotated" });
  }
  shown.set(answer.id, values);
}

/** The id of the field showing `i`'s keyed URL once. */
export function urlFieldId(i) {
  return `${kindOf(i).urlId}-${i.id}`;
}

const SIGNING_USE = {
  smartly: "It signs every reply sent to the channel (Standard Webhooks headers webhook-id, "
    + "webhook-timestamp, webhook-signature): give it to a proxy in front of the channel so it can "
    + "check that replies come from this desk.",
  [OFFLOADING]: "It signs replies sent to a Chatlayer Webhook channel, for a proxy to verify. "
    + "Replies of this kind go to Chatlayer's API with the API token, unsigned: nothing needs it today.",
};

function urlNote(i, secret) {
  const k = kindOf(i);
  const fresh = secret.urlNote === "rotated" ? `New ${k.urlLabel}` : k.urlLabel;
  return i.kind === OFFLOADING
    ? `${fresh} — paste it with the verify token into Chatlayer (Settings → Offloading → Webhook). Its key is shown only now.`
    : `${fresh} — paste it into the bot's webhook integration. Its key is shown only now.`;
}

/** The once-only values of `i` while they are shown, else where its keyed URL went. */
export function secretPanel(i, ui) {
  const secret = shown.get(i.id);
  const k = kindOf(i);
  if (!secret) {
    return h("div", { class: "kv" }, h("span", { class: "k" }, `${k.name} URL`),
      h("span", { class: "v muted" }, "Shown once, when the integration is created or its key rotated. Rotate the key to get a new one."));
  }
  return h("div", { class: "secret-panel", role: "status" },
    secret.url ? [
      h("p", { class: "secret-note" }, urlNote(i, secret)),
      copyField(k.urlLabel, secret.url, { id: urlFieldId(i) }),
      i.kind === OFFLOADING ? [
        h("p", { class: "hint" }, "Verify token (Chatlayer's health check sends it when you save the webhook):"),
        copyField("verify token to paste into Chatlayer", i.verify_token, { id: `offloading-token-${i.id}` }),
      ] : null,
    ] : null,
    secret.signingSecret ? [
      h("p", { class: "secret-note" }, secret.signingNote === "rotated"
        ? "New signing secret — shown only now." : "Signing secret — shown only now."),
      h("p", { class: "hint" }, SIGNING_USE[i.kind] || SIGNING_USE.smartly),
      copyField("signing secret", secret.signingSecret, { id: `signing-secret-${i.id}` }),
    ] : null,
    h("button", { type: "button", class: "link-button", onclick: () => { shown.delete(i.id); ui.render(); } }, "I have copied it — hide"));
}

const GRACE = [["", "Server default (24 h unless configured)"], ["3600", "1 hour"], ["86400", "24 hours"], ["604800", "7 days"]];

function graceText(until, what) {
  if (!until || Date.parse(until) <= Date.now()) return null;
  return h("span", { class: "grace" },
    ` · ${what} until ${fullTime(until)} (${roughDuration((Date.parse(until) - Date.now()) / 1000)} left)`);
}

/** When the key and the signing secret were last rotated, and the grace of the old ones. */
export function rotationRows(i) {
  return [
    h("div", { class: "kv" }, h("span", { class: "k" }, "Key"),
      h("span", { class: "v", id: `key-info-${i.id}` },
        i.key_rotated_at ? `rotated ${fullTime(i.key_rotated_at)}` : "original key",
        graceText(i.previous_key_valid_until, "previous key still accepted"))),
    h("div", { class: "kv" }, h("span", { class: "k" }, "Signing secret"),
      h("span", { class: "v", id: `signing-info-${i.id}` },
        i.signing_secret_rotated_at ? `rotated ${fullTime(i.signing_secret_rotated_at)}` : "made with the integration",
        graceText(i.previous_signing_secret_valid_until, "previous secret still signs"))),
  ];
}

function rotateForm(i, ui, { what, id, path, label, keeps, stops, done }) {
  const select = h("select", { id: `${id}grace-${i.id}`, name: "grace_seconds" },
    [...GRACE, ["0", stops]].map(([v, l]) => h("option", { value: v }, l)));
  const form = h("form", { class: "inline-form" },
    h("label", { for: select.id }, keeps), select,
    h("button", { type: "submit", class: "small-button", id: `${id}rotate-${i.id}` }, label),
    h("p", { class: "form-error", role: "alert", hidden: true }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ui.formError(form, null);
    const body = select.value === "" ? {} : { grace_seconds: Number(select.value) };
    try {
      const rotated = await post(`/api/integrations/${encodeURIComponent(i.id)}/${path}`, body);
      remember(rotated, what);
      toast(done(rotated));
      await ui.load();
      document.getElementById(what === "signing" ? `signing-secret-${i.id}` : urlFieldId(i))?.focus();
    } catch (err) {
      ui.formError(form, err);
    }
  });
  return form;
}

/** Rotate the key (a new keyed URL, shown once). */
export function rotateKeyForm(i, ui) {
  return rotateForm(i, ui, {
    what: "rotated", id: "", path: "rotate-key", label: "Rotate key",
    keeps: "Old key keeps working for", stops: "None — old key stops now",
    done: (r) => (r.previous_key_valid_until
      ? `Key rotated. The old URL works until ${fullTime(r.previous_key_valid_until)}.` : "Key rotated."),
  });
}

/** Rotate the signing secret (the new one shown once; the old one signs too during the grace). */
export function rotateSigningForm(i, ui) {
  return rotateForm(i, ui, {
    what: "signing", id: "signing-", path: "rotate-signing-secret", label: "Rotate signing secret",
    keeps: "Old secret keeps signing for", stops: "None — old secret stops now",
    done: (r) => (r.previous_signing_secret_valid_until
      ? `Signing secret rotated. Replies carry both signatures until ${fullTime(r.previous_signing_secret_valid_until)}.`
      : "Signing secret rotated."),
  });
}
