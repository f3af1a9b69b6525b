/* live_retained.c: the live routes of the dominator tree (docs/http-api.md):
 * an object's retained size and immediate dominator
 * (GET /api/objects/<id>?retained=1), the dominator-tree children of an
 * object or the biggest retainers of the heap (GET /api/retainers), and the
 * leak suspects of a type (GET /api/suspects).
 *
 * The three answer from one tree: a snapshot of the whole heap (a
 * _pyloot.Graph, graph_dom.c's C entry points), taken with the GIL held and
 * gc disabled, then its in-edges, dominator tree and retained sizes built
 * with the GIL released. The tree is computed on demand, never inside a
 * collection, and kept for the next requests (drilling down the tree must
 * not rebuild it on every click): at most one tree per process, reused while
 * it is younger than PL_TREE_REUSE_MS, and dropped once it has not been
 * asked for PL_TREE_IDLE_MS, by the collector thread's loop
 * (pl_live_tree_tick) or by the next request. While kept, the tree's graph
 * holds a reference to every object it saw: they stay alive until it is
 * dropped (docs/live-objects.md, "Retained sizes").
 *
 * An id is looked up among the graph's vertices (pl_graph_lookup compares
 * numbers): it is never dereferenced, and a vertex is alive as long as the
 * graph holds it. Everything here runs with the GIL held, inside
 * pl_live_answer, except the tree building and the suspects search. */
#include "live.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph_int.h"
#include "live_growing.h"
#include "pyloot/json.h"
#include "referents.h"

#define PL_TREE_REUSE_MS 60000 /* a tree older than this is rebuilt by the next request */
#define PL_TREE_IDLE_MS 30000  /* a tree not asked for this long is dropped */

/* The kept tree: a Graph with its dominator tree (made in the arrays of its
 * heap facts, which are gone). Protected by the GIL; tree_expires_ms (0:
 * none kept) is also read without it by pl_live_tree_tick. */
static PlGraphObject *tree;
static int64_t tree_built_ms;
static _Atomic int64_t tree_expires_ms;
static int tree_building; /* a request is building a tree (the GIL released meanwhile) */

#define PL_TREE_WAIT_MS 60000 /* a request waits this long for another's build */

static void drop_tree(void)
{
    PlGraphObject *t = tree;
    tree = NULL;
    atomic_store(&tree_expires_ms, 0);
    Py_XDECREF(t); /* releases a reference to every object of the heap */
}

/* See pyext.h. */
void pl_live_tree_tick(void)
{
    int64_t expires = atomic_load(&tree_expires_ms);
    if (!expires || pl_now_ms() < expires || !Py_IsInitialized() || pl_live_finalizing())
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    double t0 = pl_now_s();
    if (tree && pl_now_ms() >= atomic_load(&tree_expires_ms) && atomic_load(&tree_expires_ms))
        drop_tree();
    pl_gil_held_add(pl_now_s() - t0);
    PyGILState_Release(g);
}

/* The tree to answer from, a new reference: the kept one while fresh (or a
 * new one when `rebuild`), otherwise a new one (kept in turn). *built is 1
 * when the tree was made for this request (or while it waited). NULL with
 * an exception set. */
