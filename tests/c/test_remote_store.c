/* Remote mode: the routes of src/core/remote.c without HTTP, and the store
 * side (src/core/store/remote.c and the schema-2
 * changes): pushed incarnations with colliding pids and starts stay apart,
 * are found again, live by their heartbeat age, filter by host in history,
 * take mailbox requests; a schema-1 store is migrated by a writable open,
 * read as it is by a read-only one, and a newer schema is refused. */
#include <ftw.h>
#include <pthread.h>
#include <time.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pyloot/buf.h"
#include "pyloot/gzip.h"
#include "pyloot/ingest.h"
#include "pyloot/remote.h"
#include "pyloot/store.h"
#include "test.h"
#include "test_schema.h"

static pl_store *open_at(const char *dir, int read_only, int *rc_out)
{
    pl_store_options opt;
    pl_store *s = NULL;
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.read_only = read_only;
    int rc = pl_store_open(&s, &opt);
    if (rc_out)
        *rc_out = rc;
    return s;
}

static pl_proc_info worker(const char *host, uint32_t pid, uint64_t start, uint32_t interval_ms)
{
    pl_proc_info p;
    memset(&p, 0, sizeof p);
    snprintf(p.host, sizeof p.host, "%s", host);
    snprintf(p.argv, sizeof p.argv, "gunicorn app:app");
    p.inc.pid = pid;
    p.inc.start = start;
    p.interval_ms = interval_ms;
    p.rss = 1000;
    return p;
}

static const pl_proc_info *find_proc(const pl_proc_info *procs, size_t n, const pl_incarnation *inc)
{
    for (size_t i = 0; i < n; i++)
        if (procs[i].inc.pid == inc->pid && procs[i].inc.start == inc->start)
            return &procs[i];
    return NULL;
}

static void test_colliding_hosts(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t now = pl_now_ms();
    pl_proc_info a = worker("web-1", 4242, 777, 1000), b = worker("web-2", 4242, 777, 1000);
    pl_incarnation ia, ib, again, found;
    CHECK_OK(pl_store_remote_register(s, &a, now, &ia));
    CHECK_OK(pl_store_remote_register(s, &b, now, &ib));
    CHECK(ia.start != ib.start);
    CHECK(ia.pid == 4242 && ib.pid == 4242);
    CHECK((ia.start >> 63) == 1 && (ib.start >> 63) == 1);
    CHECK_OK(pl_store_remote_register(s, &a, now + 5, &again));
    CHECK(again.start == ia.start);
    CHECK_OK(pl_store_remote_find(s, "web-2", 4242, 777, &found));
    CHECK(found.start == ib.start);
    CHECK_EQ_INT(pl_store_remote_find(s, "web-3", 4242, 777, &found), PL_ENOTFOUND);
    CHECK_EQ_INT(pl_store_remote_find(s, "web-1", 4242, 778, &found), PL_ENOTFOUND);
    pl_proc_info empty = worker("", 1, 1, 1000);
    CHECK_EQ_INT(pl_store_remote_register(s, &empty, now, &found), PL_EBADARG);

    /* Samples of each host, then the history by host and pid. */
    const char *names[] = {"app.Session"};
    size_t lens[] = {11};
    uint32_t id;
    CHECK_OK(pl_store_type_ids(s, names, lens, 1, &id));
    pl_type_count ca = {id, 10, 100}, cb = {id, 32, 320};
    CHECK_OK(pl_store_append(s, &ia, now - 10, &ca, 1));
    CHECK_OK(pl_store_append(s, &ib, now - 10, &cb, 1));
    pl_history_query q;
    memset(&q, 0, sizeof q);
    q.limit = 10;
    q.sort = PL_SORT_NAME;
    q.now_ms = now;
    pl_history *h = NULL;
    CHECK_OK(pl_store_history(s, &q, &h));
    CHECK(h && h->n_types == 1 && h->types[0].count == 42);
    pl_history_free(h);
    q.pid = 4242;
    q.host = "web-2";
    h = NULL;
    CHECK_OK(pl_store_history(s, &q, &h));
    CHECK(h && h->n_types == 1 && h->types[0].count == 32);
    pl_history_free(h);
    q.host = "web-9";
    h = NULL;
    CHECK_EQ_INT(pl_store_history(s, &q, &h), PL_ENOTFOUND);
    pl_history_free(h);

    /* /api/procs facts; then liveness by heartbeat age. */
    pl_proc_info *procs = NULL;
    size_t n = 0;
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK_EQ_INT(n, 2);
    const pl_proc_info *pa = find_proc(procs, n, &ia);
    CHECK(pa && pa->remote && pa->alive && pa->worker_start == 777 && strcmp(pa->host, "web-1") == 0);
    free(procs);

    /* A mailbox request reaches a live pushed incarnation. */
    uint64_t ticket = 0, got = 0;
    pl_buf req = PL_BUF_INIT;
    CHECK_OK(pl_store_mailbox_post(s, &ia, "q", 1, now, &ticket));
    CHECK_OK(pl_store_mailbox_take(s, &ia, now, 5000, &got, &req));
    CHECK(got == ticket && req.len == 1);
    pl_buf_free(&req);

    /* 3 intervals of 1 s are under 10 s: alive until 10 s after the last push. */
    pl_proc_info old = worker("web-3", 9, 9, 1000);
    pl_incarnation io;
    CHECK_OK(pl_store_remote_register(s, &old, now - 9000, &io));
    pl_proc_info slow = worker("web-4", 9, 9, 20000);
    pl_incarnation is;
    CHECK_OK(pl_store_remote_register(s, &slow, now - 30000, &is));
    pl_proc_info gone = worker("web-5", 9, 9, 1000);
    pl_incarnation ig;
    CHECK_OK(pl_store_remote_register(s, &gone, now - 11000, &ig));
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK(find_proc(procs, n, &io) && find_proc(procs, n, &io)->alive);
    CHECK(find_proc(procs, n, &is) && find_proc(procs, n, &is)->alive); /* 30 s < 3 x 20 s */
    CHECK(find_proc(procs, n, &ig) && !find_proc(procs, n, &ig)->alive);
    free(procs);
    CHECK_EQ_INT(pl_store_mailbox_post(s, &ig, "q", 1, now, &ticket), PL_ENOTFOUND);

    /* A clean end: dead at once, no longer found by a poll. */
    CHECK_OK(pl_store_end(s, &ia, now));
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK(find_proc(procs, n, &ia) && !find_proc(procs, n, &ia)->alive);
    free(procs);
    CHECK_EQ_INT(pl_store_remote_find(s, "web-1", 4242, 777, &found), PL_ENOTFOUND);
    pl_store_close(s);

    /* Reopened (the server restarted): the same worker gets the same incarnation. */
    s = open_at(dir, 0, NULL);
    CHECK(s != NULL);
    if (s) {
        CHECK_OK(pl_store_remote_register(s, &b, now + 10, &again));
        CHECK(again.start == ib.start);
        pl_store_close(s);
    }
    remove_dir(dir);
}

