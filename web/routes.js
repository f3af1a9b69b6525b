/* Growth per request of each route (GET /api/routes, docs/routes.md): the one place the UI decides
 * which route a type grows with and says it. The history cards and the objects page show
 * routeLine(); the objects page adds routesPanel() (the routes of one type); the workers page
 * requestsPanel() (requests served by route). The routes are counted only when the app calls
 * loot.track_requests(app): without them the API answers 404 and the lines show nothing. */
import { h, fill } from "./dom.js";
import { fmtInt } from "./format.js";
import { api, errorStatus } from "./api.js";
import { errorBox, loadingBlock } from "./feedback.js";

/** The hint shown where the routes would be, when the store has none. */
const HINT = "count requests by route with loot.track_requests(app)";
/** Routes shown in a table before the rest go under "Other routes". */
const TABLE_ROWS = 12;
/** How long the cards reuse an answer: each one is a fit on the server, and the history page redraws
 * its cards at every auto-refresh (10 s). */
const REUSE_MS = 30000;
const REUSE_MAX = 200;
const answers = new Map(); // query -> {at, promise}

/** GET api/routes with params, or the same question's answer of the last REUSE_MS. Errors other
 * than a 404 (no routes) are not kept. */
function routesOnce(params) {
  const key = JSON.stringify(params), now = Date.now();
  const hit = answers.get(key);
  if (hit && now - hit.at < REUSE_MS) return hit.promise;
  const promise = api("routes", params);
  answers.delete(key);
  answers.set(key, { at: now, promise });
  if (answers.size > REUSE_MAX) answers.delete(answers.keys().next().value);
  promise.catch((err) => {
    const kept = answers.get(key);
    if (errorStatus(err) !== 404 && kept && kept.promise === promise) answers.delete(key);
  });
  return promise;
}

const num = (x) => typeof x === "number" && isFinite(x);

/** A growth per request or per interval: "1.0", "12", "0.10", "0.0042"; "0" for 0; "–" when unknown. */
export function fmtRate(x) {
  if (!num(x)) return "–";
  const a = Math.abs(x);
  if (a === 0) return "0";
  const s = a >= 100 ? fmtInt(Math.round(a)) : a >= 1 ? a.toFixed(1) : a.toPrecision(2);
  return (x < 0 ? "−" : "") + s;
}
const signedRate = (x) => (num(x) && x > 0 ? "+" : "") + fmtRate(x);

/** The route of the largest contribution (the API ranks by it; this does not rely on the order). */
function topRoute(d) {
  let best = null;
  for (const r of (d && d.routes) || []) if (!best || (num(r.contribution) ? r.contribution : 0) > (num(best.contribution) ? best.contribution : 0)) best = r;
  return best;
}

/**
 * What the UI may say about the routes of one /api/routes answer:
 * {kind: "grows", route} when the top route (by contribution) makes the type grow, can be told apart
 * from the others, its per_request is more than twice its standard error and the fit explains
 * something (r2 > 0); {kind: "apart", route, with} when it makes the type grow but cannot be told
 * apart from other routes; null otherwise (no route grows it, or the figure is noise).
 */
export function routeVerdict(d) {
  const top = topRoute(d);
  if (!top || !(num(top.per_request) && top.per_request > 0)) return null;
  if (!top.separable) {
    const with_ = d.routes.filter((r) => r !== top && !r.separable && r.requests > 0).map((r) => r.route);
    return { kind: "apart", route: top, with: with_ };
  }
  if (!(num(d.r2) && d.r2 > 0) || !num(top.stderr) || !(top.per_request > 2 * top.stderr)) return null;
  return { kind: "grows", route: top };
}

/** Share of the growth of each row: contribution over the sum of the positive contributions and
 * the intercept's growth (intercept x observations) when it is positive. */
function shareOf(d) {
  const extra = num(d.intercept) && num(d.observations) && d.intercept > 0 ? d.intercept * d.observations : 0;
  const total = (d.routes || []).reduce((s, r) => s + (num(r.contribution) && r.contribution > 0 ? r.contribution : 0), 0) + extra;
  return { extra, of: (x) => (total > 0 && num(x) && x > 0 ? x / total : 0) };
}
const fmtShare = (f) => (f > 0 && f < 0.005 ? "<1%" : Math.round(100 * f) + "%");

