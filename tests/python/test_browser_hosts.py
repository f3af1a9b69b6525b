"""The worker selectors with workers of several hosts (remote mode): a `pyloot`
server pushed to (remote_push.py) by two fake hosts whose workers share a pid.
The selectors group the workers by host, a chosen worker is host + pid in the
URL and in every request, and a single host keeps the flat list of pids."""
from remote_push import ENDED, message, now_ms
from test_browser import browser  # noqa: F401 (a fixture)
from test_browser_asof import StoreUI
from test_remote_server import TOKEN, TYPES, Central, sample

from selenium.webdriver.support.ui import Select  # noqa: E402

SESSION = "app.Session"
# (host, pid, sessions): pid 4242 on both hosts; pid=4242 without host= names only one of them.
WORKERS = [("web-b", 4242, 32), ("web-b", 17, 2), ("web-a", 4242, 10), ("web-a", 4243, 5), ("web-a", 99, 7)]
INTERVAL_MS = 60000  # alive for 3 intervals after the last push: the whole test


def push_workers(central, workers):
    t = now_ms()
    for host, pid, n in workers:
        r = central.push(message(host, pid, 777, TYPES, [sample(t - 2000, n - 1), sample(t - 1000, n)],
                                 interval_ms=INTERVAL_MS))
        assert r.status == 200, r.body


def selector(ui, sel_id):
    """The options of a <select>: [(group label or None, value, text)], and the selected value."""
    return ui.js("""
        const s = document.getElementById(arguments[0]);
        return [[...s.options].map(o => [o.parentElement.tagName === 'OPTGROUP' ? o.parentElement.label : null,
                                         o.value, o.textContent]), s.value];""", sel_id)


def session_count(ui):
    card = ui.card(SESSION)
    return card and card["count"]