static void test_schema(void)
{
    char *dir = make_dir();
    int rc;
    pl_store *s = open_at(dir, 0, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    pl_proc_info local = worker("here", 100, 5555, 30000);
    local.first_seen_ms = 1000;
    local.last_seen_ms = 2000;
    CHECK_OK(pl_store_register(s, &local));
    pl_store_close(s);
    rewrite_schema(dir, 1, 32); /* schema 2 appended worker_start, 3 two stats, 5 the end status */

    /* Read-only: a schema-1 store is read as it is, never rewritten. */
    s = open_at(dir, 1, &rc);
    CHECK_OK(rc);
    if (s) {
        pl_store_stat st;
        pl_proc_info *procs = NULL;
        size_t n = 0;
        CHECK_OK(pl_store_stat_get(s, &st));
        CHECK_EQ_INT(st.schema, 1);
        CHECK_OK(pl_store_procs(s, &procs, &n));
        CHECK(n == 1 && procs[0].inc.start == 5555 && procs[0].first_seen_ms == 1000 && !procs[0].remote &&
              strcmp(procs[0].argv, "gunicorn app:app") == 0);
        free(procs);
        pl_store_close(s);
    }
    /* Writable: migrated to schema 3, the old record still read right and updatable. */
    s = open_at(dir, 0, &rc);
    CHECK_OK(rc);
    if (s) {
        pl_store_stat st;
        pl_proc_info *procs = NULL;
        size_t n = 0;
        CHECK_OK(pl_store_stat_get(s, &st));
        CHECK_EQ_INT(st.schema, 6);
        CHECK_OK(pl_store_end(s, &local.inc, 3000));
        CHECK_OK(pl_store_procs(s, &procs, &n));
        CHECK(n == 1 && procs[0].ended_ms == 3000 && procs[0].first_seen_ms == 1000 && procs[0].worker_start == 0);
        free(procs);
        pl_store_close(s);
    }
    /* A newer schema than this code knows is refused, read-only or not. */
    rewrite_schema(dir, 7, 0);
    s = open_at(dir, 1, &rc);
    CHECK_EQ_INT(rc, PL_ESCHEMA);
    pl_store_close(s);
    s = open_at(dir, 0, &rc);
    CHECK_EQ_INT(rc, PL_ESCHEMA);
    pl_store_close(s);
    remove_dir(dir);
}

static void uv(pl_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        pl_buf_putc(b, (char)(v | 0x80));
        v >>= 7;
    }
    pl_buf_putc(b, (char)v);
}

