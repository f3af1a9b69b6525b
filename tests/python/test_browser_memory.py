"""The Memory page, the RSS sparklines of the Workers page and the History's
line when RSS grows outside Python objects, in a real browser (see
test_browser.py). Screenshots: tests/artifacts/browser-memory-*.png."""
import time

from conftest import wait_until
from test_browser import UI, browser  # noqa: F401 (browser is a fixture)

from selenium.webdriver.common.by import By  # noqa: E402


def grew_outside_python(server, at_least):
    g = server.api("/api/memory")["merged"]["growth"]
    return g if g and g["outside_python"] and g["rss"] >= at_least else None


def test_memory_page_sparklines_and_history_line(browser, gunicorn, artifacts):
    server = gunicorn(workers=2, interval=0.3)
    server.wait_sampled()
    time.sleep(1)  # a few samples before the leak, so the growth is measured across it
    pid = server.get("/native-leak?mb=48").json()["pid"]
    wait_until(lambda: grew_outside_python(server, 40 << 20), 30, message="the native leak in the merged growth")

    ui = UI(browser, server, artifacts, "memory")
    # The History says in one line that the growth is outside Python objects, and links the Memory page.
    note = ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#memory-note"), "the memory line on the History")[0]
    assert "the growth is outside Python objects" in note.text, note.text
    assert note.text.startswith("RSS +"), note.text
    ui.shot("history-note")
    note.find_element(By.TAG_NAME, "a").click()
    ui.idle()
    assert ui.js("return document.body.dataset.view") == "memory"

    # The Memory page: the merged card and one per worker, each a stacked chart under an RSS line.
    ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#memory-merged .memory-chart svg"), "the merged chart")
    cards = ui.js("return [...document.querySelectorAll('.memory-card')].map(c => ({id: c.id, title: c.querySelector('.type-name').textContent,"
                  " areas: c.querySelectorAll('svg path.area.solid').length, lines: c.querySelectorAll('svg path.line').length}))")
    assert len(cards) == 3, cards
    assert cards[0]["id"] == "memory-merged"
    assert all(c["areas"] == 3 and c["lines"] == 4 for c in cards), cards
    assert any(c["title"] == "pid %d" % pid for c in cards), cards
    figures = ui.js("return Object.fromEntries([...document.querySelectorAll('#memory-merged .stat')].map(s => [s.dataset.figure, s.textContent]))")
    assert set(figures) == {"rss", "python_bytes", "allocator_free_bytes", "other_bytes"}, figures
    assert "+" in figures["other_bytes"], figures
    ui.shot("memory")
    # Hovering the chart shows each part's own value.
    svg = browser.find_element(By.CSS_SELECTOR, "#memory-merged .memory-chart svg")
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(browser).move_to_element_with_offset(svg, svg.size["width"] // 2 - 20, 0).perform()
    tip = ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".tip-row"), "the tooltip")
    labels = [t.text.split("\n")[0] for t in tip]
    assert any("Python objects" in x for x in labels) and any("RSS" in x for x in labels), labels
    ui.shot("memory-tooltip", full=False)

    # One worker.
    ui.go("#/memory?pid=%d" % pid)
    ui.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".memory-card")) == 1, "one card")

    # The Workers page: an RSS sparkline per live worker, linking its Memory page.
    ui.go("#/workers")
    ui.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".proc-row.alive .rss-spark svg polyline")) == 2,
            "a sparkline per live worker")
    href = ui.js("return document.querySelector('.proc-row[data-pid=\"%d\"] .rss-spark').getAttribute('href')" % pid)
    assert href == "#/memory?pid=%d" % pid, href
    ui.shot("workers-sparklines")
    assert ui.js_errors() == []
