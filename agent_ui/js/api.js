// The agent API over fetch: JSON in and out, the CSRF header on every change,
// errors as `ApiError` carrying the server's {error, message, fields}.

import { Emitter } from "./emitter.js";

export const apiEvents = new Emitter(); // "unauthorized"

let csrfToken = null;
let clockSkewMs = 0;

export function setCsrf(token) {
  csrfToken = token;
}

/** Milliseconds to add to `Date.now()` to get the server's clock (from its Date header). */
export function serverNow() {
  return Date.now() + clockSkewMs;
}

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    const message = (body && body.message) || (status === 0 ? "network unreachable" : `HTTP ${status}`);
    super(message);
    this.status = status;
    this.code = body && body.error;
    this.body = body || {};
    this.fields = (body && body.fields) || [];
    this.retryAfter = retryAfter;
  }
}

const skewSamples = [];

/**
 * Estimate how far the server's clock is from ours, from Date headers. A Date
 * header is truncated to the second and may lag under load, so it can only be
 * behind the true server time: the largest recent sample is the best estimate.
 * Differences under 3 s are ignored (counters stay steady).
 */
function noteServerClock(response) {
  const date = response.headers.get("date");
  if (!date) return;
  const server = Date.parse(date);
  if (Number.isNaN(server)) return;
  skewSamples.push(server + 500 - Date.now());
  if (skewSamples.length > 10) skewSamples.shift();
  const skew = Math.max(...skewSamples);
  clockSkewMs = Math.abs(skew) > 3000 ? skew : 0;
}

export async function request(method, path, body = undefined, { quiet401 = false, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, null);
  }
  noteServerClock(response);
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text.slice(0, 200) };
    }
  }
  if (!response.ok) {
    if (response.status === 401 && !quiet401) apiEvents.emit("unauthorized", data);
    throw new ApiError(response.status, data, response.headers.get("retry-after"));
  }
  return data;
}

export const get = (path, opts) => request("GET", path, undefined, opts);
export const post = (path, body = {}, opts) => request("POST", path, body, opts);
export const patch = (path, body = {}, opts) => request("PATCH", path, body, opts);

/**
 * A fresh Idempotency-Key: one per composed message, reused when it is sent again
 * ("Try again"), so the server acts on it once. crypto.randomUUID exists only in
 * secure contexts; elsewhere 16 random bytes in hex.
 */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A short human sentence for an error, for toasts and form messages. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (err.status === 0) return "Cannot reach the server. Check the connection and try again.";
  if (err.fields.length) return err.fields.map((f) => `${f.field}: ${f.message}`).join("; ");
  return err.message;
}
