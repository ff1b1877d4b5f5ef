// The ticket on screen: header with state and actions, the transcript, the
// typing line and the composer (reply / internal note; Enter sends,
// Shift+Enter adds a line).

import { claim, assign, openResolve, openTransfer, resend } from "./actions.js";
import { errorText, newIdempotencyKey, post } from "./api.js";
import { attachCanned, openCannedManager } from "./canned.js";
import { counter, refreshCounters } from "./clock.js";
import { csatBadge } from "./csat.js";
import { $, badge, h, mount } from "./dom.js";
import { earlierConversations } from "./earlier.js";
import { duration, fullTime, langLabel, reasonLabel } from "./format.js";
import { handbackButton } from "./handback.js";
import { labelEditor } from "./labels.js";
import { renderMessage } from "./render-message.js";
import { richButton } from "./rich-composer.js";
import { store } from "./store.js";
import { toast } from "./toast.js";

const TYPING_EVERY_MS = 2500;

let pane = null;
let stream = null;
let view = null; // {id, header, banner, transcript, typing, composer, textarea, elements, pending}
let localIds = 0;
let lastTypingSent = 0;
const drafts = new Map();
let focusId = null; // a message to show once the transcript has it (a search result)

function me() {
  return store.me || {};
}

function summaryOf() {
  return store.current?.summary || store.tickets.get(store.current?.id) || null;
}

function canReply(t) {
  return t && t.state === "assigned" && t.assignee_id === me().id;
}

function canNote(t) {
  return t && (t.state === "queued" || t.state === "assigned") && (canReply(t) || store.isStaff);
}

// --- header ------------------------------------------------------------------

function stateBadge(t) {
  const label = {
    queued: "Waiting", assigned: t.assignee_id === me().id ? "Yours" : `With ${t.assignee}`,
    resolved: "Resolved", abandoned: "Closed unanswered",
  }[t.state] || t.state;
  return badge(label, `state-${t.state}`);
}

function metric(label, value) {
  return h("span", { class: "metric" }, h("span", { class: "metric-label" }, label), value);
}

function renderHeader() {
  const t = summaryOf();
  if (!view || !t) return;
  const actions = [];
  const mine = canReply(t);
  if (t.state === "queued") {
    actions.push(h("button", { type: "button", class: "primary", id: "claim-button", onclick: () => doClaim(), "aria-keyshortcuts": "c" }, "Claim"));
  }
  if (t.state === "assigned" && !mine && store.isStaff) {
    actions.push(h("button", { type: "button", class: "primary", id: "takeover-button", onclick: () => assign(t.id, me().username) }, "Take over"));
  }
  if ((t.state === "assigned" && (mine || store.isStaff)) || (t.state === "queued" && store.isStaff)) {
    actions.push(h("button", { type: "button", id: "transfer-button", onclick: () => openTransfer(t), "aria-keyshortcuts": "t" }, store.isStaff && t.state === "queued" ? "Assign…" : "Transfer…"));
    actions.push(h("button", { type: "button", id: "resolve-button", onclick: () => openResolve(t), "aria-keyshortcuts": "e" }, t.state === "queued" ? "Close…" : "Resolve…"));
  }
  actions.push(handbackButton(t)); // Chatlayer Offloading tickets only
  const waiting = t.state === "queued"
    ? counter(t.opened_at, store.threshold, "span", "counter wait")
    : h("span", {}, duration(t.wait_seconds));
  mount(view.header,
    h("div", { class: "ticket-title" },
      h("h1", { dir: "auto", title: t.end_user || "" }, t.end_user || `Ticket #${t.id}`),
      h("div", { class: "badges" },
        h("span", { class: "ticket-id" }, `#${t.id}`), stateBadge(t),
        t.lang ? badge(langLabel(t.lang), "lang") : null,
        t.platform ? badge(t.platform, "platform") : null,
        t.category ? badge(t.category, "category") : null,
        h("span", { class: "reason" }, reasonLabel(t.reason)), labelEditor(t), csatBadge(t)),
      h("div", { class: "metrics", dataset: { overHost: "" } },
        metric("Waited", waiting),
        metric("First reply", h("span", {}, duration(t.first_response_seconds))),
        metric("Opened", h("span", { title: fullTime(t.opened_at) }, fullTime(t.opened_at))),
        earlierConversations(t.id))),
    h("div", { class: "ticket-actions" }, actions));
  refreshCounters(view.header);
  renderBanner(t);
  renderComposerMode(t);
}

