// The audit trail (GET /api/audit): who did what, when, from which address and what
// changed, newest first, narrowed by actor, action, target and dates, a page at a
// time ("Older"). Every value is text (`h`), secrets were never recorded.

import { errorText, get } from "./api.js";
import { h, mount } from "./dom.js";
import { fullTime } from "./format.js";

let listHost = null;
let moreHost = null;
let filters = {};

function field(id, label, input, hint) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("p", { class: "hint" }, hint) : null);
}

function changesText(changes) {
  if (!changes) return "";
  return Object.entries(changes).map(([name, value]) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      if (value.changed === true) return `${name}: changed`;
      if ("before" in value || "after" in value) {
        return `${name}: ${JSON.stringify(value.before ?? null)} → ${JSON.stringify(value.after ?? null)}`;
      }
    }
    return `${name}: ${JSON.stringify(value)}`;
  }).join("; ");
}

function actorText(e) {
  const who = e.actor.username || "system";
  return e.actor.role ? `${who} (${e.actor.role})` : who;
}

function row(e) {
  return h("tr", { dataset: { auditId: String(e.id), action: e.action } },
    h("td", { class: "nowrap" }, fullTime(e.at)),
    h("td", { dir: "auto" }, actorText(e)),
    h("td", { class: "mono" }, e.address || ""),
    h("td", { class: "mono" }, e.action),
    h("td", { class: "mono", dir: "auto" }, e.target ? `${e.target.type} ${e.target.id ?? ""}`.trim() : ""),
    h("td", { class: "audit-changes", dir: "auto" }, changesText(e.changes)),
    h("td", { class: "mono muted" }, e.request_id || ""));
}

async function load(before = null) {
  const params = new URLSearchParams({ ...filters, limit: "50" });
  if (before) params.set("before", String(before));
  try {
    const page = await get(`/api/audit?${params}`);
    const body = listHost.querySelector("tbody");
    if (!before) body.replaceChildren();
    for (const e of page.events) body.appendChild(row(e));
    listHost.querySelector(".empty").hidden = body.children.length > 0;
    mount(moreHost, page.next_before
      ? h("button", { type: "button", class: "small-button", id: "audit-older", onclick: () => load(page.next_before) }, "Older")
      : null);
  } catch (err) {
    mount(moreHost, h("p", { class: "form-error", role: "alert" }, errorText(err)));
  }
}

function filterForm() {
  const inputs = {
    actor: h("input", { id: "audit-actor", name: "actor", maxlength: "100", autocomplete: "off", placeholder: "username or cli" }),
    action: h("input", { id: "audit-action", name: "action", maxlength: "61", autocomplete: "off", placeholder: "integration or user.created" }),
    target: h("input", { id: "audit-target", name: "target", maxlength: "231", autocomplete: "off", placeholder: "integration:ID or user:3" }),
    from: h("input", { id: "audit-from", name: "from", type: "date" }),
    to: h("input", { id: "audit-to", name: "to", type: "date" }),
  };
  const form = h("form", { class: "card form-grid audit-filters", id: "audit-form", novalidate: true },
    h("h2", {}, "Audit trail"),
    h("p", { class: "hint" }, "Who changed what, when and from where: users, integrations, assignments, re-sends, erasures, sign-ins. Secrets are never recorded."),
    field("audit-actor", "Actor", inputs.actor), field("audit-action", "Action", inputs.action, "An action or its first part"),
    field("audit-target", "Target", inputs.target), field("audit-from", "From", inputs.from), field("audit-to", "To", inputs.to),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary", id: "audit-apply" }, "Show")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    filters = {};
    for (const [name, input] of Object.entries(inputs)) if (input.value.trim()) filters[name] = input.value.trim();
    load();
  });
  return form;
}

export function showAudit(el) {
  filters = {};
  listHost = h("div", { class: "audit-list", id: "audit-list" },
    h("table", { class: "table audit-table" },
      h("thead", {}, h("tr", {}, ["When", "Who", "Address", "Action", "Target", "What changed", "Request"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {})),
    h("p", { class: "empty", hidden: true }, "Nothing recorded matches."));
  moreHost = h("div", { class: "audit-more" });
  mount(el, h("div", { class: "admin-stack" }, filterForm(), h("section", { "aria-label": "Audit events" }, listHost, moreHost)));
  load();
}
