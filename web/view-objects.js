/* The objects page (#/objects?group=&pid=&host=&fetch=&page=&p=&offset=): the live objects of one type
 * in one worker, with the type's "held by" line and its Suspect box; with no type, the fastest-growing
 * types to pick from. */
import { h, clear, fill } from "./dom.js";
import { clamp, fmtInt, fmtSigned, fmtBytes, truncate } from "./format.js";
import { api, ApiError } from "./api.js";
import { errorBox, loadingBlock, accessDenied } from "./feedback.js";
import { hashFor, navigate, intParam, pidParam } from "./router.js";
import { procs, procList } from "./state.js";
import { loadProcs, hostParam, workerParams, parseWorkerValue, fillWorkerSelect, livingIn, hostList, byHost, manyHosts } from "./procs.js";
import { selectEl, ensureOption, field, pager, scrollToResults } from "./controls.js";
import { witnessLine } from "./witness.js";
import { suspectBox } from "./retained.js";

const FETCH_SIZES = [50, 100, 500, 1000, 5000, 10000];
const PAGE_SIZES = [10, 20, 50, 100, 500];

// ------------------------------------------------------------------ parameters <-> hash
function readParams(p) {
  const pid = pidParam(p);
  return {
    group: (p.get("group") || "").slice(0, 1024),
    pid,
    host: pid ? hostParam(p) : "",
    fetch: intParam(p, "fetch", 100, 1, 10000),
    page: intParam(p, "page", 20, 1, 10000),
    p: intParam(p, "p", 1, 1, 1e6),
    offset: intParam(p, "offset", 0, 0, 1e9),
  };
}
function toHash(x) {
  return hashFor("objects", { group: x.group || null, pid: x.pid || null, host: (x.pid && x.host) || null, fetch: x.fetch, page: x.page,
    p: x.p > 1 ? x.p : null, offset: x.offset || null });
}
function set(v, ch, replace) { navigate(toHash(Object.assign({}, v.st, ch)), replace); }
/** What one request fetches: a change of anything else (the page shown) needs no new request. */
const fetchKey = (x) => [x.group, x.pid, x.host, x.fetch, x.offset].join("\u0000");

// ------------------------------------------------------------------ controls
function buildToolbar(v) {
  const els = v.els, st = v.st;
  els.group = h("input", { id: "group", type: "text", value: st.group, placeholder: "Type name, e.g. app.models.Session",
    spellcheck: "false", autocomplete: "off", "aria-label": "Type name" });
  const submitGroup = () => { if (els.group.value.trim() !== v.st.group) set(v, { group: els.group.value.trim(), p: 1, offset: 0 }); };
  els.group.addEventListener("change", submitGroup);
  els.group.addEventListener("keydown", (e) => { if (e.key === "Enter") submitGroup(); });
  els.worker = selectEl("worker", [["", "Answering worker"]], st.pid, (x) => set(v, Object.assign(parseWorkerValue(x), { p: 1, offset: 0 })), "Worker");
  els.fetch = selectEl("fetch-size", FETCH_SIZES.map((n) => [n, "fetch " + fmtInt(n)]), st.fetch, (x) => set(v, { fetch: parseInt(x, 10), p: 1, offset: 0 }), "Fetch size");
  els.page = selectEl("obj-page-size", PAGE_SIZES.map((n) => [n, n + " per page"]), st.page, (x) => set(v, { page: parseInt(x, 10), p: 1 }), "Page size");
  return h("section", { class: "toolbar", id: "objects-toolbar" },
    field("Type", els.group, "grow"), field("Worker", els.worker), field("Fetch size", els.fetch), field("Page size", els.page));
}
function sync(v) {
  if (document.activeElement !== v.els.group) v.els.group.value = v.st.group;
  ensureOption(v.els.fetch, v.st.fetch, "fetch " + fmtInt(v.st.fetch));
  ensureOption(v.els.page, v.st.page, v.st.page + " per page");
  fillWorkers(v);
}
function fillWorkers(v) {
  const self = procs() && procs().self;
  // The pyloot command answers for no worker of its own: its first entry is not "Answering worker".
  const first = !procs() || self ? ["", "Answering worker"] : ["", procList().some((p) => p.alive) ? "A live worker" : "No live worker"];
  fillWorkerSelect(v.els.worker, first, v.st.pid, v.st.host, { alive: true, missing: " (not alive?)",
    label: (p, who) => who + (self && self.pid === p.pid && self.start === p.start ? " (answering)" : "") });
}

