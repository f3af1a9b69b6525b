"""The UI behind the access rule in headless Chromium: the token form after
a 401, the history and an object page once logged in, and the explanation
that replaces the object view on a 403 (a request through a proxy, from a
public address). Screenshots: tests/artifacts/browser-access-*.png."""
import time

import pytest

from conftest import wait_until
from test_browser import WAIT, browser  # noqa: F401  (fixture; skips without chromium)
from test_embed import TOKEN, start_server

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

LEAK = "asgi_leaky.Leak"


def wait(driver, cond, what, shot=None):
    try:
        return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(cond)
    except TimeoutException:
        if shot:
            driver.save_screenshot(shot)
        raise AssertionError("timed out waiting for %s at %s" % (what, driver.current_url)) from None


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def shot(driver, artifacts, name):
    height = js(driver, "return Math.max(document.documentElement.scrollHeight, 600)")
    driver.set_window_size(1280, min(height + 160, 4000))
    time.sleep(0.3)
    driver.save_screenshot(str(artifacts / ("browser-access-%s.png" % name)))
    driver.set_window_size(1280, 900)


def test_login_history_and_object_page(browser, artifacts, tmp_path):  # noqa: F811
    server = start_server(tmp_path, ["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "2",
                                     "-b", "127.0.0.1:{port}", "--timeout", "60", "asgi_leaky:app"], 2)
    try:
        leaks = server.leak_everywhere(per_request=20)
        total = sum(leaks.values())
        wait_until(lambda: server.count(LEAK) == total, 30, message="the leaks in the history")
        d = browser
        d.get(server.base + "/")
        js(d, "localStorage.setItem('pyloot.autoRefresh', '0')")
        d.refresh()
        wait(d, lambda d: d.find_elements(By.ID, "login-form"), "the token form")
        shot(d, artifacts, "login")
        d.find_element(By.ID, "login-token").send_keys("wrong-token")
        d.find_element(By.ID, "login-submit").click()
        wait(d, lambda d: "not correct" in d.find_element(By.ID, "login-error").text, "the wrong-token message")
        box = d.find_element(By.ID, "login-token")
        box.clear()
        box.send_keys(TOKEN)
        d.find_element(By.ID, "login-submit").click()
        wait(d, lambda d: not d.find_elements(By.ID, "login-form"), "the form to go")
        js(d, "location.hash = '#/history?q=asgi_leaky&view=workers'")
        wait(d, lambda d: js(d, "return [...document.querySelectorAll('.type-card')].map(c => c.dataset.type)")
             == [LEAK], "the leak's card")
        card_count = js(d, "return +document.querySelector('.type-card').dataset.count")
        assert card_count == total
        # The token lives in an HttpOnly cookie: not readable by the page's scripts.
        assert "pyloot_token" not in js(d, "return document.cookie")
        shot(d, artifacts, "history")

        pid = max(leaks)
        js(d, "location.hash = arguments[0]", "#/objects?group=%s&pid=%d" % (LEAK, pid))
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#objects-table a.obj-link"), "the objects table")
        assert js(d, "return +document.querySelector('#objects-total').dataset.total") == leaks[pid]
        d.find_element(By.CSS_SELECTOR, "#objects-table a.obj-link").click()
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#attrs .attr-row"), "the object's attributes")
        attrs = js(d, "return Object.fromEntries([...document.querySelectorAll('#attrs .attr-row')]"
                      ".map(r => [r.dataset.name, r.querySelector('td').textContent]))")
        assert attrs["payload"].startswith("'leak-")
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#path[data-found='1']"), "the path from a root")
        shot(d, artifacts, "object")
        assert [e for e in d.get_log("browser") if e["level"] == "SEVERE"
                and "Failed to load resource" not in e["message"]] == []
    finally:
        server.stop()


def test_forbidden_object_view_explains(browser, artifacts, tmp_path):  # noqa: F811
    server = start_server(tmp_path, ["uvicorn", "--host", "127.0.0.1", "--port", "{port}", "asgi_leaky:app"], 1,
                          token=None, ready_headers=None)
    try:
        server.get("/leak?n=5")
        wait_until(lambda: server.count(LEAK, headers=None) == 5, 20, message="the leak in the history")
        d = browser
        # Every request of the page as if a proxy had forwarded it from a public address.
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": "203.0.113.7"}})
        d.get(server.base + "/#/history?q=asgi_leaky")
        wait(d, lambda d: js(d, "return document.querySelectorAll('.type-card').length") >= 1, "the history")
        obj = server.api("/api/objects?group=%s&limit=1" % LEAK, headers=None)["objects"][0]
        js(d, "location.hash = arguments[0]", "#/object/%s" % obj["id"])
        wait(d, lambda d: d.find_elements(By.ID, "access-denied"), "the 403 explanation")
        text = d.find_element(By.ID, "access-denied").text
        assert "PyLoot(token=...)" in text and "allow" in text
        assert not d.find_elements(By.ID, "attrs") and not d.find_elements(By.ID, "login-form")
        shot(d, artifacts, "forbidden")
    finally:
        server.stop()
