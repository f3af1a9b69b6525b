/* The store's incarnations (/api/procs) and what every view derives from them: the top bar, the line
 * colour of each incarnation, the hosts and the worker selectors.
 * A worker is host + pid: pids repeat across the hosts that push to one `pyloot` server. With one
 * host the selectors look as they always did (a flat list of pids, no host in the URL or requests). */
import { $, h, clear, fill } from "./dom.js";
import { fmtClock } from "./format.js";
import { api } from "./api.js";
import { showRecovery } from "./feedback.js";
import { procs, procList, setProcs, colourSlot } from "./state.js";

// ------------------------------------------------------------------ loading, top bar
/** GET api/procs: keeps the answer in state.js, assigns colours, refreshes the top bar. */
export async function loadProcs() {
  const data = await api("procs");
  setProcs(data);
  for (const p of data.procs || []) colourFor(p.pid, p.start);
  renderHeader();
  showRecovery(data.store);
  return data;
}

function renderHeader() {
  const d = procs();
  const store = $("#store-info"), self = $("#self-info");
  clear(store); clear(self);
  if (!d) return;
  if (d.store && d.store.path) {
    store.append(h("span", { class: "label" }, "store "), h("code", { id: "store-path" }, h("bdi", null, d.store.path)));
    store.title = "Store path: " + d.store.path;
  }
  if (d.self) {
    self.append(h("span", { class: "label" }, "page served by "), h("code", { id: "self-pid" }, "pid " + d.self.pid));
    self.title = "The worker that served this page: pid " + d.self.pid + ", start " + d.self.start +
      ". Live objects of another worker are asked of that worker through this one.";
  } else {
    self.append(h("span", { class: "label" }, "served by "), h("code", null, "pyloot command"));
  }
}

/**
 * Where live objects live, told apart from the worker that serves the page (the top bar's "page
 * served by"): "living in pid 42 (asked through pid 7, which serves this page)", "living in pid 42
 * (the worker serving this page)", or "living in pid 42 on web-2 (asked through the pyloot command)".
 * The one place this text is built: the objects and object pages both use it.
 */
export function livingIn(pid, host) {
  const self = procs() && procs().self;
  const where = "living in pid " + pid + (host ? " on " + host : "");
  if (!self) return where + " (asked through the pyloot command)";
  if (String(self.pid) === String(pid) && !host) return where + " (the worker serving this page)";
  return where + " (asked through pid " + self.pid + ", which serves this page)";
}

/** "updated 20:38:40" in the top bar, after a view received its data. */
export function markUpdated() {
  $("#updated").textContent = "updated " + fmtClock(Date.now() / 1000, true);
}

// ------------------------------------------------------------------ how a worker ended
/** How an incarnation ended, from /api/procs "end" (the store's one rule, pl_proc_end_kind):
 * {status: "alive" | "ended" | "dead", label, title}. "dead" is killed or exited with a non-zero code. */
export function endOf(p) {
  const e = p.end;
  if (p.alive || !e) return { status: "alive", label: "alive", title: "running" };
  if (e.how === "clean") return { status: "ended", label: "ended", title: "exited cleanly" };
  if (e.how === "exited") return { status: "dead", label: "exited " + e.code, title: "exited with code " + e.code };
  if (e.name || e.signal) {
    const sig = e.name || "signal " + e.signal;
    return { status: "dead", label: "killed (" + sig + ")",
      title: "killed by " + sig + (e.signal === 9 ? " (the OOM killer sends SIGKILL)" : "") };
  }
  return { status: "dead", label: "killed", title: "gone without writing its end, and no exit status seen (killed?)" };
}

// ------------------------------------------------------------------ colours
const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d",
  "#4b5563", "#b45309", "#4f46e5", "#be123c"];
/** The key of one incarnation: pid and start time. */
export function incKey(pid, start) { return pid + ":" + start; }
/** The line colour of an incarnation, the same on every card and on the workers page. */
export function colourFor(pid, start) {
  return PALETTE[colourSlot(incKey(pid, start)) % PALETTE.length];
}

