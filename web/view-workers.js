/* The workers page (#/workers): every incarnation in the store (grouped by host when there are
 * several), the requests they served by route (when the app counts them), then the store itself. */
import { h, fill } from "./dom.js";
import { fmtInt, fmtBytes, fmtDateTime, fmtAgo, fmtRetention, shortArgv } from "./format.js";
import { errorBox, loadingBlock, showBanner, hideBanner } from "./feedback.js";
import { hashFor } from "./router.js";
import { api } from "./api.js";
import { sparkline } from "./charts.js";
import { requestsPanel } from "./routes.js";
import { loadProcs, markUpdated, colourFor, hostList, byHost, workerParams, incKey, endOf } from "./procs.js";

const COLUMNS = ["pid", "status", "started", "last seen", "ended", "samples", "RSS", "interval", "host", "command", ""];

/** The row that opens a host's group: its name, its alive / total workers and a link to its merged history. */
function hostHeader(host, all) {
  const mine = all.filter((x) => (x.host || "") === host);
  return h("tr", { class: "host-row", dataset: { host } }, h("th", { colspan: String(COLUMNS.length), scope: "rowgroup" },
    h("span", { class: "host-name mono" }, host || "(no host)"),
    h("span", { class: "muted small" }, " · " + mine.filter((x) => x.alive).length + " alive of " + mine.length + " · "),
    h("a", { class: "small", href: hashFor("history", { host: host || null }) }, "history of all its workers")));
}

/** RSS now, and over the window /api/memory covers as a sparkline (rss: its series of this incarnation;
 * wp: the worker's parameters, for the link to its Memory page). */
function rssCell(p, rss, wp) {
  const line = rss ? sparkline(rss, colourFor(p.pid, p.start), 80, 18) : null;
  return h("td", { class: "num rss", title: line ? "RSS over time: see the Memory page" : null },
    p.rss ? fmtBytes(p.rss) : "–",
    line ? h("a", { href: hashFor("memory", wp), class: "rss-spark", "aria-label": "RSS over time" }, line) : null);
}

/** One incarnation's row; self: the incarnation that answered (/api/procs self); rss: its RSS series. */
function procRow(p, self, grouped, rss) {
  const wp = workerParams(p.pid, grouped ? p.host : "");
  const isSelf = self && self.pid === p.pid && self.start === p.start;
  const end = endOf(p), status = end.status;
  return h("tr", { class: "proc-row " + status + (isSelf ? " self" : ""), dataset: { pid: String(p.pid), start: String(p.start), host: p.host || "", alive: p.alive ? "1" : "0" } },
    h("td", { class: "mono" }, h("span", { class: "swatch", style: "background:" + colourFor(p.pid, p.start) }), String(p.pid),
      isSelf ? h("span", { class: "badge self-badge", title: "This worker answered the request" }, "answering") : null),
    h("td", null, h("span", { class: "badge " + status, dataset: { end: end.label }, title: end.title }, end.label)),
    h("td", { title: fmtDateTime(p.started) }, fmtDateTime(p.started)),
    h("td", { title: fmtDateTime(p.last_seen) }, fmtAgo(p.last_seen)),
    h("td", null, p.ended ? fmtDateTime(p.ended) : "–"),
    h("td", { class: "num" }, fmtInt(p.samples)),
    rssCell(p, rss, wp),
    h("td", { class: "num" }, p.interval ? p.interval + " s" : "–"),
    h("td", null, p.host || "–"),
    h("td", { class: "argv", title: p.argv || "" }, p.argv ? shortArgv(p.argv) : "–"),
    h("td", { class: "actions" }, h("span", { class: "actions-inner" },
      h("a", { href: hashFor("history", wp), class: "btn small ghost" }, "History"),
      p.alive ? h("a", { href: hashFor("objects", wp), class: "btn small ghost" }, "Objects") : null)));
}

