/* pyloot core: gzip encoding (zlib) for HTTP responses. Thread-safe. */
#ifndef PYLOOT_GZIP_H
#define PYLOOT_GZIP_H

#include <stddef.h>

#include "pyloot/buf.h"

/* Appends the gzip (RFC 1952) encoding of data[0..len) to out.
 * Returns 0, ENOMEM, or EIO if zlib fails. On error out is left as it was. */
int pl_gzip(const void *data, size_t len, pl_buf *out);

/* Returns 1 when an Accept-Encoding header value (may be NULL) admits gzip:
 * "gzip" or "*" listed with a q-value other than 0. */
int pl_accepts_gzip(const char *accept_encoding);

/* Appends the decompression of a gzip member data[0..len) to out, at most
 * `max` bytes of it. Returns 0, PL_ETOOBIG when the output would exceed max
 * (checked while inflating: a gzip bomb costs at most max bytes),
 * PL_EBADARG for data that is not one complete gzip member (trailing bytes
 * included), or ENOMEM. On error out is left as it was. */
int pl_gunzip(const void *data, size_t len, size_t max, pl_buf *out);

#endif
