// The admin view: tabs for integrations, users and event webhooks.

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
      tabLink("webhooks", "Webhooks")),
    panel));
  if (tab === "users") showUsers(panel);
  else if (tab === "webhooks") showWebhooks(panel);
  else showIntegrations(panel);
}
