/* pyloot core: the one parser of numbers and points in time that come from
 * outside (HTTP parameters, command-line arguments), and the one match of a
 * type-name filter. Every value is checked
 * for overflow before it is used, and every refusal is PL_EBADARG: callers
 * turn it into a 400 or an exit status 2 naming the parameter.
 *
 * Ownership and threads: the functions read [s, s + len) (no NUL needed),
 * write only through their out pointers and keep no state: thread-safe. */
#ifndef PYLOOT_PARSE_H
#define PYLOOT_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* The latest point in time any parser accepts: 9999-12-31T23:59:59.999Z. */
#define PL_PARSE_TIME_MAX_MS 253402300799999LL

/* A strict unsigned decimal: one or more ASCII digits and nothing else (no
 * sign, space or leading '+'), whose value lies in [lo, hi]. 0 with *out
 * set, or PL_EBADARG (also for a value past 2^64 - 1). */
int pl_parse_u64(const char *s, size_t len, uint64_t lo, uint64_t hi, uint64_t *out);

/* Unix seconds with up to three decimals ("1764320000", "1764320000.25"),
 * from 1970 (exclusive) to PL_PARSE_TIME_MAX_MS, into milliseconds. 0 with
 * *out_ms set, or PL_EBADARG. */
int pl_parse_unix_ms(const char *s, size_t len, int64_t *out_ms);

/* ISO 8601 in UTC or with an offset: "2026-11-28", "2026-11-28T09:30",
 * "2026-11-28 09:30:00.5Z", "2026-11-28T09:30:00+01:00" (no offset: UTC),
 * from 1970 to PL_PARSE_TIME_MAX_MS, into unix milliseconds. 0 with *out_ms
 * set, or PL_EBADARG. */
int pl_parse_iso8601_ms(const char *s, size_t len, int64_t *out_ms);

/* 1 when needle[0..m) occurs in hay[0..n), ASCII letters compared without
 * case (the q= filter of /api/history and -q of the command); 1 for an
 * empty needle. */
int pl_contains_ci(const char *hay, size_t n, const char *needle, size_t m);

#endif
