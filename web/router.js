/* Routing: the state of each page is in the URL hash (#/history?q=..&sort=..), so a view can be
 * bookmarked and shared and the back button works. route() mounts the view the hash names, or hands
 * it the new parameters when it can update in place.
 * A view is made by a function of no argument and returns {mount(main, r), update(r), canUpdate(r),
 * unmount(), and optionally refresh() for the auto-refresh and redraw() after a resize}, where r is
 * parseHash()'s {name, segs, params}. */
import { $, h, clear, hideTip } from "./dom.js";
import { clamp } from "./format.js";
import { ApiError } from "./api.js";
import { errorBox } from "./feedback.js";
import { currentView, setCurrentView } from "./state.js";

let views = {};
/** The views by the hash's first segment: {history: historyView, ...}. Set once by app.js. */
export function defineViews(table) { views = table; }

/** location.hash as {name, segs (decoded), params (URLSearchParams)}; "#/" is the history. */
export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const qi = raw.indexOf("?");
  const path = qi >= 0 ? raw.slice(0, qi) : raw;
  const params = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : "");
  const segs = path.split("/").filter(Boolean).map((x) => { try { return decodeURIComponent(x); } catch (e) { return x; } });
  return { name: segs[0] || "history", segs, params };
}
/** "#/path?k=v": null, undefined and "" values are left out. */
export function hashFor(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const qs = q.toString();
  return "#/" + path + (qs ? "?" + qs : "");
}
/** A whole-number parameter of the hash, clamped to [lo, hi]; def when absent or not a number. */
export function intParam(params, name, def, lo, hi) {
  const raw = params.get(name);
  if (raw === null || !/^\d{1,9}$/.test(raw)) return def;
  return clamp(parseInt(raw, 10), lo, hi);
}
/** The pid= of a hash (1 to 7 digits), else "". */
export const pidParam = (params) => (/^\d{1,7}$/.test(params.get("pid") || "") ? params.get("pid") : "");

/** Go to a hash. replace=true keeps one history entry (typing in a search box). */
export function navigate(hash, replace) {
  if (hash === location.hash) return;
  if (replace) {
    history.replaceState(null, "", hash);
    route();
  } else {
    location.hash = hash;
  }
}

function titleOf(r) {
  const group = r.params.get("group"), q = r.params.get("q");
  return (r.name === "history" ? "History" + (q ? " · " + q : "") :
    r.name === "workers" ? "Workers" :
    r.name === "memory" ? "Memory" :
    r.name === "objects" ? (group ? group + " objects" : "Objects") :
    r.name === "retainers" ? "Biggest retainers" :
    r.name === "heap" ? "Heap dump" :
    r.name === "tasks" ? "Asyncio tasks" :
    "Object " + (r.segs[1] || "")) + " · pyloot";
}

function unmountCurrent() {
  const cur = currentView();
  if (cur && cur.view.unmount) cur.view.unmount();
  setCurrentView(null);
}

function notFound(r) {
  unmountCurrent();
  const main = clear($("#main"));
  main.append(errorBox(new ApiError(404, "There is no page “#/" + r.segs.join("/") + "”.")),
    h("p", null, h("a", { href: "#/history" }, "Go to the history")));
  document.body.dataset.view = "notfound";
}

/** Show the view of location.hash: updated in place when it is the one on screen, else mounted anew. */
export function route() {
  hideTip();
  const r = parseHash();
  const make = views[r.name];
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === (r.name === "object" ? "objects" : r.name)));
  if (!make) { notFound(r); return; }
  document.body.dataset.view = r.name;
  document.title = titleOf(r);
  const cur = currentView();
  if (cur && cur.name === r.name && cur.view.update && cur.view.canUpdate(r)) {
    cur.view.update(r);
    return;
  }
  unmountCurrent();
  const main = clear($("#main"));
  const view = make();
  setCurrentView(r.name, view);
  view.mount(main, r);
  window.scrollTo(0, 0);
}

/** Every view starts again (after logging in). */
export function restart() {
  unmountCurrent();
  route();
}
