/* Charts: hand-made SVG line charts over time. drawChart() runs one function per phase: the value
 * scale, the frame (geometry), the grid and the time axis, the lines, the hover read-out and the
 * drag that picks a time range. */
import { h, s, clear, showTip, hideTip } from "./dom.js";
import { fmtInt, fmtCompact, fmtBytes, fmtBytesShort, fmtClock, fmtDay, fmtDateTime } from "./format.js";

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200,
  86400, 172800, 259200, 345600, 604800, 1209600, 2592000];

/** The time axis ticks of [t0, t1] for a plot pw pixels wide: [{t, label}], aligned to local time. */
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

/** A round step (1, 2, 2.5 or 5 times a power of ten) that cuts range into about n parts. */
function niceStep(range, n) {
  const raw = range / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

/** The value scale: {yMax, ticks, yFmt (axis labels), vFmt (tooltip values)}, from 0 to the largest value. */
function valueScale(series, bytes) {
  let max = 0;
  for (const se of series) for (const v of se.values) if (v !== null && v !== undefined && v > max) max = v;
  let step;
  if (bytes) { // round steps in binary units: 0, 256 KiB, 512 KiB, ...
    let unit = 1;
    while (max / unit >= 1024) unit *= 1024;
    step = max > 0 ? Math.max(1, niceStep(max / unit, 3) * unit) : 1;
  } else {
    step = max > 0 ? Math.max(1, niceStep(max, 3)) : 1; // counts are whole numbers
  }
  const yMax = Math.max(step, Math.ceil(max / step) * step);
  const ticks = [];
  for (let v = 0; v <= yMax + step / 2; v += step) ticks.push(v);
  return { yMax, ticks, yFmt: bytes ? fmtBytesShort : fmtCompact, vFmt: bytes ? fmtBytes : fmtInt };
}

/** The geometry: size, margins (room for the widest value label), plot area and the X, Y mappings. */
function chartFrame(width, height, times, scale) {
  const W = width, H = height, n = times.length;
  const yLabelW = Math.max(...scale.ticks.map((v) => scale.yFmt(v).length)) * 6.6 + 10;
  const M = { l: Math.ceil(yLabelW), r: 12, t: 8, b: 22 };
  const pw = W - M.l - M.r, ph = H - M.t - M.b;
  let t0 = times[0], t1 = times[n - 1];
  if (t1 - t0 < 1) { t0 -= 30; t1 += 30; }
  const X = (t) => M.l + ((t - t0) / (t1 - t0)) * pw;
  const Y = (v) => M.t + ph - (v / scale.yMax) * ph;
  return { W, H, M, pw, ph, t0, t1, X, Y };
}

/** The horizontal grid lines with their value labels. */
function drawGrid(f, scale) {
  const grid = s("g", { class: "grid" });
  for (const v of scale.ticks) {
    const y = Math.round(f.Y(v)) + 0.5;
    grid.append(s("line", { x1: f.M.l, x2: f.W - f.M.r, y1: y, y2: y }));
    grid.append(s("text", { x: f.M.l - 6, y: y + 3.5, "text-anchor": "end", class: "ylabel" }, scale.yFmt(v)));
  }
  return grid;
}

/** The time axis: its line, ticks and labels (the first and last kept inside the plot). */
function drawTimeAxis(f) {
  const { M, W, H, ph } = f;
  const xt = s("g", { class: "xaxis" });
  xt.append(s("line", { x1: M.l, x2: W - M.r, y1: M.t + ph + 0.5, y2: M.t + ph + 0.5, class: "axis" }));
  for (const tk of timeTicks(f.t0, f.t1, f.pw)) {
    const x = Math.round(f.X(tk.t)) + 0.5;
    xt.append(s("line", { x1: x, x2: x, y1: M.t + ph, y2: M.t + ph + 4, class: "tick" }));
    let anchor = "middle";
    if (x - M.l < 26) anchor = "start";
    else if (W - M.r - x < 26) anchor = "end";
    xt.append(s("text", { x: x, y: H - 6, "text-anchor": anchor, class: "xlabel" }, tk.label));
  }
  return xt;
}

/** One series as path data: the line, the area under it, and a dot for each lone point (a one-sample
 * segment between gaps, which a path would not show). */
function seriesPath(f, times, values, area) {
  const n = times.length;
  let d = "", fillD = "", segStart = -1;
  const dots = [];
  for (let i = 0; i <= n; i++) {
    const v = i < n ? values[i] : null;
    if (v === null || v === undefined) {
      if (segStart >= 0) {
        const a = segStart, b = i - 1;
        if (a === b) dots.push([f.X(times[a]), f.Y(values[a])]);
        if (area) fillD += `L${f.X(times[b]).toFixed(1)},${f.Y(0).toFixed(1)}L${f.X(times[a]).toFixed(1)},${f.Y(0).toFixed(1)}Z`;
        segStart = -1;
      }
      continue;
    }
    const p = `${f.X(times[i]).toFixed(1)},${f.Y(v).toFixed(1)}`;
    if (segStart < 0) { segStart = i; d += "M" + p; fillD += "M" + p; } else { d += "L" + p; fillD += "L" + p; }
  }
  return { d, area: fillD, dots };
}

/** Every series' line (and area), with gaps where a series has no value. */
function drawLines(f, times, series, area) {
  const lines = s("g", { class: "lines" });
  for (const se of series.slice().reverse()) { // the first series ends up on top
    const p = seriesPath(f, times, se.values, area);
    if (area && se.area !== false && p.area) lines.append(s("path", { d: p.area, class: "area" + (se.solid ? " solid" : ""), fill: se.colour }));
    if (p.d) lines.append(s("path", { d: p.d, class: "line" + (se.dim ? " dim" : ""), stroke: se.colour }));
    for (const [x, y] of p.dots) lines.append(s("circle", { cx: x, cy: y, r: 2.5, fill: se.colour }));
  }
  return lines;
}

/** The tooltip's rows at one point: every series, or with many the largest values and a count of the rest. */
function tipRows(series, i, vFmt) {
  const MAX_ROWS = 12;
  let shown = series.map((se) => ({ se, v: (se.tip || se.values)[i] }));
  let hidden = 0;
  if (shown.length > MAX_ROWS) {
    shown = shown.filter((r) => r.v !== null && r.v !== undefined).sort((a, b) => b.v - a.v);
    hidden = series.length - Math.min(shown.length, MAX_ROWS);
    shown = shown.slice(0, MAX_ROWS);
  }
  const rows = shown.map(({ se, v }) => h("div", { class: "tip-row" + (v === null || v === undefined ? " none" : "") },
    h("span", { class: "swatch", style: "background:" + se.colour }), h("span", { class: "tip-label" }, se.label),
    h("b", null, v === null || v === undefined ? "no data" : vFmt(v))));
  if (hidden) rows.push(h("div", { class: "tip-row none" }, "+" + hidden + " more"));
  return rows;
}

/** The hover read-out: a guide line, a mark on each series and the tooltip at the nearest sample.
 * Returns {move(ev), leave()} for the overlay's pointer events. */
function hoverReadout(svg, f, times, series, scale) {
  const n = times.length;
  const guide = s("line", { class: "guide", y1: f.M.t, y2: f.M.t + f.ph, x1: -10, x2: -10 });
  const marks = s("g", { class: "marks" });
  svg.append(guide, marks);
  function nearest(clientX) {
    const r = svg.getBoundingClientRect();
    const t = f.t0 + ((clientX - r.left - f.M.l) / f.pw) * (f.t1 - f.t0);
    let lo = 0, hi = n - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (times[mid] < t) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(times[lo - 1] - t) < Math.abs(times[lo] - t)) lo--;
    return lo;
  }
  function move(ev) {
    const i = nearest(ev.clientX);
    const x = f.X(times[i]);
    guide.setAttribute("x1", x); guide.setAttribute("x2", x);
    clear(marks);
    for (const se of series) {
      const v = se.values[i];
      if (v !== null && v !== undefined) marks.append(s("circle", { cx: x, cy: f.Y(v), r: 3.5, fill: se.colour, class: "mark" }));
    }
    showTip(ev.clientX, ev.clientY, h("div", null, h("div", { class: "tip-time" }, fmtDateTime(times[i])), tipRows(series, i, scale.vFmt)));
  }
  function leave() {
    guide.setAttribute("x1", -10); guide.setAttribute("x2", -10);
    clear(marks);
    hideTip();
  }
  return { move, leave };
}

