// One transcript message as DOM. Everything the end user, the bot or an agent
// wrote becomes text (Text nodes / textContent). Rich Chatlayer messages (the
// bot's, and agents' rich replies) become inert cards, as the end user sees
// them: nothing in them can be clicked except links to http(s) pages, which
// open in a new tab without a referrer or opener.

import { h, safeHttpUrl } from "./dom.js";
import { clock, fullTime, percent, reasonLabel } from "./format.js";
import { handoverContext } from "./handover-context.js";
import { renderUserMessage } from "./user-message.js";

const MAX_ITEMS = 20;

const str = (v) => (typeof v === "string" ? v : typeof v === "number" ? String(v) : "");
const list = (v) => (Array.isArray(v) ? v.slice(0, MAX_ITEMS) : []);
const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : {});

function para(text, cls = "text", title = null) {
  return text ? h("p", { class: cls, dir: "auto", title }, text) : null;
}

function externalLink(url, label, cls = "card-link") {
  const href = safeHttpUrl(url);
  if (!href) return null;
  return h("a", { class: cls, href, target: "_blank", rel: "noopener noreferrer", title: href }, label || href);
}

function image(url, alt, cls = "card-image") {
  const src = safeHttpUrl(url);
  if (!src) return null;
  return h("img", { class: cls, src, alt: alt || "", loading: "lazy", referrerpolicy: "no-referrer", decoding: "async" });
}

/** One line cut with an ellipsis; its title keeps the whole text. */
function oneLine(text, cls) {
  return h("span", { class: cls, dir: "auto", title: text }, text);
}

/** A bot button: a link only for web_url with an http(s) URL, else an inert chip. */
function button(b) {
  const btn = obj(b);
  const title = str(btn.title) || "(untitled)";
  const type = str(btn.type);
  if (type === "web_url") {
    const link = externalLink(btn.url, oneLine(title, "bot-button-title"), "bot-button bot-link");
    if (link) return link;
    return h("span", { class: "bot-button inert", title: "link removed: not an http(s) address" },
      oneLine(title, "bot-button-title"), h("span", { class: "hint" }, " · link removed"));
  }
  const hint = type === "phone_number" ? str(btn.payload) : type === "postback" ? "postback" : type;
  return h("span", { class: "bot-button inert" }, oneLine(title, "bot-button-title"),
    hint ? h("span", { class: "hint", dir: "auto", title: hint }, ` · ${hint}`) : null);
}

function buttons(items, label = "Buttons") {
  const bs = list(items);
  if (!bs.length) return null;
  return h("div", { class: "bot-buttons", role: "list", "aria-label": label },
    bs.map((b) => h("span", { role: "listitem" }, button(b))));
}

function quickReplies(items) {
  const qs = list(items);
  if (!qs.length) return null;
  return h("div", { class: "quick-replies", role: "list", "aria-label": "Quick replies" },
    h("span", { class: "rich-label" }, "Quick replies"),
    qs.map((q) => {
      const r = obj(q);
      const title = str(r.title) || str(r.content_type) || "(reply)";
      return h("span", { class: "chip", role: "listitem" }, image(r.image_url, "", "chip-image"), oneLine(title, "chip-text"));
    }));
}

function element(e, cls) {
  const el = obj(e);
  const action = obj(el.default_action);
  return h("div", { class: cls },
    image(el.image_url, str(el.title)),
    h("div", { class: "card-body" },
      el.title ? h("h4", { class: "card-title", dir: "auto", title: str(el.title) }, str(el.title)) : null,
      para(str(el.subtitle), "card-subtitle", str(el.subtitle)),
      externalLink(el.item_url, "Open page"),
      action.url ? externalLink(action.url, "Default action") : null,
      buttons(el.buttons)));
}

function template(payload) {
  const p = obj(payload);
  const type = str(p.template_type);
  if (type === "generic") {
    return h("div", { class: "rich rich-carousel" },
      h("span", { class: "rich-label" }, `Carousel · ${list(p.elements).length} cards`),
      h("div", { class: "carousel" }, list(p.elements).map((e) => element(e, "card"))));
  }
  if (type === "list") {
    return h("div", { class: "rich rich-list" },
      h("span", { class: "rich-label" }, "List"),
      h("div", { class: "list-elements" }, list(p.elements).map((e) => element(e, "list-item"))),
      buttons(p.buttons));
  }
  // "button" and anything else with text and buttons
  return h("div", { class: "rich rich-buttons" }, para(str(p.text)), buttons(p.buttons),
    !p.text && !p.buttons ? para(`[${type || "template"}]`) : null);
}

