"""Words of the UI that must not mislead, in headless Chromium: the objects
page on the `pyloot` command asks a live worker (or says none is alive and
shows the witness), retention as time at the real interval, the worker that
serves the page told apart from the one the objects live in, a witness
hidden by a 403 says so, the first and next sample announced while the
history has fewer than two points. Screenshots:
tests/artifacts/browser-words-*.png."""
import re
import subprocess
import time

from conftest import http, stop_group, wait_for_pyloot, wait_until, free_port
from test_browser import LEAK, UI, browser  # noqa: F401 (browser is a fixture)
from test_cli import pyloot_exe
from test_witness import leak_until_witnessed

from selenium.webdriver.common.by import By  # noqa: E402


class CommandUI(UI):
    """The UI as the `pyloot` command serves it (at /, not /_pyloot/)."""

    def __init__(self, driver, url, artifacts, name):
        self.d, self.server, self.base, self.artifacts, self.name, self.width = driver, None, url + "/", artifacts, name, 1280
        self.d.get(self.base)
        self.d.execute_script("localStorage.setItem('pyloot.autoRefresh', '0')")
        self.d.refresh()
        self.wait(lambda d: d.execute_script("return document.body.dataset.view") == "history", "the UI")


def serve_store(db):
    port = free_port()
    # Serving the workers' own store: their live objects are asked through its mailbox.
    proc = subprocess.Popen([pyloot_exe(), "-h", "127.0.0.1", "-p", str(port), "--db", str(db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = "http://127.0.0.1:%d" % port
    wait_for_pyloot(url, 20, message="pyloot --db to listen", proc=proc)
    return proc, url


def text(ui, css):
    return ui.js("const e = document.querySelector(arguments[0]); return e ? e.textContent : null", css)


def test_objects_on_the_command_ask_a_live_worker_or_say_none_is(browser, gunicorn, artifacts):  # noqa: F811
    server = gunicorn(workers=2, interval=0.3)
    leak_until_witnessed(server)
    proc, url = serve_store(server.db)
    try:
        ui = CommandUI(browser, url, artifacts, "words")
        # A card's "Objects →" lands on a live worker's objects, not on a 400.
        ui.go("#/history?sort=growth&q=leaky.Leak")
        ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '.type-card[data-type="%s"] .objects-link' % LEAK), "the card")
        ui.js("document.querySelector(arguments[0]).click()", '.type-card[data-type="%s"] .objects-link' % LEAK)
        ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#objects-table .obj-row"), "the objects of a live worker")
        pid = int(ui.hash_params()["pid"])
        assert pid in server.worker_pids()
        assert not ui.js("return document.querySelector('.error-box')")
        assert text(ui, "#objects-pid").startswith("living in pid %d (asked through the pyloot command)" % pid)
        assert ui.js("return document.querySelector('#worker').options[0].textContent") == "A live worker"
        ui.shot("command-objects")
        # No worker alive: said in words, with the witness of the type instead.
        server.stop()
        wait_until(lambda: not any(p["alive"] for p in http(url + "/api/procs").json()["procs"]), 30,
                   message="the workers to be seen dead")
        ui.go("#/history")
        ui.go("#/objects?group=%s" % LEAK)
        ui.wait(lambda d: d.find_elements(By.ID, "no-live-worker"), "the no-live-worker notice")
        assert "No worker of this store is alive now" in text(ui, "#no-live-worker")
        assert ui.js("return document.querySelector('#worker').options[0].textContent") == "No live worker"
        assert not ui.js("return document.querySelector('.error-box')")
        ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '#objects-witness .witness[data-state="ready"]'), "the witness")
        assert text(ui, "#objects-witness .witness-path").startswith("module leaky → attribute 'LEAKS'")
        ui.shot("command-no-worker")
        assert ui.js_errors() == []
    finally:
        stop_group(proc)


