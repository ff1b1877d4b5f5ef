// My status in the header: online / away / offline. Read from GET /api/me at
// start, set with PATCH /api/me, and followed from `user.status` frames (another
// console of mine, or the server setting me offline once my last console has
// been gone for the grace period). Routing gives conversations only to agents
// who are online with a console open.

import { errorText, get, patch } from "./api.js";
import { $ } from "./dom.js";
import { store } from "./store.js";
import { toast } from "./toast.js";

export const STATUSES = ["online", "away", "offline"];
const LABEL = { online: "Online", away: "Away", offline: "Offline" };

let shown = null;
const requested = []; // statuses this console asked for whose frame has not come yet

function render(status) {
  shown = STATUSES.includes(status) ? status : "offline";
  $("#my-status").dataset.status = shown;
  const select = $("#status-select");
  if (select.value !== shown) select.value = shown;
  select.title = `Your status: ${LABEL[shown]}. Conversations are routed to you while you are online with a console open.`;
}

async function choose(status) {
  if (!store.me || status === shown) return;
  requested.push(status);
  if (requested.length > 10) requested.shift();
  render(status);
  try {
    const profile = await patch("/api/me", { status });
    if (!store.me) return;
    store.me.status = profile.status;
    if (shown === status) render(profile.status);
  } catch (err) {
    const at = requested.lastIndexOf(status);
    if (at >= 0) requested.splice(at, 1);
    if (!store.me) return;
    render(store.me.status);
    toast(`Could not change your status: ${errorText(err)}`, "error");
  }
}

/** A `user.status` frame about me: shown, and said when it was not this console's doing. */
function followed(status) {
  const mine = requested.indexOf(status);
  if (mine >= 0) {
    requested.splice(0, mine + 1);
    render(requested.length ? shown : status);
    return;
  }
  const changed = status !== shown;
  render(status);
  if (!changed) return;
  toast(status === "offline"
    ? "Your status is now Offline: no conversations will be routed to you."
    : `Your status is now ${LABEL[status] || status}.`);
}

/** Called at sign-in: read my status (GET /api/me). */
export async function loadStatus() {
  requested.length = 0;
  render(store.me?.status);
  try {
    const profile = await get("/api/me");
    if (!store.me || store.me.id !== profile.id) return;
    store.me.status = profile.status;
    render(profile.status);
  } catch {
    /* shown as it was; a status frame or the next sign-in brings it */
  }
}

export function initStatus() {
  $("#status-select").addEventListener("change", (ev) => choose(ev.target.value));
  store.on("status", followed);
}