// ------------------------------------------------------------------ hosts
const HOST_MAX = 63;
/** host= of a hash: 1 to 63 bytes without control characters (as the API takes it), else "". */
export function hostParam(params) {
  const v = params.get("host") || "";
  return v && !/[\x00-\x1f\x7f]/.test(v) && new TextEncoder().encode(v).length <= HOST_MAX ? v : "";
}
/** The query (or hash) parameters naming one worker: pid, and host when it is known. */
export const workerParams = (pid, host) => ({ pid: pid || null, host: (pid && host) || null });
/** The store's hosts: the host of its local incarnations first (when it has any), the others sorted. */
export function hostList() {
  const all = procList();
  const local = new Set(all.filter((p) => !p.remote).map((p) => p.host || ""));
  const hosts = [...new Set(all.map((p) => p.host || ""))];
  return hosts.sort((a, b) => (local.has(b) - local.has(a)) || (a < b ? -1 : a > b ? 1 : 0));
}
export const manyHosts = () => hostList().length > 1;
/** Incarnations sorted by host (in hostList order), then pid, then start time. */
export function byHost(list, hosts) {
  const rank = new Map(hosts.map((x, i) => [x, i]));
  return list.slice().sort((a, b) => (rank.get(a.host || "") - rank.get(b.host || "")) || a.pid - b.pid || a.started - b.started);
}

// ------------------------------------------------------------------ worker selectors
/** A selector value: "pid" (one host), "pid@host" (a worker of one host), "@host" (all workers of a host). */
export function parseWorkerValue(v) {
  const at = v.indexOf("@");
  return at < 0 ? { pid: v, host: "" } : { pid: v.slice(0, at), host: v.slice(at + 1) };
}
/**
 * Fill a worker <select>: `first` ([value, text]) then the workers, one <optgroup> per host when the
 * store has several (local host first, then sorted; alive first, then by pid), the latest incarnation
 * of each host + pid. opts: {alive: live workers only, hostEntries: an "All workers of HOST" entry per
 * host, label(p, who): the option text, from who = "pid 4242", or "pid 4242 on web-2" when grouped (a
 * closed <select> does not show the group)}. Selects (pid, host), adding an entry for it when it is not listed.
 */
export function fillWorkerSelect(sel, first, pid, host, opts) {
  const latest = new Map();
  for (const p of procList()) if (!opts.alive || p.alive) latest.set((p.host || "") + "\u0000" + p.pid, p); // oldest first: the newest wins
  const hosts = hostList(), grouped = hosts.length > 1;
  fill(sel, h("option", { value: first[0] }, first[1]));
  for (const hst of hosts) {
    const ws = [...latest.values()].filter((p) => (p.host || "") === hst).sort((a, b) => (b.alive - a.alive) || a.pid - b.pid);
    const into = grouped ? h("optgroup", { label: hst || "(no host)", dataset: { host: hst } }) : sel;
    if (grouped && opts.hostEntries && hst) into.append(h("option", { value: "@" + hst, dataset: { host: hst } }, "All workers of " + hst));
    for (const p of ws) into.append(h("option", { value: grouped ? p.pid + "@" + hst : String(p.pid), dataset: { pid: String(p.pid), host: hst } },
      opts.label(p, "pid " + p.pid + (grouped ? " on " + (hst || "(no host)") : ""))));
    if (grouped && into.children.length) sel.append(into);
  }
  const want = pid || host ? (host && (grouped || !pid) ? (pid || "") + "@" + host : String(pid)) : first[0];
  if (![...sel.options].some((o) => o.value === want)) {
    sel.append(h("option", { value: want }, pid ? "pid " + pid + (host ? " on " + host : "") + (opts.missing || "") : "All workers of " + host));
  }
  sel.value = want;
}
