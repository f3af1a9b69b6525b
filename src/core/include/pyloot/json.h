/* pyloot core: a small streaming JSON writer over pl_buf (there is no
 * reader: pyloot never parses JSON in C).
 *
 * The writer does not track nesting: callers emit '{', ',', ':' themselves
 * with the helpers below. Strings are escaped per RFC 8259; invalid UTF-8 is
 * replaced by U+FFFD so every body pyloot sends is valid JSON.
 *
 * Ownership and threads: every function appends to a pl_buf owned by the
 * caller (one thread at a time per buffer, as buf.h says) and keeps no state
 * of its own, so different buffers may be written from different threads. */
#ifndef PYLOOT_JSON_H
#define PYLOOT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/buf.h"

/* Appends `s` (len bytes, may contain NUL) as a quoted JSON string. */
int pl_json_str(pl_buf *b, const char *s, size_t len);
/* Appends a NUL-terminated string as a quoted JSON string. */
int pl_json_cstr(pl_buf *b, const char *s);
/* Appends `"key":` (key is a literal without characters needing escapes). */
int pl_json_key(pl_buf *b, const char *key);
int pl_json_u64(pl_buf *b, uint64_t v);
/* Appends v as a JSON string of its decimal digits ("18446744073709551615"):
 * for values that may pass 2^53, which a JavaScript number would round (an
 * incarnation's start: a pushed worker's is 2^63 + n). */
int pl_json_u64_str(pl_buf *b, uint64_t v);
int pl_json_i64(pl_buf *b, int64_t v);
/* Appends a finite double with up to 17 significant digits; NaN/inf become null. */
int pl_json_f64(pl_buf *b, double v);
int pl_json_bool(pl_buf *b, int v);
/* 1 when s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points past U+10FFFF), else 0. The check the writer replaces by. */
int pl_utf8_valid(const char *s, size_t len);
/* Appends {"error": msg} as a complete document. */
int pl_json_error(pl_buf *b, const char *msg);

#endif
