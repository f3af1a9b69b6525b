/* witness_seen.c: which instances of the witnessed types were there at the
 * previous pass, and where the new ones are (witness_seen.h). */
#include "witness_seen.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h"

/* See witness_seen.h. */
void pl_seen_free(pl_seen *s)
{
    for (size_t i = 0; i < PL_SEEN_TYPES; i++)
        free(s->bits[i]);
    free(s->objs);
    memset(s, 0, sizeof *s);
}

/* Empties s and sizes its filters: for type i about types[i].count
 * instances, 8 bits each, within [PL_SEEN_MIN_BITS, PL_SEEN_MAX_BITS].
 * 0 or -1. */
static int seen_init(pl_seen *s, const pl_seen_type *types, size_t n)
{
    pl_seen_free(s);
    if (n > PL_SEEN_TYPES)
        return -1;
    s->objs = calloc(PL_SEEN_MAX_BITS / 64, sizeof(uint64_t));
    if (!s->objs)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t nbits = PL_SEEN_MIN_BITS;
        while (nbits < PL_SEEN_MAX_BITS && nbits / 8 < types[i].count)
            nbits <<= 1;
        s->bits[i] = calloc(nbits / 64, sizeof(uint64_t));
        if (!s->bits[i]) {
            pl_seen_free(s);
            return -1;
        }
        s->nbits[i] = nbits;
    }
    s->ntypes = n;
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

/* Any tracked object. */
static void obj_add(pl_seen *s, const void *p)
{
    bit_set(s->objs, PL_SEEN_MAX_BITS, p);
}

static int obj_has(const pl_seen *s, const void *p)
{
    return bit_has(s->objs, PL_SEEN_MAX_BITS, p);
}

/* The index of tp among types[0..n), or -1. */
static int type_index(PyTypeObject *const *tps, size_t n, const PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    for (size_t i = 0; i < n; i++)
        if (tps[i] == tp)
            return (int)i;
    return -1;
}

/* 1 for a list, dict or set: what a leak grows in place. */
static int is_container(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    return tp == &PyList_Type || tp == &PyDict_Type || tp == &PySet_Type;
}

/* ---- remembering ---- */

typedef struct remembering {
    PyTypeObject *tp[PL_SEEN_TYPES];
    size_t n;
    pl_seen *s;
} remembering;

static void remember_if(remembering *r, PyObject *o)
{
    int i = type_index(r->tp, r->n, o);
    if (i >= 0)
        bit_set(r->s->bits[i], r->s->nbits[i], o);
}

static int remember_inner(PyObject *o, void *arg)
{
    if (o)
        remember_if(arg, o);
    return 0;
}

/* A referent of a tracked object: an instance, or an untracked container
 * (tuple, dict) whose items are looked at one level down. */
static int remember_ref(PyObject *o, void *arg)
{
    if (!o)
        return 0;
    remember_if(arg, o);
    if (PyObject_IS_GC(o) && !PyObject_GC_IsTracked(o) && Py_TYPE(o)->tp_traverse)
        Py_TYPE(o)->tp_traverse(o, remember_inner, arg);
    return 0;
}

/* A tracked object, and its referents: an instance may be untracked even
 * when its type is a gc type (a tuple or dict of atoms). */
static int remember_one(PyObject *o, void *arg)
{
    remembering *r = arg;
    remember_if(r, o);
    obj_add(r->s, o);
    if (Py_TYPE(o)->tp_traverse)
        Py_TYPE(o)->tp_traverse(o, remember_ref, arg);
    return 0;
}

/* See witness_seen.h. */
int pl_seen_remember(const pl_seen_type *types, size_t n, pl_seen *next)
{
    if (seen_init(next, types, n) < 0)
        return -1;
    remembering r = {.n = n, .s = next};
    for (size_t i = 0; i < n; i++)
        r.tp[i] = types[i].tp;
    int gc_was_enabled = PyGC_Disable();
    int rc = pl_live_walk(remember_one, &r);
    if (gc_was_enabled)
        PyGC_Enable();
    if (rc < 0) {
        PyErr_Clear();
        pl_seen_free(next);
        return -1;
    }
    return 0;
}

/* ---- picking a new instance ---- */

/* A place where a new instance is: holder → container (an untracked tuple
 * or dict, or NULL) → target. */
typedef struct place {
    PyObject *holder, *container, *target;
    size_t hits; /* new instances the holder refers to */
} place;

/* A list, dict or set that was there at the previous pass and holds new
 * objects: how many. */
typedef struct grown {
    PyObject *container;
    size_t by;
} grown;

