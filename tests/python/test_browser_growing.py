"""The biggest retainers page in a real browser: the holder of a growing type comes first, marked
with what it holds and why (tests/python/apps/growing.py)."""
from test_browser import UI, browser  # noqa: F401  (the fixture; skips the module without chromium)
from selenium.webdriver.common.by import By
from test_witness_growth import grow_until_witnessed, growing_items, start


def test_retainers_page_marks_the_holder_of_a_growing_type(gunicorn, browser, artifacts):  # noqa: F811
    server = start(gunicorn)
    ids = server.get("/ids").json()
    # The page (its ~30 files) is loaded while the one worker is quiet; later
    # views are in-page navigations, not page loads.
    ui = UI(browser, server, artifacts, "growing")
    with growing_items(server):
        grow_until_witnessed(server, "item", "growing.Item")
        ui.go("#/retainers")
        rows = ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#retainers .retainer-row"), "the biggest retainers")
    holders = [r for r in rows if "growing-holder" in r.get_attribute("class")]
    # The holders come first (other growing types may have one too: a cache that fills up).
    assert rows[:len(holders)] == holders
    items = next(r for r in holders if r.get_attribute("data-id") == str(ids["ITEMS"]))
    badge = items.find_element(By.CSS_SELECTOR, ".growing-badge").text
    assert badge.startswith("holds ") and badge.endswith(" growing.Item"), badge
    assert "growing.Item" in items.find_element(By.CSS_SELECTOR, "a.drill").get_attribute("title")
    # The badge is a column of its own: type, repr and size stay on one line, the type beside the repr.
    t_top, size_top, t_right, repr_left = ui.js("""
        const box = (s) => arguments[0].querySelector(s).getBoundingClientRect();
        const t = box('.obj-type'), r = box('.obj-repr'), z = box('.obj-size');
        return [t.top, z.top, t.right, r.left];""", items)
    assert abs(t_top - size_top) < 8 and t_right <= repr_left + 1, (t_top, size_top, t_right, repr_left)
    # The bars scale to the largest row, not to the first (a holder ranked first is smaller).
    widths = ui.js("return [...document.querySelectorAll('#retainers .bar')].map(b => parseFloat(b.style.width))")
    assert max(widths) == 100.0 and widths[0] < 100.0, widths
    ui.shot("retainers-growing")
    assert ui.js_errors() == []
