/* Controls the views share: labelled fields, selects, the pager. */
import { $, h } from "./dom.js";
import { fmtInt } from "./format.js";

/** A <select id=id> of options ([value, text] or value), set to value; onchange(value) on change. */
export function selectEl(id, options, value, onchange, label) {
  const sel = h("select", { id, "aria-label": label || id });
  for (const o of options) {
    const [v, text] = Array.isArray(o) ? o : [o, String(o)];
    sel.append(h("option", { value: String(v) }, text));
  }
  sel.value = String(value);
  sel.addEventListener("change", () => onchange(sel.value));
  return sel;
}
/** Select value, adding an option for it when the list does not have it (a value from the hash). */
export function ensureOption(sel, value, text) {
  if (![...sel.options].some((o) => o.value === String(value))) sel.append(h("option", { value: String(value) }, text || String(value)));
  sel.value = String(value);
}
export function field(labelText, control, cls) {
  return h("label", { class: "field" + (cls ? " " + cls : "") }, h("span", { class: "field-label" }, labelText), control);
}

/** A pager: first/prev/next/last and "21–40 of 812". `go(offset)` is called on click. */
export function pager(idPrefix, offset, limit, total, noun, go) {
  const pages = Math.max(1, Math.ceil(total / limit));
  const page = Math.floor(offset / limit) + 1;
  const from = total ? offset + 1 : 0, to = Math.min(total, offset + limit);
  const btn = (id, text, title, target, disabled) => h("button", {
    type: "button", class: "btn pager-btn", id: idPrefix ? idPrefix + "-" + id : null, dataset: { go: id },
    title, disabled: disabled, onclick: () => go(target),
  }, text);
  if (total === 1 && noun.endsWith("s")) noun = noun.slice(0, -1);
  const info = h("span", { class: "pager-info" }, h("b", null, fmtInt(from) + "–" + fmtInt(to)), " of " + fmtInt(total) + " " + noun,
    pages > 1 ? h("span", { class: "muted" }, " · page " + page + "/" + pages) : null);
  if (pages <= 1) return h("div", { class: "pager single", dataset: { page: "1", pages: "1" } }, info);
  return h("div", { class: "pager", dataset: { page: String(page), pages: String(pages) } },
    btn("first", "«", "First page", 0, page <= 1),
    btn("prev", "‹ Prev", "Previous page", Math.max(0, offset - limit), page <= 1),
    info,
    btn("next", "Next ›", "Next page", offset + limit, page >= pages),
    btn("last", "»", "Last page", (pages - 1) * limit, page >= pages));
}

/** After paging from the bottom pager, bring the top of the results back into view. */
export function scrollToResults() {
  const top = $("#main").getBoundingClientRect().top + window.scrollY;
  if (window.scrollY > top) window.scrollTo(0, 0);
}
