#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "pyloot/error.h"
#include "pyloot/gzip.h"

int pl_gzip(const void *data, size_t len, pl_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* windowBits 15 + 16 selects the gzip wrapper; level 6 is zlib's default
     * trade-off and compresses JSON about 8x. */
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return ENOMEM;
    size_t old_len = out->len;
    int rc = 0;
    uLong bound = deflateBound(&zs, (uLong)len);
    if (pl_buf_reserve(out, bound)) {
        rc = ENOMEM;
        goto end;
    }
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out->data + out->len;
    zs.avail_out = (uInt)bound;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        out->len = old_len;
        rc = EIO;
        goto end;
    }
    out->len += zs.total_out;
    out->data[out->len] = '\0';
end:
    deflateEnd(&zs);
    return rc;
}

/* Case-insensitive token compare of [s, s+n) with the NUL-terminated word. */
static int token_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

int pl_accepts_gzip(const char *h)
{
    if (!h)
        return 0;
    const char *p = h;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - tok);
        double q = 1.0;
        while (*p == ' ' || *p == '\t')
            p++;
        while (*p == ';') {
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
                q = strtod(p + 2, NULL);
            while (*p && *p != ',' && *p != ';')
                p++;
        }
        if (n && (token_is(tok, n, "gzip") || token_is(tok, n, "x-gzip") || token_is(tok, n, "*")))
            return q > 0.0;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

int pl_gunzip(const void *data, size_t len, size_t max, pl_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (len > 0xffffffffu)
        return PL_ETOOBIG;
    if (inflateInit2(&zs, 15 + 16) != Z_OK) /* gzip wrapper only */
        return ENOMEM;
    size_t old_len = out->len;
    int rc = 0;
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    for (;;) {
        size_t room = max - (out->len - old_len);
        size_t chunk = room < 65536 ? room : 65536;
        /* One byte more than allowed tells a full output from an overflow. */
        if (pl_buf_reserve(out, chunk + 1)) {
            rc = ENOMEM;
            break;
        }
        zs.next_out = (Bytef *)out->data + out->len;
        zs.avail_out = (uInt)(chunk + 1);
        int z = inflate(&zs, Z_NO_FLUSH);
        size_t got = chunk + 1 - zs.avail_out;
        out->len += got;
        if (out->len - old_len > max) {
            rc = PL_ETOOBIG;
            break;
        }
        if (z == Z_STREAM_END) {
            if (zs.avail_in != 0)
                rc = PL_EBADARG;
            break;
        }
        if (z == Z_MEM_ERROR) {
            rc = ENOMEM;
            break;
        }
        if (z != Z_OK || (got == 0 && zs.avail_in == 0)) {
            rc = PL_EBADARG; /* bad data, or truncated */
            break;
        }
    }
    if (rc)
        out->len = old_len;
    if (out->data)
        out->data[out->len] = '\0';
    inflateEnd(&zs);
    return rc;
}
