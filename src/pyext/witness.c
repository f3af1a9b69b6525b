/* witness.c: for types whose count grows steadily, one instance's shortest
 * path from a root, recorded into the store so that the evidence outlives
 * the worker (docs/witnesses.md).
 *
 * Rule: a type qualifies when its count rose in each of the last
 * PL_WITNESS_RISES samples and it is among the PL_WITNESS_TOP_CLASSES
 * largest growing classes or the PL_WITNESS_TOP_OTHERS largest other
 * growers, in bytes over those samples (a str or bytes payload outranks the
 * small objects that grow with it; classes come first); a qualifying type is witnessed at most once
 * per PL_WITNESS_EVERY_MS after its first witness, and at most one pass is
 * taken per collection. The instance is one made since the previous pass
 * (witness_seen.c). A pass serves every candidate at once, in one walk of
 * the heap: it remembers the instances of all of them, and searches those
 * that are due and that the previous pass remembered (a type's first pass
 * only remembers it).
 *
 * Budget: a token bucket on measured GIL time. Credit accrues at
 * PL_WITNESS_GIL_SHARE of wall time and is capped at zero; a pass may
 * start only when the balance is not negative, and costs what it measured;
 * a pass that searches may also start while the balance is no lower than
 * minus the previous pass when that one remembered a due type for its
 * first search (the two are paid for as one). The balance is then never
 * below minus two passes, so over any window the GIL time spent here is at
 * most PL_WITNESS_GIL_SHARE of the window plus two passes.
 *
 * All state is protected by the collector's collect_lock (the only caller
 * holds it); witness_stats() and pl_witness_growing() read copies under
 * stats_lock. */
#include "witness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_sites.h"
#include "heap.h"
#include "live.h"
#include "referents.h"
#include "util.h"
#include "witness_seen.h"

#if PY_VERSION_HEX >= 0x030D0000
#define is_finalizing() Py_IsFinalizing()
#else
#define is_finalizing() _Py_IsFinalizing()
#endif

/* The last few counts of one type, by store id. */
typedef struct track {
    uint32_t type_id;
    unsigned n;              /* valid entries of counts, newest last */
    uint64_t counts[PL_WITNESS_RISES + 1];
    uint64_t bytes[PL_WITNESS_RISES + 1];
    int64_t witnessed_ms;    /* last witness written, 0 never */
    int64_t tried_ms;        /* last search without a path, 0 never */
    int cls;                 /* a heap type: a class (user code's, mostly) */
} track;

/* What the last pass saw (witness_seen.h): filter i of `prev` is the
 * type prev_ids[i]. Every pass remembers all the candidates at once, so a
 * candidate's first pass only remembers it and its next one searches. */
typedef struct witness_state {
    track *tracks;           /* sorted by type_id */
    size_t n;
    pl_seen prev;
    uint32_t prev_ids[PL_SEEN_TYPES];
    double owed_s;           /* the GIL time of the last pass when it remembered a type for its first search */
    uint64_t serial;         /* store the ids belong to */
    double balance_s;        /* GIL seconds available (<= 0) */
    int64_t last_ms;         /* when the balance was last credited */
} witness_state;
static witness_state W;      /* protected by collect_lock */
_Static_assert(PL_WITNESS_TOP <= PL_SEEN_TYPES, "a pass remembers every candidate");

typedef struct witness_stats {
    uint64_t passes, searches, written, no_path, errors, skipped_budget, remembered;
    double gil_s;            /* GIL time spent here in total */
    double last_gil_ms;
} witness_stats;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static witness_stats S;      /* protected by stats_lock */

/* What pl_witness_growing answers: protected by stats_lock. */
static pl_growing_type growing[PL_WITNESS_GROWING];
static size_t ngrowing;
static int64_t growing_ms, growing_gap_ms; /* last published, and the gap before it */

