/* libFuzzer target for the HTTP request handler (src/core/handler.c).
 *
 * Built only with -DPYLOOT_FUZZ=ON (clang); not part of ctest. CI runs it
 * for 30 s (tools/bootstrap.sh, run_fuzz); `bench/fuzz.sh handler` for long.
 * Both use the corpus under tests/fuzz/corpus/handler/ and the dictionary
 * tests/fuzz/handler.dict.
 *
 * Input: one flags byte, then the fields method, path, query,
 * Accept-Encoding, Authorization, Cookie and body separated by '\n' (the
 * body is the rest and may hold anything; an empty Authorization or Cookie
 * field is an absent header). Flags:
 *   bit 0  the handler of a worker (live routes answered by a stub, forwarding
 *          to another incarnation through the mailbox) instead of the CLI's
 *          (live routes answer 501)
 *   bit 1  query is NULL (no '?' in the URL) instead of the field
 *   bit 2  Accept-Encoding is NULL instead of the field
 *   bit 3  wsgi.multiprocess, with a handler that refuses it (InMemoryBackend)
 *   bit 4  gzip disabled
 *   bit 5  the peer is 127.0.0.1 (else unknown, so not loopback): without a
 *          token, the access rule lets only such a request reach the live
 *          routes (/api/objects..., /api/suspects, /api/retainers, /api/tasks)
 *   bit 6  the request came through a proxy (X-Forwarded-For and the like)
 *   bit 7  the handler has the token "fuzz-token" (PyLoot(token=))
 * Every field is copied into a buffer of its exact size, so that AddressSanitizer
 * sees a read past its end.
 *
 * The store: a temporary directory created once, with two incarnations (this
 * process and pid 1, which is alive, so `pid=1` is forwarded) and a few
 * samples of three types (requests by route with this process's); then
 * reopened read-only, as the CLI opens one.
 * Removed at exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/handler.h"
#include "pyloot/json.h"
#include "pyloot/store.h"

static char dir[64];
static pl_store *store;
static pl_handler *handlers[256]; /* one per flag combination of bits 0, 3, 4, 7 */

static void die(const char *what, int rc)
{
    fprintf(stderr, "fuzz_handler: %s failed: %s\n", what, pl_strerror(rc));
    abort();
}

/* The start time of pid 1 (field 22 of /proc/1/stat), or 0 if unknown. */
static uint64_t start_of_pid1(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/1/stat", "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long start = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                     &start) != 1)
        return 0;
    return start;
}

static void remove_store(void)
{
    pl_store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_handler: could not remove %s\n", dir);
}

static void fill_store(void)
{
    pl_store *w = NULL;
    pl_store_options opt;
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.map_size = 16u << 20;
    int rc = pl_store_open(&w, &opt);
    if (rc)
        die("creating the store", rc);
    pl_proc_info info;
    memset(&info, 0, sizeof info);
    if ((rc = pl_proc_self(&info.inc)) != 0)
        die("pl_proc_self", rc);
    info.interval_ms = 1000;
    info.first_seen_ms = info.last_seen_ms = pl_now_ms();
    pl_proc_describe(&info);
    pl_proc_info other = info;
    other.inc.pid = 1;
    other.inc.start = start_of_pid1();
    if ((rc = pl_store_register(w, &info)) != 0 || (rc = pl_store_register(w, &other)) != 0)
        die("registering", rc);
    const char *names[] = {"app.Leak", "dict", "app.Other#2"};
    size_t lens[] = {8, 4, 11};
    uint32_t ids[3];
    if ((rc = pl_store_type_ids(w, names, lens, 3, ids)) != 0)
        die("naming types", rc);
    int64_t t0 = pl_now_ms() - 5000;
    for (int i = 0; i < 5; i++) {
        pl_type_count counts[] = {{ids[0], 10u * (i + 1), 480u * (i + 1)}, {ids[1], 500, 90000}, {ids[2], 7, 300}};
        pl_route_count routes[] = {{"GET /login/<user>", 17, (uint64_t)i * 10}, {"GET /", 5, 3}};
        pl_route_sample rs = {routes, 2};
        if ((rc = pl_store_append_routes(w, &info.inc, t0 + i * 1000, counts, 3, NULL, &rs)) != 0 ||
            (rc = pl_store_append(w, &other.inc, t0 + i * 1000 + 7, counts, 2)) != 0)
            die("appending", rc);
    }
    pl_store_close(w);
}