/** "r² 0.93 over 960 intervals" */
function fitWords(d) {
  return "r² " + (num(d.r2) ? d.r2.toFixed(2) : "–") + " over " + fmtInt(d.observations) + (d.observations === 1 ? " interval" : " intervals");
}

/** The words of a verdict v: the label and the text, as children of one line. */
function verdictWords(v) {
  const name = h("code", { class: "route-name" }, v.route.route);
  if (v.kind === "grows") {
    return [h("span", { class: "stat-label" }, "grows with"), " ", name, ": ",
      h("b", { class: "route-rate" }, signedRate(v.route.per_request) + " per request")];
  }
  return [h("span", { class: "stat-label" }, "grows with"), " ",
    h("span", { class: "muted route-apart" }, "cannot tell routes apart")];
}
/** The hover text of a verdict: the figures behind it, or which routes move together. */
function verdictTitle(d, v) {
  const r = v.route, share = shareOf(d).of(r.contribution);
  if (v.kind === "grows") {
    return r.route + ": " + signedRate(r.per_request) + " ± " + fmtRate(r.stderr) + " per request, " + fmtInt(r.requests) +
      " requests, " + fmtShare(share) + " of the growth; " + fitWords(d) + ".";
  }
  return "The requests of " + r.route + (v.with.length ? " move with those of " + v.with.slice(0, 4).join(", ") + (v.with.length > 4 ? "…" : "") : " do not vary on their own") +
    ": the growth cannot be shared out between them (docs/routes.md). " + fitWords(d) + ".";
}

/**
 * The "grows with" line of a type: filled in when /api/routes answers; empty when no route makes it
 * grow or the store has no routes (404), or on any error (a card never shows one for this).
 * params: pid, host, since, until of the page (null or "" left out). The page's cards first ask
 * together whether the store has routes at all (one request without a type): without, none asks
 * for its own.
 */
export function routeLine(group, params) {
  const el = h("div", { class: "route-line", dataset: { state: "loading" } });
  const window_ = {};
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") window_[k] = String(v);
  routesOnce(window_).then((all) => {
    if (!(all.routes || []).length) throw Object.assign(new Error("no routes"), { none: true });
    return routesOnce(Object.assign({ group }, window_));
  }).then((d) => {
    const v = routeVerdict(d);
    el.dataset.state = v ? v.kind : "none";
    if (!v) return;
    el.title = verdictTitle(d, v);
    fill(el, verdictWords(v));
  }, (err) => { el.dataset.state = err.none || errorStatus(err) === 404 ? "none" : "error"; });
  return el;
}

// ------------------------------------------------------------------ the routes of one type

/** One row of the routes table: route, requests, per request ± stderr, share. */
function routeRow(r, share) {
  const apart = !r.separable;
  return h("tr", { class: "route-row" + (apart ? " apart" : ""), dataset: { route: r.route, separable: r.separable ? "1" : "0" } },
    h("td", { class: "mono" }, r.route),
    h("td", { class: "num" }, fmtInt(r.requests)),
    h("td", { class: "num per-request", title: apart ? "Its requests move with another route's: the split between them cannot be told" : null },
      signedRate(r.per_request),
      apart ? h("span", { class: "muted small" }, " (with others)") :
        num(r.stderr) ? h("span", { class: "muted small" }, " ± " + fmtRate(r.stderr)) : null),
    h("td", { class: "num share" }, fmtShare(share)));
}

