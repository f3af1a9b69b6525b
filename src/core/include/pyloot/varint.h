/* pyloot core: the one varint (unsigned LEB128: 7 bits a byte, low bits
 * first, the high bit set on every byte but the last) of the store's values
 * and of the remote-mode wire format, with one rule for every reader: a
 * varint that runs past 64 bits (an 11th byte, or a 10th byte above 1) is
 * refused like a truncated one, never cut to 64 bits.
 *
 * Static inline: the store decodes millions of them per history page.
 * Thread-safe (no state). */
#ifndef PYLOOT_VARINT_H
#define PYLOOT_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* The longest varint of a 64-bit value. */
#define PL_VARINT_MAX 10

/* Writes v at p (room for PL_VARINT_MAX bytes); returns the bytes written. */
static inline size_t pl_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint from [p, end) into *v; returns the bytes used, or 0 when
 * the input ends inside it or its value needs more than 64 bits (*v is then
 * left alone). Single bytes, most of the store's values, take the fast path. */
static inline size_t pl_varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;

    if (p < end && !(*p & 0x80)) {
        *v = *p;
        return 1;
    }
    for (size_t n = 0; n < PL_VARINT_MAX && p + n < end; n++) {
        uint8_t b = p[n];
        if (n == PL_VARINT_MAX - 1 && b > 1)
            return 0;
        r |= (uint64_t)(b & 0x7f) << (7 * n);
        if (!(b & 0x80)) {
            *v = r;
            return n + 1;
        }
    }
    return 0;
}

#endif
