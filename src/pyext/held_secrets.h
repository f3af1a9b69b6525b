/* pyloot extension: the values the heap holds under a secret-looking name
 * (held_secrets.c), so that such a value is shown as "<redacted>" also where
 * it appears by itself: opened by its id, in an instances list, as a parent,
 * inside another object's repr (docs/security.md, "Values held under a
 * secret-looking name").
 *
 * The rule ("is this object's repr to be redacted"): an object whose repr
 * can carry a secret (pl_secret_kind) is redacted when some dict (an
 * instance's __dict__ or inline values, a module's or class's namespace, any
 * dict with str keys), a __slots__ attribute or a local variable of a frame
 * object holds it under a name that pl_secret_name calls secret, or when it
 * is an item, element or value of a container so held (up to
 * PL_HELD_DEPTH levels, PL_HELD_ITEMS items each). Held that way and
 * elsewhere too: still redacted. The edge rule (children, paths, witnesses
 * redact a step reached under a secret name) applies independently.
 *
 * The set is built once per answer, lazily, by one walk over the gc-tracked
 * objects and the untracked dicts they refer to; it holds addresses only,
 * compared and never dereferenced. A build that runs out of memory fails
 * closed: every object of a secret kind is then redacted.
 * Everything here needs the GIL; not thread-safe (one set per answer). */
#ifndef PYLOOT_PYEXT_HELD_SECRETS_H
#define PYLOOT_PYEXT_HELD_SECRETS_H

#include "pyext.h"
#include "util.h"

#define PL_HELD_DEPTH 4      /* containers within containers followed under a secret name */
#define PL_HELD_ITEMS 10000  /* items of one such container followed */

typedef struct pl_held_secrets {
    pl_ptrmap values; /* addresses of objects held under a secret name */
    int built;        /* 1 once the walk ran (successfully or not) */
    int failed;       /* the walk ran out of memory: redact every secret kind */
} pl_held_secrets;

/* 1 when o is of a kind whose repr can carry a secret: str, bytes and
 * bytearray of at least 2 characters, int (not bool) outside CPython's
 * shared small ints -5..256, float, complex, and the non-empty containers
 * tuple, list, set, frozenset, dict (their reprs show their items). None,
 * bool, empty containers (an empty tuple is shared by the interpreter) and
 * every other type: 0. */
int pl_secret_kind(PyObject *o);

/* Walks the heap and fills s (zeroed by the caller). Runs no Python code;
 * disables the cyclic gc during the walk. Returns 0, or -1 when out of
 * memory (s->failed then set; no exception set). Called by pl_held_secret
 * on first use; call it directly to build eagerly (a heap dump). */
int pl_held_secrets_build(pl_held_secrets *s);

/* "Is this object's repr to be redacted": 1 when o is of a secret kind and
 * held under a secret-looking name (see above), else 0. Builds s on the
 * first call that needs it (so an answer that describes no object of a
 * secret kind pays nothing). s NULL: 0. */
int pl_held_secret(pl_held_secrets *s, PyObject *o);

/* Frees s and zeroes it; a no-op on a zeroed set. */
void pl_held_secrets_free(pl_held_secrets *s);

#endif
