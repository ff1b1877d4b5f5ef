// Building DOM nodes safely. Every piece of text goes through a Text node or
// `textContent`; URLs are checked before they become `href`/`src`.

const SVG_NS = "http://www.w3.org/2000/svg";

/** `url` as a string when it is an absolute http(s) URL, else null. */
export function safeHttpUrl(url) {
  if (typeof url !== "string" || !url.trim()) return null;
  let parsed;
  try {
    parsed = new URL(url.trim());
  } catch {
    return null;
  }
  return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
}

/** A same-page link ("#/...") or a safe http(s) URL; anything else is dropped. */
function checkedUrl(value) {
  if (typeof value === "string" && value.startsWith("#")) return value;
  return safeHttpUrl(value);
}

function appendChildren(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

function applyProps(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key.startsWith("on")) continue; // never an inline handler attribute
    else if (key === "href" || key === "src") {
      const url = checkedUrl(value);
      if (url !== null) el.setAttribute(key, url);
    } else if (key === "value" || key === "checked" || key === "disabled" || key === "selected") {
      el[key] = value;
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
}

/** `h("p", {class: "x"}, "text", child)`: an element with text children as Text nodes. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  applyProps(el, props);
  appendChildren(el, children);
  return el;
}

/** An SVG element (attributes only, no text parsing). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || key.startsWith("on")) continue;
    if (key === "text") el.textContent = String(value);
    else el.setAttribute(key, String(value));
  }
  appendChildren(el, children);
  return el;
}

/** Replace all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  appendChildren(el, children);
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $$(selector, root = document) {
  return Array.from(root.querySelectorAll(selector));
}

/** An icon-free badge (cut with an ellipsis when long: its title keeps the whole text). */
export function badge(text, kind = "") {
  return h("span", { class: ["badge", kind && `badge-${kind}`], title: text }, text);
}

/** Is the keyboard focus in something the user types into? */
export function typingTarget(target) {
  if (!(target instanceof Element)) return false;
  return target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']") !== null;
}
