// Event webhooks (docs/webhooks.md): subscribe the customer's own URLs to events,
// show the signing secret once (at creation and rotation) with a copy button,
// change the events, disable, delete (asked twice), send a test, and read the
// delivery log (re-send dead letters). User text only through textContent (dom.js).

import { errorText, get, patch, post, request } from "./api.js";
import { copyField } from "./copy.js";
import { badge, h, mount } from "./dom.js";
import { fullTime } from "./format.js";
import { field, formError as showFormError } from "./forms.js";
import { toast } from "./toast.js";

export const EVENTS = [
  ["ticket.created", "Ticket created (handover)"],
  ["ticket.assigned", "Ticket assigned (claim, routing, transfer)"],
  ["ticket.requeued", "Ticket back in the queue"],
  ["ticket.resolved", "Ticket resolved or abandoned"],
  ["ticket.rated", "Satisfaction rating (then comment) received"],
  ["message.created", "Message (end user, bot, agent; never notes)"],
];
const GRACE_CHOICES = [
  ["", "Server default (24 h unless configured)"],
  ["3600", "1 hour"], ["86400", "24 hours"], ["0", "None — old secret stops now"],
];

let listHost = null;
let hooks = [];
const secrets = new Map(); // webhook id -> {secret, note}, shown once
const openLogs = new Set();

const path = (id, tail = "") => `/api/webhooks/${encodeURIComponent(id)}${tail}`;

// `events[2]` names the event check boxes (all named "events").
const formError = (form, err) => showFormError(form, err, (path) => path.startsWith("events") ? "events" : path);

function eventBoxes(prefix, chosen) {
  return h("fieldset", { class: "event-choices" }, h("legend", {}, "Events"),
    EVENTS.map(([name, label]) => {
      const id = `${prefix}-${name.replace(".", "-")}`;
      return h("label", { class: "check-field", for: id },
        h("input", { type: "checkbox", id, name: "events", value: name, checked: chosen.includes(name) }), ` ${label} `,
        h("code", {}, name));
    }));
}

function checked(form) {
  return [...form.querySelectorAll('input[name="events"]:checked')].map((el) => el.value);
}

function createForm() {
  const url = h("input", { id: "wh-url", name: "url", type: "url", required: true, maxlength: "2000", placeholder: "https://crm.example.com/hooks/handover", autocomplete: "off" });
  const description = h("input", { id: "wh-description", name: "description", maxlength: "500", autocomplete: "off", placeholder: "optional" });
  const form = h("form", { class: "card form-grid", id: "webhook-form", novalidate: true },
    h("h2", {}, "New event webhook"),
    field("URL", url, "We POST each event there, signed (Standard Webhooks). Public addresses only."),
    field("Description", description),
    eventBoxes("wh-new", ["ticket.resolved"]),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary", id: "wh-create" }, "Create webhook")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError(form, null);
    const body = { url: url.value.trim(), events: checked(form) };
    if (description.value.trim()) body.description = description.value.trim();
    form.querySelector("#wh-create").disabled = true;
    try {
      const created = await post("/api/webhooks", body);
      secrets.set(created.id, { secret: created.secret, note: "created" });
      form.reset();
      toast("Webhook created. Copy its signing secret now: it is shown only once.");
      await load();
      document.getElementById(`wh-secret-${created.id}`)?.focus();
    } catch (err) {
      formError(form, err);
    } finally {
      form.querySelector("#wh-create").disabled = false;
    }
  });
  return form;
}

function secretPanel(w) {
  const shown = secrets.get(w.id);
  if (!shown) {
    return h("div", { class: "kv" }, h("span", { class: "k" }, "Signing secret"),
      h("span", { class: "v muted" }, "Shown once, at creation or rotation. Rotate it to get a new one."));
  }
  return h("div", { class: "secret-panel", role: "status" },
    h("p", { class: "secret-note" }, shown.note === "rotated"
      ? "New signing secret — give it to the receiving system. It is shown only now; the old one also signs during the grace period."
      : "Signing secret — give it to the receiving system to verify our signatures. It is shown only now."),
    copyField("signing secret", shown.secret, { id: `wh-secret-${w.id}`, secret: true }),
    h("button", { type: "button", class: "link-button", onclick: () => { secrets.delete(w.id); render(); } }, "I have copied it — hide"));
}

