// Keyboard shortcuts (ignored while typing in a field).

import { $, h, mount, typingTarget } from "./dom.js";
import { ticketOrder } from "./queue.js";
import { go, parse } from "./router.js";
import { store } from "./store.js";
import { ticketKeys } from "./ticket.js";

export const SHORTCUTS = [
  ["j / ↓", "next conversation in the list"],
  ["k / ↑", "previous conversation"],
  ["c", "claim the open conversation"],
  ["r", "write a reply"],
  ["n", "write an internal note"],
  ["t", "transfer (to a colleague or back to the queue)"],
  ["e", "resolve, with an optional closing message"],
  ["Enter", "send (in the message box)"],
  ["Shift+Enter", "new line (in the message box)"],
  ["Esc", "leave the message box / close a dialog"],
  ["g q", "go to the conversations"],
  ["g s", "go to the supervisor view"],
  ["g i / g u", "go to integrations / users (admins)"],
  ["?", "this help"],
];

function move(delta) {
  const order = ticketOrder();
  if (!order.length) return;
  const current = parse().ticketId;
  let i = order.indexOf(current);
  i = i === -1 ? (delta > 0 ? 0 : order.length - 1) : Math.min(order.length - 1, Math.max(0, i + delta));
  go(`#/ticket/${order[i]}`);
  queueMicrotask(() => document.querySelector(`.ticket-item[data-ticket-id="${order[i]}"]`)?.focus());
}

export function showHelp() {
  const dialog = $("#dlg-help");
  mount($("#shortcut-list"), SHORTCUTS.map(([k, d]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, d)]));
  if (!dialog.dataset.ready) {
    dialog.dataset.ready = "1";
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  }
  dialog.showModal();
}

let pendingG = 0;

export function initShortcuts() {
  document.addEventListener("keydown", (ev) => {
    if (!store.me || ev.ctrlKey || ev.metaKey || ev.altKey || ev.defaultPrevented) return;
    if (typingTarget(ev.target) || document.querySelector("dialog[open]")) return;
    const staff = store.isStaff;
    if (Date.now() - pendingG < 1500) {
      pendingG = 0;
      const target = { q: "#/queue", s: staff ? "#/supervisor" : null, i: store.me.role === "admin" ? "#/admin/integrations" : null, u: store.me.role === "admin" ? "#/admin/users" : null }[ev.key];
      if (target) {
        ev.preventDefault();
        go(target);
      }
      return;
    }
    const inQueue = parse().view === "queue" || parse().view === null;
    const actions = {
      g: () => { pendingG = Date.now(); },
      j: () => move(1), ArrowDown: () => inQueue && ev.target.closest?.(".ticket-list") && move(1),
      k: () => move(-1), ArrowUp: () => inQueue && ev.target.closest?.(".ticket-list") && move(-1),
      c: () => inQueue && ticketKeys.claim(),
      r: () => inQueue && ticketKeys.reply(),
      n: () => inQueue && ticketKeys.note(),
      t: () => inQueue && ticketKeys.transfer(),
      e: () => inQueue && ticketKeys.resolve(),
      "?": () => showHelp(),
    };
    const action = actions[ev.key];
    if (!action) return;
    if ((ev.key === "ArrowDown" || ev.key === "ArrowUp") && !ev.target.closest?.(".ticket-list")) return;
    ev.preventDefault();
    action();
  });
}
