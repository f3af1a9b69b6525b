"""The Tasks page and the task panel of the object page, in a real browser
(see test_browser.py), against uvicorn workers of apps/asgi_tasks.py that
leak asyncio tasks. Screenshots: tests/artifacts/browser-tasks-*.png."""
from selenium.webdriver.common.by import By

from test_browser import UI, browser  # noqa: F401 (browser is a fixture)
from test_embed import start_server
from test_tasks import APP_SOURCE, POLL, marker_line


def test_tasks_page_groups_and_the_task_panel(browser, tmp_path, artifacts):
    server = start_server(tmp_path, ["uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", "{port}",
                                     "asgi_tasks:app"], 2, token=None, ready_headers=None)
    try:
        spawned = server.get("/spawn?n=12").json()
        pid = spawned["pid"]
        server.get("/finished")
        ui = UI(browser, server, artifacts, "tasks")
        # The nav link, then the worker's groups: the leaking coroutine first, with its place.
        ui.d.find_element(By.CSS_SELECTOR, "#nav a[data-nav=tasks]").click()
        ui.idle()
        ui.go("#/tasks?pid=%d" % pid)
        ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#tasks-groups tr.task-group"), "the task groups")
        rows = ui.js("return [...document.querySelectorAll('tr.task-group')].map(r => ({c: r.dataset.coroutine, n: +r.dataset.count,"
                     " where: r.querySelector('.task-where') && r.querySelector('.task-where').textContent,"
                     " examples: r.querySelectorAll('a.example').length}))")
        assert rows[0]["c"] == POLL and rows[0]["n"] == spawned["pending_polls"], rows
        assert rows[0]["where"] == "asgi_tasks.py:%d" % marker_line(APP_SOURCE, "AWAIT-NEWS")
        assert rows[0]["examples"] == 5
        assert ui.js("return document.querySelector('#tasks-pid').dataset.pid") == str(pid)
        ui.shot("groups")
        # An example opens the task's object page with its await chain.
        ui.d.find_element(By.CSS_SELECTOR, "tr.task-group a.example").click()
        ui.idle()
        ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#await-chain li"), "the await chain")
        assert ui.js("return document.body.dataset.view") == "object"
        assert ui.js("return document.querySelector('#task-coroutine').textContent") == POLL
        assert ui.js("return document.querySelector('#task-state').textContent") == "pending"
        kinds = ui.js("return [...document.querySelectorAll('#await-chain li')].map(li => li.dataset.kind)")
        assert kinds == ["coroutine", "coroutine", "future"]
        ui.shot("task")
        # The done tasks still held, and the type page's link to this page.
        ui.go("#/tasks?pid=%d&state=done" % pid)
        ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#tasks-groups"), "the done tasks")
        ui.go("#/objects?group=_asyncio.Task&pid=%d" % pid)
        link = ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#objects-tasks-link a"), "the link to the tasks page")[0]
        assert link.get_attribute("href").endswith("#/tasks?pid=%d" % pid)
        assert ui.js_errors() == []
    finally:
        server.stop()
