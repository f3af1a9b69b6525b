/* pyloot core: the one string hash, 64-bit FNV-1a, and the one mixer of
 * 64-bit values (the murmur3 finalizer).
 *
 * The store persists pl_hash_mix(pl_fnv1a64(name)) as the prefix of its type
 * names' keys (store/types.c): both must stay bit-exact, or stores written
 * before would no longer find their names. Thread-safe (no state). */
#ifndef PYLOOT_HASH_H
#define PYLOOT_HASH_H

#include <stddef.h>
#include <stdint.h>

#define PL_FNV1A64_INIT 1469598103934665603ULL
#define PL_FNV1A64_PRIME 1099511628211ULL

/* One FNV-1a step: folds the value v (a byte, or a whole integer) into h. */
static inline uint64_t pl_fnv1a64_step(uint64_t h, uint64_t v)
{
    return (h ^ v) * PL_FNV1A64_PRIME;
}

/* FNV-1a of n bytes at p, folded into h (PL_FNV1A64_INIT to start). */
static inline uint64_t pl_fnv1a64_more(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;

    for (size_t i = 0; i < n; i++)
        h = pl_fnv1a64_step(h, s[i]);
    return h;
}

/* FNV-1a of n bytes at p. */
static inline uint64_t pl_fnv1a64(const void *p, size_t n)
{
    return pl_fnv1a64_more(PL_FNV1A64_INIT, p, n);
}

/* Mixes every bit of x into every other (murmur3's 64-bit finalizer, first
 * half): for hash tables indexed by the low bits and keys sorted by the high. */
static inline uint64_t pl_hash_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

#endif
