/* The history page (#/history?q=&sort=&limit=&offset=&view=&metric=&pid=&host=&since=&until=&compare=&trend=):
 * one card per type, or the compare table. One function per phase: the parameters from the hash, the
 * controls, loading /api/history, and rendering its answer (history-cards.js draws the cards). */
import { h, clear, fill, debounce } from "./dom.js";
import { fmtInt, fmtDateTime, fmtRange, toLocalInput, fromLocalInput } from "./format.js";
import { api } from "./api.js";
import { errorBox, loadingBlock, showBanner, hideBanner } from "./feedback.js";
import { hashFor, navigate, intParam, pidParam } from "./router.js";
import { loadProcs, markUpdated, hostParam, parseWorkerValue, fillWorkerSelect } from "./procs.js";
import { selectEl, ensureOption, field, pager, scrollToResults } from "./controls.js";
import { compareTable, card, drawCards } from "./history-cards.js";
import { growthNote, memoryHash } from "./memory.js";
import { sampleWait } from "./sample-wait.js";
import { TREND_FILTERS } from "./trend.js";

/** The sorts /api/history takes (sort=), with their labels: the UI's one list of them. */
const SORTS = [["growth", "Growth"], ["bytes_growth", "Size growth"], ["count", "Count"], ["bytes", "Size"],
  ["name", "Name"]];

const DEFAULTS = { q: "", sort: "growth", limit: 20, offset: 0, view: "merged", metric: "count", pid: "",
  host: "", since: "", until: "", compare: "", trend: "" };
const TIME_RE = /^\d{1,11}(\.\d{1,3})?$/;
const PAGE_SIZES = [5, 10, 20, 50, 100, 200];

// ------------------------------------------------------------------ parameters <-> hash
function readParams(p) {
  return {
    q: (p.get("q") || "").slice(0, 256),
    sort: SORTS.some(([name]) => name === p.get("sort")) ? p.get("sort") : "growth",
    limit: intParam(p, "limit", DEFAULTS.limit, 1, 1000),
    offset: intParam(p, "offset", 0, 0, 1e9),
    view: p.get("view") === "workers" ? "workers" : "merged",
    metric: p.get("metric") === "bytes" ? "bytes" : "count",
    pid: pidParam(p),
    host: hostParam(p),
    since: TIME_RE.test(p.get("since") || "") ? p.get("since") : "",
    until: TIME_RE.test(p.get("until") || "") ? p.get("until") : "",
    compare: p.get("compare") === "1" ? "1" : "",
    trend: TREND_FILTERS.some(([value]) => value === p.get("trend")) ? p.get("trend") : "",
  };
}
/** The hash of parameters x, defaults left out. */
function toHash(x) {
  const o = {};
  for (const k of Object.keys(DEFAULTS)) o[k] = x[k] || null; // "", 0: left out
  Object.assign(o, { sort: x.sort, limit: x.limit, view: x.view }); // always written
  if (o.metric === "count") o.metric = null;
  return hashFor("history", o);
}
/** Go to the page with some parameters changed. */
function set(v, changes, replace) {
  navigate(toHash(Object.assign({}, v.st, changes)), replace);
}

// ------------------------------------------------------------------ controls
function searchBox(v) {
  const search = h("input", { id: "search", type: "search", placeholder: "Filter types, e.g. leak or app.models", title: "Type to filter (press / to get here)",
    autocomplete: "off", spellcheck: "false", value: v.st.q, "aria-label": "Search type names" });
  search.addEventListener("input", () => v.onSearch(search.value.trim()));
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { v.onSearch.cancel(); set(v, { q: search.value.trim(), offset: 0 }, true); }
    if (e.key === "Escape" && search.value) { search.value = ""; v.onSearch.cancel(); set(v, { q: "", offset: 0 }, true); }
  });
  return search;
}

function segmented(id, label, key, buttons) {
  return h("div", { class: "segmented", id, role: "group", "aria-label": label },
    buttons.map(([value, text, onclick, title]) => h("button", { type: "button", dataset: { [key]: value }, onclick, title }, text)));
}

