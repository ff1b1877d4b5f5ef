// Hash routes: #/queue, #/ticket/12, #/ticket/12/m/345 (at message 345), #/supervisor, #/reports, #/admin/integrations,
// #/admin/users, #/admin/webhooks, #/admin/audit.

import { Emitter } from "./emitter.js";

export const router = new Emitter(); // "route" ({view, ticketId, messageId, tab})

export function parse(hash = location.hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (parts[0] === "ticket" && /^\d+$/.test(parts[1] || "")) {
    const messageId = parts[2] === "m" && /^\d+$/.test(parts[3] || "") ? Number(parts[3]) : null;
    return { view: "queue", ticketId: Number(parts[1]), messageId };
  }
  if (parts[0] === "supervisor") return { view: "supervisor" };
  if (parts[0] === "reports") return { view: "reports" };
  if (parts[0] === "resolved") return { view: "resolved" }; // #/resolved
  if (parts[0] === "admin") {
    return { view: "admin", tab: ["users", "webhooks", "audit"].includes(parts[1]) ? parts[1] : "integrations" };
  }
  if (parts[0] === "queue") return { view: "queue", ticketId: null };
  return { view: null };
}

export function go(hash) {
  if (location.hash === hash) router.emit("route", parse(hash));
  else location.hash = hash;
}

window.addEventListener("hashchange", () => router.emit("route", parse()));
