/* The HTTP request handler shared by the extension (WSGI/ASGI) and the CLI.
 * Every route is documented in docs/http-api.md; keep the two in step. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pyloot/access.h"
#include "pyloot/assets.h"
#include "pyloot/error.h"
#include "pyloot/gzip.h"
#include "pyloot/handler.h"
#include "pyloot/json.h"
#include "pyloot/metrics.h"
#include "handler_int.h"
#include "pyloot/verify.h"

#define PL_QUERY_MAX 256          /* q= of /api/history */
#define PL_OFFSET_MAX 1000000000ULL
#define PL_GZIP_MIN 256           /* smaller bodies are sent as they are */

struct pl_handler {
    pl_handler_options opt;
    char *unavailable; /* owned copy of opt.unavailable */
};

int pl_handler_new(pl_handler **out, const pl_handler_options *opt)
{
    *out = NULL;
    pl_handler *h = calloc(1, sizeof *h);
    if (!h)
        return ENOMEM;
    h->opt = *opt;
    if (opt->unavailable || !opt->store) {
        h->unavailable = strdup(opt->unavailable ? opt->unavailable : "the store is not open");
        if (!h->unavailable) {
            free(h);
            return ENOMEM;
        }
        h->opt.unavailable = h->unavailable;
    }
    if (!h->opt.live_timeout_ms)
        h->opt.live_timeout_ms = 5000;
    *out = h;
    return 0;
}

void pl_handler_free(pl_handler *h)
{
    if (h)
        free(h->unavailable);
    free(h);
}

void pl_response_free(pl_response *resp)
{
    pl_buf_free(&resp->body);
}

const char *pl_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

/* ---- query strings ---- */

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

/* Finds the first `name=value` of the query string; decodes the value into
 * out. Returns 1 if found, 0 if absent, or a negative/positive error. */
static int query_get(const char *query, const char *name, pl_buf *out)
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
            return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* Strict unsigned decimal: digits only, 1..18 of them. */
static int parse_u64(const char *s, size_t len, uint64_t *v)
{
    if (len == 0 || len > 18)
        return PL_EBADARG;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return PL_EBADARG;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    *v = x;
    return 0;
}

/* ---- responses ---- */

static void set_json(pl_response *resp, int status)
{
    resp->status = status;
    resp->content_type = "application/json";
    resp->cache_control = "no-store";
}

