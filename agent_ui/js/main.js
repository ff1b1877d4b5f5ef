// Boot: session or sign-in, then lists + live stream, routing between views.

import { openAccount, requireNewPassword } from "./account.js";
import { showAdmin } from "./admin.js";
import { initIntegrations } from "./admin-integrations.js";
import { ApiError, apiEvents, get, post, setCsrf } from "./api.js";
import { everySecond } from "./clock.js";
import { $, h, mount } from "./dom.js";
import {
  alertAssigned, alertEscalation, askNotificationPermission, chime, notificationPermission,
  remindIfOverdue, resetReminder, setSound, soundOn, updateTitle,
} from "./notify.js";
import { initQueue, selectTicket } from "./queue.js";
import { initSearch, resetSearch } from "./search.js";
import { showReports } from "./reports.js";
import { showResolved } from "./resolved.js";
import { go, parse, router } from "./router.js";
import { initShortcuts, showHelp } from "./shortcuts.js";
import { signIn } from "./signin.js";
import { initStatus, loadStatus } from "./status.js";
import { store } from "./store.js";
import { Stream } from "./stream.js";
import { initSupervisor, showSupervisor } from "./supervisor.js";
import { focusMessage, initTicket } from "./ticket.js";
import { toast } from "./toast.js";

const stream = new Stream("/ws");
let viewName = "";
let signingOut = false;

// --- connection state ----------------------------------------------------------

const CONN_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline — will reconnect",
  "signed-out": "Signed out",
};
let wasDown = false;

stream.on("state", ({ state, retryIn }) => {
  const el = $("#conn");
  el.dataset.state = state;
  let text = CONN_TEXT[state] || state;
  if (state === "reconnecting" && retryIn > 1000) text = `Reconnecting in ${Math.round(retryIn / 1000)} s…`;
  $("#conn-text").textContent = text;
  el.title = state === "live" ? "Receiving live updates" : "Live updates paused; missed events will be replayed on reconnect";
  if (state === "live" && wasDown) toast("Reconnected — caught up with everything missed.");
  wasDown = state === "offline" || state === "reconnecting";
});
stream.on("frame", (frame) => store.applyFrame(frame));
stream.on("resync", () => store.reload());
stream.on("unauthorized", () => sessionEnded());
apiEvents.on("unauthorized", () => sessionEnded());

// --- navigation ------------------------------------------------------------------

function navItems() {
  const items = [["#/queue", "Conversations", "queue"]];
  if (store.isStaff) items.push(["#/supervisor", "Supervisor", "supervisor"], ["#/reports", "Reports", "reports"]);
  if (store.me?.role === "admin") items.push(["#/admin/integrations", "Admin", "admin"]);
  return items;
}

function renderNav(active) {
  const waiting = store.queued().length;
  mount($("#nav"), navItems().map(([href, label, view]) => h("a", {
    href, class: "nav-link", id: `nav-${view}`, "aria-current": view === active ? "page" : null,
  }, label, view === "queue" && waiting ? h("span", { class: "nav-count", title: `${waiting} waiting` }, String(waiting)) : null)));
}

function defaultRoute() {
  if (store.me?.role === "supervisor") return "#/supervisor";
  if (store.me?.role === "admin") return "#/admin/integrations";
  return "#/queue";
}

function show(route) {
  if (!store.me) return;
  let { view } = route;
  if (view === null || ((view === "supervisor" || view === "reports") && !store.isStaff) || (view === "admin" && store.me.role !== "admin")) {
    go(defaultRoute());
    return;
  }
  for (const name of ["queue", "resolved", "supervisor", "reports", "admin"]) $(`#view-${name}`).hidden = name !== view;
  document.body.dataset.view = view;
  showSupervisor(view === "supervisor");
  showReports($("#view-reports"), view === "reports");
  showResolved($("#view-resolved"), view === "resolved");
  if (view === "queue") {
    viewName = "Conversations";
    if (route.ticketId) {
      if (route.messageId) focusMessage(route.messageId); // a search result
      if (store.current?.id !== route.ticketId) store.openTicket(route.ticketId);
      selectTicket(route.ticketId);
    } else {
      store.closeTicket();
      selectTicket(null);
    }
  } else if (view === "resolved") viewName = "Resolved";
  else if (view === "supervisor") viewName = "Supervisor";
  else if (view === "reports") viewName = "Reports";
  else {
    viewName = route.tab === "users" ? "Users" : "Integrations";
    showAdmin($("#view-admin"), route.tab);
  }
  renderNav(view);
  updateTitle(viewName);
}

router.on("route", show);

// --- alerts menu -----------------------------------------------------------------

function renderAlertsMenu() {
  $("#sound-toggle").checked = soundOn();
  const permission = notificationPermission();
  $("#notify-state").textContent = {
    granted: "Desktop notifications: on",
    denied: "Desktop notifications: blocked in the browser settings",
    unsupported: "Desktop notifications: not supported here",
  }[permission] || "Desktop notifications: off";
  $("#notify-enable").hidden = permission !== "default";
  $("#alerts-button").classList.toggle("attention", permission === "default");
}