static PlGraphObject *get_tree(pl_answer *a, int rebuild, int *built)
{
    int fresh_only = rebuild;
    *built = 0;
    /* One build at a time, so that at most one tree (and one being made)
     * exists: a second request waits for the first's and then uses it. */
    for (int64_t until = pl_now_ms() + PL_TREE_WAIT_MS; tree_building;) {
        if (pl_now_ms() >= until) {
            PyErr_SetString(PyExc_TimeoutError, "the dominator tree is still being built");
            return NULL;
        }
        Py_BEGIN_ALLOW_THREADS
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        Py_END_ALLOW_THREADS
        fresh_only = 0; /* the tree just built is as new as can be */
        *built = 1;
    }
    int64_t now = pl_now_ms();
    if (tree && (fresh_only || now - tree_built_ms >= PL_TREE_REUSE_MS ||
                 now >= atomic_load(&tree_expires_ms)))
        drop_tree(); /* before the new snapshot: its references would make every object a root */
    if (tree) {
        atomic_store(&tree_expires_ms, now + PL_TREE_IDLE_MS);
        Py_INCREF(tree);
        return tree;
    }
    *built = 1;
    tree_building = 1;
    a->gc_was_enabled |= PyGC_Disable(); /* the snapshot creates frame objects */
    PlGraphObject *t = pl_objgraph_snapshot_object(NULL);
    pl_answer_end_snapshot(a);
    if (!t) {
        tree_building = 0;
        return NULL;
    }
    /* Out of the gc lists: the live routes walk those lists, and the kept
     * tree would otherwise be a parent of every object. The objects it
     * holds are meant to stay alive while it is kept, so the collector
     * loses nothing by not seeing its references. */
    PyObject_GC_UnTrack(t);
    int rc = 0;
    /* Only this function knows t yet: its arrays are read without the GIL. */
    Py_BEGIN_ALLOW_THREADS
    rc = pl_graph_ensure_reverse(t->graph);
    if (!rc)
        rc = pl_objgraph_dom_build_consume(t->graph, t->heap, &t->dom);
    Py_END_ALLOW_THREADS
    /* The tree took the heap facts' arrays (on failure too, they are
     * spent): what is left of them is of no use to the kept tree. */
    pl_heapinfo_free(t->heap);
    t->heap = NULL;
    tree_building = 0;
    if (rc) {
        Py_DECREF(t);
        pl_raise(NULL, rc, "the graph operation");
        return NULL;
    }
    if (tree) /* cannot happen while builds wait for each other; never keep two */
        drop_tree();
    tree = t;
    Py_INCREF(t);
    tree_built_ms = pl_now_ms();
    atomic_store(&tree_expires_ms, tree_built_ms + PL_TREE_IDLE_MS);
    return t;
}

/* The vertex of q->id in t, or PL_GRAPH_NONE. */
static uint32_t vertex_of_id(const PlGraphObject *t, uint64_t id)
{
    if (id == 0 || id > UINTPTR_MAX)
        return PL_GRAPH_NONE;
    return pl_graph_lookup(t->graph, id);
}

/* Reopens the JSON object just written to add fields (its closing brace). */
static void reopen(pl_buf *b)
{
    if (b->len && b->data[b->len - 1] == '}') {
        b->len--;
        pl_buf_putc(b, ',');
    }
}

/* 1 when p holds c under a secret-looking name (an attribute, a dict key, a
 * local): c's repr is then "<redacted>", as for children and path steps. */
static int held_as_secret(const pl_edge *e)
{
    return (e->kind == PL_EDGE_ATTRIBUTE || e->kind == PL_EDGE_VALUE || e->kind == PL_EDGE_LOCAL) &&
           pl_secret_name(e->key);
}

static int collect_secret(PyObject *child, const pl_edge *e, void *arg)
{
    if (held_as_secret(e) && pl_ptrmap_add(arg, (uintptr_t)child, 0) < 0)
        return 1;
    return 0;
}

/* Writes a summary of v's object with "retained": bytes (its repr
 * "<redacted>" when `secret`). */
static void retained_summary(pl_answer *a, const PlGraphObject *t, uint32_t v, int secret)
{
    pl_buf *b = a->body;
    pl_json_summary_as(&a->repr, b, pl_vertex_obj(t->graph, v), PL_REPR_LIST_CHARS, secret);
    reopen(b);
    pl_json_key(b, "retained");
    pl_json_u64(b, pl_objgraph_retained(t->dom, v));
    pl_buf_putc(b, '}');
}

/* GET /api/objects/<id>?retained=1: the detail, plus "retained" and
 * "dominator" (a summary with its own "retained", or null for a root). An
 * object the tree does not hold (untracked: a str, an int) has both null. */