/* See witness.h. */
void pl_witness_atfork_child(void)
{
    /* The collector thread that may have been changing W does not exist in
     * the child: forget it (leaked on purpose, as the type table is). */
    memset(&W, 0, sizeof W);
    pthread_mutex_init(&stats_lock, NULL);
    ngrowing = 0; /* the parent's growth, not the child's */
    growing_ms = growing_gap_ms = 0;
}

static int cmp_track(const void *a, const void *b)
{
    const track *x = a, *y = b;
    return x->type_id < y->type_id ? -1 : x->type_id > y->type_id;
}

/* Rebuilds the tracks from this pass: types not seen any more are dropped.
 * Returns 0 or -1 (out of memory: the old tracks stay). */
static int update_tracks(pl_type_table *t)
{
    track *next = malloc((t->used + 1) * sizeof *next);
    size_t n = 0;
    if (!next)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        const pl_type_entry *e = &t->slots[i];
        if (!e->tp || e->epoch != t->epoch || e->type_id == UINT32_MAX)
            continue;
        track key = {.type_id = e->type_id};
        const track *old = W.n ? bsearch(&key, W.tracks, W.n, sizeof *W.tracks, cmp_track) : NULL;
        track tr = old ? *old : key;
        if (tr.n == PL_WITNESS_RISES + 1) {
            memmove(tr.counts, tr.counts + 1, PL_WITNESS_RISES * sizeof tr.counts[0]);
            memmove(tr.bytes, tr.bytes + 1, PL_WITNESS_RISES * sizeof tr.bytes[0]);
            tr.n--;
        }
        tr.counts[tr.n] = e->count;
        tr.bytes[tr.n++] = e->bytes;
        tr.cls = (PyType_GetFlags(e->tp) & Py_TPFLAGS_HEAPTYPE) != 0;
        next[n++] = tr;
    }
    if (n > 1)
        qsort(next, n, sizeof *next, cmp_track);
    free(W.tracks);
    W.tracks = next;
    W.n = n;
    return 0;
}

/* Bytes gained over the last `rises` samples (at least 1) when the count
 * rose in each of them, else 0 (rises <= PL_WITNESS_RISES). */
static uint64_t steady_growth(const track *tr, unsigned rises)
{
    if (tr->n < rises + 1)
        return 0;
    unsigned from = tr->n - 1 - rises;
    for (unsigned i = from + 1; i < tr->n; i++)
        if (tr->counts[i] <= tr->counts[i - 1])
            return 0;
    uint64_t first = tr->bytes[from], last = tr->bytes[tr->n - 1];
    return last > first ? last - first : 1;
}

/* Inserts tr (steady growth g) into the ranking top[0..n) (largest first),
 * dropping the last when it is full. */
static void rank_insert(track **top, uint64_t *growth, int n, track *tr, uint64_t g)
{
    for (int k = 0; k < n; k++) {
        if (!top[k] || g > growth[k]) {
            memmove(top + k + 1, top + k, (size_t)(n - 1 - k) * sizeof top[0]);
            memmove(growth + k + 1, growth + k, (size_t)(n - 1 - k) * sizeof growth[0]);
            top[k] = tr;
            growth[k] = g;
            return;
        }
    }
}

/* The largest steady growers into top[] (PL_WITNESS_TOP slots, NULL after
 * the last): first the PL_WITNESS_TOP_CLASSES largest classes (heap types),
 * then the PL_WITNESS_TOP_OTHERS largest other types, each largest first.
 * A leaking class ranks by its own shallow bytes, small next to the lists,
 * strings and floats it holds; its witness and allocation site say the most
 * about the leak, so classes are never crowded out by their contents. */
