/* The tasks page (#/tasks?pid=&host=&state=): one worker's asyncio tasks grouped by coroutine
 * (/api/tasks), largest group first, each with where its tasks wait most often and a few example
 * tasks linking to their object pages. */
import { $, h, clear, fill } from "./dom.js";
import { fmtInt } from "./format.js";
import { api, ApiError } from "./api.js";
import { errorBox, loadingBlock, accessDenied } from "./feedback.js";
import { hashFor, navigate, parseHash, pidParam } from "./router.js";
import { loadProcs, hostParam, workerParams, parseWorkerValue, fillWorkerSelect, livingIn } from "./procs.js";
import { selectEl, field } from "./controls.js";

const STATES = [["pending", "Pending"], ["done", "Done (still held)"], ["cancelled", "Cancelled (still held)"], ["all", "All"]];
const LIMIT = 100;

function readParams(p) {
  const pid = pidParam(p);
  const state = STATES.some(([s]) => s === p.get("state")) ? p.get("state") : "pending";
  return { pid, host: pid ? hostParam(p) : "", state };
}
const toHash = (x) => hashFor("tasks", Object.assign(workerParams(x.pid, x.host), { state: x.state === "pending" ? null : x.state }));

/** The worker and state selectors. */
function toolbar(x) {
  const worker = h("select", { id: "tasks-worker", "aria-label": "Worker" });
  const fillWorkers = () => fillWorkerSelect(worker, ["", "Answering worker"], x.pid, x.host, { alive: true, label: (pr, who) => who });
  fillWorkers();
  loadProcs().then(() => { if (x.stillHere()) fillWorkers(); }, () => {});
  worker.addEventListener("change", () => navigate(toHash(Object.assign({}, x, parseWorkerValue(worker.value)))));
  const state = selectEl("tasks-state", STATES, x.state, (s) => navigate(toHash(Object.assign({}, x, { state: s }))), "State");
  return h("section", { class: "toolbar" }, field("Worker", worker), field("State", state));
}

/** "/srv/app/handlers.py:42" shown as "handlers.py:42", the whole path in its title. */
function place(where) {
  if (!where) return h("span", { class: "muted" }, "–");
  const short = where.replace(/^.*\//, "");
  return h("code", { class: "task-where", title: where }, short);
}

function groupRow(g, at, host, top) {
  const pct = Math.max(0.5, (100 * g.count) / (top || 1));
  return h("tr", { class: "task-group", dataset: { coroutine: g.coroutine, count: String(g.count) } },
    h("td", { class: "mono task-coroutine" }, g.coroutine),
    h("td", { class: "num" }, h("div", { class: "count-bar" }, h("span", { style: "width:" + pct.toFixed(1) + "%" })), fmtInt(g.count)),
    h("td", null, place(g.waiting_at),
      g.waiting_at && g.waiting_at_count < g.count ? h("span", { class: "muted small" }, " (" + fmtInt(g.waiting_at_count) + " of them)") : null),
    h("td", { class: "task-examples" }, g.examples.map((id, i) =>
      h("a", { class: "mono small example", href: hashFor("object/" + id, workerParams(at, host)), title: "task id " + id }, "#" + (i + 1)))));
}

function showAnswer(x, d) {
  const at = String(d.pid);
  const counts = d.states || {};
  fill(x.head, h("div", { class: "summary" },
    h("b", { id: "tasks-total" }, fmtInt(d.tasks)), " " + (d.state === "all" ? "" : d.state + " ") + (d.tasks === 1 ? "task" : "tasks") + " ",
    h("span", { id: "tasks-pid", dataset: { pid: at } }, livingIn(d.pid, x.host)),
    h("span", { class: "muted small" }, " · pending " + fmtInt(counts.pending) + ", done " + fmtInt(counts.done) + ", cancelled " + fmtInt(counts.cancelled) +
      " · " + fmtInt(d.groups_total) + (d.groups_total === 1 ? " coroutine" : " coroutines") + (d.ungrouped ? " · " + fmtInt(d.ungrouped) + " tasks past the name bound" : ""))));
  if (!d.groups.length) {
    fill(x.results, h("div", { class: "empty", id: "tasks-groups" }, d.tasks === 0 && counts.pending + counts.done + counts.cancelled === 0
      ? "This worker holds no asyncio task (or does not use asyncio)."
      : "No " + d.state + " task in this worker right now."));
    return;
  }
  const top = d.groups[0].count;
  fill(x.results, h("div", { class: "table-wrap" }, h("table", { class: "table", id: "tasks-groups" },
    h("thead", null, h("tr", null, h("th", null, "coroutine"), h("th", { class: "num" }, "tasks"), h("th", null, "waiting at (innermost coroutine)"), h("th", null, "examples"))),
    h("tbody", null, d.groups.map((g) => groupRow(g, at, x.host, top))))),
  d.groups_total > d.groups.length ? h("p", { class: "muted small" }, "The " + d.groups.length + " largest of " + fmtInt(d.groups_total) + " groups.") : null);
}

/** The tasks view (router.js's view interface). */
export function tasksView() {
  let seq = 0;
  function show(main, r) {
    const my = ++seq;
    const x = Object.assign(readParams(r.params), { stillHere: () => my === seq });
    x.head = h("div", { class: "bar-row", id: "tasks-head" });
    x.results = h("div", { id: "results", dataset: { state: "loading" } },
      loadingBlock("Asking " + (x.pid ? "pid " + x.pid + (x.host ? " on " + x.host : "") : "the answering worker") + " for its asyncio tasks…"));
    main.append(h("h1", { class: "page-title" }, "Asyncio tasks"),
      h("p", { class: "muted small" }, "A worker's tasks grouped by their coroutine, the largest group first: tasks that pile up here and never finish are a leak. " +
        "Open an example to see its await chain."),
      toolbar(x), x.head, x.results);
    api("tasks", Object.assign(workerParams(x.pid, x.host), { state: x.state === "pending" ? null : x.state, limit: LIMIT })).then((d) => {
      if (!x.stillHere()) return;
      x.results.dataset.state = "ready";
      showAnswer(x, d);
    }, (err) => {
      if (!x.stillHere()) return;
      x.results.dataset.state = "error";
      fill(x.results, err instanceof ApiError && err.status === 403 ? accessDenied(err) : errorBox(err, () => update(parseHash())));
    });
  }
  function update(r) { const m = $("#main"); clear(m); show(m, r); window.scrollTo(0, 0); }
  return { mount: show, update, canUpdate: () => true, unmount: () => { seq++; } };
}
