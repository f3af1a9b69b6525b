/* The content of the history page for one /api/history answer: a card per type (stats, chart, legend,
 * "held by" and "grows with" lines) or the compare table. Each function takes the page's parameters
 * `st` (view-history.js readParams) and the answer; none keeps state. */
import { h } from "./dom.js";
import { fmtInt, fmtSigned, fmtBytes, fmtBytesSigned, fmtDateTime, breakable } from "./format.js";
import { hashFor } from "./router.js";
import { procs, procList } from "./state.js";
import { colourFor, incKey, manyHosts, workerParams } from "./procs.js";
import { drawChart } from "./charts.js";
import { witnessLine } from "./witness.js";
import { routeLine } from "./routes.js";
import { sampleWait } from "./sample-wait.js";
import { trendBadge } from "./trend.js";

const growthClass = (g) => (g > 0 ? "up" : g < 0 ? "down" : "flat");
/** "pid 42 on web-2", "all workers of web-2" or `merged` for the page's worker choice. */
const whoText = (st, merged) => (st.pid ? "pid " + st.pid + (st.host ? " on " + st.host : "") : st.host ? "all workers of " + st.host : merged);

/** Compare two moments: the types ranked by their change from `since`
 * (or each process's first sample) to `until` (or the as-of moment). */
export function compareTable(st, d, types) {
  const from = d.since ? fmtDateTime(d.since) : "the first sample";
  const to = fmtDateTime(d.as_of);
  const who = st.pid ? whoText(st) : st.host ? "all workers of " + st.host + ", merged over those alive at " + to :
    "merged over the processes alive at " + to;
  const rows = types.map((t, i) => h("tr", { dataset: { type: t.name, growth: String(t.growth) } },
    h("td", { class: "num" }, String((d.offset || 0) + i + 1)),
    h("td", null, h("a", { href: hashFor("history", { q: t.name, since: st.since || null, until: st.until || null, pid: st.pid || null, host: st.host || null }) }, breakable(t.name)),
      " ", trendBadge(t.trend)),
    h("td", { class: "num" }, h("b", { class: "change " + growthClass(t.growth) }, fmtSigned(t.growth))),
    h("td", { class: "num" }, h("b", { class: "change " + growthClass(t.bytes_growth) }, fmtBytesSigned(t.bytes_growth))),
    h("td", { class: "num" }, fmtInt(t.count)),
    h("td", { class: "num" }, fmtBytes(t.bytes))));
  return h("section", { id: "compare", class: "compare" },
    h("h2", { class: "compare-title" }, "Change from " + from + " to " + to),
    h("p", { class: "muted" }, who + ". Pick From and To above, or drag across a chart in the cards view."),
    h("table", { class: "compare-table" },
      h("thead", null, h("tr", null, h("th", null, "#"), h("th", null, "type"), h("th", { class: "num" }, "change"),
        h("th", { class: "num" }, "size change"),
        h("th", { class: "num" }, "count at " + to), h("th", { class: "num" }, "size at " + to))),
      h("tbody", null, rows)));
}

/** One line per incarnation (Lines: per worker), live ones first (legend, tooltip), dead ones dashed. */
function workerSeries(t) {
  const known = !!procs();
  const alive = new Set(procList().filter((p) => p.alive).map((p) => incKey(p.pid, p.start)));
  const hostOf = new Map(procList().map((p) => [incKey(p.pid, p.start), p.host]));
  const many = manyHosts();
  const lines = t.workers.map((w) => {
    const k = incKey(w.pid, w.start), dead = known && !alive.has(k);
    return { label: (many && hostOf.get(k) ? hostOf.get(k) + " · " : "") + "pid " + w.pid + (dead ? " (dead)" : ""),
      colour: colourFor(w.pid, w.start), values: w.counts || [], dim: dead };
  });
  return lines.filter((l) => !l.dim).concat(lines.filter((l) => l.dim));
}

/** The chart's series of type t: one per incarnation, or one merged line (count or size). */
function seriesFor(st, t) {
  if (st.view === "workers" && Array.isArray(t.workers)) return workerSeries(t);
  const bytes = st.metric === "bytes";
  return [{ label: whoText(st, "all live workers") + (bytes ? ", size" : ""), colour: "var(--accent)",
    values: (bytes ? t.bytes_series : t.counts) || [] }];
}