/** The time range: "from" (growth counted from it) and "to" (the as-of moment), All, Compare. */
function rangeControl(v, els) {
  els.since = h("input", { id: "range-since", type: "datetime-local", step: "1", "aria-label": "From" });
  els.until = h("input", { id: "range-until", type: "datetime-local", step: "1", "aria-label": "To" });
  const applyRange = () => set(v, { since: fromLocalInput(els.since.value), until: fromLocalInput(els.until.value), offset: 0 });
  els.since.addEventListener("change", applyRange);
  els.until.addEventListener("change", applyRange);
  els.rangeReset = h("button", { type: "button", class: "btn small ghost", id: "range-reset",
    title: "The whole history, as of now (or the last moment a process was alive)",
    onclick: () => set(v, { since: "", until: "", compare: "", offset: 0 }) }, "All");
  els.compare = h("button", { type: "button", class: "btn small", id: "compare-toggle",
    title: "Rank the types by their change between From and To",
    onclick: () => set(v, { compare: v.st.compare ? "" : "1", sort: "growth", offset: 0 }) }, "Compare");
  return h("div", { class: "range", id: "time-range-control" }, els.since, h("span", { class: "muted" }, "→"), els.until,
    els.rangeReset, els.compare);
}

/** The toolbar's controls, into v.els; returns the toolbar. */
function buildToolbar(v) {
  const els = v.els, st = v.st;
  els.search = searchBox(v);
  els.sort = selectEl("sort", SORTS, st.sort,
    (x) => set(v, { sort: x, offset: 0 }), "Sort by");
  els.limit = selectEl("page-size", PAGE_SIZES.map((n) => [n, n + " per page"]), st.limit,
    (x) => set(v, { limit: parseInt(x, 10), offset: 0 }), "Page size");
  ensureOption(els.limit, st.limit, st.limit + " per page");
  els.trend = selectEl("trend-filter", TREND_FILTERS, st.trend, (x) => set(v, { trend: x, offset: 0 }),
    "Show types by trend");
  els.pid = selectEl("pid-filter", [["", "All live workers"]], st.pid, (x) => set(v, Object.assign(parseWorkerValue(x), { offset: 0 })), "Worker");
  els.mode = segmented("view-mode", "Lines", "mode", [
    ["merged", "Merged", () => set(v, { view: "merged" })],
    ["workers", "Per worker", () => set(v, { view: "workers", metric: "count" })]]);
  els.metric = segmented("metric", "Chart", "metric", [
    ["count", "Count", () => set(v, { metric: "count" })],
    ["bytes", "Size", () => set(v, { metric: "bytes", view: "merged" }),
      "Shallow size over time (merged or one pid: the API has no per-incarnation sizes)"]]);
  const range = rangeControl(v, els);
  return h("section", { class: "toolbar", id: "history-toolbar" },
    field("Search", els.search, "grow"),
    field("Sort", els.sort),
    field("Show", els.trend),
    field("Worker", els.pid),
    field("Lines", els.mode),
    field("Chart", els.metric),
    field("Page size", els.limit),
    field("Time range (drag on a chart to zoom)", range));
}

function pressed(group, key, value) {
  for (const b of group.querySelectorAll("button")) {
    b.classList.toggle("on", b.dataset[key] === value);
    b.setAttribute("aria-pressed", b.dataset[key] === value ? "true" : "false");
  }
}
/** The controls show v.st (the one being typed in is left alone). */
function syncControls(v) {
  const els = v.els, st = v.st;
  if (document.activeElement !== els.search && els.search.value.trim() !== st.q) els.search.value = st.q;
  els.sort.value = st.sort;
  els.trend.value = st.trend;
  if (document.activeElement !== els.since) els.since.value = toLocalInput(st.since && Number(st.since));
  if (document.activeElement !== els.until) els.until.value = toLocalInput(st.until && Number(st.until));
  els.compare.classList.toggle("on", !!st.compare);
  els.compare.setAttribute("aria-pressed", st.compare ? "true" : "false");
  ensureOption(els.limit, st.limit, st.limit + " per page");
  fillPidOptions(v);
  pressed(els.mode, "mode", st.view);
  pressed(els.metric, "metric", st.view === "workers" ? "count" : st.metric);
}
function fillPidOptions(v) {
  fillWorkerSelect(v.els.pid, ["", "All live workers"], v.st.pid, v.st.host,
    { hostEntries: true, label: (p, who) => who + (p.alive ? "" : " (dead)") });
}

