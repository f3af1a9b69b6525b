"""Growth per request of each route in the UI (web/routes.js), in headless
Chromium against a small fake server: web/ as the pyloot server serves it,
and canned answers of the API that follow the contract of GET /api/routes
(docs/routes.md), so the UI is tested on every case the fit can give: a
route that grows a type, routes that cannot be told apart, a figure that is
noise, no routes at all (404). Screenshots: tests/artifacts/browser-routes-*.png."""
import json
import mimetypes
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from test_browser import UI, browser  # noqa: F401 (browser is a fixture)

from selenium.webdriver.common.by import By  # noqa: E402

WEB = Path(__file__).resolve().parents[2] / "web"
NOW = int(time.time())
PID = 4242

# ------------------------------------------------------------------ the canned answers

TYPES = {
    # One route grows it, clearly: GET /leak, +1.0 per request.
    "leaky.Leak": {"group": "leaky.Leak", "r2": 0.93, "observations": 960, "intercept": 0.5, "routes": [
        {"route": "GET /leak", "requests": 400, "per_request": 1.0, "stderr": 0.02, "contribution": 400.0, "separable": True},
        {"route": "POST /login", "requests": 300, "per_request": 0.1, "stderr": 0.01, "contribution": 30.0, "separable": True},
        {"route": "GET /health", "requests": 1200, "per_request": 0.0, "stderr": 0.001, "contribution": 0.0, "separable": True}]},
    # The top route grows it but moves with another one.
    "app.Pair": {"group": "app.Pair", "r2": 0.8, "observations": 500, "intercept": 0.0, "routes": [
        {"route": "GET /page", "requests": 100, "per_request": 0.5, "stderr": None, "contribution": 50.0, "separable": False},
        {"route": "GET /api/data", "requests": 200, "per_request": 0.1, "stderr": None, "contribution": 20.0, "separable": False},
        {"route": "GET /other", "requests": 50, "per_request": 0.0, "stderr": 0.2, "contribution": 0.0, "separable": True}]},
    # A per-request figure inside its own noise: nothing to say.
    "app.Noise": {"group": "app.Noise", "r2": 0.01, "observations": 300, "intercept": 2.0, "routes": [
        {"route": "GET /a", "requests": 100, "per_request": 0.01, "stderr": 0.05, "contribution": 1.0, "separable": True}]},
    # app.Quiet: no routes for it (404).
}
REQUESTS = {"routes": [{"route": "GET /health", "requests": 1200}, {"route": "GET /leak", "requests": 400},
                       {"route": "POST /login", "requests": 300}]}


def history_answer():
    times = [NOW - 60 * (9 - i) for i in range(10)]
    types = []
    for i, name in enumerate(["leaky.Leak", "app.Pair", "app.Noise", "app.Quiet", "app.Cache"]):
        counts = [100 * i + 10 * k for k in range(10)]
        types.append({"name": name, "count": counts[-1], "growth": counts[-1] - counts[0], "bytes": 64 * counts[-1],
                      "bytes_growth": 64 * (counts[-1] - counts[0]), "counts": counts,
                      "bytes_series": [64 * c for c in counts], "trend": "levelled" if name == "app.Cache" else "growing"})
    return {"times": times, "total": len(types), "offset": 0, "types": types, "live": True, "as_of": NOW}


def procs_answer():
    return {"store": {"path": "/tmp/fake-store", "schema": 5, "used_bytes": 1 << 20, "max_bytes": 1 << 30,
                      "map_size": 1 << 30, "types": 4, "max_samples": 2880, "max_age_s": 604800},
            "self": {"pid": PID, "start": 1},
            "procs": [{"pid": PID, "start": 1, "alive": True, "host": "web-1", "started": NOW - 600,
                       "last_seen": NOW, "ended": None, "samples": 10, "interval": 60, "rss": 50 << 20,
                       "argv": "gunicorn app:app"}]}


