/* pyloot extension: the one shallow size of an object (sizeof.c), used by
 * the collector's history bytes and by the `size` of live objects alike.
 *
 * It is what sys.getsizeof() reports (the object's C-level __sizeof__ plus
 * the gc and managed-dict pre-header) for every builtin type and the
 * standard C types listed in docs/live-objects.md ("Sizes"), except that a
 * __sizeof__ written in Python is never called: the nearest C-level
 * __sizeof__ of the type's MRO decides. How a type is sized is decided once
 * per type (pl_size_rule_of); sizing an object then creates no Python object
 * and runs no Python code, so the collector's count pass sizes a million
 * objects without disturbing the heap it measures. A C __sizeof__ that is
 * not computed here is estimated by the layout, in both views alike. All
 * functions need the GIL. */
#ifndef PYLOOT_PYEXT_SIZEOF_H
#define PYLOOT_PYEXT_SIZEOF_H

#include "pyext.h"
#include "util.h"

typedef enum pl_size_kind {
    PL_SIZE_LAYOUT = 0, /* tp_basicsize + tp_itemsize * |ob_size| (object.__sizeof__) */
    PL_SIZE_DICT,       /* dict.__sizeof__ (dict subclasses included) */
    PL_SIZE_LIST,       /* list.__sizeof__ */
    PL_SIZE_SET,        /* set/frozenset.__sizeof__ */
    PL_SIZE_BYTEARRAY,  /* bytearray.__sizeof__: its allocation */
    PL_SIZE_TYPE,       /* type.__sizeof__ (metaclasses included) */
    PL_SIZE_GEN,        /* generator, coroutine, async_generator: their frame */
    PL_SIZE_FRAME,      /* frame.__sizeof__: its frame data */
    PL_SIZE_CODE,       /* code.__sizeof__ */
    PL_SIZE_INT,        /* int.__sizeof__ (bool included) */
    PL_SIZE_STR,        /* str.__sizeof__ */
    PL_SIZE_DEQUE,      /* collections.deque.__sizeof__: its blocks */
    PL_SIZE_ODICT,      /* collections.OrderedDict.__sizeof__: dict and nodes */
    PL_SIZE_ARRAY,      /* array.array.__sizeof__: its allocation */
    PL_SIZE_ESTIMATE,   /* a C __sizeof__ not computed here: the layout instead */
} pl_size_kind;

typedef struct pl_size_rule {
    pl_size_kind kind;
} pl_size_rule;

/* How instances of tp are sized: the nearest C-level __sizeof__ of its MRO
 * (a Python one is skipped). Reads type dicts only; runs no Python code and
 * creates nothing. */
pl_size_rule pl_size_rule_of(PyTypeObject *tp);

/* The shallow size of o, rule being pl_size_rule_of(Py_TYPE(o)) (cached by
 * the caller). Reads o's fields only: creates nothing, runs no Python code,
 * never fails. */
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
