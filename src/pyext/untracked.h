/* pyloot extension: the objects the gc does not track (untracked.c).
 *
 * str, bytes, int, float, complex, tuples and dicts that the gc untracked
 * (they hold only such atoms), and instances of any type without
 * Py_TPFLAGS_HAVE_GC are in no gc list: the collector's count pass reaches
 * them as referents of the tracked objects (their tp_traverse) and, through
 * untracked containers, of those. Each such object is counted once per pass,
 * by type, with its shallow size (sizeof.c), into the same type table as the
 * tracked objects.
 *
 * "Once" without a mark on the object: an object whose reference count is 1
 * has one referrer, so the traversals meet it at most once and it needs no
 * entry; any other (shared strings, interned names, small ints, None) goes
 * into a visited set of pointers, open addressing, sized to the pass and
 * kept for the next one. The set holds at most PL_UNTRACKED_SET_MAX_BYTES;
 * past that, a shared object not in the set is counted each time it is met
 * (pl_untracked_pass.overflow says how many times that happened).
 *
 * Immortal and static objects (None, True, small ints, one-character
 * strings, the empty tuple, static types) are counted like any other object
 * reached: once per pass each, a constant that never shows as growth.
 *
 * Owned by the collector (under its collect_lock); not thread-safe; every
 * function but pl_untracked_free needs the GIL. */
#ifndef PYLOOT_PYEXT_UNTRACKED_H
#define PYLOOT_PYEXT_UNTRACKED_H

#include "pyext.h"
#include "typetable.h"

/* The visited set's memory at most: 8M slots of 8 bytes, so up to 4M shared
 * untracked objects per pass are counted exactly once. */
#define PL_UNTRACKED_SET_MAX_BYTES ((size_t)64 << 20)

/* Figures of the last pass. */
typedef struct pl_untracked_pass {
    uint64_t objects;   /* untracked objects counted */
    uint64_t shared;    /* of them, entered into the visited set (reference count > 1) */
    uint64_t overflow;  /* counted without the set's check (the set was full) */
    size_t set_bytes;   /* the set's memory during the pass */
} pl_untracked_pass;

typedef struct pl_untracked {
    uintptr_t *slot;      /* open addressing; 0 is empty */
    size_t cap;           /* power of two, or 0 */
    size_t used;
    PyObject **stack;     /* untracked containers still to traverse (borrowed) */
    size_t depth, stack_cap;
    pl_type_table *table; /* the pass's table (borrowed) */
    PyTypeObject *last_tp;  /* one-entry cache of table lookups */
    pl_type_entry *last_e;
    size_t last_cap;      /* table->cap when last_e was taken (a growth moves entries) */
    int failed;           /* out of memory in this pass: an errno value */
    pl_untracked_pass pass;
    pl_untracked_pass last; /* the previous finished pass */
} pl_untracked;

/* Starts a pass counting into t (whose epoch the caller has started): sizes
 * the set for it from the previous pass, clears it. Returns 0 or ENOMEM. */
int pl_untracked_begin(pl_untracked *u, pl_type_table *t);

/* Counts the untracked objects that the tracked object o refers to, and
 * those their untracked containers refer to. Creates nothing, runs no
 * Python code. Returns 0 or an errno value (out of memory). */
int pl_untracked_referents(pl_untracked *u, PyObject *o);

/* Ends the pass: its figures go to u->last. */
void pl_untracked_end(pl_untracked *u);

/* Frees what u holds and zeroes it; no GIL needed. */
void pl_untracked_free(pl_untracked *u);

#endif