def test_retention_serving_worker_and_forbidden_witness(browser, gunicorn, artifacts):  # noqa: F811
    server = gunicorn(workers=1, interval=0.5)
    server.get("/leak?n=5")
    ui = UI(browser, server, artifacts, "words")
    # Retention as time at the interval the workers use: 2,880 samples at 0.5 s are 24 minutes.
    ui.go("#/workers")
    ui.wait(lambda d: d.find_elements(By.ID, "store-retention"), "the store panel")
    assert text(ui, "#store-retention") == "24 min at 0.5 s (2,880 samples per worker; at most 7 d)"
    ui.shot("retention")
    # The worker serving the page and the one the objects live in, in words.
    assert text(ui, "#self-info").startswith("page served by pid ")
    ui.go("#/objects?group=%s" % LEAK)
    ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#objects-table .obj-row"), "the objects")
    pid = server.worker_pids()[0]
    assert text(ui, "#objects-pid") == "living in pid %d (the worker serving this page)" % pid
    ui.shot("living-in")
    # The same page for a request through a proxy: a 403, and the held-by line says it is hidden.
    ui.d.execute_cdp_cmd("Network.enable", {})
    ui.d.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": "203.0.113.7"}})
    ui.go("#/history")
    ui.go("#/objects?group=%s" % LEAK)
    ui.wait(lambda d: d.find_elements(By.ID, "access-denied"), "the 403 explanation")
    ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '#objects-witness .witness[data-state="forbidden"]'),
            "the hidden held-by line")
    hidden = ui.d.find_element(By.CSS_SELECTOR, "#objects-witness .witness-hidden")
    assert hidden.is_displayed() and "hidden" in hidden.text and "403" in hidden.text
    assert "loopback address" in hidden.get_attribute("title")
    assert "loopback address (127.0.0.0/8, ::1)" in text(ui, "#access-denied")
    ui.shot("witness-forbidden")
    ui.d.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})


def test_first_and_next_sample_are_announced(browser, gunicorn, artifacts):  # noqa: F811
    # A long interval: after the sample taken at start, the next one is minutes away.
    server = gunicorn(workers=1, interval=120)
    wait_until(lambda: server.api("/api/procs")["procs"][0].get("samples", 0) >= 1, 30, message="the first sample")
    ui = UI(browser, server, artifacts, "words")
    ui.go("#/history")
    ui.wait(lambda d: d.find_elements(By.ID, "next-sample-note"), "the next-sample note")
    m = re.fullmatch(r" · next sample in (\d+) s \(a line needs two points\)", text(ui, "#next-sample-note"))
    assert m and 0 < int(m.group(1)) <= 120, text(ui, "#next-sample-note")
    first = int(m.group(1))
    cards = ui.js("return [...document.querySelectorAll('.type-card .chart-note')].map(e => e.textContent)")
    assert cards and all(re.fullmatch(r"next sample in \d+ s \(a line needs two points\)", c) for c in cards), cards[:3]
    # It counts down by itself.
    ui.wait(lambda d: int(re.search(r"in (\d+) s", text(ui, "#next-sample-note")).group(1)) < first, "the countdown", 5)
    ui.shot("next-sample", full=False)
    # The rule itself: from the worker's last sample (or its start, before the first) and interval.
    got = ui.d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('./static/sample-wait.js').then((m) => {
          const now = 1000, w = {alive: true, interval: 5, samples: 1, last_seen: 998, started: 990};
          done([m.sampleWaitText(m.nextSample([w], now), now),
                m.sampleWaitText(m.nextSample([Object.assign({}, w, {samples: 0})], 992), 992),
                m.sampleWaitText(m.nextSample([Object.assign({}, w, {last_seen: 980})], now), now),
                m.nextSample([Object.assign({}, w, {alive: false})], now)]);
        }, (e) => done(String(e)));""")
    assert got == ["next sample in 3 s", "first sample in 3 s", "next sample in 5 s", None], got
    assert ui.js_errors() == []
