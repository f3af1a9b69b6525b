/* The HTTP handler against a real store in a temporary directory: routes,
 * parameter validation, gzip, and live-object forwarding between processes. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyloot/handler.h"
#include "pyloot/json.h"
#include "pyloot/metrics.h"
#include "pyloot/store.h"
#include "test.h"

static char dir[64];
static pl_store *store;
static pl_incarnation self;

static void setup(void)
{
    strcpy(dir, "/tmp/pyloot-test-handler-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    pl_store_options opt;
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.map_size = 64u << 20;
    CHECK_OK(pl_store_open(&store, &opt));
    CHECK_OK(pl_proc_self(&self));
    pl_proc_info info;
    memset(&info, 0, sizeof info);
    info.inc = self;
    info.interval_ms = 1000;
    info.first_seen_ms = info.last_seen_ms = pl_now_ms();
    pl_proc_describe(&info);
    CHECK_OK(pl_store_register(store, &info));
    const char *names[] = {"app.Leak", "dict", "app.Other"};
    size_t lens[] = {8, 4, 9};
    uint32_t ids[3];
    CHECK_OK(pl_store_type_ids(store, names, lens, 3, ids));
    int64_t t0 = pl_now_ms() - 5000;
    for (int i = 0; i < 5; i++) {
        pl_type_count counts[] = {{ids[0], 10u * (i + 1), 480u * (i + 1)}, {ids[1], 500, 90000}, {ids[2], 7, 300}};
        CHECK_OK(pl_store_append(store, &self, t0 + i * 1000, counts, 3));
    }
}

static void teardown(void)
{
    pl_store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int live_calls; /* how often fake_live ran: a rejected request does no work */

static int fake_live(void *ctx, const pl_live_query *q, pl_buf *body, int *status)
{
    live_calls++;
    *status = 200;
    return pl_buf_printf(body, "{\"pid\":%d,\"kind\":%d,\"group\":\"%s\",\"id\":%llu,\"limit\":%llu}",
                         (int)getpid(), (int)q->kind, q->group, (unsigned long long)q->id,
                         (unsigned long long)q->limit);
}

static pl_handler *make_handler(int live, uint32_t timeout_ms)
{
    pl_handler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = store;
    opt.self = self;
    opt.live = live ? fake_live : NULL;
    opt.live_timeout_ms = timeout_ms;
    pl_handler *h = NULL;
    CHECK_OK(pl_handler_new(&h, &opt));
    return h;
}

static int get(pl_handler *h, const char *path, const char *query, pl_response *resp)
{
    pl_request req = {.method = "GET", .path = path, .query = query, .peer = "127.0.0.1"};
    CHECK_OK(pl_handler_handle(h, &req, resp));
    pl_buf_cstr(&resp->body);
    return resp->status;
}

static void test_procs(void)
{
    pl_handler *h = make_handler(1, 0);
    pl_response r;
    CHECK_EQ_INT(get(h, "/api/procs", NULL, &r), 200);
    CHECK_EQ_STR(r.content_type, "application/json");
    char want[64];
    snprintf(want, sizeof want, "\"self\":{\"pid\":%u,", self.pid);
    CHECK(strstr(r.body.data, want) != NULL);
    CHECK(strstr(r.body.data, "\"alive\":true") != NULL);
    CHECK(strstr(r.body.data, "\"samples\":5") != NULL);
    CHECK(strstr(r.body.data, dir) != NULL);
    pl_response_free(&r);
    pl_handler_free(h);
}

