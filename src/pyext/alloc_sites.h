/* pyloot extension: allocation sites of traced types (alloc_sites.c).
 *
 * A traced type is a heap type (a class made by a class statement) whose
 * tp_alloc slot pyloot replaced with a wrapper; on sampled allocations the
 * wrapper records the Python stack (at most PL_ALLOC_FRAMES frames) as a
 * site, and the new object's address in a map from addresses to sites, so
 * that a query can count the live instances of each site by walking the
 * tracked objects of the type (docs/allocations.md). Types not traced get
 * nothing: their slot is untouched.
 *
 * Sampling: the first PL_ALLOC_SAMPLE_ALL allocations of a type are all
 * recorded (weight 1); after that one in PL_ALLOC_SAMPLE_MEAN on average,
 * at random gaps, each sample weighing the gap it stands for, so that a
 * site's count estimates its live instances.
 *
 * Windows (CPython 3.13, docs/allocations.md): for a class that 3.13 would
 * allocate inline (object's __new__, a Python __init__), the wrapper is
 * installed for sampling windows of PL_ALLOC_WINDOW_SAMPLES samples only,
 * begun by the collector thread's tick (pl_alloc_tick) at least
 * PL_ALLOC_WINDOW_GAP_MS apart, and further apart as the type ages (age /
 * PL_ALLOC_GAP_AGE), until the class has used PL_ALLOC_VERSIONS_CAP version
 * tags. The first window holds the PL_ALLOC_SAMPLE_ALL first allocations.
 *
 * Bounds (docs/security.md): PL_ALLOC_TRACED_MAX types, PL_ALLOC_SITES_MAX
 * sites holding at most PL_ALLOC_SITES_BYTES, PL_ALLOC_ADDR_SLOTS addresses
 * (in sets of 4: a new sample drops the oldest of its set), PL_ALLOC_NAMES_MAX names
 * waiting for their type.
 *
 * Everything here is protected by the GIL. */
#ifndef PYLOOT_PYEXT_ALLOC_SITES_H
#define PYLOOT_PYEXT_ALLOC_SITES_H

#include "pyext.h"
#include "typetable.h"

#define PL_ALLOC_TRACED_MAX 64          /* types traced at once */
#define PL_ALLOC_NAMES_MAX 64           /* names of types not met yet */
#define PL_ALLOC_FRAMES 16              /* frames of a site, innermost first */
#define PL_ALLOC_SITES_MAX 4096         /* sites kept, every type together */
#define PL_ALLOC_SITES_BYTES (4u << 20) /* memory of the sites, their text included */
#define PL_ALLOC_TEXT_MAX 200           /* bytes of a file or function name (cut on UTF-8) */
#define PL_ALLOC_ADDR_SLOTS (1u << 16)  /* the address -> site map: 16 bytes each */
#define PL_ALLOC_SAMPLE_ALL 256         /* first allocations of a type, every one sampled */
#define PL_ALLOC_SAMPLE_MEAN 64         /* then one sample per this many allocations */
#define PL_ALLOC_WINDOW_SAMPLES 128     /* samples per window (3.13) */
#define PL_ALLOC_WINDOW_GAP_MS 250      /* between two windows, at least */
#define PL_ALLOC_GAP_AGE 32             /* and at least the type's traced age / this */
#define PL_ALLOC_VERSIONS_CAP 400       /* no window once the class used that many version tags */
#define PL_ALLOC_TICK_STALE_MS 1000     /* windows end only while the collector ticked this recently */

/* Traces tp. Returns 1 traced (or already), 0 when it cannot be (*why says
 * why: a static type, a custom tp_alloc, the table is full), -1 with an
 * exception set. `automatic`: chosen by the collector, not by the user. */
int pl_alloc_trace(PyTypeObject *tp, int automatic, const char **why);

/* Stops tracing tp and forgets its sites; its slot (and that of subclasses
 * that inherited the wrapper) is restored. 1 when it was traced, else 0. */
int pl_alloc_untrace(PyTypeObject *tp);

/* Called by the collector's count pass (collect_lock and the GIL held,
 * every type of the pass in t): traces the types whose names wait in the
 * list and the growing types the witnesses would pick (witness.h). */
void pl_alloc_sites_pass(pl_type_table *t);

/* The collector thread's tick (no GIL held, every ~50 ms): begins the
 * windows that are due, taking the GIL only then. */
void pl_alloc_tick(void);

/* tp is traced and its wrapper was off between windows at least once: its
 * sites' counts cover the windows only (live_alloc.c scales them). */
int pl_alloc_windowed(PyTypeObject *tp);

/* The traced type named `group` ("mod.T", "mod.T#2" as the history names
 * it), borrowed (alive: the table drops a type when it is freed), or NULL. */
PyTypeObject *pl_alloc_traced_named(const char *group);

/* The site o was recorded at when o was sampled (its address is in the map
 * and the site belongs to o's type), and the weight of the sample; -1 when
 * it was not. Never dereferences anything but o's type pointer. */
long pl_alloc_site_of(PyObject *o, unsigned *weight);

/* Appends the frames of site `site` as a JSON array of
 * {"file", "line", "function"}, innermost first. */
void pl_alloc_site_json(long site, pl_buf *b);

/* Appends "file:line in function" of the innermost frame of site `site`
 * whose file is a real one (not "<string>" and the like: the __new__ of a
 * namedtuple, code made by exec), else of its innermost frame ("(no Python
 * frame)" for a site without frames). The one line witnesses carry. */
void pl_alloc_site_line(long site, pl_buf *b);

/* The sites of tp, appended to *out (indices for pl_alloc_site_json),
 * with the allocations each stands for in *allocs (same order). 0, or -1
 * out of memory (no exception set). Callers free both arrays. */
int pl_alloc_sites_of(PyTypeObject *tp, long **out, uint64_t **allocs, size_t *n);

/* Adds the trace functions (alloc_trace, alloc_trace_name, alloc_untrace,
 * alloc_untrace_all, alloc_wrapped, alloc_duty, alloc_stats) to the module.
 * 0 or -1. */
int pl_alloc_module_exec(PyObject *module);

/* Untraces every type and forgets the names waiting for theirs. With
 * `teardown` (the module is being freed) no Python code is called, so
 * subclasses that inherited the wrapper keep it (it allocates as the plain
 * slot does). GIL held. */
void pl_alloc_untrace_all(int teardown);

#endif