/* A gzip'ed message of host "h", pid 5, start 6: `announce` announces
 * local id 1 as app.Session; one sample at now using local id `id`. */
static void push_body(pl_buf *out, unsigned flags, int announce, uint32_t id)
{
    pl_buf m = PL_BUF_INIT;
    pl_buf_puts(&m, "PLS1");
    uv(&m, flags);
    uv(&m, 1), pl_buf_putc(&m, 'h');
    uv(&m, 5), uv(&m, 6), uv(&m, 1000), uv(&m, 4096);
    uv(&m, 0);
    uv(&m, announce ? 1 : 0);
    if (announce) {
        uv(&m, 1);
        uv(&m, 11);
        pl_buf_puts(&m, "app.Session");
    }
    uv(&m, 1);
    uv(&m, (uint64_t)pl_now_ms());
    uv(&m, 1), uv(&m, id), uv(&m, 3), uv(&m, 144);
    pl_buf_reset(out);
    pl_gzip(m.data, m.len, out);
    pl_buf_free(&m);
}

#define TOKEN "s3cret"

static int call(pl_remote *r, const char *method, const char *path, const char *query, const pl_buf *body,
                const char *ctype, const char *status_hdr, pl_response *resp, uint64_t *ticket,
                pl_remote_wait *w)
{
    /* A local peer through no proxy, with the token of the servers that
     * have one (TOKEN): the access rule lets every route through, the
     * object queries included (a server without a token forwards none to a
     * pushing worker: test_remote_live.c). */
    pl_request http = {.method = method, .path = path, .query = query,
                       .body = body ? body->data : NULL, .body_len = body ? body->len : 0,
                       .peer = "127.0.0.1"};
    pl_remote_request rr = {&http, "Bearer " TOKEN, ctype, ctype ? "gzip" : NULL, status_hdr};
    return pl_remote_handle(r, &rr, resp, ticket, w);
}

static size_t n_procs(pl_store *s)
{
    pl_proc_info *procs = NULL;
    size_t n = 0;
    pl_store_procs(s, &procs, &n);
    free(procs);
    return n;
}

/* A push of pid `pid` (interval 1 ms) announcing local ids first..first+n-1
 * as "<prefix>.T<name_first + i>", with one sample counting the first;
 * `flags` as sent. */
static void names_body_as(pl_buf *out, unsigned flags, uint32_t pid, uint32_t first, uint32_t n, const char *prefix,
                          uint32_t name_first)
{
    pl_buf m = PL_BUF_INIT;
    char name[64];
    pl_buf_puts(&m, "PLS1");
    uv(&m, flags);
    uv(&m, 1), pl_buf_putc(&m, 'h');
    uv(&m, pid), uv(&m, 6), uv(&m, 1), uv(&m, 4096);
    uv(&m, 0);
    uv(&m, n);
    for (uint32_t i = 0; i < n; i++) {
        int len = snprintf(name, sizeof name, "%s.T%u", prefix, name_first + i);
        uv(&m, first + i);
        uv(&m, (uint64_t)len);
        pl_buf_append(&m, name, (size_t)len);
    }
    uv(&m, 1);
    uv(&m, (uint64_t)pl_now_ms());
    uv(&m, 1), uv(&m, first), uv(&m, 3), uv(&m, 144);
    pl_buf_reset(out);
    pl_gzip(m.data, m.len, out);
    pl_buf_free(&m);
}

static void names_body(pl_buf *out, unsigned flags, uint32_t pid, uint32_t first, uint32_t n, const char *prefix)
{
    names_body_as(out, flags, pid, first, n, prefix, first);
}

/* Posts body; returns the status, and checks that a refusal names `bound`. */
static int push_status(pl_remote *r, const pl_buf *body, const char *bound)
{
    pl_response resp;
    pl_remote_wait w;
    uint64_t ticket;
    call(r, "POST", "/api/samples", NULL, body, "application/x-pyloot-samples", NULL, &resp, &ticket, &w);
    int status = resp.status;
    if (bound) {
        char want[80];
        snprintf(want, sizeof want, "\"bound\":\"%s\"", bound);
        CHECK(resp.body.data && strstr(resp.body.data, want));
    }
    pl_response_free(&resp);
    return status;
}

/* The bounds of the id maps and of the names a push or an incarnation may
 * announce (docs/http-api.md, "POST /api/samples"): each refused with 413
 * (429 for the total) naming its bound, nothing stored; a map freed when
 * its worker ends or stops pushing. */
