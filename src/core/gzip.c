#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

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