function editForm(w) {
  const url = h("input", { id: `wh-edit-url-${w.id}`, name: "url", type: "url", value: w.url, maxlength: "2000", autocomplete: "off" });
  const form = h("form", { class: "form-grid edit-form", novalidate: true },
    field("URL", url), eventBoxes(`wh-edit-${w.id}`, w.events),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "small-button", id: `wh-save-${w.id}` }, "Save")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError(form, null);
    const body = { events: checked(form) };
    if (url.value.trim() !== w.url) body.url = url.value.trim();
    try {
      await patch(path(w.id), body);
      toast("Webhook saved.");
      await load();
    } catch (err) {
      formError(form, err);
    }
  });
  return h("details", { class: "edit-box" }, h("summary", {}, "Edit URL and events"), form);
}

function rotateForm(w) {
  const select = h("select", { id: `wh-grace-${w.id}`, name: "grace_seconds" }, GRACE_CHOICES.map(([v, l]) => h("option", { value: v }, l)));
  const form = h("form", { class: "inline-form" },
    h("label", { for: select.id }, "Old secret also signs for"), select,
    h("button", { type: "submit", class: "small-button", id: `wh-rotate-${w.id}` }, "Rotate secret"),
    h("p", { class: "form-error", role: "alert", hidden: true }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError(form, null);
    try {
      const body = select.value === "" ? {} : { grace_seconds: Number(select.value) };
      const rotated = await post(path(w.id, "/rotate-secret"), body);
      secrets.set(w.id, { secret: rotated.secret, note: "rotated" });
      toast("Secret rotated. Copy the new one now.");
      await load();
    } catch (err) {
      formError(form, err);
    }
  });
  return form;
}

async function act(button, what, done) {
  button.disabled = true;
  try {
    await what();
    if (done) toast(done);
    await load();
  } catch (err) {
    toast(errorText(err), "error");
    button.disabled = false;
  }
}

function actions(w) {
  const test = h("button", { type: "button", class: "small-button", id: `wh-test-${w.id}`, disabled: w.disabled },
    "Send test");
  test.addEventListener("click", () => act(test, async () => {
    await post(path(w.id, "/test"));
    openLogs.add(w.id);
  }, "Test event queued: see the delivery log."));
  const toggle = h("button", { type: "button", class: "small-button", id: `wh-toggle-${w.id}` }, w.disabled ? "Enable" : "Disable");
  toggle.addEventListener("click", () => act(toggle, () => patch(path(w.id), { disabled: !w.disabled }),
    w.disabled ? "Webhook enabled." : "Webhook disabled: nothing is queued for it."));
  const remove = h("button", { type: "button", class: "small-button danger", id: `wh-delete-${w.id}` }, "Delete…");
  const confirmBox = h("span", { class: "confirm", hidden: true, role: "group", "aria-label": "Confirm deletion" },
    "Delete this webhook and its delivery log? ",
    h("button", { type: "button", class: "small-button danger", id: `wh-delete-yes-${w.id}`, onclick: (ev) => act(ev.currentTarget, () => request("DELETE", path(w.id)), "Webhook deleted.") }, "Delete"),
    h("button", { type: "button", class: "link-button", onclick: () => { confirmBox.hidden = true; remove.hidden = false; remove.focus(); } }, "Cancel"));
  remove.addEventListener("click", () => {
    remove.hidden = true;
    confirmBox.hidden = false;
    confirmBox.querySelector("button")?.focus();
  });
  return h("div", { class: "inline-form" }, test, toggle, remove, confirmBox);
}

