/* DOM building: elements (HTML and SVG), children, the chart tooltip. Imports nothing, so every other
 * module can use it. */

export const $ = (sel, root = document) => root.querySelector(sel);

/** Build an element: h("a", {href: "#", class: "x", dataset: {id: 1}, onclick: fn}, "text", child) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

/** Append children (nested arrays flattened; null, undefined and false skipped; others as text). */
function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVGNS = "http://www.w3.org/2000/svg";
/** Build an SVG element: s("line", {x1: 0, ...}, child). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
/** Replace el's children (null and false children are skipped, unlike Element.append). */
export function fill(el, ...children) { return append(clear(el), children); }

export function debounce(fn, ms) {
  let t = 0;
  const d = (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
  d.cancel = () => clearTimeout(t);
  return d;
}

// ------------------------------------------------------------------ tooltip (#tooltip, one per page)
const tip = () => $("#tooltip");
/** Show the tooltip near the pointer, kept inside the window. */
export function showTip(clientX, clientY, content) {
  const t = tip();
  fill(t, content);
  t.hidden = false;
  const r = t.getBoundingClientRect();
  let x = clientX + 14, y = clientY + 14;
  if (x + r.width > window.innerWidth - 6) x = clientX - r.width - 14;
  if (x < 6) x = 6;
  if (y + r.height > window.innerHeight - 6) y = clientY - r.height - 14;
  if (y < 6) y = 6;
  t.style.left = x + "px";
  t.style.top = y + "px";
}
export function hideTip() { tip().hidden = true; }
export const tipOpen = () => !tip().hidden;