static int answer_retained(pl_answer *a)
{
    int built;
    PlGraphObject *t = get_tree(a, 0, &built);
    if (!t)
        return -1;
    uint32_t v = vertex_of_id(t, a->q->id);
    if (v == PL_GRAPH_NONE && !built) {
        /* Perhaps newer than the kept tree: a new one, once. */
        Py_DECREF(t);
        if (!(t = get_tree(a, 1, &built)))
            return -1;
        v = vertex_of_id(t, a->q->id);
    }
    int rc = pl_answer_detail(a);
    if (rc == 0 && a->status == 200) {
        pl_buf *b = a->body;
        reopen(b);
        pl_json_key(b, "retained");
        if (v == PL_GRAPH_NONE)
            pl_buf_puts(b, "null");
        else
            pl_json_u64(b, pl_objgraph_retained(t->dom, v));
        pl_buf_putc(b, ',');
        pl_json_key(b, "dominator");
        uint32_t up = v == PL_GRAPH_NONE ? PL_DOM_ROOT : pl_objgraph_idom(t->dom, v);
        if (up == PL_DOM_ROOT || up == PL_GRAPH_NONE)
            pl_buf_puts(b, "null");
        else
            retained_summary(a, t, up, 0);
        pl_buf_putc(b, '}');
    }
    Py_DECREF(t);
    return rc;
}

/* Puts the held vertices first in *kids (k entries, reallocated; a held
 * vertex that is also a child is not repeated). 0 or -1 out of memory. */
static int rank_growing_first(const pl_growing_holder *held, size_t nheld, uint32_t **kids, size_t *k)
{
    uint32_t *ranked = malloc((*k + nheld) * sizeof *ranked);
    if (!ranked)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < nheld; i++)
        ranked[n++] = held[i].vertex;
    for (size_t i = 0; i < *k; i++) {
        size_t j = 0;
        while (j < nheld && held[j].vertex != (*kids)[i])
            j++;
        if (j == nheld)
            ranked[n++] = (*kids)[i];
    }
    free(*kids);
    *kids = ranked;
    *k = n;
    return 0;
}

/* Reopens a row's summary to add why it ranks first: "growing" {"type",
 * "count", "instances", "growth", "ago_s"} and "why", the same in words. */
static void growing_fields(pl_buf *b, const pl_growing_holder *h)
{
    reopen(b);
    pl_json_key(b, "growing");
    pl_buf_putc(b, '{');
    pl_json_key(b, "type");
    pl_json_cstr(b, h->type.name);
    pl_buf_putc(b, ',');
    pl_json_key(b, "count");
    pl_json_u64(b, h->count);
    pl_buf_putc(b, ',');
    pl_json_key(b, "instances");
    pl_json_u64(b, h->instances);
    pl_buf_putc(b, ',');
    pl_json_key(b, "growth");
    pl_json_u64(b, h->type.growth);
    pl_buf_putc(b, ',');
    pl_json_key(b, "ago_s");
    pl_json_u64(b, (uint64_t)(h->type.ago_ms / 1000));
    pl_buf_puts(b, "},");
    pl_json_key(b, "why");
    char why[320];
    if (h->type.ago_ms)
        snprintf(why, sizeof why,
                 "holds %llu of the %llu %s instances, a type that gained %llu over %d samples until %llds ago",
                 (unsigned long long)h->count, (unsigned long long)h->instances, h->type.name,
                 (unsigned long long)h->type.growth, PL_WITNESS_RISES, (long long)(h->type.ago_ms / 1000));
    else
        snprintf(why, sizeof why, "holds %llu of the %llu %s instances, a type that gained %llu in the last %d samples",
                 (unsigned long long)h->count, (unsigned long long)h->instances, h->type.name,
                 (unsigned long long)h->type.growth, PL_WITNESS_RISES);
    pl_json_cstr(b, why);
    pl_buf_putc(b, '}');
}

/* GET /api/retainers?id=: the dominator-tree children of id (of the
 * virtual root without id), largest retained size first, one page. */
