/* The heap dump page (#/heap): what `pyloot --heap FILE [--heap NEW]` serves from GET /api/heap, the
 * report `pyloot heap` prints (docs/heapdump.md): the top types, the biggest retainers with a path
 * from a root to each and, with two dumps, what grew between them. Read-only; the figures are the
 * core's (src/core/heapdump_report.c), never recomputed here. On the pyloot command's page, the form
 * sends one or two dump files of this computer to POST /api/heap (at most 64 MiB) and shows their
 * report. Where the store's workers are, a link per live worker downloads a dump of it (GET
 * /api/heapdump, a live-object route). */
import { h } from "./dom.js";
import { api, apiPost, apiFile, ApiError } from "./api.js";
import { loadProcs, manyHosts } from "./procs.js";
import { fmtInt, fmtBytes, fmtSigned, fmtDateTime, truncate } from "./format.js";
import { errorBox, loadingBlock } from "./feedback.js";

const descr = (repr) => (repr || "").replace(/\\n/g, " ");

function table(id, columns, rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table", id },
    h("thead", null, h("tr", null, columns.map(([name, num]) => h("th", { class: num ? "num" : null }, name)))),
    h("tbody", null, rows)));
}

function metaPanel(title, d, file) {
  return h("section", { class: "panel heap-meta" }, h("h2", null, title),
    h("dl", { class: "kv" },
      h("dt", null, "file"), h("dd", null, h("code", null, file || "–")),
      h("dt", null, "worker"), h("dd", null, "pid " + d.pid + " on " + (d.host || "?") + ", Python " + (d.python || "?")),
      h("dt", null, "taken"), h("dd", null, fmtDateTime(d.time / 1000)),
      h("dt", null, "objects"), h("dd", null, fmtInt(d.objects) + " objects, " + fmtInt(d.edges) + " references"),
      h("dt", null, "reachable"), h("dd", null, fmtBytes(d.total)),
      h("dt", null, "command"), h("dd", { class: "argv", title: d.argv || "" }, truncate(d.argv || "–", 200))));
}

function pathLine(path) {
  const parts = [];
  path.forEach((step, i) => {
    if (i && step.via) parts.push(h("span", { class: "muted" }, " → " + step.via + " → "));
    else if (i) parts.push(h("span", { class: "muted" }, " → "));
    parts.push(h("span", { class: "mono", title: descr(step.repr) }, step.type));
  });
  return h("div", { class: "heap-path small" }, parts);
}

function typesTable(types) {
  return table("heap-types", [["type"], ["count", 1], ["bytes", 1]], types.map((t) =>
    h("tr", { dataset: { type: t.name } }, h("td", { class: "mono" }, t.name), h("td", { class: "num" }, fmtInt(t.count)),
      h("td", { class: "num" }, fmtBytes(t.bytes)))));
}

function retainersTable(retainers) {
  return table("heap-retainers", [["retained", 1], ["object"], ["held by"]], retainers.map((x) =>
    h("tr", { dataset: { id: String(x.id) } }, h("td", { class: "num" }, fmtBytes(x.retained)),
      h("td", null, h("span", { class: "mono" }, x.type), " ", h("span", { class: "muted small" }, descr(x.repr))),
      h("td", null, pathLine(x.path)))));
}

function diffPanels(f) {
  return [
    h("section", { class: "panel", id: "heap-diff" }, h("h2", null, "What grew between the dumps"),
      h("p", { class: "muted small" }, fmtInt(f.matched) + " objects in both, " + fmtInt(f.new_objects) + " new, " +
        fmtInt(f.gone_objects) + " gone; objects are matched by address and type" +
        (f.same_worker ? "." : " (the two dumps come from different workers: the matching means little).")),
      table("heap-type-changes", [["type"], ["count change", 1], ["bytes change", 1], ["bytes now", 1]], f.types.map((t) =>
        h("tr", { dataset: { type: t.name } }, h("td", { class: "mono" }, t.name),
          h("td", { class: "num" }, fmtSigned(t.count_change)), h("td", { class: "num" }, fmtSigned(t.bytes_change)),
          h("td", { class: "num" }, fmtBytes(t.bytes)))))),
    h("section", { class: "panel" }, h("h2", null, "Retained size grew most"),
      table("heap-grown", [["grew by", 1], ["retained now", 1], ["object"]], f.grown.map((x) =>
        h("tr", null, h("td", { class: "num" }, "+" + fmtBytes(x.retained_change)), h("td", { class: "num" }, fmtBytes(x.retained)),
          h("td", null, h("span", { class: "mono" }, x.type), " ", h("span", { class: "muted small" }, descr(x.repr))))))),
    h("section", { class: "panel" }, h("h2", null, "Old objects holding new ones"),
      table("heap-new-held", [["new objects", 1], ["their bytes", 1], ["of type"], ["held by"]], f.new_held_by_old.map((x) =>
        h("tr", null, h("td", { class: "num" }, fmtInt(x.new_objects)), h("td", { class: "num" }, fmtBytes(x.new_bytes)),
          h("td", { class: "mono" }, x.new_type),
          h("td", null, h("span", { class: "mono" }, x.type), " ", h("span", { class: "muted small" }, descr(x.repr))))))),
  ];
}

