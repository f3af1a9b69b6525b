/* pyloot extension: declarations shared by the parts of _pyloot.
 * This directory is the only place that includes Python.h.
 *
 * Files, each with one job (their headers say more):
 *   module.c        the module: its definition and the exec of every part (the top)
 *   errors.c        the module state's accessor and pl_raise (the bottom)
 *   store_handler.c the Store and Handler types (pl_store_of), the process functions
 *   rules.c         the redaction and access rules' functions, this process's redaction list
 *   heap.c/.h       reads CPython internals: gc lists, inline attributes, frames
 *   typetable.c/.h  the collector's type table and the names of types ("#n")
 *   sizeof.c/.h     the one shallow size of an object
 *   referents.c/.h  the one labeller of "how does p hold c"
 *   describe.c/.h   bounded repr, attributes, JSON summaries of objects
 *   collector.c     the count pass and the collector thread
 *   requests.c/.h   requests by route: the per-process table, count_request, its take at each sample
 *   witness.c/.h    witness paths of steadily growing types, recorded into the store
 *   remote.c        remote mode: poll thread, forwarding of /_pyloot, encoder
 *   live.c, live_answer.c, live_list.c, live_related.c, live_path.c, live.h: live-object queries
 *   live_retained.c the live routes of the dominator tree (retained, retainers, suspects)
 *   graphobject.c   the Graph type (the refcycle API's methods), over graph_int.h:
 *     graph_components.c  the Components type: SCCs whose graphs are built when used
 *     graph_build.c     vertices and edges from Python objects (snapshot, iterables)
 *     graph_labels.c    vertex descriptions and edge labels of annotated graphs
 *     graph_heapinfo.c  shallow sizes, outside references and untracked objects of a graph
 *     graph_dom.c       roots, dominator tree, retained sizes, leak suspects
 *     graph_live.c      the list of live Graph objects
 *   heap_dump.c     heap dump files written from the live heap, read back for load_heap
 *   util.c/.h       hashing, clock, pointer containers */
#ifndef PYLOOT_PYEXT_H
#define PYLOOT_PYEXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pyloot/buf.h"
#include "pyloot/handler.h"

/* Module state. Every PyObject field is visited by m_traverse and cleared by
 * m_clear in module.c; a part that adds a field adds it to both. Protected
 * by the GIL. */
typedef struct pl_modstate {
    PyObject *error;            /* pyloot._pyloot.Error (errors.c) */
    PyObject *too_large;        /* pyloot._pyloot.TooLargeError: Error and OverflowError */
    PyTypeObject *store_type;   /* store_handler.c */
    PyTypeObject *handler_type; /* store_handler.c */
    PyTypeObject *graph_type;   /* graphobject.c */
    PyTypeObject *components_type; /* graph_components.c */
} pl_modstate;

/* errors.c: the state of this module object. GIL held. */
pl_modstate *pl_modstate_get(PyObject *module);

/* errors.c: the one conversion of a core error into an exception. Raises,
 * for core error rc of an operation `what` ("reading the store"),
 * "<what> failed: <pl_strerror(rc)>" as the module's Error (a RuntimeError),
 * its TooLargeError (an Error and an OverflowError) for PL_ETOOBIG, and
 * MemoryError for ENOMEM. module may be NULL (the module last initialised is
 * used). Always returns NULL. GIL held. */
PyObject *pl_raise(PyObject *module, int rc, const char *what);
/* errors.c: the same for a message already in words (a guarded store's
 * error, which says how to fix it), raised as the module's Error. */
PyObject *pl_raise_message(int rc, const char *message);
/* errors.c: creates the module's Error and TooLargeError. */
int pl_errors_module_exec(PyObject *module);

/* typetable.c: appends "module.qualname" of a type (builtins keep their
 * plain name, e.g. "dict"). Never runs Python code or creates objects
 * per call other than the cached UTF-8 of the names. GIL held. */
int pl_typename(PyTypeObject *tp, pl_buf *out);

/* store_handler.c: the pl_store of a pyloot._pyloot.Store object, reopened
 * first when the process is a fork child of the one that opened it. NULL
 * with an exception set if obj is not an open Store. The handle is owned by
 * the Store object. GIL held. */
struct pl_store;
struct pl_store *pl_store_of(PyObject *obj);
/* A number naming the handle pl_store_of returned, unique in this process:
 * handles are compared by it, since a freed handle's address can be reused. */
uint64_t pl_store_serial(PyObject *obj);
/* store_handler.c: like pl_store_of, but a guarded Store that cannot be used
 * (see its `error`) gives NULL WITHOUT an exception and *why set to what is
 * wrong (owned by the Store; valid while the GIL is held). An open is
 * retried first when its backoff allows. NULL with *why NULL: an exception
 * is set. GIL held. */
struct pl_store *pl_store_try(PyObject *obj, const char **why);

/* store_handler.c: adds the Store and Handler types and the process
 * functions; a Handler answers live-object routes with `live`. */
int pl_store_module_exec(PyObject *module, pl_live_fn live);

/* collector.c: adds the collector functions; the collector thread answers
 * forwarded live-object requests with `live`. */
int pl_collector_module_exec(PyObject *module, pl_live_fn live);
/* In a fork() child (module.c's pthread_atfork handler): forgets the
 * collector thread, its state and pyloot's GIL time of the parent. */
void pl_collector_atfork_child(void);

/* remote.c: adds the remote-mode functions (poll thread, forwarding,
 * encoder); the poll thread answers the central server's queries with `live`. */
int pl_remote_module_exec(PyObject *module, pl_live_fn live);
/* In a fork() child (module.c's pthread_atfork handler): forgets the poll thread. */
void pl_remote_atfork_child(void);

/* heap_dump.c: adds heap_dump and heap_load (docs/heapdump.md). */
int pl_heap_dump_module_exec(PyObject *module);

/* live.c: adds live_query and the LIVE_* constants. */
int pl_live_module_exec(PyObject *module);
/* live.c: answers a live-object query about this process (pl_live_fn of
 * handler.h; ctx unused). Thread-safe: takes the GIL for its whole work. */
int pl_live_answer(void *ctx, const pl_live_query *q, pl_buf *body, int *status);

/* live_retained.c: drops the kept dominator tree of the live routes once it
 * has been idle long enough (docs/live-objects.md). Called by the collector
 * thread's loop WITHOUT the GIL; takes it only when there is a tree to drop. */
void pl_live_tree_tick(void);

/* collector.c: fn is called by the collector thread at each wake-up (about
 * every 50 ms), without the GIL. Set once at module initialisation. */
void pl_collector_set_tick(void (*fn)(void));

/* rules.c: the secret-looking names PyLoot(redact=...) set last in this
 * process (pyloot/redact.h), NULL for the default list; pass it to
 * pl_redact_name. Call with the GIL held. */
struct pl_redact;
const struct pl_redact *pl_redact_current(void);
/* rules.c: adds the redaction and access-rule functions and REDACT_DEFAULT. */
int pl_rules_module_exec(PyObject *module);

/* graphobject.c: the object graph (refcycle API). */
int pl_graph_module_exec(PyObject *module);

#endif
