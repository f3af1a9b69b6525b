/* API calls: every request of the UI goes through api() below, which counts it in the busy indicator,
 * reads the JSON answer and turns any failure into an ApiError with the HTTP status and the API's own
 * `error` message. URLs are relative ("api/history?..."), so the UI works under any mount prefix. */
import { $ } from "./dom.js";
import { addInflight } from "./state.js";

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let unauthorized = () => {};
/** What to do on a 401 (show the token form): fn(message). Set once by app.js. */
export function onUnauthorized(fn) { unauthorized = fn; }

function setBusy(delta) {
  const n = addInflight(delta);
  document.body.dataset.loading = n > 0 ? "1" : "0";
  $("#busy").classList.toggle("on", n > 0);
}

/** The query string of params: null, undefined and "" values are left out. */
function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  return q.toString();
}

/** The ApiError of a failed response whose body is text: the API's own `error` when the body has one;
 * a 401 also shows the token form. */
function failure(resp, text) {
  let parsed;
  try { parsed = JSON.parse(text); } catch (e) { parsed = undefined; }
  const msg = parsed && typeof parsed.error === "string" ? parsed.error : (resp.statusText || "request failed");
  if (resp.status === 401) unauthorized(msg);
  return new ApiError(resp.status, msg);
}

/** GET api/<path>?<params>: resolves to the parsed JSON body, rejects with an ApiError. */
export async function api(path, params) {
  const qs = query(params);
  const url = "api/" + path + (qs ? "?" + qs : "");
  setBusy(1);
  try {
    let resp;
    try {
      resp = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "Could not reach the server (" + (e && e.message ? e.message : e) + ").");
    }
    const text = await resp.text();
    if (!resp.ok) throw failure(resp, text);
    let body;
    try { body = JSON.parse(text); } catch (e) { body = undefined; }
    if (body === undefined) {
      throw new ApiError(resp.status, "The response could not be read as JSON. If pyloot runs behind a middleware " +
        "that also gzips responses, disable gzip in pyloot: PyLoot(server=PyLootServer(disable_response_gzip=True)).");
    }
    return body;
  } finally {
    setBusy(-1);
  }
}

/** GET api/<path>?<params> for a file (a heap dump): resolves to {blob, filename} (the name from
 * Content-Disposition), rejects with an ApiError carrying the API's own words. */
export async function apiFile(path, params) {
  const qs = query(params);
  setBusy(1);
  try {
    let resp;
    try {
      resp = await fetch("api/" + path + (qs ? "?" + qs : ""), { cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "Could not reach the server (" + (e && e.message ? e.message : e) + ").");
    }
    if (!resp.ok) throw failure(resp, await resp.text());
    const m = /filename="([^"\\/]+)"/.exec(resp.headers.get("Content-Disposition") || "");
    return { blob: await resp.blob(), filename: m ? m[1] : path };
  } finally {
    setBusy(-1);
  }
}

/** POST a body (a Blob: heap dump files) to api/<path> and resolve to its JSON; rejects with an ApiError. */
export async function apiPost(path, body) {
  setBusy(1);
  try {
    let resp;
    try {
      resp = await fetch("api/" + path, { method: "POST", body, cache: "no-store",
        headers: { Accept: "application/json", "Content-Type": "application/octet-stream" } });
    } catch (e) {
      throw new ApiError(0, "Could not reach the server (" + (e && e.message ? e.message : e) + ").");
    }
    const text = await resp.text();
    if (!resp.ok) throw failure(resp, text);
    let parsed;
    try { parsed = JSON.parse(text); } catch (e) { parsed = undefined; }
    if (parsed === undefined) throw new ApiError(resp.status, "The response could not be read as JSON.");
    return parsed;
  } finally {
    setBusy(-1);
  }
}

/**
 * POST the token to api/login (the server keeps it in an HttpOnly cookie). Resolves to null when it
 * was taken, else to {message, refused}: refused is false when the server could not be reached.
 * Never rejects.
 */
export async function login(token) {
  let resp;
  try {
    resp = await fetch("api/login", { method: "POST", body: token, cache: "no-store",
      headers: { "Content-Type": "text/plain" } });
  } catch (err) {
    return { message: "Could not reach the server.", refused: false };
  }
  if (resp.ok) return null;
  let message = "The token is not correct.";
  try { const b = await resp.json(); if (b && b.error) message = b.error; } catch (err) { /* keep the message */ }
  return { message, refused: true };
}

const STATUS_WORDS = {
  0: "Network error", 400: "Bad request", 401: "Token needed", 403: "Not shown to this request",
  404: "Not found", 405: "Not allowed", 500: "Server error",
  501: "Not available here", 503: "Unavailable", 504: "Worker did not answer in time",
};
/** The status of an error (-1 when it is not an ApiError) and its title in words: "Not found (404)". */
export function errorStatus(err) { return err instanceof ApiError ? err.status : -1; }
export function errorTitle(err) {
  const status = errorStatus(err);
  const title = STATUS_WORDS[status] || (status > 0 ? "Error " + status : "Error");
  return title + (status > 0 ? " (" + status + ")" : "");
}