static void test_history(void)
{
    pl_handler *h = make_handler(1, 0);
    pl_response r;
    CHECK_EQ_INT(get(h, "/api/history", "q=APP.&sort=name", &r), 200);
    CHECK(strstr(r.body.data, "\"total\":2") != NULL);
    char *leak = strstr(r.body.data, "\"name\":\"app.Leak\"");
    char *other = strstr(r.body.data, "\"name\":\"app.Other\"");
    CHECK(leak && other && leak < other);
    CHECK(strstr(r.body.data, "\"count\":50,\"bytes\":2400,\"growth\":40") != NULL);
    CHECK(strstr(r.body.data, "\"dict\"") == NULL);
    pl_response_free(&r);

    CHECK_EQ_INT(get(h, "/api/history", "sort=growth&limit=1", &r), 200);
    CHECK(strstr(r.body.data, "\"total\":3") != NULL);
    CHECK(strstr(r.body.data, "\"name\":\"app.Leak\"") != NULL);
    CHECK(strstr(r.body.data, "\"name\":\"dict\"") == NULL);
    pl_response_free(&r);

    CHECK_EQ_INT(get(h, "/api/history", "sort=count&limit=1&offset=1", &r), 200);
    CHECK(strstr(r.body.data, "\"name\":\"app.Leak\"") != NULL);
    pl_response_free(&r);

    CHECK_EQ_INT(get(h, "/api/history", "q=app%2ELeak", &r), 200);
    CHECK(strstr(r.body.data, "\"total\":1") != NULL);
    pl_response_free(&r);

    const char *bad[] = {"limit=0", "limit=1001", "limit=", "limit=1e3", "offset=-1", "sort=size",
                         "pid=0", "q=%4", "q=%g0", "top=100001", "workers=yes", "points=5001",
                         "limit=9999999999999999999", "since=abc", "until=-5", "since=1.2.3",
                         "until=1e9", "since=10.", "until=0", "since=200&until=100",
                         "since=100&until=100", "until=99999999999", "since=1.0001", NULL};
    for (int i = 0; bad[i]; i++) {
        CHECK_EQ_INT(get(h, "/api/history", bad[i], &r), 400);
        CHECK(strncmp(r.body.data, "{\"error\":", 9) == 0);
        pl_response_free(&r);
    }
    CHECK_EQ_INT(get(h, "/api/history", "pid=4194304", &r), 404);
    pl_response_free(&r);
    /* The live store answers as of now; until= reads as of that moment. */
    CHECK_EQ_INT(get(h, "/api/history", "limit=1", &r), 200);
    CHECK(strstr(r.body.data, "\"live\":true") != NULL);
    CHECK(strstr(r.body.data, "\"as_of\":null") == NULL);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/history", "since=1&until=1000000000.5&limit=1", &r), 200);
    CHECK(strstr(r.body.data, "\"live\":false,\"since\":1.000,\"until\":1000000000.500") != NULL);
    CHECK(strstr(r.body.data, "\"as_of\":1000000000.500") != NULL);
    pl_response_free(&r);
    pl_handler_free(h);
}

static void test_routes_and_methods(void)
{
    pl_handler *h = make_handler(0, 0);
    pl_response r;
    CHECK_EQ_INT(get(h, "/", NULL, &r), 200);
    CHECK(strncmp(r.content_type, "text/html", 9) == 0);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/static/index.html", NULL, &r), 200);
    pl_response_free(&r);
    const char *missing[] = {"/static/", "/static/../CMakeLists.txt", "/static/.x", "/static/a/b",
                             "/nope", "/api", "/api/objects/12/grandparents", NULL};
    for (int i = 0; missing[i]; i++) {
        CHECK_EQ_INT(get(h, missing[i], NULL, &r), 404);
        pl_response_free(&r);
    }
    const char *bad_ids[] = {"/api/objects/abc", "/api/objects/-1", "/api/objects/", "/api/objects/1x",
                             "/api/objects/18446744073709551615", "/api/objects/0x10", NULL};
    for (int i = 0; bad_ids[i]; i++) {
        CHECK_EQ_INT(get(h, bad_ids[i], NULL, &r), 400);
        pl_response_free(&r);
    }
    /* no live callback (the CLI): 501 after validation */
    CHECK_EQ_INT(get(h, "/api/objects", "group=app.Leak", &r), 501);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/objects", NULL, &r), 400);
    pl_response_free(&r);

    pl_request post = {.method = "POST", .path = "/api/history"};
    CHECK_OK(pl_handler_handle(h, &post, &r));
    CHECK_EQ_INT(r.status, 405);
    CHECK_EQ_STR(r.allow, "GET, HEAD");
    pl_response_free(&r);
    pl_request get_login = {.method = "GET", .path = "/api/login"};
    CHECK_OK(pl_handler_handle(h, &get_login, &r));
    CHECK_EQ_INT(r.status, 405);
    CHECK_EQ_STR(r.allow, "POST");
    pl_response_free(&r);
    /* A push sent to a worker's own mount is the client's mistake (a 4xx, not
     * a 5xx that monitoring counts as an outage): the answer says where
     * pushes go, whatever the method. */
    const char *methods[] = {"POST", "GET", NULL};
    for (int i = 0; methods[i]; i++) {
        pl_request push = {.method = methods[i], .path = "/api/samples"};
        CHECK_OK(pl_handler_handle(h, &push, &r));
        CHECK_EQ_INT(r.status, 404);
        CHECK(r.body.data && strstr(r.body.data, "pyloot -h HOST -p PORT") != NULL);
        pl_response_free(&r);
    }
    pl_handler_free(h);
}

