/* Where a worker's memory is (/api/memory): the parts' names and colours, the stacked series of a chart,
 * and the one-line verdict on a growth. The growth itself and whether it is outside Python objects are
 * computed by the server (pl_memory_growth_of, pl_memory_outside_python), as `pyloot report` shows them. */
import { h } from "./dom.js";
import { fmtBytes } from "./format.js";
import { hashFor } from "./router.js";

/** The parts of RSS, bottom to top of a stacked chart: key, label, colour, short label. */
export const PARTS = [
  ["python_bytes", "Python objects", "#2563eb", "Python"],
  ["allocator_free_bytes", "Allocator free", "#d97706", "Alloc free"],
  ["other_bytes", "Other (native, interpreter, stacks)", "#9ca3af", "Other"],
];
export const RSS_COLOUR = "#111827";

/** The chart series of one set of figures: each part drawn at the sum of the parts below it (tooltip:
 * its own value), then the RSS line. */
export function stackedSeries(fig) {
  const n = (fig.rss || []).length;
  const below = new Array(n).fill(0);
  const series = PARTS.map(([key, label, colour]) => {
    const own = fig[key] || [];
    const values = own.map((v, i) => (v === null || v === undefined ? null : (below[i] += v)));
    return { label, colour, values, tip: own, solid: true };
  });
  // drawChart draws the last series first: the top part (the largest sums) goes under the others,
  // and the RSS line, first, over everything.
  series.unshift({ label: "RSS", colour: RSS_COLOUR, values: fig.rss || [], area: false });
  return series;
}

const signed = (b) => (b >= 0 ? "+" : "−") + fmtBytes(Math.abs(b));

/** "RSS +25 MiB, Python objects +0.2 MiB: ..." when the growth is outside Python objects, else null.
 * link: the hash of the Memory page for the same workers and window. */
export function growthNote(growth, link) {
  if (!growth || !growth.outside_python) return null;
  return h("div", { class: "notice memory-note", id: "memory-note" },
    "RSS " + signed(growth.rss) + ", Python objects " + signed(growth.python_bytes) +
    ": the growth is outside Python objects — native memory or allocator fragmentation. ",
    h("a", { href: link }, "Where the memory is"));
}

/** The Memory page's hash for a page's worker choice and window. */
export const memoryHash = (st) => hashFor("memory", { pid: st.pid || null, host: st.host || null, since: st.since || null, until: st.until || null });
