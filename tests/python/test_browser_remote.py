"""Remote mode in a browser: the central `pyloot` server's UI shows the workers
of a gunicorn server that pushes to it, their merged history and a worker's
live objects (answered by that worker through its poll). Screenshots in
tests/artifacts/browser-remote-*.png."""
from conftest import wait_until
from test_browser import LEAK, browser, leak  # noqa: F401 (browser is a fixture)
from test_browser_asof import StoreUI
from test_remote import TOKEN, Central

from selenium.webdriver.common.by import By  # noqa: E402


def test_central_ui_shows_a_pushing_workers_objects(browser, gunicorn, artifacts, tmp_path):  # noqa: F811
    # With a token: a central server without one forwards no live-object query.
    central = Central(tmp_path / "central-db", tmp_path / "central.log", token=TOKEN)
    central.start()
    try:
        server = gunicorn(workers=2, interval=0.3, env=central.worker_env(PYLOOT_HOST_NAME="web-a"))
        leaks = leak(server, 30)
        total = sum(leaks.values())
        workers = sorted(("web-a", pid) for pid in server.worker_pids())
        wait_until(lambda: central.alive() == workers, 20, message="both workers alive in the central /api/procs")
        wait_until(lambda: central.leak_count() == total, 20, message="the merged count %d" % total)

        # Logged in: the UI's cookie (what its token form sets).
        browser.get(central.url + "/static/app.js")
        browser.add_cookie({"name": "pyloot_token", "value": TOKEN, "path": "/"})
        ui = StoreUI(browser, central.url, artifacts, "remote")
        ui.go("#/history?q=%s" % LEAK)
        ui.wait(lambda d: (ui.card(LEAK) or {}).get("count") == total, "the merged count on the %s card" % LEAK)
        ui.shot("history")

        # One worker's live objects, asked of the central server and answered by that worker.
        pid = max(leaks, key=leaks.get)
        ui.go("#/objects?group=%s&pid=%d&host=web-a" % (LEAK, pid))
        rows = ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#objects-table .obj-row"), "the object rows")
        live = int(ui.js("return document.querySelector('#objects-total').dataset.total"))
        assert live == central.api("/api/objects?group=%s&pid=%d&host=web-a&limit=1" % (LEAK, pid))["total"]
        assert live >= leaks[pid] and len(rows) == min(live, 20)
        assert "Leak" in rows[0].find_element(By.CSS_SELECTOR, "td.repr").text
        ui.shot("objects")

        rows[0].find_element(By.CSS_SELECTOR, "a.obj-link").click()
        ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#attrs .attr-row"), "the object's attributes")
        attrs = ui.js("return Object.fromEntries([...document.querySelectorAll('#attrs .attr-row')]"
                      ".map(r => [r.dataset.name, r.querySelector('td').textContent]))")
        assert attrs["payload"] == "'leak-%s'" % attrs["index"]
        ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#path .path-step"), "the why-alive path")
        steps = ui.js("return [...document.querySelectorAll('#path .path-step')].map(s => s.textContent)")
        assert any("LEAKS" in s for s in steps), steps
        ui.shot("object")
        assert ui.js_errors() == []
    finally:
        central.kill()
