/* The remote-mode routes of the central `pyloot` server: see
 * pyloot/remote.h and docs/http-api.md ("Remote mode"). The per-incarnation
 * type-id maps live in memory only (a restarted server answers the first
 * push of each worker 409, and the worker announces its names again). Over
 * 800 lines because the routes share the server's state (the id maps and
 * their bounds, the committer, the token): the push is a function per phase
 * (decode, check, names, map, sort, store), the poll, the reply and the
 * forwarded queries one function each; the route table that dispatches to
 * them is http/handler.c's. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http_int.h"
#include "pyloot/access.h"
#include "pyloot/hash.h"
#include "pyloot/error.h"
#include "pyloot/gzip.h"
#include "pyloot/ingest.h"
#include "pyloot/json.h"
#include "pyloot/remote.h"

#define BUCKETS 4096u
/* Id maps kept at most; beyond, all are dropped and the workers re-announce
 * (a 409 each), so memory stays bounded whatever the churn. */
#define MAX_WORKERS 65536u

struct id_pair {
    uint32_t local;
    uint32_t store;
};

/* One pushing incarnation's id map. Protected by pl_remote.lock. */
struct worker {
    struct worker *next;
    char host[PL_INGEST_HOST_MAX + 1];
    uint32_t pid;
    uint64_t start;          /* the worker's own */
    pl_incarnation inc;      /* as stored */
    struct id_pair *ids;     /* sorted by local, no duplicates */
    size_t n_ids;
    uint64_t announced;      /* names new to it over its life (PL_REMOTE_TYPES_PER_WORKER) */
    uint64_t name_bytes;     /* and their bytes (PL_REMOTE_NAME_BYTES_PER_WORKER) */
    int64_t last_ms;         /* its last stored push */
    uint32_t interval_ms;
};

struct pl_remote {
    pl_remote_options opt;
    pl_committer *committer;         /* group commit; NULL: pushes stored on the caller's thread */
    pthread_mutex_t lock;
    struct worker *buckets[BUCKETS]; /* protected by lock */
    size_t n_workers;                /* protected by lock */
    size_t map_bytes;                /* protected by lock: worker_bytes() of every map */
    int64_t next_sweep_ms;           /* protected by lock */
};

/* What one id map costs, bookkeeping included. */
static size_t worker_bytes(const struct worker *w, size_t n_ids)
{
    (void)w;
    return sizeof(struct worker) + n_ids * sizeof(struct id_pair);
}

int pl_remote_new(pl_remote **out, const pl_remote_options *opt)
{
    *out = NULL;
    pl_remote *r = calloc(1, sizeof *r);
    if (!r)
        return ENOMEM;
    r->opt = *opt;
    if (!r->opt.live_timeout_ms)
        r->opt.live_timeout_ms = 5000;
    if (!r->opt.poll_ms)
        r->opt.poll_ms = PL_REMOTE_POLL_MS;
    if (!r->opt.types_per_push)
        r->opt.types_per_push = PL_REMOTE_TYPES_PER_PUSH;
    if (!r->opt.types_per_worker)
        r->opt.types_per_worker = PL_REMOTE_TYPES_PER_WORKER;
    if (!r->opt.name_bytes_per_worker)
        r->opt.name_bytes_per_worker = PL_REMOTE_NAME_BYTES_PER_WORKER;
    if (!r->opt.maps_max_bytes)
        r->opt.maps_max_bytes = PL_REMOTE_MAPS_MAX_BYTES;
    if (!r->opt.map_idle_ms)
        r->opt.map_idle_ms = PL_REMOTE_MAP_IDLE_MS;
    if (pthread_mutex_init(&r->lock, NULL)) {
        free(r);
        return ENOMEM;
    }
    if (opt->committed) {
        int rc = pl_committer_new(&r->committer, opt->store, opt->committed, opt->committed_ctx);
        if (rc) {
            pthread_mutex_destroy(&r->lock);
            free(r);
            return rc;
        }
    }
    *out = r;
    return 0;
}

static void drop_workers(pl_remote *r)
{
    for (size_t i = 0; i < BUCKETS; i++) {
        struct worker *w = r->buckets[i];
        while (w) {
            struct worker *next = w->next;
            free(w->ids);
            free(w);
            w = next;
        }
        r->buckets[i] = NULL;
    }
    r->n_workers = 0;
    r->map_bytes = 0;
}

/* Unlinks and frees the map at *pp. Under r->lock. */
static void free_worker(pl_remote *r, struct worker **pp)
{
    struct worker *w = *pp;
    *pp = w->next;
    r->map_bytes -= worker_bytes(w, w->n_ids);
    r->n_workers--;
    free(w->ids);
    free(w);
}

/* Frees the maps of incarnations that stopped pushing: ended without
 * saying so, killed, or evicted from the store by retention; never `keep`
 * (the caller's). Under r->lock. */
static void sweep_idle(pl_remote *r, int64_t now, const struct worker *keep)
{
    for (size_t i = 0; i < BUCKETS; i++) {
        struct worker **pp = &r->buckets[i];
        while (*pp) {
            int64_t idle = (int64_t)(*pp)->interval_ms * PL_REMOTE_MAP_IDLE_BEATS;
            if (idle < (int64_t)r->opt.map_idle_ms)
                idle = r->opt.map_idle_ms;
            if (*pp != keep && now - (*pp)->last_ms > idle)
                free_worker(r, pp);
            else
                pp = &(*pp)->next;
        }
    }
    r->next_sweep_ms = now + r->opt.map_idle_ms / 6;
}

