// Making a waiting end user impossible to miss: a chime (WebAudio, no file),
// a desktop notification when permitted, the queue count in the tab title,
// and a reminder repeated while a ticket waits longer than the threshold.

import { elapsedSeconds } from "./clock.js";
import { roughDuration, shorten } from "./format.js";
import { store } from "./store.js";

const SOUND_KEY = "console.sound";
const BASE_TITLE = "Handover console";
const MIN_REMINDER_MS = 5_000;

let audio = null;
let lastReminder = 0;
let alerts = 0;

export function soundOn() {
  return localStorage.getItem(SOUND_KEY) !== "off";
}

export function setSound(on) {
  localStorage.setItem(SOUND_KEY, on ? "on" : "off");
}

/** Browsers only start audio after a user gesture: unlock on the first one. */
function unlockAudio() {
  try {
    if (!audio) audio = new AudioContext();
    if (audio.state === "suspended") audio.resume();
  } catch {
    audio = null;
  }
}
for (const type of ["pointerdown", "keydown"]) window.addEventListener(type, unlockAudio, { capture: true });

/** A soft two-note chime; `urgent` plays it twice. */
export function chime(urgent = false) {
  if (!soundOn()) return;
  unlockAudio();
  if (!audio || audio.state !== "running") return;
  const notes = urgent ? [880, 660, 880, 660] : [880, 660];
  const start = audio.currentTime + 0.02;
  notes.forEach((freq, i) => {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    const t = start + i * 0.18;
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.16);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.17);
  });
  const root = document.documentElement;
  root.dataset.chimes = String(Number(root.dataset.chimes || 0) + 1);
}

export function notificationsSupported() {
  return "Notification" in window;
}

export function notificationPermission() {
  return notificationsSupported() ? Notification.permission : "unsupported";
}

export async function askNotificationPermission() {
  if (!notificationsSupported()) return "unsupported";
  try {
    return await Notification.requestPermission();
  } catch {
    return Notification.permission;
  }
}

function desktop(title, body, ticketId) {
  if (notificationPermission() !== "granted") return;
  if (document.visibilityState === "visible" && document.hasFocus()) return; // already in front of them
  try {
    const n = new Notification(title, { body, tag: `ticket-${ticketId}`, renotify: true });
    n.onclick = () => {
      window.focus();
      location.hash = `#/ticket/${ticketId}`;
      n.close();
    };
  } catch {
    /* some platforms only allow notifications from a service worker */
  }
}

const alertsOf = {};

/** Counted on the page (`data-alerts`, `data-<kind>-alerts`, `data-last-alert`): sound
 * cannot be checked by a test, the path that plays it can. */
function record(kind) {
  alerts += 1;
  alertsOf[kind] = (alertsOf[kind] || 0) + 1;
  const root = document.documentElement;
  root.dataset.alerts = String(alerts);
  root.dataset[`${kind}Alerts`] = String(alertsOf[kind]);
  root.dataset.lastAlert = kind;
}

function who(ticket) {
  return ticket.end_user ? `End user ${shorten(ticket.end_user)}` : `Ticket #${ticket.id}`;
}

export function alertEscalation(ticket) {
  record("escalation");
  chime();
  const tags = [ticket.lang, ticket.platform, ticket.category].filter(Boolean).map((t) => shorten(t, 40)).join(" · ");
  desktop("New conversation waiting", `${who(ticket)}${tags ? ` (${tags})` : ""}`, ticket.id);
}

export function alertAssigned(ticket) {
  record("assigned");
  chime();
  desktop("A conversation was assigned to you", who(ticket), ticket.id);
}

export function updateTitle(view = "") {
  const waiting = store.queued().length;
  const prefix = waiting ? `(${waiting}) ` : "";
  const title = `${prefix}${view ? `${view} · ` : ""}${BASE_TITLE}`;
  if (document.title !== title) document.title = title;
}

/** Called every second: repeat a reminder while someone waits past the threshold. */
export function remindIfOverdue() {
  if (!store.ready || !store.me) return;
  const threshold = store.threshold;
  const overdue = store.queued().filter((t) => (elapsedSeconds(t.opened_at) ?? 0) > threshold);
  document.documentElement.dataset.overdue = String(overdue.length);
  if (!overdue.length) return;
  const every = Math.max(MIN_REMINDER_MS, threshold * 1000);
  if (Date.now() - lastReminder < every) return;
  lastReminder = Date.now();
  record("reminder");
  chime(true);
  const oldest = overdue[0];
  desktop(`${overdue.length} waiting longer than ${roughDuration(threshold)}`,
    `${who(oldest)} has been waiting since ${new Date(oldest.opened_at).toLocaleTimeString()}`, oldest.id);
}

export function resetReminder() {
  lastReminder = 0;
}
