/* The Task (or Future) panel of the object page: an asyncio task's state, name, coroutine and await
 * chain, from the `task` / `future` fields of /api/objects/<id>. */
import { h } from "./dom.js";
import { hashFor } from "./router.js";
import { workerParams } from "./procs.js";

/** "/srv/app.py:42" of a chain step, or "finished". */
function stepPlace(s) {
  if (s.line === null || s.line === undefined) return s.finished ? "finished" : (s.file || "");
  return (s.file || "?") + ":" + s.line;
}

/** One step of the await chain, linking to its object page. */
function chainStep(s, pid, host) {
  const link = (text) => h("a", { class: "mono", href: hashFor("object/" + s.id, workerParams(pid, host)), title: "id " + s.id }, text);
  if (s.kind === "coroutine" || s.kind === "generator" || s.kind === "async_generator") {
    return h("li", { class: "await-step", dataset: { kind: s.kind } }, link(s.coroutine),
      h("span", { class: "muted small" }, " " + s.kind + " at "), h("code", { class: "small" }, stepPlace(s)));
  }
  const what = s.kind === "task" ? "task " + (s.name || "") + " of " + s.coroutine : s.type;
  return h("li", { class: "await-step target", dataset: { kind: s.kind } }, "awaits ", link(what),
    s.state ? h("span", { class: "badge " + s.state }, s.state) : null);
}

/** The panel for answer o, or null when o is neither a task nor a future. */
export function taskPanel(o, pid, host) {
  const t = o.task, f = o.future;
  if (!t && !f) return null;
  const x = t || f;
  const rows = [["state", h("span", { class: "badge " + x.state, id: "task-state" }, x.state)]];
  if (x.error) rows.push(["error", h("span", { class: "error-text" }, x.error)]);
  if (t && !t.error) {
    rows.push(["name", h("code", null, t.name || "–")], ["coroutine", h("code", { id: "task-coroutine" }, t.coroutine)]);
    if (t.waiting_at) rows.push(["waiting at", h("code", { id: "task-waiting-at" }, t.waiting_at)]);
    rows.push(["created at", t.created_at ? h("code", null, t.created_at) : h("span", { class: "muted" }, "not known (no allocation site sampled)")]);
  }
  const chain = t && t.await_chain ? h("ol", { class: "await-chain", id: "await-chain" }, t.await_chain.map((s) => chainStep(s, pid, host))) : null;
  return h("section", { class: "panel", id: "task-panel" },
    h("h2", null, t ? "Asyncio task " : "Asyncio future ", t ? h("a", { class: "small", href: hashFor("tasks", workerParams(pid, host)) }, "all tasks of this worker ›") : null),
    h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
    chain ? [h("h3", { class: "small" }, "Await chain", t.truncated ? h("span", { class: "muted" }, " (cut at 32 steps)") : null), chain] : null);
}
