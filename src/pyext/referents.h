/* pyloot extension: how one object holds another (referents.c), the one
 * vocabulary of edge labels shown by live parents/children (`via`), the
 * why-alive path and graph annotations (docs/edges.md):
 *
 *   attribute 'x'      an attribute of an instance, class or module (its own
 *                      __dict__, inline values or __slots__)
 *   item[3]            an item of a list or tuple
 *   key 'k'            a key of a dict (the key object itself)
 *   value of key 'k'   the value of a dict entry
 *   element            a member of a set or frozenset
 *   local 'job'        a local variable (or cell/free variable) of a frame
 *   __dict__, __class__, __globals__, __closure__, __self__, __func__,
 *   __mro__, __bases__, cell_contents, f_back, f_code, ...
 *                      a C-level field, named by the Python attribute that
 *                      reads it
 *   referent           a reference the object's tp_traverse reports that
 *                      none of the above explains
 *
 * Keys are shown with repr() for str, bytes, numbers, None and tuples of
 * those, and as "<type object at 0x...>" otherwise: making a label never
 * runs user code. Everything here needs the GIL and runs no Python code;
 * it reads fields and never creates a gc object. */
#ifndef PYLOOT_PYEXT_REFERENTS_H
#define PYLOOT_PYEXT_REFERENTS_H

#include "pyext.h"

typedef enum pl_edge_kind {
    PL_EDGE_REFERENT = 0, /* "referent" */
    PL_EDGE_ITEM,         /* index: "item[3]" */
    PL_EDGE_KEY,          /* key is the dict key: "key 'k'" */
    PL_EDGE_VALUE,        /* key is the dict key: "value of key 'k'" */
    PL_EDGE_ELEMENT,      /* "element" */
    PL_EDGE_ATTRIBUTE,    /* key is the attribute name: "attribute 'x'" */
    PL_EDGE_LOCAL,        /* key is the variable name: "local 'job'" */
    PL_EDGE_FIELD,        /* field: a C-level field, e.g. "__class__" */
} pl_edge_kind;

typedef struct pl_edge {
    pl_edge_kind kind;
    const char *field; /* PL_EDGE_FIELD: a static string */
    PyObject *key;     /* ATTRIBUTE, LOCAL: the name; KEY, VALUE: the dict key; else NULL */
    Py_ssize_t index;  /* PL_EDGE_ITEM */
} pl_edge;

/* Called for each labelled referent of p; child and e->key are borrowed and
 * valid during the call only (a __slots__ name is a temporary string).
 * A nonzero return stops the iteration. */
typedef int (*pl_referent_fn)(PyObject *child, const pl_edge *e, void *arg);

/* Calls fn for every reference of p that has a label, in label priority
 * order (a child held several ways comes several times, its most telling
 * label first): locals and f_back of a frame; items of a list or tuple;
 * value then key of each dict entry; set elements; cell_contents; the own
 * __dict__ and the attributes; C-level fields; __class__ last. One pass
 * over p: labelling all out-edges of a vertex costs O(degree). Returns
 * fn's first nonzero value, or 0. */
int pl_referents_each(PyObject *p, pl_referent_fn fn, void *arg);

/* How p holds c: the first label pl_referents_each gives c, or
 * PL_EDGE_REFERENT. Fills *e with a new reference in e->key (release it
 * with pl_edge_clear). Returns 1 when labelled, 0 for PL_EDGE_REFERENT. */
int pl_edge_find(PyObject *p, PyObject *c, pl_edge *e);

/* Drops e->key and resets e to PL_EDGE_REFERENT. */
void pl_edge_clear(pl_edge *e);

/* Appends the label of e ("attribute 'x'", "item[3]", ...) to out, a key
 * cut to 200 characters. Returns 0, or -1 when out of memory. */
int pl_edge_format(const pl_edge *e, pl_buf *out);

#endif