// ------------------------------------------------------------------ mount, update
function mount(v, main, r) {
  v.st = readParams(r.params);
  const els = v.els;
  const toolbar = buildToolbar(v);
  els.pagerTop = h("div", { class: "pager-slot", id: "pager-top" });
  els.pagerBottom = h("div", { class: "pager-slot", id: "pager-bottom" });
  els.summary = h("div", { class: "summary", id: "history-summary" });
  els.results = h("div", { id: "results", dataset: { state: "loading" } }, loadingBlock("Loading history…"));
  main.append(toolbar, h("div", { class: "bar-row" }, els.summary, els.pagerTop), els.results, els.pagerBottom);
  syncControls(v);
  load(v, false);
}
function update(v, r) {
  const next = readParams(r.params);
  const same = JSON.stringify(next) === JSON.stringify(v.st);
  v.st = next;
  syncControls(v);
  if (!same) load(v, false);
}

// ------------------------------------------------------------------ loading
/** Load the history for v.st; quiet (auto-refresh): no loading state, and a failure keeps the data shown. */
async function load(v, quiet) {
  const my = ++v.seq;
  const want = Object.assign({}, v.st), els = v.els;
  if (!quiet) {
    els.results.dataset.state = "loading";
    if (!v.data) fill(els.results, loadingBlock("Loading history…"));
    else els.results.classList.add("stale");
  }
  const procsP = loadProcs().catch(() => null);
  // Where the memory went over the same window: a line when RSS grew outside Python objects. Never
  // in the way of the history: a failure shows nothing.
  const memoryP = api("memory", { pid: want.pid || null, host: want.host || null, since: want.since || null,
    until: want.until || null, points: 360 }).catch(() => null);
  try {
    const d = await api("history", {
      q: want.q, sort: want.sort, limit: want.limit, offset: want.offset || null, pid: want.pid || null,
      host: want.host || null, workers: want.view === "workers" && !want.compare ? 1 : null, points: 360,
      since: want.since || null, until: want.until || null, trend: want.trend || null,
    });
    await procsP;
    const mem = await memoryP;
    if (my !== v.seq) return;
    v.data = d;
    v.memory = mem;
    fillPidOptions(v);
    render(v, quiet);
    markUpdated();
  } catch (err) {
    if (my !== v.seq) return;
    if (quiet && v.data) { showBanner(err); return; }
    v.data = null;
    els.results.classList.remove("stale");
    els.results.dataset.state = "error";
    fill(els.results, errorBox(err, () => load(v, false)));
    clear(els.pagerTop); clear(els.pagerBottom); clear(els.summary);
  }
}

// ------------------------------------------------------------------ rendering
/** "812 types matching leak · merged over the live workers · 360 points, Nov 21 20:38 → 21:38" */
function renderSummary(v, d) {
  const st = v.st, total = d.total || 0;
  const trendLabel = st.trend ? TREND_FILTERS.find(([value]) => value === st.trend)[1].toLowerCase() + " " : "";
  fill(v.els.summary,
    h("span", { id: "type-total", dataset: { total: String(total) } }, fmtInt(total) + " " + trendLabel + (total === 1 ? "type" : "types")),
    st.q ? h("span", null, " matching ", h("code", null, st.q)) : null,
    h("span", { class: "muted" }, (st.pid ? " · pid " + st.pid + (st.host ? " on " + st.host : "") :
      st.host ? " · all workers of " + st.host : st.view === "workers" ? " · every incarnation" :
      d.live === false ? " · merged over the processes alive at the as-of moment" : " · merged over the live workers") +
      (st.view === "workers" ? ", one line per incarnation" : "")),
    d.times && d.times.length ? h("span", { class: "muted", id: "time-range" }, " · " + d.times.length + (d.times.length === 1 ? " point, " : " points, ") +
      fmtRange(d.times[0], d.times[d.times.length - 1])) : null,
    // One point is a dot, not a line: say when the second comes.
    d.times && d.times.length === 1 && d.live !== false ? waitNote() : null);
}

