"""The referrers graph in a real browser (web/graph-picture.js, web/graph-panel.js): on an object's page
from /api/objects/<id>/graph, and a witness's stored path drawn the same way. Screenshots go to
tests/artifacts/browser-graph-*.png."""
import pytest

from test_browser import LEAK, UI, browser  # noqa: F401 (browser is a fixture)
from selenium.webdriver.common.by import By

GRAPH_NODES = "#graph-panel svg .graph-node"


@pytest.fixture
def page(browser, gunicorn, artifacts):  # noqa: F811
    server = gunicorn(workers=2)
    server.leaks = server.leak_everywhere(per_request=35, rounds=2)
    ui = UI(browser, server, artifacts, "graph")
    yield ui
    assert ui.js_errors() == [], "JavaScript errors in the page"


def show_panel(ui):
    """The panel at the top of the window, under the sticky header."""
    ui.js("window.scrollTo(0, document.querySelector('#graph-panel').getBoundingClientRect().top + window.scrollY - 60)")


def drawn(ui):
    return ui.js("""return [...document.querySelectorAll(arguments[0])].map(g => ({
        id: g.dataset.id, depth: +g.dataset.depth, cls: g.getAttribute('class'),
        text: g.textContent}))""", GRAPH_NODES)


def test_object_page_draws_what_holds_it_and_its_nodes_open_their_pages(page):
    ui = page
    pid = sorted(ui.server.leaks)[0]
    oid = ui.server.api("/api/objects?group=%s&pid=%d&limit=1" % (LEAK, pid))["objects"][0]["id"]
    want = ui.server.api("/api/objects/%s/graph?pid=%d" % (oid, pid))
    ui.go("#/object/%s?pid=%d" % (oid, pid))
    ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, GRAPH_NODES), "the referrers graph")
    nodes = drawn(ui)
    assert len(nodes) == len(want["nodes"]) == 3  # the Leak, the LEAKS list, the module
    assert {n["id"] for n in nodes} == {n["id"] for n in want["nodes"]}
    target = [n for n in nodes if "target" in n["cls"]]
    assert [n["id"] for n in target] == [oid] and "this object" in target[0]["text"]
    # The path from the root is highlighted: every node and both edges of module -> list -> Leak.
    assert all("on-path" in n["cls"] for n in nodes)
    assert len(ui.d.find_elements(By.CSS_SELECTOR, "#graph-panel svg path.graph-edge.on-path")) == 2
    labels = ui.js("return [...document.querySelectorAll('#graph-panel .graph-label.on-path text')].map(t => t.textContent)")
    assert "attribute 'LEAKS'" in labels and any(x.startswith("item[") for x in labels), labels
    root = [n for n in nodes if "root" in n["cls"].split()]
    assert len(root) == 1 and "module" in root[0]["text"] and root[0]["depth"] == 2
    # Laid out in columns: the root left of the list, the list left of the object.
    xs = ui.js("""return Object.fromEntries([...document.querySelectorAll(arguments[0])].map(g =>
        [g.dataset.id, g.getBoundingClientRect().left]))""", GRAPH_NODES)
    by_depth = sorted(nodes, key=lambda n: -n["depth"])
    assert xs[by_depth[0]["id"]] < xs[by_depth[1]["id"]] < xs[by_depth[2]["id"]]
    show_panel(ui)
    ui.shot("object", full=False)
    ui.js("window.scrollTo(0, 0)")

    # Depth 1: only the list (and the path, which is always there).
    ui.d.find_element(By.CSS_SELECTOR, '#graph-panel button[data-depth="1"]').click()
    ui.wait(lambda d: d.execute_script("return document.querySelector('#graph-panel button.on').dataset.depth") == "1",
            "depth 1 chosen")
    ui.wait(lambda d: len(drawn(ui)) == 3, "the depth-1 graph")

    # A node opens its object's page: the list.
    (holder,) = [n for n in nodes if n["depth"] == 1]
    ui.d.find_element(By.CSS_SELECTOR, '#graph-panel a.graph-link g[data-id="%s"] rect' % holder["id"]).click()
    ui.wait(lambda d: d.execute_script("return document.querySelector('#object-id')?.textContent") == holder["id"],
            "the list's page")
    ui.wait(lambda d: any("target" in n["cls"] and n["id"] == holder["id"] for n in drawn(ui)), "the list's graph")
    show_panel(ui)
    ui.shot("list", full=False)


def test_sixty_nodes_stay_readable(page):
    """The class of the leaked objects: every instance refers to it, the graph is cut at 60."""
    ui = page
    pid = max(ui.server.leaks, key=ui.server.leaks.get)
    assert ui.server.leaks[pid] > 60
    oid = ui.server.api("/api/objects?group=%s&pid=%d&limit=1" % (LEAK, pid))["objects"][0]["id"]
    children = ui.server.api("/api/objects/%s/children?pid=%d" % (oid, pid))["objects"]
    (cls,) = [c for c in children if c["type_name"] == "type" and c["obj_name"] == "Leak"]
    ui.go("#/object/%s?pid=%d" % (cls["id"], pid))
    ui.wait(lambda d: len(drawn(ui)) == 60, "60 nodes")
    assert "cut at 60 objects" in ui.d.find_element(By.CSS_SELECTOR, "#graph-panel .graph-legend").text
    # No two boxes overlap.
    boxes = ui.js("""return [...document.querySelectorAll(arguments[0] + ' rect')].map(r => {
        const b = r.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })""", GRAPH_NODES)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    # The object is in view at first (the right end of a wide picture), its full repr a hover away.
    right = ui.js("""const g = document.querySelector(arguments[0] + '.target').getBoundingClientRect();
        const c = document.querySelector('#graph-panel .graph-scroll').getBoundingClientRect();
        return g.left >= c.left && g.right <= c.right""", GRAPH_NODES)
    assert right
    ui.d.execute_script("""const g = document.querySelector(arguments[0] + '.target');
        const r = g.getBoundingClientRect();
        g.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + 5, clientY: r.top + 5, bubbles: true}));""",
                        GRAPH_NODES)
    tip = ui.wait(lambda d: d.find_element(By.ID, "tooltip").is_displayed() and d.find_element(By.ID, "tooltip").text,
                  "the tooltip")
    assert "<class 'leaky.Leak'>" in tip
    show_panel(ui)
    ui.shot("sixty", full=False)


def test_witness_path_is_drawn_the_same_way(browser, gunicorn, artifacts):  # noqa: F811
    from test_witness import leak_until_witnessed

    server = gunicorn(workers=2, interval=0.3)
    leak_until_witnessed(server)
    ui = UI(browser, server, artifacts, "graph")
    ui.go("#/objects?group=%s" % LEAK)
    button = ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#objects-witness .witness-picture"), "the picture button")
    witness = server.api("/api/witnesses?group=%s&limit=1" % LEAK)["witnesses"][0]
    button[0].click()
    sel = "#objects-witness .witness-graph svg .graph-node"
    nodes = ui.wait(lambda d: d.find_elements(By.CSS_SELECTOR, sel), "the witness picture")
    assert len(nodes) == len(witness["path"])
    assert all("on-path" in n.get_attribute("class") for n in nodes)
    assert not ui.d.find_elements(By.CSS_SELECTOR, "#objects-witness .witness-graph a")  # a stored path: no links
    labels = ui.js("return [...document.querySelectorAll('#objects-witness .graph-label text')].map(t => t.textContent)")
    assert sorted(labels) == sorted(s["via"] for s in witness["path"][1:])
    ui.shot("witness", full=False)
    button[0].click()
    ui.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, sel), "the picture closed")
    assert ui.js_errors() == []
