/* The query string and its parameters: the one parser every route of the
 * handler reads its parameters with (see http_int.h and the ranges in
 * docs/http-api.md), over the core's one parser of numbers and times
 * (pyloot/parse.h, which the command line uses too). Nothing here is stateful; every function is
 * thread-safe. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"
#include "pyloot/parse.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) ('+' is a space) into out. Returns 0, or
 * PL_EBADARG for a malformed escape. */
static int url_decode(const char *s, size_t n, pl_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return PL_EBADARG;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return PL_EBADARG;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (pl_buf_putc(out, c))
            return ENOMEM;
    }
    return 0;
}

/* See http_int.h. */
int pl_http_param(const char *query, const char *name, pl_buf *out)
{
    if (!query)
        return 0;
    size_t nlen = strlen(name);
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            pl_buf_reset(out);
            int rc = eq ? url_decode(eq + 1, (size_t)(end - eq - 1), out) : 0;
            if (rc)
                return rc;
            pl_buf_cstr(out);
            return out->err ? ENOMEM : 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* See http_int.h. */
int pl_http_text_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return pl_utf8_valid(s, len);
}


/* See http_int.h. */
int pl_http_param_uint(const char *query, const char *name, uint64_t lo, uint64_t hi, uint64_t def, uint64_t *out,
                  pl_response *resp)
{
    pl_buf v = PL_BUF_INIT;
    int ret = -1;
    int rc = pl_http_param(query, name, &v);
    if (rc == 0) {
        *out = def;
        ret = 0;
    } else if (rc == 1 && pl_parse_u64(v.data, v.len, lo, hi, out) == 0) {
        ret = 0;
    } else {
        pl_http_error(resp, 400, "parameter %s must be an integer from %" PRIu64 " to %" PRIu64, name, lo, hi);
    }
    pl_buf_free(&v);
    return ret;
}

/* See http_int.h. */
int pl_http_param_text(const char *query, const char *name, size_t min, size_t max, pl_buf *out, pl_response *resp)
{
    pl_buf_reset(out);
    int rc = pl_http_param(query, name, out);
    if (rc == 0)
        return 0;
    if (rc != 1) {
        pl_http_error(resp, 400, "parameter %s is not correctly percent-encoded", name);
        return -1;
    }
    if (out->len < min || out->len > max) {
        pl_http_error(resp, 400, "parameter %s must be %zu to %zu bytes", name, min, max);
        return -1;
    }
    if (!pl_http_text_valid(out->data ? out->data : "", out->len)) {
        pl_http_error(resp, 400, "parameter %s must be UTF-8 text without control characters (no NUL, no invalid, "
                          "overlong or surrogate sequences)", name);
        return -1;
    }
    return 1;
}

/* See http_int.h. */
int pl_http_param_time(const char *query, const char *name, int64_t now_ms, int64_t *out_ms, pl_response *resp)
{
    pl_buf v = PL_BUF_INIT;
    int ret = -1, ok = 0;
    *out_ms = 0;
    int rc = pl_http_param(query, name, &v);
    if (rc == 0 || (rc == 1 && v.len == 0)) {
        ret = 0;
        goto done;
    }
    int64_t ms = 0;
    ok = rc == 1 && pl_parse_unix_ms(v.data, v.len, &ms) == 0;
    if (!ok) {
        pl_http_error(resp, 400, "parameter %s must be a time in unix seconds from 0.001 to %lld with up to 3 decimals "
                          "(e.g. 1764320000 or 1764320000.250)", name, (long long)PL_PARAM_TIME_MAX_S);
        goto done;
    }
    if (ms > now_ms + PL_HISTORY_FUTURE_MS) {
        pl_http_error(resp, 400, "parameter %s is in the future", name);
        goto done;
    }
    *out_ms = ms;
    ret = 0;
done:
    pl_buf_free(&v);
    return ret;
}

/* See http_int.h. */
int pl_http_pid_on_several_hosts(pl_store *store, uint32_t pid, pl_response *resp)
{
    pl_proc_info *procs = NULL;
    size_t n = 0;
    const char *first = NULL, *other = NULL;
    if (pl_store_procs(store, &procs, &n) == 0) {
        for (size_t i = 0; i < n && !other; i++) {
            if (procs[i].inc.pid != pid)
                continue;
            if (!first)
                first = procs[i].host;
            else if (strcmp(first, procs[i].host) != 0)
                other = procs[i].host;
        }
    }
    if (other)
        pl_http_error(resp, 400, "pid %u is on several hosts (%s, %s, ...): add host= (see /api/procs)", pid,
                       first, other);
    free(procs);
    return other != NULL;
}

/* See http_int.h. */
int pl_http_scope_check(pl_store *store, uint32_t pid, const char *host, int64_t since_ms, int64_t until_ms,
                        pl_response *resp)
{
    if (since_ms && until_ms && until_ms <= since_ms) {
        pl_http_error(resp, 400, "parameter until must be after since");
        return -1;
    }
    if (pid && !host && pl_http_pid_on_several_hosts(store, pid, resp))
        return -1;
    return 0;
}

/* See http_int.h. */
void pl_http_scope_not_found(pl_response *resp, uint32_t pid, const char *host)
{
    if (host && pid)
        pl_http_error(resp, 404, "no incarnation with pid %u of host %s in this store", pid, host);
    else if (host)
        pl_http_error(resp, 404, "no incarnation of host %s in this store", host);
    else
        pl_http_error(resp, 404, "no incarnation with pid %u in this store", pid);
}
