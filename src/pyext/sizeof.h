/* pyloot extension: the one shallow size of an object (sizeof.c), used by
 * the collector's history bytes and by the `size` of live objects alike.
 *
 * It is what sys.getsizeof() reports (the object's C-level __sizeof__ plus
 * the gc and managed-dict pre-header) for every builtin and standard C type,
 * except that a __sizeof__ written in Python is never called: the nearest
 * C-level __sizeof__ of the type's MRO decides. How a type is sized is
 * decided once per type (pl_size_rule_of) so that the collector's count
 * pass sizes a million objects without a Python call or object per object
 * for the common types; see docs/live-objects.md ("Sizes") for the list of
 * types whose size is estimated. All functions need the GIL. */
#ifndef PYLOOT_PYEXT_SIZEOF_H
#define PYLOOT_PYEXT_SIZEOF_H

#include "pyext.h"
#include "util.h"

typedef enum pl_size_kind {
    PL_SIZE_LAYOUT = 0, /* tp_basicsize + tp_itemsize * |ob_size| (object.__sizeof__) */
    PL_SIZE_DICT,       /* dict.__sizeof__, computed here (dict subclasses included) */
    PL_SIZE_LIST,       /* list.__sizeof__, computed here */
    PL_SIZE_SET,        /* set/frozenset.__sizeof__, computed here */
    PL_SIZE_CALL,       /* an allowlisted builtin C __sizeof__, called through its C pointer */
    PL_SIZE_ESTIMATE,   /* a C __sizeof__ outside the allowlist: the layout instead */
} pl_size_kind;

typedef struct pl_size_rule {
    pl_size_kind kind;
    PyCFunction call; /* PL_SIZE_CALL: the METH_NOARGS C function of __sizeof__ */
} pl_size_rule;

/* How instances of tp are sized: the nearest C-level __sizeof__ of its MRO
 * (a Python one is skipped). Reads type dicts only; runs no Python code and
 * creates nothing. */
pl_size_rule pl_size_rule_of(PyTypeObject *tp);

/* The shallow size of o under the rule of its type. PL_SIZE_CALL creates and
 * drops one int (the C function's result: no gc object, no Python code);
 * every other kind creates nothing. Never fails: a failing call falls back
 * to the layout with the exception cleared. */
size_t pl_sizeof_by(PyObject *o, pl_size_rule rule);

/* pl_sizeof_by(o, pl_size_rule_of(Py_TYPE(o))). */
size_t pl_sizeof(PyObject *o);

/* The rules of the types met during one pass over many objects (the object
 * graph's snapshot), decided once per type. Valid only while no Python code
 * runs (a type could be freed and its address reused): a memo lives for one
 * pass. Zero it to start; free it with pl_size_memo_free. Not thread-safe. */
typedef struct pl_size_memo {
    pl_ptrmap index;     /* type address -> index in rules */
    pl_size_rule *rules; /* owned */
    size_t n, cap;
    PyTypeObject *last_tp; /* the last type met (objects of one type come in runs) */
    pl_size_rule last;
} pl_size_memo;

/* pl_sizeof(o), the rule of o's type taken from (or added to) m. Never
 * fails: out of memory, the rule is decided again on each call. */
size_t pl_sizeof_memo(pl_size_memo *m, PyObject *o);

/* Frees what m holds and zeroes it; a no-op on a zeroed memo. */
void pl_size_memo_free(pl_size_memo *m);

#endif
