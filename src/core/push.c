/* The worker side of remote mode's sample push (pyloot/push.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/access.h"
#include "pyloot/error.h"
#include "pyloot/gzip.h"
#include "pyloot/hash.h"
#include "pyloot/httpc.h"
#include "pyloot/ingest.h"
#include "pyloot/push.h"
#include "pyloot/route_name.h"
#include "pyloot/varint.h"

/* A message holds at most this many bytes of samples before compression, so
 * that it stays far below the server's 4 MiB compressed body limit. */
#define MESSAGE_SAMPLE_BYTES (3u << 20)

typedef struct queued_sample {
    int64_t time_ms;
    char *entries; /* varint n, then n x (id delta, count, bytes), then with has_memory rss,
                    * python_bytes, allocator_free_bytes, then with has_routes varint n and n x
                    * (name, requests); owned */
    size_t len;
    int has_memory;
    int has_routes;
} queued_sample;

typedef struct type_name {
    char *name;    /* owned, not NUL-terminated */
    uint32_t len;
    int announced; /* in the current type-id space */
    uint64_t mark; /* message being built that announces it */
} type_name;

struct pl_push {
    char *server_host;
    uint16_t server_port;
    char auth[PL_TOKEN_MAX + 32];
    char host_name[PL_PUSH_HOST_MAX + 1];
    char argv[256];
    pl_incarnation self;
    uint32_t interval_ms;
    int timeout_ms;
    size_t max_samples, max_bytes;

    type_name *names;   /* indexed by local id */
    size_t n_names, cap_names;
    uint32_t *slots;    /* name hash: local id + 1, 0 is empty */
    size_t n_slots;     /* power of two */
    int new_space;      /* the next message starts a type-id space (bit1) */
    uint64_t mark;

    queued_sample *ring;
    size_t head, count;
    uint64_t rss;
    pl_proc_stats proc_stats; /* sent (bit2) once has_stats */
    int has_stats;
    int64_t next_try_ms;
    int backoff_ms;
    uint64_t outage_dropped; /* dropped when the outage began */
    int refused_status;      /* the last 4xx that dropped samples (logged once), 0 after a 200 */

    pthread_mutex_t lock; /* protects stats */
    pl_push_stats stats;
};

static void put_varint(pl_buf *b, uint64_t v)
{
    uint8_t tmp[PL_VARINT_MAX];
    pl_buf_append(b, tmp, pl_varint_put(tmp, v));
}

/* Reads a varint of the pusher's own buffer; NULL past its end. */
static const unsigned char *get_varint(const unsigned char *p, const unsigned char *end, uint64_t *v)
{
    size_t n = p ? pl_varint_get(p, end, v) : 0;
    return n ? p + n : NULL;
}

static void put_str(pl_buf *b, const char *s, size_t len)
{
    put_varint(b, len);
    pl_buf_append(b, s, len);
}

static uint64_t hash_name(const char *s, size_t len)
{
    return pl_fnv1a64(s, len);
}

static int valid_host_name(const char *h)
{
    size_t n = h ? strlen(h) : 0;
    if (n < 1 || n > PL_PUSH_HOST_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] < 0x20 || h[i] == 0x7f)
            return 0;
    return 1;
}

