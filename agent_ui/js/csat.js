// Satisfaction surveys (issue 14) in the console: the resolve dialog's "Send
// satisfaction survey" box (`surveyChoice`), and the end user's answer on the
// ticket header (`csatBadge`): stars and the score out of 5 with the comment, or
// that the survey still waits. The summary's `csat` comes with the ticket and
// with each `ticket.updated` frame, so the header follows the answer live.

import { $, h } from "./dom.js";
import { fullTime } from "./format.js";

/** Set the resolve dialog's survey box for `ticket` (a survey is offered only for a
 * ticket an agent has); returns what the request body gets from it. */
export function surveyChoice(ticket) {
  const box = $("#resolve-survey");
  const row = $("#resolve-survey-row");
  const offered = ticket.state === "assigned";
  row.hidden = !offered;
  box.checked = false;
  return () => (offered && box.checked ? { survey: true } : {});
}

/** The header's satisfaction badge of a ticket, or null when no survey was sent. */
export function csatBadge(t) {
  const c = t && t.csat;
  if (!c) return null;
  if (c.score === null || c.score === undefined) {
    return h("span", { class: "csat csat-pending", id: "csat", title: `Survey sent ${fullTime(c.sent_at)}` },
      "Survey sent · no answer yet");
  }
  const score = Math.max(1, Math.min(5, Number(c.score)));
  return h("span", { class: "csat", id: "csat", title: `Rated ${fullTime(c.at)}` },
    h("span", { class: "csat-stars", "aria-hidden": "true" }, "★".repeat(score) + "☆".repeat(5 - score)),
    h("span", { class: "csat-score", "aria-label": `Satisfaction ${score} out of 5` }, `${score}/5`),
    c.comment ? h("q", { class: "csat-comment", dir: "auto", title: c.comment }, c.comment) : null);
}

/** The reports table's satisfaction columns, as reports.js's COLUMNS: key, title,
 * how a value is shown, and how it is read from a group (its `csat` figures). */
export const CSAT_COLUMNS = [
  ["csat_average", "Satisfaction", (v) => `${v.toFixed(2)} ★`, (g) => g.csat && g.csat.average],
  ["csat_distribution", "Ratings 1–5", (d) => [1, 2, 3, 4, 5].map((n) => d[String(n)] || 0).join(" · "),
    (g) => (g.csat && g.csat.answers ? g.csat.distribution : null)],
  ["csat_answers", "Surveys answered", (c) => `${c.answers} of ${c.surveys} (${Math.round(c.response_rate * 100)}%)`,
    (g) => (g.csat && g.csat.surveys ? g.csat : null)],
];