/** The overlay that takes the pointer: hover read-out, and a drag across it picks a time range
 * (onRange(t0, t1), when given). */
function pointerOverlay(svg, f, readout, onRange) {
  const { M, pw, ph } = f;
  const overlay = s("rect", { x: M.l, y: M.t, width: pw, height: ph, class: "overlay" });
  const band = s("rect", { class: "zoom-band", y: M.t, height: ph, x: -10, width: 0 });
  svg.append(band, overlay);
  let dragX = null;
  const timeAt = (clientX) => {
    const r = svg.getBoundingClientRect();
    const x = Math.min(Math.max(clientX - r.left, M.l), M.l + pw);
    return { x, t: f.t0 + ((x - M.l) / pw) * (f.t1 - f.t0) };
  };
  overlay.addEventListener("pointerdown", (ev) => {
    readout.move(ev);
    if (!onRange) return;
    dragX = timeAt(ev.clientX);
    if (overlay.setPointerCapture && ev.pointerId !== undefined) try { overlay.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic */ }
  });
  overlay.addEventListener("pointermove", (ev) => {
    readout.move(ev);
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
    if (Math.abs(b.x - a.x) >= 6) onRange(Math.min(a.t, b.t), Math.max(a.t, b.t));
  });
  overlay.addEventListener("pointerleave", readout.leave);
}

