/* witness_seen.c: which instances of a witnessed type were there at the
 * previous pass, and where the new ones are (witness_seen.h). */
#include "witness_seen.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h"

/* See witness_seen.h. */
void pl_seen_free(pl_seen *s)
{
    free(s->bits);
    free(s->objs);
    memset(s, 0, sizeof *s);
}

/* Empties s and sizes its instance filter for about `count` instances: 8
 * bits per instance, within [PL_SEEN_MIN_BITS, PL_SEEN_MAX_BITS]. 0 or -1. */
static int seen_init(pl_seen *s, uint64_t count)
{
    pl_seen_free(s);
    size_t nbits = PL_SEEN_MIN_BITS;
    while (nbits < PL_SEEN_MAX_BITS && nbits / 8 < count)
        nbits <<= 1;
    s->bits = calloc(nbits / 64, sizeof(uint64_t));
    s->objs = calloc(PL_SEEN_MAX_BITS / 64, sizeof(uint64_t));
    if (!s->bits || !s->objs) {
        pl_seen_free(s);
        return -1;
    }
    s->nbits = nbits;
    return 0;
}

static size_t bit_of(const void *p, size_t nbits)
{
    uint64_t x = ((uint64_t)(uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ULL;
    return (size_t)(x >> 40) & (nbits - 1);
}

static void bit_set(uint64_t *bits, size_t nbits, const void *p)
{
    size_t i = bit_of(p, nbits);
    bits[i / 64] |= (uint64_t)1 << (i % 64);
}

/* 1 when p may have been there (a false 1 is possible, a false 0 is not);
 * with nothing remembered, 0: everything is new. */
static int bit_has(const uint64_t *bits, size_t nbits, const void *p)
{
    if (!bits)
        return 0;
    size_t i = bit_of(p, nbits);
    return (int)((bits[i / 64] >> (i % 64)) & 1);
}

/* An instance of the type. */
static void seen_add(pl_seen *s, const void *p)
{
    bit_set(s->bits, s->nbits, p);
}

static int seen_has(const pl_seen *s, const void *p)
{
    return bit_has(s->bits, s->nbits, p);
}

/* Any tracked object. */
static void obj_add(pl_seen *s, const void *p)
{
    bit_set(s->objs, PL_SEEN_MAX_BITS, p);
}

static int obj_has(const pl_seen *s, const void *p)
{
    return bit_has(s->objs, PL_SEEN_MAX_BITS, p);
}

/* 1 for a list, dict or set: what a leak grows in place. */
static int is_container(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    return tp == &PyList_Type || tp == &PyDict_Type || tp == &PySet_Type;
}

/* ---- remembering ---- */

typedef struct remembering {
    PyTypeObject *tp;
    pl_seen *s;
} remembering;

static int remember_inner(PyObject *o, void *arg)
{
    remembering *r = arg;
    if (o && Py_TYPE(o) == r->tp)
        seen_add(r->s, o);
    return 0;
}

/* A referent of a tracked object: an instance, or an untracked container
 * (tuple, dict) whose items are looked at one level down. */
static int remember_ref(PyObject *o, void *arg)
{
    remembering *r = arg;
    if (!o)
        return 0;
    if (Py_TYPE(o) == r->tp)
        seen_add(r->s, o);
    else if (PyObject_IS_GC(o) && !PyObject_GC_IsTracked(o) && Py_TYPE(o)->tp_traverse)
        Py_TYPE(o)->tp_traverse(o, remember_inner, r);
    return 0;
}

/* A tracked object, and its referents: an instance may be untracked even
 * when its type is a gc type (a tuple or dict of atoms). */
static int remember_one(PyObject *o, void *arg)
{
    remembering *r = arg;
    if (Py_TYPE(o) == r->tp)
        seen_add(r->s, o);
    obj_add(r->s, o);
    if (Py_TYPE(o)->tp_traverse)
        Py_TYPE(o)->tp_traverse(o, remember_ref, arg);
    return 0;
}

/* See witness_seen.h. */
int pl_seen_remember(PyTypeObject *tp, uint64_t count, pl_seen *s)
{
    if (seen_init(s, count) < 0)
        return -1;
    remembering r = {.tp = tp, .s = s};
    int gc_was_enabled = PyGC_Disable();
    int rc = pl_live_walk(remember_one, &r);
    if (gc_was_enabled)
        PyGC_Enable();
    if (rc < 0) {
        PyErr_Clear();
        pl_seen_free(s);
        return -1;
    }
    return 0;
}

/* ---- picking a new instance ---- */

/* A place where a new instance is: holder → container (an untracked tuple
 * or dict, or NULL) → target. */
typedef struct place {
    PyObject *holder, *container, *target;
    size_t hits;      /* new instances the holder refers to */
    size_t new_items; /* new tracked objects it refers to */
} place;

typedef struct picking {
    PyTypeObject *tp;
    const pl_seen *seen;
    pl_seen *next;
    PyObject *container; /* the untracked container being looked into */
    place cur;          /* the holder being traversed */
    place best[PL_SEEN_TRIES];
    PyObject *last_new; /* the last new tracked instance met in the walk */
} picking;

static void meet(picking *p, PyObject *container, PyObject *o)
{
    seen_add(p->next, o);
    if (seen_has(p->seen, o))
        return;
    p->cur.hits++;
    p->cur.container = container;
    p->cur.target = o;
}

static int pick_inner(PyObject *o, void *arg)
{
    picking *p = arg;
    if (o && Py_TYPE(o) == p->tp)
        meet(p, p->container, o);
    return 0;
}

static int pick_ref(PyObject *o, void *arg)
{
    picking *p = arg;
    if (!o)
        return 0;
    if (PyObject_IS_GC(o) && PyObject_GC_IsTracked(o) && !obj_has(p->seen, o))
        p->cur.new_items++;
    if (Py_TYPE(o) == p->tp) {
        meet(p, NULL, o);
    } else if (PyObject_IS_GC(o) && !PyObject_GC_IsTracked(o) && Py_TYPE(o)->tp_traverse) {
        p->container = o;
        Py_TYPE(o)->tp_traverse(o, pick_inner, p);
    }
    return 0;
}

/* Keeps cur among the best holders: more new instances first; on a tie the
 * later one in the walk (the newer, as a rule). */
static void rank_holder(picking *p)
{
    for (size_t k = 0; k < PL_SEEN_TRIES; k++) {
        if (!p->best[k].holder || p->cur.hits >= p->best[k].hits) {
            memmove(p->best + k + 1, p->best + k, (PL_SEEN_TRIES - 1 - k) * sizeof p->best[0]);
            p->best[k] = p->cur;
            return;
        }
    }
}

/* The new instance an item of a grown container leads to: the item's own
 * referents, and one level into the dicts among them (an instance's
 * __dict__, a record's fields). */
typedef struct deeper {
    picking *p;
    PyObject *item;
    place found;
} deeper;

static int deeper_inner(PyObject *o, void *arg)
{
    deeper *d = arg;
    if (o && Py_TYPE(o) == d->p->tp && !seen_has(d->p->seen, o)) {
        d->found = (place){.holder = d->item, .container = d->p->container, .target = o, .hits = 1};
    }
    return 0;
}

static int deeper_ref(PyObject *o, void *arg)
{
    deeper *d = arg;
    if (!o)
        return 0;
    if (Py_TYPE(o) == d->p->tp) {
        if (!seen_has(d->p->seen, o))
            d->found = (place){.holder = d->item, .target = o, .hits = 1};
    } else if (PyDict_CheckExact(o) || (PyObject_IS_GC(o) && !PyObject_GC_IsTracked(o) && Py_TYPE(o)->tp_traverse)) {
        d->p->container = o;
        Py_TYPE(o)->tp_traverse(o, deeper_inner, d);
    }
    return 0;
}

static int deeper_item(PyObject *o, void *arg)
{
    deeper *d = arg;
    if (o && PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse && Py_TYPE(o) != d->p->tp) {
        d->item = o;
        Py_TYPE(o)->tp_traverse(o, deeper_ref, d);
    }
    return 0;
}

/* The last new instance reached through container c: among its items (and
 * one level into the untracked tuples and dicts it holds), else one level
 * further (the sessions a list holds, each with its new instance). Fills
 * *out and returns 1, or 0 when none. */
static int through(picking *p, PyObject *c, pl_seen_pick *out)
{
    p->cur = (place){.holder = c};
    Py_TYPE(c)->tp_traverse(c, pick_ref, p);
    *out = (pl_seen_pick){.anchor = c};
    if (p->cur.hits) {
        if (p->cur.container)
            out->steps[out->nsteps++] = p->cur.container;
        out->steps[out->nsteps++] = p->cur.target;
        return 1;
    }
    deeper d = {.p = p};
    Py_TYPE(c)->tp_traverse(c, deeper_item, &d);
    if (!d.found.target)
        return 0;
    out->steps[out->nsteps++] = d.found.holder;
    if (d.found.container)
        out->steps[out->nsteps++] = d.found.container;
    out->steps[out->nsteps++] = d.found.target;
    return 1;
}

/* A list, dict or set that was there at the previous pass and holds new
 * objects: how many. */
typedef struct grown {
    PyObject *container;
    size_t by;
} grown;

/* Keeps c among the PL_SEEN_GROWN containers holding the most new objects,
 * most first. */
static void rank_grown(grown *g, size_t *n, PyObject *c, size_t by)
{
    for (size_t k = 0; k < PL_SEEN_GROWN; k++) {
        if (k == *n || by > g[k].by) {
            size_t move = (*n < PL_SEEN_GROWN ? *n : PL_SEEN_GROWN - 1) - k;
            memmove(g + k + 1, g + k, move * sizeof g[0]);
            g[k] = (grown){c, by};
            if (*n < PL_SEEN_GROWN)
                (*n)++;
            return;
        }
    }
}

/* See witness_seen.h. */
int pl_seen_pick_new(pl_answer *a, PyTypeObject *tp, uint64_t count, const pl_seen *seen, pl_seen *next,
                     pl_seen_pick *picks)
{
    if (seen_init(next, count) < 0)
        return -1;
    picking p = {.tp = tp, .seen = seen, .next = next};
    grown grew[PL_SEEN_GROWN];
    size_t ngrew = 0;
    for (size_t i = 0; i < a->snap.n; i++) {
        PyObject *o = a->snap.v[i];
        obj_add(next, o);
        if (Py_TYPE(o) == tp) {
            seen_add(next, o);
            if (!seen_has(seen, o))
                p.last_new = o;
        }
        if (!Py_TYPE(o)->tp_traverse)
            continue;
        p.cur = (place){.holder = o};
        Py_TYPE(o)->tp_traverse(o, pick_ref, &p);
        if (p.cur.hits)
            rank_holder(&p);
        /* Grown in place: there before, and holding new objects now. */
        if (is_container(o) && obj_has(seen, o) && p.cur.hits + p.cur.new_items)
            rank_grown(grew, &ngrew, o, p.cur.hits + p.cur.new_items);
    }
    size_t n = 0;
    /* The container that grew most and leads to a new instance: the leak's
     * holder, rather than whatever holds the most new instances now. */
    PyObject *via = NULL;
    for (size_t i = 0; i < ngrew && !via; i++)
        if (through(&p, grew[i].container, &picks[0])) {
            via = grew[i].container;
            n++;
        }
    for (size_t k = 0; k < PL_SEEN_TRIES && n < PL_SEEN_TRIES && p.best[k].holder; k++) {
        if (p.best[k].holder == via)
            continue;
        if (p.last_new && n == PL_SEEN_TRIES - 1)
            break; /* the last try is the new instance on its own */
        picks[n] = (pl_seen_pick){.anchor = p.best[k].holder};
        if (p.best[k].container)
            picks[n].steps[picks[n].nsteps++] = p.best[k].container;
        picks[n].steps[picks[n].nsteps++] = p.best[k].target;
        n++;
    }
    if (p.last_new && n < PL_SEEN_TRIES)
        picks[n++] = (pl_seen_pick){.anchor = p.last_new};
    return (int)n;
}
