/* Allocation sites (docs/allocations.md): where a traced type's live instances were created. The objects page
 * lists a type's top sites (GET /api/allocations); the object page says where that object was created (its
 * `created_at`). One wording of a frame for both: "file:line in function". */
import { h, fill } from "./dom.js";
import { fmtInt } from "./format.js";
import { api } from "./api.js";

const SHOWN = 5; /* sites listed on the objects page, top first */

/** "file:line in function", the one wording of a frame ("file:line" when the function is not known: tracemalloc's). */
export function frameText(f) {
  return f.file + ":" + f.line + (f.function ? " in " + f.function : "");
}

/** The whole stack of a site, innermost first, one frame a line (hover text). */
const stackText = (frames) => frames.map(frameText).join("\n");

/** "created at file:line in function" of an object's created_at (its innermost frame), the stack on hover;
 * null when the object was not sampled. */
export function createdAtLine(frames) {
  if (!frames || !frames.length) return null;
  return h("div", { class: "created-at", id: "object-created-at" }, h("span", { class: "stat-label" }, "created at"), " ",
    h("span", { class: "mono", title: stackText(frames) }, frameText(frames[0])));
}

/** The top allocation sites of a type in one worker, filled in when they arrive; empty when the type is not traced
 * or the request is refused (the objects list above says why it is refused). */
export function allocationSites(group, pid, host) {
  const el = h("div", { class: "alloc-sites", id: "alloc-sites", dataset: { state: "loading" } });
  api("allocations", { group, pid: pid || null, host: host || null, limit: SHOWN }).then((d) => {
    const sites = d.sites || [];
    el.dataset.state = d.traced ? (sites.length ? "ready" : "none") : "untraced";
    if (!d.traced || !sites.length) return;
    fill(el, h("span", { class: "stat-label" }, "created at"),
      h("ol", { class: "alloc-site-list" }, sites.map((s) => h("li", { class: "alloc-site" },
        h("span", { class: "mono", title: stackText(s.frames) }, s.frames.length ? frameText(s.frames[0]) : "(no Python frame)"),
        " ", h("span", { class: "muted small" }, fmtInt(s.count) + " live")))),
      d.total_sites > sites.length ? h("span", { class: "muted small" }, fmtInt(d.total_sites - sites.length) + " more sites") : null);
  }, () => { el.dataset.state = "error"; });
  return el;
}