function media(kind, payload) {
  const p = obj(payload);
  const url = str(p.url);
  if (kind === "image") {
    const img = image(url, "Image in the message", "media-image");
    return h("div", { class: "rich rich-media" }, img || para("[image]"), externalLink(url, "Open image"));
  }
  return h("div", { class: "rich rich-media" }, h("span", { class: "rich-label" }, kind),
    externalLink(url, `Open ${kind}`) || para(`[${kind}]`));
}

/** A Chatlayer message object as a readable card (or null if it is plain text). */
export function renderRich(message) {
  const m = obj(message);
  const attachment = obj(m.attachment);
  const parts = [];
  if (attachment.type === "template") parts.push(template(attachment.payload));
  else if (["image", "video", "audio", "file"].includes(attachment.type)) parts.push(media(attachment.type, attachment.payload));
  const qr = quickReplies(m.quick_replies);
  if (!parts.length && !qr) return null;
  return h("div", { class: "rich-message" }, para(str(m.text)), parts, qr);
}

// --- turn context ------------------------------------------------------------

function contextChips(msg) {
  const c = obj(msg.context);
  const chips = [];
  if (c.source === "chatlayer") chips.push(h("span", { class: "ctx" }, "via Chatlayer"));
  if (msg.kind === "user" && c.intent) {
    const conf = percent(c.confidence);
    const low = typeof c.confidence === "number" && c.confidence < 0.5;
    chips.push(h("span", { class: ["ctx", "ctx-intent"], title: `Intent understood by the bot: ${str(c.intent)}` }, "intent ", h("b", { dir: "auto" }, str(c.intent))));
    if (conf) chips.push(h("span", { class: ["ctx", low && "ctx-low"], title: "NLU confidence" }, conf));
  }
  if (c.state_name) chips.push(h("span", { class: ["ctx", "ctx-state"], title: `Bot state: ${str(c.state_name)}` }, "state ", h("b", { dir: "auto" }, str(c.state_name))));
  if (msg.kind === "user" && c.need_help) chips.push(h("span", { class: ["ctx", "ctx-help"] }, "asked for a human"));
  return chips;
}

function details(msg) {
  const c = obj(msg.context);
  if (!Object.keys(c).length && !msg.raw) return null;
  const box = h("details", { class: "turn-details" }, h("summary", {}, "Turn details"));
  box.addEventListener("toggle", () => {
    if (!box.open || box.dataset.filled) return;
    box.dataset.filled = "1";
    const dl = h("dl", { class: "ctx-list" });
    for (const [k, v] of Object.entries(c)) {
      dl.append(h("dt", {}, k), h("dd", { dir: "auto" }, typeof v === "object" ? JSON.stringify(v) : String(v)));
    }
    box.append(dl);
    if (msg.raw) box.append(h("pre", { class: "raw" }, JSON.stringify(msg.raw, null, 2)));
  }, { once: false });
  return box;
}

// --- delivery ----------------------------------------------------------------

function reasonOf(d) {
  if (d.last_error) return d.last_error;
  if (d.last_status) return `HTTP ${d.last_status}`;
  return "unknown error";
}

/** The delivery line of an agent message (or, with `prefix`, of another delivered
 * action: "Handed back to the bot · delivered"). */
