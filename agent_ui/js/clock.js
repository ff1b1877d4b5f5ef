// Live counters: every element with `data-since` (an ISO time) shows the time
// elapsed since then, refreshed each second; with `data-threshold` (seconds)
// it gets the class "over" once past it.

import { serverNow } from "./api.js";
import { duration } from "./format.js";

export function elapsedSeconds(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : Math.max(0, (serverNow() - t) / 1000);
}

export function refreshCounters(root = document) {
  for (const el of root.querySelectorAll("[data-since]")) {
    const seconds = elapsedSeconds(el.dataset.since);
    const text = duration(seconds);
    if (el.textContent !== text) el.textContent = text;
    if (el.dataset.threshold) {
      const over = seconds !== null && seconds > Number(el.dataset.threshold);
      const row = el.closest("[data-over-host]") || el;
      row.classList.toggle("over", over);
    }
  }
}

/** A live counter element. */
export function counter(iso, threshold = null, tag = "span", cls = "counter") {
  const el = document.createElement(tag);
  el.className = cls;
  el.dataset.since = iso || "";
  if (threshold) el.dataset.threshold = String(threshold);
  el.textContent = duration(elapsedSeconds(iso));
  return el;
}

const listeners = new Set();

/** Run `fn` every second alongside the counters (returns an unsubscribe). */
export function everySecond(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

setInterval(() => {
  refreshCounters();
  for (const fn of listeners) {
    try {
      fn();
    } catch (err) {
      console.error(err);
    }
  }
}, 1000);