function legend(st, t) {
  const leg = h("div", { class: "legend" });
  const all = seriesFor(st, t), MAX_LEGEND = 10;
  for (const se of all.slice(0, MAX_LEGEND)) leg.append(h("span", { class: "legend-item" + (se.dim ? " dim" : "") },
    h("span", { class: "swatch", style: "background:" + se.colour }), se.label));
  if (all.length > MAX_LEGEND) leg.append(h("span", { class: "legend-item more", title: all.slice(MAX_LEGEND).map((x) => x.label).join(", ") },
    "+" + (all.length - MAX_LEGEND) + " more"));
  return leg;
}

function stats(st, d, t) {
  return h("div", { class: "stats" },
    h("span", { class: "stat count", title: d && d.live === false ? "Live objects as of " + fmtDateTime(d.as_of) : "Live objects now" }, h("span", { class: "stat-label" }, "count"), h("b", { class: "value" }, fmtInt(t.count))),
    h("span", { class: "stat growth " + growthClass(t.growth), title: st.since ? "Growth since " + fmtDateTime(Number(st.since)) : "Growth since the first stored sample" },
      h("span", { class: "stat-label" }, "growth"), h("b", { class: "value" }, fmtSigned(t.growth))),
    t.bytes !== undefined && t.bytes !== null ? h("span", { class: "stat bytes", title: "Shallow size now" },
      h("span", { class: "stat-label" }, "size"), h("b", { class: "value" }, fmtBytes(t.bytes))) : null,
    t.bytes_growth !== undefined && t.bytes_growth !== null ? h("span", { class: "stat bytes-growth " + growthClass(t.bytes_growth),
      title: (st.since ? "Shallow size gained since " + fmtDateTime(Number(st.since)) : "Shallow size gained since the first stored sample") },
      h("span", { class: "stat-label" }, "size growth"), h("b", { class: "value" }, fmtBytesSigned(t.bytes_growth))) : null);
}

const cardTypes = new WeakMap(); // card element -> its type in the answer, for drawing its chart

/** The card of type t of answer d; its chart is drawn by drawCards once the card is in the page. */
export function card(st, d, t) {
  const objHash = hashFor("objects", Object.assign({ group: t.name }, workerParams(st.pid, st.host)));
  const c = h("article", { class: "type-card", dataset: { type: t.name, count: String(t.count), growth: String(t.growth), trend: t.trend || "" } },
    h("header", { class: "card-head" },
      h("span", { class: "type-title" }, h("a", { class: "type-name", href: objHash, title: t.name + " — show its live objects" }, breakable(t.name)),
        " ", trendBadge(t.trend)),
      h("a", { class: "btn small ghost objects-link", href: objHash, title: "Live objects of " + t.name }, "Objects →")),
    stats(st, d, t),
    h("div", { class: "chart" }));
  // A single point is drawn as a dot: say when the line starts.
  const wait = (d.times || []).length === 1 && d.live !== false ? sampleWait() : null;
  if (wait) c.append(h("div", { class: "chart-note muted" }, wait, " (a line needs two points)"));
  if (t.growth > 0 || t.bytes_growth > 0) c.append(witnessLine(t.name, st.pid, st.host, false, true));
  // Not for a levelled type: a cache that filled and stays full grows with no route's requests.
  if (t.growth > 0 && t.trend !== "levelled") c.append(routeLine(t.name, { pid: st.pid, host: st.host, since: st.since, until: st.until }));
  if (st.view === "workers" && Array.isArray(t.workers)) c.append(legend(st, t));
  cardTypes.set(c, t);
  return c;
}

/** Draw (or redraw, to the current width) the chart of every card under root; onRange(t0, t1) after a drag. */
export function drawCards(root, st, d, onRange) {
  for (const c of root.querySelectorAll(".type-card")) {
    const t = cardTypes.get(c);
    drawChart(c.querySelector(".chart"), d.times || [], seriesFor(st, t),
      { area: st.view !== "workers", bytes: st.view !== "workers" && st.metric === "bytes", onRange,
        ariaLabel: (st.metric === "bytes" ? "size" : "count") + " of " + t.name + " over time" });
  }
}