/* What the walk keeps for one searched type. */
typedef struct sought {
    const uint64_t *seen_bits; /* its filter from the previous pass */
    size_t seen_nbits;
    place cur; /* the holder being traversed */
    place best[PL_SEEN_TRIES];
    grown grew[PL_SEEN_GROWN];
    size_t ngrew;
    PyObject *last_new; /* the last new tracked instance met in the walk */
} sought;

typedef struct picking {
    PyTypeObject *tp[PL_SEEN_TYPES];
    size_t n;
    sought t[PL_SEEN_TYPES];
    int search[PL_SEEN_TYPES];
    const pl_seen *seen;
    pl_seen *next;
    PyObject *container; /* the untracked container being looked into */
    PyObject *holder;    /* the object being traversed */
    size_t new_items;    /* new tracked objects it refers to */
    unsigned touched;    /* types whose cur.hits counts for this holder */
} picking;

static int is_new(const sought *t, const PyObject *o)
{
    return !bit_has(t->seen_bits, t->seen_nbits, o);
}

static void meet(picking *p, int i, PyObject *container, PyObject *o)
{
    bit_set(p->next->bits[i], p->next->nbits[i], o);
    sought *t = &p->t[i];
    if (!p->search[i] || !is_new(t, o))
        return;
    if (!(p->touched & (1u << i))) {
        t->cur = (place){.holder = p->holder};
        p->touched |= 1u << i;
    }
    t->cur.hits++;
    t->cur.container = container;
    t->cur.target = o;
}

static int pick_inner(PyObject *o, void *arg)
{
    picking *p = arg;
    int i = o ? type_index(p->tp, p->n, o) : -1;
    if (i >= 0)
        meet(p, i, p->container, o);
    return 0;
}

static int pick_ref(PyObject *o, void *arg)
{
    picking *p = arg;
    if (!o)
        return 0;
    if (PyObject_IS_GC(o) && PyObject_GC_IsTracked(o) && !obj_has(p->seen, o))
        p->new_items++;
    int i = type_index(p->tp, p->n, o);
    if (i >= 0) {
        meet(p, i, NULL, o);
    } else if (PyObject_IS_GC(o) && !PyObject_GC_IsTracked(o) && Py_TYPE(o)->tp_traverse) {
        p->container = o;
        Py_TYPE(o)->tp_traverse(o, pick_inner, p);
    }
    return 0;
}

/* Traverses holder o: afterwards p->new_items, and t[i].cur for the types
 * in p->touched. */
static void traverse_holder(picking *p, PyObject *o)
{
    p->holder = o;
    p->new_items = 0;
    p->touched = 0;
    Py_TYPE(o)->tp_traverse(o, pick_ref, p);
}

/* Keeps cur among the best holders: more new instances first; on a tie the
 * later one in the walk (the newer, as a rule). */
static void rank_holder(sought *t)
{
    for (size_t k = 0; k < PL_SEEN_TRIES; k++) {
        if (!t->best[k].holder || t->cur.hits >= t->best[k].hits) {
            memmove(t->best + k + 1, t->best + k, (PL_SEEN_TRIES - 1 - k) * sizeof t->best[0]);
            t->best[k] = t->cur;
            return;
        }
    }
}

/* Keeps c among the PL_SEEN_GROWN containers holding the most new objects,
 * most first. */
static void rank_grown(sought *t, PyObject *c, size_t by)
{
    for (size_t k = 0; k < PL_SEEN_GROWN; k++) {
        if (k == t->ngrew || by > t->grew[k].by) {
            size_t move = (t->ngrew < PL_SEEN_GROWN ? t->ngrew : PL_SEEN_GROWN - 1) - k;
            memmove(t->grew + k + 1, t->grew + k, move * sizeof t->grew[0]);
            t->grew[k] = (grown){c, by};
            if (t->ngrew < PL_SEEN_GROWN)
                t->ngrew++;
            return;
        }
    }
}

/* The new instance of type i an item of a grown container leads to: the
 * item's own referents, and one level into the dicts among them (an
 * instance's __dict__, a record's fields). */
typedef struct deeper {
    picking *p;
    int i;
    PyObject *item;
    PyObject *container;
    place found;
} deeper;

static int deeper_inner(PyObject *o, void *arg)
{
    deeper *d = arg;
    if (o && Py_TYPE(o) == d->p->tp[d->i] && is_new(&d->p->t[d->i], o))
        d->found = (place){.holder = d->item, .container = d->container, .target = o, .hits = 1};
    return 0;
}

static int deeper_ref(PyObject *o, void *arg)
{
    deeper *d = arg;
    if (!o)
        return 0;
    if (Py_TYPE(o) == d->p->tp[d->i]) {
        if (is_new(&d->p->t[d->i], o))
            d->found = (place){.holder = d->item, .target = o, .hits = 1};
    } else if (PyDict_CheckExact(o) || (PyObject_IS_GC(o) && !PyObject_GC_IsTracked(o) && Py_TYPE(o)->tp_traverse)) {
        d->container = o;
        Py_TYPE(o)->tp_traverse(o, deeper_inner, d);
    }
    return 0;
}