function renderPagers(v, d) {
  const st = v.st, els = v.els, total = d.total || 0;
  const go = (off) => { set(v, { offset: Math.max(0, off) }); scrollToResults(); };
  clear(els.pagerTop);
  clear(els.pagerBottom);
  if (total > 0) {
    els.pagerTop.append(pager("pager", d.offset || 0, st.limit, total, "types", go));
    if (total > st.limit) els.pagerBottom.append(pager(null, d.offset || 0, st.limit, total, "types", go));
  }
}

/** " · next sample in N s (a line needs two points)", or nothing when no worker is alive. */
function waitNote() {
  const wait = sampleWait();
  return wait ? h("span", { class: "muted", id: "next-sample-note" }, " · ", wait, " (a line needs two points)") : null;
}

/** "As of <time>" when the answer is not live (no process alive, or a To was chosen). */
function asOfNotice(v, d) {
  const st = v.st;
  return h("div", { class: "notice", id: "as-of-notice", dataset: { asOf: String(d.as_of) } },
    h("b", null, "As of " + fmtDateTime(d.as_of)),
    d.until ? " (the end of the chosen range)" : " — the last moment a process of this store was alive; none is now.",
    d.since ? " Growth is counted from " + fmtDateTime(d.since) + "." : " Growth is counted from each process's first sample.",
    d.until || d.since ? h("span", null, " ", h("a", { href: toHash(Object.assign({}, st, { since: "", until: "", compare: "", offset: 0 })) }, "Whole history")) : null);
}

function emptyMessage(v, total) {
  const st = v.st;
  let msg;
  const trendLabel = st.trend ? TREND_FILTERS.find(([value]) => value === st.trend)[1].toLowerCase() : "";
  if (st.q || st.trend) msg = h("span", { id: "no-match" }, "No ", trendLabel ? trendLabel + " " : "", "type",
    st.q ? [" matches ", h("code", null, st.q)] : " over this window", ". ",
    st.trend ? h("a", { href: toHash(Object.assign({}, st, { trend: "", offset: 0 })) }, "Show all types") : null);
  else if (st.offset && total) msg = h("span", null, "This page is past the end. ", h("a", { href: toHash(Object.assign({}, st, { offset: 0 })) }, "Back to the first page"));
  else {
    const wait = sampleWait();
    msg = wait ? h("span", { id: "first-sample" }, "No samples yet: ", wait, ".")
      : "No samples yet: the collector stores its first sample after one interval.";
  }
  return h("div", { class: "empty" }, msg);
}

/** Show v.data; keepScroll (auto-refresh): the page stays where the user scrolled it. */
function render(v, keepScroll) {
  const y = window.scrollY;
  const d = v.data, els = v.els;
  hideBanner();
  els.results.classList.remove("stale");
  renderSummary(v, d);
  renderPagers(v, d);
  clear(els.results);
  els.results.dataset.state = "ready";
  const types = d.types || [];
  if (d.live === false && d.as_of) els.results.append(asOfNotice(v, d));
  const note = v.memory && v.memory.merged ? growthNote(v.memory.merged.growth, memoryHash(v.st)) : null;
  if (note) els.results.append(note);
  if (!types.length) {
    els.results.append(emptyMessage(v, d.total || 0));
  } else if (v.st.compare) {
    els.results.append(compareTable(v.st, d, types));
  } else {
    els.results.append(h("div", { class: "cards", id: "cards" }, types.map((t) => card(v.st, d, t))));
    redraw(v);
  }
  if (keepScroll) window.scrollTo(0, y);
}

function redraw(v) {
  if (!v.data) return;
  drawCards(v.els.results, v.st, v.data, (a, b) => set(v, { since: String(Math.floor(a)), until: String(Math.ceil(b)), offset: 0 }));
}

/** The history view (router.js's view interface). */
export function historyView() {
  const v = { st: null, data: null, memory: null, seq: 0, els: {}, onSearch: null };
  v.onSearch = debounce((q) => set(v, { q, offset: 0 }, true), 300);
  return {
    mount: (main, r) => mount(v, main, r),
    update: (r) => update(v, r),
    canUpdate: () => true,
    refresh: () => load(v, true),
    unmount: () => { v.onSearch.cancel(); v.seq++; },
    redraw: () => redraw(v),
  };
}