function deliveryRow(d, webhookId) {
  return h("tr", { dataset: { deliveryId: String(d.id), state: d.state } },
    h("td", { class: "num" }, String(d.id)),
    h("td", {}, h("code", {}, d.event_type)),
    h("td", {}, badge(d.state, `delivery-${d.state}`)),
    h("td", { class: "num" }, String(d.attempts)),
    h("td", { class: "num" }, d.last_status ? String(d.last_status) : "—"),
    h("td", { class: "error-cell", dir: "auto" }, d.last_error || ""),
    h("td", {}, fullTime(d.created_at)),
    h("td", {}, d.state === "delivered" ? fullTime(d.delivered_at) : d.next_attempt_at ? `next ${fullTime(d.next_attempt_at)}` : "—"),
    h("td", {}, d.state === "failed" ? h("button", {
      type: "button", class: "small-button", onclick: (ev) => act(ev.currentTarget, async () => {
        await post(`/api/webhook-deliveries/${d.id}/resend`);
        openLogs.add(webhookId);
      }, `Delivery ${d.id} queued again.`),
    }, "Resend") : null));
}

async function loadLog(w, target) {
  try {
    const data = await get(path(w.id, "/deliveries"));
    mount(target, data.deliveries.length
      ? h("table", { class: "table deliveries", id: `wh-deliveries-${w.id}` },
        h("thead", {}, h("tr", {}, ["#", "Event", "State", "Attempts", "Status", "Error", "Created", "Delivered / next", ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, data.deliveries.map((d) => deliveryRow(d, w.id))))
      : h("p", { class: "empty" }, "No deliveries yet."));
    // Pending ones settle soon: look again while the log is open and shown.
    if (data.deliveries.some((d) => d.state === "queued" || d.state === "retrying")) {
      setTimeout(() => { if (target.isConnected && openLogs.has(w.id)) loadLog(w, target); }, 1000);
    }
  } catch (err) {
    mount(target, h("p", { class: "form-error" }, errorText(err)));
  }
}

function logSection(w) {
  const target = h("div", { class: "deliveries-host" });
  const box = h("details", { class: "deliveries-box", open: openLogs.has(w.id) ? true : null },
    h("summary", {}, "Delivery log"),
    h("div", { class: "deliveries-tools" }, h("button", { type: "button", class: "small-button", id: `wh-refresh-${w.id}`, onclick: () => loadLog(w, target) }, "Refresh")),
    target);
  box.addEventListener("toggle", () => {
    if (box.open) {
      openLogs.add(w.id);
      loadLog(w, target);
    } else openLogs.delete(w.id);
  });
  if (openLogs.has(w.id)) loadLog(w, target);
  return box;
}

function webhookCard(w) {
  return h("article", { class: "card webhook", dataset: { webhookId: String(w.id) }, "aria-labelledby": `wh-title-${w.id}` },
    h("header", { class: "card-head" },
      h("h3", { id: `wh-title-${w.id}`, class: "integration-name mono", dir: "ltr", title: w.url }, w.url),
      w.disabled ? badge(w.disabled_reason ? `disabled: ${w.disabled_reason}` : "disabled", "delivery-failed") : null,
      h("span", { class: "muted" }, `id ${w.id} · created ${fullTime(w.created_at)}`)),
    w.description ? h("p", { class: "muted", dir: "auto" }, w.description) : null,
    h("div", { class: "kv" }, h("span", { class: "k" }, "Events"), h("span", { class: "v" }, w.events.join(", "))),
    secretPanel(w),
    w.previous_secret_expires_at ? h("p", { class: "grace" }, `The previous secret also signs until ${fullTime(w.previous_secret_expires_at)}.`) : null,
    h("div", { class: "card-actions" }, actions(w), rotateForm(w), editForm(w)),
    logSection(w));
}

function render() {
  if (!listHost) return;
  mount(listHost, hooks.length
    ? hooks.map(webhookCard)
    : h("p", { class: "empty" }, "No event webhook yet. Subscribe a URL of your own systems (a CRM, the bot's middleware) to ticket and message events."));
}

async function load() {
  try {
    hooks = (await get("/api/webhooks")).webhooks;
    render();
  } catch (err) {
    mount(listHost, h("p", { class: "form-error" }, errorText(err)));
  }
}

export function showWebhooks(el) {
  listHost = h("div", { class: "integrations", id: "webhooks" });
  mount(el, h("div", { class: "admin-grid" }, createForm(),
    h("section", { "aria-label": "Event webhooks" }, h("h2", {}, "Event webhooks"), listHost)));
  load();
}
