/* pyloot web UI: hand-written, no build step, no network access other than the API below.
 * Every URL is relative to the page, so the UI works under any mount prefix (/_pyloot/, /).
 * The state of each view lives in the URL hash (#/history?q=..&sort=..), so a view can be shared. */
"use strict";
(() => {
  // ------------------------------------------------------------------ helpers
  const $ = (sel, root = document) => root.querySelector(sel);

  /** Build an element: h("a", {href: "#", class: "x", dataset: {id: 1}, onclick: fn}, "text", child) */
  function h(tag, attrs, ...children) {
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
  function append(el, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(el, c);
      else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const SVGNS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
    for (const c of children) if (c !== null && c !== undefined) el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  /** Replace el's children (null and false children are skipped, unlike Element.append). */
  function fill(el, ...children) { return append(clear(el), children); }
  function debounce(fn, ms) {
    let t = 0;
    const d = (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
    d.cancel = () => clearTimeout(t);
    return d;
  }
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  function intParam(params, name, def, lo, hi) {
    const raw = params.get(name);
    if (raw === null || !/^\d{1,9}$/.test(raw)) return def;
    return clamp(parseInt(raw, 10), lo, hi);
  }

  // ------------------------------------------------------------------ formatting
  const nf = new Intl.NumberFormat("en-US");
  const fmtInt = (n) => (n === null || n === undefined ? "–" : nf.format(n));
  function fmtSigned(n) {
    if (n === null || n === undefined) return "–";
    return n > 0 ? "+" + nf.format(n) : n < 0 ? "−" + nf.format(-n) : "0";
  }
  function fmtCompact(n) {
    const a = Math.abs(n);
    if (a >= 1e9) return trimZero((n / 1e9).toFixed(a >= 1e10 ? 0 : 1)) + "G";
    if (a >= 1e6) return trimZero((n / 1e6).toFixed(a >= 1e7 ? 0 : 1)) + "M";
    if (a >= 1e4) return trimZero((n / 1e3).toFixed(a >= 1e5 ? 0 : 1)) + "k";
    return nf.format(n);
  }
  const trimZero = (x) => x.replace(/\.0$/, "");
  function fmtBytes(b) {
    if (b === null || b === undefined) return "–";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, v = b;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 0 : 1)) + " " + u[i];
  }
  /** Bytes for an axis label: "512 KiB", "1.5 MiB", "0". */
  function fmtBytesShort(b) {
    if (!b) return "0";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, v = b;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return trimZero(v.toFixed(v >= 10 || i === 0 ? 0 : 1)) + " " + u[i];
  }
  const pad2 = (n) => String(n).padStart(2, "0");
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function fmtClock(t, secs) {
    const d = new Date(t * 1000);
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + (secs ? ":" + pad2(d.getSeconds()) : "");
  }
  const fmtDay = (t) => { const d = new Date(t * 1000); return MONTHS[d.getMonth()] + " " + d.getDate(); };
  function fmtDateTime(t) {
    if (t === null || t === undefined) return "–";
    const d = new Date(t * 1000);
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + fmtClock(t, true);
  }
  /** "Nov 21 20:38:40 → 20:38:48", "Nov 20 09:00 → Nov 21 20:38" */
  function fmtRange(t0, t1) {
    const secs = t1 - t0 < 3600;
    const a = fmtDay(t0) + " " + fmtClock(t0, secs);
    return a + " → " + (fmtDay(t0) === fmtDay(t1) ? "" : fmtDay(t1) + " ") + fmtClock(t1, secs);
  }
  function fmtAgo(t) {
    if (t === null || t === undefined) return "–";
    const d = Math.max(0, Date.now() / 1000 - t);
    if (d < 60) return Math.round(d) + " s ago";
    if (d < 3600) return Math.round(d / 60) + " min ago";
    if (d < 86400) return (d / 3600).toFixed(1).replace(/\.0$/, "") + " h ago";
    return (d / 86400).toFixed(1).replace(/\.0$/, "") + " d ago";
  }
  function fmtDuration(sec) {
    if (sec === null || sec === undefined) return "–";
    if (sec % 86400 === 0) return sec / 86400 + " d";
    if (sec % 3600 === 0) return sec / 3600 + " h";
    if (sec % 60 === 0) return sec / 60 + " min";
    return sec + " s";
  }
  function truncate(str, n) {
    str = String(str);
    return str.length > n ? str.slice(0, n - 1) + "…" : str;
  }
  /** A dotted name with line-break opportunities after each dot. */
  function breakable(name) {
    const parts = String(name).split(/(?<=\.)/);
    const out = [];
    parts.forEach((p, i) => { if (i) out.push(h("wbr")); out.push(p); });
    return out;
  }
  /** A command line with the interpreter's directory left out: python3 -m gunicorn ... */
  const shortArgv = (a) => String(a).replace(/^\S*\//, "");
  const typeOf = (o) => (!o.type_module || o.type_module === "builtins" ? o.type_name : o.type_module + "." + o.type_name);

  // ------------------------------------------------------------------ API
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  let inflight = 0;
  function setBusy(delta) {
    inflight += delta;
    document.body.dataset.loading = inflight > 0 ? "1" : "0";
    $("#busy").classList.toggle("on", inflight > 0);
  }
  /**
   * Start times beyond 2^53 as strings: a pushed incarnation's stored start is 2^63 + n
   * (docs/http-api.md, remote mode), which a JSON number would round to the same value for
   * every n, so that two workers with one pid on two hosts would share a line key and a colour.
   */
  const exactStarts = (text) => text.replace(/(^|[^\\])"(start|worker_start)":(\d{16,})/g, '$1"$2":"$3"');
  async function api(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
    const url = "api/" + path + (q.toString() ? "?" + q : "");
    setBusy(1);
    try {
      let resp;
      try {
        resp = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      } catch (e) {
        throw new ApiError(0, "Could not reach the server (" + (e && e.message ? e.message : e) + ").");
      }
      const text = await resp.text();
      let body;
      try { body = JSON.parse(exactStarts(text)); } catch (e) { body = undefined; }
      if (!resp.ok) {
        const msg = body && typeof body.error === "string" ? body.error : (resp.statusText || "request failed");
        if (resp.status === 401) showLogin(msg);
        throw new ApiError(resp.status, msg);
      }
      if (body === undefined) {
        throw new ApiError(resp.status, "The response could not be read as JSON. If pyloot runs behind a middleware " +
          "that also gzips responses, disable gzip in pyloot: PyLoot(server=PyLootServer(disable_response_gzip=True)).");
      }
      return body;
    } finally {
      setBusy(-1);
    }
  }
  const STATUS_WORDS = {
    0: "Network error", 400: "Bad request", 401: "Token needed", 403: "Not shown to this request",
    404: "Not found", 405: "Not allowed", 500: "Server error",
    501: "Not available here", 503: "Unavailable", 504: "Worker did not answer in time",
  };
  /** An error box with the server's message in words and a retry button. */
  function errorBox(err, retry) {
    const status = err instanceof ApiError ? err.status : -1;
    const title = STATUS_WORDS[status] || (status > 0 ? "Error " + status : "Error");
    return h("div", { class: "error-box", role: "alert", dataset: { status: String(status) } },
      h("strong", null, title + (status > 0 ? " (" + status + ")" : "")),
      h("span", { class: "error-msg" }, err && err.message ? err.message : String(err)),
      retry ? h("button", { type: "button", class: "btn small", onclick: retry }, "Retry") : null);
  }
  // ------------------------------------------------------------------ access: login form, 403 explanation
  let loginShown = false;
  /** The token form, over the page, after a 401. The server keeps the token in an HttpOnly cookie. */
  function showLogin(message) {
    if (loginShown) return;
    loginShown = true;
    const input = h("input", { id: "login-token", type: "password", autocomplete: "current-password",
      spellcheck: "false", "aria-label": "Token", placeholder: "token" });
    const note = h("p", { class: "login-note", id: "login-error", role: "alert" });
    const form = h("form", { class: "login-form", id: "login-form" },
      h("h2", null, "This pyloot needs a token"),
      h("p", { class: "muted small" }, "Its server was started with a token (PyLoot(token=...), PYLOOT_TOKEN or pyloot --token). ",
        "Enter it once: this browser keeps it in a cookie for this page only."),
      h("div", { class: "login-row" }, input, h("button", { type: "submit", class: "btn", id: "login-submit" }, "Log in")),
      note);
    const overlay = h("div", { class: "login-overlay", id: "login" }, form);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      fill(note);
      let resp;
      try {
        resp = await fetch("api/login", { method: "POST", body: input.value, cache: "no-store",
          headers: { "Content-Type": "text/plain" } });
      } catch (err) {
        fill(note, "Could not reach the server.");
        return;
      }
      if (!resp.ok) {
        let msg = "The token is not correct.";
        try { const b = await resp.json(); if (b && b.error) msg = b.error; } catch (err) { /* keep msg */ }
        fill(note, msg);
        input.select();
        return;
      }
      overlay.remove();
      loginShown = false;
      hideBanner();
      // Every view starts again, now with the cookie.
      if (current && current.view.unmount) current.view.unmount();
      current = null;
      loadProcs().catch(() => {});
      route();
    });
    document.body.append(overlay);
    input.focus();
  }
  /** In place of a view that shows values, when the server refused them (403): why, and how to allow. */
  function accessDenied(err) {
    return h("section", { class: "panel access-denied", id: "access-denied", role: "alert" },
      h("h2", null, "Live objects are not shown to this request"),
      h("p", null, err && err.message ? err.message : String(err)),
      h("p", { class: "muted small" }, "History and workers stay visible. The README's section on exposing ",
        h("code", null, "/_pyloot"), " in production says how to choose between a token and an allow callable."));
  }

  function loadingBlock(text) {
    return h("div", { class: "loading-block" }, h("span", { class: "spinner" }), text || "Loading…");
  }

  // ------------------------------------------------------------------ procs (header, selectors, colours)
  let procsData = null;
  const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d",
    "#4b5563", "#b45309", "#4f46e5", "#be123c"];
  const colourIndex = new Map();
  function incKey(pid, start) { return pid + ":" + start; }
  function colourFor(pid, start) {
    const k = incKey(pid, start);
    if (!colourIndex.has(k)) colourIndex.set(k, colourIndex.size);
    return PALETTE[colourIndex.get(k) % PALETTE.length];
  }
  async function loadProcs() {
    const data = await api("procs");
    procsData = data;
    for (const p of data.procs || []) colourFor(p.pid, p.start);
    renderHeader();
    showRecovery(data.store);
    return data;
  }
  /** A notice when the store was started in place of a damaged one (store.recovered_from). */
  function showRecovery(store) {
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
  function renderHeader() {
    const d = procsData;
    const store = $("#store-info"), self = $("#self-info");
    clear(store); clear(self);
    if (!d) return;
    if (d.store && d.store.path) {
      store.append(h("span", { class: "label" }, "store "), h("code", { id: "store-path" }, h("bdi", null, d.store.path)));
      store.title = "Store path: " + d.store.path;
    }
    if (d.self) {
      self.append(h("span", { class: "label" }, "answered by "), h("code", { id: "self-pid" }, "pid " + d.self.pid));
      self.title = "The worker that answered: pid " + d.self.pid + ", start " + d.self.start;
    } else {
      self.append(h("span", { class: "label" }, "served by "), h("code", null, "pyloot command"));
    }
  }
  function markUpdated() {
    $("#updated").textContent = "updated " + fmtClock(Date.now() / 1000, true);
  }

  // ------------------------------------------------------------------ workers grouped by host
  // A worker is host + pid: pids repeat across the hosts that push to one `pyloot` server. With one
  // host the selectors look as they always did (a flat list of pids, no host in the URL or requests).
  const HOST_MAX = 63;
  /** host= of a hash: 1 to 63 bytes without control characters (as the API takes it), else "". */
  function hostParam(params) {
    const v = params.get("host") || "";
    return v && !/[\x00-\x1f\x7f]/.test(v) && new TextEncoder().encode(v).length <= HOST_MAX ? v : "";
  }
  /** The query (or hash) parameters naming one worker: pid, and host when it is known. */
  const workerParams = (pid, host) => ({ pid: pid || null, host: (pid && host) || null });
  /** The store's hosts: the host of its local incarnations first (when it has any), the others sorted. */
  function hostList() {
    const procs = (procsData && procsData.procs) || [];
    const local = new Set(procs.filter((p) => !p.remote).map((p) => p.host || ""));
    const all = [...new Set(procs.map((p) => p.host || ""))];
    return all.sort((a, b) => (local.has(b) - local.has(a)) || (a < b ? -1 : a > b ? 1 : 0));
  }
  const manyHosts = () => hostList().length > 1;
  /** A selector value: "pid" (one host), "pid@host" (a worker of one host), "@host" (all workers of a host). */
  function parseWorkerValue(v) {
    const at = v.indexOf("@");
    return at < 0 ? { pid: v, host: "" } : { pid: v.slice(0, at), host: v.slice(at + 1) };
  }
  /**
   * Fill a worker <select>: `first` ([value, text]) then the workers, one <optgroup> per host when the
   * store has several (local host first, then sorted; alive first, then by pid), the latest incarnation
   * of each host + pid. opts: {alive: live workers only, hostEntries: an "All workers of HOST" entry per
   * host, label(p, who): the option text, from who = "pid 4242", or "pid 4242 on web-2" when grouped (a
   * closed <select> does not show the group)}. Selects (pid, host), adding an entry for it when it is not listed.
   */
  function fillWorkerSelect(sel, first, pid, host, opts) {
    const procs = (procsData && procsData.procs) || [];
    const latest = new Map();
    for (const p of procs) if (!opts.alive || p.alive) latest.set((p.host || "") + "\u0000" + p.pid, p); // oldest first: the newest wins
    const hosts = hostList(), grouped = hosts.length > 1;
    fill(sel, h("option", { value: first[0] }, first[1]));
    for (const hst of hosts) {
      const ws = [...latest.values()].filter((p) => (p.host || "") === hst).sort((a, b) => (b.alive - a.alive) || a.pid - b.pid);
      const into = grouped ? h("optgroup", { label: hst || "(no host)", dataset: { host: hst } }) : sel;
      if (grouped && opts.hostEntries && hst) into.append(h("option", { value: "@" + hst, dataset: { host: hst } }, "All workers of " + hst));
      for (const p of ws) into.append(h("option", { value: grouped ? p.pid + "@" + hst : String(p.pid), dataset: { pid: String(p.pid), host: hst } },
        opts.label(p, "pid " + p.pid + (grouped ? " on " + (hst || "(no host)") : ""))));
      if (grouped && into.children.length) sel.append(into);
    }
    const want = pid || host ? (host && (grouped || !pid) ? (pid || "") + "@" + host : String(pid)) : first[0];
    if (![...sel.options].some((o) => o.value === want)) {
      sel.append(h("option", { value: want }, pid ? "pid " + pid + (host ? " on " + host : "") + (opts.missing || "") : "All workers of " + host));
    }
    sel.value = want;
  }
  /** Incarnations sorted by host (in hostList order), then pid, then start time. */
  function byHost(procs, hosts) {
    const rank = new Map(hosts.map((x, i) => [x, i]));
    return procs.slice().sort((a, b) => (rank.get(a.host || "") - rank.get(b.host || "")) || a.pid - b.pid || a.started - b.started);
  }

  // ------------------------------------------------------------------ tooltip
  const tip = () => $("#tooltip");
  function showTip(clientX, clientY, content) {
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
  function hideTip() { tip().hidden = true; }

  // ------------------------------------------------------------------ charts (hand-made SVG)
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200,
    86400, 172800, 259200, 345600, 604800, 1209600, 2592000];
  function timeTicks(t0, t1, pw) {
    const span = t1 - t0;
    const multiDay = fmtDay(t0) !== fmtDay(t1);
    // room per label: "20:39:30" (short spans), "Nov 21 00:00" (across midnight), "20:30"
    const maxTicks = Math.max(2, Math.floor(pw / (span < 600 ? 80 : multiDay ? 88 : 70)));
    let step = TIME_STEPS[TIME_STEPS.length - 1];
    for (const st of TIME_STEPS) if (span / st <= maxTicks) { step = st; break; }
    const tz = -new Date(t0 * 1000).getTimezoneOffset() * 60; // align ticks to local time
    const ticks = [];
    for (let t = Math.ceil((t0 + tz) / step) * step - tz; t <= t1 + 1e-6; t += step) ticks.push(t);
    let prevDay = null;
    return ticks.map((t) => {
      const day = fmtDay(t);
      let label;
      if (step >= 86400) label = day;
      else {
        label = fmtClock(t, step < 60);
        if (multiDay && day !== prevDay) label = day + " " + label;
      }
      prevDay = day;
      return { t, label };
    });
  }
  function niceStep(range, n) {
    const raw = range / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
  }

  /**
   * Draw a line chart of `series` ([{label, colour, values, dim}]) over `times` (unix seconds) into
   * `box`, sized to the box's width. Hovering shows a guide, the values and the time.
   */
  function drawChart(box, times, series, opts) {
    opts = opts || {};
    clear(box);
    const W = Math.max(220, Math.floor(box.clientWidth || 360));
    const H = opts.height || 150;
    const n = times.length;
    if (!n) {
      box.append(h("div", { class: "chart-empty" }, "No samples yet"));
      return;
    }
    let max = 0;
    for (const se of series) for (const v of se.values) if (v !== null && v !== undefined && v > max) max = v;
    let step;
    if (opts.bytes) { // round steps in binary units: 0, 256 KiB, 512 KiB, ...
      let unit = 1;
      while (max / unit >= 1024) unit *= 1024;
      step = max > 0 ? Math.max(1, niceStep(max / unit, 3) * unit) : 1;
    } else {
      step = max > 0 ? Math.max(1, niceStep(max, 3)) : 1; // counts are whole numbers
    }
    const yFmt = opts.bytes ? fmtBytesShort : fmtCompact;
    const vFmt = opts.bytes ? fmtBytes : fmtInt;
    const yMax = Math.max(step, Math.ceil(max / step) * step);
    const yTicks = [];
    for (let v = 0; v <= yMax + step / 2; v += step) yTicks.push(v);
    const yLabelW = Math.max(...yTicks.map((v) => yFmt(v).length)) * 6.6 + 10;
    const M = { l: Math.ceil(yLabelW), r: 12, t: 8, b: 22 };
    const pw = W - M.l - M.r, ph = H - M.t - M.b;
    let t0 = times[0], t1 = times[n - 1];
    if (t1 - t0 < 1) { t0 -= 30; t1 += 30; }
    const X = (t) => M.l + ((t - t0) / (t1 - t0)) * pw;
    const Y = (v) => M.t + ph - (v / yMax) * ph;

    const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img",
      "aria-label": opts.ariaLabel || "chart" });
    const grid = s("g", { class: "grid" });
    for (const v of yTicks) {
      const y = Math.round(Y(v)) + 0.5;
      grid.append(s("line", { x1: M.l, x2: W - M.r, y1: y, y2: y }));
      grid.append(s("text", { x: M.l - 6, y: y + 3.5, "text-anchor": "end", class: "ylabel" }, yFmt(v)));
    }
    const xt = s("g", { class: "xaxis" });
    xt.append(s("line", { x1: M.l, x2: W - M.r, y1: M.t + ph + 0.5, y2: M.t + ph + 0.5, class: "axis" }));
    const ticks = timeTicks(t0, t1, pw);
    for (const tk of ticks) {
      const x = Math.round(X(tk.t)) + 0.5;
      xt.append(s("line", { x1: x, x2: x, y1: M.t + ph, y2: M.t + ph + 4, class: "tick" }));
      let anchor = "middle";
      if (x - M.l < 26) anchor = "start";
      else if (W - M.r - x < 26) anchor = "end";
      xt.append(s("text", { x: x, y: H - 6, "text-anchor": anchor, class: "xlabel" }, tk.label));
    }
    svg.append(grid, xt);

    const lines = s("g", { class: "lines" });
    for (const se of series.slice().reverse()) { // the first series ends up on top
      let d = "", area = "", segStart = -1;
      const dots = [];
      for (let i = 0; i <= n; i++) {
        const v = i < n ? se.values[i] : null;
        if (v === null || v === undefined) {
          if (segStart >= 0) {
            const a = segStart, b = i - 1;
            if (a === b) dots.push([X(times[a]), Y(se.values[a])]);
            if (opts.area) area += `L${X(times[b]).toFixed(1)},${Y(0).toFixed(1)}L${X(times[a]).toFixed(1)},${Y(0).toFixed(1)}Z`;
            segStart = -1;
          }
          continue;
        }
        const p = `${X(times[i]).toFixed(1)},${Y(v).toFixed(1)}`;
        if (segStart < 0) { segStart = i; d += "M" + p; area += "M" + p; } else { d += "L" + p; area += "L" + p; }
      }
      if (opts.area && area) lines.append(s("path", { d: area, class: "area", fill: se.colour }));
      if (d) lines.append(s("path", { d, class: "line" + (se.dim ? " dim" : ""), stroke: se.colour }));
      for (const [x, y] of dots) lines.append(s("circle", { cx: x, cy: y, r: 2.5, fill: se.colour }));
    }
    svg.append(lines);

    const guide = s("line", { class: "guide", y1: M.t, y2: M.t + ph, x1: -10, x2: -10 });
    const marks = s("g", { class: "marks" });
    svg.append(guide, marks);
    const overlay = s("rect", { x: M.l, y: M.t, width: pw, height: ph, class: "overlay" });
    svg.append(overlay);

    function nearest(clientX) {
      const r = svg.getBoundingClientRect();
      const t = t0 + ((clientX - r.left - M.l) / pw) * (t1 - t0);
      let lo = 0, hi = n - 1;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (times[mid] < t) lo = mid + 1; else hi = mid; }
      if (lo > 0 && Math.abs(times[lo - 1] - t) < Math.abs(times[lo] - t)) lo--;
      return lo;
    }
    function onMove(ev) {
      const i = nearest(ev.clientX);
      const x = X(times[i]);
      guide.setAttribute("x1", x); guide.setAttribute("x2", x);
      clear(marks);
      const MAX_ROWS = 12;
      let shown = series.map((se) => ({ se, v: se.values[i] }));
      for (const { se, v } of shown) {
        if (v !== null && v !== undefined) marks.append(s("circle", { cx: x, cy: Y(v), r: 3.5, fill: se.colour, class: "mark" }));
      }
      let hidden = 0;
      if (shown.length > MAX_ROWS) { // many incarnations: the largest values, then a count of the rest
        shown = shown.filter((r) => r.v !== null && r.v !== undefined).sort((a, b) => b.v - a.v);
        hidden = series.length - Math.min(shown.length, MAX_ROWS);
        shown = shown.slice(0, MAX_ROWS);
      }
      const rows = shown.map(({ se, v }) => h("div", { class: "tip-row" + (v === null || v === undefined ? " none" : "") },
        h("span", { class: "swatch", style: "background:" + se.colour }), h("span", { class: "tip-label" }, se.label),
        h("b", null, v === null || v === undefined ? "no data" : vFmt(v))));
      if (hidden) rows.push(h("div", { class: "tip-row none" }, "+" + hidden + " more"));
      showTip(ev.clientX, ev.clientY, h("div", null, h("div", { class: "tip-time" }, fmtDateTime(times[i])), rows));
    }
    function onLeave() {
      guide.setAttribute("x1", -10); guide.setAttribute("x2", -10);
      clear(marks);
      hideTip();
    }
    // Drag across the chart to pick a time range (opts.onRange(t0, t1)).
    const band = s("rect", { class: "zoom-band", y: M.t, height: ph, x: -10, width: 0 });
    svg.insertBefore(band, overlay);
    let dragX = null;
    const timeAt = (clientX) => {
      const r = svg.getBoundingClientRect();
      const x = Math.min(Math.max(clientX - r.left, M.l), M.l + pw);
      return { x, t: t0 + ((x - M.l) / pw) * (t1 - t0) };
    };
    overlay.addEventListener("pointerdown", (ev) => {
      onMove(ev);
      if (!opts.onRange) return;
      dragX = timeAt(ev.clientX);
      if (overlay.setPointerCapture && ev.pointerId !== undefined) try { overlay.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic */ }
    });
    overlay.addEventListener("pointermove", (ev) => {
      onMove(ev);
      if (dragX === null) return;
      const p = timeAt(ev.clientX);
      band.setAttribute("x", Math.min(p.x, dragX.x));
      band.setAttribute("width", Math.abs(p.x - dragX.x));
    });
    overlay.addEventListener("pointerup", (ev) => {
      if (dragX === null) return;
      const a = dragX, b = timeAt(ev.clientX);
      dragX = null;
      band.setAttribute("width", 0);
      if (Math.abs(b.x - a.x) >= 6) opts.onRange(Math.min(a.t, b.t), Math.max(a.t, b.t));
    });
    overlay.addEventListener("pointerleave", onLeave);
    box.append(svg);
  }

  // ------------------------------------------------------------------ routing
  function parseHash() {
    let raw = location.hash.replace(/^#\/?/, "");
    const qi = raw.indexOf("?");
    const path = qi >= 0 ? raw.slice(0, qi) : raw;
    const params = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : "");
    const segs = path.split("/").filter(Boolean).map((x) => { try { return decodeURIComponent(x); } catch (e) { return x; } });
    return { name: segs[0] || "history", segs, params };
  }
  function hashFor(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
    const qs = q.toString();
    return "#/" + path + (qs ? "?" + qs : "");
  }
  /** Go to a hash. replace=true keeps one history entry (typing in a search box). */
  function navigate(hash, replace) {
    if (hash === location.hash) return;
    if (replace) {
      history.replaceState(null, "", hash);
      route();
    } else {
      location.hash = hash;
    }
  }

  let current = null; // {name, view}
  function route() {
    hideTip();
    const r = parseHash();
    const make = VIEWS[r.name];
    document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === (r.name === "object" ? "objects" : r.name)));
    if (!make) {
      if (current && current.view.unmount) current.view.unmount();
      current = null;
      const main = clear($("#main"));
      main.append(errorBox(new ApiError(404, "There is no page “#/" + r.segs.join("/") + "”.")),
        h("p", null, h("a", { href: "#/history" }, "Go to the history")));
      document.body.dataset.view = "notfound";
      return;
    }
    document.body.dataset.view = r.name;
    const group = r.params.get("group"), q = r.params.get("q");
    document.title = (r.name === "history" ? "History" + (q ? " · " + q : "") :
      r.name === "workers" ? "Workers" :
      r.name === "objects" ? (group ? group + " objects" : "Objects") :
      r.name === "retainers" ? "Biggest retainers" :
      "Object " + (r.segs[1] || "")) + " · pyloot";
    if (current && current.name === r.name && current.view.update && current.view.canUpdate(r)) {
      current.view.update(r);
      return;
    }
    if (current && current.view.unmount) current.view.unmount();
    const main = clear($("#main"));
    const view = make();
    current = { name: r.name, view };
    view.mount(main, r);
    window.scrollTo(0, 0);
  }

  // ------------------------------------------------------------------ shared controls
  function selectEl(id, options, value, onchange, label) {
    const sel = h("select", { id, "aria-label": label || id });
    for (const o of options) {
      const [v, text] = Array.isArray(o) ? o : [o, String(o)];
      sel.append(h("option", { value: String(v) }, text));
    }
    sel.value = String(value);
    sel.addEventListener("change", () => onchange(sel.value));
    return sel;
  }
  function ensureOption(sel, value, text) {
    if (![...sel.options].some((o) => o.value === String(value))) sel.append(h("option", { value: String(value) }, text || String(value)));
    sel.value = String(value);
  }
  function field(labelText, control, cls) {
    return h("label", { class: "field" + (cls ? " " + cls : "") }, h("span", { class: "field-label" }, labelText), control);
  }
  /** A pager: first/prev/next/last and "21–40 of 812". `go(offset)` is called on click. */
  function pager(idPrefix, offset, limit, total, noun, go) {
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
  function scrollToResults() {
    const top = $("#main").getBoundingClientRect().top + window.scrollY;
    if (window.scrollY > top) window.scrollTo(0, 0);
  }

  // ------------------------------------------------------------------ History view
  const HIST_DEFAULTS = { q: "", sort: "growth", limit: 20, offset: 0, view: "merged", metric: "count", pid: "",
    host: "", since: "", until: "", compare: "" };
  const TIME_RE = /^\d{1,11}(\.\d{1,3})?$/;
  /** unix seconds -> the value of an <input type="datetime-local"> (local time), and back. */
  function toLocalInput(t) {
    if (!t) return "";
    const d = new Date(t * 1000);
    return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + "T" + pad2(d.getHours()) + ":" +
      pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }
  function fromLocalInput(v) {
    if (!v) return "";
    const t = new Date(v).getTime();
    return isFinite(t) ? String(Math.floor(t / 1000)) : "";
  }
  const PAGE_SIZES = [5, 10, 20, 50, 100, 200];

  function historyView() {
    let st = null, data = null, seq = 0, els = {};

    function readParams(p) {
      return {
        q: (p.get("q") || "").slice(0, 256),
        sort: ["growth", "count", "name"].includes(p.get("sort")) ? p.get("sort") : "growth",
        limit: intParam(p, "limit", HIST_DEFAULTS.limit, 1, 1000),
        offset: intParam(p, "offset", 0, 0, 1e9),
        view: p.get("view") === "workers" ? "workers" : "merged",
        metric: p.get("metric") === "bytes" ? "bytes" : "count",
        pid: /^\d{1,7}$/.test(p.get("pid") || "") ? p.get("pid") : "",
        host: hostParam(p),
        since: TIME_RE.test(p.get("since") || "") ? p.get("since") : "",
        until: TIME_RE.test(p.get("until") || "") ? p.get("until") : "",
        compare: p.get("compare") === "1" ? "1" : "",
      };
    }
    function toHash(x) {
      const o = {};
      for (const k of Object.keys(HIST_DEFAULTS)) o[k] = x[k];
      o.offset = x.offset ? x.offset : null;
      if (!o.q) o.q = null;
      if (!o.pid) o.pid = null;
      if (!o.host) o.host = null;
      if (!o.since) o.since = null;
      if (!o.until) o.until = null;
      if (!o.compare) o.compare = null;
      if (o.metric === "count") o.metric = null;
      return hashFor("history", o);
    }
    function set(changes, replace) {
      const next = Object.assign({}, st, changes);
      navigate(toHash(next), replace);
    }

    const onSearch = debounce((v) => set({ q: v, offset: 0 }, true), 300);

    function mount(main, r) {
      st = readParams(r.params);
      els.search = h("input", { id: "search", type: "search", placeholder: "Filter types, e.g. leak or app.models", title: "Type to filter (press / to get here)",
        autocomplete: "off", spellcheck: "false", value: st.q, "aria-label": "Search type names" });
      els.search.addEventListener("input", () => onSearch(els.search.value.trim()));
      els.search.addEventListener("keydown", (e) => {
        if (e.key === "Enter") { onSearch.cancel(); set({ q: els.search.value.trim(), offset: 0 }, true); }
        if (e.key === "Escape" && els.search.value) { els.search.value = ""; onSearch.cancel(); set({ q: "", offset: 0 }, true); }
      });
      els.sort = selectEl("sort", [["growth", "Growth"], ["count", "Count"], ["name", "Name"]], st.sort,
        (v) => set({ sort: v, offset: 0 }), "Sort by");
      els.limit = selectEl("page-size", PAGE_SIZES.map((n) => [n, n + " per page"]), st.limit,
        (v) => set({ limit: parseInt(v, 10), offset: 0 }), "Page size");
      ensureOption(els.limit, st.limit, st.limit + " per page");
      els.pid = selectEl("pid-filter", [["", "All live workers"]], st.pid, (v) => set(Object.assign(parseWorkerValue(v), { offset: 0 })), "Worker");
      els.mode = h("div", { class: "segmented", id: "view-mode", role: "group", "aria-label": "Lines" },
        h("button", { type: "button", dataset: { mode: "merged" }, onclick: () => set({ view: "merged" }) }, "Merged"),
        h("button", { type: "button", dataset: { mode: "workers" }, onclick: () => set({ view: "workers", metric: "count" }) }, "Per worker"));
      els.metric = h("div", { class: "segmented", id: "metric", role: "group", "aria-label": "Chart" },
        h("button", { type: "button", dataset: { metric: "count" }, onclick: () => set({ metric: "count" }) }, "Count"),
        h("button", { type: "button", dataset: { metric: "bytes" }, onclick: () => set({ metric: "bytes", view: "merged" }),
          title: "Shallow size over time (merged or one pid: the API has no per-incarnation sizes)" }, "Size"));
      // The time range: "from" (growth counted from it) and "to" (the as-of moment).
      els.since = h("input", { id: "range-since", type: "datetime-local", step: "1", "aria-label": "From" });
      els.until = h("input", { id: "range-until", type: "datetime-local", step: "1", "aria-label": "To" });
      const applyRange = () => set({ since: fromLocalInput(els.since.value), until: fromLocalInput(els.until.value), offset: 0 });
      els.since.addEventListener("change", applyRange);
      els.until.addEventListener("change", applyRange);
      els.rangeReset = h("button", { type: "button", class: "btn small ghost", id: "range-reset",
        title: "The whole history, as of now (or the last moment a process was alive)",
        onclick: () => set({ since: "", until: "", compare: "", offset: 0 }) }, "All");
      els.compare = h("button", { type: "button", class: "btn small", id: "compare-toggle",
        title: "Rank the types by their change between From and To",
        onclick: () => set({ compare: st.compare ? "" : "1", sort: "growth", offset: 0 }) }, "Compare");
      els.range = h("div", { class: "range", id: "time-range-control" }, els.since, h("span", { class: "muted" }, "→"), els.until,
        els.rangeReset, els.compare);
      els.pagerTop = h("div", { class: "pager-slot", id: "pager-top" });
      els.pagerBottom = h("div", { class: "pager-slot", id: "pager-bottom" });
      els.summary = h("div", { class: "summary", id: "history-summary" });
      els.results = h("div", { id: "results", dataset: { state: "loading" } }, loadingBlock("Loading history…"));
      main.append(
        h("section", { class: "toolbar", id: "history-toolbar" },
          field("Search", els.search, "grow"),
          field("Sort", els.sort),
          field("Worker", els.pid),
          field("Lines", els.mode),
          field("Chart", els.metric),
          field("Page size", els.limit),
          field("Time range (drag on a chart to zoom)", els.range)),
        h("div", { class: "bar-row" }, els.summary, els.pagerTop),
        els.results,
        els.pagerBottom);
      syncControls();
      fillPidOptions();
      load(false);
    }
    function canUpdate() { return true; }
    function update(r) {
      const next = readParams(r.params);
      const same = JSON.stringify(next) === JSON.stringify(st);
      st = next;
      syncControls();
      if (!same) load(false);
    }
    function syncControls() {
      if (document.activeElement !== els.search && els.search.value.trim() !== st.q) els.search.value = st.q;
      els.sort.value = st.sort;
      if (document.activeElement !== els.since) els.since.value = toLocalInput(st.since && Number(st.since));
      if (document.activeElement !== els.until) els.until.value = toLocalInput(st.until && Number(st.until));
      els.compare.classList.toggle("on", !!st.compare);
      els.compare.setAttribute("aria-pressed", st.compare ? "true" : "false");
      ensureOption(els.limit, st.limit, st.limit + " per page");
      fillPidOptions();
      for (const b of els.mode.querySelectorAll("button")) {
        b.classList.toggle("on", b.dataset.mode === st.view);
        b.setAttribute("aria-pressed", b.dataset.mode === st.view ? "true" : "false");
      }
      const metric = st.view === "workers" ? "count" : st.metric;
      for (const b of els.metric.querySelectorAll("button")) {
        b.classList.toggle("on", b.dataset.metric === metric);
        b.setAttribute("aria-pressed", b.dataset.metric === metric ? "true" : "false");
      }
    }
    function fillPidOptions() {
      fillWorkerSelect(els.pid, ["", "All live workers"], st.pid, st.host,
        { hostEntries: true, label: (p, who) => who + (p.alive ? "" : " (dead)") });
    }

    async function load(quiet) {
      const my = ++seq;
      const want = Object.assign({}, st);
      if (!quiet) {
        els.results.dataset.state = "loading";
        if (!data) fill(els.results, loadingBlock("Loading history…"));
        else els.results.classList.add("stale");
      }
      const procsP = loadProcs().catch(() => null);
      try {
        const d = await api("history", {
          q: want.q, sort: want.sort, limit: want.limit, offset: want.offset || null, pid: want.pid || null,
          host: want.host || null, workers: want.view === "workers" && !want.compare ? 1 : null, points: 360,
          since: want.since || null, until: want.until || null,
        });
        await procsP;
        if (my !== seq) return;
        data = d;
        fillPidOptions();
        render(quiet);
        markUpdated();
      } catch (err) {
        if (my !== seq) return;
        if (quiet && data) { showBanner(err); return; }
        data = null;
        els.results.classList.remove("stale");
        els.results.dataset.state = "error";
        fill(els.results, errorBox(err, () => load(false)));
        clear(els.pagerTop); clear(els.pagerBottom); clear(els.summary);
      }
    }

    function render(keepScroll) {
      const y = window.scrollY;
      hideBanner();
      els.results.classList.remove("stale");
      const d = data;
      const total = d.total || 0;
      fill(els.summary, 
        h("span", { id: "type-total", dataset: { total: String(total) } }, fmtInt(total) + (total === 1 ? " type" : " types")),
        st.q ? h("span", null, " matching ", h("code", null, st.q)) : null,
        h("span", { class: "muted" }, (st.pid ? " · pid " + st.pid + (st.host ? " on " + st.host : "") :
          st.host ? " · all workers of " + st.host : st.view === "workers" ? " · every incarnation" :
          d.live === false ? " · merged over the processes alive at the as-of moment" : " · merged over the live workers") +
          (st.view === "workers" ? ", one line per incarnation" : "")),
        d.times && d.times.length ? h("span", { class: "muted", id: "time-range" }, " · " + d.times.length + (d.times.length === 1 ? " point, " : " points, ") +
          fmtRange(d.times[0], d.times[d.times.length - 1])) : null);
      const go = (off) => { set({ offset: Math.max(0, off) }); scrollToResults(); };
      clear(els.pagerTop);
      clear(els.pagerBottom);
      if (total > 0) {
        els.pagerTop.append(pager("pager", d.offset || 0, st.limit, total, "types", go));
        if (total > st.limit) els.pagerBottom.append(pager(null, d.offset || 0, st.limit, total, "types", go));
      }
      clear(els.results);
      els.results.dataset.state = "ready";
      const types = d.types || [];
      if (d.live === false && d.as_of) {
        els.results.append(h("div", { class: "notice", id: "as-of-notice", dataset: { asOf: String(d.as_of) } },
          h("b", null, "As of " + fmtDateTime(d.as_of)),
          d.until ? " (the end of the chosen range)" : " — the last moment a process of this store was alive; none is now.",
          d.since ? " Growth is counted from " + fmtDateTime(d.since) + "." : " Growth is counted from each process's first sample.",
          d.until || d.since ? h("span", null, " ", h("a", { href: toHash(Object.assign({}, st, { since: "", until: "", compare: "", offset: 0 })) }, "Whole history")) : null));
      }
      if (!types.length) {
        let msg;
        if (st.q) msg = h("span", null, "No type matches ", h("code", null, st.q), ".");
        else if (st.offset && total) msg = h("span", null, "This page is past the end. ", h("a", { href: toHash(Object.assign({}, st, { offset: 0 })) }, "Back to the first page"));
        else msg = "No samples yet: the collector stores its first sample after one interval.";
        els.results.append(h("div", { class: "empty" }, msg));
      } else {
        if (st.compare) {
          els.results.append(compareTable(d, types));
        } else {
          const grid = h("div", { class: "cards", id: "cards" });
          for (const t of types) grid.append(card(t));
          els.results.append(grid);
          drawAll();
        }
      }
      if (keepScroll) window.scrollTo(0, y);
    }

    /** Compare two moments: the types ranked by their change from `since`
     * (or each process's first sample) to `until` (or the as-of moment). */
    function compareTable(d, types) {
      const from = d.since ? fmtDateTime(d.since) : "the first sample";
      const to = fmtDateTime(d.as_of);
      const who = st.pid ? "pid " + st.pid + (st.host ? " on " + st.host : "") :
        st.host ? "all workers of " + st.host + ", merged over those alive at " + to : "merged over the processes alive at " + to;
      const rows = types.map((t, i) => {
        const cls = t.growth > 0 ? "up" : t.growth < 0 ? "down" : "flat";
        return h("tr", { dataset: { type: t.name, growth: String(t.growth) } },
          h("td", { class: "num" }, String((d.offset || 0) + i + 1)),
          h("td", null, h("a", { href: hashFor("history", { q: t.name, since: st.since || null, until: st.until || null, pid: st.pid || null, host: st.host || null }) }, breakable(t.name))),
          h("td", { class: "num" }, h("b", { class: "change " + cls }, fmtSigned(t.growth))),
          h("td", { class: "num" }, fmtInt(t.count)),
          h("td", { class: "num" }, fmtBytes(t.bytes)));
      });
      return h("section", { id: "compare", class: "compare" },
        h("h2", { class: "compare-title" }, "Change from " + from + " to " + to),
        h("p", { class: "muted" }, who + ". Pick From and To above, or drag across a chart in the cards view."),
        h("table", { class: "compare-table" },
          h("thead", null, h("tr", null, h("th", null, "#"), h("th", null, "type"), h("th", { class: "num" }, "change"),
            h("th", { class: "num" }, "count at " + to), h("th", { class: "num" }, "size at " + to))),
          h("tbody", null, rows)));
    }

    function seriesFor(t) {
      if (st.view === "workers" && Array.isArray(t.workers)) {
        const alive = new Set((procsData && procsData.procs || []).filter((p) => p.alive).map((p) => incKey(p.pid, p.start)));
        const hostOf = new Map((procsData && procsData.procs || []).map((p) => [incKey(p.pid, p.start), p.host]));
        const many = manyHosts();
        const lines = t.workers.map((w) => ({
          label: (many && hostOf.get(incKey(w.pid, w.start)) ? hostOf.get(incKey(w.pid, w.start)) + " · " : "") + "pid " + w.pid + (procsData && !alive.has(incKey(w.pid, w.start)) ? " (dead)" : ""),
          colour: colourFor(w.pid, w.start), values: w.counts || [], dim: !!procsData && !alive.has(incKey(w.pid, w.start)),
        }));
        return lines.filter((l) => !l.dim).concat(lines.filter((l) => l.dim)); // live ones first (legend, tooltip)
      }
      const bytes = st.metric === "bytes";
      return [{ label: (st.pid ? "pid " + st.pid + (st.host ? " on " + st.host : "") : st.host ? "all workers of " + st.host : "all live workers") + (bytes ? ", size" : ""), colour: "var(--accent)",
        values: (bytes ? t.bytes_series : t.counts) || [] }];
    }

    function card(t) {
      const growthCls = t.growth > 0 ? "up" : t.growth < 0 ? "down" : "flat";
      const objHash = hashFor("objects", Object.assign({ group: t.name }, workerParams(st.pid, st.host)));
      const c = h("article", { class: "type-card", dataset: { type: t.name, count: String(t.count), growth: String(t.growth) } },
        h("header", { class: "card-head" },
          h("a", { class: "type-name", href: objHash, title: t.name + " — show its live objects" }, breakable(t.name)),
          h("a", { class: "btn small ghost objects-link", href: objHash, title: "Live objects of " + t.name }, "Objects →")),
        h("div", { class: "stats" },
          h("span", { class: "stat count", title: data && data.live === false ? "Live objects as of " + fmtDateTime(data.as_of) : "Live objects now" }, h("span", { class: "stat-label" }, "count"), h("b", { class: "value" }, fmtInt(t.count))),
          h("span", { class: "stat growth " + growthCls, title: st.since ? "Growth since " + fmtDateTime(Number(st.since)) : "Growth since the first stored sample" },
            h("span", { class: "stat-label" }, "growth"), h("b", { class: "value" }, fmtSigned(t.growth))),
          t.bytes !== undefined && t.bytes !== null ? h("span", { class: "stat bytes", title: "Shallow size now" },
            h("span", { class: "stat-label" }, "size"), h("b", { class: "value" }, fmtBytes(t.bytes))) : null),
        h("div", { class: "chart" }));
      if (t.growth > 0) c.append(witnessLine(t.name, st.pid, st.host));
      if (st.view === "workers" && Array.isArray(t.workers)) {
        const leg = h("div", { class: "legend" });
        const all = seriesFor(t), MAX_LEGEND = 10;
        for (const se of all.slice(0, MAX_LEGEND)) leg.append(h("span", { class: "legend-item" + (se.dim ? " dim" : "") },
          h("span", { class: "swatch", style: "background:" + se.colour }), se.label));
        if (all.length > MAX_LEGEND) leg.append(h("span", { class: "legend-item more", title: all.slice(MAX_LEGEND).map((x) => x.label).join(", ") },
          "+" + (all.length - MAX_LEGEND) + " more"));
        c.append(leg);
      }
      c._type = t;
      return c;
    }
    function drawAll() {
      if (!data) return;
      for (const c of els.results.querySelectorAll(".type-card")) {
        drawChart(c.querySelector(".chart"), data.times || [], seriesFor(c._type),
          { area: st.view !== "workers", bytes: st.view !== "workers" && st.metric === "bytes",
            onRange: (a, b) => set({ since: String(Math.floor(a)), until: String(Math.ceil(b)), offset: 0 }),
            ariaLabel: (st.metric === "bytes" ? "size" : "count") + " of " + c._type.name + " over time" });
      }
    }
    function refresh() { return load(true); }
    function unmount() { onSearch.cancel(); seq++; }
    return { mount, update, canUpdate, refresh, unmount, redraw: drawAll };
  }

  // ------------------------------------------------------------------ Witnesses
  /** "module demo_app → attribute '_sessions' → list → item[3] → demo_app.Session": a witness path as one line. */
  function heldByText(path) {
    return path.map((st, i) => {
      let node = st.type;
      const m = i === 0 && st.type === "module" && /^<module '([^']*)'/.exec(st.repr || "");
      if (m) node += " " + m[1];
      return (i ? st.via + " → " : "") + node;
    }).join(" → ");
  }
  /** The latest recorded witness of a type (GET /api/witnesses), filled in when it arrives; empty when there is none. */
  function witnessLine(group, pid, host) {
    const el = h("div", { class: "witness", dataset: { state: "loading" } });
    api("witnesses", { group, pid: pid || null, host: host || null, limit: 1 }).then((d) => {
      const w = d.witnesses && d.witnesses[0];
      el.dataset.state = w ? "ready" : "none";
      if (!w) return;
      const text = heldByText(w.path);
      const tip = w.path.map((st, i) => (i ? st.via + " → " : "") + st.type + ": " + st.repr).join("\n") +
        "\n(recorded by pid " + w.pid + " at " + fmtDateTime(w.time) + ")";
      fill(el, h("span", { class: "stat-label" }, "held by"), " ", h("span", { class: "mono witness-path", title: tip }, text));
    }, () => { el.dataset.state = "error"; });
    return el;
  }

  // ------------------------------------------------------------------ Workers view
  function workersView() {
    let seq = 0, els = {};
    function mount(main) {
      els.store = h("section", { class: "panel", id: "store-panel" });
      els.results = h("div", { id: "results", dataset: { state: "loading" } }, loadingBlock("Loading workers…"));
      main.append(h("h1", { class: "page-title" }, "Workers"),
        h("p", { class: "muted lead" }, "Every process incarnation in the store, alive or dead, oldest first (by host, then pid, when there are several hosts). A reused pid is a new incarnation."),
        els.results, els.store);
      load(false);
    }
    async function load(quiet) {
      const my = ++seq;
      try {
        const d = await loadProcs();
        if (my !== seq) return;
        render(d, quiet);
        markUpdated();
        hideBanner();
      } catch (err) {
        if (my !== seq) return;
        if (quiet && els.results.dataset.state === "ready") { showBanner(err); return; }
        els.results.dataset.state = "error";
        fill(els.results, errorBox(err, () => load(false)));
      }
    }
    function render(d, keepScroll) {
      const y = window.scrollY;
      const self = d.self;
      const hosts = hostList(), grouped = hosts.length > 1;
      const procs = grouped ? byHost(d.procs || [], hosts) : d.procs || [];
      const alive = procs.filter((p) => p.alive).length;
      const cols = 11;
      const table = h("table", { class: "table", id: "workers-table" },
        h("thead", null, h("tr", null, ["pid", "status", "started", "last seen", "ended", "samples", "RSS", "interval", "host", "command", ""].map(
          (x) => h("th", { class: ["samples", "RSS", "interval"].includes(x) ? "num" : null }, x)))),
        h("tbody", null, procs.map((p, i) => {
          const hostRow = grouped && (i === 0 || procs[i - 1].host !== p.host) ? hostHeader(p.host || "", procs) : null;
          const wp = workerParams(p.pid, grouped ? p.host : "");
          const isSelf = self && self.pid === p.pid && self.start === p.start;
          const status = p.alive ? "alive" : p.ended ? "ended" : "dead";
          return [hostRow, h("tr", { class: "proc-row " + status + (isSelf ? " self" : ""), dataset: { pid: String(p.pid), start: String(p.start), host: p.host || "", alive: p.alive ? "1" : "0" } },
            h("td", { class: "mono" }, h("span", { class: "swatch", style: "background:" + colourFor(p.pid, p.start) }), String(p.pid),
              isSelf ? h("span", { class: "badge self-badge", title: "This worker answered the request" }, "answering") : null),
            h("td", null, h("span", { class: "badge " + status, title: p.alive ? "running" : p.ended ? "exited cleanly" : "gone without a clean exit (killed?)" }, status)),
            h("td", { title: fmtDateTime(p.started) }, fmtDateTime(p.started)),
            h("td", { title: fmtDateTime(p.last_seen) }, fmtAgo(p.last_seen)),
            h("td", null, p.ended ? fmtDateTime(p.ended) : "–"),
            h("td", { class: "num" }, fmtInt(p.samples)),
            h("td", { class: "num" }, p.rss ? fmtBytes(p.rss) : "–"),
            h("td", { class: "num" }, p.interval ? p.interval + " s" : "–"),
            h("td", null, p.host || "–"),
            h("td", { class: "argv", title: p.argv || "" }, p.argv ? shortArgv(p.argv) : "–"),
            h("td", { class: "actions" }, h("span", { class: "actions-inner" },
              h("a", { href: hashFor("history", wp), class: "btn small ghost" }, "History"),
              p.alive ? h("a", { href: hashFor("objects", wp), class: "btn small ghost" }, "Objects") : null)))];
        })));
      /** The row that opens a host's group: its name, its alive / total workers and a link to its merged history. */
      function hostHeader(host, all) {
        const mine = all.filter((x) => (x.host || "") === host);
        return h("tr", { class: "host-row", dataset: { host } }, h("th", { colspan: String(cols), scope: "rowgroup" },
          h("span", { class: "host-name mono" }, host || "(no host)"),
          h("span", { class: "muted small" }, " · " + mine.filter((x) => x.alive).length + " alive of " + mine.length + " · "),
          h("a", { class: "small", href: hashFor("history", { host: host || null }) }, "history of all its workers")));
      }
      els.results.dataset.state = "ready";
      fill(els.results, 
        h("div", { class: "summary" }, h("b", null, String(alive)), " alive of ", h("b", null, String(procs.length)), " incarnations"),
        procs.length ? h("div", { class: "table-wrap" }, table) : h("div", { class: "empty" }, "No process has written to this store yet."));
      const st = d.store || {};
      const used = st.used_bytes || 0, maxb = st.max_bytes || st.map_size || 0;
      fill(els.store, h("h2", null, "Store"),
        h("dl", { class: "kv" },
          h("dt", null, "path"), h("dd", null, h("code", null, st.path || "–")),
          h("dt", null, "used"), h("dd", null, fmtBytes(used), maxb ? " of " + fmtBytes(maxb) : "",
            maxb ? h("span", { class: "meter" }, h("span", { style: "width:" + Math.min(100, (100 * used) / maxb).toFixed(1) + "%" })) : null),
          h("dt", null, "map size"), h("dd", null, fmtBytes(st.map_size)),
          h("dt", null, "types"), h("dd", null, fmtInt(st.types)),
          h("dt", null, "retention"), h("dd", null, fmtInt(st.max_samples) + " samples, " + fmtDuration(st.max_age_s)),
          h("dt", null, "schema"), h("dd", null, st.schema === undefined ? "–" : String(st.schema))));
      if (keepScroll) window.scrollTo(0, y);
    }
    return { mount, canUpdate: () => true, update: () => load(false), refresh: () => load(true), unmount: () => { seq++; } };
  }

  // ------------------------------------------------------------------ Objects view
  const FETCH_SIZES = [50, 100, 500, 1000, 5000, 10000];
  const OBJ_PAGE_SIZES = [10, 20, 50, 100, 500];
  function objectsView() {
    let st = null, data = null, seq = 0, els = {}, loadedKey = null;
    function readParams(p) {
      return {
        group: (p.get("group") || "").slice(0, 1024),
        pid: /^\d{1,7}$/.test(p.get("pid") || "") ? p.get("pid") : "",
        host: /^\d{1,7}$/.test(p.get("pid") || "") ? hostParam(p) : "",
        fetch: intParam(p, "fetch", 100, 1, 10000),
        page: intParam(p, "page", 20, 1, 10000),
        p: intParam(p, "p", 1, 1, 1e6),
        offset: intParam(p, "offset", 0, 0, 1e9),
      };
    }
    function toHash(x) {
      return hashFor("objects", { group: x.group || null, pid: x.pid || null, host: (x.pid && x.host) || null, fetch: x.fetch, page: x.page,
        p: x.p > 1 ? x.p : null, offset: x.offset || null });
    }
    function set(ch, replace) { navigate(toHash(Object.assign({}, st, ch)), replace); }
    const fetchKey = (x) => [x.group, x.pid, x.host, x.fetch, x.offset].join("\u0000");

    function mount(main, r) {
      st = readParams(r.params);
      els.group = h("input", { id: "group", type: "text", value: st.group, placeholder: "Type name, e.g. app.models.Session",
        spellcheck: "false", autocomplete: "off", "aria-label": "Type name" });
      const submitGroup = () => { if (els.group.value.trim() !== st.group) set({ group: els.group.value.trim(), p: 1, offset: 0 }); };
      els.group.addEventListener("change", submitGroup);
      els.group.addEventListener("keydown", (e) => { if (e.key === "Enter") submitGroup(); });
      els.worker = selectEl("worker", [["", "Answering worker"]], st.pid, (v) => set(Object.assign(parseWorkerValue(v), { p: 1, offset: 0 })), "Worker");
      els.fetch = selectEl("fetch-size", FETCH_SIZES.map((n) => [n, "fetch " + fmtInt(n)]), st.fetch, (v) => set({ fetch: parseInt(v, 10), p: 1, offset: 0 }), "Fetch size");
      els.page = selectEl("obj-page-size", OBJ_PAGE_SIZES.map((n) => [n, n + " per page"]), st.page, (v) => set({ page: parseInt(v, 10), p: 1 }), "Page size");
      els.head = h("div", { class: "bar-row", id: "objects-head" });
      els.witness = h("div", { id: "objects-witness" });
      els.suspect = h("section", { class: "panel suspect-box", id: "suspect-box", hidden: true });
      els.results = h("div", { id: "results", dataset: { state: "loading" } });
      main.append(
        h("section", { class: "toolbar", id: "objects-toolbar" },
          field("Type", els.group, "grow"), field("Worker", els.worker), field("Fetch size", els.fetch), field("Page size", els.page)),
        els.witness, els.suspect, els.head, els.results);
      sync();
      fillWorkers();
      loadProcs().then(fillWorkers, () => {});
      load();
    }
    function sync() {
      if (document.activeElement !== els.group) els.group.value = st.group;
      ensureOption(els.fetch, st.fetch, "fetch " + fmtInt(st.fetch));
      ensureOption(els.page, st.page, st.page + " per page");
      fillWorkers();
    }
    function fillWorkers() {
      const self = procsData && procsData.self;
      fillWorkerSelect(els.worker, ["", "Answering worker"], st.pid, st.host, { alive: true, missing: " (not alive?)",
        label: (p, who) => who + (self && self.pid === p.pid && self.start === p.start ? " (answering)" : "") });
    }
    function canUpdate() { return true; }
    function update(r) {
      st = readParams(r.params);
      sync();
      if (fetchKey(st) !== loadedKey) load(); else if (data) render();
    }
    async function load() {
      const my = ++seq;
      clear(els.head);
      fill(els.witness, st.group ? witnessLine(st.group, st.pid, st.host) : null);
      if (!st.group) { loadedKey = fetchKey(st); data = null; els.suspect.hidden = true; pickType(); return; }
      els.results.dataset.state = "loading";
      fill(els.results, loadingBlock("Asking " + (st.pid ? "pid " + st.pid : "the answering worker") + " for its live " + st.group + " objects…"));
      try {
        const d = await api("objects", { group: st.group, pid: st.pid || null, host: st.host || null, limit: st.fetch, offset: st.offset || null });
        if (my !== seq) return;
        data = d;
        loadedKey = fetchKey(st);
        render();
        if (d.total > 0) suspectBox(els.suspect, d.group || st.group, d.pid, st.host, () => my === seq);
        else els.suspect.hidden = true;
      } catch (err) {
        if (my !== seq) return;
        data = null;
        loadedKey = null;
        els.results.dataset.state = "error";
        fill(els.results, err instanceof ApiError && err.status === 403 ? accessDenied(err) : errorBox(err, load));
      }
    }
    async function pickType() {
      els.results.dataset.state = "ready";
      const list = h("div", { class: "chips", id: "type-chips" }, loadingBlock());
      fill(els.results, h("div", { class: "empty" }, "Choose a type above, or one of the fastest-growing types:"), list);
      try {
        const d = await api("history", { sort: "growth", limit: 30, points: 2, pid: st.pid || null, host: st.host || null });
        clear(list);
        for (const t of d.types || []) list.append(h("a", { class: "chip", href: toHash(Object.assign({}, st, { group: t.name, p: 1, offset: 0 })) },
          h("span", { class: "mono" }, t.name), h("span", { class: "chip-n" + (t.growth > 0 ? " up" : "") }, fmtSigned(t.growth))));
      } catch (err) { fill(list, errorBox(err)); }
    }
    function render() {
      const d = data, objs = d.objects || [];
      const pages = Math.max(1, Math.ceil(objs.length / st.page));
      const p = clamp(st.p, 1, pages);
      const start = (p - 1) * st.page;
      const shown = objs.slice(start, start + st.page);
      const off = d.offset || 0;
      fill(els.head, 
        h("div", { class: "summary" },
          h("b", { class: "mono" }, d.group || st.group), " in ", h("b", { class: "mono", id: "objects-pid" }, "pid " + d.pid),
          st.host ? h("span", { id: "objects-host" }, " on ", h("b", { class: "mono" }, st.host)) : null, ": ",
          h("span", { id: "objects-total", dataset: { total: String(d.total) } }, fmtInt(d.total) + " live"),
          h("span", { class: "muted" }, " · fetched " + (objs.length ? fmtInt(off + 1) + "–" + fmtInt(off + objs.length) : "none"))),
        h("div", { class: "fetch-nav" },
          off > 0 ? h("button", { type: "button", class: "btn small", id: "fetch-prev", onclick: () => set({ pid: String(d.pid), offset: Math.max(0, off - st.fetch), p: 1 }) }, "‹ Fetch previous " + fmtInt(st.fetch)) : null,
          off + objs.length < d.total ? h("button", { type: "button", class: "btn small", id: "fetch-next", onclick: () => set({ pid: String(d.pid), offset: off + objs.length, p: 1 }) }, "Fetch next " + fmtInt(Math.min(st.fetch, d.total - off - objs.length)) + " ›") : null,
          h("button", { type: "button", class: "btn small", id: "objects-reload", title: "Ask the worker again", onclick: load }, "Reload")));
      els.results.dataset.state = "ready";
      clear(els.results);
      if (!objs.length) {
        els.results.append(h("div", { class: "empty" }, "No live ", h("code", null, st.group), " object in pid " + d.pid + " right now (they may have been freed, or live in another worker)."));
        return;
      }
      const go = (o) => { set({ p: Math.floor(o / st.page) + 1 }, true); scrollToResults(); };
      const table = h("table", { class: "table", id: "objects-table" },
        h("thead", null, h("tr", null, h("th", { class: "num idx" }, "#"), h("th", null, "id"), h("th", null, "repr"), h("th", { class: "num" }, "size"))),
        h("tbody", null, shown.map((o, i) => {
          const href = hashFor("object/" + o.id, workerParams(d.pid, st.host));
          const row = h("tr", { class: "obj-row", dataset: { id: String(o.id) } },
            h("td", { class: "num muted idx" }, fmtInt(off + start + i + 1)),
            h("td", { class: "mono" }, h("a", { class: "obj-link", href }, String(o.id))),
            h("td", { class: "repr", title: truncate(o.repr, 2000) }, truncate(o.repr, 200)),
            h("td", { class: "num" }, fmtBytes(o.size)));
          row.addEventListener("click", (e) => { if (!e.target.closest("a") && !window.getSelection().toString()) location.hash = href; });
          return row;
        })));
      els.results.append(pager("obj-pager", start, st.page, objs.length, "fetched", go), h("div", { class: "table-wrap" }, table),
        pager(null, start, st.page, objs.length, "fetched", go));
    }
    return { mount, update, canUpdate, unmount: () => { seq++; } };
  }

  // ------------------------------------------------------------------ Object detail view
  function objectView() {
    let seq = 0, key = null;
    function mount(main, r) { show(main, r); }
    function canUpdate() { return true; }
    function update(r) { const m = $("#main"); clear(m); show(m, r); window.scrollTo(0, 0); }
    function show(main, r) {
      const my = ++seq;
      const id = r.segs[1] || "";
      const pid = /^\d{1,7}$/.test(r.params.get("pid") || "") ? r.params.get("pid") : "";
      const host = pid ? hostParam(r.params) : "";
      key = id + "@" + pid + "@" + host;
      if (!/^\d{1,20}$/.test(id)) {
        main.append(errorBox(new ApiError(400, "“" + id + "” is not an object id.")));
        return;
      }
      const q = workerParams(pid, host);
      const head = h("section", { class: "obj-head", id: "object-head" }, loadingBlock("Loading object " + id + "…"));
      const reprS = h("section", { class: "panel", id: "repr-panel" }, h("h2", null, "repr"), loadingBlock());
      const attrsS = h("section", { class: "panel", id: "attrs-panel" }, h("h2", null, "Attributes"), loadingBlock());
      const pathS = h("section", { class: "panel", id: "path-panel" }, h("h2", null, "Why is it alive?"), loadingBlock("Searching the shortest path from a root…"));
      const parentsS = h("section", { class: "panel", id: "parents-panel" }, h("h2", null, "Parents ", h("span", { class: "muted small" }, "objects that refer to it")), loadingBlock());
      const childrenS = h("section", { class: "panel", id: "children-panel" }, h("h2", null, "Children ", h("span", { class: "muted small" }, "objects it refers to")), loadingBlock());
      const retainedS = h("section", { class: "panel", id: "retained-panel" }, h("h2", null, "Retained"), loadingBlock("Computing the dominator tree of the worker's heap…"));
      const grid = h("div", { class: "detail-grid" },
        h("div", { class: "col" }, reprS, attrsS, pathS),
        h("div", { class: "col" }, retainedS, parentsS, childrenS));
      main.append(head, grid);

      const stillHere = () => my === seq;
      const replaceBody = (sec, ...nodes) => { const t = sec.firstChild; fill(sec, t, ...nodes); };

      api("objects/" + id, q).then((o) => {
        if (!stillHere()) return;
        const pidShown = o.pid !== undefined ? o.pid : pid;
        const type = typeOf(o);
        fill(head, 
          h("div", { class: "crumbs" }, h("a", { href: hashFor("objects", Object.assign({ group: type }, workerParams(pidShown, host))) }, "‹ all " + type + " objects"),
            pidShown ? h("span", { class: "muted" }, " in pid " + pidShown + (host ? " on " + host : "")) : null),
          h("h1", { class: "page-title mono", id: "object-title" }, h("span", { class: "obj-type" }, type), " ", h("span", { class: "muted" }, "#" + o.id)),
          h("div", { class: "stats" },
            h("span", { class: "stat" }, h("span", { class: "stat-label" }, "id"), h("b", { class: "mono", id: "object-id" }, String(o.id))),
            h("span", { class: "stat" }, h("span", { class: "stat-label" }, "pid"), h("b", null, pidShown ? String(pidShown) : "–")),
            h("span", { class: "stat" }, h("span", { class: "stat-label" }, "size"), h("b", null, fmtBytes(o.size))),
            o.obj_name && o.obj_name !== o.type_name ? h("span", { class: "stat" }, h("span", { class: "stat-label" }, "name"), h("b", { class: "mono" }, o.obj_name)) : null));
        replaceBody(reprS, h("pre", { class: "repr-box", id: "repr" }, o.repr));
        const attrs = Object.entries(o.attrs || {});
        replaceBody(attrsS, attrs.length
          ? h("div", { class: "table-wrap" }, h("table", { class: "table kv-table", id: "attrs" },
            h("tbody", null, attrs.map(([k, v]) => h("tr", { class: "attr-row", dataset: { name: k } }, h("th", { class: "mono" }, k), h("td", { class: "repr" }, v))))))
          : h("div", { class: "empty small", id: "attrs" }, "No attributes (no instance __dict__ or slots)."));
        if (o.parents_count !== undefined) parentsS.querySelector("h2").append(h("span", { class: "count-pill" }, fmtInt(o.parents_count)));
        if (o.children_count !== undefined) childrenS.querySelector("h2").append(h("span", { class: "count-pill" }, fmtInt(o.children_count)));
      }, (err) => {
        if (!stillHere()) return;
        if (err instanceof ApiError && err.status === 403) { // the explanation replaces the whole object view
          fill(head, accessDenied(err));
          grid.remove();
          return;
        }
        fill(head, 
          h("div", { class: "crumbs" }, h("a", { href: "#/history", onclick: (e) => { if (history.length > 1) { e.preventDefault(); history.back(); } } }, "‹ back")),
          h("h1", { class: "page-title mono" }, "object " + id, pid ? h("span", { class: "muted" }, " in pid " + pid) : null),
          errorBox(err, () => update(parseHash())));
        if (err instanceof ApiError && err.status === 404) grid.remove(); // the other panels would repeat the error
      });

      api("objects/" + id + "/path", q).then((d) => {
        if (!stillHere()) return;
        if (!d.found || !d.path || !d.path.length) {
          replaceBody(pathS, h("div", { class: "empty small", id: "path", dataset: { found: "0" } },
            "No root (module or running thread's frame) reaches this object: it is kept alive by a reference cycle, by C code, or it is about to be freed."));
          return;
        }
        replaceBody(pathS, h("ol", { class: "path", id: "path", dataset: { found: "1" } }, d.path.map((step, i) =>
          h("li", { class: "path-step" + (i === d.path.length - 1 ? " target" : "") },
            step.via ? h("div", { class: "via" }, "↳ ", h("code", null, step.via)) : h("div", { class: "via root" }, "root"),
            objLink(step.object, d.pid !== undefined ? d.pid : pid, i === d.path.length - 1, host)))));
      }, (err) => { if (stillHere()) replaceBody(pathS, errorBox(err)); });

      retainedPanel(retainedS, id, pid, stillHere, host);
      refList(parentsS, "parents", id, pid, stillHere, host);
      refList(childrenS, "children", id, pid, stillHere, host);
    }
    function objLink(o, pid, current, host) {
      const body = [h("span", { class: "obj-type mono" }, typeOf(o)), h("span", { class: "obj-repr" }, truncate(o.repr, 160)),
        h("span", { class: "obj-size muted" }, fmtBytes(o.size))];
      if (current) return h("span", { class: "obj-link current", dataset: { id: String(o.id) } }, body);
      return h("a", { class: "obj-link", href: hashFor("object/" + o.id, workerParams(pid, host)), dataset: { id: String(o.id) }, title: "id " + o.id }, body);
    }
    function refList(sec, which, id, pid, stillHere, host) {
      const LIMIT = 50;
      const list = h("ul", { class: "obj-list", id: which });
      const more = h("div", { class: "more" });
      let offset = 0;
      const title = sec.firstChild;
      async function page() {
        try {
          const d = await api("objects/" + id + "/" + which, Object.assign(workerParams(pid, host), { offset: offset || null, limit: LIMIT }));
          if (!stillHere()) return;
          if (offset === 0) fill(sec, title, list, more);
          for (const o of d.objects || []) {
            const link = objLink(o, d.pid !== undefined ? d.pid : pid, false, host);
            // How the parent holds this object, or how this object holds the child.
            if (o.via) link.append(h("span", { class: "obj-via mono small muted", title: which === "parents" ? "how it refers to this object" : "how this object refers to it" }, o.via));
            list.append(h("li", null, link));
          }
          offset += (d.objects || []).length;
          clear(more);
          if (!offset) list.replaceWith(h("div", { class: "empty small", id: which }, which === "parents" ? "No tracked object refers to it." : "It refers to no tracked object."));
          else if (offset < d.total) more.append(h("button", { type: "button", class: "btn small", onclick: page }, "Show more (" + fmtInt(d.total - offset) + " left)"));
        } catch (err) {
          if (!stillHere()) return;
          if (offset === 0) fill(sec, title, errorBox(err));
          else fill(more, errorBox(err, page));
        }
      }
      page();
    }
    return { mount, update, canUpdate, unmount: () => { seq++; } };
  }


  // ------------------------------------------------------------------ retained sizes (dominator tree)
  // The three live routes of the dominator tree: the "Retained" panel of the object page, the
  // "Biggest retainers" view (#/retainers?pid=&id=&trail=) and the "Suspect" box of a type's objects.
  // The first request of a worker builds its tree (about a second per million objects); later ones
  // reuse it for a minute (docs/live-objects.md), so drilling down is quick.

  /** A link to an object of the tree: type, repr, retained size (and shallow size). */
  function treeObjLink(o, pid, extra, host) {
    return h("a", { class: "obj-link tree-link", href: hashFor("object/" + o.id, workerParams(pid, host)), dataset: { id: String(o.id) }, title: "id " + o.id },
      h("span", { class: "obj-type mono" }, typeOf(o)), h("span", { class: "obj-repr" }, truncate(o.repr, 160)),
      h("span", { class: "obj-size muted", title: "retained / shallow size" }, o.retained !== undefined ? h("b", null, fmtBytes(o.retained)) : null,
        o.retained !== undefined ? " / " : null, fmtBytes(o.size)), extra || null);
  }

  /** The "Retained" panel of the object page: retained size, immediate dominator, what it retains. */
  function retainedPanel(sec, id, pid, stillHere, host) {
    const title = sec.firstChild;
    api("objects/" + id, Object.assign(workerParams(pid, host), { retained: 1 })).then((o) => {
      if (!stillHere()) return;
      const at = o.pid !== undefined ? o.pid : pid;
      const dom = o.dominator;
      fill(sec, title,
        h("div", { class: "stats" },
          h("span", { class: "stat" }, h("span", { class: "stat-label" }, "retained"),
            h("b", { id: "object-retained", dataset: { bytes: o.retained === null ? "" : String(o.retained) } },
              o.retained === null ? "not in the tree" : fmtBytes(o.retained))),
          h("span", { class: "stat" }, h("span", { class: "stat-label" }, "shallow"), h("b", null, fmtBytes(o.size)))),
        h("p", { class: "small muted" }, "What would be freed if this object went away: itself and everything only it keeps alive."),
        h("div", { class: "dominator", id: "object-dominator" },
          h("span", { class: "stat-label" }, "immediately dominated by"),
          dom ? treeObjLink(dom, at, null, host) : h("span", { class: "muted small" }, o.retained === null ? " –" : " a root (referenced from outside the heap: a module, a running frame, C code)")),
        o.retained !== null ? h("a", { class: "btn small", id: "object-retains", href: hashFor("retainers", Object.assign(workerParams(at, host), { id: o.id })) }, "What it retains ›") : null);
    }, (err) => { if (stillHere()) fill(sec, title, errorBox(err)); });
  }

  /** The "Suspect" box of a type's objects page: the object that retains most of its instances. */
  function suspectBox(box, group, pid, host, stillHere) {
    box.hidden = false;
    box.dataset.state = "loading";
    fill(box, h("h2", null, "Suspect"), loadingBlock("Looking for what holds the " + group + " objects of pid " + pid + " (dominator tree)…"));
    api("suspects", Object.assign({ group, n: 3 }, workerParams(pid, host))).then((d) => {
      if (!stillHere()) return;
      box.dataset.state = "ready";
      const sus = d.suspects || [];
      if (!sus.length) {
        fill(box, h("h2", null, "Suspect"), h("div", { class: "empty small" }, "No object of pid " + d.pid + " holds " + group + " instances in one place."));
        return;
      }
      const best = sus[0];
      const share = d.instances ? Math.round((100 * best.count) / d.instances) : 0;
      fill(box, h("h2", null, "Suspect ", h("span", { class: "muted small" }, "the object that retains the most " + group + " instances")),
        h("div", { class: "suspect-main", id: "suspect", dataset: { id: String(best.object.id), count: String(best.count) } },
          treeObjLink(Object.assign({ retained: best.retained }, best.object), d.pid, null, host),
          h("div", { class: "stats" },
            h("span", { class: "stat" }, h("span", { class: "stat-label" }, "holds"),
              h("b", { id: "suspect-count" }, fmtInt(best.count)), h("span", { class: "muted small" }, " of " + fmtInt(d.instances) + " (" + share + "%)")),
            h("span", { class: "stat" }, h("span", { class: "stat-label" }, "retains"), h("b", { id: "suspect-retained" }, fmtBytes(best.retained))),
            h("a", { class: "btn small", href: hashFor("retainers", Object.assign(workerParams(d.pid, host), { id: best.object.id })) }, "What it retains ›"))),
        h("div", { class: "stat-label" }, "kept alive by"),
        h("ol", { class: "path suspect-path", id: "suspect-path" }, (best.path || []).map((step, i) =>
          h("li", { class: "path-step" + (i === best.path.length - 1 ? " target" : "") },
            step.via ? h("div", { class: "via" }, "↳ ", h("code", null, step.via)) : h("div", { class: "via root" }, "root"),
            treeObjLink(step.object, d.pid, null, host)))),
        sus.length > 1 ? h("details", { class: "more-suspects" }, h("summary", null, "Other suspects (" + (sus.length - 1) + ")"),
          h("ul", { class: "obj-list" }, sus.slice(1).map((x) => h("li", null, treeObjLink(Object.assign({ retained: x.retained }, x.object), d.pid,
            h("span", { class: "obj-via small muted" }, "holds " + fmtInt(x.count)), host))))) : null);
    }, (err) => {
      if (!stillHere()) return;
      box.dataset.state = "error";
      fill(box, h("h2", null, "Suspect"), errorBox(err, () => suspectBox(box, group, pid, host, stillHere)));
    });
  }

  /** #/retainers?pid=&id=&trail=: the dominator tree of one worker, drilled down one level at a time. */
  function retainersView() {
    let seq = 0;
    const LIMIT = 50;
    function mount(main, r) { show(main, r); }
    function canUpdate() { return true; }
    function update(r) { const m = $("#main"); clear(m); show(m, r); window.scrollTo(0, 0); }
    function show(main, r) {
      const my = ++seq;
      const stillHere = () => my === seq;
      const p = r.params;
      const pid = /^\d{1,7}$/.test(p.get("pid") || "") ? p.get("pid") : "";
      const host = pid ? hostParam(p) : "";
      const wp = (x) => workerParams(x, host);
      const id = /^\d{1,18}$/.test(p.get("id") || "") ? p.get("id") : "";
      const trail = (p.get("trail") || "").split(",").filter((x) => /^\d{1,18}$/.test(x)).slice(-20);
      const worker = h("select", { id: "retainers-worker", "aria-label": "Worker" });
      const fillWorkers = () => fillWorkerSelect(worker, ["", "Answering worker"], pid, host, { alive: true, label: (pr, who) => who });
      fillWorkers();
      loadProcs().then(() => { if (stillHere()) fillWorkers(); }, () => {});
      worker.addEventListener("change", () => { const w = parseWorkerValue(worker.value); navigate(hashFor("retainers", workerParams(w.pid, w.host))); });
      const head = h("div", { class: "bar-row", id: "retainers-head" });
      const results = h("div", { id: "results", dataset: { state: "loading" } },
        loadingBlock("Asking " + (pid ? "pid " + pid + (host ? " on " + host : "") : "the answering worker") + " for its dominator tree (the first request takes a snapshot of its heap)…"));
      main.append(h("h1", { class: "page-title" }, "Biggest retainers"),
        h("p", { class: "muted small" }, "Each object with what it alone keeps alive (its retained size), largest first. Click a row to see what it retains."),
        h("section", { class: "toolbar" }, field("Worker", worker)), head, results);
      let offset = 0;
      async function page() {
        try {
          const d = await api("retainers", Object.assign(wp(pid), { id: id || null, offset: offset || null, limit: LIMIT }));
          if (!stillHere()) return;
          const at = String(d.pid);
          if (offset === 0) {
            const crumbs = h("nav", { class: "crumbs tree-crumbs", id: "retainers-crumbs" },
              h("a", { href: hashFor("retainers", wp(at)) }, "heap of pid " + at + (host ? " on " + host : "")));
            trail.forEach((t, i) => crumbs.append(" › ", h("a", { href: hashFor("retainers", Object.assign(wp(at), { id: t, trail: trail.slice(0, i).join(",") || null })) }, "#" + t)));
            if (d.id !== null) crumbs.append(" › ", h("a", { href: hashFor("object/" + d.id, wp(at)) }, "#" + d.id));
            fill(head, h("div", { class: "summary" }, crumbs,
              h("div", { class: "muted small" }, (d.id === null ? "whole heap" : "retains") + " ",
                h("b", { id: "retainers-retained", dataset: { bytes: String(d.retained) } }, fmtBytes(d.retained)),
                " · " + fmtInt(d.total) + " dominated " + (d.total === 1 ? "object" : "objects") + " below · tree of " + fmtInt(d.objects_in_tree) +
                " objects, built " + Math.round(d.tree_age_ms / 1000) + " s ago")));
            fill(results, h("ol", { class: "obj-list retainer-list", id: "retainers" }), h("div", { class: "more" }));
            results.dataset.state = "ready";
          }
          const list = $("#retainers", results), more = results.lastChild;
          const top = (d.objects && d.objects.length && offset === 0) ? d.objects[0].retained : (list.dataset.top ? Number(list.dataset.top) : 1);
          if (offset === 0) list.dataset.top = String(top || 1);
          const nextTrail = id ? trail.concat([id]).join(",") : "";
          for (const o of d.objects || []) {
            const pct = Math.max(0.5, (100 * o.retained) / (Number(list.dataset.top) || 1));
            const drill = hashFor("retainers", Object.assign(wp(at), { id: o.id, trail: nextTrail || null }));
            list.append(h("li", { class: "retainer-row", dataset: { id: String(o.id), retained: String(o.retained) } },
              h("div", { class: "bar", style: "width:" + pct.toFixed(1) + "%" }),
              h("a", { class: "obj-link tree-link drill", href: drill, title: "What it retains" },
                h("span", { class: "obj-type mono" }, typeOf(o)), h("span", { class: "obj-repr" }, truncate(o.repr, 160)),
                h("span", { class: "obj-size" }, h("b", null, fmtBytes(o.retained)))),
              h("a", { class: "small open-object", href: hashFor("object/" + o.id, wp(at)), title: "Open the object" }, "object ›")));
          }
          offset += (d.objects || []).length;
          clear(more);
          if (!offset) fill(results, h("div", { class: "empty" }, "It dominates nothing: every object it refers to is also held from elsewhere."));
          else if (offset < d.total) more.append(h("button", { type: "button", class: "btn small", id: "retainers-more", onclick: page }, "Show more (" + fmtInt(d.total - offset) + " left)"));
        } catch (err) {
          if (!stillHere()) return;
          results.dataset.state = "error";
          fill(results, errorBox(err, () => update(parseHash())));
        }
      }
      page();
    }
    return { mount, update, canUpdate, unmount: () => { seq++; } };
  }

  const VIEWS = { history: historyView, workers: workersView, objects: objectsView, object: objectView, retainers: retainersView };

  // ------------------------------------------------------------------ banner (errors during auto-refresh)
  function showBanner(err) {
    const b = $("#banner");
    fill(b, errorBox(err));
    b.firstChild.append(h("span", { class: "muted small" }, " — showing the last data received; auto-refresh keeps trying."));
    b.hidden = false;
  }
  function hideBanner() { $("#banner").hidden = true; }

  // ------------------------------------------------------------------ auto-refresh
  const REFRESH_MS = 10000;
  const autoBox = $("#auto-refresh");
  let autoOn = true;
  try { autoOn = localStorage.getItem("pyloot.autoRefresh") !== "0"; } catch (e) { /* storage disabled */ }
  autoBox.checked = autoOn;
  autoBox.addEventListener("change", () => {
    autoOn = autoBox.checked;
    try { localStorage.setItem("pyloot.autoRefresh", autoOn ? "1" : "0"); } catch (e) { /* ignore */ }
  });
  setInterval(() => {
    if (!autoOn || document.hidden || inflight > 0 || !current || !current.view.refresh) return;
    if (!$("#tooltip").hidden) return; // do not redraw under the user's pointer
    current.view.refresh();
  }, REFRESH_MS);

  let lastWidth = window.innerWidth;
  window.addEventListener("resize", debounce(() => {
    if (window.innerWidth === lastWidth) return; // charts depend on the width only
    lastWidth = window.innerWidth;
    hideTip();
    if (current && current.view.redraw) current.view.redraw();
  }, 150));
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", (e) => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    const box = $("#search") || $("#group");
    if (box) { e.preventDefault(); box.focus(); box.select(); }
  });
  window.addEventListener("scroll", hideTip, { passive: true });
  document.body.dataset.loading = "0";
  loadProcs().catch((err) => {
    // A 401 already shows the token form.
    if ((!current || current.name !== "workers") && !(err instanceof ApiError && err.status === 401)) showBanner(err);
  });
  route();
})();
