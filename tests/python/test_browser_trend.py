"""The trend in the web UI: each card's badge (growing, levelled: a filled cache?, flat) and the
history's Show filter, against a central `pyloot` server holding one pushed worker's series."""
import pytest

from test_browser import browser  # noqa: F401 (a fixture)
from test_browser_asof import StoreUI
from test_remote_server import Central
from remote_push import message, now_ms

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


@pytest.fixture
def central(tmp_path):
    c = Central(str(tmp_path / "central"))
    yield c
    c.stop()


def badges(ui):
    return ui.js("return Object.fromEntries([...document.querySelectorAll('.type-card')].map(c => "
                 "[c.dataset.type, [c.dataset.trend, c.querySelector('.trend-badge').textContent]]))")


def test_trend_badges_and_filter(browser, central, artifacts):  # noqa: F811
    t = now_ms()
    types = {1: "app.Session", 2: "app.Cache", 3: "app.Flat"}
    samples = [(t - 30000 + 1000 * i, {1: (2 * i + 1, 96 * i + 48), 2: (5 * min(i, 8), 400 * min(i, 8)),
                                      3: (100, 3200)}) for i in range(30)]
    assert central.push(message("web-1", 4242, 1, types, samples)).status == 200

    ui = StoreUI(browser, central.url, artifacts, "trend")
    ui.go("#/history?q=app.&sort=growth&limit=20&view=merged")
    got = badges(ui)
    assert got["app.Session"] == ["growing", "growing"], got
    assert got["app.Cache"] == ["levelled", "levelled: a filled cache?"], got
    assert got["app.Flat"] == ["flat", "flat"], got
    ui.shot("badges")

    Select(browser.find_element(By.ID, "trend-filter")).select_by_value("levelled")
    ui.wait(lambda d: ui.hash_params().get("trend") == "levelled", "trend=levelled in the URL")
    ui.idle()
    assert ui.cards() == ["app.Cache"]
    assert ui.js("return document.querySelector('#type-total').textContent") == "1 levelled type"

    # Nothing growing under this name: said so, with the way back.
    ui.go("#/history?q=app.Flat&sort=growth&limit=20&view=merged&trend=growing")
    text = ui.js("return document.querySelector('#no-match').textContent")
    assert text.startswith("No growing type matches app.Flat"), text
    ui.shot("none-growing")
    assert ui.js_errors() == []