static void top_growers(track **top, unsigned rises)
{
    track *cls[PL_WITNESS_TOP_CLASSES] = {0}, *other[PL_WITNESS_TOP_OTHERS] = {0};
    uint64_t gc_[PL_WITNESS_TOP_CLASSES] = {0}, go[PL_WITNESS_TOP_OTHERS] = {0};
    int n = 0;
    for (size_t i = 0; i < W.n; i++) {
        uint64_t g = steady_growth(&W.tracks[i], rises);
        if (!g)
            continue;
        if (W.tracks[i].cls)
            rank_insert(cls, gc_, PL_WITNESS_TOP_CLASSES, &W.tracks[i], g);
        else
            rank_insert(other, go, PL_WITNESS_TOP_OTHERS, &W.tracks[i], g);
    }
    for (int k = 0; k < PL_WITNESS_TOP; k++)
        top[k] = NULL;
    for (int k = 0; k < PL_WITNESS_TOP_CLASSES && cls[k]; k++)
        top[n++] = cls[k];
    for (int k = 0; k < PL_WITNESS_TOP_OTHERS && other[k]; k++)
        top[n++] = other[k];
}

/* See witness.h. One rise fewer than a witness needs: the count pass that
 * asks runs before the collection that makes a type a candidate, so the
 * type is traced from one collection before its remembering pass, and the
 * new instance its first witness shows was made while traced. */
size_t pl_witness_candidates(const pl_type_table *t, uint32_t *type_ids, size_t max)
{
    track *top[PL_WITNESS_TOP] = {0};
    size_t n = 0;
    if (W.serial != t->ids_for)
        return 0;
    top_growers(top, PL_WITNESS_RISES - 1);
    for (int k = 0; k < PL_WITNESS_TOP && top[k] && n < max; k++)
        type_ids[n++] = top[k]->type_id;
    return n;
}

static const pl_type_entry *entry_of(const pl_type_table *t, uint32_t type_id)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].tp && t->slots[i].epoch == t->epoch && t->slots[i].type_id == type_id)
            return &t->slots[i];
    return NULL;
}

/* Publishes the types that gained at least PL_WITNESS_RISES instances over
 * the tracks' window, largest gain in bytes first (pl_witness_growing). */
static void publish_growing(const pl_type_table *t, int64_t now_ms)
{
    const track *top[PL_WITNESS_GROWING] = {0};
    int64_t gain[PL_WITNESS_GROWING] = {0};
    for (size_t i = 0; i < W.n; i++) {
        const track *tr = &W.tracks[i];
        if (tr->n != PL_WITNESS_RISES + 1 || tr->counts[tr->n - 1] < tr->counts[0] + PL_WITNESS_RISES)
            continue;
        int64_t g = (int64_t)(tr->bytes[tr->n - 1] - tr->bytes[0]);
        for (size_t k = 0; k < PL_WITNESS_GROWING; k++) {
            if (!top[k] || g > gain[k]) {
                memmove(top + k + 1, top + k, (PL_WITNESS_GROWING - 1 - k) * sizeof top[0]);
                memmove(gain + k + 1, gain + k, (PL_WITNESS_GROWING - 1 - k) * sizeof gain[0]);
                top[k] = tr;
                gain[k] = g;
                break;
            }
        }
    }
    pl_growing_type out[PL_WITNESS_GROWING];
    size_t n = 0;
    for (size_t k = 0; k < PL_WITNESS_GROWING && top[k]; k++) {
        const pl_type_entry *e = entry_of(t, top[k]->type_id);
        if (!e)
            continue;
        out[n].tp = e->tp;
        snprintf(out[n].name, sizeof out[n].name, "%s", e->base);
        out[n].growth = top[k]->counts[top[k]->n - 1] - top[k]->counts[0];
        out[n].ago_ms = 0;
        out[n].type_id = top[k]->type_id;
        out[n].count = top[k]->counts[top[k]->n - 1];
        out[n].grew_ms = now_ms;
        n++;
    }
    /* Then the earlier growers (growing[] is written by this thread only,
     * so it is read here without the lock), most recent first: still in
     * the table, within the keep window, not fallen below their count. */
    for (size_t j = 0; j < ngrowing && n < PL_WITNESS_GROWING; j++) {
        const pl_growing_type *g = &growing[j];
        const pl_type_entry *e;
        int dup = 0;
        for (size_t k = 0; k < n && !dup; k++)
            dup = out[k].type_id == g->type_id;
        if (dup || now_ms - g->grew_ms > PL_WITNESS_GROWING_KEEP_MS || !(e = entry_of(t, g->type_id)) ||
            e->count < g->count)
            continue;
        out[n] = *g;
        out[n].tp = e->tp;
        out[n].ago_ms = now_ms - g->grew_ms;
        n++;
    }
    pthread_mutex_lock(&stats_lock);
    memcpy(growing, out, n * sizeof out[0]);
    ngrowing = n;
    growing_gap_ms = growing_ms ? now_ms - growing_ms : 0;
    growing_ms = now_ms;
    pthread_mutex_unlock(&stats_lock);
}