static void test_map_bounds(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, NULL);
    pl_remote *r = NULL, *r2 = NULL;
    pl_remote_options opt;
    pl_buf body = PL_BUF_INIT;
    memset(&opt, 0, sizeof opt);
    opt.store = s;
    opt.types_per_push = 8;
    opt.types_per_worker = 20;
    CHECK(s != NULL);
    CHECK_OK(pl_remote_new(&r, &opt));
    if (!s || !r)
        return;

    /* Per push: 9 names is one too many, and nothing is stored. */
    names_body(&body, PL_INGEST_NEW_SPACE, 7, 1, 9, "flood");
    CHECK_EQ_INT(push_status(r, &body, "types_per_push"), 413);
    CHECK_EQ_INT(n_procs(s), 0);
    CHECK_EQ_INT(pl_remote_known(r), 0);
    /* Per incarnation: 8 + 8 names, then 8 more is past 20. */
    names_body(&body, PL_INGEST_NEW_SPACE, 7, 1, 8, "a");
    CHECK_EQ_INT(push_status(r, &body, NULL), 200);
    size_t one_map = pl_remote_map_bytes(r);
    CHECK(one_map > 8 * 8);
    names_body(&body, 0, 7, 9, 8, "a");
    CHECK_EQ_INT(push_status(r, &body, NULL), 200);
    names_body(&body, 0, 7, 17, 8, "a");
    CHECK_EQ_INT(push_status(r, &body, "types_per_worker"), 413);
    /* New spaces that repeat the same names cost nothing... */
    for (int i = 0; i < 4; i++) {
        names_body(&body, PL_INGEST_NEW_SPACE, 8, 1, 8, "b");
        CHECK_EQ_INT(push_status(r, &body, NULL), 200);
    }
    /* The same names under ever new local ids grow the map, not the names:
     * the map is bounded all the same. */
    names_body_as(&body, 0, 8, 100, 8, "b", 1);
    CHECK_EQ_INT(push_status(r, &body, NULL), 200);
    names_body_as(&body, 0, 8, 200, 8, "b", 1);
    CHECK_EQ_INT(push_status(r, &body, "types_per_worker"), 413);
    /* ... but new spaces of new names count: 8 + 8, then 8 more is past 20. */
    names_body(&body, PL_INGEST_NEW_SPACE, 9, 1, 8, "c1");
    CHECK_EQ_INT(push_status(r, &body, NULL), 200);
    names_body(&body, PL_INGEST_NEW_SPACE, 9, 1, 8, "c2");
    CHECK_EQ_INT(push_status(r, &body, NULL), 200);
    names_body(&body, PL_INGEST_NEW_SPACE, 9, 1, 8, "c3");
    CHECK_EQ_INT(push_status(r, &body, "types_per_worker"), 413);
    CHECK_EQ_INT(pl_remote_known(r), 3);

    /* Name bytes per incarnation: 8 names of 4 bytes fit in 40, 8 more do not. */
    memset(&opt, 0, sizeof opt);
    opt.store = s;
    opt.name_bytes_per_worker = 40;
    CHECK_OK(pl_remote_new(&r2, &opt));
    if (!r2)
        goto out;
    names_body(&body, PL_INGEST_NEW_SPACE, 10, 1, 8, "n");
    CHECK_EQ_INT(push_status(r2, &body, NULL), 200);
    names_body(&body, 0, 10, 9, 8, "n");
    CHECK_EQ_INT(push_status(r2, &body, "name_bytes_per_worker"), 413);
    pl_remote_free(r2);
    r2 = NULL;

    /* In total: room for two maps of 8 ids. */
    memset(&opt, 0, sizeof opt);
    opt.store = s;
    opt.maps_max_bytes = one_map * 2 + one_map / 2;
    opt.map_idle_ms = 60000;
    CHECK_OK(pl_remote_new(&r2, &opt));
    if (!r2)
        goto out;
    names_body(&body, PL_INGEST_NEW_SPACE, 20, 1, 8, "d");
    CHECK_EQ_INT(push_status(r2, &body, NULL), 200);
    names_body(&body, PL_INGEST_NEW_SPACE, 21, 1, 8, "d");
    CHECK_EQ_INT(push_status(r2, &body, NULL), 200);
    names_body(&body, PL_INGEST_NEW_SPACE, 22, 1, 8, "d");
    CHECK_EQ_INT(push_status(r2, &body, "id_maps_bytes"), 429);
    CHECK(pl_remote_map_bytes(r2) <= opt.maps_max_bytes);
    /* A worker that ends frees its map: the third fits. */
    names_body(&body, PL_INGEST_ENDED, 20, 1, 0, "d");
    CHECK_EQ_INT(push_status(r2, &body, NULL), 200);
    CHECK_EQ_INT(pl_remote_known(r2), 1);
    names_body(&body, PL_INGEST_NEW_SPACE, 22, 1, 8, "d");
    CHECK_EQ_INT(push_status(r2, &body, NULL), 200);
    pl_remote_free(r2);
    r2 = NULL;

    /* A worker that stops pushing (killed, or evicted by retention) loses
     * its map once it is idle: here after 1 ms (4 of its 1 ms intervals). */
    memset(&opt, 0, sizeof opt);
    opt.store = s;
    opt.maps_max_bytes = one_map * 2 + one_map / 2;
    opt.map_idle_ms = 1;
    CHECK_OK(pl_remote_new(&r2, &opt));
    if (!r2)
        goto out;
    names_body(&body, PL_INGEST_NEW_SPACE, 30, 1, 8, "e");
    CHECK_EQ_INT(push_status(r2, &body, NULL), 200);
    names_body(&body, PL_INGEST_NEW_SPACE, 31, 1, 8, "e");
    CHECK_EQ_INT(push_status(r2, &body, NULL), 200);
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    names_body(&body, PL_INGEST_NEW_SPACE, 32, 1, 8, "e");
    CHECK_EQ_INT(push_status(r2, &body, NULL), 200);
    CHECK_EQ_INT(pl_remote_known(r2), 1);
