// The admin view: tabs for integrations, users, event webhooks and the audit trail.

import { showAudit } from "./admin-audit.js";
import { showIntegrations } from "./admin-integrations.js";
import { showUsers } from "./admin-users.js";
import { showWebhooks } from "./admin-webhooks.js";
import { h, mount } from "./dom.js";

export function showAdmin(host, tab) {
  const panel = h("div", { class: "admin-panel", id: `admin-${tab}`, role: "tabpanel" });
  const tabLink = (name, label) => h("a", {
    href: `#/admin/${name}`, class: "tab", role: "tab", "aria-selected": String(tab === name), id: `admin-tab-${name}`,
  }, label);
  mount(host, h("div", { class: "admin" },
    h("h1", { class: "view-title" }, "Administration"),
    h("div", { class: "tabs", role: "tablist", "aria-label": "Administration" },
      tabLink("integrations", "Integrations"), tabLink("users", "Users"),
      tabLink("webhooks", "Webhooks"), tabLink("audit", "Audit")),
    panel));
  if (tab === "users") showUsers(panel);
  else if (tab === "webhooks") showWebhooks(panel);
  else if (tab === "audit") showAudit(panel);
  else showIntegrations(panel);
}