/** Saves blob as a file named filename (the browser's download). */
function save(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** A link per live worker of the store that takes a dump of it (GET api/heapdump) and saves it, or
 * says in words why it could not (a stuck worker, a dump over the route's bound): null when no
 * worker is alive. */
function takePanel(data) {
  const live = (data.procs || []).filter((p) => p.alive);
  if (!live.length) return null;
  const many = manyHosts();
  const status = h("div", { class: "heap-take-status" });
  async function take(p, link) {
    if (link.dataset.state === "taking") return;
    link.dataset.state = "taking";
    status.replaceChildren(loadingBlock("Taking a heap dump of pid " + p.pid + "…"));
    try {
      const f = await apiFile("heapdump", { pid: p.pid, host: many ? p.host : null });
      save(f.blob, f.filename);
      status.replaceChildren(h("p", { class: "muted small", id: "heap-taken" }, "Saved " + f.filename + " (" +
        fmtBytes(f.blob.size) + "): open it with pyloot --heap " + f.filename + "."));
    } catch (err) {
      status.replaceChildren(errorBox(err, () => take(p, link)));
    } finally {
      link.dataset.state = "";
    }
  }
  return h("section", { class: "panel", id: "heap-take" }, h("h2", null, "Take a heap dump"),
    h("p", { class: "muted small" }, "A file of a live worker's object graph, to keep and to compare with a later one. " +
      "The worker holds the GIL while it is taken (about 0.15 s per million objects). Open it with pyloot --heap FILE, " +
      "or give --heap twice to compare two dumps of one worker."),
    h("div", { class: "heap-take-links" }, live.map((p) => {
      const link = h("a", {
        class: "btn small", dataset: { pid: String(p.pid) },
        href: "api/heapdump?pid=" + p.pid + (many && p.host ? "&host=" + encodeURIComponent(p.host) : ""),
      }, "pid " + p.pid + (many && p.host ? " on " + p.host : ""));
      link.addEventListener("click", (e) => { e.preventDefault(); take(p, link); });
      return link;
    })), status);
}

/** The heap view (router.js's view interface). */
export function heapView() {
  let els = {};
  function mount(main) {
    els.results = h("div", { id: "results", dataset: { state: "loading" } }, loadingBlock("Reading the heap dump…"));
    els.old = h("input", { type: "file", id: "heap-file", accept: ".plheap" });
    els.new = h("input", { type: "file", id: "heap-file-new", accept: ".plheap" });
    // Hidden until /api/procs says who serves the page: a worker's mount takes no upload.
    els.form = h("form", { class: "panel heap-upload", id: "heap-upload", hidden: true,
      onsubmit: (e) => { e.preventDefault(); upload(); } },
      h("label", null, "Dump ", els.old), h("label", null, " compared with a newer one (optional) ", els.new),
      h("button", { type: "submit", class: "btn small" }, "Open"));
    els.take = h("div", { id: "heap-take-slot" });
    main.append(h("h1", { class: "page-title" }, "Heap dump"),
      h("p", { class: "muted lead" }, "A worker's object graph kept in a file (pyloot --heap FILE; twice to compare " +
        "two dumps of one worker): the types that take the most memory, the objects that keep the most alive, " +
        "and how a root holds each."), els.take, els.form, els.results);
    loadTake();
    load();
  }
  async function loadTake() {
    let data = null;
    try {
      data = await loadProcs();
    } catch (err) {
      // pyloot --heap without a store: no workers, and the form works.
    }
    if (!els.take) return;
    els.served = data && data.self ? "worker" : "command";
    els.form.hidden = els.served === "worker";
    if (data) els.take.replaceChildren(...[takePanel(data)].filter(Boolean));
    if (els.results.dataset.state === "empty") els.results.replaceChildren(noDump());
  }
  /** No dump given to this server: what opens one here. */
  function noDump() {
    return h("div", { class: "empty", id: "heap-none" }, els.served === "worker"
      ? "No heap dump is open here: a worker's page opens none. Take one above, then open it with pyloot --heap FILE."
      : "No heap dump is open here: choose a file above, or start pyloot --heap FILE.");
  }
  async function upload() {
    const files = [els.old.files[0], els.new.files[0]].filter(Boolean);
    if (!files.length) return;
    els.results.dataset.state = "loading";
    els.results.replaceChildren(loadingBlock("Reading the uploaded dump…"));
    try {
      const doc = await apiPost("heap", new Blob(files));
      doc.files = files.map((f) => f.name);
      render(doc);
    } catch (err) {
      els.results.dataset.state = "error";
      els.results.replaceChildren(errorBox(err, upload));
    }
  }
  async function load() {
    try {
      const doc = await api("heap");
      render(doc);
    } catch (err) {
      if (!els.results) return;
      // 404: this server was given no dump (a worker's mount, or pyloot without --heap).
      const none = err instanceof ApiError && err.status === 404;
      els.results.dataset.state = none ? "empty" : "error";
      els.results.replaceChildren(none ? noDump() : errorBox(err, load));
    }
  }
  function render(doc) {
    const r = doc.report, f = doc.diff, files = doc.files || [];
    els.results.dataset.state = "ready";
    els.results.replaceChildren(...[
      f ? metaPanel("Old dump", f.old, files[0]) : null,
      metaPanel(f ? "New dump" : "The dump", r, files[files.length - 1]),
      ...(f ? diffPanels(f) : []),
      h("section", { class: "panel" }, h("h2", null, "Top types by bytes" + (f ? " (new dump)" : "")), typesTable(r.types)),
      h("section", { class: "panel" }, h("h2", null, "Biggest retainers" + (f ? " (new dump)" : "")),
        h("p", { class: "muted small" }, "Retained size: what freeing the object would free (its subtree of the dominator tree)."),
        retainersTable(r.retainers))].filter(Boolean));
  }
  return { mount, update() {}, canUpdate: () => true, unmount() { els = {}; } };
}
