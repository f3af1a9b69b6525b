"""Allocation sites in the web UI (web/allocations.js): the objects page of a
traced type lists its top sites, and an object's page says where it was
created. Headless Chromium as in test_browser.py."""
import pytest

from test_browser import LEAK, UI, browser, leak  # noqa: F401 (browser is a fixture)
from test_alloc_sites import leak_line

pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402


def test_sites_on_the_objects_page_and_created_at_on_the_object_page(browser, gunicorn, artifacts):  # noqa: F811
    server = gunicorn(workers=2, env={"PYLOOT_TEST_TRACE": LEAK})
    leak(server, 20)
    ui = UI(browser, server, artifacts, "alloc")
    ui.go("#/objects?group=%s" % LEAK)
    where = "leaky.py:%d in " % leak_line()
    sel = '#objects-alloc .alloc-sites[data-state="ready"] .alloc-site'
    sites = ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, sel), "the allocation sites of %s" % LEAK)
    assert where in sites[0].text and "live" in sites[0].text, sites[0].text
    ui.shot("objects-alloc")

    ui.d.find_element(By.CSS_SELECTOR, "#objects-table .obj-row a.obj-link").click()
    line = ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#object-created-at"), "created at")[0].text
    assert line.lower().startswith("created at") and where in line, line
    ui.shot("object-created-at")
    assert ui.js_errors() == []


def test_the_history_card_says_where_the_witness_was_created(browser, gunicorn, artifacts):  # noqa: F811
    """The card has no sites list: the witness's own site is its second line."""
    from test_witness import leak_until_witnessed

    server = gunicorn(workers=1, interval=0.3, env={"PYLOOT_TEST_TRACE": LEAK})
    leak_until_witnessed(server)
    ui = UI(browser, server, artifacts, "alloc-card")
    ui.go("#/history?q=%s" % LEAK)
    sel = '.type-card[data-type="%s"] .witness[data-state="ready"] .witness-site' % LEAK
    line = ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, sel), "the witness's site on the card")[0].text
    assert line.lower().startswith("created at") and "leaky.py:%d in " % leak_line() in line, line
    ui.shot("history-witness-site")
    assert ui.js_errors() == []