out:
    pl_remote_free(r2);
    pl_remote_free(r);
    pl_buf_free(&body);
    pl_store_close(s);
    remove_dir(dir);
}

/* The routes of remote.c without HTTP: a push, a refused push that stores
 * nothing, a poll that times out, and an object query answered through the
 * poll and the reply. */
static void test_routes(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, NULL);
    pl_remote *r = NULL;
    pl_remote_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = s;
    opt.poll_ms = 100;
    opt.token = TOKEN;
    CHECK(s != NULL);
    CHECK_OK(pl_remote_new(&r, &opt));
    if (!s || !r)
        return;
    pl_buf body = PL_BUF_INIT;
    pl_response resp;
    pl_remote_wait w;
    uint64_t ticket;
    const char *ct = "application/x-pyloot-samples";

    /* Never announced in a new space: 409, nothing stored. */
    push_body(&body, PL_INGEST_NEW_SPACE, 0, 1);
    CHECK_EQ_INT(call(r, "POST", "/api/samples", NULL, &body, ct, NULL, &resp, &ticket, &w), PL_REMOTE_DONE);
    CHECK_EQ_INT(resp.status, 409);
    CHECK(resp.body.data && strstr(resp.body.data, "\"reannounce\":true"));
    pl_response_free(&resp);
    CHECK_EQ_INT(n_procs(s), 0);
    /* Wrong content type: 415. */
    call(r, "POST", "/api/samples", NULL, &body, "application/json", NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 415);
    pl_response_free(&resp);
    /* Announced: stored. Then the same id without announcing: known now. */
    push_body(&body, PL_INGEST_NEW_SPACE, 1, 1);
    call(r, "POST", "/api/samples", NULL, &body, ct, NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 200);
    CHECK(resp.body.data && strcmp(resp.body.data, "{\"accepted\":1}") == 0);
    pl_response_free(&resp);
    push_body(&body, 0, 0, 1);
    call(r, "POST", "/api/samples", NULL, &body, ct, NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 200);
    pl_response_free(&resp);
    push_body(&body, 0, 0, 2);
    call(r, "POST", "/api/samples", NULL, &body, ct, NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 409);
    pl_response_free(&resp);
    CHECK_EQ_INT(n_procs(s), 1);
    CHECK_EQ_INT(pl_remote_known(r), 1);
    /* Not a remote-mode route. */
    CHECK_EQ_INT(call(r, "GET", "/api/history", NULL, NULL, NULL, NULL, &resp, &ticket, &w), PL_REMOTE_PASS);

    /* A poll with nothing waiting: parked, then 204 at its deadline. */
    CHECK_EQ_INT(call(r, "GET", "/api/remote/poll", "host=h&pid=5&start=6", NULL, NULL, NULL, &resp, &ticket, &w),
                 PL_REMOTE_WAIT);
    pl_response_free(&resp);
    CHECK_EQ_INT(pl_remote_continue(r, &w, w.deadline_ms, &resp, &ticket), PL_REMOTE_DONE);
    CHECK_EQ_INT(resp.status, 204);
    pl_response_free(&resp);
    call(r, "GET", "/api/remote/poll", "host=h&pid=5&start=7", NULL, NULL, NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 404);
    pl_response_free(&resp);

    /* An object query: parked until the worker polls and replies. */
    pl_remote_wait asker, poller;
    CHECK_EQ_INT(call(r, "GET", "/api/objects/77", "pid=5", NULL, NULL, NULL, &resp, &ticket, &asker),
                 PL_REMOTE_WAIT);
    pl_response_free(&resp);
    CHECK(strstr(asker.who, "worker 5 on host h") != NULL);
    CHECK_EQ_INT(call(r, "GET", "/api/remote/poll", "host=h&pid=5&start=6", NULL, NULL, NULL, &resp, &ticket,
                      &poller), PL_REMOTE_DONE);
    CHECK_EQ_INT(resp.status, 200);
    CHECK(ticket == asker.ticket);
    CHECK(resp.body.data && strncmp(resp.body.data, "2 77 ", 5) == 0);
    pl_response_free(&resp);
    char q[32];
    snprintf(q, sizeof q, "ticket=%llu", (unsigned long long)ticket);
    pl_buf answer = PL_BUF_INIT;
    pl_buf_puts(&answer, "{\"id\":77}");
    call(r, "POST", "/api/remote/reply", q, &answer, NULL, "200", &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 200);
    pl_response_free(&resp);
    CHECK_EQ_INT(pl_remote_continue(r, &asker, pl_now_ms(), &resp, &ticket), PL_REMOTE_DONE);
    CHECK_EQ_INT(resp.status, 200);
    CHECK(resp.body.data && strcmp(resp.body.data, "{\"id\":77}") == 0);
    pl_response_free(&resp);
    /* Nobody answers: 504 naming the worker at the deadline; a late reply is a 404. */
    call(r, "GET", "/api/objects/78", "pid=5&host=h", NULL, NULL, NULL, &resp, &ticket, &asker);
    pl_response_free(&resp);
    CHECK_EQ_INT(pl_remote_continue(r, &asker, asker.deadline_ms, &resp, &ticket), PL_REMOTE_DONE);
    CHECK_EQ_INT(resp.status, 504);
    CHECK(resp.body.data && strstr(resp.body.data, "worker 5 on host h") != NULL);
    pl_response_free(&resp);
    snprintf(q, sizeof q, "ticket=%llu", (unsigned long long)asker.ticket);
    call(r, "POST", "/api/remote/reply", q, &answer, NULL, "200", &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 404);
    pl_response_free(&resp);
    call(r, "GET", "/api/objects/1", "pid=9", NULL, NULL, NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 404);
    pl_response_free(&resp);

    /* The end flag: dead at once, the map forgotten. */
    push_body(&body, PL_INGEST_ENDED, 0, 1);
    call(r, "POST", "/api/samples", NULL, &body, ct, NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 200);
    pl_response_free(&resp);
    CHECK_EQ_INT(pl_remote_known(r), 0);
    pl_buf_free(&answer);
    pl_buf_free(&body);
    pl_remote_free(r);
    pl_store_close(s);
    remove_dir(dir);
}

