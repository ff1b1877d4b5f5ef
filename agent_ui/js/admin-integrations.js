// Bot admins: register integrations, show the URLs to paste, send a test
// message, and watch recent deliveries (re-send failed ones). What differs by
// kind (Smartly or Chatlayer Offloading: the create form, the card's rows, the
// edit form, the handback action) is admin-integration-kinds.js's; the
// once-only values (keyed URL, signing secret) and their rotation are
// admin-integration-secrets.js's; the satisfaction survey's texts are
// admin-survey.js's.

import { createForm, editForm, kindActions, kindRows } from "./admin-integration-kinds.js";
import { disabledBadge, stateActions } from "./admin-integration-state.js";
import { remember, rotateKeyForm, rotateSigningForm, rotationRows, secretPanel, urlFieldId } from "./admin-integration-secrets.js";
import { surveyForm } from "./admin-survey.js";
import { errorText, get, patch, post } from "./api.js";
import { badge, h, mount } from "./dom.js";
import { fullTime } from "./format.js";
import { field, formError } from "./forms.js";
import { store } from "./store.js";
import { toast } from "./toast.js";

let host = null;
let listHost = null;
let integrations = [];
const openDeliveries = new Set();
const deliveryHosts = new Map();
let deliveryTimer = null;

function testForm(i) {
  const recipient = h("input", { id: `test-recipient-${i.id}`, name: "recipient", placeholder: "end-user id", required: true, autocomplete: "off" });
  const text = h("input", { id: `test-text-${i.id}`, name: "text", value: "Test message from the handover console", required: true, autocomplete: "off" });
  const result = h("span", { class: "test-result", role: "status", id: `test-result-${i.id}` });
  const form = h("form", { class: "inline-form" },
    h("label", { for: recipient.id }, "Recipient"), recipient,
    h("label", { for: text.id }, "Text"), text,
    h("button", { type: "submit", class: "small-button", id: `test-${i.id}` }, "Send test"), result,
    h("p", { class: "form-error", role: "alert", hidden: true }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError(form, null);
    result.textContent = "Sending…";
    result.className = "test-result";
    try {
      const r = await post(`/api/integrations/${encodeURIComponent(i.id)}/test`, { recipient: recipient.value.trim(), text: text.value });
      result.textContent = r.ok ? `Channel answered ${r.status} in ${Math.round(r.duration_ms)} ms`
        : `Failed: ${r.status ? `HTTP ${r.status}` : r.error || "no answer"} (${Math.round(r.duration_ms)} ms)`;
      result.classList.add(r.ok ? "ok" : "bad");
    } catch (err) {
      result.textContent = "";
      formError(form, err);
    }
  });
  return form;
}

