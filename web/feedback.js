/* How the UI says where it is: loading blocks, error boxes, the 403 explanation and the banners over
 * the page (a failed auto-refresh, a store started in place of a damaged one). */
import { $, h, fill } from "./dom.js";
import { errorStatus, errorTitle } from "./api.js";

export function loadingBlock(text) {
  return h("div", { class: "loading-block" }, h("span", { class: "spinner" }), text || "Loading…");
}

/** An error box with the server's message in words and a retry button. */
export function errorBox(err, retry) {
  return h("div", { class: "error-box", role: "alert", dataset: { status: String(errorStatus(err)) } },
    h("strong", null, errorTitle(err)),
    h("span", { class: "error-msg" }, err && err.message ? err.message : String(err)),
    retry ? h("button", { type: "button", class: "btn small", onclick: retry }, "Retry") : null);
}

/** In place of a view that shows values, when the server refused them (403): why, and how to allow. */
export function accessDenied(err) {
  return h("section", { class: "panel access-denied", id: "access-denied", role: "alert" },
    h("h2", null, "Live objects are not shown to this request"),
    h("p", null, err && err.message ? err.message : String(err)),
    h("p", { class: "muted small" }, "History and workers stay visible. The README's section on exposing ",
      h("code", null, "/_pyloot"), " in production says how to choose between a token and an allow callable."));
}

/** The banner over the page after a failed automatic refresh: the last data stays on screen. */
export function showBanner(err) {
  const b = $("#banner");
  fill(b, errorBox(err));
  b.firstChild.append(h("span", { class: "muted small" }, " — showing the last data received; auto-refresh keeps trying."));
  b.hidden = false;
}
export function hideBanner() { $("#banner").hidden = true; }

/** A notice when the store was started in place of a damaged one (store.recovered_from). */
export function showRecovery(store) {
  let b = $("#recovered");
  if (!store || !store.recovered_from) { if (b) b.hidden = true; return; }
  if (!b) {
    b = h("div", { id: "recovered", class: "banner notice", role: "status" });
    $("#banner").before(b);
  }
  const when = typeof store.recovered_at === "number" ? " on " + new Date(store.recovered_at * 1000).toISOString() : "";
  fill(b, h("div", { class: "error-box" },
    h("strong", null, "The store was damaged"),
    h("span", { class: "error-msg" }, "It was moved to ", h("code", null, h("bdi", null, store.recovered_from)),
      when + " (" + (store.recovered_reason || "damaged") + ") and a new store started; older history is in the moved copy " +
      "(open it with: pyloot --db " + store.recovered_from + ").")));
  b.hidden = false;
}