/* ---- pl_store_append_batch ---- */

static const pl_proc_info *find_host(const pl_proc_info *procs, size_t n, const char *host)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(procs[i].host, host) == 0)
            return &procs[i];
    return NULL;
}

/* Several incarnations (one twice) in one transaction, with bad items
 * among them: each bad item fails alone and stores nothing, the good ones
 * are all stored, a time stepping back is moved after the previous one,
 * and the end is applied after the samples. */
static void test_batch(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, NULL);
    const char *names[3] = {"app.A", "app.B", "app.C"};
    size_t lens[3] = {5, 5, 5};
    uint32_t ids[3];
    CHECK_OK(pl_store_type_ids(s, names, lens, 3, ids));
    pl_proc_info w1 = worker("web-1", 77, 5, 1000), w2 = worker("web-2", 77, 5, 1000);
    pl_proc_info bad = worker("bad-1", 78, 5, 1000), nohost = worker("", 79, 5, 1000);
    int64_t t = pl_now_ms() - 10000;
    pl_type_count a[2] = {{ids[1], 2, 20}, {ids[0], 1, 10}}; /* unsorted on purpose */
    pl_type_count b[1] = {{ids[2], 9, 90}};
    pl_type_count dup[2] = {{ids[0], 1, 1}, {ids[0], 2, 2}};
    pl_type_count unknown[1] = {{ids[2] + 100, 1, 1}};
    pl_store_sample s1[2] = {{t, a, 2}, {t + 1000, a, 2}};
    pl_store_sample s2[1] = {{t, b, 1}};
    pl_store_sample s3[1] = {{t - 5000, b, 1}}; /* before w1's last: moved after it */
    pl_store_sample s_dup[2] = {{t, a, 2}, {t + 1, dup, 2}};
    pl_store_sample s_unknown[1] = {{t, unknown, 1}};
    pl_store_sample s_neg[1] = {{-1, a, 2}};
    pl_store_batch_item items[8];
    memset(items, 0, sizeof items);
    items[0] = (pl_store_batch_item){.remote = &w1, .now_ms = t, .samples = s1, .n_samples = 2};
    items[1] = (pl_store_batch_item){.remote = &bad, .now_ms = t, .samples = s_dup, .n_samples = 2};
    items[2] = (pl_store_batch_item){.remote = &w2, .now_ms = t, .samples = s2, .n_samples = 1};
    items[3] = (pl_store_batch_item){.remote = &bad, .now_ms = t, .samples = s_unknown, .n_samples = 1};
    items[4] = (pl_store_batch_item){.remote = &w1, .now_ms = t + 2000, .samples = s3, .n_samples = 1};
    items[5] = (pl_store_batch_item){.inc = {4242, 1}, .samples = s2, .n_samples = 1}; /* never registered */
    items[6] = (pl_store_batch_item){.remote = &nohost, .now_ms = t, .samples = s2, .n_samples = 1};
    items[7] = (pl_store_batch_item){.remote = &w2, .now_ms = t + 3000, .end = 1, .samples = s_neg, .n_samples = 1};
    CHECK_OK(pl_store_append_batch(s, items, 8));
    CHECK_EQ_INT(items[0].rc, 0);
    CHECK_EQ_INT(items[1].rc, PL_EBADARG);
    CHECK_EQ_INT(items[2].rc, 0);
    CHECK_EQ_INT(items[3].rc, PL_EBADARG);
    CHECK_EQ_INT(items[4].rc, 0);
    CHECK_EQ_INT(items[5].rc, PL_ENOTFOUND);
    CHECK_EQ_INT(items[6].rc, PL_EBADARG);
    CHECK_EQ_INT(items[7].rc, PL_EBADARG);
    CHECK(items[0].inc.pid == 77 && items[0].inc.start == items[4].inc.start);
    CHECK(items[0].inc.start != items[2].inc.start);

    /* The end of w2 alone (no sample) is an item too. */
    pl_store_batch_item end = {.remote = &w2, .now_ms = t + 4000, .end = 1};
    CHECK_OK(pl_store_append_batch(s, &end, 1));
    CHECK_EQ_INT(end.rc, 0);
    CHECK(end.inc.start == items[2].inc.start);

    pl_proc_info *procs = NULL;
    size_t n = 0;
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK_EQ_INT(n, 2);
    const pl_proc_info *p1 = find_host(procs, n, "web-1"), *p2 = find_host(procs, n, "web-2");
    CHECK(p1 && p2 && !find_host(procs, n, "bad-1"));
    if (p1 && p2) {
        CHECK_EQ_INT(p1->samples, 3);
        CHECK_EQ_INT(p1->ended_ms, 0);
        CHECK_EQ_INT(p1->last_seen_ms, t + 2000);
        CHECK_EQ_INT(p2->samples, 1);
        CHECK_EQ_INT(p2->ended_ms, t + 4000);
    }
    free(procs);

    /* w1's third sample was moved 1 ms after its second. */
    pl_history_query q;
    memset(&q, 0, sizeof q);
    q.q = "app.C";
    q.pid = 77;
    q.host = "web-1";
    q.limit = 10;
    q.until_ms = t + 5000;
    q.now_ms = t + 5000;
    pl_history *h = NULL;
    CHECK_OK(pl_store_history(s, &q, &h));
    if (h) {
        CHECK_EQ_INT(h->n_types, 1);
        if (h->n_types == 1)
            CHECK_EQ_INT(h->types[0].count, 9);
        pl_history_free(h);
    }
    pl_store_close(s);
    remove_dir(dir);
}