static int deeper_item(PyObject *o, void *arg)
{
    deeper *d = arg;
    if (o && PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse && Py_TYPE(o) != d->p->tp[d->i]) {
        d->item = o;
        Py_TYPE(o)->tp_traverse(o, deeper_ref, d);
    }
    return 0;
}

/* The last new instance of type i reached through container c: among its
 * items (and one level into the untracked tuples and dicts it holds), else
 * one level further (the sessions a list holds, each with its new
 * instance). Fills *out and returns 1, or 0 when none. */
static int through(picking *p, int i, PyObject *c, pl_seen_pick *out)
{
    traverse_holder(p, c);
    const sought *t = &p->t[i];
    *out = (pl_seen_pick){.anchor = c};
    if ((p->touched & (1u << i)) && t->cur.hits) {
        if (t->cur.container)
            out->steps[out->nsteps++] = t->cur.container;
        out->steps[out->nsteps++] = t->cur.target;
        return 1;
    }
    deeper d = {.p = p, .i = i};
    Py_TYPE(c)->tp_traverse(c, deeper_item, &d);
    if (!d.found.target)
        return 0;
    out->steps[out->nsteps++] = d.found.holder;
    if (d.found.container)
        out->steps[out->nsteps++] = d.found.container;
    out->steps[out->nsteps++] = d.found.target;
    return 1;
}

/* The picks of type i, once the walk is done (witness_seen.h). */
static void choose(picking *p, int i, pl_seen_type *out)
{
    sought *t = &p->t[i];
    pl_seen_pick *picks = out->picks;
    int n = 0;
    /* The container that grew most and leads to a new instance: the leak's
     * holder, rather than whatever holds the most new instances now. */
    PyObject *via = NULL;
    for (size_t k = 0; k < t->ngrew && !via; k++)
        if (through(p, i, t->grew[k].container, &picks[0])) {
            via = t->grew[k].container;
            n++;
        }
    for (size_t k = 0; k < PL_SEEN_TRIES && n < PL_SEEN_TRIES && t->best[k].holder; k++) {
        if (t->best[k].holder == via)
            continue;
        if (t->last_new && n == PL_SEEN_TRIES - 1)
            break; /* the last try is the new instance on its own */
        picks[n] = (pl_seen_pick){.anchor = t->best[k].holder};
        if (t->best[k].container)
            picks[n].steps[picks[n].nsteps++] = t->best[k].container;
        picks[n].steps[picks[n].nsteps++] = t->best[k].target;
        n++;
    }
    if (t->last_new && n < PL_SEEN_TRIES)
        picks[n++] = (pl_seen_pick){.anchor = t->last_new};
    out->npicks = n;
}

/* See witness_seen.h. */
int pl_seen_pick_new(pl_answer *a, pl_seen_type *types, size_t n, const pl_seen *seen, pl_seen *next)
{
    for (size_t i = 0; i < n; i++)
        types[i].npicks = 0;
    if (seen_init(next, types, n) < 0)
        return -1;
    picking p;
    memset(&p, 0, sizeof p);
    p.n = n;
    p.seen = seen;
    p.next = next;
    unsigned searched = 0;
    for (size_t i = 0; i < n; i++) {
        p.tp[i] = types[i].tp;
        int prev = types[i].prev;
        if (prev >= 0 && (size_t)prev < seen->ntypes && seen->objs) {
            p.search[i] = 1;
            p.t[i].seen_bits = seen->bits[prev];
            p.t[i].seen_nbits = seen->nbits[prev];
            searched |= 1u << i;
        }
    }
    for (size_t k = 0; k < a->snap.n; k++) {
        PyObject *o = a->snap.v[k];
        obj_add(next, o);
        int i = type_index(p.tp, n, o);
        if (i >= 0) {
            bit_set(next->bits[i], next->nbits[i], o);
            if (p.search[i] && is_new(&p.t[i], o))
                p.t[i].last_new = o;
        }
        if (!Py_TYPE(o)->tp_traverse)
            continue;
        traverse_holder(&p, o);
        for (size_t j = 0; j < n; j++) {
            if (!(searched & (1u << j)))
                continue;
            size_t hits = (p.touched & (1u << j)) ? p.t[j].cur.hits : 0;
            if (hits)
                rank_holder(&p.t[j]);
            /* Grown in place: there before, and holding new objects now. */
            if (is_container(o) && (hits || p.new_items) && obj_has(seen, o))
                rank_grown(&p.t[j], o, hits + p.new_items);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (p.search[i])
            choose(&p, (int)i, &types[i]);
    return 0;
}