/* See witness.h. */
size_t pl_witness_growing(pl_growing_type *out, size_t max)
{
    int64_t now = pl_now_ms();
    size_t n = 0;
    pthread_mutex_lock(&stats_lock);
    /* The request that asks may itself have held the GIL the collector
     * needs to sample (building a dominator tree): a grace beyond twice
     * the interval. */
    if (growing_gap_ms && now - growing_ms <= 2 * growing_gap_ms + PL_WITNESS_GROWING_GRACE_MS) {
        n = ngrowing < max ? ngrowing : max;
        memcpy(out, growing, n * sizeof out[0]);
        for (size_t i = 0; i < n; i++)
            out[i].ago_ms = out[i].grew_ms == growing_ms ? 0 : now - out[i].grew_ms;
    }
    pthread_mutex_unlock(&stats_lock);
    return n;
}

/* A path described in C memory: strings in `text`, at offsets. */
typedef struct described {
    pl_buf text;
    size_t off[PL_WITNESS_MAX_STEPS][3];
    size_t n;
    size_t site; /* offset of the instance's allocation site, 0: none */
} described;

/* 1 when the step reached through e is held under a secret-looking name
 * (pl_secret_name, PyLoot(redact=...)): its repr is then stored as
 * "<redacted>" and no repr() runs, as on the why-alive path. */
static int held_under_secret_name(const pl_edge *e)
{
    return (e->kind == PL_EDGE_ATTRIBUTE || e->kind == PL_EDGE_VALUE || e->kind == PL_EDGE_LOCAL) &&
           pl_secret_name(e->key);
}

/* Describes path (strong references, root first) into d: type, via, repr of
 * each step. Runs user code (repr), under the answer's repr deadline. */
static void describe_path(pl_objvec *path, pl_edge *edges, described *d)
{
    pl_reprer r;
    memset(&r, 0, sizeof r);
    int entered = pl_answer_enter(&r.deadline) == 0;
    size_t n = path->n;
    /* Longer paths keep their root side and the instance. */
    for (size_t i = 0; i < n && d->n < PL_WITNESS_MAX_STEPS; i++) {
        if (d->n == PL_WITNESS_MAX_STEPS - 1 && i + 1 < n)
            i = n - 1;
        PyObject *o = path->v[i];
        d->off[d->n][0] = d->text.len;
        if (pl_typename(Py_TYPE(o), &d->text) < 0)
            PyErr_Clear();
        pl_buf_putc(&d->text, '\0');
        d->off[d->n][1] = d->text.len;
        if (i)
            pl_edge_format(&edges[i], &d->text);
        pl_buf_putc(&d->text, '\0');
        d->off[d->n][2] = d->text.len;
        if (i && held_under_secret_name(&edges[i]))
            pl_buf_puts(&d->text, "<redacted>");
        else if (entered)
            pl_repr_text(&r, &d->text, o, PL_WITNESS_REPR_CHARS);
        else
            pl_buf_puts(&d->text, "<repr skipped>");
        pl_buf_putc(&d->text, '\0');
        d->n++;
    }
    if (entered)
        pl_answer_leave();
    unsigned weight; /* the instance's allocation site, when it was sampled (alloc_sites.h) */
    long site = n ? pl_alloc_site_of(path->v[n - 1], &weight) : -1;
    if (site >= 0) {
        d->site = d->text.len;
        pl_alloc_site_line(site, &d->text);
        pl_buf_putc(&d->text, '\0');
    }
}