/**
 * Draw a line chart of `series` ([{label, colour, values, dim, area, solid, tip}]) over `times` (unix
 * seconds) into `box`, sized to the box's width. Hovering shows a guide, the values (a series' `tip`
 * values when it has them: a stacked chart draws cumulative values and shows each part) and the time.
 * opts: {height, area (fill under the lines; a series with area: false is a line only, solid: an
 * opaque fill for stacking), bytes (values are sizes), onRange(t0, t1), ariaLabel}.
 */
export function drawChart(box, times, series, opts) {
  opts = opts || {};
  clear(box);
  if (!times.length) {
    box.append(h("div", { class: "chart-empty" }, "No samples yet"));
    return;
  }
  const scale = valueScale(series, opts.bytes);
  const f = chartFrame(Math.max(220, Math.floor(box.clientWidth || 360)), opts.height || 150, times, scale);
  const svg = s("svg", { width: f.W, height: f.H, viewBox: `0 0 ${f.W} ${f.H}`, class: "chart-svg", role: "img",
    "aria-label": opts.ariaLabel || "chart" });
  svg.append(drawGrid(f, scale), drawTimeAxis(f), drawLines(f, times, series, opts.area));
  pointerOverlay(svg, f, hoverReadout(svg, f, times, series, scale), opts.onRange);
  box.append(svg);
}

/** A sparkline of values (nulls are gaps) as a small inline SVG, w x h pixels; null when fewer than
 * two values are known. */
export function sparkline(values, colour, w, hgt) {
  const known = values.map((v, i) => [i, v]).filter(([, v]) => v !== null && v !== undefined);
  if (known.length < 2) return null;
  let lo = Infinity, hi = -Infinity;
  for (const [, v] of known) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const span = hi - lo || 1, n = values.length;
  const pts = known.map(([i, v]) => ((i / (n - 1)) * (w - 2) + 1).toFixed(1) + "," + (hgt - 1 - ((v - lo) / span) * (hgt - 2)).toFixed(1));
  return s("svg", { width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, class: "sparkline", "aria-hidden": "true" },
    s("polyline", { points: pts.join(" "), fill: "none", stroke: colour, "stroke-width": 1.5 }));
}
