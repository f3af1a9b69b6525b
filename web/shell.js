/* The page around the views: the auto-refresh switch and its timer, the charts redrawn after a resize,
 * the "/" shortcut to the search box, and the banner when the first /api/procs fails. app.js wires
 * these to the page's events. */
import { $, hideTip, tipOpen } from "./dom.js";
import { ApiError } from "./api.js";
import { showBanner } from "./feedback.js";
import { autoRefreshOn, setAutoRefresh, currentView, inflightCount } from "./state.js";

const REFRESH_MS = 10000;
const STORAGE_KEY = "pyloot.autoRefresh";
// `pyloot --heap FILE` without --db: the store routes answer 503, so the timer refreshes no view but
// the Heap view (set by procsFailed from the first /api/procs).
let heapOnly = false;

/** The top bar's switch (on unless turned off before, remembered in localStorage) and the 10 s timer:
 * the view on screen refreshes in place, unless the tab is hidden, a request is in flight or a
 * chart tooltip is open (no redraw under the user's pointer). */
export function startAutoRefresh(box) {
  try { setAutoRefresh(localStorage.getItem(STORAGE_KEY) !== "0"); } catch (e) { /* storage disabled */ }
  box.checked = autoRefreshOn();
  box.addEventListener("change", () => {
    setAutoRefresh(box.checked);
    try { localStorage.setItem(STORAGE_KEY, box.checked ? "1" : "0"); } catch (e) { /* ignore */ }
  });
  setInterval(() => {
    const cur = currentView();
    if (!autoRefreshOn() || document.hidden || inflightCount() > 0 || !cur || !cur.view.refresh) return;
    if (tipOpen() || (heapOnly && cur.name !== "heap")) return;
    cur.view.refresh();
  }, REFRESH_MS);
}

let lastWidth = window.innerWidth;
/** After a resize: the view redraws its charts, which depend on the width only. */
export function redrawOnResize() {
  if (window.innerWidth === lastWidth) return;
  lastWidth = window.innerWidth;
  hideTip();
  const cur = currentView();
  if (cur && cur.view.redraw) cur.view.redraw();
}

/** "/" anywhere but in a field jumps to the page's search (or type) box. */
export function slashToSearch(e) {
  if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
  const box = $("#search") || $("#group");
  if (box) { e.preventDefault(); box.focus(); box.select(); }
}

/** The first /api/procs failed: a banner, unless the workers page shows the error already or a 401
 * shows the token form. */
export function procsFailed(err) {
  // The server's words for a command that serves heap dumps only (src/cli/serve.c).
  if (err instanceof ApiError && err.status === 503 && /heap dumps only/.test(err.message)) heapOnly = true;
  const cur = currentView();
  if ((!cur || cur.name !== "workers") && !(err instanceof ApiError && err.status === 401)) showBanner(err);
}
