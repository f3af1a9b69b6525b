/* The object page (#/object/<id>?pid=&host=): one live object, each section loaded on its own (a
 * section that fails shows its error, the others still show): the head and repr and attributes, why it
 * is alive, its retained size, its parents and children. */
import { $, h, clear, fill } from "./dom.js";
import { fmtInt, fmtBytes, typeOf } from "./format.js";
import { api, ApiError } from "./api.js";
import { errorBox, loadingBlock, accessDenied } from "./feedback.js";
import { hashFor, parseHash, pidParam } from "./router.js";
import { hostParam, workerParams, livingIn } from "./procs.js";
import { objLink, pathSteps } from "./objlinks.js";
import { retainedPanel } from "./retained.js";
import { graphPanel } from "./graph-panel.js";
import { taskPanel } from "./task-panel.js";

/** A panel: its title, then a loading block until its content replaces it. */
const panel = (id, title, loading) => h("section", { class: "panel", id }, h("h2", null, title), loadingBlock(loading));
/** Replace a panel's content, keeping its title. */
const replaceBody = (sec, ...nodes) => { const t = sec.firstChild; fill(sec, t, ...nodes); };

/** The sections of the page, empty (loading) until their answers arrive. */
function sections(id) {
  return {
    head: h("section", { class: "obj-head", id: "object-head" }, loadingBlock("Loading object " + id + "…")),
    repr: panel("repr-panel", "repr"),
    attrs: panel("attrs-panel", "Attributes"),
    path: panel("path-panel", "Why is it alive?", "Searching the shortest path from a root…"),
    parents: panel("parents-panel", ["Parents ", h("span", { class: "muted small" }, "objects that refer to it")]),
    children: panel("children-panel", ["Children ", h("span", { class: "muted small" }, "objects it refers to")]),
    retained: panel("retained-panel", "Retained", "Computing the dominator tree of the worker's heap…"),
  };
}

/** The head (type, id, pid, size), the repr and the attributes of /api/objects/<id>'s answer o. */
function showObject(x, o) {
  const pidShown = o.pid !== undefined ? o.pid : x.pid;
  const type = typeOf(o);
  fill(x.secs.head,
    h("div", { class: "crumbs" }, h("a", { href: hashFor("objects", Object.assign({ group: type }, workerParams(pidShown, x.host))) }, "‹ all " + type + " objects"),
      pidShown ? h("span", { class: "muted", id: "object-living-in" }, " " + livingIn(pidShown, x.host)) : null),
    h("h1", { class: "page-title mono", id: "object-title" }, h("span", { class: "obj-type" }, type), " ", h("span", { class: "muted" }, "#" + o.id)),
    h("div", { class: "stats" },
      h("span", { class: "stat" }, h("span", { class: "stat-label" }, "id"), h("b", { class: "mono", id: "object-id" }, String(o.id))),
      h("span", { class: "stat" }, h("span", { class: "stat-label" }, "pid"), h("b", null, pidShown ? String(pidShown) : "–")),
      h("span", { class: "stat" }, h("span", { class: "stat-label" }, "size"), h("b", null, fmtBytes(o.size))),
      o.obj_name && o.obj_name !== o.type_name ? h("span", { class: "stat" }, h("span", { class: "stat-label" }, "name"), h("b", { class: "mono" }, o.obj_name)) : null));
  replaceBody(x.secs.repr, h("pre", { class: "repr-box", id: "repr" }, o.repr));
  const tasks = taskPanel(o, pidShown, x.host);
  if (tasks) x.secs.repr.after(tasks);
  const attrs = Object.entries(o.attrs || {});
  replaceBody(x.secs.attrs, attrs.length
    ? h("div", { class: "table-wrap" }, h("table", { class: "table kv-table", id: "attrs" },
      h("tbody", null, attrs.map(([k, val]) => h("tr", { class: "attr-row", dataset: { name: k } }, h("th", { class: "mono" }, k), h("td", { class: "repr" }, val))))))
    : h("div", { class: "empty small", id: "attrs" }, "No attributes (no instance __dict__ or slots)."));
  if (o.parents_count !== undefined) x.secs.parents.querySelector("h2").append(h("span", { class: "count-pill" }, fmtInt(o.parents_count)));
  if (o.children_count !== undefined) x.secs.children.querySelector("h2").append(h("span", { class: "count-pill" }, fmtInt(o.children_count)));
}