function procTable(procs, self, grouped, rssOf) {
  return h("table", { class: "table", id: "workers-table" },
    h("thead", null, h("tr", null, COLUMNS.map(
      (x) => h("th", { class: ["samples", "RSS", "interval"].includes(x) ? "num" : null }, x)))),
    h("tbody", null, procs.map((p, i) => [
      grouped && (i === 0 || procs[i - 1].host !== p.host) ? hostHeader(p.host || "", procs) : null,
      procRow(p, self, grouped, rssOf.get(incKey(p.pid, p.start)))])));
}

/** The store panel: path, bytes used against the limit, map size, types, retention, schema. */
function storePanel(panel, st, intervals) {
  const used = st.used_bytes || 0, maxb = st.max_bytes || st.map_size || 0;
  fill(panel, h("h2", null, "Store"),
    h("dl", { class: "kv" },
      h("dt", null, "path"), h("dd", null, h("code", null, st.path || "–")),
      h("dt", null, "used"), h("dd", null, fmtBytes(used), maxb ? " of " + fmtBytes(maxb) : "",
        maxb ? h("span", { class: "meter" }, h("span", { style: "width:" + Math.min(100, (100 * used) / maxb).toFixed(1) + "%" })) : null),
      h("dt", null, "map size"), h("dd", null, fmtBytes(st.map_size)),
      h("dt", null, "types"), h("dd", null, fmtInt(st.types)),
      h("dt", null, "retention"), h("dd", { id: "store-retention", title: "How far back the history goes: max_samples samples per worker at its collection interval, and never older than max_age" },
        fmtRetention(st.max_samples, st.max_age_s, intervals)),
      h("dt", null, "schema"), h("dd", null, st.schema === undefined ? "–" : String(st.schema))));
}

/** The workers view (router.js's view interface). */
export function workersView() {
  let seq = 0;
  const els = {};
  function mount(main) {
    els.store = h("section", { class: "panel", id: "store-panel" });
    els.requests = h("section", { class: "panel", id: "requests-panel", hidden: true });
    els.results = h("div", { id: "results", dataset: { state: "loading" } }, loadingBlock("Loading workers…"));
    main.append(h("h1", { class: "page-title" }, "Workers"),
      h("p", { class: "muted lead" }, "Every process incarnation in the store, alive or dead, oldest first (by host, then pid, when there are several hosts). A reused pid is a new incarnation."),
      els.results, els.requests, els.store);
    load(false);
  }
  async function load(quiet) {
    const my = ++seq;
    try {
      // The sparklines are a bonus: the table shows without them when /api/memory fails.
      const [d, mem] = await Promise.all([loadProcs(), api("memory", { points: 60 }).catch(() => null)]);
      if (my !== seq) return;
      render(d, quiet, mem);
      requestsPanel(els.requests, () => my === seq);
      markUpdated();
      hideBanner();
    } catch (err) {
      if (my !== seq) return;
      if (quiet && els.results.dataset.state === "ready") { showBanner(err); return; }
      els.results.dataset.state = "error";
      fill(els.results, errorBox(err, () => load(false)));
    }
  }
  function render(d, keepScroll, mem) {
    const rssOf = new Map(((mem && mem.workers) || []).map((w) => [incKey(w.pid, w.start), w.rss]));
    const y = window.scrollY;
    const hosts = hostList(), grouped = hosts.length > 1;
    const procs = grouped ? byHost(d.procs || [], hosts) : d.procs || [];
    const alive = procs.filter((p) => p.alive).length;
    els.results.dataset.state = "ready";
    fill(els.results,
      h("div", { class: "summary" }, h("b", null, String(alive)), " alive of ", h("b", null, String(procs.length)), " incarnations"),
      procs.length ? h("div", { class: "table-wrap" }, procTable(procs, d.self, grouped, rssOf)) : h("div", { class: "empty" }, "No process has written to this store yet."));
    // Retention at the intervals the workers really use (the live ones; every one after the fact).
    const timed = alive ? procs.filter((p) => p.alive) : procs;
    storePanel(els.store, d.store || {}, timed.map((p) => p.interval));
    if (keepScroll) window.scrollTo(0, y);
  }
  return { mount, canUpdate: () => true, update: () => load(false), refresh: () => load(true), unmount: () => { seq++; } };
}
