/* The memory page (#/memory?pid=&host=&since=&until=): where the workers' memory is over time. A stacked
 * chart of Python objects, allocator free and other memory under the RSS line, merged over the live workers
 * (or the chosen ones), then one card per worker; and what each part means. */
import { h, fill, clear } from "./dom.js";
import { fmtBytes, fmtRange } from "./format.js";
import { api } from "./api.js";
import { errorBox, loadingBlock, showBanner, hideBanner } from "./feedback.js";
import { hashFor, navigate, pidParam } from "./router.js";
import { loadProcs, markUpdated, hostParam, parseWorkerValue, fillWorkerSelect, colourFor, manyHosts } from "./procs.js";
import { selectEl, field } from "./controls.js";
import { drawChart } from "./charts.js";
import { PARTS, RSS_COLOUR, stackedSeries, growthNote } from "./memory.js";

const TIME_RE = /^\d{1,11}(\.\d{1,3})?$/;

function readParams(p) {
  return {
    pid: pidParam(p), host: hostParam(p),
    since: TIME_RE.test(p.get("since") || "") ? p.get("since") : "",
    until: TIME_RE.test(p.get("until") || "") ? p.get("until") : "",
  };
}
const toHash = (st) => hashFor("memory", { pid: st.pid || null, host: st.host || null, since: st.since || null, until: st.until || null });
function set(v, changes) { navigate(toHash(Object.assign({}, v.st, changes))); }

const signed = (b) => (b === null || b === undefined ? "–" : (b >= 0 ? "+" : "−") + fmtBytes(Math.abs(b)));
const last = (arr) => { for (let i = (arr || []).length - 1; i >= 0; i--) if (arr[i] !== null && arr[i] !== undefined) return arr[i]; return null; };

function legend() {
  return h("div", { class: "legend" },
    h("span", { class: "legend-item" }, h("span", { class: "swatch line", style: "background:" + RSS_COLOUR }), "RSS"),
    PARTS.map(([, label, colour]) => h("span", { class: "legend-item" }, h("span", { class: "swatch", style: "background:" + colour }), label)));
}

/** Now and growth of each figure: "RSS 120 MiB (+25 MiB)". */
function figures(fig) {
  const g = fig.growth;
  return h("div", { class: "stats" }, [["rss", "RSS"]].concat(PARTS.map(([k, , , short]) => [k, short])).map(([k, label]) =>
    h("span", { class: "stat", dataset: { figure: k } }, h("span", { class: "stat-label" }, label),
      h("b", { class: "value" }, fmtBytes(last(fig[k]))),
      g ? h("span", { class: "muted small growth" }, " " + signed(g[k])) : null)));
}

function memoryCard(title, fig, colour, id) {
  return h("article", { class: "type-card memory-card", id, dataset: { rss: String(last(fig.rss)) } },
    h("header", { class: "card-head" }, h("span", { class: "type-name" },
      colour ? h("span", { class: "swatch", style: "background:" + colour }) : null, title)),
    figures(fig),
    h("div", { class: "chart memory-chart" }));
}

function explainPanel() {
  return h("section", { class: "panel", id: "memory-explain" },
    h("h2", null, "What the parts are"),
    h("dl", { class: "kv" },
      h("dt", null, "Python objects"), h("dd", null, "The shallow sizes of the objects each sample counted, summed over their types (the History's sizes)."),
      h("dt", null, "Allocator free"), h("dd", null, "Memory glibc's malloc holds but does not use (mallinfo2's free bytes): freed but not given back to the system, often fragmentation."),
      h("dt", null, "Other"), h("dd", null, "RSS that neither explains: native allocations (C extensions, image libraries, ctypes and numpy buffers), the interpreter itself, thread stacks, pymalloc's free blocks. pyloot sees it only as a total, never by caller."),
      h("dt", null, "RSS"), h("dd", null, "Pages of the worker in memory, shared ones included: with --preload, pages shared with the master count in every worker.")),
    h("p", { class: "muted small" }, "The README's section “What pyloot sees, and what it cannot” says more."));
}