/** The object could not be read: a 403 replaces the whole view, a 404 the panels too. */
function objectFailed(x, err, retry) {
  if (err instanceof ApiError && err.status === 403) {
    fill(x.secs.head, accessDenied(err));
    x.grid.remove();
    return;
  }
  fill(x.secs.head,
    h("div", { class: "crumbs" }, h("a", { href: "#/history", onclick: (e) => { if (history.length > 1) { e.preventDefault(); history.back(); } } }, "‹ back")),
    h("h1", { class: "page-title mono" }, "object " + x.id, x.pid ? h("span", { class: "muted" }, " " + livingIn(x.pid, x.host)) : null),
    errorBox(err, retry));
  if (err instanceof ApiError && err.status === 404) x.grid.remove(); // the other panels would repeat the error
}

/** "Why is it alive?": the shortest path from a root, /api/objects/<id>/path's answer d. */
function showPath(x, d) {
  if (!d.found || !d.path || !d.path.length) {
    replaceBody(x.secs.path, h("div", { class: "empty small", id: "path", dataset: { found: "0" } },
      "No root (module or running thread's frame) reaches this object: it is kept alive by a reference cycle, by C code, or it is about to be freed."));
    return;
  }
  const at = d.pid !== undefined ? d.pid : x.pid;
  replaceBody(x.secs.path, h("ol", { class: "path", id: "path", dataset: { found: "1" } },
    pathSteps(d.path, (o, last) => objLink(o, at, last, x.host))));
}

/** The parents or children (`which`) of the object, 50 at a time with "Show more". */
function refList(x, which) {
  const LIMIT = 50;
  const sec = x.secs[which];
  const list = h("ul", { class: "obj-list", id: which });
  const more = h("div", { class: "more" });
  let offset = 0;
  const title = sec.firstChild;
  async function page() {
    try {
      const d = await api("objects/" + x.id + "/" + which, Object.assign(workerParams(x.pid, x.host), { offset: offset || null, limit: LIMIT }));
      if (!x.stillHere()) return;
      if (offset === 0) fill(sec, title, list, more);
      for (const o of d.objects || []) {
        const link = objLink(o, d.pid !== undefined ? d.pid : x.pid, false, x.host);
        // How the parent holds this object, or how this object holds the child.
        if (o.via) link.append(h("span", { class: "obj-via mono small muted", title: which === "parents" ? "how it refers to this object" : "how this object refers to it" }, o.via));
        list.append(h("li", null, link));
      }
      offset += (d.objects || []).length;
      clear(more);
      if (!offset) list.replaceWith(h("div", { class: "empty small", id: which }, which === "parents" ? "No tracked object refers to it." : "It refers to no tracked object."));
      else if (offset < d.total) more.append(h("button", { type: "button", class: "btn small", onclick: page }, "Show more (" + fmtInt(d.total - offset) + " left)"));
    } catch (err) {
      if (!x.stillHere()) return;
      if (offset === 0) fill(sec, title, errorBox(err));
      else fill(more, errorBox(err, page));
    }
  }
  page();
}

/** The object view (router.js's view interface). */
export function objectView() {
  let seq = 0;
  function show(main, r) {
    const my = ++seq;
    const id = r.segs[1] || "";
    const pid = pidParam(r.params);
    const host = pid ? hostParam(r.params) : "";
    if (!/^\d{1,20}$/.test(id)) {
      main.append(errorBox(new ApiError(400, "“" + id + "” is not an object id.")));
      return;
    }
    const secs = sections(id);
    const grid = h("div", { class: "detail-grid" },
      h("div", { class: "col" }, secs.repr, secs.attrs, secs.path),
      h("div", { class: "col" }, secs.retained, secs.parents, secs.children));
    main.append(secs.head, grid);
    const x = { id, pid, host, secs, grid, stillHere: () => my === seq };
    const q = workerParams(pid, host);
    api("objects/" + id, q).then((o) => { if (x.stillHere()) showObject(x, o); },
      (err) => { if (x.stillHere()) objectFailed(x, err, () => update(parseHash())); });
    api("objects/" + id + "/path", q).then((d) => { if (x.stillHere()) showPath(x, d); },
      (err) => { if (x.stillHere()) replaceBody(secs.path, errorBox(err)); });
    grid.prepend(graphPanel(id, pid, host, x.stillHere));
    retainedPanel(secs.retained, id, pid, x.stillHere, host);
    refList(x, "parents");
    refList(x, "children");
  }
  function update(r) { const m = $("#main"); clear(m); show(m, r); window.scrollTo(0, 0); }
  return { mount: show, update, canUpdate: () => true, unmount: () => { seq++; } };
}