static int answer_retainers(pl_answer *a)
{
    int built;
    PlGraphObject *t = get_tree(a, 0, &built);
    if (!t)
        return -1;
    const pl_live_query *q = a->q;
    uint32_t v = PL_DOM_ROOT;
    if (q->id) {
        v = vertex_of_id(t, q->id);
        if (v == PL_GRAPH_NONE && !built) {
            Py_DECREF(t);
            if (!(t = get_tree(a, 1, &built)))
                return -1;
            v = vertex_of_id(t, q->id);
        }
        if (v == PL_GRAPH_NONE) {
            Py_DECREF(t);
            pl_answer_gone(a);
            return 0;
        }
    }
    uint32_t *kids = NULL;
    size_t k = 0;
    int rc = pl_objgraph_dom_children(t->dom, v, &kids, &k);
    if (rc) {
        Py_DECREF(t);
        pl_raise(NULL, rc, "the graph operation");
        return -1;
    }
    /* At the top level the holders of growing types come first (wherever
     * they are in the tree), then the children by retained size. */
    pl_growing_holder held[PL_GROWING_ROWS];
    int nheld = v == PL_DOM_ROOT ? pl_growing_holders(t, held) : 0;
    if (nheld < 0 || (nheld > 0 && rank_growing_first(held, (size_t)nheld, &kids, &k) < 0)) {
        free(kids);
        Py_DECREF(t);
        if (nheld > 0)
            PyErr_NoMemory();
        return -1;
    }
    pl_buf *b = a->body;
    pl_answer_begin_doc(a);
    pl_buf_putc(b, ',');
    pl_json_key(b, "id");
    if (v == PL_DOM_ROOT)
        pl_buf_puts(b, "null");
    else
        pl_json_u64_str(b, q->id);
    pl_buf_putc(b, ',');
    pl_json_key(b, "retained");
    pl_json_u64(b, pl_objgraph_retained(t->dom, v));
    pl_buf_putc(b, ',');
    pl_json_key(b, "objects_in_tree");
    pl_json_u64(b, pl_graph_order(t->graph));
    pl_buf_putc(b, ',');
    pl_json_key(b, "tree_age_ms");
    pl_json_u64(b, t == tree ? (uint64_t)(pl_now_ms() - tree_built_ms) : 0);
    pl_buf_putc(b, ',');
    pl_json_key(b, "ranking");
    pl_json_cstr(b, nheld > 0 ? "holders of growing types first, then by retained size" : "by retained size");
    pl_answer_page_fields(a, k);
    pl_buf_putc(b, ',');
    pl_json_key(b, "objects");
    pl_buf_putc(b, '[');
    /* Children its object holds under a secret-looking name: one pass over
     * its labelled referents, before any repr runs. */
    pl_ptrmap secret = {0};
    if (v != PL_DOM_ROOT && pl_ptrmap_init(&secret, 16) == 0)
        pl_referents_each(pl_vertex_obj(t->graph, v), collect_secret, &secret);
    for (uint64_t i = q->offset; i < k && i < q->offset + q->limit; i++) {
        uint32_t unused;
        if (i > q->offset)
            pl_buf_putc(b, ',');
        retained_summary(a, t, kids[i], pl_ptrmap_get(&secret, (uintptr_t)pl_vertex_obj(t->graph, kids[i]), &unused));
        if (i < (uint64_t)nheld)
            growing_fields(b, &held[i]);
    }
    pl_ptrmap_free(&secret);
    pl_buf_puts(b, "]}");
    free(kids);
    a->status = 200;
    Py_DECREF(t);
    return 0;
}

/* The labels of a suspect's path, made before any repr runs (a repr could
 * change what holds what): vias[i] is how step i - 1 holds step i, secret[i]
 * whether under a secret-looking name. */
typedef struct path_labels {
    pl_buf *vias;
    unsigned char *secret;
} path_labels;

