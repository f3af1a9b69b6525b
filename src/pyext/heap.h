/* pyloot extension: the one place that reads CPython's internals (heap.c):
 * the gc lists, an instance's attributes without building its __dict__,
 * the locals of running frames, and the fields the C __sizeof__ of some
 * types reads. Everything here is called with the GIL
 * held, runs no Python code unless said, and returns borrowed pointers that
 * stay valid only until Python code runs or a collection happens. */
#ifndef PYLOOT_PYEXT_HEAP_H
#define PYLOOT_PYEXT_HEAP_H

#include "pyext.h"

/* Called for each object of a walk; a nonzero return stops the walk. */
typedef int (*pl_visit_fn)(PyObject *obj, void *arg);

/* Calls fn(obj, arg) for every gc-tracked object through the public API
 * (PyUnstable_GC_VisitObjects on 3.12+; on 3.11 one list from
 * gc.get_objects(), which leaves itself and gc.freeze()'s objects out).
 * Prefer pl_live_walk, which uses this only where it has no layout.
 * Returns fn's first nonzero value, or -1 with an exception set. */
int pl_visit_tracked(pl_visit_fn fn, void *arg);

/* Visits every gc-tracked object (frozen ones too) without building a list;
 * fn must run no Python code and allocate no gc object. Returns fn's first
 * nonzero value, or -1 with an exception set. */
int pl_live_walk(pl_visit_fn fn, void *arg);

/* Called with borrowed (name, value) pairs; a nonzero return stops. */
typedef int (*pl_attr_fn)(PyObject *name, PyObject *value, void *arg);

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define PL_HAVE_INLINE_VALUES 1
/* CPython 3.11 to 3.13 keep a managed-dict instance's attributes in a
 * values array laid out by its type's shared keys until something asks for
 * its __dict__, and _PyObject_GetDictPtr would build that dict (a new
 * tracked object that changes the very heap pyloot shows). For an instance
 * of a Py_TPFLAGS_MANAGED_DICT type: *dict gets its dict object when one
 * exists (borrowed, else NULL), and fn(name, value, arg) is called for each
 * attribute held inline (fn may be NULL). Returns fn's first nonzero value,
 * or 0. Creates nothing. */
int pl_managed_attrs(PyObject *o, PyObject **dict, pl_attr_fn fn, void *arg);
#endif

/* The instance's own __dict__ when it exists as a dict object (borrowed),
 * else NULL. Never creates one. */
PyObject *pl_own_dict(PyObject *o);

/* Calls fn(name, value, arg) for o's own attributes: its __dict__ (inline
 * values included) and the __slots__ of its heap types. Runs no property,
 * descriptor or __getattr__; on versions without a layout for inline
 * values (3.14+, free-threaded) the managed __dict__ is built (a documented
 * side effect). Returns fn's first nonzero value, or 0. */
int pl_own_attrs(PyObject *o, pl_attr_fn fn, void *arg);

/* Calls fn(element, arg) for each element of a set or frozenset (borrowed),
 * reading its table: no iterator object, no overridden __iter__. Returns
 * fn's first nonzero value, or 0. */
int pl_set_elements(PyObject *set, pl_visit_fn fn, void *arg);

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define PL_HAVE_SIZE_FIELDS 1
/* What the C __sizeof__ of these CPython 3.11 to 3.13 types returns, read
 * from the object's fields without calling it: no object is created, no
 * Python code runs, nothing fails. The caller has checked that the
 * instance's nearest C __sizeof__ is the one named (sizeof.c). The gc and
 * managed-dict pre-header that sys.getsizeof adds is not included. */
size_t pl_heap_type_size(PyTypeObject *tp);  /* type: heap types with their cached keys */
size_t pl_heap_gen_size(PyObject *gen);      /* generator, coroutine, async generator */
size_t pl_heap_frame_size(PyObject *frame);  /* frame */
size_t pl_heap_code_size(PyObject *code);    /* code, with its co_extra array */
size_t pl_heap_int_size(PyObject *o);        /* int and bool */
size_t pl_heap_str_size(PyObject *o);        /* str, with its UTF-8 (and 3.11 wchar_t) copies */
size_t pl_heap_deque_size(PyObject *o);      /* collections.deque: its blocks */
size_t pl_heap_odict_size(PyObject *o);      /* collections.OrderedDict: dict, node table, nodes */
size_t pl_heap_array_size(PyObject *o);      /* array.array: its allocated items */
#endif

