/* The picture of what holds an object: a layered SVG drawing of a referrer graph (the answer of
 * /api/objects/<id>/graph, or a witness's stored path as a chain). The object is at the right, its
 * referrers in columns by distance to the left, roots leftmost; edges carry their labels, the path from a
 * root is highlighted, nodes open their object's page. No network, no dependency: layout and drawing. */
import { h, s, showTip, hideTip } from "./dom.js";
import { fmtBytes, truncate } from "./format.js";

const NODE_W = 212, NODE_H = 46, GAP_X = 150, GAP_Y = 16, PAD = 26;
const MAX_ROWS = 12;          // a column with more nodes is drawn as several side by side
const LABEL_CHARS = 21, TYPE_CHARS = 27, REPR_CHARS = 30;

/** Column and row of every node: columns by depth (deepest left), rows ordered by the barycentre of the
 * nodes they refer to, so that edges cross little. Returns {pos: Map(id -> {x, y}), width, height}. */
function layout(g) {
  const maxDepth = Math.max(0, ...g.nodes.map((n) => n.depth));
  const layers = Array.from({ length: maxDepth + 1 }, () => []);
  g.nodes.forEach((n, i) => layers[maxDepth - n.depth].push({ n, i, key: n.on_path ? -1 : i }));
  const out = new Map(), inn = new Map();
  for (const e of g.edges) {
    (out.get(e.from) || out.set(e.from, []).get(e.from)).push(e.to);
    (inn.get(e.to) || inn.set(e.to, []).get(e.to)).push(e.from);
  }
  const rank = new Map();
  const order = (layer) => { layer.sort((a, b) => a.key - b.key || a.i - b.i); layer.forEach((x, r) => rank.set(x.n.id, r)); };
  layers.forEach(order);
  const bary = (x, nbrs) => {
    const r = (nbrs.get(x.n.id) || []).filter((id) => rank.has(id)).map((id) => rank.get(id));
    return r.length ? r.reduce((a, b) => a + b, 0) / r.length : rank.get(x.n.id);
  };
  for (let sweep = 0; sweep < 3; sweep++) {
    for (let c = layers.length - 2; c >= 0; c--) { layers[c].forEach((x) => { x.key = x.n.on_path ? -1 : bary(x, out); }); order(layers[c]); }
    for (let c = 1; c < layers.length; c++) { layers[c].forEach((x) => { x.key = x.n.on_path ? -1 : bary(x, inn); }); order(layers[c]); }
  }
  const rows = Math.min(MAX_ROWS, Math.max(...layers.map((l) => l.length)));
  const pos = new Map();
  let x = PAD;
  for (const layer of layers) {
    const cols = Math.max(1, Math.ceil(layer.length / MAX_ROWS));
    // The first rows (the path's nodes among them) in the sub-column nearest the object.
    layer.forEach((item, r) => {
      const sub = Math.floor(r / MAX_ROWS), row = r % MAX_ROWS;
      const inCol = Math.min(MAX_ROWS, layer.length - sub * MAX_ROWS);
      pos.set(item.n.id, { x: x + (cols - 1 - sub) * (NODE_W + GAP_X), y: PAD + (row + Math.floor((rows - inCol) / 2)) * (NODE_H + GAP_Y) });
    });
    x += cols * (NODE_W + GAP_X);
  }
  return { pos, width: x - GAP_X + PAD, height: PAD * 2 + rows * (NODE_H + GAP_Y) - GAP_Y };
}

/** The SVG path of an edge from referrer a to object b, and the point where its label goes. Boxes sit on
 * one grid of rows, so an edge that would cross other boxes runs along the gap under its referrer's row. */