/* One pass: the candidates (top_growers: the largest steady growers),
 * all remembered; those due (not resting) and remembered by the previous
 * pass are searched. */
typedef struct plan {
    size_t n;
    track *tr[PL_SEEN_TYPES];
    const pl_type_entry *e[PL_SEEN_TYPES];
    pl_seen_type types[PL_SEEN_TYPES];
    size_t ndue, nsearch, nfirst; /* due; searched; due but not remembered yet */
} plan;

/* The index of type_id among the previous pass's filters, or -1. */
static int prev_index(uint32_t type_id)
{
    if (!W.prev.objs)
        return -1;
    for (size_t i = 0; i < W.prev.ntypes; i++)
        if (W.prev_ids[i] == type_id)
            return (int)i;
    return -1;
}

/* Fills pl for this collection; returns pl->ndue (0: no pass). */
static size_t plan_pass(const pl_type_table *t, int64_t now_ms, plan *pl)
{
    track *top[PL_WITNESS_TOP] = {0};
    memset(pl, 0, sizeof *pl);
    top_growers(top, PL_WITNESS_RISES);
    for (int k = 0; k < PL_WITNESS_TOP && top[k] && pl->n < PL_SEEN_TYPES; k++) {
        track *tr = top[k];
        const pl_type_entry *e = entry_of(t, tr->type_id);
        if (!e)
            continue;
        int resting = (tr->witnessed_ms && now_ms - tr->witnessed_ms < PL_WITNESS_EVERY_MS) ||
                      (tr->tried_ms && now_ms - tr->tried_ms < PL_WITNESS_RETRY_MS);
        int prev = resting ? -1 : prev_index(tr->type_id);
        pl->tr[pl->n] = tr;
        pl->e[pl->n] = e;
        pl->types[pl->n] = (pl_seen_type){.tp = e->tp, .count = e->count, .prev = prev};
        pl->n++;
        pl->ndue += !resting;
        pl->nsearch += prev >= 0;
        pl->nfirst += !resting && prev < 0;
    }
    return pl->ndue;
}

/* Replaces the previous pass's filters with `next`, taken by the types of pl. */
static void keep_seen(const plan *pl, pl_seen *next)
{
    pl_seen_free(&W.prev);
    W.prev = *next;
    memset(next, 0, sizeof *next);
    for (size_t i = 0; i < pl->n; i++)
        W.prev_ids[i] = pl->tr[i]->type_id;
}

/* Under the GIL, for type i of pl (searched): the path to its first pick
 * that has one, into *path (borrowed). 1 found, 0 none, -1 out of memory. */
static int path_of(pl_answer *a, const pl_frames *fr, const pl_seen_type *ty, pl_objvec *path)
{
    int found = 0;
    for (int k = 0; k < ty->npicks && found == 0; k++) {
        path->n = 0;
        found = pl_path_find(a, fr, ty->picks[k].anchor, path);
        for (size_t s = 0; found == 1 && s < ty->picks[k].nsteps; s++)
            if (pl_objvec_push(path, ty->picks[k].steps[s]) < 0)
                found = -1;
    }
    return found;
}

/* Under the GIL, a path with strong references: checks that its instance
 * is still of the type the table named `base` (a freed type's address can
 * be reused), labels and describes it into d. 1 described, 0 not the
 * type, -1 out of memory. */
