/* Where the picture of what holds an object is shown (graph-picture.js draws it): the "Referrers graph"
 * panel of the object page (GET /api/objects/<id>/graph, depth 1 to 4), and a witness's stored path on
 * demand (no request: the witness JSON has it). */
import { h, fill } from "./dom.js";
import { fmtInt } from "./format.js";
import { api } from "./api.js";
import { errorBox, loadingBlock } from "./feedback.js";
import { hashFor } from "./router.js";
import { workerParams } from "./procs.js";
import { drawGraph, graphLegend, witnessGraph } from "./graph-picture.js";

const DEPTHS = [1, 2, 3, 4], DEFAULT_DEPTH = 3;

/** The "Referrers graph" panel of object id in worker pid (host); stillHere() is false once the page is left. */
export function graphPanel(id, pid, host, stillHere) {
  let depth = DEFAULT_DEPTH, seq = 0;
  const body = h("div", { class: "graph-body" });
  const buttons = DEPTHS.map((d) => h("button", { type: "button", class: d === depth ? "on" : null, dataset: { depth: String(d) }, onclick: () => load(d) }, String(d)));
  const sec = h("section", { class: "panel graph-panel", id: "graph-panel" },
    h("div", { class: "graph-head" },
      h("h2", null, "Referrers graph ", h("span", { class: "muted small" }, "what holds it, and the path from a root")),
      h("span", { class: "graph-depth small muted" }, "depth ", h("span", { class: "segmented small" }, buttons))),
    body);
  async function load(d) {
    depth = d;
    buttons.forEach((b) => b.classList.toggle("on", Number(b.dataset.depth) === d));
    const my = ++seq;
    fill(body, loadingBlock("Searching what refers to it, " + d + (d === 1 ? " level" : " levels") + " deep…"));
    try {
      const g = await api("objects/" + id + "/graph", Object.assign(workerParams(pid, host), { depth: d }));
      if (!stillHere() || my !== seq) return;
      const at = g.pid !== undefined ? g.pid : pid;
      g.nodes.forEach((n, i) => { n.link = i > 0; });
      const note = g.truncated ? h("span", { class: "graph-truncated" }, "cut at " + fmtInt(g.nodes.length) + " objects") : null;
      const lost = g.found ? null : h("span", null, "no root reaches it (a cycle, C code, or about to be freed)");
      const picture = drawGraph(g, (n) => hashFor("object/" + n.id, workerParams(at, host)));
      fill(body, picture, graphLegend([note, lost]));
      picture.scrollLeft = picture.scrollWidth; // the object is at the right end
      body.dataset.nodes = String(g.nodes.length);
    } catch (err) {
      if (stillHere() && my === seq) fill(body, errorBox(err, () => load(depth)));
    }
  }
  load(depth);
  return sec;
}

/** A "picture" button for a witness w ({path: [{type, via, repr}]}): shows its path drawn as a graph below `after`. */
export function witnessPictureButton(w, after) {
  let open = null;
  return h("button", { type: "button", class: "btn ghost small witness-picture", onclick: (ev) => {
    ev.preventDefault();
    if (open) { open.remove(); open = null; return; }
    open = h("div", { class: "witness-graph" }, drawGraph(witnessGraph(w), null));
    after.after(open);
  } }, "picture");
}