function renderBanner(t) {
  let text = null;
  let kind = "info";
  if (t.state === "queued") text = "Waiting in the queue. Claim it to answer (c).";
  else if (t.state === "assigned" && !canReply(t)) {
    text = store.isStaff ? `Read-only: ${t.assignee} is handling this conversation. Take it over to answer; internal notes reach ${t.assignee}.`
      : `${t.assignee} is handling this conversation.`;
  } else if (t.state === "resolved") { text = "Resolved: the bot has the conversation again."; kind = "done"; }
  else if (t.state === "abandoned") { text = "Closed before anyone answered."; kind = "done"; }
  view.banner.hidden = !text;
  view.banner.className = `banner banner-${kind}`;
  view.banner.textContent = text || "";
  renderNotice();
}

/** A re-queue away from me (I had not answered): said in the ticket until it is mine again. */
function renderNotice() {
  if (!view) return;
  const text = store.notices.get(view.id) || "";
  view.notice.hidden = !text;
  if (view.notice.textContent !== text) view.notice.textContent = text;
}

// --- transcript --------------------------------------------------------------

function nearBottom() {
  const el = view.transcript;
  return el.scrollHeight - el.scrollTop - el.clientHeight < 120;
}

function scrollToBottom() {
  view.transcript.scrollTop = view.transcript.scrollHeight;
  view.jump.hidden = true;
}

function handlers() {
  return {
    onResend: (msg) => resend(msg.id, view.id),
    onRetry: (msg) => {
      view.pending.delete(msg.id);
      view.elements.get(msg.id)?.remove();
      view.elements.delete(msg.id);
      send(msg.kind === "note" ? "note" : "reply", msg.text, msg.idempotencyKey);
    },
    onDiscard: (msg) => {
      view.pending.delete(msg.id);
      view.elements.get(msg.id)?.remove();
      view.elements.delete(msg.id);
    },
  };
}

function placeMessage(msg) {
  const el = renderMessage(msg, handlers());
  const old = view.elements.get(msg.id);
  view.elements.set(msg.id, el);
  if (old) {
    old.replaceWith(el);
    return;
  }
  if (msg.pending) {
    view.transcript.append(el);
    return;
  }
  // keep seq order; pending (local) messages stay last
  let before = null;
  for (const child of view.transcript.children) {
    const seq = Number(child.dataset.seq);
    if (child.classList.contains("pending") || (child.dataset.seq && seq > msg.seq)) {
      before = child;
      break;
    }
  }
  view.transcript.insertBefore(el, before);
}

function renderTranscript() {
  const current = store.current;
  mount(view.transcript);
  view.elements = new Map();
  if (current.error) {
    const gone = current.error.status === 403 || current.error.status === 404;
    view.transcript.append(h("p", { class: "empty" }, gone
      ? "This conversation is not available to you any more (a colleague has it, or it was closed)."
      : `Could not load the conversation: ${errorText(current.error)}`));
    return;
  }
  if (!current.loaded) {
    view.transcript.append(h("p", { class: "empty loading" }, "Loading conversation…"));
    return;
  }
  const messages = [...current.messages.values()].sort((a, b) => a.seq - b.seq);
  if (!messages.length) view.transcript.append(h("p", { class: "empty" }, "No messages yet."));
  for (const m of messages) placeMessage(m);
  for (const p of view.pending.values()) placeMessage(p);
  if (!revealFocus()) scrollToBottom();
  focusId = null; // loaded: a message not in it is not one this user may read
}

/** Scroll the transcript to message `focusId` and mark it, if it is on screen. */
function revealFocus() {
  const el = focusId !== null && view ? view.elements.get(focusId) : null;
  if (!el) return false;
  focusId = null;
  for (const old of view.transcript.querySelectorAll(".search-target")) old.classList.remove("search-target");
  el.classList.add("search-target");
  el.scrollIntoView({ block: "center" });
  return true;
}

