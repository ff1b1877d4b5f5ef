// Bot admins: staff accounts — create with a role, change role, disable /
// enable, reset a password (and whether it must be changed at the next sign-in),
// set what routing gives each one (capacity, skills).

import { errorText, get, patch, post } from "./api.js";
import { badge, h, mount } from "./dom.js";
import { fullTime } from "./format.js";
import { formError } from "./forms.js";
import { store } from "./store.js";
import { toast } from "./toast.js";

const ROLES = ["agent", "supervisor", "admin"];

let listHost = null;
let users = [];
let resetting = null; // user id with the password form open

function roleSelect(id, value) {
  const select = h("select", { id, name: "role" }, ROLES.map((r) => h("option", { value: r }, r)));
  select.value = value;
  return select;
}

function createForm() {
  const username = h("input", { id: "user-name", name: "username", required: true, maxlength: "100", autocomplete: "off", spellcheck: "false" });
  const role = roleSelect("user-role", "agent");
  const password = h("input", { id: "user-password", name: "password", type: "password", minlength: "8", required: true, autocomplete: "new-password" });
  const mustChange = h("input", { id: "user-must-change", name: "must_change_password", type: "checkbox", checked: true });
  const form = h("form", { class: "card form-grid", id: "user-form", novalidate: true },
    h("h2", {}, "New user"),
    h("div", { class: "field" }, h("label", { for: "user-name" }, "Username"), username, h("p", { class: "hint" }, "Letters, digits and . _ @ -")),
    h("div", { class: "field" }, h("label", { for: "user-role" }, "Role"), role,
      h("p", { class: "hint" }, "Agents answer; supervisors also watch and assign; admins also manage integrations and users.")),
    h("div", { class: "field" }, h("label", { for: "user-password" }, "Initial password"), password, h("p", { class: "hint" }, "At least 8 characters. Share it privately.")),
    h("label", { class: "check-field" }, mustChange, " Must choose a new password at the first sign-in"),
    h("p", { class: "form-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary", id: "user-create" }, "Create user")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError(form, null);
    try {
      const user = await post("/api/users", { username: username.value.trim(), role: role.value, password: password.value,
        must_change_password: mustChange.checked });
      form.reset();
      toast(`User ${user.username} created.`);
      load();
    } catch (err) {
      formError(form, err);
    }
  });
  return form;
}

async function change(user, body, done) {
  try {
    await patch(`/api/users/${user.id}`, body);
    toast(done);
    load();
    store.loadAgents();
  } catch (err) {
    toast(errorText(err), "error");
  }
}

function passwordForm(user) {
  const input = h("input", { type: "password", id: `reset-${user.id}`, minlength: "8", autocomplete: "new-password", "aria-label": `New password for ${user.username}` });
  const mustChange = h("input", { type: "checkbox", id: `reset-must-change-${user.id}`, checked: true });
  const form = h("form", { class: "inline-form" }, input,
    h("label", { class: "check-field", for: `reset-must-change-${user.id}` }, mustChange, " must change it"),
    h("button", { type: "submit", class: "small-button" }, "Set password"),
    h("button", { type: "button", class: "link-button", onclick: () => { resetting = null; render(); } }, "Cancel"),
    h("p", { class: "form-error", role: "alert", hidden: true }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError(form, null);
    try {
      await patch(`/api/users/${user.id}`, { password: input.value, must_change_password: mustChange.checked });
      resetting = null;
      toast(`Password of ${user.username} changed; their sessions were signed out.`);
      load();
    } catch (err) {
      formError(form, err);
    }
  });
  queueMicrotask(() => input.focus());
  return form;
}

// Capacity (empty: the default) and skills (comma-separated; empty: any ticket).
function routingCell(user) {
  const capacity = h("input", { type: "number", id: `capacity-${user.id}`, min: "1", max: "1000", step: "1",
    class: "capacity-input", placeholder: "default", "aria-label": `Capacity of ${user.username}` });
  capacity.value = user.max_concurrent ?? "";
  const skills = h("input", { type: "text", id: `skills-${user.id}`, class: "skills-input", autocomplete: "off",
    spellcheck: "false", placeholder: "any", "aria-label": `Skills of ${user.username} (comma-separated)` });
  skills.value = (user.skills || []).join(", ");
  const wanted = () => ({
    max_concurrent: capacity.value === "" ? null : Number(capacity.value),
    skills: skills.value.split(",").map((s) => s.trim()).filter(Boolean),
  });
  const same = () => JSON.stringify(wanted()) === JSON.stringify({ max_concurrent: user.max_concurrent ?? null, skills: user.skills || [] });
  const save = h("button", { type: "button", class: "small-button", hidden: true,
    onclick: () => change(user, wanted(), `Routing of ${user.username} saved.`) }, "Save");
  for (const input of [capacity, skills]) input.addEventListener("input", () => { save.hidden = same(); });
  return h("div", { class: "routing-cell" }, capacity, skills, save);
}

function userRow(user) {
  const self = user.id === store.me?.id;
  const role = roleSelect(`role-${user.id}`, user.role);
  role.disabled = self;
  role.setAttribute("aria-label", `Role of ${user.username}`);
  const saveRole = h("button", { type: "button", class: "small-button", hidden: true, onclick: () => change(user, { role: role.value }, `${user.username} is now ${role.value}.`) }, "Save role");
  role.addEventListener("change", () => { saveRole.hidden = role.value === user.role; });
  return h("tr", { dataset: { username: user.username }, class: user.disabled ? "disabled" : null },
    h("td", {}, h("span", { class: "mono cut name-cut", title: user.username }, user.username), self ? h("span", { class: "muted" }, " (you)") : null),
    h("td", {}, h("div", { class: "role-cell" }, role, saveRole)),
    h("td", {}, user.disabled ? badge("disabled", "disabled") : badge("active", "active"),
      user.must_change_password ? [" ", badge("new password due", "warn")] : null,
      " ", h("span", { class: "muted", dataset: { status: user.status } }, user.status)),
    h("td", {}, routingCell(user)),
    h("td", {}, fullTime(user.created_at)),
    h("td", { class: "row-actions" },
      resetting === user.id ? passwordForm(user) : [
        h("button", { type: "button", class: "small-button", disabled: self, onclick: () => change(user, { disabled: !user.disabled }, `${user.username} ${user.disabled ? "enabled" : "disabled"}.`) },
          user.disabled ? "Enable" : "Disable"),
        h("button", { type: "button", class: "small-button", onclick: () => { resetting = user.id; render(); } }, "Reset password"),
      ]));
}

function render() {
  mount(listHost, h("table", { class: "table", id: "users-table" },
    h("thead", {}, h("tr", {}, ["User", "Role", "Status", "Capacity and skills", "Created", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, users.map(userRow))));
}

async function load() {
  try {
    users = (await get("/api/users")).users;
    render();
  } catch (err) {
    mount(listHost, h("p", { class: "form-error" }, errorText(err)));
  }
}

export function showUsers(el) {
  listHost = h("div", { class: "users" });
  mount(el, h("div", { class: "admin-grid" }, createForm(), h("section", { "aria-label": "Users" }, h("h2", {}, "Users"), listHost)));
  load();
}