/* Batches in a map too small for them: MDB_MAP_FULL makes room and retries
 * the whole transaction; no item fails and the newest samples are kept. */
static void test_batch_map_full(void)
{
    char *dir = make_dir();
    pl_store_options opt;
    pl_store *s = NULL;
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.map_size = 1u << 20;
    opt.max_bytes = 1u << 20;
    CHECK_OK(pl_store_open(&s, &opt));
    if (!s)
        return;
    enum { NT = 300, PER = 6, ROUNDS = 120 };
    const char *names[NT];
    char buf[NT][24];
    size_t lens[NT];
    uint32_t ids[NT];
    for (size_t k = 0; k < NT; k++) {
        snprintf(buf[k], sizeof buf[k], "m.T%zu", k);
        names[k] = buf[k];
        lens[k] = strlen(buf[k]);
    }
    CHECK_OK(pl_store_type_ids(s, names, lens, NT, ids));
    static pl_type_count c[PER][NT];
    pl_proc_info w[PER];
    pl_store_sample smp[PER];
    pl_store_batch_item items[PER];
    int64_t t = pl_now_ms() - 3600 * 1000;
    int failed = 0;
    for (size_t i = 0; i < PER; i++) {
        char host[16];
        snprintf(host, sizeof host, "full-%zu", i);
        w[i] = worker(host, 10, 1, 1000);
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < PER; i++) {
            for (size_t k = 0; k < NT; k++)
                c[i][k] = (pl_type_count){ids[k], k * 7 + (uint64_t)r + 1, ((uint64_t)k << 33) + (uint64_t)r};
            smp[i] = (pl_store_sample){t + r * 1000, c[i], NT};
            items[i] = (pl_store_batch_item){.remote = &w[i], .now_ms = t + r * 1000, .samples = &smp[i], .n_samples = 1};
        }
        int rc = pl_store_append_batch(s, items, PER);
        for (size_t i = 0; i < PER; i++)
            failed += items[i].rc != 0;
        if (rc && failed++ < 3)
            fprintf(stderr, "  batch %d: %s\n", r, pl_strerror(rc));
    }
    CHECK_EQ_INT(failed, 0);
    pl_proc_info *procs = NULL;
    size_t n = 0;
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK_EQ_INT(n, PER);
    for (size_t i = 0; i < n; i++)
        CHECK(procs[i].samples > 0 && procs[i].samples < ROUNDS); /* some were dropped to make room */
    free(procs);
    pl_store_stat st;
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK(st.used_bytes <= st.max_bytes);
    pl_store_close(s);
    remove_dir(dir);
}