static int stub_live(void *ctx, const pl_live_query *q, pl_buf *body, int *status)
{
    *status = q->kind == PL_LIVE_DETAIL && q->id == 0 ? 404 : 200;
    pl_buf_puts(body, "{\"pid\":");
    pl_json_u64(body, (uint64_t)getpid());
    pl_buf_puts(body, ",\"group\":");
    pl_json_cstr(body, q->group);
    pl_buf_printf(body, ",\"kind\":%d,\"id\":%llu,\"offset\":%llu,\"limit\":%llu}", (int)q->kind,
                  (unsigned long long)q->id, (unsigned long long)q->offset, (unsigned long long)q->limit);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    strcpy(dir, "/tmp/pyloot-fuzz-handler-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    fill_store();
    pl_store_options opt;
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.read_only = 1;
    int rc = pl_store_open(&store, &opt);
    if (rc)
        die("opening the store read-only", rc);
    atexit(remove_store);
    pl_incarnation self;
    pl_proc_self(&self);
    for (unsigned f = 0; f < 256; f++) {
        if (f & 0x66)
            continue; /* bits 1, 2, 5 and 6 shape the request, not the handler */
        pl_handler_options ho;
        memset(&ho, 0, sizeof ho);
        ho.store = store;
        if (f & 1) {
            ho.live = stub_live;
            ho.self = self;
            ho.live_timeout_ms = 1; /* a forwarded query never waits long */
        }
        ho.refuse_multiprocess = (f & 8) != 0;
        ho.disable_gzip = (f & 16) != 0;
        ho.token = f & 128 ? "fuzz-token" : NULL;
        if ((rc = pl_handler_new(&handlers[f], &ho)) != 0)
            die("pl_handler_new", rc);
    }
    return 0;
}

/* The next '\n'-terminated field of [*p, end) as a NUL-terminated copy of
 * exactly its size. */
static char *field(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = (size_t)((nl ? nl : end) - *p);
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    const uint8_t *p = data + 1, *end = data + size;
    char *method = field(&p, end);
    char *path = field(&p, end);
    char *query = field(&p, end);
    char *accept = field(&p, end);
    char *authorization = field(&p, end);
    char *cookie = field(&p, end);
    size_t body_len = (size_t)(end - p);
    void *body = malloc(body_len ? body_len : 1);
    if (!body)
        abort();
    memcpy(body, p, body_len);

    pl_request req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.path = path;
    req.query = flags & 2 ? NULL : query;
    req.accept_encoding = flags & 4 ? NULL : accept;
    req.multiprocess = (flags & 8) != 0;
    req.body = body;
    req.body_len = body_len;
    req.authorization = *authorization ? authorization : NULL;
    req.cookie = *cookie ? cookie : NULL;
    req.peer = flags & 32 ? "127.0.0.1" : NULL;
    req.proxied = (flags & 64) != 0;
    req.mount = "/_pyloot";
    pl_response resp;
    int rc = pl_handler_handle(handlers[flags & 0x99], &req, &resp);
    /* The contract: a complete answer, errors as JSON objects with "error"
     * (or the live stub's own object). */
    if (rc == 0 && (resp.status < 200 || resp.status > 599 || !resp.content_type))
        abort();
    if (rc == 0 && resp.status >= 400 && !resp.content_encoding &&
        !(resp.body.len >= 9 && memcmp(resp.body.data, "{\"error\":", 9) == 0) &&
        !(resp.body.len >= 7 && memcmp(resp.body.data, "{\"pid\":", 7) == 0))
        abort();
    pl_response_free(&resp);
    free(body);
    free(cookie);
    free(authorization);
    free(accept);
    free(query);
    free(path);
    free(method);
    return 0;
}