function edgeGeometry(a, b) {
  const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
  if (x1 + GAP_X < x2) {       // boxes in between: out, down to the gap under the row, along it, in
    const drop = x1 + GAP_X - 24, lane = a.y + NODE_H + GAP_Y / 2, turn = x2 - GAP_X + 24, r = 6;
    const down = lane > y1 ? 1 : -1;
    return { d: `M${x1},${y1} H${drop - r} Q${drop},${y1} ${drop},${y1 + down * r} V${lane - down * r} Q${drop},${lane} ${drop + r},${lane}` +
      ` H${turn} C${turn + 60},${lane} ${x2 - 60},${y2} ${x2},${y2}`, lx: (x1 + drop) / 2, ly: y1 };
  }
  if (x1 <= x2) {              // the next column
    const dx = Math.max(40, (x2 - x1) / 2);
    return { d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`, lx: (x1 + x2) / 2, ly: (y1 + y2) / 2 };
  }
  // Same column or backwards (a cycle): an arc over the top.
  const ax = a.x + NODE_W / 2, bx = b.x + NODE_W / 2, top = Math.min(a.y, b.y) - GAP_Y / 2;
  return { d: `M${ax},${a.y} C${ax},${top - 20} ${bx},${top - 20} ${bx},${b.y}`, lx: (ax + bx) / 2, ly: top - 8 };
}

const nodeClass = (n, i) => "graph-node" + (i === 0 ? " target" : "") + (n.root ? " root" : "") + (n.on_path ? " on-path" : "");

/** The hover card of a node: type, the whole repr, size and id. */
function nodeTip(n) {
  return h("div", { class: "graph-tip" },
    h("div", { class: "mono" }, h("b", null, n.type), n.size !== undefined ? h("span", { class: "muted" }, "  " + fmtBytes(n.size)) : null),
    h("pre", { class: "graph-tip-repr" }, n.repr),
    n.link ? h("div", { class: "muted small" }, "id " + n.id + " · click to open") : null);
}

/** One node: a box with its type and repr, a link to its page when `href` gives one. */
function drawNode(n, i, p, href) {
  const badge = i === 0 ? "this object" : n.root ? "root" : null;
  const g = s("g", { class: nodeClass(n, i), transform: `translate(${p.x},${p.y})`, "data-id": n.id, "data-depth": n.depth },
    s("title", null, n.type + "\n" + n.repr),
    s("rect", { width: NODE_W, height: NODE_H, rx: 7 }),
    s("text", { class: "graph-type", x: 10, y: 18 }, truncate(n.type, badge ? TYPE_CHARS - badge.length - 1 : TYPE_CHARS)),
    s("text", { class: "graph-repr", x: 10, y: 36 }, truncate(n.repr.replace(/\s+/g, " "), REPR_CHARS)),
    badge ? s("text", { class: "graph-badge", x: NODE_W - 8, y: 17, "text-anchor": "end" }, badge) : null);
  g.addEventListener("mousemove", (ev) => showTip(ev.clientX, ev.clientY, nodeTip(n)));
  g.addEventListener("mouseleave", hideTip);
  const url = n.link && href ? href(n) : null;
  return url ? s("a", { href: url, class: "graph-link" }, g) : g;
}

/** The drawing of graph g = {nodes: [{id, type, repr, size?, depth, root, on_path, link?}], edges: [{from, to,
 * label, on_path}]} (nodes[0] is the object); href(node) gives a node's link. An element to insert. */
export function drawGraph(g, href) {
  const { pos, width, height } = layout(g);
  const arrow = (id, cls) => s("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
    s("path", { d: "M0,0 L10,5 L0,10 z", class: cls }));
  const uid = "g" + Math.random().toString(36).slice(2, 8);
  const edges = s("g", { class: "graph-edges" }), labels = s("g", { class: "graph-labels" });
  // Path edges last, so that they are drawn over the others.
  for (const e of [...g.edges].sort((a, b) => a.on_path - b.on_path)) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const geo = edgeGeometry(a, b);
    edges.append(s("path", { d: geo.d, class: "graph-edge" + (e.on_path ? " on-path" : ""), "marker-end": `url(#${uid}${e.on_path ? "p" : "e"})`,
      "data-from": e.from, "data-to": e.to }, s("title", null, e.label)));
    if (!e.label) continue;
    const text = truncate(e.label, LABEL_CHARS), w = text.length * 6.3 + 8;
    labels.append(s("g", { class: "graph-label" + (e.on_path ? " on-path" : ""), transform: `translate(${geo.lx},${geo.ly})` },
      s("title", null, e.label),
      s("rect", { x: -w / 2, y: -8, width: w, height: 16, rx: 4 }),
      s("text", { x: 0, y: 4, "text-anchor": "middle" }, text)));
  }
  const nodes = s("g", { class: "graph-nodes" }, ...g.nodes.map((n, i) => pos.has(n.id) ? drawNode(n, i, pos.get(n.id), href) : null));
  const svg = s("svg", { class: "graph-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "what holds the object: " + g.nodes.length + " objects, " + g.edges.length + " references" },
    s("defs", null, arrow(uid + "e", "graph-arrow"), arrow(uid + "p", "graph-arrow on-path")), edges, nodes, labels);
  return h("div", { class: "graph-scroll" }, svg);
}

/** A legend under the picture. */
export function graphLegend(extra) {
  const key = (cls, text) => h("span", { class: "graph-key" }, h("span", { class: "graph-swatch " + cls }), text);
  return h("div", { class: "graph-legend small muted" }, key("path", "path from a root (why it is alive)"),
    key("root", "root: a module or a running thread's frame"), key("target", "this object"), extra || null);
}

/** A witness's stored path ([{type, via, repr}], root first) as a graph for drawGraph: a chain, no links. */
export function witnessGraph(w) {
  const n = w.path.length;
  const nodes = w.path.map((step, i) => ({ id: "w" + i, type: step.type, repr: step.repr, depth: n - 1 - i, root: i === 0, on_path: true, link: false }));
  const edges = w.path.slice(1).map((step, i) => ({ from: "w" + i, to: "w" + (i + 1), label: step.via || "", on_path: true }));
  return { nodes: nodes.reverse(), edges, truncated: false };
}
