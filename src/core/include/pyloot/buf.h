/* pyloot core: growable byte buffer used by the JSON writer, gzip and the
 * HTTP handler. Allocates with libc only (never PyMem_*). Not thread-safe:
 * one buffer belongs to one thread at a time. */
#ifndef PYLOOT_BUF_H
#define PYLOOT_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct pl_buf {
    char *data; /* owned; NUL-terminated when len > 0 or after pl_buf_cstr */
    size_t len;
    size_t cap;
    int err;    /* first error (ENOMEM) seen by an append; sticky */
} pl_buf;

#define PL_BUF_INIT {NULL, 0, 0, 0}

/* Frees the data and resets to empty. pl_buf_free on an empty buf is a no-op. */
void pl_buf_free(pl_buf *b);
/* Empties the buffer but keeps its memory. */
void pl_buf_reset(pl_buf *b);
/* Ensures room for `extra` more bytes. Returns 0 or ENOMEM (also stored in b->err). */
int pl_buf_reserve(pl_buf *b, size_t extra);
/* Appends bytes. Returns 0 or ENOMEM; after an error further appends are no-ops. */
int pl_buf_append(pl_buf *b, const void *data, size_t len);
int pl_buf_puts(pl_buf *b, const char *s);
int pl_buf_putc(pl_buf *b, char c);
int pl_buf_printf(pl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pl_buf_vprintf(pl_buf *b, const char *fmt, va_list ap);
/* Returns the contents as a NUL-terminated string ("" when empty); owned by b. */
const char *pl_buf_cstr(pl_buf *b);
/* Hands the data to the caller (free() it) and resets b. *len_out gets the length. */
char *pl_buf_detach(pl_buf *b, size_t *len_out);

#endif