function mount(v, main, r) {
  v.st = readParams(r.params);
  const els = v.els;
  els.pid = selectEl("memory-worker", [["", "All live workers"]], "", (x) => set(v, parseWorkerValue(x)), "Worker");
  els.summary = h("div", { class: "summary", id: "memory-summary" });
  els.results = h("div", { id: "results", dataset: { state: "loading" } }, loadingBlock("Loading memory…"));
  main.append(h("h1", { class: "page-title" }, "Memory"),
    h("p", { class: "muted lead" }, "Where the workers' memory is: Python objects, memory the allocator holds but does not use, and the rest, under each worker's RSS."),
    h("section", { class: "toolbar", id: "memory-toolbar" }, field("Worker", els.pid),
      h("button", { type: "button", class: "btn small ghost", id: "memory-all", onclick: () => set(v, { since: "", until: "" }) }, "Whole history")),
    els.summary, els.results, explainPanel());
  fillOptions(v);
  load(v, false);
}
function fillOptions(v) {
  fillWorkerSelect(v.els.pid, ["", "All live workers"], v.st.pid, v.st.host,
    { hostEntries: true, label: (p, who) => who + (p.alive ? "" : " (dead)") });
}

async function load(v, quiet) {
  const my = ++v.seq, st = Object.assign({}, v.st), els = v.els;
  if (!quiet) els.results.dataset.state = "loading";
  const procsP = loadProcs().catch(() => null);
  try {
    const d = await api("memory", { pid: st.pid || null, host: st.host || null, since: st.since || null, until: st.until || null, points: 360 });
    await procsP;
    if (my !== v.seq) return;
    v.data = d;
    fillOptions(v);
    render(v, quiet);
    markUpdated();
    hideBanner();
  } catch (err) {
    if (my !== v.seq) return;
    if (quiet && v.data) { showBanner(err); return; }
    v.data = null;
    els.results.dataset.state = "error";
    fill(els.results, errorBox(err, () => load(v, false)));
    clear(els.summary);
  }
}

function render(v, keepScroll) {
  const y = window.scrollY, d = v.data, els = v.els, st = v.st;
  const times = d.time || [], workers = d.workers || [];
  fill(els.summary, times.length ? h("span", { class: "muted" },
    (st.pid ? "pid " + st.pid + (st.host ? " on " + st.host : "") : st.host ? "all workers of " + st.host : "merged over the live workers") +
    " · " + times.length + " points, " + fmtRange(times[0], times[times.length - 1])) : null);
  els.results.dataset.state = "ready";
  if (!workers.length) {
    fill(els.results, h("div", { class: "empty" }, "No memory figures yet: each sample records them (a store written by an older pyloot has none)."));
    return;
  }
  const note = growthNote(d.merged.growth, toHash(st));
  const cards = [memoryCard(st.pid ? "pid " + st.pid : "Merged", d.merged, null, "memory-merged")];
  if (!st.pid) for (const w of workers) cards.push(memoryCard("pid " + w.pid + (manyHosts() && w.host ? " on " + w.host : ""), w, colourFor(w.pid, w.start), null));
  fill(els.results, note, legend(), h("div", { class: "cards", id: "memory-cards" }, cards));
  v.figs = [d.merged].concat(st.pid ? [] : workers);
  redraw(v);
  if (keepScroll) window.scrollTo(0, y);
}

function redraw(v) {
  if (!v.data) return;
  const times = v.data.time || [];
  v.els.results.querySelectorAll(".memory-chart").forEach((box, i) =>
    drawChart(box, times, stackedSeries(v.figs[i]), { area: true, bytes: true, height: 170, ariaLabel: "memory over time",
      onRange: (a, b) => set(v, { since: String(Math.floor(a)), until: String(Math.ceil(b)) }) }));
}

/** The memory view (router.js's view interface). */
export function memoryView() {
  const v = { st: null, data: null, figs: [], seq: 0, els: {} };
  return {
    mount: (main, r) => mount(v, main, r),
    update: (r) => { v.st = readParams(r.params); fillOptions(v); load(v, false); },
    canUpdate: () => true,
    refresh: () => load(v, true),
    unmount: () => { v.seq++; },
    redraw: () => redraw(v),
  };
}
