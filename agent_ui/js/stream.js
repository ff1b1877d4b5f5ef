// The live stream (`/ws`): keeps the highest cursor seen and, after any drop,
// reconnects by itself with `?after=<cursor>` so the server replays exactly
// what was missed. Never reloads the page. A message is one frame object or an
// array of frames (the server coalesces events), handled alike in order.
//
// Events: "state" ({state, retryIn}), "frame" (a stream event), "resync"
// (the server cannot replay: reload lists), "unauthorized" (session ended).

import { Emitter } from "./emitter.js";

const HEARTBEAT_MISSING_MS = 45_000; // the server sends one every ~20 s when idle
const WATCHDOG_MS = 5_000;
const SLEEP_GAP_MS = 30_000; // a timer late by this much: the machine slept
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15_000;

export class Stream extends Emitter {
  constructor(path = "/ws") {
    super();
    this.path = path;
    this.cursor = 0;
    this.ws = null;
    this.generation = 0;
    this.attempts = 0;
    this.connects = 0;
    this.state = "idle";
    this.stopped = true;
    this.retryTimer = null;
    this.lastFrameAt = 0;
    this.lastTick = Date.now();
    this.onOnline = () => this.reconnectNow();
    this.onOffline = () => this.dropForOffline();
    this.onVisible = () => {
      if (document.visibilityState !== "visible" || this.stopped) return;
      if (!this.isOpen() || Date.now() - this.lastFrameAt > HEARTBEAT_MISSING_MS) this.reconnectNow();
    };
  }

  start(cursor) {
    this.cursor = cursor || 0;
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.watchdog = setInterval(() => this.check(), WATCHDOG_MS);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.retryTimer);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    this.closeSocket();
    this.setState("idle");
  }

  isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send a client frame when connected (typing); silently dropped otherwise. */
  send(frame) {
    if (this.isOpen()) this.ws.send(JSON.stringify(frame));
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit("state", { state, ...extra });
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    if (navigator.onLine === false) {
      this.setState("offline");
      return;
    }
    this.closeSocket();
    const generation = ++this.generation;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}${this.path}?after=${encodeURIComponent(this.cursor)}`;
    this.setState(this.connects ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    this.lastFrameAt = Date.now();
    ws.onmessage = (ev) => {
      if (generation === this.generation) this.receive(ev.data, generation);
    };
    ws.onclose = (ev) => {
      if (generation === this.generation) this.closed(ev.code);
    };
    ws.onerror = () => {}; // a close event follows
  }

  /** One message: a frame object, or an array of frames applied in order. */
  receive(data, generation = this.generation) {
    this.lastFrameAt = Date.now();
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    const frames = Array.isArray(parsed) ? parsed : [parsed];
    for (const frame of frames) {
      if (generation !== this.generation) return; // a handler replaced the socket
      this.receiveFrame(frame);
    }
  }

  receiveFrame(frame) {
    if (!frame || typeof frame.type !== "string") return;
    const cursor = typeof frame.cursor === "number" ? frame.cursor : null;
    switch (frame.type) {
      case "resync":
        this.cursor = cursor ?? this.cursor;
        this.emit("resync", this.cursor);
        return;
      case "hello":
        if (cursor !== null) this.cursor = cursor;
        this.attempts = 0;
        this.connects += 1;
        document.documentElement.dataset.streamConnects = String(this.connects);
        this.setState("live");
        return;
      case "heartbeat":
        if (cursor !== null && cursor > this.cursor) this.cursor = cursor;
        return;
      default:
        if (cursor !== null) {
          if (cursor <= this.cursor) return; // already applied
          this.cursor = cursor;
        }
        this.emit("frame", frame);
    }
  }

  closed(code) {
    this.ws = null;
    if (this.stopped) return;
    if (code === 4401) {
      this.stopped = true;
      this.setState("signed-out");
      this.emit("unauthorized");
      return;
    }
    if (navigator.onLine === false) {
      this.setState("offline");
      return;
    }
    if (code === 4003) {
      // An admin changed our role: what we may see changed, so start afresh.
      this.stopped = true;
      window.location.reload();
      return;
    }
    if (code === 4008) {
      // A send to us stalled (tab asleep, too slow to read): resume at once.
      this.retryTimer = setTimeout(() => this.connect(), 100);
      this.setState("reconnecting", { retryIn: 0 });
      return;
    }
    this.scheduleRetry();
  }

  scheduleRetry() {
    const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempts);
    const delay = Math.round(exp * (0.7 + Math.random() * 0.6)); // jitter
    this.attempts += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.setState("reconnecting", { retryIn: delay });
  }

  /** Drop the socket and connect again right away (network back, wake-up, stale). */
  reconnectNow() {
    if (this.stopped) return;
    this.attempts = 0;
    this.connect();
  }

  dropForOffline() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.closeSocket();
    this.setState("offline");
  }

  closeSocket() {
    const ws = this.ws;
    this.ws = null;
    this.generation += 1; // events of the old socket are ignored from now on
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000);
      } catch {
        /* already closing */
      }
    }
  }

  check() {
    const now = Date.now();
    const slept = now - this.lastTick > SLEEP_GAP_MS;
    this.lastTick = now;
    if (this.stopped) return;
    if (slept || (this.ws && now - this.lastFrameAt > HEARTBEAT_MISSING_MS)) this.reconnectNow();
  }
}