/* Group commit through the routes: a push waits (PL_WAIT_COMMIT) until
 * the committer says its ticket is done, then answers 200; a push whose
 * client went away is still stored and its job freed. */
static uint64_t g_committed;
static pthread_mutex_t g_committed_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_committed(void *ctx, uint64_t upto)
{
    (void)ctx;
    pthread_mutex_lock(&g_committed_lock);
    g_committed = upto;
    pthread_mutex_unlock(&g_committed_lock);
}

static int committed_upto(uint64_t ticket)
{
    for (int i = 0; i < 2000; i++) { /* 20 s at most */
        pthread_mutex_lock(&g_committed_lock);
        int done = g_committed >= ticket;
        pthread_mutex_unlock(&g_committed_lock);
        if (done)
            return 1;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_group_commit_routes(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, NULL);
    pl_remote *r = NULL;
    pl_remote_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = s;
    opt.committed = on_committed;
    CHECK_OK(pl_remote_new(&r, &opt));
    pl_buf body = PL_BUF_INIT;
    pl_response resp;
    uint64_t ticket = 0;
    pl_remote_wait w;
    push_body(&body, PL_INGEST_NEW_SPACE, 1, 1);
    memset(&resp, 0, sizeof resp);
    int rc = call(r, "POST", "/api/samples", NULL, &body, "application/x-pyloot-samples", NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(rc, PL_REMOTE_WAIT);
    CHECK_EQ_INT(w.kind, PL_WAIT_COMMIT);
    CHECK(committed_upto(w.ticket));
    rc = pl_remote_continue(r, &w, pl_now_ms(), &resp, &ticket);
    CHECK_EQ_INT(rc, PL_REMOTE_DONE);
    CHECK_EQ_INT(resp.status, 200);
    pl_response_free(&resp);
    CHECK_EQ_INT(n_procs(s), 1);

    /* Abandoned while queued: stored anyway, the job freed by the committer
     * (ASan would report it otherwise). */
    pl_buf_reset(&body);
    push_body(&body, 0, 0, 1);
    memset(&resp, 0, sizeof resp);
    rc = call(r, "POST", "/api/samples", NULL, &body, "application/x-pyloot-samples", NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(rc, PL_REMOTE_WAIT);
    pl_remote_abandon(r, &w);
    CHECK(committed_upto(w.ticket));

    /* Bad input is answered at once and queues nothing. */
    pl_buf bad = PL_BUF_INIT;
    pl_buf_puts(&bad, "not gzip");
    memset(&resp, 0, sizeof resp);
    rc = call(r, "POST", "/api/samples", NULL, &bad, "application/x-pyloot-samples", NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(rc, PL_REMOTE_DONE);
    CHECK_EQ_INT(resp.status, 400);
    pl_response_free(&resp);
    pl_buf_free(&bad);
    pl_buf_free(&body);
    pl_remote_free(r);
    pl_store_close(s);
    remove_dir(dir);
}

int main(void)
{
    RUN(test_routes);
    RUN(test_colliding_hosts);
    RUN(test_schema);
    RUN(test_batch);
    RUN(test_batch_map_full);
    RUN(test_group_commit_routes);
    RUN(test_map_bounds);
    return TEST_EXIT();
}
