/* Links to live objects and reference paths, as the object, objects and retainers pages show them. */
import { h } from "./dom.js";
import { fmtBytes, truncate, typeOf } from "./format.js";
import { hashFor } from "./router.js";
import { workerParams } from "./procs.js";

/** An object (type, repr, size) linking to its page in worker pid (host); current: the page's own object, not a link. */
export function objLink(o, pid, current, host) {
  const body = [h("span", { class: "obj-type mono" }, typeOf(o)), h("span", { class: "obj-repr" }, truncate(o.repr, 160)),
    h("span", { class: "obj-size muted" }, fmtBytes(o.size))];
  if (current) return h("span", { class: "obj-link current", dataset: { id: String(o.id) } }, body);
  return h("a", { class: "obj-link", href: hashFor("object/" + o.id, workerParams(pid, host)), dataset: { id: String(o.id) }, title: "id " + o.id }, body);
}

/** A link to an object of the dominator tree: type, repr, retained size (and shallow size), then extra. */
export function treeObjLink(o, pid, extra, host) {
  return h("a", { class: "obj-link tree-link", href: hashFor("object/" + o.id, workerParams(pid, host)), dataset: { id: String(o.id) }, title: "id " + o.id },
    h("span", { class: "obj-type mono" }, typeOf(o)), h("span", { class: "obj-repr" }, truncate(o.repr, 160)),
    h("span", { class: "obj-size muted", title: "retained / shallow size" }, o.retained !== undefined ? h("b", null, fmtBytes(o.retained)) : null,
      o.retained !== undefined ? " / " : null, fmtBytes(o.size)), extra || null);
}

/** The steps of a path from a root ([{via, object}], root first) as <li>s: how the previous object holds
 * each one, then link(object, isLast). */
export function pathSteps(path, link) {
  return path.map((step, i) => {
    const last = i === path.length - 1;
    return h("li", { class: "path-step" + (last ? " target" : "") },
      step.via ? h("div", { class: "via" }, "↳ ", h("code", null, step.via)) : h("div", { class: "via root" }, "root"),
      link(step.object, last));
  });
}