/** Show message `id` of the ticket being opened (or open): scrolled to and marked. */
export function focusMessage(id) {
  focusId = id;
  if (view && store.current?.loaded && store.current.id === view.id) revealFocus();
}

/** The stream can bring our own message before the POST answers: drop its placeholder. */
function settlePending(message) {
  if (message.author !== me().username) return;
  for (const [id, p] of view.pending) {
    if (!p.error && p.kind === message.kind && p.text === message.text) {
      view.pending.delete(id);
      view.elements.get(id)?.remove();
      view.elements.delete(id);
      return;
    }
  }
}

function onMessage({ ticketId, message }) {
  if (!view || ticketId !== view.id || !store.current?.loaded) return;
  view.transcript.querySelector(":scope > p.empty")?.remove();
  settlePending(message);
  const stick = nearBottom() || (message.author === me().username && (message.kind === "agent" || message.kind === "note"));
  placeMessage(message);
  if (stick) scrollToBottom();
  else view.jump.hidden = false;
}

function onDelivery({ ticketId, messageId }) {
  if (!view || ticketId !== view.id) return;
  const msg = store.current?.messages.get(messageId);
  if (msg && view.elements.has(messageId)) placeMessage(msg);
}

function renderTyping(ticketId) {
  if (!view || ticketId !== view.id) return;
  const who = store.typers(view.id);
  view.typing.textContent = who.length ? `${who.join(", ")} ${who.length > 1 ? "are" : "is"} typing…` : "";
  view.typing.classList.toggle("active", who.length > 0);
}

// --- composer ----------------------------------------------------------------

function renderComposerMode(t) {
  const reply = canReply(t);
  const note = canNote(t);
  view.composer.hidden = !(reply || (note && store.isStaff));
  view.replyTab.disabled = !reply;
  view.replyTab.title = reply ? "" : "Claim or take over the conversation to answer the end user";
  if (!reply && view.mode === "reply") setMode("note", false);
  if (reply && view.mode === "note" && !view.userPickedNote) setMode("reply", false);
}

function setMode(mode, focus = true, picked = false) {
  view.mode = mode;
  if (picked) view.userPickedNote = mode === "note";
  view.replyTab.setAttribute("aria-selected", String(mode === "reply"));
  view.noteTab.setAttribute("aria-selected", String(mode === "note"));
  view.composer.dataset.mode = mode;
  view.textarea.placeholder = mode === "reply"
    ? "Write to the end user — Enter sends, Shift+Enter adds a line"
    : "Internal note for colleagues, never sent to the end user — Enter saves";
  view.sendButton.textContent = mode === "reply" ? "Send" : "Add note";
  view.richButton.hidden = mode !== "reply";
  if (focus) view.textarea.focus();
}

