"""The UI on a stopped server's store (served by `pyloot --db`): "as of",
the time-range control with drag-to-zoom on a chart, and the compare view
(merged and per worker). Screenshots in tests/artifacts/browser-asof-*.png."""
import signal
import subprocess
import time

from conftest import free_port, stop_group, wait_for_pyloot, wait_until
from test_browser import LEAK, UI, browser, leak  # noqa: F401 (browser is a fixture)
from test_cli import pyloot_exe

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


class StoreUI(UI):
    """UI against the pyloot command (mounted at /)."""

    def __init__(self, driver, url, artifacts, name):
        self.d = driver
        self.server = None
        self.base = url + "/"
        self.artifacts = artifacts
        self.name = name
        self.width = 1280
        self.d.get(self.base)
        self.d.execute_script("localStorage.setItem('pyloot.autoRefresh', '0')")
        self.d.refresh()
        self.wait(lambda d: d.execute_script("return document.body.dataset.view") == "history", "the UI")


def compare_rows(ui):
    return ui.js("return [...document.querySelectorAll('#compare tbody tr')]"
                 ".map(r => [r.dataset.type, +r.dataset.growth])")


def test_asof_range_and_compare(browser, gunicorn, artifacts):  # noqa: F811
    server = gunicorn(workers=2, interval=0.3)
    server.wait_sampled()
    leaks = leak(server, 40)
    total = sum(leaks.values())

    def counted():
        types = {t["name"]: t for t in server.api("/api/history?q=leaky")["types"]}
        return LEAK in types and types[LEAK]["count"] == total

    wait_until(counted, 30, message="the leaks in the history")
    time.sleep(1.0)
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=20)

    port = free_port()
    proc = subprocess.Popen([pyloot_exe(), "-h", "127.0.0.1", "-p", str(port), "--db", str(server.db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = "http://127.0.0.1:%d" % port

        wait_for_pyloot(url, 20, message="pyloot to listen")
        ui = StoreUI(browser, url, artifacts, "asof")
        ui.idle()
        notice = ui.js("const n = document.querySelector('#as-of-notice'); return n && n.textContent")
        assert notice and notice.startswith("As of"), notice
        assert ui.card(LEAK)["count"] == total
        ui.shot("stopped")

        # Drag across the middle of the first chart: the window becomes since/until.
        overlay = browser.find_element(By.CSS_SELECTOR, ".type-card .chart svg rect.overlay")
        w = overlay.size["width"]
        ActionChains(browser).move_to_element_with_offset(overlay, int(-w * 0.3), 0).click_and_hold() \
            .move_by_offset(int(w * 0.6), 0).release().perform()
        ui.wait(lambda d: "until" in ui.hash_params(), "the dragged range in the URL")
        ui.idle()
        p = ui.hash_params()
        assert float(p["since"]) < float(p["until"])
        assert ui.js("return [document.querySelector('#range-since').value !== '',"
                     " document.querySelector('#range-until').value !== '']") == [True, True]
        as_of = ui.js("return document.querySelector('#as-of-notice').dataset.asOf")
        assert float(as_of) == float(p["until"])
        ui.shot("zoomed")

        # Compare: the whole history, merged, then one worker.
        browser.find_element(By.ID, "range-reset").click()
        ui.idle()
        browser.find_element(By.ID, "compare-toggle").click()
        ui.wait(lambda d: compare_rows(ui), "the compare table")
        # The leak's row carries its change; str (now counted) may grow more and rank above it.
        assert dict(compare_rows(ui)).get(LEAK) == total, compare_rows(ui)
        ui.shot("compare")
        pid = max(leaks, key=leaks.get)
        Select(browser.find_element(By.ID, "pid-filter")).select_by_value(str(pid))
        ui.wait(lambda d: ui.hash_params().get("pid") == str(pid), "the pid in the URL")
        ui.idle()
        ui.wait(lambda d: dict(compare_rows(ui)).get(LEAK) == leaks[pid],
                "pid %d's change (%d)" % (pid, leaks[pid]))
        ui.shot("compare-pid")
        assert ui.js_errors() == []
    finally:
        stop_group(proc, grace=10)