class FakePyloot:
    """The UI and canned API answers under /_pyloot/ on a loopback port."""

    def __init__(self):
        self.routes_queries = []
        self.no_routes = False  # GET /api/routes answers 404 for every query
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, status, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                path = url.path
                if path == "/_pyloot/":
                    return self.send(200, (WEB / "index.html").read_bytes(), "text/html; charset=utf-8")
                if path.startswith("/_pyloot/static/"):
                    f = WEB / path[len("/_pyloot/static/"):]
                    if f.parent != WEB or not f.is_file():
                        return self.send(404, {"error": "no such file"})
                    ctype = "text/javascript" if f.suffix == ".js" else mimetypes.guess_type(f.name)[0] or "text/plain"
                    return self.send(200, f.read_bytes(), ctype)
                api = path[len("/_pyloot/api/"):] if path.startswith("/_pyloot/api/") else None
                if api == "procs":
                    return self.send(200, procs_answer())
                if api == "history":
                    return self.send(200, history_answer())
                if api == "witnesses":
                    return self.send(200, {"witnesses": []})
                if api == "objects":
                    return self.send(200, {"pid": PID, "group": q.get("group"), "total": 0, "offset": 0, "objects": []})
                if api == "routes":
                    fake.routes_queries.append(q)
                    if fake.no_routes:
                        return self.send(404, {"error": "no requests counted by route in this store"})
                    if "group" not in q:
                        return self.send(200, REQUESTS)
                    if q["group"] in TYPES:
                        return self.send(200, TYPES[q["group"]])
                    return self.send(404, {"error": "no requests by route for " + q["group"]})
                return self.send(404, {"error": "no such route"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def fake():
    server = FakePyloot()
    try:
        yield server
    finally:
        server.stop()


def route_line(ui, group):
    return ui.js("""
        const c = [...document.querySelectorAll('.type-card')].find(c => c.dataset.type === arguments[0]);
        const l = c && c.querySelector('.route-line');
        return l && {state: l.dataset.state, text: l.textContent, title: l.title, shown: l.offsetParent !== null};""", group)


def settled(ui, group):
    line = route_line(ui, group)
    return line if line and line["state"] != "loading" else None


def test_history_cards_say_which_route_grows_a_type(browser, fake, artifacts):  # noqa: F811
    ui = UI(browser, fake, artifacts, "routes")
    ui.idle()
    del fake.routes_queries[:]
    ui.go("#/history?sort=growth&pid=%d" % PID)
    ui.wait(lambda d: all(settled(ui, g) for g in ["leaky.Leak", "app.Pair", "app.Noise", "app.Quiet"]), "the route lines")
    leak = route_line(ui, "leaky.Leak")
    assert leak["state"] == "grows" and leak["shown"], leak
    assert leak["text"] == "grows with GET /leak: +1.0 per request", leak
    assert "± 0.020 per request" in leak["title"] and "r² 0.93 over 960 intervals" in leak["title"], leak
    pair = route_line(ui, "app.Pair")
    assert pair["state"] == "apart" and pair["shown"], pair
    assert pair["text"] == "grows with cannot tell routes apart", pair
    assert "GET /page" in pair["title"] and "GET /api/data" in pair["title"], pair
    # Inside its noise, or no routes at all: nothing shown.
    for group in ("app.Noise", "app.Quiet"):
        line = route_line(ui, group)
        assert line["state"] == "none" and not line["shown"] and line["text"] == "", line
    # A levelled type (a filled cache) grows with no route: its card has no line and asks nothing.
    assert route_line(ui, "app.Cache") is None
    # Each card asked for its own type, for the page's worker, after one question for the page: are
    # there routes at all?
    asked = {q["group"]: q for q in fake.routes_queries if "group" in q}
    assert set(asked) == {"leaky.Leak", "app.Pair", "app.Noise", "app.Quiet"}, asked
    assert all(q.get("pid") == str(PID) for q in asked.values()), asked
    assert [q for q in fake.routes_queries if "group" not in q] == [{"pid": str(PID)}], fake.routes_queries
    ui.shot("history")
    # An auto-refresh redraws the cards: the answers of the last 30 s are reused, no fit is asked again.
    before = len(fake.routes_queries)
    updated = ui.js("return document.querySelector('#updated').textContent")
    ui.js("document.querySelector('#auto-refresh').click()")  # on
    ui.wait(lambda d: ui.js("return document.querySelector('#updated').textContent") != updated, "an automatic refresh",
            timeout=25)
    ui.js("document.querySelector('#auto-refresh').click()")  # off again
    ui.idle()
    ui.wait(lambda d: settled(ui, "leaky.Leak"), "the redrawn route line")
    assert route_line(ui, "leaky.Leak")["state"] == "grows"
    assert len(fake.routes_queries) == before, fake.routes_queries[before:]

    # A store without routes: the page asks once, no card asks for its type, no line shows.
    fake.no_routes = True
    del fake.routes_queries[:]
    ui.go("#/history?sort=growth&since=%d" % (NOW - 300))
    ui.wait(lambda d: all(settled(ui, g) for g in ["leaky.Leak", "app.Pair"]), "the route lines")
    assert all(route_line(ui, g)["state"] == "none" for g in ["leaky.Leak", "app.Pair", "app.Noise", "app.Quiet"])
    assert fake.routes_queries == [{"since": str(NOW - 300)}], fake.routes_queries
    assert ui.js_errors() == []


def panel(ui):
    return ui.js("""
        const p = document.querySelector('#routes-panel');
        return p && {state: p.dataset.state, hidden: p.hidden,
            verdict: (p.querySelector('#routes-verdict') || {}).textContent,
            fit: (p.querySelector('#routes-fit') || {}).textContent,
            hint: (p.querySelector('.route-hint') || {}).textContent,
            rows: [...p.querySelectorAll('.route-row')].map(r => [...r.cells].map(c => c.textContent))};""")


def test_type_page_shows_its_routes(browser, fake, artifacts):  # noqa: F811
    ui = UI(browser, fake, artifacts, "routes")
    ui.idle()
    del fake.routes_queries[:]
    ui.go("#/objects?group=leaky.Leak")
    ui.wait(lambda d: (panel(ui) or {}).get("state") == "ready", "the routes panel")
    p = panel(ui)
    assert not p["hidden"]
    assert p["verdict"] == "grows with GET /leak: +1.0 per request", p
    assert "r² 0.93 over 960 intervals" in p["fit"], p
    # Ranked by contribution; share of the growth, the part no route explains last
    # (0.5 per interval x 960 intervals = 480 of 910).
    assert p["rows"] == [["GET /leak", "400", "+1.0 ± 0.020", "44%"],
                         ["POST /login", "300", "+0.10 ± 0.010", "3%"],
                         ["GET /health", "1,200", "0 ± 0.0010", "0%"],
                         ["no route", "–", "+0.50 per interval", "53%"]], p["rows"]
    # Fitted over every worker: the request names no pid.
    assert [q for q in fake.routes_queries if q.get("group") == "leaky.Leak"] == [{"group": "leaky.Leak"}]
    ui.shot("type-page")

    ui.go("#/objects?group=app.Pair")
    ui.wait(lambda d: (panel(ui) or {}).get("state") == "ready", "the routes panel of app.Pair")
    p = panel(ui)
    assert p["verdict"] == "grows with cannot tell routes apart", p
    assert p["rows"][0] == ["GET /page", "100", "+0.50 (with others)", "71%"], p["rows"]
    assert p["rows"][2] == ["GET /other", "50", "0 ± 0.20", "0%"], p["rows"]
    ui.shot("type-page-apart")

    # No routes for the type: the one-line hint, no table, no error.
    ui.go("#/objects?group=app.Quiet")
    ui.wait(lambda d: (panel(ui) or {}).get("state") == "none", "the hint")
    p = panel(ui)
    assert "loot.track_requests(app)" in p["hint"] and p["rows"] == [], p
    assert not ui.js("return document.querySelector('#routes-panel .error-box')")
    ui.shot("type-page-hint")
    assert ui.js_errors() == []


def test_workers_page_requests_by_route(browser, fake, artifacts):  # noqa: F811
    ui = UI(browser, fake, artifacts, "routes")
    ui.go("#/workers")
    ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#requests-panel .request-row"), "the requests by route")
    rows = ui.js("return [...document.querySelectorAll('#requests-panel .request-row')].map(r => [...r.cells].map(c => c.textContent))")
    assert rows == [["GET /health", "1,200", "63%"], ["GET /leak", "400", "21%"], ["POST /login", "300", "16%"]], rows
    assert ui.js("return document.querySelector('#requests-panel .count-pill').textContent") == "1,900"
    ui.shot("workers")
    # A store without routes: the panel is not there at all.
    fake.no_routes = True
    ui.go("#/history")
    ui.go("#/workers")
    ui.wait(lambda d: len([q for q in fake.routes_queries if "group" not in q]) >= 2, "the second ask")
    ui.wait(lambda d: d.execute_script("return document.querySelector('#requests-panel').hidden"), "the panel hidden")
    assert ui.js_errors() == []