// `key`: the composed message's Idempotency-Key, the same on "Try again", so a reply
// whose answer was lost is not sent twice (the server answers the first result).
async function send(mode, text, key = newIdempotencyKey()) {
  const t = summaryOf();
  if (!t || !text.trim()) return;
  const id = `local-${++localIds}`;
  const pending = { id, pending: true, kind: mode === "reply" ? "agent" : "note", text, author: me().username, created_at: null, idempotencyKey: key };
  const ticketView = view;
  ticketView.pending.set(id, pending);
  placeMessage(pending);
  scrollToBottom();
  try {
    const message = await post(`/api/tickets/${t.id}/${mode === "reply" ? "messages" : "notes"}`, { text },
      { headers: { "Idempotency-Key": key } });
    // (the stream's copy may have replaced the placeholder already: settlePending)
    if (ticketView.pending.delete(id) && view === ticketView) {
      view.elements.get(id)?.remove();
      view.elements.delete(id);
    }
    store.upsertMessage(t.id, message);
  } catch (err) {
    pending.error = errorText(err);
    if (view === ticketView) placeMessage(pending);
    else toast(`Your message to ${t.end_user || `#${t.id}`} was not sent: ${pending.error}`, "error");
  }
}

// No two people answering unawares: the highest `seq` shown when this draft was
// started; replies by others after it are pointed out before the draft is sent.
function lastSeq() {
  const messages = store.current?.messages;
  return messages ? Math.max(0, ...[...messages.values()].map((m) => m.seq || 0)) : 0;
}

function othersRepliedMeanwhile() {
  const messages = store.current?.messages;
  if (!messages || view.composeFrom === null) return [];
  return [...messages.values()].filter((m) => m.kind === "agent" && (m.seq || 0) > view.composeFrom
    && m.author && m.author !== me().username);
}

function warnMeanwhile(replies) {
  const who = [...new Set(replies.map((m) => m.author))].join(", ");
  view.warning.textContent = `${who} replied while you were writing (shown above). `
    + "Press Send again to send yours anyway, or change it first.";
  view.warning.hidden = false;
  view.warnedUpTo = lastSeq();
}

function clearWarning() {
  view.warning.hidden = true;
  view.warning.textContent = "";
  view.warnedUpTo = null;
}

function submit() {
  const text = view.textarea.value;
  if (!text.trim()) return;
  if (view.mode === "reply") {
    const replies = othersRepliedMeanwhile();
    if (replies.length && (view.warnedUpTo === null || lastSeq() > view.warnedUpTo)) {
      warnMeanwhile(replies);
      return;
    }
  }
  if (view.mode === "reply" && !canReply(summaryOf())) return;
  view.textarea.value = "";
  drafts.delete(view.id);
  view.composeFrom = null;
  clearWarning();
  send(view.mode, text);
}

function onComposerInput() {
  if (!view.textarea.value.trim()) {
    view.composeFrom = null;
    clearWarning();
  } else if (view.composeFrom === null) {
    view.composeFrom = lastSeq();
  }
  drafts.set(view.id, view.textarea.value);
  const now = Date.now();
  if (view.textarea.value.trim() && now - lastTypingSent > TYPING_EVERY_MS && stream) {
    lastTypingSent = now;
    stream.send({ type: "typing", ticket: view.id });
  }
}

function buildComposer() {
  const replyTab = h("button", { type: "button", role: "tab", class: "tab", id: "tab-reply", onclick: () => setMode("reply", true, true) }, "Reply");
  const noteTab = h("button", { type: "button", role: "tab", class: "tab", id: "tab-note", onclick: () => setMode("note", true, true) }, "Internal note");
  const textarea = h("textarea", { id: "composer-text", rows: "3", maxlength: "4000", "aria-label": "Message" });
  const sendButton = h("button", { type: "submit", class: "primary", id: "send-button" }, "Send");
  const rich = richButton(() => summaryOf());
  const warning = h("p", { class: "compose-warning", id: "compose-warning", role: "alert", hidden: true });
  const composer = h("form", { class: "composer", id: "composer" },
    h("div", { class: "composer-tabs", role: "tablist", "aria-label": "Message type" }, replyTab, noteTab),
    warning, textarea,
    h("div", { class: "composer-foot" },
      h("span", { class: "hint" }, "Enter sends · Shift+Enter new line · / inserts a canned response · Esc leaves the box"),
      h("span", { class: "composer-buttons" },
        rich, h("button", { type: "button", class: "ghost", id: "canned-button", onclick: () => openCannedManager() }, "Canned…"), sendButton)));
  attachCanned(composer, textarea, () => ({ endUser: summaryOf()?.end_user }));
  composer.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit();
  });
  textarea.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && !ev.altKey) {
      ev.preventDefault();
      submit();
    } else if (ev.key === "Escape") {
      textarea.blur();
      view.transcript.focus();
    }
  });
  textarea.addEventListener("input", onComposerInput);
  return { composer, replyTab, noteTab, textarea, sendButton, richButton: rich, warning, composeFrom: null, warnedUpTo: null };
}

// --- the pane ----------------------------------------------------------------

function emptyPane() {
  view = null;
  announceViewing(null);
  mount(pane, h("div", { class: "pane-empty" },
    h("h2", {}, "No conversation open"),
    h("p", {}, "Pick one from the list, or press j / k to move through it."),
    store.queued().length ? h("p", {}, `${store.queued().length} waiting — the oldest is first.`) : null));
}

// Who else has this conversation open: this console says so when it opens one, every
// VIEWING_EVERY_MS while it stays open, and when it leaves it.
const VIEWING_EVERY_MS = 20_000;
let viewingTimer = null;
let viewingId = null;

