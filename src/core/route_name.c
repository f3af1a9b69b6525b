/* pyloot core: the name a request is counted under (pyloot/route_name.h). */
#include "pyloot/route_name.h"

#include <string.h>

/* The length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong three- and four-byte forms, surrogates, past U+10FFFF. */
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

/* Appends s[0..n) to out at *at, replacing what is not printable UTF-8
 * (and spaces when no_space) by '?', without passing PL_ROUTE_NAME_MAX and
 * never cutting a sequence. */
static void put_text(char *out, size_t *at, const char *s, size_t n, int no_space)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        size_t len = utf8_len(u + i, n - i);
        int bad = len == 0 || u[i] < 0x20 || u[i] == 0x7f || (no_space && u[i] == ' ');

        if (bad)
            len = 1;
        if (*at + len > PL_ROUTE_NAME_MAX)
            return;
        if (bad)
            out[(*at)++] = '?';
        else
            memcpy(out + *at, u + i, len), *at += len;
        i += len;
    }
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 1 when the segment s[0..n) is an id: digits only, a UUID (8-4-4-4-12 hex
 * digits), or 16 or more hex digits. */
static int is_id(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i, digits = 0, hex = 0;

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        digits += u[i] >= '0' && u[i] <= '9';
        hex += is_hex(u[i]);
    }
    if (digits == n || (hex == n && n >= 16))
        return 1;
    if (n == 36) {
        for (i = 0; i < n; i++) {
            int dash = i == 8 || i == 13 || i == 18 || i == 23;
            if (dash ? u[i] != '-' : !is_hex(u[i]))
                return 0;
        }
        return 1;
    }
    return 0;
}

/* See route_name.h. */
size_t pl_route_name(const char *method, size_t mlen, const char *route, size_t rlen, int is_template, char *out)
{
    size_t at = 0;

    if (mlen > PL_ROUTE_METHOD_MAX)
        mlen = PL_ROUTE_METHOD_MAX;
    if (mlen)
        put_text(out, &at, method, mlen, 1);
    else
        out[at++] = '?';
    out[at++] = ' ';
    if (!is_template) {
        const char *q = rlen ? memchr(route, '?', rlen) : NULL;
        if (q)
            rlen = (size_t)(q - route);
    }
    if (!rlen) {
        out[at++] = '/';
    } else if (is_template) {
        put_text(out, &at, route, rlen, 0);
    } else {
        size_t i = 0;
        while (i < rlen && at < PL_ROUTE_NAME_MAX) {
            const char *slash = memchr(route + i, '/', rlen - i);
            size_t end = slash ? (size_t)(slash - route) : rlen;
            if (is_id(route + i, end - i)) {
                if (at + 4 > PL_ROUTE_NAME_MAX)
                    break;
                memcpy(out + at, "{id}", 4);
                at += 4;
            } else {
                put_text(out, &at, route + i, end - i, 0);
            }
            if (slash && at < PL_ROUTE_NAME_MAX)
                out[at++] = '/';
            i = end + 1;
        }
    }
    out[at] = '\0';
    return at;
}

/* See route_name.h. */
int pl_route_name_valid(const char *name, size_t len)
{
    const unsigned char *u = (const unsigned char *)name;
    size_t i = 0;

    if (len == 0 || len > PL_ROUTE_NAME_MAX)
        return 0;
    while (i < len) {
        size_t n = utf8_len(u + i, len - i);
        if (!n || u[i] < 0x20 || u[i] == 0x7f)
            return 0;
        i += n;
    }
    return 1;
}