static int describe_found(pl_objvec *path, const char *base, described *d)
{
    pl_edge *edges = NULL;
    pl_buf name = PL_BUF_INIT;
    if (pl_typename(Py_TYPE(path->v[path->n - 1]), &name) < 0)
        PyErr_Clear();
    int same = name.data && strcmp(pl_buf_cstr(&name), base) == 0;
    pl_buf_free(&name);
    if (!same)
        return 0;
    int rc = -1;
    if (pl_path_label(path, &edges) == 0) {
        describe_path(path, edges, d);
        rc = d->text.err ? -1 : 1;
    }
    if (edges) {
        for (size_t i = 0; i < path->n; i++)
            pl_edge_clear(&edges[i]);
        free(edges);
    }
    return rc;
}

/* Under the GIL: one walk finds, for every searched type of pl, an
 * instance new since the previous pass (witness_seen.c picks where) and
 * its path, and remembers every type of pl for the next pass; then each
 * path is described into d[i]. found[i]: 1 described, 0 no new instance
 * or no path, -1 out of memory; 2 for the types only remembered. */
static void search(plan *pl, described *d, int *found)
{
    pl_answer a;
    pl_frames fr = {0};
    pl_seen next = {0};
    pl_objvec path[PL_SEEN_TYPES];
    memset(path, 0, sizeof path);
    for (size_t i = 0; i < pl->n; i++)
        found[i] = pl->types[i].prev >= 0 ? -1 : 2;

    memset(&a, 0, sizeof a);
    a.gc_was_enabled = PyGC_Disable();
    if (pl_frames_collect(&fr) < 0 || pl_answer_snapshot(&a) < 0) {
        PyErr_Clear();
        goto out;
    }
    if (pl_seen_pick_new(&a, pl->types, pl->n, &W.prev, &next) < 0)
        goto out;
    keep_seen(pl, &next);
    for (size_t i = 0; i < pl->n; i++)
        if (found[i] != 2)
            found[i] = path_of(&a, &fr, &pl->types[i], &path[i]);
    for (size_t i = 0; i < pl->n; i++)
        if (found[i] == 1)
            for (size_t k = 0; k < path[i].n; k++)
                Py_INCREF(path[i].v[k]);
    pl_answer_end_snapshot(&a);
    /* Now the paths are owned: repr() may run. */
    for (size_t i = 0; i < pl->n; i++) {
        if (found[i] != 1)
            continue;
        found[i] = describe_found(&path[i], pl->e[i]->base, &d[i]);
        for (size_t k = 0; k < path[i].n; k++)
            Py_DECREF(path[i].v[k]);
    }
out:
    for (size_t i = 0; i < pl->n; i++)
        pl_objvec_free(&path[i]);
    pl_seen_free(&next);
    pl_answer_end_snapshot(&a);
    pl_frames_free(&fr);
}

/* Without the GIL: writes the witness described in d for track tr. 0 or -1. */
static int write_witness(pl_store *store, const pl_incarnation *self, track *tr, int64_t now_ms, described *d)
{
    pl_witness_step steps[PL_WITNESS_MAX_STEPS];
    for (size_t i = 0; i < d->n; i++) {
        steps[i].type = d->text.data + d->off[i][0];
        steps[i].via = d->text.data + d->off[i][1];
        steps[i].repr = d->text.data + d->off[i][2];
    }
    int rc = pl_store_witness_put_site(store, self, tr->type_id, now_ms, steps, d->n,
                                       d->site ? d->text.data + d->site : NULL);
    if (!rc)
        tr->witnessed_ms = now_ms;
    return rc;
}

