// What the bot handed over with a conversation (Chatlayer Offloading: the offload
// payload, any JSON), shown under the handover marker as a compact key/value box.
// Values are text (nested ones as JSON); the box is bounded, and collapsed when large.

import { h } from "./dom.js";

const MAX_FIELDS = 30;
const MAX_VALUE_CHARS = 500;
const OPEN_UP_TO_FIELDS = 6;
const OPEN_UP_TO_CHARS = 400;

function asText(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

/** The handover context as a `<details>` box, or null when there is none. */
export function handoverContext(value) {
  if (value === null || value === undefined) return null;
  const entries = typeof value === "object" && !Array.isArray(value) ? Object.entries(value) : [["value", value]];
  if (!entries.length) return null;
  const shown = entries.slice(0, MAX_FIELDS);
  const size = JSON.stringify(value)?.length ?? 0;
  const large = entries.length > OPEN_UP_TO_FIELDS || size > OPEN_UP_TO_CHARS;
  const n = entries.length;
  return h("details", { class: "handover-context", open: !large },
    h("summary", {}, `Handover context · ${n} field${n === 1 ? "" : "s"}`),
    h("dl", { class: "ctx-list" }, shown.map(([k, v]) => {
      const text = asText(v);
      return [h("dt", { title: k }, k), h("dd", { dir: "auto", title: text.length > 80 ? text : null }, text)];
    })),
    n > MAX_FIELDS ? h("p", { class: "hint" }, `and ${n - MAX_FIELDS} more`) : null);
}