// ------------------------------------------------------------------ mount, update, loading
function mount(v, main, r) {
  v.st = readParams(r.params);
  const els = v.els;
  const toolbar = buildToolbar(v);
  els.head = h("div", { class: "bar-row", id: "objects-head" });
  els.witness = h("div", { id: "objects-witness" });
  els.suspect = h("section", { class: "panel suspect-box", id: "suspect-box", hidden: true });
  els.results = h("div", { id: "results", dataset: { state: "loading" } });
  main.append(toolbar, els.witness, els.suspect, els.head, els.results);
  sync(v);
  loadProcs().then(() => fillWorkers(v), () => {});
  load(v);
}
function update(v, r) {
  v.st = readParams(r.params);
  sync(v);
  if (fetchKey(v.st) !== v.loadedKey) load(v); else if (v.data) render(v);
}

/** Ask the worker for the objects of v.st (then the Suspect box), or offer types when none is chosen. */
async function load(v) {
  const my = ++v.seq, st = v.st, els = v.els;
  clear(els.head);
  fill(els.witness, st.group ? witnessLine(st.group, st.pid, st.host, true) : null, tasksLink(st));
  if (!st.group) { v.loadedKey = fetchKey(st); v.data = null; els.suspect.hidden = true; pickType(v); return; }
  if (!st.pid) {
    // The pyloot command (a central server, a store after the fact) is no worker: it has no live
    // objects of its own to answer with. Ask a live worker of the store, or say that none is.
    if (!procs()) await loadProcs().catch(() => {});
    if (my !== v.seq) return;
    if (procs() && !procs().self) {
      const w = liveWorker();
      if (w) { set(v, { pid: String(w.pid), host: manyHosts() ? w.host || "" : "", p: 1, offset: 0 }, true); return; }
      v.loadedKey = fetchKey(st); v.data = null; els.suspect.hidden = true;
      els.results.dataset.state = "ready";
      fill(els.results, noLiveWorker(st.group));
      return;
    }
  }
  els.results.dataset.state = "loading";
  fill(els.results, loadingBlock("Asking " + (st.pid ? "pid " + st.pid : "the answering worker") + " for its live " + st.group + " objects…"));
  try {
    const d = await api("objects", { group: st.group, pid: st.pid || null, host: st.host || null, limit: st.fetch, offset: st.offset || null });
    if (my !== v.seq) return;
    v.data = d;
    v.loadedKey = fetchKey(st);
    render(v);
    if (d.total > 0) suspectBox(els.suspect, d.group || st.group, d.pid, st.host, () => my === v.seq);
    else els.suspect.hidden = true;
  } catch (err) {
    if (my !== v.seq) return;
    v.data = null;
    v.loadedKey = null;
    els.results.dataset.state = "error";
    fill(els.results, err instanceof ApiError && err.status === 403 ? accessDenied(err) : errorBox(err, () => load(v)));
  }
}

/** A live worker to ask when no pid is chosen and nothing answers for itself: this host's first, by pid. */
function liveWorker() {
  const hosts = hostList();
  const alive = procList().filter((p) => p.alive);
  return byHost(alive.filter((p) => !p.remote), hosts)[0] || byHost(alive, hosts)[0] || null;
}
/** Asyncio tasks are better read grouped by what they run: a link to the tasks page of the worker. */
function tasksLink(st) {
  if (st.group !== "_asyncio.Task" && st.group !== "_asyncio.Future") return null;
  return h("p", { class: "small", id: "objects-tasks-link" }, "What these tasks run and wait for: ",
    h("a", { href: hashFor("tasks", workerParams(st.pid, st.host)) }, "tasks by coroutine ›"));
}

/** No worker of the store is alive: live objects cannot be asked for; the witness above is what remains. */
function noLiveWorker(group) {
  return h("div", { class: "empty", id: "no-live-worker" },
    "No worker of this store is alive now, so there are no live ", h("code", null, group),
    " objects to show: live objects exist only inside a running worker. What held them when the collector recorded a witness is shown above (",
    h("i", null, "held by"), "), when there is one; the ", h("a", { href: hashFor("history", { q: group }) }, "history"),
    " shows how the type grew.");
}