def test_worker_selectors_group_by_host(browser, tmp_path):  # noqa: F811
    # With a token: the retainers below are a live-object query, which a central server without one
    # does not forward to a pushing worker.
    central = Central(str(tmp_path / "central"), token=TOKEN)
    try:
        # One host: the selector looks as it always did, no group and no host in the URL.
        push_workers(central, [w for w in WORKERS if w[0] == "web-a"])
        browser.get(central.url + "/static/app.js")  # logged in: the UI's cookie
        browser.add_cookie({"name": "pyloot_token", "value": TOKEN, "path": "/"})
        ui = StoreUI(browser, central.url, tmp_path, "hosts")
        ui.go("#/history?q=app.Session")
        ui.wait(lambda d: len(selector(ui, "pid-filter")[0]) == 4, "the workers of one host")
        options, value = selector(ui, "pid-filter")
        assert options == [[None, "", "All live workers"], [None, "99", "pid 99"], [None, "4242", "pid 4242"],
                           [None, "4243", "pid 4243"]]
        Select(browser.find_element("id", "pid-filter")).select_by_value("4243")
        ui.wait(lambda d: ui.hash_params().get("pid") == "4243", "the pid in the URL")
        ui.idle()
        assert "host" not in ui.hash_params() and session_count(ui) == 5

        # Two hosts with the same pid 4242 (and 99 of web-a ended).
        push_workers(central, [w for w in WORKERS if w[0] == "web-b"])
        assert central.push(message("web-a", 99, 777, flags=ENDED, interval_ms=INTERVAL_MS)).status == 200
        ui.go("#/history?q=app.Session")
        ui.wait(lambda d: len(selector(ui, "pid-filter")[0]) == 8, "the workers of two hosts")
        options, value = selector(ui, "pid-filter")
        assert value == "" and session_count(ui) == 49  # every live worker merged
        assert options == [
            [None, "", "All live workers"],
            ["web-a", "@web-a", "All workers of web-a"], ["web-a", "4242@web-a", "pid 4242 on web-a"],
            ["web-a", "4243@web-a", "pid 4243 on web-a"], ["web-a", "99@web-a", "pid 99 on web-a (dead)"],
            ["web-b", "@web-b", "All workers of web-b"], ["web-b", "17@web-b", "pid 17 on web-b"],
            ["web-b", "4242@web-b", "pid 4242 on web-b"]]

        # One line per worker: the two 4242s apart, each named with its host, in two colours.
        ui.go("#/history?q=app.Session&view=workers")
        legend = ui.js("return [...document.querySelectorAll('.type-card .legend-item')]"
                       ".map(i => [i.textContent, i.querySelector('.swatch').style.background])")
        assert sorted(x[0] for x in legend) == ["web-a · pid 4242", "web-a · pid 4243", "web-a · pid 99 (dead)",
                                                "web-b · pid 17", "web-b · pid 4242"]
        assert len({x[1] for x in legend}) == 5
        ui.go("#/history?q=app.Session")

        # Host B's 4242: its own count, not web-a's (which pid=4242 alone would give).
        Select(browser.find_element("id", "pid-filter")).select_by_value("4242@web-b")
        ui.wait(lambda d: ui.hash_params().get("host") == "web-b", "the host in the URL")
        assert ui.hash_params()["pid"] == "4242"
        ui.idle()
        assert session_count(ui) == 32
        ui.shot("history-web-b")
        shot = tmp_path / "browser-hosts-history-web-b.png"
        assert shot.stat().st_size > 10000

        # The hash round-trips: a reload keeps host + pid, and the count with them.
        browser.refresh()
        ui.wait(lambda d: d.execute_script("return document.body.dataset.view") == "history", "the UI again")
        ui.idle()
        ui.wait(lambda d: selector(ui, "pid-filter")[1] == "4242@web-b", "the selection after a reload")
        assert session_count(ui) == 32

        Select(browser.find_element("id", "pid-filter")).select_by_value("4242@web-a")
        ui.wait(lambda d: ui.hash_params().get("host") == "web-a", "web-a in the URL")
        ui.idle()
        assert session_count(ui) == 10

        # All workers of web-a: host= without pid, its live workers merged (99 ended).
        Select(browser.find_element("id", "pid-filter")).select_by_value("@web-a")
        ui.wait(lambda d: "pid" not in ui.hash_params(), "the pid gone from the URL")
        assert ui.hash_params()["host"] == "web-a"
        ui.idle()
        assert session_count(ui) == 15
        assert "all workers of web-a" in ui.js("return document.querySelector('#history-summary').textContent")

        # Workers: one group per host, sorted by pid, links carrying the host.
        ui.go("#/workers")
        rows = ui.js("return [...document.querySelectorAll('#workers-table tbody tr')]"
                     ".map(r => r.classList.contains('host-row') ? 'host ' + r.dataset.host : r.dataset.pid + '@' + r.dataset.host)")
        assert rows == ["host web-a", "99@web-a", "4242@web-a", "4243@web-a", "host web-b", "17@web-b", "4242@web-b"]
        link = ui.js("return document.querySelector('.proc-row[data-host=\"web-b\"][data-pid=\"4242\"] a').getAttribute('href')")
        assert link == "#/history?pid=4242&host=web-b"
        ui.shot("workers")

        # Objects: live workers only, grouped, the chosen one from the URL; the type list asks that worker's history.
        ui.go("#/objects?pid=4242&host=web-b")
        ui.wait(lambda d: len(selector(ui, "worker")[0]) == 5, "the live workers in the objects selector")
        options, value = selector(ui, "worker")
        assert value == "4242@web-b"
        assert [o[:2] for o in options] == [[None, ""], ["web-a", "4242@web-a"], ["web-a", "4243@web-a"],
                                            ["web-b", "17@web-b"], ["web-b", "4242@web-b"]]
        ui.wait(lambda d: d.find_elements("css selector", "#type-chips a.chip"), "the growing types of the worker")
        chip = ui.js("return document.querySelector('#type-chips a.chip').getAttribute('href')")
        assert "pid=4242" in chip and "host=web-b" in chip

        # Retainers: grouped too, and the request names the worker with its host. These fake workers do
        # not answer their poll, so the server answers 504 naming "worker 4242 on host web-b" (without
        # host= it would be a 400: pid 4242 is alive on two hosts).
        ui.go("#/history")
        ui.js("location.hash = arguments[0]", "#/retainers?pid=4242&host=web-b")
        ui.wait(lambda d: selector(ui, "retainers-worker")[1] == "4242@web-b", "the worker in the retainers selector")
        assert [o[1] for o in selector(ui, "retainers-worker")[0]] == ["", "4242@web-a", "4243@web-a", "17@web-b", "4242@web-b"]
        ui.wait(lambda d: d.find_elements("css selector", "#results .error-box"), "the worker's answer (504)")
        err = ui.js("return document.querySelector('#results .error-box').textContent")
        assert "(504)" in err and "worker 4242 on host web-b" in err, err
        assert ui.js_errors() == []
    finally:
        central.stop()
