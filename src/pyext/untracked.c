/* untracked.c: counting the objects the gc does not track, each once per
 * pass (see untracked.h for the rule and its bound). */
#include "untracked.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SET_MIN_CAP 1024u
#define SET_MAX_CAP (PL_UNTRACKED_SET_MAX_BYTES / sizeof(uintptr_t))

static int set_resize(pl_untracked *u, size_t cap)
{
    uintptr_t *slot = calloc(cap, sizeof *slot);
    if (!slot)
        return ENOMEM;
    for (size_t i = 0; i < u->cap; i++) {
        uintptr_t p = u->slot[i];
        if (!p)
            continue;
        size_t j = pl_hash_ptr(p) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = p;
    }
    free(u->slot);
    u->slot = slot;
    u->cap = cap;
    u->pass.set_bytes = cap * sizeof *slot;
    return 0;
}

/* 1 when p was not in the set (and is now, or the set is full and it was
 * not added: the caller counts it either way), 0 when it was. */
static int set_add(pl_untracked *u, uintptr_t p)
{
    if ((u->used + 1) * 2 > u->cap) {
        if (u->cap >= SET_MAX_CAP || set_resize(u, u->cap ? u->cap * 2 : SET_MIN_CAP)) {
            /* Full: look it up, count it again when absent. */
            if (!u->cap)
                return 1;
            size_t i = pl_hash_ptr(p) & (u->cap - 1);
            for (size_t n = 0; n < u->cap && u->slot[i]; n++, i = (i + 1) & (u->cap - 1))
                if (u->slot[i] == p)
                    return 0;
            u->pass.overflow++;
            return 1;
        }
    }
    size_t i = pl_hash_ptr(p) & (u->cap - 1);
    while (u->slot[i]) {
        if (u->slot[i] == p)
            return 0;
        i = (i + 1) & (u->cap - 1);
    }
    u->slot[i] = p;
    u->used++;
    u->pass.shared++;
    return 1;
}

/* See untracked.h. */
int pl_untracked_begin(pl_untracked *u, pl_type_table *t)
{
    size_t want = SET_MIN_CAP;
    while (want < SET_MAX_CAP && want < 2 * u->last.shared)
        want *= 2;
    /* Kept across passes; shrunk when the last pass used far less. */
    if (u->cap < want || u->cap > 4 * want) {
        free(u->slot);
        u->slot = NULL;
        u->cap = 0;
        u->slot = calloc(want, sizeof *u->slot);
        if (!u->slot)
            return ENOMEM;
        u->cap = want;
    } else {
        memset(u->slot, 0, u->cap * sizeof *u->slot);
    }
    u->used = 0;
    u->depth = 0;
    u->table = t;
    u->last_tp = NULL;
    u->last_e = NULL;
    u->failed = 0;
    memset(&u->pass, 0, sizeof u->pass);
    u->pass.set_bytes = u->cap * sizeof *u->slot;
    return 0;
}

static pl_type_entry *entry_of(pl_untracked *u, PyTypeObject *tp)
{
    if (tp == u->last_tp && u->table->cap == u->last_cap)
        return u->last_e;
    pl_type_entry *e = pl_typetable_lookup(u->table, tp);
    if (!e)
        return NULL;
    u->last_tp = tp;
    u->last_e = e;
    u->last_cap = u->table->cap;
    return e;
}

static int push(pl_untracked *u, PyObject *o)
{
    if (u->depth == u->stack_cap) {
        size_t cap = u->stack_cap ? u->stack_cap * 2 : 64;
        PyObject **stack = realloc(u->stack, cap * sizeof *stack);
        if (!stack)
            return ENOMEM;
        u->stack = stack;
        u->stack_cap = cap;
    }
    u->stack[u->depth++] = o;
    return 0;
}

/* The visitproc of the traversals: counts an untracked referent once, and
 * queues it when it is a container (an untracked tuple or dict, whose items
 * are untracked too). A tracked referent is left to the walk over the gc
 * lists. Never stops a traversal: a failure is kept in u->failed. */
static int visit(PyObject *o, void *arg)
{
    pl_untracked *u = arg;
    if (!o)
        return 0;
    PyTypeObject *tp = Py_TYPE(o);
    /* The type's flag first: str, bytes, int and float are decided without
     * a call. PyObject_IS_GC also asks tp_is_gc (a static type object has
     * no gc header). */
    int is_gc = PyType_IS_GC(tp) && PyObject_IS_GC(o);
    if (is_gc && PyObject_GC_IsTracked(o))
        return 0;
    if (Py_REFCNT(o) > 1 && !set_add(u, (uintptr_t)o))
        return 0;
    pl_type_entry *e = entry_of(u, tp);
    if (!e) {
        u->failed = ENOMEM;
        return 0;
    }
    e->count++;
    e->bytes += pl_sizeof_by(o, e->size);
    u->pass.objects++;
    if (is_gc && tp->tp_traverse && push(u, o))
        u->failed = ENOMEM;
    return 0;
}

/* See untracked.h. */
int pl_untracked_referents(pl_untracked *u, PyObject *o)
{
    traverseproc traverse = Py_TYPE(o)->tp_traverse;
    if (!traverse)
        return 0;
    traverse(o, visit, u);
    while (u->depth) {
        PyObject *c = u->stack[--u->depth];
        Py_TYPE(c)->tp_traverse(c, visit, u);
    }
    return u->failed;
}

/* See untracked.h. */
void pl_untracked_end(pl_untracked *u)
{
    u->last = u->pass;
    u->table = NULL;
    u->last_tp = NULL;
    u->last_e = NULL;
}

/* See untracked.h. */
void pl_untracked_free(pl_untracked *u)
{
    free(u->slot);
    free(u->stack);
    memset(u, 0, sizeof *u);
}
