/* The biggest retainers page (#/retainers?pid=&host=&id=&trail=): the dominator tree of one worker
 * (/api/retainers), drilled down one level at a time; `trail` keeps the ids above for the breadcrumbs.
 * The first request of a worker builds its tree; later ones reuse it for a minute. At the top level the
 * holders of growing types come first (their "growing" field: a badge, and "why" as the row's title). */
import { $, h, clear, fill } from "./dom.js";
import { fmtInt, fmtBytes, truncate, typeOf } from "./format.js";
import { api } from "./api.js";
import { errorBox, loadingBlock } from "./feedback.js";
import { hashFor, navigate, parseHash, pidParam } from "./router.js";
import { loadProcs, hostParam, workerParams, parseWorkerValue, fillWorkerSelect } from "./procs.js";
import { field } from "./controls.js";

const LIMIT = 50;

function readParams(p) {
  const pid = pidParam(p);
  return {
    pid,
    host: pid ? hostParam(p) : "",
    id: /^\d{1,18}$/.test(p.get("id") || "") ? p.get("id") : "",
    trail: (p.get("trail") || "").split(",").filter((x) => /^\d{1,18}$/.test(x)).slice(-20),
  };
}

/** The worker selector (live workers), filled again once /api/procs answers. */
function workerSelect(x) {
  const worker = h("select", { id: "retainers-worker", "aria-label": "Worker" });
  const fillWorkers = () => fillWorkerSelect(worker, ["", "Answering worker"], x.pid, x.host, { alive: true, label: (pr, who) => who });
  fillWorkers();
  loadProcs().then(() => { if (x.stillHere()) fillWorkers(); }, () => {});
  worker.addEventListener("change", () => { const w = parseWorkerValue(worker.value); navigate(hashFor("retainers", workerParams(w.pid, w.host))); });
  return worker;
}

/** The breadcrumbs (heap › #trail... › #id) and what the object (or the heap) retains, of answer d. */
function renderHead(x, d) {
  const at = String(d.pid), wp = workerParams(at, x.host);
  const crumbs = h("nav", { class: "crumbs tree-crumbs", id: "retainers-crumbs" },
    h("a", { href: hashFor("retainers", wp) }, "heap of pid " + at + (x.host ? " on " + x.host : "")));
  x.trail.forEach((t, i) => crumbs.append(" › ", h("a", { href: hashFor("retainers", Object.assign({}, wp, { id: t, trail: x.trail.slice(0, i).join(",") || null })) }, "#" + t)));
  if (d.id !== null) crumbs.append(" › ", h("a", { href: hashFor("object/" + d.id, wp) }, "#" + d.id));
  fill(x.head, h("div", { class: "summary" }, crumbs,
    h("div", { class: "muted small" }, (d.id === null ? "whole heap" : "retains") + " ",
      h("b", { id: "retainers-retained", dataset: { bytes: String(d.retained) } }, fmtBytes(d.retained)),
      " · " + fmtInt(d.total) + " dominated " + (d.total === 1 ? "object" : "objects") + " below · tree of " + fmtInt(d.objects_in_tree) +
      " objects, built " + Math.round(d.tree_age_ms / 1000) + " s ago")));
}

/** One dominated object: a bar relative to the first row (top), a link that drills down, the object page. */
function retainerRow(x, o, at, top) {
  const wp = workerParams(at, x.host);
  const nextTrail = x.id ? x.trail.concat([x.id]).join(",") : "";
  const pct = Math.max(0.5, (100 * o.retained) / top);
  const drill = hashFor("retainers", Object.assign({}, wp, { id: o.id, trail: nextTrail || null }));
  const g = o.growing;
  return h("li", { class: "retainer-row" + (g ? " growing-holder" : ""), dataset: { id: String(o.id), retained: String(o.retained) } },
    h("div", { class: "bar", style: "width:" + pct.toFixed(1) + "%" }),
    h("a", { class: "obj-link tree-link drill", href: drill, title: g ? o.why : "What it retains" },
      g ? h("span", { class: "badge growing-badge" }, "holds " + fmtInt(g.count) + " " + g.type) : null,
      h("span", { class: "obj-type mono" }, typeOf(o)), h("span", { class: "obj-repr" }, truncate(o.repr, 160)),
      h("span", { class: "obj-size" }, h("b", null, fmtBytes(o.retained)))),
    h("a", { class: "small open-object", href: hashFor("object/" + o.id, wp), title: "Open the object" }, "object ›"));
}

/** Ask for the next LIMIT rows (the first call fills the head and the list), with "Show more" after. */
async function page(x, retry) {
  const results = x.results;
  try {
    const d = await api("retainers", Object.assign(workerParams(x.pid, x.host), { id: x.id || null, offset: x.offset || null, limit: LIMIT }));
    if (!x.stillHere()) return;
    const at = String(d.pid);
    if (x.offset === 0) {
      renderHead(x, d);
      fill(results, h("ol", { class: "obj-list retainer-list", id: "retainers" }), h("div", { class: "more" }));
      results.dataset.state = "ready";
    }
    const list = $("#retainers", results), more = results.lastChild;
    // The holders of growing types come first, whatever their size: the bars scale to the largest row.
    const top = (d.objects && d.objects.length && x.offset === 0) ? Math.max(...d.objects.map((o) => o.retained)) : (list.dataset.top ? Number(list.dataset.top) : 1);
    if (x.offset === 0) list.dataset.top = String(top || 1);
    for (const o of d.objects || []) list.append(retainerRow(x, o, at, Number(list.dataset.top) || 1));
    x.offset += (d.objects || []).length;
    clear(more);
    if (!x.offset) fill(results, h("div", { class: "empty" }, "It dominates nothing: every object it refers to is also held from elsewhere."));
    else if (x.offset < d.total) more.append(h("button", { type: "button", class: "btn small", id: "retainers-more", onclick: () => page(x, retry) }, "Show more (" + fmtInt(d.total - x.offset) + " left)"));
  } catch (err) {
    if (!x.stillHere()) return;
    results.dataset.state = "error";
    fill(results, errorBox(err, retry));
  }
}

/** The retainers view (router.js's view interface). */
export function retainersView() {
  let seq = 0;
  function show(main, r) {
    const my = ++seq;
    const x = Object.assign(readParams(r.params), { offset: 0, stillHere: () => my === seq });
    x.head = h("div", { class: "bar-row", id: "retainers-head" });
    x.results = h("div", { id: "results", dataset: { state: "loading" } },
      loadingBlock("Asking " + (x.pid ? "pid " + x.pid + (x.host ? " on " + x.host : "") : "the answering worker") + " for its dominator tree (the first request takes a snapshot of its heap)…"));
    main.append(h("h1", { class: "page-title" }, "Biggest retainers"),
      h("p", { class: "muted small" }, "Each object with what it alone keeps alive (its retained size), largest first; at the top of the heap, the holders of the types that are growing come first. Click a row to see what it retains."),
      h("section", { class: "toolbar" }, field("Worker", workerSelect(x))), x.head, x.results);
    page(x, () => update(parseHash()));
  }
  function update(r) { const m = $("#main"); clear(m); show(m, r); window.scrollTo(0, 0); }
  return { mount: show, update, canUpdate: () => true, unmount: () => { seq++; } };
}