// --- what the end user is told (domain/notices.py) ----------------------------
const DAYS = [["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"],
  ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"]];

/** "09:00-12:00, 14:00-18:00" -> [["09:00", "12:00"], ["14:00", "18:00"]]; a part
 * that is not a pair is sent as it is, for the server to name it. */
function parseSpans(text) {
  return text.split(",").map((part) => part.trim()).filter(Boolean)
    .map((part) => part.split("-").map((t) => t.trim()));
}

function spansText(spans) {
  return (spans || []).map(([a, b]) => `${a}-${b}`).join(", ");
}

function noticesForm(i) {
  const hours = i.business_hours || { timezone: "", weekly: {}, closed_dates: [] };
  const area = (name, label, value, hint) => {
    const input = h("textarea", { id: `${name}-${i.id}`, name, rows: "2", maxlength: "1000", dir: "auto" });
    input.value = value || "";  // user text: a property, never markup
    return [input, field(label, input, hint)];
  };
  const [queue, queueField] = area("queue_message", "Queue message", i.queue_message,
    "Sent when the handover starts. {position}: place in the queue (1 = next); {wait}: the recent median wait in words. Empty: nothing is sent.");
  const [assigned, assignedField] = area("assigned_message", "Assigned message", i.assigned_message,
    "Sent when an agent takes the conversation. {agent}: the agent's display name.");
  const [offline, offlineField] = area("offline_message", "Offline message", i.offline_message,
    "Sent instead of the queue message outside business hours or while no agent is online.");
  const target = h("input", { id: `frt-${i.id}`, name: "first_response_target_seconds", type: "number", min: "1", max: "86400", step: "1", value: String(i.first_response_target_seconds) });
  const zone = h("input", { id: `tz-${i.id}`, name: "business_hours.timezone", autocomplete: "off", placeholder: "Europe/Paris", value: hours.timezone || "" });
  const days = DAYS.map(([key, label]) => {
    const input = h("input", { id: `hours-${key}-${i.id}`, name: `business_hours.weekly.${key}`, autocomplete: "off", placeholder: "closed", value: spansText(hours.weekly?.[key]) });
    return [key, input, field(label, input)];
  });
  const closed = h("input", { id: `closed-${i.id}`, name: "business_hours.closed_dates", autocomplete: "off", placeholder: "2026-12-25, 2027-01-01", value: (hours.closed_dates || []).join(", ") });
  const form = h("form", { class: "form-grid notices-form", novalidate: true },
    queueField, assignedField, offlineField,
    field("First response target (seconds)", target),
    h("fieldset", { class: "business-hours" },
      h("legend", {}, "Business hours"),
      field("Time zone", zone, "An IANA time zone. Empty: always open (no business hours)."),
      days.map(([, , f]) => f),
      h("p", { class: "hint" }, "Per day: HH:MM-HH:MM, several separated by commas (24:00 ends the day). Empty: closed that day."),
      field("Closed dates", closed, "YYYY-MM-DD, separated by commas.")),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "small-button", id: `save-notices-${i.id}` }, "Save messages and hours")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError(form, null);
    const body = {
      queue_message: queue.value, assigned_message: assigned.value, offline_message: offline.value,
      first_response_target_seconds: target.value === "" ? null : Number(target.value),
      business_hours: null,
    };
    if (zone.value.trim()) {
      const weekly = {};
      for (const [key, input] of days) if (input.value.trim()) weekly[key] = parseSpans(input.value);
      body.business_hours = { timezone: zone.value.trim(), weekly,
        closed_dates: closed.value.split(/[\s,]+/).filter(Boolean) };
    }
    try {
      await patch(`/api/integrations/${encodeURIComponent(i.id)}`, body);
      toast("Messages and business hours saved.");
      await load();
    } catch (err) {
      formError(form, err);
      // "business_hours.weekly.mon.0.1" marks the Monday field.
      for (const f of err?.fields || []) {
        const input = [...form.querySelectorAll("[name]")].filter((el) => f.field === el.name || f.field.startsWith(`${el.name}.`))
          .sort((a, b) => b.name.length - a.name.length)[0];
        input?.setAttribute("aria-invalid", "true");
      }
    }
  });
  const set = [i.queue_message, i.assigned_message, i.offline_message].filter(Boolean).length;
  return h("details", { class: "edit-box notices-box" },
    h("summary", {}, `What the end user is told (${set ? `${set} message${set > 1 ? "s" : ""}` : "nothing"}${i.business_hours ? ", business hours" : ""})`),
    form);
}

// The error of a delivery that has not succeeded (yet): its last error, or the
// channel's non-2xx status; nothing for a delivered one or one not tried yet.
function deliveryError(d) {
  if (d.state === "delivered") return "";
  if (d.last_error) return d.last_error;
  return d.last_status && (d.last_status < 200 || d.last_status > 299) ? `HTTP ${d.last_status}` : "";
}

function deliveryRow(d, integrationId) {
  const error = deliveryError(d);
  return h("tr", { dataset: { deliveryId: String(d.id), state: d.state } },
    h("td", { class: "num" }, String(d.id)),
    h("td", {}, d.ticket_id ? h("a", { href: `#/ticket/${d.ticket_id}`, class: "ticket-link", title: `Open ticket #${d.ticket_id}` }, `#${d.ticket_id}`) : "—"),
    h("td", { class: "recipient-cell", dir: "auto" }, d.recipient),
    h("td", { class: "excerpt-cell", dir: "auto", title: d.excerpt }, d.excerpt || "—"),
    h("td", {}, badge(d.state, `delivery-${d.state}`)),
    h("td", { class: "num" }, String(d.attempts)),
    h("td", { class: "error-cell", dir: "auto" }, error || ""),
    h("td", {}, fullTime(d.created_at)),
    h("td", {}, d.state === "delivered" ? fullTime(d.delivered_at) : d.next_attempt_at ? `next ${fullTime(d.next_attempt_at)}` : "—"),
    h("td", {}, d.state === "failed" ? h("button", {
      type: "button", class: "small-button", onclick: async (ev) => {
        ev.currentTarget.disabled = true;
        try {
          await post(`/api/messages/${d.message_id}/resend`);
          toast(`Delivery ${d.id} queued again.`);
        } catch (err) {
          toast(`Could not re-send: ${errorText(err)}`, "error");
        }
        loadDeliveries(integrationId);
      },
    }, "Resend") : null));
}