/* Where a generator, coroutine or asynchronous generator stands (heap_gen.c),
 * read from its own interpreter frame without creating a frame object
 * (its cr_frame would: one more tracked object per coroutine asked about).
 * *code and *globals are borrowed (NULL when unknown), *line is the line it
 * is suspended at (its first line before it started; -1 when unknown: it
 * finished, or this CPython's layout is not known). Returns 1 when the
 * frame is still there (created, suspended or running), 0 when it ended.
 * Runs no Python code; creates nothing. */
int pl_gen_where(PyObject *gen, PyObject **code, PyObject **globals, int *line);

/* The frame object a frame object refers to as f_back (borrowed), or NULL;
 * never builds one (PyFrame_GetBack would, for a running frame). */
PyObject *pl_frame_back(PyObject *frame);

typedef pl_attr_fn pl_local_fn;
#define PL_FRAME_MODULE_LEVEL 2

/* Calls fn(name, value, arg) for each local variable of a frame object
 * (fast locals, cells and free variables showing their contents, or the
 * namespace of a class body or exec frame) without building its f_locals
 * on 3.11 and 3.12+ alike. Returns 0, fn's first nonzero value, or
 * PL_FRAME_MODULE_LEVEL when the frame's locals are its globals
 * (module-level code: the module itself is the root). */
int pl_live_frame_locals(PyObject *frame, pl_local_fn fn, void *arg);

/* Called for a field of a frame: `name` is the field's name ("f_back",
 * "f_locals", ...) or NULL for a local variable, whose name is `local`
 * (borrowed; NULL when the code object gives none). `value` may be NULL.
 * A nonzero return stops the walk. */
typedef int (*pl_frame_field_fn)(const char *name, PyObject *local, PyObject *value, void *arg);

/* Calls fn for the references a frame object holds, read from its
 * interpreter frame (3.11 to 3.13; nothing on other versions): f_back,
 * f_trace, f_locals, f_code, f_func and each local slot as stored (a cell
 * variable gives its cell). `running_only`: only for a frame its thread is
 * still running, and only what its tp_traverse does not report (edges of
 * an object graph). Returns fn's first nonzero value or 0. */
int pl_frame_fields(PyObject *frame, int running_only, pl_frame_field_fn fn, void *arg);

/* Calls visit on what a running frame holds beyond what its tp_traverse
 * reports (pl_frame_fields with running_only). */
int pl_frame_extras(PyObject *frame, visitproc visit, void *arg);

/* Calls fn(frame, arg) with a new reference to the frame object of every
 * running frame of every thread of this interpreter, innermost first,
 * thread by thread, but the `skip` innermost frames of the calling thread.
 * fn owns the reference (also when it returns nonzero, which stops the
 * walk). Creates the frame objects that do not exist yet, as
 * sys._current_frames() does: call it with gc disabled. Returns fn's first
 * nonzero value, or 0. */
int pl_running_frames(long skip, pl_visit_fn fn, void *arg);

/* The frames of every thread of this interpreter and their locals, all
 * owned references, for roots of a search or edges of a graph. */
typedef struct pl_frames {
    PyObject **frame; /* innermost first, thread by thread */
    size_t *first;    /* locals of frame i: [first[i], first[i + 1]) */
    size_t n, cap;
    PyObject **name, **value;
    size_t nloc, loccap;
} pl_frames;

/* Fills fr (zeroed by the caller). Call it with gc disabled: building frame
 * objects allocates, and a collection could run finalizers (user code).
 * Returns 0, or -1 when out of memory (fr then holds what was gathered and
 * must still be freed). */
int pl_frames_collect(pl_frames *fr);
/* Drops every reference of fr and zeroes it; a no-op on a zeroed one. */
void pl_frames_free(pl_frames *fr);

#endif