void pl_remote_free(pl_remote *r)
{
    if (!r)
        return;
    pl_committer_free(r->committer);
    drop_workers(r);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

size_t pl_remote_known(pl_remote *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->n_workers;
    pthread_mutex_unlock(&r->lock);
    return n;
}

size_t pl_remote_map_bytes(pl_remote *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->map_bytes;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* ---- access ---- */

/* Common gate of the worker-facing routes: method, the access rule of every
 * route (pyloot/access.h: the token as a Bearer header or the login cookie;
 * without one, pushes, polls and replies are summary routes, the forwarded
 * object queries value routes), read-only. Returns 0 to go on, else fills
 * the error and returns -1. */
static int gate(pl_remote *r, const pl_remote_request *req, const char *method, int writes, pl_response *resp)
{
    const pl_request *http = req->http;
    const char *m = http->method ? http->method : "GET";
    if (strcmp(m, method) != 0 && !(strcmp(method, "GET") == 0 && strcmp(m, "HEAD") == 0)) {
        pl_http_error(resp, 405, "use %s for %s", method, http->path);
        return -1;
    }
    pl_access_request ar;
    memset(&ar, 0, sizeof ar);
    ar.authorization = http->authorization ? http->authorization : req->authorization;
    ar.cookie = http->cookie;
    ar.peer = http->peer;
    ar.proxied = http->proxied;
    ar.allowed = http->allowed;
    ar.host = http->host;
    char why[400];
    int status = pl_access_check(r->opt.token, pl_access_classify(http->path), &ar, why, sizeof why);
    if (status) {
        pl_http_error(resp, status, "%s", why);
        if (status == 401)
            resp->www_authenticate = "Bearer realm=\"pyloot\"";
        return -1;
    }
    if (writes && r->opt.read_only) {
        pl_http_error(resp, 403, "this pyloot server runs --read-only: it takes no pushes from workers");
        return -1;
    }
    return 0;
}

/* Without a token the server cannot tell a worker from anyone else who
 * reaches it: whoever polls as a worker would be handed its queries and
 * could answer them with made-up objects. So a server without a token
 * forwards no live-object query to a pushing worker and takes no poll or
 * reply (403). Returns 1 (with the error filled) when the token is missing. */
static int refuse_without_token(const pl_remote *r, pl_response *resp)
{
    if (r->opt.token && *r->opt.token)
        return 0;
    pl_http_error(resp, 403,
         "this pyloot server has no token, so live objects of pushing workers are off: without one it cannot "
         "tell a worker from anyone else, and their answers could be forged. Start it with a token "
         "(--token TOKEN, better the environment variable PYLOOT_TOKEN) and give the workers the same one "
         "(PyLoot(token=...) or PYLOOT_TOKEN)");
    return 1;
}

/* 1 when a header value is `want` (case-insensitive), parameters after ';'
 * and surrounding spaces ignored. */
static int header_is(const char *value, const char *want)
{
    if (!value)
        return 0;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(want);
    if (strncasecmp(value, want, n) != 0)
        return 0;
    value += n;
    while (*value == ' ' || *value == '\t')
        value++;
    return *value == '\0' || *value == ';';
}

/* ---- id maps ---- */

static size_t bucket_of(const char *host, uint32_t pid, uint64_t start)
{
    uint64_t h = pl_fnv1a64(host, strlen(host));
    h = pl_fnv1a64_step(pl_fnv1a64_step(h, pid), start);
    return (size_t)(h ^ (h >> 29)) % BUCKETS;
}

static struct worker **find_worker(pl_remote *r, const char *host, uint32_t pid, uint64_t start)
{
    struct worker **pp = &r->buckets[bucket_of(host, pid, start)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->pid == pid && (*pp)->start == start && strcmp((*pp)->host, host) == 0)
            break;
    return pp;
}

static const struct id_pair *map_find(const struct id_pair *ids, size_t n, uint32_t local)
{
    /* Workers hand out their ids in sequence, so a map is usually dense:
     * look where the id would be before searching. */
    if (n && local >= ids[0].local && local - ids[0].local < n && ids[local - ids[0].local].local == local)
        return &ids[local - ids[0].local];
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid].local < local)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo].local == local ? &ids[lo] : NULL;
}

struct seq_pair {
    struct id_pair p;
    size_t seq;
};