function announceViewing(id) {
  if (viewingId !== null && viewingId !== id) stream?.send({ type: "viewing", ticket: viewingId, on: false });
  clearInterval(viewingTimer);
  viewingId = id;
  if (id === null) return;
  const say = () => stream?.send({ type: "viewing", ticket: id, on: true });
  say();
  viewingTimer = setInterval(say, VIEWING_EVERY_MS);
}

function renderViewers(ticketId) {
  if (!view || view.id !== ticketId) return;
  const who = store.viewers(ticketId);
  // Someone new opened it: say at once that we are here too (they heard nothing yet).
  if (who.some((u) => !view.knownViewers.has(u)) && viewingId === ticketId) {
    stream?.send({ type: "viewing", ticket: ticketId, on: true });
  }
  view.knownViewers = new Set(who);
  view.viewers.textContent = who.length ? `Also here: ${who.join(", ")}` : "";
  view.viewers.title = view.viewers.textContent; // one line, cut: the whole of it on hover
  view.viewers.hidden = !who.length;
}

function buildPane(id) {
  const header = h("header", { class: "ticket-header" });
  const banner = h("p", { class: "banner", hidden: true });
  const notice = h("p", { class: "ticket-notice", id: "ticket-notice", role: "status", hidden: true });
  const transcript = h("div", { class: "transcript", id: "transcript", role: "log", "aria-label": "Conversation", tabindex: "0" });
  const jump = h("button", { type: "button", class: "jump", hidden: true, onclick: () => scrollToBottom() }, "New messages ↓");
  const typing = h("div", { class: "typing", id: "typing", "aria-live": "polite" });
  const viewers = h("p", { class: "viewers", id: "viewers", "aria-live": "polite", hidden: true });
  const c = buildComposer();
  view = { id, header, banner, notice, transcript, jump, typing, viewers, knownViewers: new Set(), elements: new Map(), pending: new Map(), mode: "reply", userPickedNote: false, ...c };
  transcript.addEventListener("scroll", () => {
    if (nearBottom()) jump.hidden = true;
  });
  // Who is typing and who else is here share one line above the composer.
  const presence = h("div", { class: "presence-line" }, typing, viewers);
  mount(pane, h("div", { class: "ticket-view" }, header, h("div", { class: "banners" }, notice, banner), h("div", { class: "transcript-wrap" }, transcript, jump), presence, c.composer));
  c.textarea.value = drafts.get(id) || "";
  setMode("reply", false);
  announceViewing(id);
  renderViewers(id);
}

function onTranscript(current) {
  if (!pane) return;
  if (!current) {
    emptyPane();
    return;
  }
  if (!view || view.id !== current.id) buildPane(current.id);
  if (summaryOf()) renderHeader();
  renderTranscript();
  renderTyping(current.id);
}

async function doClaim() {
  const t = summaryOf();
  if (!t || t.state !== "queued") return;
  const button = $("#claim-button");
  if (button) button.disabled = true;
  if (await claim(t.id)) {
    setMode("reply");
  } else if (button) button.disabled = false;
}

/** Keyboard actions on the open ticket (called by the shortcuts module). */
export const ticketKeys = {
  claim: () => doClaim(),
  reply: () => view && !view.composer.hidden && setMode(canReply(summaryOf()) ? "reply" : "note", true, false),
  note: () => view && !view.composer.hidden && setMode("note", true, true),
  transfer: () => { const t = summaryOf(); if (t && (canReply(t) || store.isStaff) && ["queued", "assigned"].includes(t.state)) openTransfer(t); },
  resolve: () => { const t = summaryOf(); if (t && (canReply(t) || store.isStaff) && ["queued", "assigned"].includes(t.state)) openResolve(t); },
};

export function initTicket(el, liveStream) {
  pane = el;
  stream = liveStream;
  store.on("transcript", onTranscript);
  store.on("ticket", () => renderHeader());
  store.on("message", onMessage);
  store.on("delivery", onDelivery);
  store.on("typing", renderTyping);
  store.on("viewing", renderViewers);
  store.on("notice", ({ ticketId }) => { if (view && view.id === ticketId) renderNotice(); });
  store.on("tickets", () => { if (!view) emptyPane(); });
  emptyPane();
}