static void test_gzip(void)
{
    pl_handler *h = make_handler(0, 0);
    pl_request req = {.method = "GET", .path = "/api/history", .accept_encoding = "gzip"};
    pl_response r;
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.content_encoding && strcmp(r.content_encoding, "gzip") == 0);
    CHECK(r.vary_accept_encoding);
    CHECK((unsigned char)r.body.data[0] == 0x1f);
    pl_response_free(&r);
    pl_handler_free(h);

    pl_handler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = store;
    opt.disable_gzip = 1;
    CHECK_OK(pl_handler_new(&h, &opt));
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK(r.content_encoding == NULL);
    CHECK(r.body.data[0] == '{');
    pl_response_free(&r);
    pl_handler_free(h);
}

static void test_live_query_codec(void)
{
    pl_live_query q, back;
    memset(&q, 0, sizeof q);
    q.kind = PL_LIVE_LIST;
    q.id = 18446744073709551615ULL;
    q.offset = 7;
    q.limit = 100;
    strcpy(q.group, "app.Leak with spaces#2");
    pl_buf b = PL_BUF_INIT;
    CHECK_OK(pl_live_query_encode(&q, &b));
    CHECK_OK(pl_live_query_decode(b.data, b.len, &back));
    CHECK_EQ_INT(back.kind, q.kind);
    CHECK(back.id == q.id);
    CHECK_EQ_INT(back.offset, 7);
    CHECK_EQ_INT(back.limit, 100);
    CHECK_EQ_STR(back.group, q.group);
    /* The dominator-tree kinds travel through the mailbox too. */
    CHECK_OK(pl_live_query_decode("8 0 0 3 app.Leak", 16, &back));
    CHECK_EQ_INT(back.kind, PL_LIVE_SUSPECTS);
    CHECK_EQ_INT(back.limit, 3);
    CHECK_EQ_STR(back.group, "app.Leak");
    CHECK_OK(pl_live_query_decode("7 0 0 100 ", 10, &back));
    CHECK_EQ_INT(back.kind, PL_LIVE_RETAINERS);
    CHECK_OK(pl_live_query_decode("9 12 0 4 ", 9, &back));
    CHECK_EQ_INT(back.kind, PL_LIVE_GRAPH);
    CHECK_EQ_INT(back.limit, 4);
    CHECK_OK(pl_live_query_decode("10 0 0 1 ", 9, &back));
    CHECK_EQ_INT(back.kind, PL_LIVE_HEAPDUMP);
    CHECK_OK(pl_live_query_decode("12 0 0 20 pending", 17, &back));
    CHECK_EQ_INT(back.kind, PL_LIVE_TASKS);
    CHECK_EQ_INT(back.limit, 20);
    CHECK_EQ_STR(back.group, "pending");
    CHECK(pl_live_query_decode("11 1 2 3 x", 10, &back) == PL_EBADARG);
    CHECK(pl_live_query_decode("13 1 2 3 x", 10, &back) == PL_EBADARG);
    CHECK(pl_live_query_decode("0 1 2 3 x", 9, &back) == PL_EBADARG);
    CHECK(pl_live_query_decode("1 2", 3, &back) == PL_EBADARG);
    CHECK(pl_live_query_decode("", 0, &back) == PL_EBADARG);
    pl_buf_free(&b);
}

