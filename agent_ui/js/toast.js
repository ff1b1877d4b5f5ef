// Short, polite messages in a corner; errors stay a little longer.

import { h } from "./dom.js";

export function toast(text, kind = "info", ms = kind === "error" ? 7000 : 3500) {
  const host = document.getElementById("toasts");
  if (!host) return;
  const el = h("div", { class: ["toast", `toast-${kind}`], role: kind === "error" ? "alert" : "status" }, text);
  host.append(el);
  setTimeout(() => el.remove(), ms);
}