async function loadDeliveries(id) {
  const target = deliveryHosts.get(id);
  if (!target) return;
  try {
    const data = await get(`/api/integrations/${encodeURIComponent(id)}/deliveries`);
    const rows = data.deliveries.slice(0, 50);
    const tests = data.tests || [];
    mount(target, [rows.length
      ? h("table", { class: "table deliveries", id: `deliveries-${id}` },
        h("thead", {}, h("tr", {}, ["#", "Ticket", "To", "Message", "State", "Attempts", "Error", "Created", "Delivered / next", ""].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.map((d) => deliveryRow(d, id))))
      : h("p", { class: "empty" }, "No deliveries yet."),
    tests.length ? h("h3", { class: "tests-title" }, "Test sends") : null,
    tests.length ? h("table", { class: "table deliveries test-sends", id: `test-sends-${id}` },
      h("thead", {}, h("tr", {}, ["To", "Message", "Outcome", "Error", "Sent"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, tests.map((t) => h("tr", { dataset: { testSend: String(t.id) } },
        h("td", { class: "recipient-cell", dir: "auto" }, t.recipient),
        h("td", { class: "excerpt-cell", dir: "auto", title: t.excerpt }, t.excerpt),
        h("td", {}, t.ok ? badge(`delivered ${t.status}`, "delivery-delivered")
          : badge(t.status ? `failed ${t.status}` : "failed", "delivery-failed")),
        h("td", { class: "error-cell", dir: "auto" }, t.error || ""),
        h("td", {}, fullTime(t.at)))))) : null]);
  } catch (err) {
    mount(target, h("p", { class: "form-error" }, errorText(err)));
  }
}

function deliveriesSection(i) {
  const target = h("div", { class: "deliveries-host" });
  deliveryHosts.set(i.id, target);
  const box = h("details", { class: "deliveries-box", open: openDeliveries.has(i.id) ? true : null },
    h("summary", {}, "Recent deliveries"),
    h("div", { class: "deliveries-tools" }, h("button", { type: "button", class: "small-button", onclick: () => loadDeliveries(i.id) }, "Refresh")),
    target);
  box.addEventListener("toggle", () => {
    if (box.open) {
      openDeliveries.add(i.id);
      loadDeliveries(i.id);
    } else openDeliveries.delete(i.id);
  });
  if (openDeliveries.has(i.id)) loadDeliveries(i.id);
  return box;
}

function integrationCard(i) {
  return h("article", { class: "card integration", dataset: { integrationId: i.id, kind: i.kind }, "aria-labelledby": `int-title-${i.id}` },
    h("header", { class: "card-head" },
      h("h3", { id: `int-title-${i.id}`, class: "integration-name", dir: "auto", title: i.name }, i.name),
      disabledBadge(i),
      h("span", { class: "muted" }, `id ${i.id} · created ${fullTime(i.created_at)}`)),
    secretPanel(i, ui),
    kindRows(i),
    rotationRows(i),
    h("div", { class: "card-actions" }, rotateKeyForm(i, ui), rotateSigningForm(i, ui), testForm(i), editForm(i, ui),
      kindActions(i, ui), noticesForm(i), surveyForm(i, field, formError, load), stateActions(i, ui)),
    deliveriesSection(i));
}

function render() {
  if (!listHost) return;
  deliveryHosts.clear();
  mount(listHost, integrations.length
    ? integrations.map(integrationCard)
    : h("p", { class: "empty" }, "No integration yet. Create one to get the URLs to paste into the bot platform."));
}

async function load() {
  try {
    const data = await get("/api/integrations");
    integrations = data.integrations;
    render();
  } catch (err) {
    mount(listHost, h("p", { class: "form-error" }, errorText(err)));
  }
}

/** A new integration: its once-only values shown on its card, focused. */
async function created(answer) {
  remember(answer, "created");
  toast(`Integration “${answer.name}” created. Copy its URL and signing secret now.`);
  await load();
  document.getElementById(urlFieldId(answer))?.focus();
}

// What the kinds' and secrets' parts of a card use.
const ui = { field, formError, load, render };

export function showIntegrations(el) {
  host = el;
  listHost = h("div", { class: "integrations", id: "integrations" });
  mount(host, h("div", { class: "admin-grid" }, createForm(ui, created), h("section", { "aria-label": "Integrations" }, h("h2", {}, "Integrations"), listHost)));
  load();
}

export function initIntegrations() {
  store.on("frame", (frame) => {
    if (frame.type !== "delivery.updated" || !openDeliveries.size) return;
    clearTimeout(deliveryTimer);
    deliveryTimer = setTimeout(() => { for (const id of openDeliveries) loadDeliveries(id); }, 500);
  });
}