int pl_push_new(pl_push **out, const pl_push_options *opt)
{
    *out = NULL;
    if (!opt->server_host || !opt->server_host[0] || !opt->server_port || !valid_host_name(opt->host_name))
        return PL_EBADARG;
    if (opt->token && strlen(opt->token) > PL_TOKEN_MAX)
        return PL_EBADARG;
    pl_push *p = calloc(1, sizeof *p);
    if (!p)
        return ENOMEM;
    p->server_host = strdup(opt->server_host);
    p->max_samples = opt->max_samples ? opt->max_samples : PL_PUSH_DEFAULT_SAMPLES;
    p->max_bytes = opt->max_bytes ? opt->max_bytes : PL_PUSH_DEFAULT_BYTES;
    p->ring = calloc(p->max_samples, sizeof *p->ring);
    p->n_slots = 1024;
    p->slots = calloc(p->n_slots, sizeof *p->slots);
    if (!p->server_host || !p->ring || !p->slots) {
        pl_push_free(p);
        return ENOMEM;
    }
    p->server_port = opt->server_port;
    if (opt->token && opt->token[0])
        snprintf(p->auth, sizeof p->auth, "Authorization: Bearer %s", opt->token);
    snprintf(p->host_name, sizeof p->host_name, "%s", opt->host_name);
    snprintf(p->argv, sizeof p->argv, "%s", opt->argv ? opt->argv : "");
    /* The protocol takes no control characters (a `python -c` script has newlines). */
    for (char *c = p->argv; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
    p->self = opt->self;
    p->interval_ms = opt->interval_ms ? opt->interval_ms : 1;
    p->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 5000;
    p->new_space = 1;
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return 0;
}

void pl_push_free(pl_push *p)
{
    if (!p)
        return;
    pl_push_clear(p);
    for (size_t i = 0; i < p->n_names; i++)
        free(p->names[i].name);
    free(p->names);
    free(p->slots);
    free(p->ring);
    free(p->server_host);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

uint64_t pl_push_generation(const pl_push *p)
{
    (void)p;
    return 1;
}

static int grow_slots(pl_push *p)
{
    size_t n = p->n_slots * 2;
    uint32_t *s = calloc(n, sizeof *s);
    if (!s)
        return ENOMEM;
    for (size_t id = 0; id < p->n_names; id++) {
        size_t i = hash_name(p->names[id].name, p->names[id].len) & (n - 1);
        while (s[i])
            i = (i + 1) & (n - 1);
        s[i] = (uint32_t)id + 1;
    }
    free(p->slots);
    p->slots = s;
    p->n_slots = n;
    return 0;
}

static int type_id(pl_push *p, const char *name, size_t len, uint32_t *id)
{
    if (len > PL_TYPE_NAME_MAX)
        len = PL_TYPE_NAME_MAX;
    size_t i = hash_name(name, len) & (p->n_slots - 1);
    while (p->slots[i]) {
        type_name *t = &p->names[p->slots[i] - 1];
        if (t->len == len && memcmp(t->name, name, len) == 0) {
            *id = p->slots[i] - 1;
            return 0;
        }
        i = (i + 1) & (p->n_slots - 1);
    }
    if (p->n_names == p->cap_names) {
        size_t cap = p->cap_names ? p->cap_names * 2 : 256;
        type_name *n = realloc(p->names, cap * sizeof *n);
        if (!n)
            return ENOMEM;
        p->names = n;
        p->cap_names = cap;
    }
    type_name *t = &p->names[p->n_names];
    memset(t, 0, sizeof *t);
    t->name = malloc(len ? len : 1);
    if (!t->name)
        return ENOMEM;
    memcpy(t->name, name, len);
    t->len = (uint32_t)len;
    p->slots[i] = (uint32_t)p->n_names + 1;
    *id = (uint32_t)p->n_names++;
    if (p->n_names * 2 > p->n_slots)
        return grow_slots(p);
    return 0;
}

int pl_push_type_ids(pl_push *p, const char *const *names, const size_t *lens, size_t n, uint32_t *ids)
{
    for (size_t i = 0; i < n; i++) {
        int rc = type_id(p, names[i], lens[i], &ids[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int by_id(const void *a, const void *b)
{
    uint32_t x = ((const pl_type_count *)a)->type_id, y = ((const pl_type_count *)b)->type_id;
    return x < y ? -1 : x > y;
}

static size_t queued_bytes(const pl_push *p)
{
    size_t total = 0;
    for (size_t i = 0; i < p->count; i++)
        total += p->ring[(p->head + i) % p->max_samples].len;
    return total;
}

/* Removes the oldest sample. */
static void pop(pl_push *p)
{
    free(p->ring[p->head].entries);
    p->ring[p->head].entries = NULL;
    p->head = (p->head + 1) % p->max_samples;
    p->count--;
}

static void update_queue_stats(pl_push *p)
{
    pthread_mutex_lock(&p->lock);
    p->stats.queued = p->count;
    p->stats.queued_bytes = queued_bytes(p);
    pthread_mutex_unlock(&p->lock);
}

/* Figures beyond the decoder's bound are sent at the bound. */
static uint64_t memory_figure(uint64_t v)
{
    return v < PL_INGEST_MEMORY_MAX ? v : PL_INGEST_MEMORY_MAX;
}

/* Queues one sample; its memory figures go on the wire when has_memory,
 * its requests by route when routes is not NULL. */
static int add(pl_push *p, int64_t time_ms, pl_type_count *counts, size_t n, const pl_memory_sample *memory,
               int has_memory, const pl_route_sample *routes)
{
    uint64_t rss = memory->rss;
    pl_buf b = PL_BUF_INIT;
    qsort(counts, n, sizeof *counts, by_id);
    put_varint(&b, n);
    for (size_t i = 0; i < n; i++) {
        if (i && counts[i].type_id == counts[i - 1].type_id) {
            pl_buf_free(&b);
            return PL_EBADARG;
        }
        put_varint(&b, i ? counts[i].type_id - counts[i - 1].type_id : counts[i].type_id);
        put_varint(&b, counts[i].count);
        put_varint(&b, counts[i].bytes);
    }
    if (has_memory) {
        put_varint(&b, memory_figure(memory->rss));
        put_varint(&b, memory_figure(memory->python_bytes));
        put_varint(&b, memory_figure(memory->allocator_free_bytes));
    }
    if (routes) {
        /* Within the decoder's bounds: a worker's table never holds more
         * routes, names are written by pl_route_name; a name that is not
         * valid goes as PL_ROUTE_OTHER, as the store would count it. */
        size_t k = routes->n < PL_INGEST_ROUTES_MAX ? routes->n : PL_INGEST_ROUTES_MAX;
        put_varint(&b, k);
        for (size_t i = 0; i < k; i++) {
            const pl_route_count *r = &routes->routes[i];
            if (pl_route_name_valid(r->name, r->len))
                put_str(&b, r->name, r->len);
            else
                put_str(&b, PL_ROUTE_OTHER, strlen(PL_ROUTE_OTHER));
            put_varint(&b, r->requests < PL_INGEST_REQUESTS_MAX ? r->requests : PL_INGEST_REQUESTS_MAX);
        }
    }
    if (b.err) {
        pl_buf_free(&b);
        return ENOMEM;
    }
    p->rss = rss;
    size_t dropped = 0;
    size_t total = queued_bytes(p);
    while (p->count && (p->count >= p->max_samples || total + b.len > p->max_bytes)) {
        total -= p->ring[p->head].len;
        pop(p);
        dropped++;
    }
    queued_sample *s = &p->ring[(p->head + p->count) % p->max_samples];
    s->time_ms = time_ms;
    s->has_memory = has_memory;
    s->has_routes = routes != NULL;
    s->entries = pl_buf_detach(&b, &s->len);
    if (!s->entries) { /* n == 0 still writes one byte, so this is never an empty buffer */
        return ENOMEM;
    }
    p->count++;
    pthread_mutex_lock(&p->lock);
    p->stats.dropped += dropped;
    pthread_mutex_unlock(&p->lock);
    update_queue_stats(p);
    return 0;
}

int pl_push_add(pl_push *p, int64_t time_ms, pl_type_count *counts, size_t n, uint64_t rss)
{
    pl_memory_sample m = {rss, 0, 0};

    return add(p, time_ms, counts, n, &m, 0, NULL);
}

int pl_push_add_memory(pl_push *p, int64_t time_ms, pl_type_count *counts, size_t n,
                       const pl_memory_sample *memory)
{
    return add(p, time_ms, counts, n, memory, 1, NULL);
}

int pl_push_add_sample(pl_push *p, int64_t time_ms, pl_type_count *counts, size_t n,
                       const pl_memory_sample *memory, const pl_route_sample *routes)
{
    return add(p, time_ms, counts, n, memory, 1, routes);
}

void pl_push_set_stats(pl_push *p, const pl_proc_stats *stats)
{
    p->proc_stats = *stats;
    p->has_stats = 1;
}

int pl_push_due(const pl_push *p, int64_t now_ms)
{
    return p->count && now_ms >= p->next_try_ms;
}

/* Builds the message of the first *n_samples queued samples (chosen here). */
static int build(pl_push *p, int end, pl_buf *raw, size_t *n_samples)
{
    /* A message's samples all carry memory figures, or none does; the
     * same for requests by route. */
    int memory = p->count && p->ring[p->head].has_memory;
    int routes = p->count && p->ring[p->head].has_routes;

    pl_buf_reset(raw);
    pl_buf_append(raw, "PLS1", 4);
    put_varint(raw, (uint64_t)(end ? PL_INGEST_ENDED : 0) | (p->new_space ? PL_INGEST_NEW_SPACE : 0) |
                        (p->has_stats ? PL_INGEST_STATS : 0) | (memory ? PL_INGEST_MEMORY : 0) |
                        (routes ? PL_INGEST_ROUTES : 0));
    put_str(raw, p->host_name, strlen(p->host_name));
    put_varint(raw, p->self.pid);
    put_varint(raw, p->self.start);
    put_varint(raw, p->interval_ms);
    put_varint(raw, p->rss);
    put_str(raw, p->argv, strlen(p->argv));
    if (p->has_stats) {
        uint64_t us = p->proc_stats.collection_us;
        put_varint(raw, us < PL_INGEST_COLLECTION_MAX_US ? us : PL_INGEST_COLLECTION_MAX_US);
        put_varint(raw, p->proc_stats.gil_held_us);
    }

    size_t n = 0, bytes = 0;
    while (n < p->count) {
        const queued_sample *qs = &p->ring[(p->head + n) % p->max_samples];
        size_t len = qs->len;
        if (n && (bytes + len > MESSAGE_SAMPLE_BYTES || qs->has_memory != memory || qs->has_routes != routes))
            break;
        bytes += len;
        n++;
    }
    /* Announce every id these samples use that this type-id space has not seen. */
    p->mark++;
    pl_buf ann = PL_BUF_INIT;
    size_t n_ann = 0;
    for (size_t i = 0; i < n; i++) {
        const queued_sample *s = &p->ring[(p->head + i) % p->max_samples];
        const unsigned char *q = (const unsigned char *)s->entries, *e = q + s->len;
        uint64_t k = 0, id = 0, v = 0;
        q = get_varint(q, e, &k);
        for (uint64_t j = 0; q && j < k; j++) {
            q = get_varint(q, e, &v);
            id = j ? id + v : v;
            if (q)
                q = get_varint(q, e, &v);
            if (q)
                q = get_varint(q, e, &v);
            if (id < p->n_names && !p->names[id].announced && p->names[id].mark != p->mark) {
                p->names[id].mark = p->mark;
                put_varint(&ann, id);
                put_str(&ann, p->names[id].name, p->names[id].len);
                n_ann++;
            }
        }
    }
    put_varint(raw, n_ann);
    pl_buf_append(raw, ann.data, ann.len);
    pl_buf_free(&ann);
    put_varint(raw, n);
    for (size_t i = 0; i < n; i++) {
        const queued_sample *s = &p->ring[(p->head + i) % p->max_samples];
        put_varint(raw, (uint64_t)(s->time_ms > 0 ? s->time_ms : 0));
        pl_buf_append(raw, s->entries, s->len);
    }
    *n_samples = n;
    return raw->err ? ENOMEM : 0;
}

/* After a 200: the names marked by the last build are announced. */
static void commit_announced(pl_push *p)
{
    for (size_t i = 0; i < p->n_names; i++)
        if (p->names[i].mark == p->mark)
            p->names[i].announced = 1;
    p->new_space = 0;
}

void pl_push_mark_announced(pl_push *p)
{
    for (size_t i = 0; i < p->n_names; i++)
        p->names[i].announced = 1;
    p->new_space = 0;
}

void pl_push_clear(pl_push *p)
{
    while (p->count)
        pop(p);
    update_queue_stats(p);
}

int pl_push_encode(pl_push *p, int end, pl_buf *out, size_t *n_samples)
{
    pl_buf raw = PL_BUF_INIT;
    int rc = build(p, end, &raw, n_samples);
    if (!rc)
        rc = pl_gzip(raw.data, raw.len, out);
    pl_buf_free(&raw);
    return rc;
}

static void start_space(pl_push *p)
{
    for (size_t i = 0; i < p->n_names; i++)
        p->names[i].announced = 0;
    p->new_space = 1;
}

static void describe_failure(char *why, size_t len, int rc, const pl_http_response *r)
{
    if (rc)
        snprintf(why, len, "%s", pl_strerror(rc));
    else
        snprintf(why, len, "HTTP %d", r->status);
}

static void fail(pl_push *p, int64_t now_ms, int rc, const pl_http_response *r, pl_buf *log)
{
    char why[128];
    describe_failure(why, sizeof why, rc, r);
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : PL_PUSH_BACKOFF_MIN_MS;
    if (p->backoff_ms > PL_PUSH_BACKOFF_MAX_MS)
        p->backoff_ms = PL_PUSH_BACKOFF_MAX_MS;
    p->next_try_ms = now_ms + p->backoff_ms;
    pthread_mutex_lock(&p->lock);
    p->stats.failures++;
    p->stats.last_status = rc ? 0 : r->status;
    p->stats.last_error = rc ? rc : PL_EBUSY;
    int started = !p->stats.outage;
    p->stats.outage = 1;
    if (started)
        p->outage_dropped = p->stats.dropped;
    pthread_mutex_unlock(&p->lock);
    if (started && log)
        pl_buf_printf(log, "pyloot: central server %s:%u unreachable (%s); buffering samples\n",
                      p->server_host, (unsigned)p->server_port, why);
}

static void succeed(pl_push *p, size_t n, size_t wire, uint64_t *delivered_now)
{
    for (size_t i = 0; i < n; i++)
        pop(p);
    commit_announced(p);
    p->refused_status = 0;
    p->backoff_ms = 0;
    p->next_try_ms = 0;
    pthread_mutex_lock(&p->lock);
    p->stats.delivered += n;
    p->stats.messages++;
    p->stats.wire_bytes += wire;
    p->stats.last_status = 200;
    p->stats.last_error = 0;
    *delivered_now += n;
    p->stats.outage = 0;
    pthread_mutex_unlock(&p->lock);
    update_queue_stats(p);
}

int pl_push_send(pl_push *p, int64_t now_ms, int end, int timeout_ms, pl_buf *log)
{
    pl_buf raw = PL_BUF_INIT, gz = PL_BUF_INIT;
    pl_http_response r = PL_HTTP_RESPONSE_INIT;
    char target[32];
    int rc = 0, reannounced = 0;
    uint64_t delivered_now = 0;
    pthread_mutex_lock(&p->lock);
    int was_outage = p->stats.outage;
    uint64_t dropped_before = p->outage_dropped;
    pthread_mutex_unlock(&p->lock);
    if (end && was_outage && now_ms < p->next_try_ms)
        goto done; /* never make an exit wait for a server known to be away */
    int64_t deadline = now_ms + (timeout_ms > 0 ? timeout_ms : p->timeout_ms);
    snprintf(target, sizeof target, "/api/samples");
    for (;;) {
        if (!p->count && !end)
            break;
        int64_t left = deadline - pl_now_ms();
        if (left <= 0) {
            rc = ETIMEDOUT;
            break;
        }
        size_t n;
        /* The end flag rides on the message that empties the queue. */
        rc = build(p, 0, &raw, &n);
        int last = end && !rc && n == p->count;
        if (last)
            rc = build(p, 1, &raw, &n);
        pl_buf_reset(&gz);
        if (!rc)
            rc = pl_gzip(raw.data, raw.len, &gz);
        if (rc)
            break;
        pl_http_request req;
        memset(&req, 0, sizeof req);
        req.method = "POST";
        req.host = p->server_host;
        req.port = p->server_port;
        req.target = target;
        req.headers[req.n_headers++] = "Content-Type: application/x-pyloot-samples";
        req.headers[req.n_headers++] = "Content-Encoding: gzip";
        if (p->auth[0])
            req.headers[req.n_headers++] = p->auth;
        req.body = gz.data;
        req.body_len = gz.len;
        req.timeout_ms = (int)(left < p->timeout_ms ? left : p->timeout_ms);
        req.max_body = 64 * 1024;
        req.cancel_fd = -1;
        rc = pl_http_do(&req, &r);
        if (rc == 0 && r.status == 200) {
            succeed(p, n, gz.len, &delivered_now);
            if (last)
                break;
            continue;
        }
        if (rc == 0 && r.status == 409 && !reannounced) {
            reannounced = 1;
            start_space(p);
            pthread_mutex_lock(&p->lock);
            p->stats.reannounces++;
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        if (rc == 0 && (r.status == 400 || r.status == 413 || r.status == 415)) {
            /* The server will never take these: drop them instead of retrying forever. */
            for (size_t i = 0; i < n; i++)
                pop(p);
            pthread_mutex_lock(&p->lock);
            p->stats.dropped += n;
            p->stats.last_status = r.status;
            pthread_mutex_unlock(&p->lock);
            update_queue_stats(p);
            int repeated = p->refused_status == r.status;
            p->refused_status = r.status;
            if (log && !repeated) { /* one line per kind of refusal, not one per message */
                char msg[160];
                snprintf(msg, sizeof msg, "%.*s", (int)(r.body.len < 150 ? r.body.len : 150),
                         r.body.data ? r.body.data : "");
                pl_buf_printf(log, "pyloot: central server %s:%u refused %zu samples (HTTP %d %s); dropped\n",
                              p->server_host, (unsigned)p->server_port, n, r.status, msg);
            }
            if (last)
                break;
            continue;
        }
        fail(p, pl_now_ms(), rc, &r, was_outage ? NULL : log);
        was_outage = 1;
        if (!rc)
            rc = PL_EBUSY;
        break;
    }
done:
    pthread_mutex_lock(&p->lock);
    int now_ok = !p->stats.outage;
    uint64_t dropped = p->stats.dropped - dropped_before;
    pthread_mutex_unlock(&p->lock);
    if (was_outage && now_ok && log)
        pl_buf_printf(log, "pyloot: central server %s:%u reachable again; %" PRIu64 " samples delivered, %" PRIu64
                      " dropped\n", p->server_host, (unsigned)p->server_port, delivered_now, dropped);
    pl_buf_free(&raw);
    pl_buf_free(&gz);
    pl_http_response_free(&r);
    return rc;
}

void pl_push_stats_get(pl_push *p, pl_push_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    pthread_mutex_unlock(&p->lock);
}
