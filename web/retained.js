/* Retained sizes (the dominator tree) on the object and objects pages: the "Retained" panel of an
 * object and the "Suspect" box of a type. The first request of a worker builds its tree (about a
 * second per million objects); later ones reuse it for a minute (docs/live-objects.md). The
 * "Biggest retainers" page is view-retainers.js. */
import { h, fill } from "./dom.js";
import { fmtBytes, fmtInt } from "./format.js";
import { api } from "./api.js";
import { errorBox, loadingBlock } from "./feedback.js";
import { hashFor } from "./router.js";
import { workerParams } from "./procs.js";
import { treeObjLink, pathSteps } from "./objlinks.js";

/** The "Retained" panel of the object page: retained size, immediate dominator, what it retains. */
export function retainedPanel(sec, id, pid, stillHere, host) {
  const title = sec.firstChild;
  api("objects/" + id, Object.assign(workerParams(pid, host), { retained: 1 })).then((o) => {
    if (!stillHere()) return;
    const at = o.pid !== undefined ? o.pid : pid;
    const dom = o.dominator;
    fill(sec, title,
      h("div", { class: "stats" },
        h("span", { class: "stat" }, h("span", { class: "stat-label" }, "retained"),
          h("b", { id: "object-retained", dataset: { bytes: o.retained === null ? "" : String(o.retained) } },
            o.retained === null ? "not in the tree" : fmtBytes(o.retained))),
        h("span", { class: "stat" }, h("span", { class: "stat-label" }, "shallow"), h("b", null, fmtBytes(o.size)))),
      h("p", { class: "small muted" }, "What would be freed if this object went away: itself and everything only it keeps alive."),
      h("div", { class: "dominator", id: "object-dominator" },
        h("span", { class: "stat-label" }, "immediately dominated by"),
        dom ? treeObjLink(dom, at, null, host) : h("span", { class: "muted small" }, o.retained === null ? " –" : " a root (referenced from outside the heap: a module, a running frame, C code)")),
      o.retained !== null ? h("a", { class: "btn small", id: "object-retains", href: hashFor("retainers", Object.assign(workerParams(at, host), { id: o.id })) }, "What it retains ›") : null);
  }, (err) => { if (stillHere()) fill(sec, title, errorBox(err)); });
}

/** The box's content for an /api/suspects answer d with at least one suspect. */
function suspectBody(d, group, host) {
  const sus = d.suspects;
  const best = sus[0];
  const share = d.instances ? Math.round((100 * best.count) / d.instances) : 0;
  return [h("h2", null, "Suspect ", h("span", { class: "muted small" }, "the object that retains the most " + group + " instances")),
    h("div", { class: "suspect-main", id: "suspect", dataset: { id: String(best.object.id), count: String(best.count) } },
      treeObjLink(Object.assign({ retained: best.retained }, best.object), d.pid, null, host),
      h("div", { class: "stats" },
        h("span", { class: "stat" }, h("span", { class: "stat-label" }, "holds"),
          h("b", { id: "suspect-count" }, fmtInt(best.count)), h("span", { class: "muted small" }, " of " + fmtInt(d.instances) + " (" + share + "%)")),
        h("span", { class: "stat" }, h("span", { class: "stat-label" }, "retains"), h("b", { id: "suspect-retained" }, fmtBytes(best.retained))),
        h("a", { class: "btn small", href: hashFor("retainers", Object.assign(workerParams(d.pid, host), { id: best.object.id })) }, "What it retains ›"))),
    h("div", { class: "stat-label" }, "kept alive by"),
    h("ol", { class: "path suspect-path", id: "suspect-path" }, pathSteps(best.path || [], (o) => treeObjLink(o, d.pid, null, host))),
    sus.length > 1 ? h("details", { class: "more-suspects" }, h("summary", null, "Other suspects (" + (sus.length - 1) + ")"),
      h("ul", { class: "obj-list" }, sus.slice(1).map((x) => h("li", null, treeObjLink(Object.assign({ retained: x.retained }, x.object), d.pid,
        h("span", { class: "obj-via small muted" }, "holds " + fmtInt(x.count)), host))))) : null];
}

/** The "Suspect" box of a type's objects page: the object that retains most of its instances. */
export function suspectBox(box, group, pid, host, stillHere) {
  box.hidden = false;
  box.dataset.state = "loading";
  fill(box, h("h2", null, "Suspect"), loadingBlock("Looking for what holds the " + group + " objects of pid " + pid + " (dominator tree)…"));
  api("suspects", Object.assign({ group, n: 3 }, workerParams(pid, host))).then((d) => {
    if (!stillHere()) return;
    box.dataset.state = "ready";
    if (!(d.suspects || []).length) {
      fill(box, h("h2", null, "Suspect"), h("div", { class: "empty small" }, "No object of pid " + d.pid + " holds " + group + " instances in one place."));
      return;
    }
    fill(box, suspectBody(d, group, host));
  }, (err) => {
    if (!stillHere()) return;
    box.dataset.state = "error";
    fill(box, h("h2", null, "Suspect"), errorBox(err, () => suspectBox(box, group, pid, host, stillHere)));
  });
}
