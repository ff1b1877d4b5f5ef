// Formatting times and durations for people.

/** "42 s", "3:07", "1:02:09" for a number of seconds. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const total = Math.max(0, Math.floor(seconds));
  if (total < 60) return `${total} s`;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** `text` cut to `max` characters with an ellipsis (for plain-text places: notifications). */
export function shorten(text, max = 60) {
  const chars = Array.from(String(text ?? ""));
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : chars.join("");
}

/** "3 min", "2 h 5 min": a calmer rounding for summaries. */
export function roughDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const total = Math.max(0, Math.round(seconds));
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.round(total / 60)} min`;
  const h = Math.floor(total / 3600);
  const m = Math.round((total % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/** "14:05" (today's clock time) for an ISO timestamp. */
export function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : timeFmt.format(d);
}

/** A full local date and time, for tooltips and tables. */
export function fullTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "—" : fullFmt.format(d);
}

export function percent(value) {
  if (typeof value !== "number" || Number.isNaN(value)) return null;
  return `${Math.round(value <= 1 ? value * 100 : value)}%`;
}

/** Language code as shown on a badge: "fr-fr" -> "FR-FR". */
export function langLabel(lang) {
  return lang ? String(lang).toUpperCase() : null;
}

export function reasonLabel(reason) {
  return {
    need_help: "Bot asked for a human",
    escalation_requested: "Escalation requested",
    offload: "Bot offloaded the conversation",
  }[reason] || reason || "Handover";
}
