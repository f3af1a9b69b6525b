/* pyloot extension: which instances of a witnessed type were there before
 * (witness_seen.c). A witness shows an instance that is new since an
 * earlier pass, held by what grew: a pass remembers a fingerprint of every
 * instance of the type and of every tracked object; the next pass picks
 * an instance not remembered, through the list, dict or set that grew in
 * place (there before, holding the most new objects now) when one leads to
 * a new instance, else through the holder of the most new instances
 * (docs/witnesses.md, "The instance").
 *
 * Everything here runs with the GIL held, on the collector thread, inside
 * the witness pass; memory is libc's and bounded per type by
 * 2 * PL_SEEN_MAX_BITS / 8 bytes (256 KiB). */
#ifndef PYLOOT_PYEXT_WITNESS_SEEN_H
#define PYLOOT_PYEXT_WITNESS_SEEN_H

#include "live.h"
#include "pyext.h"

#define PL_SEEN_MIN_BITS ((size_t)1 << 12)
#define PL_SEEN_MAX_BITS ((size_t)1 << 20) /* 128 KiB of fingerprints per type */
#define PL_SEEN_GROWN 8                    /* grown containers a search tries, most new objects first */
#define PL_SEEN_TRIES 3                    /* holders a witness search tries, best first */

/* What one pass saw for one type: one-hash Bloom filters of the addresses
 * of its instances and of every gc-tracked object (a false "seen" only
 * hides a new object, never shows an old one as new). */
typedef struct pl_seen {
    uint64_t *bits;  /* nbits / 64 words, malloc'ed; NULL: nothing remembered */
    size_t nbits;    /* a power of two */
    uint64_t *objs;  /* PL_SEEN_MAX_BITS / 64 words: every tracked object */
} pl_seen;

/* Frees what s holds and zeroes it; a zeroed s is a no-op. No GIL needed. */
void pl_seen_free(pl_seen *s);

/* Remembers the instances of tp there are now into *s (freed and refilled;
 * `count` sizes the filter: the instances the last count pass saw), and
 * every gc-tracked object. Walks the gc-tracked objects and their
 * referents (one level into untracked tuples and dicts), where the
 * instances the gc does not track are (str; a tuple of atoms). GIL held; runs no Python code. 0, or -1 out of memory
 * (s then empty). */
int pl_seen_remember(PyTypeObject *tp, uint64_t count, pl_seen *s);

/* Where a new instance was found: the witness path is the path to
 * `anchor`, then steps[0..nsteps) (the last one the instance). Borrowed
 * from the snapshot. */
typedef struct pl_seen_pick {
    PyObject *anchor;
    PyObject *steps[4];
    size_t nsteps;
} pl_seen_pick;

/* Over a->snap: picks up to PL_SEEN_TRIES places of instances of tp that
 * `seen` does not hold, best first: through the list, dict or set that
 * grew in place (in `seen`, holding the most new objects) among those that
 * lead to a new instance (among its items, or one level below them), then the
 * holders of the most new instances, then the last new tracked instance of
 * the walk on its own. Fills next (zeroed by the caller) with what this
 * pass saw, for the next search. GIL held; runs no Python code. Returns the
 * number of picks, or -1 out of memory. */
int pl_seen_pick_new(pl_answer *a, PyTypeObject *tp, uint64_t count, const pl_seen *seen, pl_seen *next,
                     pl_seen_pick *picks);

#endif
