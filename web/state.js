/* The state the views share, behind named accessors: the last /api/procs answer, the view on screen,
 * the requests in flight, the auto-refresh switch and the line colour of each incarnation. Everything
 * a view owns alone (its parameters, its data) stays in the view; what a page shows is in the URL hash. */

let procsData = null;     // the last /api/procs answer: {self, procs: [...], store: {...}}, or null
let current = null;       // the view on screen: {name, view}, or null
let inflight = 0;         // API requests started and not finished
let autoRefresh = true;   // the top bar's Auto-refresh switch
const colourSlots = new Map(); // "pid:start" -> 0, 1, 2 ... in the order incarnations were first seen

export const procs = () => procsData;
export function setProcs(data) { procsData = data; }
/** The incarnations of the last /api/procs answer ([] before the first one). */
export const procList = () => (procsData && procsData.procs) || [];

export const currentView = () => current;
export function setCurrentView(name, view) { current = name ? { name, view } : null; }

/** Count a request in (+1) or out (-1); returns how many are in flight. */
export function addInflight(delta) { inflight += delta; return inflight; }
export const inflightCount = () => inflight;

export const autoRefreshOn = () => autoRefresh;
export function setAutoRefresh(on) { autoRefresh = !!on; }

/** The colour slot of an incarnation: stable for the page's lifetime, so that its line keeps its colour
 * across cards, pages and refreshes. */
export function colourSlot(key) {
  if (!colourSlots.has(key)) colourSlots.set(key, colourSlots.size);
  return colourSlots.get(key);
}
