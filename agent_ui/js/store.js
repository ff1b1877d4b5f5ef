// Client state: the open tickets this user can see, the ticket on screen with
// its transcript, colleagues and their presence, typing. Stream frames are
// applied here; views subscribe to the change events.
//
// Events: "tickets", "ticket" (the current one changed), "transcript" (reloaded),
// "message" ({ticketId, message}), "delivery" ({ticketId, messageId}), "typing",
// "agents", "escalation" (a ticket entered the queue), "assigned" (given to me by
// routing or a colleague), "unread", "status" (my status changed: a `user.status`
// frame), "notice" ({ticketId, text}: a ticket was re-queued away from me).

import { get } from "./api.js";
import { Emitter } from "./emitter.js";

const OPEN = new Set(["queued", "assigned"]);
const TYPING_SHOWN_MS = 6_000;
const VIEWING_SHOWN_MS = 45_000;
const PAGE = 200;

/** A transcript message saying the ticket was re-queued away from `userId` (silence). */
export function requeuedFrom(message, userId) {
  const c = message && message.context;
  return Boolean(c && typeof c === "object" && c.event === "requeued" && c.reason === "agent_silent"
    && userId !== undefined && c.from === userId);
}

function requeueNotice(message) {
  return `Taken back from you: ${message.text}.`;
}

/**
 * Of two states of one delivery, the later one. An HTTP answer can arrive after
 * the stream already reported a further attempt: fewer attempts means older.
 * (A re-send keeps the attempt count and moves "failed" back to "queued".)
 */
export function latestDelivery(known, incoming) {
  if (!incoming) return known;
  if (!known) return incoming;
  return (incoming.attempts ?? 0) < (known.attempts ?? 0) ? known : incoming;
}

/** Seconds from one ISO time to another (null if either is missing or unreadable). */
function secondsBetween(from, to) {
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isFinite(ms) ? Math.max(0, ms / 1000) : null;
}

class Store extends Emitter {
  constructor() {
    super();
    this.reset();
  }

  reset() {
    this.me = null;
    this.threshold = 120;
    this.tickets = new Map();
    this.current = null;
    this.agents = new Map();
    this.typing = new Map(); // ticketId -> Map(username -> expiresAt)
    this.viewing = new Map(); // ticketId -> Map(username -> expiresAt)
    this.unread = new Set();
    this.ready = false;
    this.reloading = null;
    this.buffered = [];
    this.claiming = new Set();
    this.justAssigned = new Set(); // given to me and not opened yet: highlighted in the list
    this.notices = new Map(); // ticketId -> text shown in that ticket (re-queued away from me)
  }

  get isStaff() {
    return this.me !== null && (this.me.role === "supervisor" || this.me.role === "admin");
  }

  // --- lists -------------------------------------------------------------

  async fetchState(state) {
    const out = [];
    let cursor = null;
    for (let page = 1; page <= 20; page += 1) {
      const data = await get(`/api/tickets?state=${state}&per_page=${PAGE}&page=${page}`);
      cursor = cursor === null ? data.cursor : Math.min(cursor, data.cursor);
      out.push(...data.tickets);
      if (out.length >= data.total || data.tickets.length < PAGE) break;
    }
    return { tickets: out, cursor };
  }

  /** Load the open tickets; returns the stream cursor the lists are current to. */
  async loadTickets() {
    const [queued, assigned] = await Promise.all([this.fetchState("queued"), this.fetchState("assigned")]);
    this.tickets = new Map();
    for (const t of [...queued.tickets, ...assigned.tickets]) {
      if (this.visibleInList(t)) this.tickets.set(t.id, t);
    }
    this.emit("tickets");
    return Math.min(queued.cursor, assigned.cursor);
  }

  async loadAgents() {
    try {
      const data = await get("/api/agents");
      this.agents = new Map(data.agents.map((a) => [a.username, a]));
      this.emit("agents");
    } catch {
      /* shown as an empty list; retried on the next reload */
    }
  }