/* See witness.h. */
void pl_witness_after_collection(pl_type_table *t, pl_store *store, const pl_incarnation *self, int64_t now_ms)
{
    if (W.serial != t->ids_for) {
        /* another store: its ids are different */
        free(W.tracks);
        pl_seen_free(&W.prev);
        memset(&W, 0, sizeof W);
        W.serial = t->ids_for;
    }
    if (W.last_ms)
        W.balance_s += (double)(now_ms - W.last_ms) / 1000.0 * PL_WITNESS_GIL_SHARE;
    if (W.balance_s > 0)
        W.balance_s = 0;
    W.last_ms = now_ms;
    if (update_tracks(t) < 0)
        return;
    publish_growing(t, now_ms);
    plan pl;
    if (!plan_pass(t, now_ms, &pl))
        return;
    /* A pass that remembered a type for its first search and the pass
     * that searches it are paid for as one, so that remembering does not
     * delay a type's first witness. */
    double allowance = pl.nsearch ? W.owed_s : 0;
    if (W.balance_s + allowance < 0) {
        pthread_mutex_lock(&stats_lock);
        S.skipped_budget++;
        pthread_mutex_unlock(&stats_lock);
        return;
    }
    if (is_finalizing())
        return;

    described d[PL_SEEN_TYPES];
    int found[PL_SEEN_TYPES];
    memset(d, 0, sizeof d);
    PyGILState_STATE g = PyGILState_Ensure();
    double t0 = pl_now_s(); /* GIL time, not the wait for it */
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (pl.nsearch) {
        search(&pl, d, found);
    } else {
        pl_seen next = {0};
        int rc = pl_seen_remember(pl.types, pl.n, &next);
        if (rc == 0)
            keep_seen(&pl, &next);
        for (size_t i = 0; i < pl.n; i++)
            found[i] = rc < 0 ? -1 : 2;
    }
    PyErr_Restore(et, ev, tb);
    double gil_s = pl_now_s() - t0;
    pl_gil_held_add(gil_s);
    PyGILState_Release(g);
    W.balance_s -= gil_s;
    W.owed_s = pl.nfirst ? gil_s : 0;

    uint64_t written = 0, no_path = 0, errors = 0;
    for (size_t i = 0; i < pl.n; i++) {
        if (found[i] == 1 && write_witness(store, self, pl.tr[i], now_ms, &d[i]) == 0) {
            written++;
        } else if (found[i] == 0) {
            pl.tr[i]->tried_ms = now_ms; /* rests PL_WITNESS_RETRY_MS */
            no_path++;
        } else if (found[i] != 2) {
            errors++;
        }
        pl_buf_free(&d[i].text);
    }
    pthread_mutex_lock(&stats_lock);
    S.passes++;
    S.searches += pl.nsearch;
    S.remembered += !pl.nsearch;
    S.written += written;
    S.no_path += no_path;
    S.errors += errors;
    S.gil_s += gil_s;
    S.last_gil_ms = gil_s * 1e3;
    pthread_mutex_unlock(&stats_lock);
}

static PyObject *py_witness_stats(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    pthread_mutex_lock(&stats_lock);
    witness_stats s = S;
    pthread_mutex_unlock(&stats_lock);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:d,s:d}", "passes", (unsigned long long)s.passes,
                         "searches", (unsigned long long)s.searches,
                         "written", (unsigned long long)s.written, "no_path", (unsigned long long)s.no_path,
                         "errors", (unsigned long long)s.errors, "skipped_budget",
                         (unsigned long long)s.skipped_budget, "remembered", (unsigned long long)s.remembered,
                         "gil_s", s.gil_s, "last_gil_ms", s.last_gil_ms);
}

static PyMethodDef witness_methods[] = {
    {"witness_stats", py_witness_stats, METH_NOARGS,
     "Counters of the witnesses of this process: passes (walks of the heap under the GIL), searches (types "
     "searched, several per pass), written, no_path, errors, skipped_budget, remembered (passes that only "
     "remembered the candidates' instances), gil_s (GIL seconds spent in total), last_gil_ms (the last pass)."},
    {NULL, NULL, 0, NULL},
};

int pl_witness_module_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, witness_methods);
}