/* Answers 400 naming `param` for query on path. */
static void expect_400(pl_handler *h, const char *path, const char *query, const char *param);

/* /api/objects/<id>/graph: its own row (the id a path segment), the depth
 * carried in q->limit (default 3, 1..4), every bad input a 4xx before any work. */
static void test_graph_route(void)
{
    pl_handler *h = make_handler(1, 0);
    pl_response r;
    int calls = live_calls;
    CHECK_EQ_INT(get(h, "/api/objects/12/graph", NULL, &r), 200);
    CHECK(strstr(r.body.data, "\"kind\":9,") && strstr(r.body.data, "\"id\":12,") &&
          strstr(r.body.data, "\"limit\":3}"));
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/objects/12/graph", "depth=1", &r), 200);
    CHECK(strstr(r.body.data, "\"limit\":1}"));
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/objects/12/graph", "depth=4", &r), 200);
    CHECK(strstr(r.body.data, "\"limit\":4}"));
    pl_response_free(&r);
    CHECK_EQ_INT(live_calls, calls + 3);
    const char *bad_depths[] = {"depth=0", "depth=5", "depth=x", "depth=-1", "depth=", "depth=18446744073709551617",
                                NULL};
    for (int i = 0; bad_depths[i]; i++)
        expect_400(h, "/api/objects/12/graph", bad_depths[i], "depth");
    expect_400(h, "/api/objects/12/graph", "pid=abc", "pid");
    const char *bad_ids[] = {"/api/objects/abc/graph", "/api/objects//graph", "/api/objects/-1/graph", NULL};
    for (int i = 0; bad_ids[i]; i++) {
        CHECK_EQ_INT(get(h, bad_ids[i], NULL, &r), 400);
        pl_response_free(&r);
    }
    CHECK_EQ_INT(get(h, "/api/objects/12/graph/x", NULL, &r), 404);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/objects/12/graphs", NULL, &r), 404);
    pl_response_free(&r);
    CHECK_EQ_INT(live_calls, calls + 3);
    pl_handler_free(h);
}

/* Answers 400 naming `param` for query on path. */
static void expect_400(pl_handler *h, const char *path, const char *query, const char *param)
{
    pl_response r;
    int status = get(h, path, query, &r);
    CHECK_EQ_INT(status, 400);
    char want[64];
    snprintf(want, sizeof want, "{\"error\":\"parameter %s ", param);
    CHECK(r.body.data && strncmp(r.body.data, want, strlen(want)) == 0);
    if (status != 400 || !r.body.data || strncmp(r.body.data, want, strlen(want)) != 0)
        fprintf(stderr, "  %s?%s -> %d %s\n", path, query, status, r.body.data ? r.body.data : "");
    pl_response_free(&r);
}

/* /api/tasks: a live route with its state (carried in q->group, pending by
 * default) and a limit of 1..100 groups; every bad input a 400 before any work. */
static void test_tasks_route(void)
{
    pl_handler *h = make_handler(1, 0);
    pl_response r;
    int calls = live_calls;
    CHECK_EQ_INT(get(h, "/api/tasks", NULL, &r), 200);
    CHECK(strstr(r.body.data, "\"kind\":12,") && strstr(r.body.data, "\"group\":\"pending\"") &&
          strstr(r.body.data, "\"limit\":20}"));
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/tasks", "state=all&limit=100", &r), 200);
    CHECK(strstr(r.body.data, "\"group\":\"all\"") && strstr(r.body.data, "\"limit\":100}"));
    pl_response_free(&r);
    CHECK_EQ_INT(live_calls, calls + 2);
    const char *bad_states[] = {"state=running", "state=", "state=Pending", "state=pending%00", "state=%ff", NULL};
    for (int i = 0; bad_states[i]; i++)
        expect_400(h, "/api/tasks", bad_states[i], "state");
    const char *bad_limits[] = {"limit=0", "limit=101", "limit=x", "limit=18446744073709551617", NULL};
    for (int i = 0; bad_limits[i]; i++)
        expect_400(h, "/api/tasks", bad_limits[i], "limit");
    expect_400(h, "/api/tasks", "pid=abc", "pid");
    CHECK_EQ_INT(live_calls, calls + 2);
    pl_handler_free(h);
}

