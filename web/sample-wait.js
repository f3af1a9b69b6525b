/* "first sample in N s" / "next sample in N s": what the history says while it has fewer than two
 * points (a single dot is not a trend yet), from the live workers' intervals and their last samples
 * (/api/procs). The text counts down by itself: one timer for the page updates every such element. */
import { h } from "./dom.js";
import { procList } from "./state.js";

/**
 * When the next sample of a live worker is due: {at (unix seconds), first (no sample stored yet)},
 * the earliest over the live workers, or null when none is alive. procs: /api/procs's list.
 */
export function nextSample(procs, now) {
  let best = null;
  for (const p of procs || []) {
    if (!p.alive || !(p.interval > 0)) continue;
    const first = !(p.samples > 0);
    const from = first ? p.started : p.last_seen;
    if (typeof from !== "number") continue;
    let at = from + p.interval;
    if (at <= now) at += (Math.floor((now - at) / p.interval) + 1) * p.interval; // late: the next one after now
    if (!best || at < best.at) best = { at, first };
  }
  return best;
}

/** The words for a due time: "first sample in 12 s", "next sample in 3 s", "… due now". */
export function sampleWaitText(next, now) {
  const what = next.first ? "first sample" : "next sample";
  const secs = Math.ceil(next.at - now);
  return secs > 0 ? what + " in " + secs + " s" : what + " due now";
}

let ticking = false;
function tick() {
  const now = Date.now() / 1000;
  for (const el of document.querySelectorAll(".next-sample")) {
    el.textContent = sampleWaitText({ at: Number(el.dataset.at), first: el.dataset.first === "1" }, now);
  }
}

/** A counting-down "next sample in N s" element for the page's workers, or null when none is alive. */
export function sampleWait() {
  const now = Date.now() / 1000, next = nextSample(procList(), now);
  if (!next) return null;
  if (!ticking) { ticking = true; setInterval(tick, 1000); }
  return h("span", { class: "next-sample", dataset: { at: String(next.at), first: next.first ? "1" : "0" } }, sampleWaitText(next, now));
}
