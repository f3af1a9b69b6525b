"""The Heap view in a real browser (headless Chromium, as test_browser.py):
`pyloot --heap OLD --heap NEW` serves two dumps of this process; the page
shows what grew between them, the top types and the biggest retainers.
The page is saved as tests/artifacts/browser-heap-diff.png: look at it."""
import subprocess

import pytest

import pyloot
from conftest import free_port, http, stop_group, wait_until
from test_browser import WAIT, browser  # noqa: F401  (the fixture)
from test_cli import pyloot_exe

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


class BrowserLeak:
    def __init__(self, i):
        self.i = i
        self.note = "browser-leak-%d" % i


def test_heap_view_shows_the_growth_between_two_dumps(browser, tmp_path, artifacts):  # noqa: F811
    keep = [BrowserLeak(i) for i in range(100)]
    old, new = tmp_path / "old.plheap", tmp_path / "new.plheap"
    pyloot.dump_heap(old)
    keep.extend(BrowserLeak(i) for i in range(100, 400))
    pyloot.dump_heap(new)

    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([pyloot_exe(), "--heap", str(old), "--heap", str(new), "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    url = "http://127.0.0.1:%d" % port
    try:
        def up():
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return http(url + "/api/heap", timeout=2).status == 200
            except OSError:
                return False

        wait_until(up, 30, message="pyloot --heap to listen")
        browser.get(url + "/#/heap")
        wait = WebDriverWait(browser, WAIT)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#heap-type-changes tbody tr"))
        first = browser.find_element(By.CSS_SELECTOR, "#heap-type-changes tbody tr")
        name = "%s.BrowserLeak" % __name__
        assert first.get_attribute("data-type") == name
        cells = [c.text for c in first.find_elements(By.TAG_NAME, "td")]
        assert cells[1] == "+300", cells
        assert browser.find_elements(By.CSS_SELECTOR, "#heap-retainers tbody tr")
        assert browser.find_elements(By.CSS_SELECTOR, "#heap-types tbody tr")
        held = browser.find_element(By.CSS_SELECTOR, "#heap-new-held tbody tr").text
        assert "300" in held and name in held, held
        assert browser.find_element(By.CSS_SELECTOR, "#nav a.active").get_attribute("data-nav") == "heap"
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, min(max(900, height), 4000))
        browser.save_screenshot(str(artifacts / "browser-heap-diff.png"))

        # An upload of the new dump alone: its report, no comparison.
        browser.set_window_size(1280, 900)
        browser.find_element(By.ID, "heap-file").send_keys(str(new))
        browser.find_element(By.CSS_SELECTOR, "#heap-upload button").click()
        wait.until(lambda d: not d.find_elements(By.ID, "heap-diff") and d.find_elements(By.CSS_SELECTOR, "#heap-types tbody tr"))
        assert "new.plheap" in browser.find_element(By.CSS_SELECTOR, ".heap-meta").text
        assert not browser.find_element(By.ID, "results").text.startswith("null")
        browser.save_screenshot(str(artifacts / "browser-heap-upload.png"))
    finally:
        stop_group(proc)
    del keep