/* Integers past their range (and past 2^63 or 2^64) are a 400, never a
 * wrapped value or undefined behaviour. */
static void test_integer_params(void)
{
    pl_handler *h = make_handler(1, 0);
    pl_response r;
    const char *times[] = {"since=92233720368547758", "since=18446745870000000", "until=92233720368547758",
                           "until=18446745870000000", "since=9223372036854775807",
                           "since=99999999999999999999999999", "until=253402300800", "since=1.0000",
                           "since=.5", "since=1..5", "since=0.000", NULL};
    for (int i = 0; times[i]; i++)
        expect_400(h, "/api/history", times[i], strncmp(times[i], "since", 5) == 0 ? "since" : "until");
    /* The largest time accepted is still in the future: 400, a named one. */
    CHECK_EQ_INT(get(h, "/api/history", "until=253402300799.999", &r), 400);
    CHECK(strstr(r.body.data, "parameter until is in the future") != NULL);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/history", "since=0.001&limit=1", &r), 200);
    CHECK(strstr(r.body.data, "\"since\":0.001") != NULL);
    pl_response_free(&r);

    const char *ints[] = {"limit=18446744073709551616", "limit=18446744073709551615", "offset=1000000001",
                          "offset=99999999999999999999", "pid=4294967296", "top=-1", "points=1", NULL};
    for (int i = 0; ints[i]; i++) {
        char name[16];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(ints[i], "="), ints[i]);
        expect_400(h, "/api/history", ints[i], name);
    }
    expect_400(h, "/api/objects", "group=app.Leak&offset=18446744073709551617", "offset");
    expect_400(h, "/api/retainers", "id=1000000000000000000", "id");
    expect_400(h, "/api/suspects", "group=app.Leak&n=11", "n");
    expect_400(h, "/metrics", "top=4294967297", "top");
    /* Leading zeros are still the same number. */
    CHECK_EQ_INT(get(h, "/api/history", "limit=000000000000000000000001", &r), 200);
    CHECK(strstr(r.body.data, "\"limit\":1,") != NULL);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/objects/1000000000000000000", NULL, &r), 400);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/objects/999999999999999999", NULL, &r), 200);
    pl_response_free(&r);
    pl_handler_free(h);
}

/* Every text parameter is UTF-8 without control characters, checked before
 * any work: /api/suspects?group=%ff%fe never reaches the live callback. */
static void test_text_params(void)
{
    pl_handler *h = make_handler(1, 0);
    pl_response r;
    const char *bad[] = {"%ff%fe", "%00", "a%00b", "%c0%af", "%e0%80%af", "%ed%a0%80", "%ed%bf%bf",
                         "%f4%90%80%80", "%c3", "%01", "a%0ab", "%7f", "%c2%80x%80", NULL};
    int calls = live_calls;
    for (int i = 0; bad[i]; i++) {
        char query[64];
        snprintf(query, sizeof query, "group=%s", bad[i]);
        expect_400(h, "/api/suspects", query, "group");
        expect_400(h, "/api/objects", query, "group");
        expect_400(h, "/api/witnesses", query, "group");
        snprintf(query, sizeof query, "q=%s", bad[i]);
        expect_400(h, "/api/history", query, "q");
        snprintf(query, sizeof query, "host=%s", bad[i]);
        expect_400(h, "/api/history", query, "host");
        expect_400(h, "/api/witnesses", "group=app.Leak&host=%ff", "host");
        snprintf(query, sizeof query, "sort=%s", bad[i]);
        expect_400(h, "/api/history", query, "sort");
    }
    CHECK_EQ_INT(live_calls, calls);
    expect_400(h, "/api/suspects", "group=%f", "group");
    expect_400(h, "/api/history", "host=", "host");

    /* Well-formed UTF-8 passes: 2, 3 and 4 byte sequences. */
    CHECK_EQ_INT(get(h, "/api/history", "q=caf%c3%a9%e2%82%ac%f0%9f%90%8d", &r), 200);
    CHECK(strstr(r.body.data, "\"total\":0") != NULL);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/suspects", "group=app.L%c3%a9ak", &r), 200);
    pl_response_free(&r);
    CHECK_EQ_INT(live_calls, calls + 1);
    pl_handler_free(h);
}