static int label_path(const PlGraphObject *t, const pl_suspect *s, path_labels *l)
{
    l->vias = calloc(s->npath + 1, sizeof(pl_buf));
    l->secret = calloc(s->npath + 1, 1);
    if (!l->vias || !l->secret)
        return -1;
    for (size_t i = 1; i < s->npath; i++) {
        pl_edge e;
        pl_edge_find(pl_vertex_obj(t->graph, s->path[i - 1]), pl_vertex_obj(t->graph, s->path[i]), &e);
        l->secret[i] = (unsigned char)held_as_secret(&e);
        int rc = pl_edge_format(&e, &l->vias[i]);
        pl_edge_clear(&e);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static void path_labels_free(path_labels *l, size_t n)
{
    for (size_t i = 0; l->vias && i < n; i++)
        pl_buf_free(&l->vias[i]);
    free(l->vias);
    free(l->secret);
}

/* Writes the path of a suspect as /path writes its steps: {"object":
 * summary, "via": how the previous step holds it} (referents.c's words;
 * null for the root). */
static void suspect_path(pl_answer *a, const PlGraphObject *t, const pl_suspect *s, const path_labels *l)
{
    pl_buf *b = a->body;
    pl_buf_putc(b, '[');
    for (size_t i = 0; i < s->npath; i++) {
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_putc(b, '{');
        pl_json_key(b, "object");
        pl_json_summary_as(&a->repr, b, pl_vertex_obj(t->graph, s->path[i]), PL_REPR_LIST_CHARS, l->secret[i]);
        pl_buf_putc(b, ',');
        pl_json_key(b, "via");
        if (i)
            pl_json_cstr(b, pl_buf_cstr(&l->vias[i]));
        else
            pl_buf_puts(b, "null");
        pl_buf_putc(b, '}');
    }
    pl_buf_putc(b, ']');
}

/* GET /api/suspects?group=: the objects whose dominated sets hold the most
 * instances of the type `group` (graph_dom.c, pl_objgraph_suspects). */
static int answer_suspects(pl_answer *a)
{
    int built;
    PlGraphObject *t = get_tree(a, 0, &built);
    if (!t)
        return -1;
    const pl_graph *g = t->graph;
    size_t n = pl_graph_order(g);
    uint8_t *mark = malloc(n + 1);
    PyObject *name = PyUnicode_FromString(a->q->group);
    pl_suspect *s = NULL;
    path_labels *labels = NULL;
    size_t k = 0;
    int rc = -1;
    if (!mark) {
        PyErr_NoMemory();
        goto done;
    }
    if (!name || pl_objgraph_mark_type(g, name, mark) < 0)
        goto done;
    uint64_t instances = 0;
    for (size_t v = 0; v < n; v++)
        instances += mark[v];
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = pl_objgraph_suspects(g, t->dom, mark, (size_t)a->q->limit, &s, &k);
    Py_END_ALLOW_THREADS
    if (err) {
        pl_raise(NULL, err, "the graph operation");
        goto done;
    }
    labels = calloc(k + 1, sizeof(path_labels));
    if (!labels) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < k; i++)
        if (label_path(t, &s[i], &labels[i]) < 0) {
            PyErr_NoMemory();
            goto done;
        }
    pl_buf *b = a->body;
    pl_answer_begin_doc(a);
    pl_buf_putc(b, ',');
    pl_json_key(b, "group");
    pl_json_cstr(b, a->q->group);
    pl_buf_putc(b, ',');
    pl_json_key(b, "instances");
    pl_json_u64(b, instances);
    pl_buf_putc(b, ',');
    pl_json_key(b, "suspects");
    pl_buf_putc(b, '[');
    for (size_t i = 0; i < k; i++) {
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_putc(b, '{');
        pl_json_key(b, "object");
        /* The suspect is its path's last step: redacted like it. */
        pl_json_summary_as(&a->repr, b, pl_vertex_obj(g, s[i].vertex), PL_REPR_LIST_CHARS,
                           s[i].npath ? labels[i].secret[s[i].npath - 1] : 0);
        pl_buf_putc(b, ',');
        pl_json_key(b, "count");
        pl_json_u64(b, s[i].count);
        pl_buf_putc(b, ',');
        pl_json_key(b, "retained");
        pl_json_u64(b, s[i].retained);
        pl_buf_putc(b, ',');
        pl_json_key(b, "path");
        suspect_path(a, t, &s[i], &labels[i]);
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
    a->status = 200;
    rc = 0;
done:
    for (size_t i = 0; labels && i < k; i++)
        path_labels_free(&labels[i], s[i].npath);
    free(labels);
    pl_objgraph_suspects_free(s, k);
    Py_XDECREF(name);
    free(mark);
    Py_DECREF(t);
    return rc;
}

/* See live.h. */
int pl_answer_retained(pl_answer *a)
{
    switch (a->q->kind) {
    case PL_LIVE_RETAINED:
        return answer_retained(a);
    case PL_LIVE_RETAINERS:
        return answer_retainers(a);
    default:
        return answer_suspects(a);
    }
}
