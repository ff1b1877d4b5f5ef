// A read-only field with a Copy button (clipboard API, with a selection fallback).

import { h } from "./dom.js";
import { toast } from "./toast.js";

async function copyText(input) {
  const text = input.value;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
}

export function copyField(label, value, { id, secret = false } = {}) {
  const input = h("input", { type: "text", readonly: true, class: ["copy-input", secret && "secret"], value, id, spellcheck: "false", "aria-label": label });
  input.addEventListener("focus", () => input.select());
  const button = h("button", { type: "button", class: "small-button copy-button", "aria-label": `Copy ${label}` }, "Copy");
  button.addEventListener("click", async () => {
    const ok = await copyText(input);
    button.textContent = ok ? "Copied" : "Select and copy";
    if (!ok) toast("Copy is blocked here: the text is selected, press Ctrl+C.", "error");
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
  return h("div", { class: "copy-field" }, input, button);
}