static void error_response(pl_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error_response(pl_response *resp, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pl_buf_reset(&resp->body);
    set_json(resp, status);
    pl_json_error(&resp->body, msg);
}

/* Reads an integer parameter within [lo, hi]; absent gives `def`. Returns 0
 * or fills a 400 response and returns -1. */
static int param_u64(const pl_request *req, const char *name, uint64_t lo, uint64_t hi, uint64_t def,
                     uint64_t *out, pl_buf *tmp, pl_response *resp)
{
    int rc = query_get(req->query, name, tmp);
    if (rc == 0) {
        *out = def;
        return 0;
    }
    uint64_t v = 0;
    if (rc < 0 || parse_u64(tmp->data ? tmp->data : "", tmp->len, &v) || v < lo || v > hi) {
        error_response(resp, 400, "parameter %s must be an integer from %" PRIu64 " to %" PRIu64, name,
                       lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* A point in time given in unix seconds (up to 3 decimals, so ms): absent
 * or empty leaves *out_ms 0; anything else than a time from 1970 to
 * PL_HISTORY_FUTURE_MS after now answers 400. */
static int param_time(const pl_request *req, const char *name, int64_t now_ms, int64_t *out_ms,
                      pl_buf *tmp, pl_response *resp)
{
    int rc = query_get(req->query, name, tmp);
    int64_t ms = 0;
    size_t i, frac = 0;
    int dot = 0;

    *out_ms = 0;
    if (rc == 0 || (rc > 0 && tmp->len == 0))
        return 0;
    for (i = 0; rc > 0 && i < tmp->len && ms <= INT64_MAX / 100; i++) {
        char ch = tmp->data[i];

        if (ch == '.' && !dot && i > 0) {
            dot = 1;
        } else if (ch >= '0' && ch <= '9' && (!dot || frac < 3)) {
            ms = ms * 10 + (ch - '0');
            frac += dot;
        } else {
            rc = -1;
        }
    }
    for (; frac < 3; frac++)
        ms *= 10;
    if (rc < 0 || i < tmp->len || (dot && tmp->data[tmp->len - 1] == '.') || ms <= 0) {
        error_response(resp, 400, "parameter %s must be a time in unix seconds (e.g. 1764320000 or "
                                  "1764320000.250)", name);
        return -1;
    }
    if (ms > now_ms + PL_HISTORY_FUTURE_MS) {
        error_response(resp, 400, "parameter %s is in the future", name);
        return -1;
    }
    *out_ms = ms;
    return 0;
}

static void json_time(pl_buf *b, int64_t ms)
{
    pl_buf_printf(b, "%" PRId64 ".%03d", ms / 1000, (int)(ms % 1000 < 0 ? -(ms % 1000) : ms % 1000));
}

static void json_incarnation(pl_buf *b, const pl_incarnation *inc)
{
    pl_buf_puts(b, "{\"pid\":");
    pl_json_u64(b, inc->pid);
    pl_buf_puts(b, ",\"start\":");
    pl_json_u64(b, inc->start);
    pl_buf_putc(b, '}');
}

static void json_series(pl_buf *b, const int64_t *v, size_t n)
{
    pl_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            pl_buf_putc(b, ',');
        if (v[i] < 0)
            pl_buf_puts(b, "null");
        else
            pl_json_i64(b, v[i]);
    }
    pl_buf_putc(b, ']');
}

/* ---- /api/procs ---- */

/* ,"recovered_from":...,"recovered_reason":...,"recovered_at":... of a store
 * started in place of a damaged one (null when it was not). */
static void json_recovery(pl_store *store, pl_buf *b)
{
    pl_buf moved = PL_BUF_INIT, reason = PL_BUF_INIT;
    int64_t when = 0;

    if (pl_store_recovery(store, &moved, &reason, &when) == 0) {
        pl_buf_puts(b, ",\"recovered_from\":");
        pl_json_cstr(b, pl_buf_cstr(&moved));
        pl_buf_puts(b, ",\"recovered_reason\":");
        pl_json_cstr(b, pl_buf_cstr(&reason));
        pl_buf_puts(b, ",\"recovered_at\":");
        json_time(b, when);
    } else {
        pl_buf_puts(b, ",\"recovered_from\":null,\"recovered_reason\":null,\"recovered_at\":null");
    }
    pl_buf_free(&moved);
    pl_buf_free(&reason);
}

static void handle_procs(pl_handler *h, pl_response *resp)
{
    pl_store_stat st;
    pl_proc_info *procs = NULL;
    size_t n = 0;
    int rc = pl_store_stat_get(h->opt.store, &st);
    if (!rc)
        rc = pl_store_procs(h->opt.store, &procs, &n);
    if (rc) {
        error_response(resp, pl_store_error_status(rc), "reading the store failed: %s", pl_strerror(rc));
        goto done;
    }
    pl_buf *b = &resp->body;
    set_json(resp, 200);
    pl_buf_puts(b, "{\"store\":{\"path\":");
    pl_json_cstr(b, pl_store_path(h->opt.store));
    pl_buf_printf(b,
                  ",\"map_size\":%" PRIu64 ",\"used_bytes\":%" PRIu64 ",\"max_bytes\":%" PRIu64
                  ",\"max_samples\":%u,\"max_age_s\":%" PRIu64 ",\"types\":%u,\"schema\":%u",
                  st.map_size, st.used_bytes, st.max_bytes, st.max_samples, st.max_age_s, st.types,
                  st.schema);
    json_recovery(h->opt.store, b);
    pl_buf_puts(b, "},");
    pl_json_key(b, "self");
    if (h->opt.self.pid)
        json_incarnation(b, &h->opt.self);
    else
        pl_buf_puts(b, "null");
    pl_buf_puts(b, ",\"procs\":[");
    for (size_t i = 0; i < n; i++) {
        const pl_proc_info *p = &procs[i];
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_printf(b, "{\"pid\":%u,\"start\":%" PRIu64 ",\"alive\":%s,\"started\":", p->inc.pid,
                      p->inc.start, p->alive ? "true" : "false");
        json_time(b, p->first_seen_ms);
        pl_buf_puts(b, ",\"last_seen\":");
        json_time(b, p->last_seen_ms);
        pl_buf_puts(b, ",\"ended\":");
        if (p->ended_ms)
            json_time(b, p->ended_ms);
        else
            pl_buf_puts(b, "null");
        pl_buf_puts(b, ",\"host\":");
        pl_json_cstr(b, p->host);
        pl_buf_puts(b, ",\"argv\":");
        pl_json_cstr(b, p->argv);
        pl_buf_printf(b, ",\"interval\":%.3f,\"rss\":%" PRIu64 ",\"samples\":%u", p->interval_ms / 1000.0,
                      p->rss, p->samples);
        pl_buf_printf(b, ",\"collection_seconds\":%.6f,\"gil_held_seconds_total\":%.6f",
                      p->stats.collection_us / 1e6, p->stats.gil_held_us / 1e6);
        pl_buf_printf(b, ",\"remote\":%s", p->remote ? "true" : "false");
        if (p->remote)
            pl_buf_printf(b, ",\"worker_start\":%" PRIu64, p->worker_start);
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
done:
    free(procs);
}

/* ---- /api/history ---- */

/* A central server's hosts may each have had a worker with the same pid:
 * pid= alone would then silently answer for one of them. Returns 1 with a
 * 400 in resp naming two of the hosts, else 0 (a failed read is left to the
 * history query, which reports it). */
static int pid_on_several_hosts(pl_store *store, uint32_t pid, pl_response *resp)
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
        error_response(resp, 400, "pid %u is on several hosts (%s, %s, ...): add host= (see /api/procs)", pid,
                       first, other);
    free(procs);
    return other != NULL;
}

static void handle_history(pl_handler *h, const pl_request *req, pl_response *resp)
{
    pl_buf q = PL_BUF_INIT, tmp = PL_BUF_INIT, host = PL_BUF_INIT;
    pl_history *hist = NULL;
    pl_history_query hq;
    memset(&hq, 0, sizeof hq);
    static const char *sort_names[] = {"count", "growth", "name"};

    int rc = query_get(req->query, "q", &q);
    if (rc < 0) {
        error_response(resp, 400, "parameter q is not correctly percent-encoded");
        goto done;
    }
    if (q.len > PL_QUERY_MAX) {
        error_response(resp, 400, "parameter q is longer than %d bytes", PL_QUERY_MAX);
        goto done;
    }
    if (q.data && memchr(q.data, '\0', q.len)) {
        error_response(resp, 400, "parameter q contains a NUL byte");
        goto done;
    }
    hq.q = q.len ? q.data : NULL;
    hq.sort = PL_SORT_GROWTH;
    rc = query_get(req->query, "sort", &tmp);
    if (rc) {
        if (rc < 0 || !tmp.data) {
            error_response(resp, 400, "parameter sort must be growth, count or name");
            goto done;
        }
        if (strcmp(tmp.data, "count") == 0)
            hq.sort = PL_SORT_COUNT;
        else if (strcmp(tmp.data, "growth") == 0)
            hq.sort = PL_SORT_GROWTH;
        else if (strcmp(tmp.data, "name") == 0)
            hq.sort = PL_SORT_NAME;
        else {
            error_response(resp, 400, "parameter sort must be growth, count or name");
            goto done;
        }
    }
    uint64_t pid = 0, workers = 0, points = 0;
    if (param_u64(req, "offset", 0, PL_OFFSET_MAX, 0, &hq.offset, &tmp, resp) ||
        param_u64(req, "limit", 1, 1000, 50, &hq.limit, &tmp, resp) ||
        param_u64(req, "top", 1, 100000, 0, &hq.top, &tmp, resp) ||
        param_u64(req, "pid", 1, 4194304, 0, &pid, &tmp, resp) ||
        param_u64(req, "workers", 0, 1, 0, &workers, &tmp, resp) ||
        param_u64(req, "points", 2, 5000, 720, &points, &tmp, resp))
        goto done;
    rc = query_get(req->query, "host", &host);
    if (rc < 0 || (rc > 0 && (host.len == 0 || host.len > 63 || memchr(host.data, '\0', host.len)))) {
        error_response(resp, 400, "parameter host must be 1 to 63 bytes");
        goto done;
    }
    hq.host = host.len ? host.data : NULL;
    hq.pid = (uint32_t)pid;
    hq.per_worker = (int)workers;
    hq.max_points = (uint32_t)points;
    hq.now_ms = pl_now_ms();
    if (param_time(req, "since", hq.now_ms, &hq.since_ms, &tmp, resp) ||
        param_time(req, "until", hq.now_ms, &hq.until_ms, &tmp, resp))
        goto done;
    if (hq.since_ms && hq.until_ms && hq.until_ms <= hq.since_ms) {
        error_response(resp, 400, "parameter until must be after since");
        goto done;
    }

    if (pid && !hq.host && pid_on_several_hosts(h->opt.store, (uint32_t)pid, resp))
        goto done;
    rc = pl_store_history(h->opt.store, &hq, &hist);
    if (rc == PL_ENOTFOUND && (pid || hq.host)) {
        if (hq.host)
            error_response(resp, 404, "no incarnation%s%.0" PRIu64 " of host %s in this store", pid ? " with pid " : "",
                           pid, hq.host);
        else
            error_response(resp, 404, "no incarnation with pid %" PRIu64 " in this store", pid);
        goto done;
    }
    if (rc) {
        error_response(resp, pl_store_error_status(rc), "reading the history failed: %s", pl_strerror(rc));
        goto done;
    }
    pl_buf *b = &resp->body;
    set_json(resp, 200);
    pl_buf_puts(b, "{\"times\":[");
    for (size_t i = 0; i < hist->n_times; i++) {
        if (i)
            pl_buf_putc(b, ',');
        json_time(b, hist->times[i]);
    }
    pl_buf_printf(b, "],\"total\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"limit\":%" PRIu64 ",\"sort\":\"%s\",\"q\":",
                  hist->total, hq.offset, hq.limit, sort_names[hq.sort]);
    pl_json_str(b, q.data ? q.data : "", q.len);
    pl_buf_puts(b, ",\"pid\":");
    if (pid)
        pl_json_u64(b, pid);
    else
        pl_buf_puts(b, "null");
    pl_buf_puts(b, ",\"as_of\":");
    if (hist->as_of_ms)
        json_time(b, hist->as_of_ms);
    else
        pl_buf_puts(b, "null");
    pl_buf_printf(b, ",\"live\":%s,\"since\":", hist->live ? "true" : "false");
    if (hist->since_ms)
        json_time(b, hist->since_ms);
    else
        pl_buf_puts(b, "null");
    pl_buf_puts(b, ",\"until\":");
    if (hq.until_ms)
        json_time(b, hq.until_ms);
    else
        pl_buf_puts(b, "null");
    pl_buf_printf(b, ",\"step\":");
    json_time(b, hist->step_ms);
    pl_buf_puts(b, ",\"host\":");
    if (hq.host)
        pl_json_cstr(b, hq.host);
    else
        pl_buf_puts(b, "null");
    pl_buf_puts(b, ",\"types\":[");
    for (size_t i = 0; i < hist->n_types; i++) {
        const pl_history_type *t = &hist->types[i];
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_puts(b, "{\"name\":");
        pl_json_cstr(b, t->name);
        pl_buf_printf(b, ",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"growth\":%" PRId64 ",\"counts\":",
                      t->count, t->bytes, t->growth);
        json_series(b, t->counts, hist->n_times);
        pl_buf_puts(b, ",\"bytes_series\":");
        json_series(b, t->bytes_series, hist->n_times);
        if (hq.per_worker) {
            pl_buf_puts(b, ",\"workers\":[");
            for (size_t j = 0; j < t->n_lines; j++) {
                if (j)
                    pl_buf_putc(b, ',');
                pl_buf_printf(b, "{\"pid\":%u,\"start\":%" PRIu64 ",\"host\":", t->lines[j].inc.pid,
                              t->lines[j].inc.start);
                pl_json_cstr(b, t->lines[j].host);
                pl_buf_puts(b, ",\"counts\":");
                json_series(b, t->lines[j].counts, hist->n_times);
                pl_buf_putc(b, '}');
            }
            pl_buf_putc(b, ']');
        }
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "]}");
done:
    pl_history_free(hist);
    pl_buf_free(&q);
    pl_buf_free(&tmp);
    pl_buf_free(&host);
}

/* ---- live objects ---- */

int pl_live_query_encode(const pl_live_query *q, pl_buf *out)
{
    return pl_buf_printf(out, "%d %" PRIu64 " %" PRIu64 " %" PRIu64 " %s", (int)q->kind, q->id, q->offset,
                         q->limit, q->group);
}

int pl_live_query_decode(const void *data, size_t len, pl_live_query *q)
{
    char tmp[PL_TYPE_NAME_MAX + 96];
    if (len >= sizeof tmp)
        return PL_EBADARG;
    memcpy(tmp, data, len);
    tmp[len] = '\0';
    memset(q, 0, sizeof *q);
    int kind = 0, used = 0;
    if (sscanf(tmp, "%d %" SCNu64 " %" SCNu64 " %" SCNu64 " %n", &kind, &q->id, &q->offset, &q->limit,
               &used) != 4)
        return PL_EBADARG;
    if (kind < PL_LIVE_LIST || kind > PL_LIVE_SUSPECTS)
        return PL_EBADARG;
    q->kind = (pl_live_kind)kind;
    size_t glen = len - (size_t)used;
    if (glen > PL_TYPE_NAME_MAX)
        return PL_EBADARG;
    memcpy(q->group, tmp + used, glen);
    q->group[glen] = '\0';
    return 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Forwards q to the live incarnation of `pid` through the store's mailbox
 * and waits for its answer. */
static void forward_live(pl_handler *h, uint32_t pid, const pl_live_query *q, pl_response *resp)
{
    pl_proc_info *procs = NULL;
    size_t n = 0;
    pl_buf req = PL_BUF_INIT;
    uint64_t ticket = 0;
    int posted = 0;
    int rc = pl_store_procs(h->opt.store, &procs, &n);
    if (rc) {
        error_response(resp, pl_store_error_status(rc), "reading the store failed: %s", pl_strerror(rc));
        goto done;
    }
    const pl_proc_info *target = NULL;
    for (size_t i = 0; i < n; i++)
        if (procs[i].inc.pid == pid && procs[i].alive)
            target = &procs[i];
    if (!target) {
        error_response(resp, 404, "no live worker with pid %u in this store", pid);
        goto done;
    }
    if (pl_live_query_encode(q, &req)) {
        error_response(resp, 500, "out of memory");
        goto done;
    }
    rc = pl_store_mailbox_post(h->opt.store, &target->inc, req.data, req.len, pl_now_ms(), &ticket);
    if (rc == PL_ENOTFOUND) {
        error_response(resp, 404, "no live worker with pid %u in this store", pid);
        goto done;
    }
    if (rc == PL_EBUSY) {
        error_response(resp, 503, "worker %u already has too many requests waiting; try again", pid);
        goto done;
    }
    if (rc) {
        error_response(resp, pl_store_error_status(rc), "forwarding to worker %u failed: %s", pid, pl_strerror(rc));
        goto done;
    }
    posted = 1;
    int64_t deadline = pl_now_ms() + h->opt.live_timeout_ms;
    unsigned wait = 2;
    for (;;) {
        int status = 0;
        pl_buf_reset(&resp->body);
        rc = pl_store_mailbox_result(h->opt.store, ticket, &status, &resp->body);
        if (rc == 0) {
            posted = 0;
            set_json(resp, status);
            break;
        }
        if (rc != PL_ENOTFOUND) {
            error_response(resp, pl_store_error_status(rc), "reading the answer of worker %u failed: %s", pid, pl_strerror(rc));
            break;
        }
        if (pl_now_ms() >= deadline) {
            error_response(resp, 504, "worker %u did not answer within %.1f s", pid,
                           h->opt.live_timeout_ms / 1000.0);
            break;
        }
        sleep_ms(wait);
        if (wait < 25)
            wait *= 2;
    }
done:
    if (posted)
        pl_store_mailbox_cancel(h->opt.store, ticket);
    pl_buf_free(&req);
    free(procs);
}

/* The parameters of the dominator-tree routes (docs/http-api.md):
 * /api/objects/<id>?retained=1, /api/retainers?id=, /api/suspects?n=.
 * Returns 0, or -1 with a 400 in resp. */
static int retained_params(const pl_request *req, pl_live_query *q, pl_buf *tmp, pl_response *resp)
{
    uint64_t v = 0;
    if (q->kind == PL_LIVE_DETAIL) {
        if (param_u64(req, "retained", 0, 1, 0, &v, tmp, resp))
            return -1;
        if (v)
            q->kind = PL_LIVE_RETAINED;
    } else if (q->kind == PL_LIVE_RETAINERS) {
        if (param_u64(req, "id", 1, 999999999999999999ULL, 0, &q->id, tmp, resp))
            return -1;
    } else if (q->kind == PL_LIVE_SUSPECTS) {
        if (param_u64(req, "n", 1, 10, 3, &q->limit, tmp, resp))
            return -1;
    }
    return 0;
}

/* Reads the parameters of a live-object query (group, offset, limit, pid and
 * those of the dominator-tree routes). Returns 0, or fills a 400 response and
 * returns -1. */
static int live_params(const pl_request *req, pl_live_kind kind, uint64_t id, pl_live_query *q, uint64_t *pid,
                       pl_response *resp)
{
    pl_buf tmp = PL_BUF_INIT;
    int ret = -1;
    memset(q, 0, sizeof *q);
    q->kind = kind;
    q->id = id;
    *pid = 0;
    if (kind == PL_LIVE_LIST || kind == PL_LIVE_SUSPECTS) {
        int rc = query_get(req->query, "group", &tmp);
        if (rc <= 0 || tmp.len == 0) {
            error_response(resp, 400, "parameter group is required (a type name as in /api/history)");
            goto done;
        }
        if (tmp.len > PL_TYPE_NAME_MAX || memchr(tmp.data, '\0', tmp.len)) {
            error_response(resp, 400, "parameter group must be 1 to %d bytes without NUL",
                           PL_TYPE_NAME_MAX);
            goto done;
        }
        memcpy(q->group, tmp.data, tmp.len + 1);
    }
    if (param_u64(req, "offset", 0, PL_OFFSET_MAX, 0, &q->offset, &tmp, resp) ||
        param_u64(req, "limit", 1, 10000, 100, &q->limit, &tmp, resp) ||
        param_u64(req, "pid", 1, 4194304, 0, pid, &tmp, resp) ||
        retained_params(req, q, &tmp, resp))
        goto done;
    ret = 0;
done:
    pl_buf_free(&tmp);
    return ret;
}

static void handle_live(pl_handler *h, const pl_request *req, pl_live_kind kind, uint64_t id,
                        pl_response *resp)
{
    pl_live_query q;
    uint64_t pid = 0;
    if (live_params(req, kind, id, &q, &pid, resp))
        return;
    if (!h->opt.live) {
        error_response(resp, 501, "live objects are answered by the workers themselves, not by this server");
        return;
    }
    if (pid == 0 || pid == h->opt.self.pid) {
        int status = 500;
        pl_buf_reset(&resp->body);
        int rc = h->opt.live(h->opt.live_ctx, &q, &resp->body, &status);
        if (rc)
            error_response(resp, 500, "answering failed: %s", pl_strerror(rc));
        else
            set_json(resp, status);
    } else {
        forward_live(h, (uint32_t)pid, &q, resp);
    }
}

/* Parses "/api/objects/<id>[/parents|/children|/path]". Returns 0 and fills
 * kind/id, or fills a 4xx response and returns -1. */
static int parse_object_route(const char *rest, pl_live_kind *kind, uint64_t *id, pl_response *resp)
{
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (parse_u64(rest, idlen, id)) {
        error_response(resp, 400, "object id must be a decimal integer of at most 18 digits");
        return -1;
    }
    if (!slash || strcmp(slash, "/") == 0)
        *kind = PL_LIVE_DETAIL;
    else if (strcmp(slash, "/parents") == 0)
        *kind = PL_LIVE_PARENTS;
    else if (strcmp(slash, "/children") == 0)
        *kind = PL_LIVE_CHILDREN;
    else if (strcmp(slash, "/path") == 0)
        *kind = PL_LIVE_PATH;
    else {
        error_response(resp, 404, "no such route");
        return -1;
    }
    return 0;
}

/* ---- static files ---- */

static int valid_asset_name(const char *name)
{
    if (!*name || *name == '.')
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void handle_asset(const char *name, pl_response *resp)
{
    const pl_asset *a = valid_asset_name(name) ? pl_asset_find(name, strlen(name)) : NULL;
    if (!a) {
        error_response(resp, 404, "no such file");
        return;
    }
    resp->status = 200;
    resp->content_type = a->content_type;
    resp->cache_control = "no-cache";
    pl_buf_append(&resp->body, a->data, a->len);
}

/* ---- access, login, metrics ---- */

/* Applies the access rule (pyloot/access.h). Returns 0 to go on, or fills
 * a 401/403 response and returns -1. */
static int check_access(pl_handler *h, const pl_request *req, const char *path, pl_response *resp)
{
    pl_access_request ar = {req->authorization, req->cookie, req->peer, req->proxied, req->allowed};
    char why[400];
    int status = pl_access_check(h->opt.token, pl_access_classify(path), &ar, why, sizeof why);
    if (!status)
        return 0;
    error_response(resp, status, "%s", why);
    if (status == 401)
        resp->www_authenticate = "Bearer realm=\"pyloot\"";
    return -1;
}

static void set_cookie(pl_response *resp, const char *token, const pl_request *req)
{
    pl_buf c = PL_BUF_INIT;
    if (pl_access_cookie(&c, token, req->mount, req->secure) == 0 && c.len < sizeof resp->set_cookie)
        memcpy(resp->set_cookie, c.data, c.len + 1);
    pl_buf_free(&c);
}

/* POST /api/login (body: the token) and POST /api/logout. */
static void handle_login(pl_handler *h, const pl_request *req, int login, pl_response *resp)
{
    if (!req->method || strcmp(req->method, "POST") != 0) {
        error_response(resp, 405, "use POST for /api/%s", login ? "login" : "logout");
        return;
    }
    if (!login) {
        set_json(resp, 200);
        pl_buf_puts(&resp->body, "{\"ok\":true}");
        set_cookie(resp, NULL, req);
        return;
    }
    if (!h->opt.token || !*h->opt.token) {
        error_response(resp, 400, "this pyloot has no token to log in with (PyLoot(token=...) sets one)");
        return;
    }
    const char *b = req->body ? req->body : "";
    size_t n = req->body_len;
    while (n && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
        n--;
    if (n > PL_TOKEN_MAX || !pl_token_equal(b, n, h->opt.token, strlen(h->opt.token))) {
        error_response(resp, 401, "the token is not correct");
        resp->www_authenticate = "Bearer realm=\"pyloot\"";
        return;
    }
    set_json(resp, 200);
    pl_buf_puts(&resp->body, "{\"ok\":true}");
    set_cookie(resp, h->opt.token, req);
}

static void handle_metrics(pl_handler *h, const pl_request *req, pl_response *resp)
{
    pl_buf tmp = PL_BUF_INIT;
    uint64_t workers = 0, top = 0;
    if (param_u64(req, "workers", 0, 1, 0, &workers, &tmp, resp) ||
        param_u64(req, "top", 1, PL_METRICS_TOP_MAX, PL_METRICS_TOP_DEFAULT, &top, &tmp, resp))
        goto done;
    pl_metrics_query mq = {(uint32_t)top, (int)workers, pl_metrics_wants_openmetrics(req->accept),
                           h->opt.metrics_types, pl_now_ms()};
    int rc = pl_metrics_render(h->opt.store, &mq, &resp->body);
    if (rc) {
        error_response(resp, pl_store_error_status(rc), "reading the store failed: %s", pl_strerror(rc));
        goto done;
    }
    resp->status = 200;
    resp->content_type = mq.openmetrics ? PL_METRICS_OPENMETRICS_TYPE : PL_METRICS_TEXT_TYPE;
    resp->cache_control = "no-store";
done:
    pl_buf_free(&tmp);
}

/* ---- dispatch ---- */

static void route(pl_handler *h, const pl_request *req, pl_response *resp)
{
    const char *path = req->path && *req->path ? req->path : "/";
    const char *method = req->method ? req->method : "GET";
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

    if (h->opt.refuse_multiprocess && req->multiprocess) {
        error_response(resp, 500,
                       "pyloot middleware is not usable in a multi-process environment with "
                       "InMemoryBackend; use the default store");
        return;
    }
    if (strcmp(path, "/api/login") == 0 || strcmp(path, "/api/logout") == 0) {
        handle_login(h, req, strcmp(path, "/api/login") == 0, resp);
        return;
    }
    if (check_access(h, req, path, resp))
        return;
    if (strcmp(path, "/api/samples") == 0) {
        if (strcmp(method, "POST") != 0)
            error_response(resp, 405, "use POST for /api/samples");
        else
            error_response(resp, 501, "this is a worker's /_pyloot, which takes no pushes: samples go to "
                                      "the central server, `pyloot -h HOST -p PORT`, and workers push "
                                      "to it with PyLoot(host=..., port=...)");
        return;
    }
    int known = strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 ||
                strncmp(path, "/static/", 8) == 0 || strncmp(path, "/api/", 5) == 0 ||
                strcmp(path, "/metrics") == 0;
    if (known && !is_get) {
        error_response(resp, 405, "method %.16s is not allowed here", method);
        return;
    }
    if (!h->opt.store && strncmp(path, "/api/", 5) == 0) {
        error_response(resp, 503, "%s", h->opt.unavailable);
        return;
    }
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        handle_asset("index.html", resp);
    } else if (strncmp(path, "/static/", 8) == 0) {
        handle_asset(path + 8, resp);
    } else if (strcmp(path, "/api/procs") == 0) {
        handle_procs(h, resp);
    } else if (strcmp(path, "/api/history") == 0) {
        handle_history(h, req, resp);
    } else if (strcmp(path, "/metrics") == 0) {
        handle_metrics(h, req, resp);
    } else if (strcmp(path, "/api/witnesses") == 0) {
        pl_handle_witnesses(h->opt.store, req->query, resp);
    } else if (strcmp(path, "/api/objects") == 0 || strcmp(path, "/api/objects/") == 0) {
        handle_live(h, req, PL_LIVE_LIST, 0, resp);
    } else if (strcmp(path, "/api/retainers") == 0) {
        handle_live(h, req, PL_LIVE_RETAINERS, 0, resp);
    } else if (strcmp(path, "/api/suspects") == 0) {
        handle_live(h, req, PL_LIVE_SUSPECTS, 0, resp);
    } else if (strncmp(path, "/api/objects/", 13) == 0) {
        pl_live_kind kind;
        uint64_t id;
        if (parse_object_route(path + 13, &kind, &id, resp) == 0)
            handle_live(h, req, kind, id, resp);
    } else {
        error_response(resp, 404, "no such route");
    }
}

int pl_handler_handle(pl_handler *h, const pl_request *req, pl_response *resp)
{
    memset(resp, 0, sizeof *resp);
    route(h, req, resp);
    if (resp->body.err) {
        pl_buf_free(&resp->body);
        error_response(resp, 500, "out of memory");
        if (resp->body.err) {
            pl_buf_free(&resp->body);
            resp->status = 500;
            return ENOMEM;
        }
    }
    resp->vary_accept_encoding = 1;
    if (!h->opt.disable_gzip && resp->body.len >= PL_GZIP_MIN && pl_accepts_gzip(req->accept_encoding)) {
        pl_buf gz = PL_BUF_INIT;
        if (pl_gzip(resp->body.data, resp->body.len, &gz) == 0) {
            pl_buf_free(&resp->body);
            resp->body = gz;
            resp->content_encoding = "gzip";
        } else {
            pl_buf_free(&gz); /* send it uncompressed rather than fail */
        }
    }
    return 0;
}

/* ---- for the route files (handler_int.h) ---- */

int pl_query_param(const char *query, const char *name, pl_buf *out)
{
    return query_get(query, name, out);
}

int pl_http_query_get(const char *query, const char *name, pl_buf *out)
{
    return query_get(query, name, out);
}

void pl_response_json(pl_response *resp, int status)
{
    set_json(resp, status);
}

void pl_response_error(pl_response *resp, int status, const char *msg)
{
    error_response(resp, status, "%s", msg);
}

int pl_http_param_u64(const pl_request *req, const char *name, uint64_t lo, uint64_t hi, uint64_t def,
                      uint64_t *out, pl_response *resp)
{
    pl_buf tmp = PL_BUF_INIT;
    int rc = param_u64(req, name, lo, hi, def, out, &tmp, resp);
    pl_buf_free(&tmp);
    return rc;
}

void pl_http_error(pl_response *resp, int status, const char *msg)
{
    error_response(resp, status, "%s", msg);
}

int pl_http_live_query(const pl_request *req, const char *path, pl_live_query *q, uint64_t *pid,
                       pl_response *resp)
{
    pl_live_kind kind = PL_LIVE_LIST;
    uint64_t id = 0;
    if (strcmp(path, "/api/retainers") == 0)
        kind = PL_LIVE_RETAINERS;
    else if (strcmp(path, "/api/suspects") == 0)
        kind = PL_LIVE_SUSPECTS;
    else if (strcmp(path, "/api/objects") != 0 && strcmp(path, "/api/objects/") != 0 &&
             parse_object_route(path + 13, &kind, &id, resp))
        return -1;
    return live_params(req, kind, id, q, pid, resp);
}