/** With no type chosen: the fastest-growing types, each a link to its objects. */
async function pickType(v) {
  const st = v.st;
  v.els.results.dataset.state = "ready";
  const list = h("div", { class: "chips", id: "type-chips" }, loadingBlock());
  fill(v.els.results, h("div", { class: "empty" }, "Choose a type above, or one of the fastest-growing types:"), list);
  try {
    const d = await api("history", { sort: "growth", limit: 30, points: 2, pid: st.pid || null, host: st.host || null });
    clear(list);
    for (const t of d.types || []) list.append(h("a", { class: "chip", href: toHash(Object.assign({}, st, { group: t.name, p: 1, offset: 0 })) },
      h("span", { class: "mono" }, t.name), h("span", { class: "chip-n" + (t.growth > 0 ? " up" : "") }, fmtSigned(t.growth))));
  } catch (err) { fill(list, errorBox(err)); }
}

// ------------------------------------------------------------------ rendering
/** "leaky.Leak objects living in pid 42 (the worker serving this page): 812 live · fetched 1–100", and the fetch buttons. */
function renderHead(v, d, count) {
  const st = v.st, off = d.offset || 0;
  fill(v.els.head,
    h("div", { class: "summary" },
      h("b", { class: "mono" }, d.group || st.group), " objects ", h("span", { id: "objects-pid", dataset: { pid: String(d.pid) } }, livingIn(d.pid, st.host)), ": ",
      h("span", { id: "objects-total", dataset: { total: String(d.total) } }, fmtInt(d.total) + " live"),
      h("span", { class: "muted" }, " · fetched " + (count ? fmtInt(off + 1) + "–" + fmtInt(off + count) : "none"))),
    h("div", { class: "fetch-nav" },
      off > 0 ? h("button", { type: "button", class: "btn small", id: "fetch-prev", onclick: () => set(v, { pid: String(d.pid), offset: Math.max(0, off - st.fetch), p: 1 }) }, "‹ Fetch previous " + fmtInt(st.fetch)) : null,
      off + count < d.total ? h("button", { type: "button", class: "btn small", id: "fetch-next", onclick: () => set(v, { pid: String(d.pid), offset: off + count, p: 1 }) }, "Fetch next " + fmtInt(Math.min(st.fetch, d.total - off - count)) + " ›") : null,
      h("button", { type: "button", class: "btn small", id: "objects-reload", title: "Ask the worker again", onclick: () => load(v) }, "Reload")));
}

/** The table of the objects shown (first is the index of shown[0] among those fetched). */
function objectsTable(v, d, shown, first) {
  const off = d.offset || 0;
  return h("table", { class: "table", id: "objects-table" },
    h("thead", null, h("tr", null, h("th", { class: "num idx" }, "#"), h("th", null, "id"), h("th", null, "repr"), h("th", { class: "num" }, "size"))),
    h("tbody", null, shown.map((o, i) => {
      const href = hashFor("object/" + o.id, workerParams(d.pid, v.st.host));
      const row = h("tr", { class: "obj-row", dataset: { id: String(o.id) } },
        h("td", { class: "num muted idx" }, fmtInt(off + first + i + 1)),
        h("td", { class: "mono" }, h("a", { class: "obj-link", href }, String(o.id))),
        h("td", { class: "repr", title: truncate(o.repr, 2000) }, truncate(o.repr, 200)),
        h("td", { class: "num" }, fmtBytes(o.size)));
      row.addEventListener("click", (e) => { if (!e.target.closest("a") && !window.getSelection().toString()) location.hash = href; });
      return row;
    })));
}

/** Show v.data: the head, then the page st.p of the fetched objects between two pagers. */
function render(v) {
  const d = v.data, st = v.st, els = v.els, objs = d.objects || [];
  const pages = Math.max(1, Math.ceil(objs.length / st.page));
  const start = (clamp(st.p, 1, pages) - 1) * st.page;
  renderHead(v, d, objs.length);
  els.results.dataset.state = "ready";
  clear(els.results);
  if (!objs.length) {
    els.results.append(h("div", { class: "empty" }, "No live ", h("code", null, st.group), " object in pid " + d.pid + " right now (they may have been freed, or live in another worker)."));
    return;
  }
  const go = (o) => { set(v, { p: Math.floor(o / st.page) + 1 }, true); scrollToResults(); };
  els.results.append(pager("obj-pager", start, st.page, objs.length, "fetched", go),
    h("div", { class: "table-wrap" }, objectsTable(v, d, objs.slice(start, start + st.page), start)),
    pager(null, start, st.page, objs.length, "fetched", go));
}

/** The objects view (router.js's view interface). */
export function objectsView() {
  const v = { st: null, data: null, seq: 0, els: {}, loadedKey: null };
  return {
    mount: (main, r) => mount(v, main, r),
    update: (r) => update(v, r),
    canUpdate: () => true,
    unmount: () => { v.seq++; },
  };
}
