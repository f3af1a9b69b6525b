/* Formatting: numbers, byte sizes, times and names as the UI shows them. One function per kind of
 * value, so that two pages never show one value two ways. */
import { h } from "./dom.js";

export const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

// ------------------------------------------------------------------ numbers and sizes
const nf = new Intl.NumberFormat("en-US");
export const fmtInt = (n) => (n === null || n === undefined ? "–" : nf.format(n));
export function fmtSigned(n) {
  if (n === null || n === undefined) return "–";
  return n > 0 ? "+" + nf.format(n) : n < 0 ? "−" + nf.format(-n) : "0";
}
const trimZero = (x) => x.replace(/\.0$/, "");
/** A count for an axis label: "950", "12k", "1.5M". */
export function fmtCompact(n) {
  const a = Math.abs(n);
  if (a >= 1e9) return trimZero((n / 1e9).toFixed(a >= 1e10 ? 0 : 1)) + "G";
  if (a >= 1e6) return trimZero((n / 1e6).toFixed(a >= 1e7 ? 0 : 1)) + "M";
  if (a >= 1e4) return trimZero((n / 1e3).toFixed(a >= 1e5 ? 0 : 1)) + "k";
  return nf.format(n);
}
const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
export function fmtBytes(b) {
  if (b === null || b === undefined) return "–";
  let i = 0, v = b;
  while (Math.abs(v) >= 1024 && i < BYTE_UNITS.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 0 : 1)) + " " + BYTE_UNITS[i];
}
/** A change in bytes with its sign: "+1.5 MiB", "-12 B", "0 B". */
export function fmtBytesSigned(b) {
  if (b === null || b === undefined) return "–";
  return (b > 0 ? "+" : b < 0 ? "-" : "") + fmtBytes(Math.abs(b));
}
/** Bytes for an axis label: "512 KiB", "1.5 MiB", "0". */
export function fmtBytesShort(b) {
  if (!b) return "0";
  let i = 0, v = b;
  while (Math.abs(v) >= 1024 && i < BYTE_UNITS.length - 1) { v /= 1024; i++; }
  return trimZero(v.toFixed(v >= 10 || i === 0 ? 0 : 1)) + " " + BYTE_UNITS[i];
}

// ------------------------------------------------------------------ times (local time)
const pad2 = (n) => String(n).padStart(2, "0");
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/** "20:38" or, with secs, "20:38:40". */
export function fmtClock(t, secs) {
  const d = new Date(t * 1000);
  return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + (secs ? ":" + pad2(d.getSeconds()) : "");
}
/** "Nov 21" */
export const fmtDay = (t) => { const d = new Date(t * 1000); return MONTHS[d.getMonth()] + " " + d.getDate(); };
/** "2026-11-21 20:38:40" */
export function fmtDateTime(t) {
  if (t === null || t === undefined) return "–";
  const d = new Date(t * 1000);
  return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + fmtClock(t, true);
}
/** "Nov 21 20:38:40 → 20:38:48", "Nov 20 09:00 → Nov 21 20:38" */
export function fmtRange(t0, t1) {
  const secs = t1 - t0 < 3600;
  const a = fmtDay(t0) + " " + fmtClock(t0, secs);
  return a + " → " + (fmtDay(t0) === fmtDay(t1) ? "" : fmtDay(t1) + " ") + fmtClock(t1, secs);
}
/** "12 s ago", "3 min ago", "1.5 h ago", "2 d ago" */
export function fmtAgo(t) {
  if (t === null || t === undefined) return "–";
  const d = Math.max(0, Date.now() / 1000 - t);
  if (d < 60) return Math.round(d) + " s ago";
  if (d < 3600) return Math.round(d / 60) + " min ago";
  if (d < 86400) return (d / 3600).toFixed(1).replace(/\.0$/, "") + " h ago";
  return (d / 86400).toFixed(1).replace(/\.0$/, "") + " d ago";
}
/** A duration in its largest whole unit: "7 d", "6 h", "90 s". */
export function fmtDuration(sec) {
  if (sec === null || sec === undefined) return "–";
  if (sec % 86400 === 0) return sec / 86400 + " d";
  if (sec % 3600 === 0) return sec / 3600 + " h";
  if (sec % 60 === 0) return sec / 60 + " min";
  return sec + " s";
}
/** A span of time rounded to its unit: "90 s", "24 min", "4 h", "1.5 d". */
export function fmtSpan(sec) {
  if (sec === null || sec === undefined) return "–";
  const one = (x) => x.toFixed(1).replace(/\.0$/, "");
  if (sec < 120) return one(sec) + " s";
  if (sec < 7200) return Math.round(sec / 60) + " min";
  if (sec < 172800) return one(sec / 3600) + " h";
  return one(sec / 86400) + " d";
}
/**
 * The store's retention as time at the workers' real intervals: max_samples per worker at each
 * distinct interval, capped by max_age. "4 h at 5 s (2,880 samples per worker; at most 7 d)".
 */
export function fmtRetention(maxSamples, maxAgeS, intervals) {
  const iv = [...new Set((intervals || []).filter((x) => x > 0))].sort((a, b) => a - b);
  const limits = fmtInt(maxSamples) + " samples per worker; at most " + fmtDuration(maxAgeS);
  if (!iv.length) return limits;
  return iv.map((i) => fmtSpan(Math.min(maxSamples * i, maxAgeS)) + " at " + fmtSpan(i)).join(", ") + " (" + limits + ")";
}
/** unix seconds -> the value of an <input type="datetime-local"> (local time), and back. */
export function toLocalInput(t) {
  if (!t) return "";
  const d = new Date(t * 1000);
  return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + "T" + pad2(d.getHours()) + ":" +
    pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
}
export function fromLocalInput(v) {
  if (!v) return "";
  const t = new Date(v).getTime();
  return isFinite(t) ? String(Math.floor(t / 1000)) : "";
}

// ------------------------------------------------------------------ text and names
export function truncate(str, n) {
  str = String(str);
  return str.length > n ? str.slice(0, n - 1) + "…" : str;
}
/** A dotted name with line-break opportunities after each dot. */
export function breakable(name) {
  const parts = String(name).split(/(?<=\.)/);
  const out = [];
  parts.forEach((p, i) => { if (i) out.push(h("wbr")); out.push(p); });
  return out;
}
/** A command line with the interpreter's directory left out: python3 -m gunicorn ... */
export const shortArgv = (a) => String(a).replace(/^\S*\//, "");
/** An object's type as the history names it: "module.qualname", builtins without the module. */
export const typeOf = (o) => (!o.type_module || o.type_module === "builtins" ? o.type_name : o.type_module + "." + o.type_name);