/* A store that cannot be used: every route that reads it answers 503 (JSON;
 * /metrics text/plain), the UI is still served, nothing crashes. */
static void test_store_unavailable(void)
{
    pl_handler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.live = fake_live;
    opt.self = self;
    opt.unavailable = "opening the store /x/y failed: Not a directory. Fix: point PYLOOT_DB elsewhere";
    pl_handler *h = NULL;
    CHECK_OK(pl_handler_new(&h, &opt));
    pl_response r;
    CHECK_EQ_INT(get(h, "/metrics", NULL, &r), 503);
    CHECK_EQ_STR(r.content_type, "text/plain; charset=utf-8");
    CHECK(strstr(r.body.data, "Not a directory. Fix:") != NULL);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/metrics", "top=5000", &r), 503);
    pl_response_free(&r);
    const char *json[] = {"/api/procs", "/api/history", "/api/witnesses", "/api/objects", "/api/objects/",
                          "/api/objects/5/path", "/api/retainers", "/api/suspects", NULL};
    for (int i = 0; json[i]; i++) {
        CHECK_EQ_INT(get(h, json[i], "group=app.Leak", &r), 503);
        CHECK_EQ_STR(r.content_type, "application/json");
        CHECK(strstr(r.body.data, "{\"error\":\"opening the store /x/y failed") != NULL);
        pl_response_free(&r);
    }
    CHECK_EQ_INT(get(h, "/", NULL, &r), 200);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/static/index.html", NULL, &r), 200);
    pl_response_free(&r);
    CHECK_EQ_INT(get(h, "/api/nope", NULL, &r), 404);
    pl_response_free(&r);
    pl_handler_free(h);
    /* The renderer itself refuses a NULL store rather than crash. */
    pl_buf body = PL_BUF_INIT;
    pl_metrics_query mq = {0};
    CHECK_EQ_INT(pl_metrics_render(NULL, &mq, &body), PL_EBADARG);
    pl_buf_free(&body);
    /* No reason given: a default one. */
    opt.unavailable = NULL;
    CHECK_OK(pl_handler_new(&h, &opt));
    CHECK_EQ_INT(get(h, "/metrics", NULL, &r), 503);
    CHECK(strstr(r.body.data, "the store is not open") != NULL);
    pl_response_free(&r);
    pl_handler_free(h);
}

/* /api/procs is open to everyone by default: command lines come redacted. */
static void test_procs_redacted(void)
{
    pl_proc_info info;
    memset(&info, 0, sizeof info);
    info.inc.pid = 4194000;
    info.inc.start = 42;
    info.interval_ms = 1000;
    info.first_seen_ms = info.last_seen_ms = pl_now_ms() - 60000;
    snprintf(info.host, sizeof info.host, "web-1");
    snprintf(info.argv, sizeof info.argv,
             "gunicorn -e DATABASE_URL=postgres://app:S3cretPass@db/prod --api-key K3y -w 4 app:app");
    CHECK_OK(pl_store_register(store, &info));
    pl_handler *h = make_handler(0, 0);
    pl_response r;
    CHECK_EQ_INT(get(h, "/api/procs", NULL, &r), 200);
    CHECK(strstr(r.body.data, "S3cretPass") == NULL);
    CHECK(strstr(r.body.data, "K3y") == NULL);
    CHECK(strstr(r.body.data, "\"argv\":\"gunicorn -e DATABASE_URL=postgres://app:<redacted>@db/prod --api-key "
                              "<redacted> -w 4 app:app\"") != NULL);
    pl_response_free(&r);
    pl_handler_free(h);
}

/* A child process that registers and answers its mailbox (like a worker's
 * collector thread), or registers and never answers (a stuck worker). */
