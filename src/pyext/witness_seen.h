/* pyloot extension: which instances of the witnessed types were there
 * before (witness_seen.c). A witness shows an instance that is new since
 * an earlier pass, held by what grew: a pass remembers a fingerprint of
 * every instance of each candidate type and of every tracked object; the
 * next pass picks, for each type it searches, an instance not remembered,
 * through the list, dict or set that grew in place (there before, holding
 * the most new objects now) when one leads to a new instance, else through
 * the holder of the most new instances (docs/witnesses.md, "The instance").
 * One walk of the heap serves every type of the pass.
 *
 * Everything here runs with the GIL held, on the collector thread, inside
 * the witness pass; memory is libc's and bounded per pass by
 * (PL_SEEN_TYPES + 1) * PL_SEEN_MAX_BITS / 8 bytes (896 KiB). */
#ifndef PYLOOT_PYEXT_WITNESS_SEEN_H
#define PYLOOT_PYEXT_WITNESS_SEEN_H

#include "live.h"
#include "pyext.h"

#define PL_SEEN_MIN_BITS ((size_t)1 << 12)
#define PL_SEEN_MAX_BITS ((size_t)1 << 20) /* 128 KiB of fingerprints per type */
#define PL_SEEN_TYPES 6                    /* types one pass remembers at most */
#define PL_SEEN_GROWN 8                    /* grown containers a search tries, most new objects first */
#define PL_SEEN_TRIES 3                    /* holders a witness search tries, best first */

/* What one pass saw: one-hash Bloom filters of the addresses of the
 * instances of each of its types (in the order the pass was given them)
 * and of every gc-tracked object (a false "seen" only hides a new object,
 * never shows an old one as new). */
typedef struct pl_seen {
    size_t ntypes;
    uint64_t *bits[PL_SEEN_TYPES]; /* nbits[i] / 64 words each, malloc'ed */
    size_t nbits[PL_SEEN_TYPES];   /* powers of two */
    uint64_t *objs;                /* PL_SEEN_MAX_BITS / 64 words: every tracked object; NULL: empty */
} pl_seen;

/* Frees what s holds and zeroes it; a zeroed s is a no-op. No GIL needed. */
void pl_seen_free(pl_seen *s);

/* Where a new instance was found: the witness path is the path to
 * `anchor`, then steps[0..nsteps) (the last one the instance). Borrowed
 * from the snapshot. */
typedef struct pl_seen_pick {
    PyObject *anchor;
    PyObject *steps[4];
    size_t nsteps;
} pl_seen_pick;

/* One type of a pass: what the caller asks, and (pl_seen_pick_new) what
 * was found. */
typedef struct pl_seen_type {
    PyTypeObject *tp;
    uint64_t count; /* instances at the last count pass: sizes its filter */
    int prev;       /* its filter in the previous pass's pl_seen, or -1: only remember it */
    pl_seen_pick picks[PL_SEEN_TRIES];
    int npicks;     /* out: places of new instances, best first */
} pl_seen_type;

/* Remembers the instances of types[0..n) there are now, and every
 * gc-tracked object, into *next (freed and refilled; filter i is type i).
 * One walk of the gc-tracked objects and their referents (one level into
 * untracked tuples and dicts), where the instances the gc does not track
 * are (str; a tuple of atoms). n <= PL_SEEN_TYPES. GIL held; runs no
 * Python code. 0, or -1 out of memory (next then empty). */
int pl_seen_remember(const pl_seen_type *types, size_t n, pl_seen *next);

/* Over a->snap, in one walk: for each type whose prev is >= 0, picks up
 * to PL_SEEN_TRIES places of its instances that seen->bits[prev] does not
 * hold, best first: through the list, dict or set that grew in place (in
 * seen->objs, holding the most new objects) among those that lead to a
 * new instance (among its items, or one level below them), then the
 * holders of the most new instances, then the last new tracked instance of
 * the walk on its own. Fills *next (freed and refilled) with what this
 * walk saw of every type, for the next pass. GIL held; runs no Python
 * code. 0, or -1 out of memory (next then empty, no picks). */
int pl_seen_pick_new(pl_answer *a, pl_seen_type *types, size_t n, const pl_seen *seen, pl_seen *next);

#endif
