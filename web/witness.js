/* The "held by" line of a type: its latest recorded witness (docs/witnesses.md) as one line. The line
 * itself is built by the server (`held_by`, the same text `pyloot report` prints); the history cards and
 * the objects page both show it from here. */
import { h, fill } from "./dom.js";
import { fmtDateTime } from "./format.js";
import { api } from "./api.js";
import { witnessPictureButton } from "./graph-panel.js";

/** The hover text of a witness: each step with its repr, then who recorded it and when. */
function heldByDetail(w) {
  return w.path.map((step, i) => (i ? step.via + " → " : "") + step.type + ": " + step.repr).join("\n") +
    "\n(recorded by pid " + w.pid + " at " + fmtDateTime(w.time) + ")";
}

/** The latest recorded witness of a type (GET /api/witnesses), filled in when it arrives; empty when there is none;
 * a notice saying why when the access rule refuses it (403). With picture, a button draws its path as a graph
 * below the line. With site, a second line says where the witness's instance was created, when it was sampled
 * (docs/allocations.md): the history cards have no other place for it. */
export function witnessLine(group, pid, host, picture, site) {
  const el = h("div", { class: "witness", dataset: { state: "loading" } });
  api("witnesses", { group, pid: pid || null, host: host || null, limit: 1 }).then((d) => {
    const w = d.witnesses && d.witnesses[0];
    el.dataset.state = w ? "ready" : "none";
    if (!w) return;
    fill(el, h("span", { class: "stat-label" }, "held by"), " ",
      h("span", { class: "mono witness-path", title: heldByDetail(w) }, w.held_by),
      picture && w.path && w.path.length ? witnessPictureButton(w, el) : null,
      site && w.created_at ? h("div", { class: "witness-site" }, h("span", { class: "stat-label" }, "created at"), " ",
        h("span", { class: "mono" }, w.created_at)) : null);
  }, (err) => {
    // A 403 hides the line: say so, and why (the access rule's own words on hover).
    if (!err || err.status !== 403) { el.dataset.state = "error"; return; }
    el.dataset.state = "forbidden";
    fill(el, h("span", { class: "stat-label" }, "held by"), " ",
      h("span", { class: "muted witness-hidden", title: err.message || "" },
        "hidden: witnesses show reprs of live objects, and the access rule refuses them to this request (403; hover for why)"));
  });
  return el;
}