static pid_t spawn_worker(int answer)
{
    int ready[2];
    if (pipe(ready) != 0)
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        /* The parent's env must not be used in the child: open our own. */
        pl_store_forget(store);
        pl_store *s = NULL;
        pl_store_options opt;
        memset(&opt, 0, sizeof opt);
        opt.path = dir;
        opt.map_size = 64u << 20;
        if (pl_store_open(&s, &opt))
            _exit(3);
        pl_proc_info info;
        memset(&info, 0, sizeof info);
        pl_proc_self(&info.inc);
        info.first_seen_ms = info.last_seen_ms = pl_now_ms();
        if (pl_store_register(s, &info))
            _exit(4);
        if (write(ready[1], "x", 1) != 1)
            _exit(5);
        for (int i = 0; i < 20000; i++) { /* bounded: about 20 s */
            pl_buf req = PL_BUF_INIT, body = PL_BUF_INIT;
            uint64_t ticket;
            if (answer && pl_store_mailbox_take(s, &info.inc, pl_now_ms(), 30000, &ticket, &req) == 0) {
                pl_live_query q;
                int status = 400;
                if (pl_live_query_decode(req.data, req.len, &q) == 0)
                    fake_live(NULL, &q, &body, &status);
                pl_store_mailbox_reply(s, ticket, status, body.data, body.len, pl_now_ms());
            }
            pl_buf_free(&req);
            pl_buf_free(&body);
            usleep(1000);
        }
        _exit(0);
    }
    char c;
    close(ready[1]);
    if (read(ready[0], &c, 1) != 1)
        abort();
    close(ready[0]);
    return pid;
}

static void test_forwarding(void)
{
    pid_t answering = spawn_worker(1);
    pid_t stuck = spawn_worker(0);
    pl_handler *h = make_handler(1, 500);
    pl_response r;
    char query[96];

    snprintf(query, sizeof query, "group=app.Leak&pid=%d", (int)answering);
    CHECK_EQ_INT(get(h, "/api/objects", query, &r), 200);
    char want[64];
    snprintf(want, sizeof want, "{\"pid\":%d,\"kind\":1,\"group\":\"app.Leak\"", (int)answering);
    CHECK(strncmp(r.body.data, want, strlen(want)) == 0);
    pl_response_free(&r);

    snprintf(query, sizeof query, "pid=%d", (int)answering);
    CHECK_EQ_INT(get(h, "/api/objects/12345/path", query, &r), 200);
    CHECK(strstr(r.body.data, "\"kind\":5") && strstr(r.body.data, "\"id\":12345"));
    pl_response_free(&r);

    /* this process answers itself, without the mailbox */
    snprintf(query, sizeof query, "pid=%u", self.pid);
    CHECK_EQ_INT(get(h, "/api/objects/7", query, &r), 200);
    snprintf(want, sizeof want, "{\"pid\":%u,\"kind\":2", self.pid);
    CHECK(strncmp(r.body.data, want, strlen(want)) == 0);
    pl_response_free(&r);

    snprintf(query, sizeof query, "pid=%d", (int)stuck);
    CHECK_EQ_INT(get(h, "/api/objects/7", query, &r), 504);
    snprintf(want, sizeof want, "worker %d on host ", (int)stuck);
    CHECK(strstr(r.body.data, want) != NULL && strstr(r.body.data, "did not answer within") != NULL);
    pl_response_free(&r);

    CHECK_EQ_INT(get(h, "/api/objects/7", "pid=4194304", &r), 404);
    pl_response_free(&r);

    kill(answering, SIGKILL);
    waitpid(answering, NULL, 0);
    snprintf(query, sizeof query, "pid=%d", (int)answering);
    CHECK_EQ_INT(get(h, "/api/objects/7", query, &r), 404);
    pl_response_free(&r);

    kill(stuck, SIGKILL);
    waitpid(stuck, NULL, 0);
    pl_handler_free(h);
}

int main(void)
{
    setup();
    RUN(test_procs);
    RUN(test_history);
    RUN(test_routes_and_methods);
    RUN(test_gzip);
    RUN(test_live_query_codec);
    RUN(test_integer_params);
    RUN(test_text_params);
    RUN(test_graph_route);
    RUN(test_tasks_route);
    RUN(test_store_unavailable);
    RUN(test_procs_redacted);
    RUN(test_forwarding);
    teardown();
    return TEST_EXIT();
}
