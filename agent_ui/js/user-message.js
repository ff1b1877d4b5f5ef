// An end user's Chatlayer message (Chatlayer Offloading: the `message` of a "user"
// transcript message is Chatlayer's UserMessage object) as DOM: files as links, a
// location as coordinates with a map link, a button press as its title, the start of
// a conversation as a muted line. Text stays text; links are http(s) only and open in
// a new tab without a referrer or opener. Anything else (a text message, an unknown
// type) is left to the message's plain text.

import { h, safeHttpUrl } from "./dom.js";

const MAX_FILES = 20;
const FILE_TYPES = new Set(["fileUploadInputResult", "upload"]);

const str = (v) => (typeof v === "string" ? v : "");
const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : {});

/** The last segment of the URL's path, decoded ("report.pdf"), else its host. */
export function fileName(href) {
  const url = new URL(href);
  const last = url.pathname.split("/").filter(Boolean).pop() || "";
  try {
    return decodeURIComponent(last) || url.host;
  } catch {
    return last || url.host;
  }
}

/** A file message's URLs, once each: `urls` and `data.fileUrl`. */
function fileUrls(m) {
  const urls = (Array.isArray(m.urls) ? m.urls : []).filter((u) => typeof u === "string");
  const data = obj(m.data);
  if (typeof data.fileUrl === "string") urls.push(data.fileUrl);
  return [...new Set(urls)].slice(0, MAX_FILES);
}

function fileLink(url) {
  const href = safeHttpUrl(url);
  if (!href) {
    return h("span", { class: "attachment inert", title: "link removed: not an http(s) address" },
      "file", h("span", { class: "hint" }, " · link removed"));
  }
  const name = fileName(href);
  return h("a", { class: "attachment", href, target: "_blank", rel: "noopener noreferrer", title: href },
    h("span", { class: "attachment-name", dir: "auto" }, name));
}

function files(m) {
  const urls = fileUrls(m);
  return h("div", { class: "user-files" },
    h("span", { class: "rich-label" }, urls.length === 1 ? "File" : `Files · ${urls.length}`),
    urls.length ? h("ul", { class: "attachments" }, urls.map((u) => h("li", {}, fileLink(u))))
      : h("p", { class: "muted" }, "(no file link)"));
}

function coordinate(v, limit) {
  return typeof v === "number" && Number.isFinite(v) && v >= -limit && v <= limit ? v : null;
}

/** A location's [lat, long] when both are finite numbers in range, else null. */
export function coordinates(m) {
  const c = obj(m.coordinates);
  const lat = coordinate(c.lat, 90);
  const long = coordinate(c.long ?? c.lng, 180);
  return lat === null || long === null ? null : [lat, long];
}

function location(m) {
  const where = coordinates(m);
  if (!where) return h("div", { class: "user-location" }, h("span", { class: "rich-label" }, "Location"),
    h("p", { class: "muted" }, "(coordinates not readable)"));
  const [lat, long] = where.map(String);
  const map = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${long}#map=16/${lat}/${long}`;
  return h("div", { class: "user-location" }, h("span", { class: "rich-label" }, "Location"),
    h("p", { class: "coordinates" }, `${lat}, ${long}`),
    h("a", { class: "card-link map-link", href: map, target: "_blank", rel: "noopener noreferrer", title: map }, "Open map"));
}

function postback(m) {
  const title = str(m.title) || "(untitled button)";
  return h("p", { class: "user-postback" }, h("span", { class: "postback-title", dir: "auto", title }, title),
    h("span", { class: "hint" }, " · button"));
}

/** The end user's Chatlayer message as DOM, or null when its plain text says it all. */
export function renderUserMessage(message) {
  const m = obj(message);
  const type = str(m.messageType);
  if (FILE_TYPES.has(type)) return files(m);
  if (type === "location") return location(m);
  if (type === "postback") return postback(m);
  if (type === "intro") return h("p", { class: "user-intro muted" }, "Conversation started");
  return null;
}