function routesTable(d) {
  const share = shareOf(d);
  const routes = (d.routes || []).slice().sort((a, b) => (b.contribution || 0) - (a.contribution || 0));
  const head = h("thead", null, h("tr", null, h("th", null, "route"), h("th", { class: "num" }, "requests"),
    h("th", { class: "num" }, "per request"), h("th", { class: "num", title: "Its part of the growth over the window: per request × requests" }, "share")));
  const noRoute = share.extra > 0 ? h("tr", { class: "route-row no-route", title: "Growth no route explains: a background thread, a timer, a cache the worker fills itself" },
    h("td", { class: "muted" }, "no route"), h("td", { class: "num muted" }, "–"),
    h("td", { class: "num" }, signedRate(d.intercept), h("span", { class: "muted small" }, " per interval")),
    h("td", { class: "num share" }, fmtShare(share.of(share.extra)))) : null;
  const table = (rows, extra) => h("div", { class: "table-wrap" }, h("table", { class: "table routes-table" }, head.cloneNode(true),
    h("tbody", null, rows.map((r) => routeRow(r, share.of(r.contribution))), extra)));
  return [table(routes.slice(0, TABLE_ROWS), noRoute),
    routes.length > TABLE_ROWS ? h("details", { class: "more-routes" }, h("summary", null, "Other routes (" + (routes.length - TABLE_ROWS) + ")"),
      table(routes.slice(TABLE_ROWS), null)) : null];
}

/**
 * The "Routes" panel of a type's page: the verdict line and the table of its routes, fitted over
 * every worker (more intervals than one worker has). On a 404 the one-line hint; on another error an
 * error box with a retry. stillHere(): false once the page moved on.
 */
export function routesPanel(box, group, stillHere) {
  const title = h("h2", null, "Routes", h("span", { class: "muted small" }, "growth of " + group + " per request of each route"));
  box.hidden = false;
  box.dataset.state = "loading";
  fill(box, title, loadingBlock("Fitting the growth of " + group + " to the requests of each route…"));
  api("routes", { group }).then((d) => {
    if (!stillHere()) return;
    const v = routeVerdict(d);
    box.dataset.state = "ready";
    fill(box, title,
      h("div", { class: "routes-verdict", id: "routes-verdict", dataset: { state: v ? v.kind : "none" }, title: v ? verdictTitle(d, v) : null },
        v ? verdictWords(v) : h("span", { class: "muted" }, "No route makes it grow measurably.")),
      h("p", { class: "small muted", id: "routes-fit" }, "Every worker's every sample interval is one observation: " + fitWords(d) +
        ". Routes whose requests always move together cannot be told apart (docs/routes.md)."),
      (d.routes || []).length ? routesTable(d) : null);
  }, (err) => {
    if (!stillHere()) return;
    if (errorStatus(err) === 404) {
      box.dataset.state = "none";
      fill(box, h("p", { class: "muted small route-hint", title: err.message || "" },
        h("span", { class: "stat-label" }, "routes"), " none counted for this type: " + HINT + "."));
      return;
    }
    box.dataset.state = "error";
    fill(box, title, errorBox(err, () => routesPanel(box, group, stillHere)));
  });
}

// ------------------------------------------------------------------ requests by route

/** The workers page's "Requests by route" panel; hidden when the store has none (404) or on an error. */
export function requestsPanel(box, stillHere) {
  api("routes").then((d) => {
    if (!stillHere()) return;
    const routes = (d.routes || []).slice().sort((a, b) => (b.requests || 0) - (a.requests || 0));
    box.hidden = !routes.length;
    if (!routes.length) return;
    const total = routes.reduce((s, r) => s + (r.requests || 0), 0);
    const row = (r) => h("tr", { class: "request-row", dataset: { route: r.route, requests: String(r.requests) } },
      h("td", { class: "mono" }, r.route), h("td", { class: "num" }, fmtInt(r.requests)),
      h("td", { class: "num" }, total ? fmtShare(r.requests / total) : "–"));
    const table = (rows) => h("div", { class: "table-wrap" }, h("table", { class: "table requests-table" },
      h("thead", null, h("tr", null, h("th", null, "route"), h("th", { class: "num" }, "requests"), h("th", { class: "num" }, "share"))),
      h("tbody", null, rows.map(row))));
    fill(box, h("h2", null, "Requests by route", h("span", { class: "count-pill" }, fmtInt(total))),
      table(routes.slice(0, TABLE_ROWS)),
      routes.length > TABLE_ROWS ? h("details", { class: "more-routes" }, h("summary", null, "Other routes (" + (routes.length - TABLE_ROWS) + ")"),
        table(routes.slice(TABLE_ROWS))) : null);
  }, () => { if (stillHere()) box.hidden = true; });
}