export function renderDelivery(msg, { onResend, onRetry, onDiscard } = {}, prefix = null) {
  const d = msg.delivery;
  const box = h("div", { class: "delivery", role: "status" });
  if (msg.pending) {
    if (msg.error) {
      box.classList.add("state-failed");
      box.append(h("span", { class: "delivery-label" }, `Not sent: ${msg.error}`),
        h("button", { type: "button", class: "link-button", onclick: () => onRetry?.(msg) }, "Try again"),
        h("button", { type: "button", class: "link-button", onclick: () => onDiscard?.(msg) }, "Discard"));
    } else {
      box.classList.add("state-sending");
      box.append(h("span", { class: "delivery-label" }, "Sending…"));
    }
    return box;
  }
  if (!d) return null;
  box.dataset.state = d.state;
  box.classList.add(`state-${d.state}`);
  let label;
  switch (d.state) {
    case "delivered":
      label = "Delivered";
      box.title = `Delivered ${fullTime(d.delivered_at)} after ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`;
      break;
    case "retrying":
      label = `Retrying (attempt ${d.attempts} failed: ${reasonOf(d)})`;
      if (d.next_attempt_at) box.title = `Next attempt at ${fullTime(d.next_attempt_at)}`;
      break;
    case "failed":
      label = `Failed: ${reasonOf(d)}`;
      break;
    default:
      label = d.attempts ? `Sending (attempt ${d.attempts + 1})` : "Sending…";
  }
  if (prefix) label = `${prefix} · ${label.charAt(0).toLowerCase()}${label.slice(1)}`;
  box.append(h("span", { class: "delivery-label" }, label));
  if (d.state === "failed" && onResend) {
    box.append(h("button", { type: "button", class: "small-button", onclick: () => onResend(msg) }, "Resend"));
  }
  return box;
}

// --- the message -------------------------------------------------------------

/** The author line: a long name is cut (its title keeps it), never what kind of message it is. */
function author(msg) {
  const name = (text) => h("span", { class: "who-name", title: text }, text);
  if (msg.kind === "agent") return name(msg.author || "Agent");
  if (msg.kind === "note") return [name(msg.author || "Someone"), h("span", { class: "who-kind" }, " · internal note")];
  return authorLabel(msg);
}

function authorLabel(msg) {
  switch (msg.kind) {
    case "user": return "End user";
    case "bot": return "Bot";
    case "agent": return msg.author || "Agent";
    case "note": return `${msg.author || "Someone"} · internal note`;
    default: return "";
  }
}

/** A system line; the start of the handover is a clear marker (with what the bot handed
 * over, if anything); a hand-back to the bot shows how its delivery went. */
function renderSystem(msg, handlers) {
  const context = obj(msg.context);
  const event = context.event;
  const handover = event === "handover";
  const extra = handover ? handoverContext(context.handover_context)
    : event === "handback" ? renderDelivery(msg, handlers, "Handed back to the bot") : null;
  const text = handover ? `Handover started · ${context.reason ? reasonLabel(str(context.reason)) : msg.text}` : msg.text;
  return h("div", {
    class: ["msg", "msg-system", handover && "marker-handover", extra && "with-extra"],
    role: handover ? (extra ? "group" : "separator") : null, "aria-label": handover && extra ? text : null,
    dataset: { id: String(msg.id), seq: String(msg.seq), kind: "system", event: str(event) },
  }, h("span", { class: "system-text", dir: "auto" }, text),
  h("time", { datetime: str(msg.created_at), title: fullTime(msg.created_at) }, clock(msg.created_at)),
  extra);
}

export function renderMessage(msg, handlers = {}) {
  if (msg.kind === "system") return renderSystem(msg, handlers);
  const kind = ["user", "bot", "agent", "note"].includes(msg.kind) ? msg.kind : "system";
  // The bot's rich messages and an agent's rich replies, as the end user sees them; an
  // end user's Chatlayer message (a file, a location, a button pressed) as it was meant.
  const rich = kind === "bot" || kind === "agent" ? renderRich(msg.message)
    : kind === "user" ? renderUserMessage(msg.message) : null;
  const head = h("header", { class: "msg-head" },
    h("span", { class: "who" }, author(msg)),
    h("time", { datetime: str(msg.created_at), title: fullTime(msg.created_at) }, msg.pending ? "" : clock(msg.created_at)));
  const chips = contextChips(msg);
  const meta = chips.length ? h("div", { class: "msg-context" }, chips) : null;
  return h("article", {
    class: ["msg", `msg-${kind}`, msg.pending && "pending"],
    dataset: { id: String(msg.id), seq: String(msg.seq ?? ""), kind },
    "aria-label": authorLabel(msg),
  },
  head,
  h("div", { class: "msg-body" }, rich || para(str(msg.text))),
  meta,
  kind === "user" || kind === "bot" ? details(msg) : null,
  kind === "agent" ? renderDelivery(msg, handlers) : null);
}