  /**
   * Reload everything (first load, or the server asked for a resync). Frames
   * arriving meanwhile are held and applied afterwards when newer than the lists.
   */
  async reload() {
    if (this.reloading) return this.reloading;
    this.buffered = [];
    this.reloading = (async () => {
      try {
        const cursor = await this.loadTickets();
        await this.loadAgents();
        if (this.current) await this.openTicket(this.current.id);
        const held = this.buffered;
        this.buffered = [];
        this.reloading = null;
        for (const frame of held) if (frame.cursor > cursor) this.applyFrame(frame);
        this.ready = true;
        return cursor;
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
  }

  visibleInList(t) {
    if (!OPEN.has(t.state)) return false;
    if (this.isStaff || t.state === "queued") return true;
    return this.me !== null && t.assignee_id === this.me.id;
  }

  sorted(filter) {
    return [...this.tickets.values()].filter(filter).sort((a, b) =>
      (a.opened_at || "").localeCompare(b.opened_at || "") || a.id - b.id);
  }

  queued() {
    return this.sorted((t) => t.state === "queued");
  }

  mine() {
    return this.sorted((t) => t.state === "assigned" && t.assignee_id === this.me?.id);
  }

  others() {
    return this.sorted((t) => t.state === "assigned" && t.assignee_id !== this.me?.id);
  }

  loadOf(username) {
    let n = 0;
    for (const t of this.tickets.values()) if (t.state === "assigned" && t.assignee === username) n += 1;
    return n;
  }

  upsertTicket(summary) {
    const before = this.tickets.get(summary.id);
    const wasQueued = before?.state === "queued";
    const wasMine = before?.state === "assigned" && before.assignee_id === this.me?.id;
    if (this.visibleInList(summary)) this.tickets.set(summary.id, summary);
    else this.tickets.delete(summary.id);
    if (this.current && this.current.id === summary.id) {
      this.current.summary = { ...this.current.summary, ...summary };
      this.current.revision += 1;
      this.emit("ticket", this.current);
    }
    const mineNow = summary.state === "assigned" && summary.assignee_id === this.me?.id;
    if (mineNow) this.notices.delete(summary.id);
    else this.justAssigned.delete(summary.id);
    const announce = this.ready && mineNow && !wasMine && !this.claiming.has(summary.id);
    if (announce && this.current?.id !== summary.id) this.justAssigned.add(summary.id);
    this.emit("tickets");
    if (!this.ready) return;
    if (summary.state === "queued" && !wasQueued) this.emit("escalation", summary);
    if (announce) this.emit("assigned", summary);
    if (!mineNow) this.unread.delete(summary.id);
  }

  /** An agent's message in a ticket: its first response when none was known, with the
   * `first_response_seconds` the header shows (as the server counts it: from `opened_at`). */
  noteFirstResponse(ticketId, at) {
    const when = at || new Date().toISOString();
    const withFirst = (t) => ({ ...t, first_response_at: when, first_response_seconds: secondsBetween(t.opened_at, when) });
    const t = this.tickets.get(ticketId);
    if (t && !t.first_response_at) {
      this.tickets.set(ticketId, withFirst(t));
      this.emit("tickets");
    }
    const current = this.current;
    if (current?.id === ticketId && current.summary && !current.summary.first_response_at) {
      current.summary = withFirst(current.summary);
      current.revision += 1;
      this.emit("ticket", current);
    }
  }

  // --- the ticket on screen ----------------------------------------------

  async openTicket(id) {
    if (!this.current || this.current.id !== id) {
      const known = this.tickets.get(id);
      // revision: counts changes to `summary` (stream frames, actions' answers), so that a
      // GET answered before one of them does not bring back what it replaced.
      this.current = { id, summary: known || null, revision: 0, messages: new Map(), transitions: [], loaded: false, error: null };
      this.unread.delete(id);
      this.justAssigned.delete(id);
      this.emit("unread");
      this.emit("transcript", this.current);
    }
    const current = this.current;
    const revision = current.revision;
    try {
      const data = await get(`/api/tickets/${id}`);
      if (this.current !== current) return;
      const { messages, transitions, ...summary } = data;
      // Changed while the request was under way (a claim, a transfer): its answer may be
      // older than that change, whose fields stay; the ones only the GET has are added.
      current.summary = current.revision === revision ? summary : { ...summary, ...current.summary };
      current.transitions = transitions || [];
      const fresh = new Map();
      for (const m of messages) {
        const seen = current.messages.get(m.id); // from a frame during the request
        fresh.set(m.id, seen ? { ...m, delivery: latestDelivery(seen.delivery, m.delivery) } : m);
      }
      for (const [mid, m] of current.messages) if (!fresh.has(mid)) fresh.set(mid, m);
      current.messages = fresh;
      current.loaded = true;
      current.error = null;
      this.noticeFromTranscript(current);
    } catch (err) {
      if (this.current !== current) return;
      current.error = err;
    }
    this.emit("transcript", current);
  }

  /** The latest re-queue away from me in the transcript, unless the ticket is mine again. */
  noticeFromTranscript(current) {
    const t = current.summary;
    if (!t || !this.me) return;
    if (t.state === "assigned" && t.assignee_id === this.me.id) {
      this.notices.delete(current.id);
      return;
    }
    const last = [...current.messages.values()].filter((m) => m.seq !== undefined)
      .sort((a, b) => a.seq - b.seq).filter((m) => m.context?.event === "requeued").pop();
    if (last && requeuedFrom(last, this.me.id)) this.notices.set(current.id, requeueNotice(last));
  }

  closeTicket() {
    this.current = null;
    this.emit("transcript", null);
  }

  upsertMessage(ticketId, message) {
    if (!this.current || this.current.id !== ticketId) return;
    const before = this.current.messages.get(message.id);
    if (before && before.delivery) message = { ...message, delivery: latestDelivery(before.delivery, message.delivery) };
    this.current.messages.set(message.id, message);
    this.emit("message", { ticketId, message });
  }

  setDelivery(ticketId, messageId, delivery) {
    if (!this.current || this.current.id !== ticketId) return;
    const message = this.current.messages.get(messageId);
    if (!message) return;
    message.delivery = latestDelivery(message.delivery, delivery);
    this.emit("delivery", { ticketId, messageId });
  }

  // --- stream frames -----------------------------------------------------

  applyFrame(frame) {
    if (this.reloading) {
      this.buffered.push(frame);
      return;
    }
    switch (frame.type) {
      case "ticket.created":
      case "ticket.updated":
        if (frame.ticket) this.upsertTicket(frame.ticket);
        break;
      case "message.created": {
        const { ticket, message } = frame;
        this.upsertMessage(ticket, message);
        if (message.author) this.stopTyping(ticket, message.author);
        if (message.kind === "agent") this.noteFirstResponse(ticket, message.created_at);
        if (this.me && requeuedFrom(message, this.me.id)) {
          const text = requeueNotice(message);
          this.notices.set(ticket, text);
          if (this.ready) this.emit("notice", { ticketId: ticket, text });
        }
        const t = this.tickets.get(ticket);
        if (message.kind === "user" && t && t.assignee_id === this.me?.id && this.current?.id !== ticket) {
          this.unread.add(ticket);
          this.emit("unread");
        }
        break;
      }
      case "delivery.updated":
        this.setDelivery(frame.ticket, frame.message_id, frame.delivery);
        break;
      case "typing":
        if (frame.user_id !== this.me?.id) this.startTyping(frame.ticket, frame.user);
        break;
      case "viewing":
        if (frame.user_id !== this.me?.id) this.setViewing(frame.ticket, frame.user, frame.on);
        break;
      case "presence": {
        const agent = this.agents.get(frame.user) || { username: frame.user, role: frame.role, open_tickets: 0 };
        this.agents.set(frame.user, { ...agent, online: frame.online, connected: frame.online });
        this.emit("agents");
        break;
      }
      case "user.status": {
        const agent = this.agents.get(frame.user);
        if (agent) {
          this.agents.set(frame.user, { ...agent, status: frame.status });
          this.emit("agents");
        }
        if (this.me && frame.user_id === this.me.id) {
          this.me.status = frame.status;
          this.emit("status", frame.status);
        }
        break;
      }
      default:
        break;
    }
    this.emit("frame", frame);
  }

  startTyping(ticketId, user) {
    if (!this.typing.has(ticketId)) this.typing.set(ticketId, new Map());
    this.typing.get(ticketId).set(user, Date.now() + TYPING_SHOWN_MS);
    this.emit("typing", ticketId);
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.expireTyping(), TYPING_SHOWN_MS + 50);
  }

  stopTyping(ticketId, user) {
    const users = this.typing.get(ticketId);
    if (users && users.delete(user)) this.emit("typing", ticketId);
  }

  expireTyping() {
    const now = Date.now();
    let next = Infinity;
    for (const [ticketId, users] of this.typing) {
      let changed = false;
      for (const [user, until] of users) {
        if (until <= now) {
          users.delete(user);
          changed = true;
        } else next = Math.min(next, until);
      }
      if (changed) this.emit("typing", ticketId);
    }
    if (next < Infinity) this.typingTimer = setTimeout(() => this.expireTyping(), next - now + 50);
  }

  /** Someone else has the ticket open (`on`) or left it; a console says so again every
   * 20 s while it stays open, so one not heard from for `VIEWING_SHOWN_MS` is gone. */
  setViewing(ticketId, user, on) {
    if (!this.viewing.has(ticketId)) this.viewing.set(ticketId, new Map());
    const users = this.viewing.get(ticketId);
    if (on) users.set(user, Date.now() + VIEWING_SHOWN_MS);
    else users.delete(user);
    this.emit("viewing", ticketId);
    clearTimeout(this.viewingTimer);
    this.viewingTimer = setTimeout(() => this.emit("viewing", ticketId), VIEWING_SHOWN_MS + 50);
  }

  viewers(ticketId) {
    const now = Date.now();
    return [...(this.viewing.get(ticketId) || new Map())].filter(([, until]) => until > now).map(([u]) => u);
  }

  typers(ticketId) {
    const now = Date.now();
    return [...(this.typing.get(ticketId) || new Map())].filter(([, until]) => until > now).map(([u]) => u);
  }
}

export const store = new Store();
