/* pyloot web UI: native ES modules, no build step, no network access other than the API (api.js).
 * This module only wires them together; docs/web-ui.md lists what each one does. */
import { $, debounce, hideTip } from "./dom.js";
import { onUnauthorized } from "./api.js";
import { loadProcs } from "./procs.js";
import { defineViews, route, restart } from "./router.js";
import { showLogin } from "./login.js";
import { startAutoRefresh, redrawOnResize, slashToSearch, procsFailed } from "./shell.js";
import { historyView } from "./view-history.js";
import { workersView } from "./view-workers.js";
import { objectsView } from "./view-objects.js";
import { objectView } from "./view-object.js";
import { retainersView } from "./view-retainers.js";
import { heapView } from "./view-heap.js";
import { memoryView } from "./view-memory.js";
import { tasksView } from "./view-tasks.js";

defineViews({ history: historyView, workers: workersView, memory: memoryView, objects: objectsView, object: objectView,
  retainers: retainersView, heap: heapView, tasks: tasksView });
// After a 401, the token form; once logged in, every view starts again with the cookie.
onUnauthorized((message) => showLogin(message, () => { loadProcs().catch(() => {}); restart(); }));
startAutoRefresh($("#auto-refresh"));
window.addEventListener("hashchange", route);
window.addEventListener("resize", debounce(redrawOnResize, 150));
window.addEventListener("scroll", hideTip, { passive: true });
document.addEventListener("keydown", slashToSearch);
document.body.dataset.loading = "0";
loadProcs().catch(procsFailed);
route();