function initAlertsMenu() {
  const button = $("#alerts-button");
  const menu = $("#alerts-menu");
  const close = () => {
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
  };
  button.addEventListener("click", () => {
    menu.hidden = !menu.hidden;
    button.setAttribute("aria-expanded", String(!menu.hidden));
    renderAlertsMenu();
    if (!menu.hidden) $("#sound-toggle").focus();
  });
  menu.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      close();
      button.focus();
    }
  });
  document.addEventListener("click", (ev) => {
    if (!menu.hidden && !menu.contains(ev.target) && ev.target !== button) close();
  });
  $("#sound-toggle").addEventListener("change", (ev) => setSound(ev.target.checked));
  $("#sound-test").addEventListener("click", () => chime());
  $("#notify-enable").addEventListener("click", async () => {
    await askNotificationPermission();
    renderAlertsMenu();
  });
  renderAlertsMenu();
}

// --- assignments -----------------------------------------------------------------

/**
 * A conversation was given to me by routing or a colleague: chime and desktop
 * notification (`alertAssigned`), a spoken toast, and it opens when no other
 * conversation is open (otherwise it stays highlighted in the list).
 */
function announceAssigned(ticket) {
  alertAssigned(ticket);
  const who = ticket.end_user || `#${ticket.id}`;
  toast(`New conversation assigned to you: ${who}.`);
  const route = parse();
  if (route.view === "queue" && !route.ticketId && !store.current) go(`#/ticket/${ticket.id}`);
}

// --- session ---------------------------------------------------------------------

function renderWhoami() {
  const me = store.me;
  const name = me.display_name || me.username;
  mount($("#whoami"), h("button", { type: "button", class: "whoami-button ghost", id: "account-button",
    title: `${name} (${me.username}): your account`, onclick: () => openAccount(me, (renamed) => {
      me.display_name = renamed;
      renderWhoami();
    }) },
  h("span", { class: "whoami-name" }, name), h("span", { class: "whoami-role" }, me.role)));
}

async function start(session) {
  setCsrf(session.csrf_token);
  $("#signin").hidden = true;
  if (session.user.must_change_password) {
    // Nothing else is answered until then: ask before loading anything.
    $("#shell").hidden = true;
    document.body.dataset.view = "password";
    await requireNewPassword(session.user, signOut);
    session = await get("/api/session");
  }
  store.reset();
  store.me = session.user;
  store.threshold = session.waiting_threshold_seconds || 120;
  store.routing = session.routing || "manual";
  resetReminder();
  $("#shell").hidden = false;
  renderWhoami();
  document.body.dataset.role = store.me.role;
  await loadStatus();
  try {
    const cursor = await store.reload();
    stream.start(cursor);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    toast(`Could not load the conversations: ${err.message}. Retrying…`, "error");
    setTimeout(() => start(session), 3000);
    return;
  }
  show(parse());
}

async function signInAndStart(note) {
  $("#shell").hidden = true;
  document.body.dataset.view = "signin";
  await signIn(note);
  const session = await get("/api/session");
  signingOut = false;
  await start(session);
}

function stopEverything() {
  stream.stop();
  resetSearch();
  showSupervisor(false);
  store.reset();
  store.emit("tickets");
  store.closeTicket();
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
  updateTitle("Sign in");
}

async function sessionEnded() {
  if (signingOut || !store.me) return;
  signingOut = true;
  stopEverything();
  await signInAndStart("Your session ended. Please sign in again.");
}

async function signOut() {
  if (signingOut) return;
  signingOut = true;
  try {
    await post("/api/logout", {}, { quiet401: true });
  } catch {
    /* signed out either way */
  }
  stopEverything();
  history.replaceState(null, "", location.pathname);
  await signInAndStart("You are signed out.");
}

// --- boot ------------------------------------------------------------------------

async function boot() {
  initQueue($("#ticket-list"));
  initTicket($("#ticket-pane"), stream);
  initSupervisor($("#view-supervisor"));
  initIntegrations();
  initShortcuts();
  initAlertsMenu();
  initSearch();
  initStatus();
  $("#signout").addEventListener("click", signOut);
  $("#help-button").addEventListener("click", showHelp);
  store.on("tickets", () => {
    if (store.me) {
      renderNav(document.body.dataset.view);
      updateTitle(viewName);
    }
  });
  store.on("escalation", (ticket) => {
    // Routing will give it to someone: an online agent hears of it when it is theirs.
    if (store.routing === "auto" && store.me?.role === "agent" && store.me?.status === "online") return;
    alertEscalation(ticket);
  });
  store.on("assigned", announceAssigned);
  store.on("notice", ({ ticketId, text }) => toast(`Conversation #${ticketId}: ${text}`, "warn", 8000));
  everySecond(remindIfOverdue);

  let session = null;
  try {
    session = await get("/api/session", { quiet401: true });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) toast(`Cannot reach the server: ${err.message}`, "error");
  }
  document.documentElement.dataset.booted = "1";
  if (session) await start(session);
  else {
    updateTitle("Sign in");
    await signInAndStart(null);
  }
}

boot();