static int cmp_seq_pair(const void *a, const void *b)
{
    const struct seq_pair *x = a, *y = b;
    if (x->p.local != y->p.local)
        return x->p.local < y->p.local ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Merges `add` (later entries win) into old[0..n_old), giving a sorted map
 * without duplicates in *out (malloc'ed). */
static int map_merge(const struct id_pair *old, size_t n_old, const struct id_pair *add, size_t n_add,
                     struct id_pair **out, size_t *n_out)
{
    size_t n = n_old + n_add, m = 0;
    struct seq_pair *tmp = malloc((n ? n : 1) * sizeof *tmp);
    struct id_pair *res = malloc((n ? n : 1) * sizeof *res);
    if (!tmp || !res) {
        free(tmp);
        free(res);
        return ENOMEM;
    }
    for (size_t i = 0; i < n_old; i++)
        tmp[i] = (struct seq_pair){old[i], i};
    for (size_t i = 0; i < n_add; i++)
        tmp[n_old + i] = (struct seq_pair){add[i], n_old + i};
    qsort(tmp, n, sizeof *tmp, cmp_seq_pair);
    for (size_t i = 0; i < n; i++) {
        if (m && res[m - 1].local == tmp[i].p.local)
            res[m - 1] = tmp[i].p;
        else
            res[m++] = tmp[i].p;
    }
    free(tmp);
    *out = res;
    *n_out = m;
    return 0;
}

/* ---- POST /api/samples ---- */

static void reannounce(pl_response *resp, const char *why)
{
    pl_http_json(resp, 409);
    pl_buf_reset(&resp->body);
    pl_buf_puts(&resp->body, "{\"error\":");
    pl_json_cstr(&resp->body, why);
    pl_buf_puts(&resp->body, ",\"reannounce\":true}");
}

/* A push past one of the bounds of pyloot/remote.h: 413, or 429 for the
 * total of the id maps (the server's state, not the push's fault: the
 * worker keeps the samples and retries later); the error says which bound
 * (`bound`, also a JSON field) and its value. */
static void refuse(pl_response *resp, const char *bound, const char *why)
{
    pl_http_json(resp, strcmp(bound, "id_maps_bytes") == 0 ? 429 : 413);
    pl_buf_reset(&resp->body);
    pl_buf_puts(&resp->body, "{\"error\":");
    pl_json_cstr(&resp->body, why);
    pl_buf_puts(&resp->body, ",\"bound\":");
    pl_json_cstr(&resp->body, bound);
    pl_buf_puts(&resp->body, "}");
}

/* What an announcement adds to an incarnation's counts. */
struct charge {
    size_t names;
    uint64_t bytes;
};

/* Checks a push's announcement against the bounds: `c` new to the
 * incarnation, n_after the size its map will have. NULL when it fits, else
 * the bound's name with why filled. Under r->lock; may free idle maps
 * (never w). */
static const char *map_check(pl_remote *r, const struct worker *w, struct charge c, size_t n_after, int64_t now,
                             char *why, size_t whylen)
{
    uint64_t announced = (w ? w->announced : 0) + c.names, bytes = (w ? w->name_bytes : 0) + c.bytes;
    if (announced > r->opt.types_per_worker) {
        snprintf(why, whylen, "an incarnation may announce at most %u type names over its life (this one: %llu)",
                 r->opt.types_per_worker, (unsigned long long)announced);
        return "types_per_worker";
    }
    if (n_after > r->opt.types_per_worker) {
        snprintf(why, whylen, "the type-id map of an incarnation may hold at most %u ids (%zu bytes; this one: %zu)",
                 r->opt.types_per_worker, (size_t)r->opt.types_per_worker * sizeof(struct id_pair), n_after);
        return "types_per_worker";
    }
    if (bytes > r->opt.name_bytes_per_worker) {
        snprintf(why, whylen, "the type names an incarnation announces over its life may take at most %zu bytes "
                 "(this one: %llu)", r->opt.name_bytes_per_worker, (unsigned long long)bytes);
        return "name_bytes_per_worker";
    }
    size_t before = w ? worker_bytes(w, w->n_ids) : 0, after = worker_bytes(w, n_after);
    if (after > before && r->map_bytes - before + after > r->opt.maps_max_bytes) {
        sweep_idle(r, now, w);
        if (r->map_bytes - before + after > r->opt.maps_max_bytes) {
            snprintf(why, whylen, "the type-id maps of the pushing incarnations hold %zu of at most %zu bytes: "
                     "retry later", r->map_bytes, r->opt.maps_max_bytes);
            return "id_maps_bytes";
        }
    }
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The names of `ann` (store ids filled; lens[i] the length of ann[i]'s
 * name) that w's map does not hold yet: what an announcement adds to the
 * incarnation's counts. A worker that announces its names again in a new
 * space adds nothing. ENOMEM or 0. Under r->lock. */
static int names_added(const struct worker *w, const struct id_pair *ann, const size_t *lens, size_t n_ann,
                       struct charge *c)
{
    uint32_t *have = NULL;
    c->names = 0;
    c->bytes = 0;
    if (!n_ann)
        return 0; /* most pushes announce nothing */
    if (w && w->n_ids) {
        have = malloc(w->n_ids * sizeof *have);
        if (!have)
            return ENOMEM;
        for (size_t i = 0; i < w->n_ids; i++)
            have[i] = w->ids[i].store;
        qsort(have, w->n_ids, sizeof *have, cmp_u32);
    }
    for (size_t i = 0; i < n_ann; i++)
        if (!have || !bsearch(&ann[i].store, have, w->n_ids, sizeof *have, cmp_u32)) {
            c->names++;
            c->bytes += lens[i];
        }
    free(have);
    return 0;
}

/* The size of w's map once `ann` is merged into it (fresh: replaces it). */
static size_t map_size_after(const struct worker *w, const struct id_pair *ann, size_t n_ann, int fresh)
{
    if (!w || fresh)
        return n_ann;
    size_t n = w->n_ids;
    for (size_t i = 0; i < n_ann; i++)
        n += map_find(w->ids, w->n_ids, ann[i].local) == NULL;
    return n;
}

static int store_status(int rc)
{
    return rc == PL_EBADARG ? 400 : 503;
}

/* Every id a sample uses must be announced in this message or (without
 * NEW_SPACE) known from an earlier one. Called under r->lock. */
static int ids_known(const pl_ingest_msg *m, const struct id_pair *announced, size_t n_ann,
                     const struct worker *w, uint32_t *missing)
{
    for (size_t i = 0; i < m->n_entries; i++) {
        uint32_t id = m->entries[i].local_id;
        if (map_find(announced, n_ann, id))
            continue;
        if (w && !(m->flags & PL_INGEST_NEW_SPACE) && map_find(w->ids, w->n_ids, id))
            continue;
        *missing = id;
        return 0;
    }
    return 1;
}

/* A push waiting to be stored: the store item and everything it points
 * to, owned by the job (see pyloot/committer.h). */
struct ingest_job {
    pl_commit_job job;          /* first: the committer hands this back */
    pl_proc_info info;          /* the heartbeat: host, pid, start, argv, interval, rss */
    pl_store_sample *samples;
    pl_memory_sample *memory;   /* PL_INGEST_MEMORY: n_samples entries; else NULL */
    pl_type_count *counts;      /* every sample's entries, by store id */
    size_t n_samples;
    pl_route_sample *route_samples; /* PL_INGEST_ROUTES: n_samples entries; else NULL */
    pl_route_count *routes;     /* their routes, names copied into route_names */
    char *route_names;
};

static void job_release(pl_commit_job *job)
{
    struct ingest_job *j = (struct ingest_job *)job;
    free(j->samples);
    free(j->memory);
    free(j->counts);
    free(j->route_samples);
    free(j->routes);
    free(j->route_names);
    free(j);
}

/* Copies the requests by route of m into j (the message's memory is freed
 * before the job is stored). 0 or ENOMEM. */
static int job_routes(struct ingest_job *j, const pl_ingest_msg *m)
{
    size_t bytes = 0, at = 0, i;

    for (i = 0; i < m->n_routes; i++)
        bytes += m->routes[i].len;
    j->route_samples = calloc(m->n_samples ? m->n_samples : 1, sizeof *j->route_samples);
    j->routes = calloc(m->n_routes ? m->n_routes : 1, sizeof *j->routes);
    j->route_names = malloc(bytes ? bytes : 1);
    if (!j->route_samples || !j->routes || !j->route_names)
        return ENOMEM;
    for (i = 0; i < m->n_routes; i++) {
        memcpy(j->route_names + at, m->routes[i].name, m->routes[i].len);
        j->routes[i] = (pl_route_count){j->route_names + at, m->routes[i].len, m->routes[i].requests};
        at += m->routes[i].len;
    }
    for (i = 0; i < m->n_samples; i++)
        j->route_samples[i] = (pl_route_sample){j->routes + m->samples[i].first_route, m->samples[i].n_routes};
    j->job.item.routes = j->route_samples;
    return 0;
}

static struct ingest_job *job_new(const pl_ingest_msg *m, int64_t now)
{
    struct ingest_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->samples = calloc(m->n_samples ? m->n_samples : 1, sizeof *j->samples);
    if (!j->samples) {
        free(j);
        return NULL;
    }
    if (m->flags & PL_INGEST_MEMORY) {
        j->memory = calloc(m->n_samples ? m->n_samples : 1, sizeof *j->memory);
        if (!j->memory) {
            free(j->samples);
            free(j);
            return NULL;
        }
        for (size_t i = 0; i < m->n_samples; i++)
            j->memory[i] = m->samples[i].memory;
        j->job.item.memory = j->memory;
    }
    if ((m->flags & PL_INGEST_ROUTES) && job_routes(j, m)) {
        job_release(&j->job);
        return NULL;
    }
    memcpy(j->info.host, m->host, sizeof m->host);
    memcpy(j->info.argv, m->argv, sizeof j->info.argv - 1);
    j->info.inc.pid = m->pid;
    j->info.inc.start = m->start;
    j->info.interval_ms = m->interval_ms;
    j->info.rss = m->rss;
    j->info.stats.collection_us = m->collection_us;
    j->info.stats.gil_held_us = m->gil_held_us;
    j->n_samples = m->n_samples;
    j->job.item.remote = &j->info;
    j->job.item.now_ms = now;
    j->job.item.end = (m->flags & PL_INGEST_ENDED) != 0;
    j->job.item.samples = j->samples;
    j->job.item.n_samples = m->n_samples;
    j->job.bytes = sizeof *j + m->n_samples * (sizeof *j->samples + (j->memory ? sizeof *j->memory : 0)) +
                   m->n_entries * sizeof *j->counts +
                   (j->routes ? m->n_samples * sizeof *j->route_samples + m->n_routes * sizeof *j->routes : 0);
    j->job.release = job_release;
    return j;
}

/* Answers a push once its item was stored (or refused), forgets the id map
 * of an ended incarnation, and releases the job. */
static void finish_samples(pl_remote *r, struct ingest_job *j, pl_response *resp)
{
    const pl_store_batch_item *item = &j->job.item;
    int rc = j->job.rc;
    if (rc) {
        pl_http_error(resp, store_status(rc), "storing the samples of %s pid %u failed: %s", j->info.host,
             j->info.inc.pid, pl_strerror(rc));
        goto out;
    }
    pthread_mutex_lock(&r->lock);
    struct worker **pp = find_worker(r, j->info.host, j->info.inc.pid, j->info.inc.start), *w = *pp;
    if (w && item->end) {
        free_worker(r, pp);
    } else if (w) {
        w->inc = item->inc;
    }
    pthread_mutex_unlock(&r->lock);
    pl_http_json(resp, 200);
    pl_buf_printf(&resp->body, "{\"accepted\":%zu}", j->n_samples);
out:
    job_release(&j->job);
}

/* A push being read: the decoded message and what the phases add to it. */
struct push {
    pl_buf plain;          /* the decompressed body; m's names point into it */
    pl_ingest_msg m;
    int64_t now;
    struct id_pair *ann;   /* the announced names: local id -> index in m.types, then -> store id */
    size_t n_ann;
    pl_type_count *counts; /* every entry of every sample, by store id */
    char why[300];
};

static void push_free(struct push *p)
{
    free(p->counts);
    free(p->ann);
    pl_ingest_msg_free(&p->m);
    pl_buf_free(&p->plain);
}

/* Phase 1, decode: the gate, the headers, the body's bounds, gunzip and
 * the message. 0, or -1 with the answer in resp. */
static int push_decode(pl_remote *r, const pl_remote_request *req, struct push *p, pl_response *resp)
{
    if (gate(r, req, "POST", 1, resp))
        return -1;
    if (!header_is(req->content_type, "application/x-pyloot-samples") ||
        !header_is(req->content_encoding, "gzip")) {
        pl_http_error(resp, 415, "send Content-Type: application/x-pyloot-samples with Content-Encoding: gzip");
        return -1;
    }
    if (req->http->body_len > PL_INGEST_MAX_BODY) {
        pl_http_error(resp, 413, "the compressed body must be at most %u MiB", PL_INGEST_MAX_BODY >> 20);
        return -1;
    }
    int rc = pl_gunzip(req->http->body, req->http->body_len, PL_INGEST_MAX_MESSAGE, &p->plain);
    if (rc == PL_ETOOBIG) {
        pl_http_error(resp, 413, "the message must be at most %u MiB once decompressed", PL_INGEST_MAX_MESSAGE >> 20);
        return -1;
    }
    if (rc) {
        pl_http_error(resp, rc == ENOMEM ? 503 : 400, "the body is not valid gzip data%s", rc == ENOMEM ? " (out of memory)" : "");
        return -1;
    }
    p->now = pl_now_ms();
    rc = pl_ingest_decode(p->plain.data, p->plain.len, p->now, &p->m, p->why, sizeof p->why);
    if (rc) {
        pl_http_error(resp, rc == ENOMEM ? 503 : 400, "malformed sample message: %s", p->why);
        return -1;
    }
    return 0;
}

/* Phase 2, check, before anything is stored: the bounds of what the push
 * announces, and that every id its samples use is announced or known.
 * 0, or -1 with the answer in resp (413/429 with the bound, 409 to
 * announce again). */
static int push_check(pl_remote *r, struct push *p, pl_response *resp)
{
    const pl_ingest_msg *m = &p->m;
    if (m->n_types > r->opt.types_per_push) {
        snprintf(p->why, sizeof p->why, "a push may announce at most %u type names (this one: %zu)",
                 r->opt.types_per_push, m->n_types);
        refuse(resp, "types_per_push", p->why);
        return -1;
    }
    size_t n = m->n_types;
    struct id_pair *raw = calloc(n ? n : 1, sizeof *raw);
    if (!raw) {
        pl_http_error(resp, 503, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        raw[i] = (struct id_pair){m->types[i].local_id, (uint32_t)i}; /* store = index into m.types for now */
    int rc = map_merge(NULL, 0, raw, n, &p->ann, &p->n_ann);
    free(raw);
    if (rc) {
        pl_http_error(resp, 503, "out of memory");
        return -1;
    }
    uint32_t missing = 0;
    pthread_mutex_lock(&r->lock);
    struct worker *known = *find_worker(r, m->host, m->pid, m->start);
    int ok = (known || (m->flags & PL_INGEST_NEW_SPACE)) && ids_known(m, p->ann, p->n_ann, known, &missing);
    const char *bound = NULL;
    if (ok) {
        /* Before the names are stored, what they add is known only in part
         * (a new space may repeat names under new ids): at least the growth
         * of the map. The exact count is checked once they have store ids. */
        int fresh = (m->flags & PL_INGEST_NEW_SPACE) != 0;
        size_t after = map_size_after(known, p->ann, p->n_ann, fresh);
        struct charge least = {!known ? p->n_ann : after > known->n_ids ? after - known->n_ids : 0, 0};
        for (size_t i = 0; !known && i < p->n_ann; i++)
            least.bytes += m->types[p->ann[i].store].len;
        bound = map_check(r, known, least, after, p->now, p->why, sizeof p->why);
    }
    pthread_mutex_unlock(&r->lock);
    if (bound) {
        refuse(resp, bound, p->why);
        return -1;
    }
    if (!ok) {
        if (!known && !(m->flags & PL_INGEST_NEW_SPACE))
            snprintf(p->why, sizeof p->why,
                     "this server has no type ids of %s pid %u (it restarted): announce every name again", m->host,
                     m->pid);
        else
            snprintf(p->why, sizeof p->why, "type id %u was never announced by %s pid %u", missing, m->host, m->pid);
        reannounce(resp, p->why);
        return -1;
    }
    return 0;
}

/* Phase 3, names: stores the announced names (p->ann's store ids become
 * the store's; lens[i] the bytes of each). 0, or -1 with the answer. */
static int push_names(pl_remote *r, struct push *p, size_t *lens, pl_response *resp)
{
    const char **names = calloc(p->n_ann ? p->n_ann : 1, sizeof *names);
    uint32_t *ids = calloc(p->n_ann ? p->n_ann : 1, sizeof *ids);
    int rc = names && ids ? 0 : ENOMEM, ret = -1;

    if (rc) {
        pl_http_error(resp, 503, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < p->n_ann; i++) {
        names[i] = p->m.types[p->ann[i].store].name;
        lens[i] = p->m.types[p->ann[i].store].len;
    }
    if (p->n_ann && (rc = pl_store_type_ids(r->opt.store, names, lens, p->n_ann, ids))) {
        pl_http_error(resp, store_status(rc), "storing the type names failed: %s", pl_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < p->n_ann; i++)
        p->ann[i].store = ids[i];
    ret = 0;
out:
    free(ids);
    free(names);
    return ret;
}

/* Phase 4, map, under r->lock: checks the bounds again with the map as it
 * is now (a concurrent push of the same incarnation, or of others, may have
 * grown them), installs the incarnation's map with the new names and
 * translates every entry into p->counts. 0, or -1 with the answer. */
static int push_map(pl_remote *r, struct push *p, const size_t *lens, pl_response *resp)
{
    const pl_ingest_msg *m = &p->m;
    int fresh = (m->flags & PL_INGEST_NEW_SPACE) != 0;
    struct id_pair *merged = NULL;
    size_t n_merged = 0;
    struct charge added;
    int rc;

    p->counts = malloc((m->n_entries ? m->n_entries : 1) * sizeof *p->counts);
    if (!p->counts) {
        pl_http_error(resp, 503, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&r->lock);
    struct worker **pp = find_worker(r, m->host, m->pid, m->start), *w = *pp;
    if (p->now >= r->next_sweep_ms || r->n_workers >= MAX_WORKERS) {
        sweep_idle(r, p->now, w);
        pp = find_worker(r, m->host, m->pid, m->start);
    }
    int oom = names_added(w, p->ann, lens, p->n_ann, &added);
    const char *late =
        oom ? NULL : map_check(r, w, added, map_size_after(w, p->ann, p->n_ann, fresh), p->now, p->why, sizeof p->why);
    if (oom || late) {
        pthread_mutex_unlock(&r->lock);
        if (oom)
            pl_http_error(resp, 503, "out of memory");
        else
            refuse(resp, late, p->why);
        return -1;
    }
    if (!w) {
        if (r->n_workers >= MAX_WORKERS)
            drop_workers(r);
        pp = find_worker(r, m->host, m->pid, m->start);
        w = calloc(1, sizeof *w);
        if (w) {
            memcpy(w->host, m->host, sizeof w->host);
            w->pid = m->pid;
            w->start = m->start;
            *pp = w;
            r->n_workers++;
            r->map_bytes += worker_bytes(w, 0);
        }
    }
    rc = w ? 0 : ENOMEM;
    if (w) {
        /* Most pushes announce nothing: the map stays as it is. */
        if (fresh || p->n_ann || !w->ids)
            rc = map_merge(fresh ? NULL : w->ids, fresh ? 0 : w->n_ids, p->ann, p->n_ann, &merged, &n_merged);
        if (!rc && merged) {
            r->map_bytes = r->map_bytes - worker_bytes(w, w->n_ids) + worker_bytes(w, n_merged);
            free(w->ids);
            w->ids = merged;
            w->n_ids = n_merged;
            merged = NULL;
        }
        if (!rc) {
            w->announced += added.names;
            w->name_bytes += added.bytes;
            w->last_ms = p->now;
            w->interval_ms = m->interval_ms;
        }
    }
    for (size_t i = 0; !rc && i < m->n_entries; i++) {
        const struct id_pair *pair = map_find(w->ids, w->n_ids, m->entries[i].local_id);
        if (!pair) {
            rc = PL_ENOTFOUND; /* a concurrent new space took it away */
            break;
        }
        p->counts[i] = (pl_type_count){pair->store, m->entries[i].count, m->entries[i].bytes};
    }
    pthread_mutex_unlock(&r->lock);
    free(merged);
    if (rc == PL_ENOTFOUND)
        reannounce(resp, "the type-id space changed while this message was read: announce again");
    else if (rc)
        pl_http_error(resp, 503, "out of memory");
    return rc ? -1 : 0;
}

/* Phase 5: each sample's entries in store-id order, no type twice. 0, or
 * -1 with a 400. */
static int push_sort(struct push *p, pl_response *resp)
{
    for (size_t i = 0; i < p->m.n_samples; i++) {
        /* Store ids usually follow the worker's ids: then already sorted. */
        if (pl_type_counts_sort(p->counts + p->m.samples[i].first, p->m.samples[i].n)) {
            pl_http_error(resp, 400, "two type ids of the sample at %" PRId64 " name the same type", p->m.samples[i].time_ms);
            return -1;
        }
    }
    return 0;
}

/* See http_int.h: POST /api/samples, decode -> check -> names -> map ->
 * sort -> store. The incarnation's heartbeat, its samples and its end are
 * queued (or stored now) as one item: stored whole or not at all. */
int pl_central_samples(pl_remote *r, const pl_remote_request *req, pl_response *resp, uint64_t *ticket_header,
                       pl_remote_wait *wait)
{
    struct push p;
    struct ingest_job *job = NULL;
    size_t *lens = NULL;
    int ret = PL_REMOTE_DONE;

    memset(&p, 0, sizeof p);
    if (push_decode(r, req, &p, resp) || push_check(r, &p, resp))
        goto done;
    lens = calloc(p.n_ann ? p.n_ann : 1, sizeof *lens);
    if (!lens) {
        pl_http_error(resp, 503, "out of memory");
        goto done;
    }
    if (push_names(r, &p, lens, resp) || push_map(r, &p, lens, resp) || push_sort(&p, resp))
        goto done;
    job = job_new(&p.m, p.now);
    if (!job) {
        pl_http_error(resp, 503, "out of memory");
        goto done;
    }
    job->counts = p.counts;
    p.counts = NULL;
    for (size_t i = 0; i < p.m.n_samples; i++)
        job->samples[i] = (pl_store_sample){p.m.samples[i].time_ms, job->counts + p.m.samples[i].first, p.m.samples[i].n};
    if (r->committer) {
        if (pl_committer_submit(r->committer, &job->job, &wait->ticket)) {
            pl_http_error(resp, 503, "the pyloot server is stopping");
            goto done;
        }
        wait->kind = PL_WAIT_COMMIT;
        wait->job = &job->job;
        wait->deadline_ms = INT64_MAX; /* a push waits for its commit, however long the disk takes */
        job = NULL;
        ret = PL_REMOTE_WAIT;
        goto done;
    }
    pl_store_append_batch(r->opt.store, &job->job.item, 1);
    job->job.rc = job->job.item.rc;
    finish_samples(r, job, resp);
    job = NULL;
done:
    if (job)
        job_release(&job->job);
    free(lens);
    push_free(&p);
    return ret;
}

/* ---- GET /api/remote/poll ---- */

/* Reads host= (1..63 bytes without control characters) into host. 1 found,
 * 0 absent, -1 with a 400 filled. */
static int host_param(const pl_request *req, char *host, pl_response *resp)
{
    pl_buf tmp = PL_BUF_INIT;
    int rc = pl_http_param(req->query, "host", &tmp), ret = rc > 0;
    if (rc < 0 || (rc > 0 && (tmp.len == 0 || tmp.len > PL_INGEST_HOST_MAX))) {
        pl_http_error(resp, 400, "parameter host must be 1 to %u bytes", PL_INGEST_HOST_MAX);
        ret = -1;
    }
    for (size_t i = 0; ret > 0 && i < tmp.len; i++)
        if ((unsigned char)tmp.data[i] < 0x20 || tmp.data[i] == 0x7f) {
            pl_http_error(resp, 400, "parameter host contains a control character");
            ret = -1;
        }
    if (ret > 0)
        memcpy(host, tmp.data, tmp.len + 1);
    else
        host[0] = '\0';
    pl_buf_free(&tmp);
    return ret;
}

static int try_take(pl_remote *r, pl_remote_wait *w, int64_t now, pl_response *resp, uint64_t *ticket_header)
{
    uint64_t ticket = 0;
    pl_buf_reset(&resp->body);
    int rc = pl_store_mailbox_take(r->opt.store, &w->inc, now, r->opt.live_timeout_ms, &ticket, &resp->body);
    if (rc == 0) {
        resp->status = 200;
        resp->content_type = "application/x-pyloot-query";
        resp->cache_control = "no-store";
        *ticket_header = ticket;
        return PL_REMOTE_DONE;
    }
    if (rc != PL_ENOTFOUND) {
        pl_http_error(resp, 503, "reading the mailbox failed: %s", pl_strerror(rc));
        return PL_REMOTE_DONE;
    }
    if (now >= w->deadline_ms) {
        pl_buf_reset(&resp->body);
        resp->status = 204;
        resp->cache_control = "no-store";
        return PL_REMOTE_DONE;
    }
    return PL_REMOTE_WAIT;
}

/* See http_int.h: GET /api/remote/poll. */
int pl_central_poll(pl_remote *r, const pl_remote_request *req, pl_response *resp, uint64_t *ticket_header,
                    pl_remote_wait *w)
{
    char host[PL_INGEST_HOST_MAX + 1];
    uint64_t pid = 0, start = 0;
    if (gate(r, req, "GET", 1, resp) || refuse_without_token(r, resp))
        return PL_REMOTE_DONE;
    int has = host_param(req->http, host, resp);
    if (has < 0)
        return PL_REMOTE_DONE;
    if (!has) {
        pl_http_error(resp, 400, "parameter host is required");
        return PL_REMOTE_DONE;
    }
    if (pl_http_param_uint(req->http->query, "pid", 1, UINT32_MAX, 0, &pid, resp) ||
        pl_http_param_uint(req->http->query, "start", 0, 999999999999999999ull, UINT64_MAX, &start, resp))
        return PL_REMOTE_DONE;
    if (!pid || start == UINT64_MAX) {
        pl_http_error(resp, 400, "parameters pid and start are required");
        return PL_REMOTE_DONE;
    }
    memset(w, 0, sizeof *w);
    w->kind = PL_WAIT_QUERY;
    int rc = pl_store_remote_find(r->opt.store, host, (uint32_t)pid, start, &w->inc);
    if (rc == PL_ENOTFOUND) {
        pl_http_error(resp, 404, "no pushing incarnation %s pid %" PRIu64 " start %" PRIu64 " in this store", host, pid, start);
        return PL_REMOTE_DONE;
    }
    if (rc) {
        pl_http_error(resp, 503, "reading the store failed: %s", pl_strerror(rc));
        return PL_REMOTE_DONE;
    }
    int64_t now = pl_now_ms();
    w->deadline_ms = now + r->opt.poll_ms;
    return try_take(r, w, now, resp, ticket_header);
}

/* ---- POST /api/remote/reply ---- */

/* Reads ticket= (decimal, 1 to 2^64 - 1: tickets are 64 random bits) into
 * *ticket; absent leaves 0. Returns 0, or -1 with a 400 filled. */
static int ticket_param(const pl_request *req, uint64_t *ticket, pl_response *resp)
{
    pl_buf tmp = PL_BUF_INIT;
    int rc = pl_http_param(req->query, "ticket", &tmp), ret = 0;
    uint64_t v = 0;
    *ticket = 0;
    if (rc > 0) {
        ret = tmp.len == 0 || tmp.len > 20 ? -1 : 0;
        for (size_t i = 0; !ret && i < tmp.len; i++) {
            unsigned d = (unsigned)(tmp.data[i] - '0');
            if (d > 9 || v > (UINT64_MAX - d) / 10)
                ret = -1;
            else
                v = v * 10 + d;
        }
        if (!ret && v == 0)
            ret = -1;
    }
    if (rc < 0 || ret) {
        pl_http_error(resp, 400, "parameter ticket must be an integer from 1 to %" PRIu64, UINT64_MAX);
        ret = -1;
    } else {
        *ticket = v;
    }
    pl_buf_free(&tmp);
    return ret;
}

/* See http_int.h: POST /api/remote/reply. */
int pl_central_reply(pl_remote *r, const pl_remote_request *req, pl_response *resp, uint64_t *ticket_header,
                     pl_remote_wait *w)
{
    pl_buf plain = PL_BUF_INIT;
    uint64_t ticket = 0, status = 0;
    if (gate(r, req, "POST", 1, resp) || refuse_without_token(r, resp))
        goto done;
    if (ticket_param(req->http, &ticket, resp))
        goto done;
    const char *sh = req->pyloot_status;
    if (!ticket || !sh || strlen(sh) != 3 || sh[0] < '1' || sh[0] > '5' || sh[1] < '0' || sh[1] > '9' ||
        sh[2] < '0' || sh[2] > '9') {
        pl_http_error(resp, 400, "parameter ticket and header X-Pyloot-Status (100 to 599) are required");
        goto done;
    }
    status = (uint64_t)((sh[0] - '0') * 100 + (sh[1] - '0') * 10 + (sh[2] - '0'));
    const void *body = req->http->body;
    size_t len = req->http->body_len;
    if (req->content_encoding && !header_is(req->content_encoding, "identity")) {
        if (!header_is(req->content_encoding, "gzip")) {
            pl_http_error(resp, 415, "a reply may only be gzip-encoded");
            goto done;
        }
        int rc = pl_gunzip(body, len, PL_REMOTE_REPLY_MAX, &plain);
        if (rc) {
            pl_http_error(resp, rc == PL_ETOOBIG ? 413 : 400, rc == PL_ETOOBIG ? "the reply must be at most 16 MiB" :
                                                                       "the body is not valid gzip data");
            goto done;
        }
        body = plain.data;
        len = plain.len;
    }
    if (len > PL_REMOTE_REPLY_MAX) {
        pl_http_error(resp, 413, "the reply must be at most 16 MiB");
        goto done;
    }
    int rc = pl_store_mailbox_reply(r->opt.store, ticket, (int)status, body ? body : "", len, pl_now_ms());
    if (rc == PL_ENOTFOUND) {
        pl_http_error(resp, 404, "ticket %" PRIu64 " was withdrawn (the asker gave up) or never existed", ticket);
        goto done;
    }
    if (rc) {
        pl_http_error(resp, 503, "storing the reply failed: %s", pl_strerror(rc));
        goto done;
    }
    if (r->opt.notify)
        r->opt.notify(r->opt.notify_ctx, NULL);
    pl_http_json(resp, 200);
    pl_buf_puts(&resp->body, "{}");
done:
    pl_buf_free(&plain);
    return PL_REMOTE_DONE;
}

/* ---- /api/objects..., /api/retainers, /api/suspects, /api/heapdump: forwarded to the worker ---- */

/* See http_int.h: the live-object routes, forwarded to the worker that holds
 * the objects; PL_REMOTE_PASS on a --read-only server (the handler answers
 * that it holds no live objects). */
int pl_central_objects(pl_remote *r, const pl_remote_request *req, pl_response *resp, uint64_t *ticket_header,
                       pl_remote_wait *w)
{
    pl_live_query q;
    uint64_t pid = 0;
    char host[PL_PARAM_HOST_MAX + 1];
    pl_http_live_wait lw;

    if (r->opt.read_only)
        return PL_REMOTE_PASS;
    if (gate(r, req, "GET", 0, resp) || pl_http_live_query(req->http, req->http->path, &q, &pid, host, resp))
        return PL_REMOTE_DONE;
    if (!pid) {
        pl_http_error(resp, 400, "parameter pid is required: this server holds no objects of its own (workers are in /api/procs)");
        return PL_REMOTE_DONE;
    }
    /* A local worker of this store answers through the store itself, which
     * no HTTP client can write: only pushing workers need the token. */
    if (pl_http_live_find(r->opt.store, (uint32_t)pid, host[0] ? host : NULL, &lw, resp) ||
        (lw.remote && refuse_without_token(r, resp)) || pl_http_live_post(r->opt.store, &q, &lw, resp))
        return PL_REMOTE_DONE;
    memset(w, 0, sizeof *w);
    w->kind = PL_WAIT_ANSWER;
    w->inc = lw.inc;
    w->ticket = lw.ticket;
    memcpy(w->who, lw.who, sizeof lw.who);
    w->download = q.kind == PL_LIVE_HEAPDUMP;
    if (r->opt.notify)
        r->opt.notify(r->opt.notify_ctx, &w->inc);
    w->deadline_ms = pl_now_ms() + r->opt.live_timeout_ms;
    return PL_REMOTE_WAIT;
}

static int try_result(pl_remote *r, pl_remote_wait *w, int64_t now, pl_response *resp)
{
    pl_http_live_wait lw;
    memset(&lw, 0, sizeof lw);
    lw.inc = w->inc;
    lw.ticket = w->ticket;
    lw.deadline_ms = w->deadline_ms;
    memcpy(lw.who, w->who, sizeof lw.who);
    if (!pl_http_live_result(r->opt.store, &lw, now, r->opt.live_timeout_ms, resp))
        return PL_REMOTE_WAIT;
    if (w->download)
        pl_http_heapdump_download(resp);
    return PL_REMOTE_DONE;
}

/* ---- entry points ---- */

int pl_remote_handle(pl_remote *r, const pl_remote_request *req, pl_response *resp, uint64_t *ticket_header,
                     pl_remote_wait *w)
{
    /* The one route table says which routes the central server answers
     * itself (http/handler.c); the others are the handler's. */
    pl_http_central_fn fn = pl_http_route_central(req->http->path);
    *ticket_header = 0;
    memset(w, 0, sizeof *w);
    if (!fn)
        return PL_REMOTE_PASS;
    memset(resp, 0, sizeof *resp);
    return fn(r, req, resp, ticket_header, w);
}

int pl_remote_continue(pl_remote *r, pl_remote_wait *w, int64_t now_ms, pl_response *resp, uint64_t *ticket_header)
{
    *ticket_header = 0;
    if (w->kind == PL_WAIT_COMMIT) {
        if (!pl_committer_collect(r->committer, w->job, 0))
            return PL_REMOTE_WAIT;
        finish_samples(r, (struct ingest_job *)w->job, resp);
        w->job = NULL;
        return PL_REMOTE_DONE;
    }
    if (w->kind == PL_WAIT_QUERY)
        return try_take(r, w, now_ms, resp, ticket_header);
    return try_result(r, w, now_ms, resp);
}

void pl_remote_finish(pl_remote *r, pl_remote_wait *w, pl_response *resp)
{
    if (w->kind == PL_WAIT_COMMIT && w->job) {
        pl_committer_collect(r->committer, w->job, 1);
        finish_samples(r, (struct ingest_job *)w->job, resp);
        w->job = NULL;
        return;
    }
    pl_remote_abandon(r, w);
    pl_http_error(resp, 503, "the pyloot server is stopping");
}

void pl_remote_abandon(pl_remote *r, const pl_remote_wait *w)
{
    if (w->kind == PL_WAIT_COMMIT && w->job)
        pl_committer_abandon(r->committer, w->job);
    if (w->kind == PL_WAIT_ANSWER)
        pl_store_mailbox_cancel(r->opt.store, w->ticket);
}
