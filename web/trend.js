/* A type's trend over the window (/api/history's "trend", docs/http-api.md "Trend"): its badge, and the
 * choices of the history view's filter (trend=). */
import { h } from "./dom.js";

/** The filter's choices: [value of trend= ("" for all), label]. */
export const TREND_FILTERS = [["", "All types"], ["growing", "Growing"], ["levelled", "Levelled"],
  ["growing,levelled", "Growing or levelled"]];

const BADGES = {
  growing: ["growing", "Grew over the window and still grows over its last stretch: a leak?"],
  levelled: ["levelled: a filled cache?", "Grew, then stopped growing for the last stretch of the window: "
    + "a cache or pool that filled up (lru_cache, a connection pool) rather than a leak"],
  flat: ["flat", "No change beyond the noise over the window (or too few points to tell)"],
  falling: ["falling", "Fewer at the end of the window than at its start"],
};

/** The badge of trend t ("growing", "levelled", "flat", "falling"), or null for none. */
export function trendBadge(t) {
  const b = BADGES[t];
  return b ? h("span", { class: "trend-badge " + t, dataset: { trend: t }, title: b[1] }, b[0]) : null;
}
