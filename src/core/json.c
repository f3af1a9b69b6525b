#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pyloot/json.h"

/* Length of the valid UTF-8 sequence starting at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

int pl_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < len;) {
        size_t adv = utf8_seq(s + i, len - i);
        if (!adv)
            return 0;
        i += adv;
    }
    return 1;
}

int pl_json_str(pl_buf *b, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    pl_buf_reserve(b, len + 2);
    pl_buf_putc(b, '"');
    size_t run = 0; /* start of the pending run of bytes copied verbatim */
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        const char *esc = NULL;
        char ubuf[7];
        size_t adv = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20 || c == 0x7F) {
            ubuf[0] = '\\';
            ubuf[1] = 'u';
            ubuf[2] = '0';
            ubuf[3] = '0';
            ubuf[4] = hex[c >> 4];
            ubuf[5] = hex[c & 15];
            ubuf[6] = '\0';
            esc = ubuf;
        } else if (c >= 0x80) {
            adv = utf8_seq(s + i, len - i);
            if (adv == 0) {
                esc = "\\ufffd";
                adv = 1;
            }
        }
        if (esc) {
            pl_buf_append(b, s + run, i - run);
            pl_buf_puts(b, esc);
            i += adv;
            run = i;
        } else {
            i += adv;
        }
    }
    pl_buf_append(b, s + run, len - run);
    return pl_buf_putc(b, '"');
}

int pl_json_cstr(pl_buf *b, const char *s)
{
    return s ? pl_json_str(b, s, strlen(s)) : pl_buf_puts(b, "null");
}

int pl_json_key(pl_buf *b, const char *key)
{
    pl_buf_putc(b, '"');
    pl_buf_puts(b, key);
    return pl_buf_puts(b, "\":");
}

int pl_json_u64(pl_buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    return pl_buf_append(b, tmp, (size_t)n);
}

int pl_json_u64_str(pl_buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "\"%" PRIu64 "\"", v);
    return pl_buf_append(b, tmp, (size_t)n);
}

int pl_json_i64(pl_buf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    return pl_buf_append(b, tmp, (size_t)n);
}

int pl_json_f64(pl_buf *b, double v)
{
    if (!isfinite(v))
        return pl_buf_puts(b, "null");
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.17g", v);
    return pl_buf_append(b, tmp, (size_t)n);
}

int pl_json_bool(pl_buf *b, int v)
{
    return pl_buf_puts(b, v ? "true" : "false");
}

int pl_json_error(pl_buf *b, const char *msg)
{
    pl_buf_puts(b, "{\"error\":");
    pl_json_cstr(b, msg);
    return pl_buf_putc(b, '}');
}
