/* GET /metrics: families, merged values, per-worker lines, escaping,
 * OpenMetrics, the bound on types and the always-exported patterns. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyloot/handler.h"
#include "pyloot/metrics.h"
#include "pyloot/store.h"
#include "test.h"

static char dir[64];
static pl_store *store;
static pl_incarnation self, dead;

#define N_FILLER 300

static void setup(void)
{
    strcpy(dir, "/tmp/pyloot-test-metrics-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    pl_store_options opt;
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.map_size = 64u << 20;
    CHECK_OK(pl_store_open(&store, &opt));
    CHECK_OK(pl_proc_self(&self));
    dead = self;
    dead.start += 1; /* same pid, another start time: not running */
    int64_t now = pl_now_ms();
    for (int k = 0; k < 2; k++) {
        pl_proc_info info;
        memset(&info, 0, sizeof info);
        info.inc = k ? dead : self;
        info.interval_ms = 1000;
        info.first_seen_ms = info.last_seen_ms = now - 4000;
        info.rss = 12345678;
        pl_proc_describe(&info);
        strcpy(info.host, "web-1");
        CHECK_OK(pl_store_register(store, &info));
    }
    pl_proc_stats stats = {125000, 3250000}; /* 0.125 s last pass, 3.25 s of GIL in all */
    CHECK_OK(pl_store_heartbeat(store, &self, now, 7340032, &stats));
    stats.collection_us = 999000;
    CHECK_OK(pl_store_heartbeat(store, &dead, now, 1, &stats)); /* dead: never exported */
    const char *names[N_FILLER + 3];
    size_t lens[N_FILLER + 3];
    char filler[N_FILLER][16];
    names[0] = "app.Leak";
    names[1] = "odd\"na\\me\nx\xff";
    names[2] = "dict";
    for (int i = 0; i < N_FILLER; i++) {
        snprintf(filler[i], sizeof filler[i], "fill.T%03d", i);
        names[i + 3] = filler[i];
    }
    for (int i = 0; i < N_FILLER + 3; i++)
        lens[i] = strlen(names[i]);
    uint32_t ids[N_FILLER + 3];
    CHECK_OK(pl_store_type_ids(store, names, lens, N_FILLER + 3, ids));
    pl_type_count counts[N_FILLER + 3];
    for (int s = 0; s < 3; s++) {
        counts[0] = (pl_type_count){ids[0], 100u * (s + 1), 4800u * (s + 1)};
        counts[1] = (pl_type_count){ids[1], 5000, 1000};
        counts[2] = (pl_type_count){ids[2], 9000, 900000};
        for (int i = 0; i < N_FILLER; i++) /* small, flat counts: never in the top 100 */
            counts[i + 3] = (pl_type_count){ids[i + 3], 1 + (uint64_t)i % 7, 64};
        CHECK_OK(pl_store_append(store, &self, now - 3000 + s * 1000, counts, N_FILLER + 3));
        counts[0].count = 11; /* the dead incarnation's leak is not in the merged count */
        CHECK_OK(pl_store_append(store, &dead, now - 3000 + s * 1000, counts, 1));
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

static char *render(uint32_t top, int per_worker, int om, const char *types)
{
    pl_buf b = PL_BUF_INIT;
    pl_metrics_query q = {top, per_worker, om, types, pl_now_ms()};
    CHECK_OK(pl_metrics_render(store, &q, &b));
    return pl_buf_detach(&b, NULL);
}

static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t plen = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, plen) == 0)
            n++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return n;
}

static void test_families_and_values(void)
{
    char *t = render(0, 0, 0, NULL);
    CHECK(strstr(t, "# TYPE pyloot_objects gauge\n") != NULL);
    CHECK(strstr(t, "\npyloot_objects{type=\"app.Leak\"} 300\n") != NULL);
    CHECK(strstr(t, "\npyloot_object_bytes{type=\"app.Leak\"} 14400\n") != NULL);
    CHECK(strstr(t, "\npyloot_objects{type=\"dict\"} 9000\n") != NULL);
    CHECK(strstr(t, "pyloot_objects{type=\"odd\\\"na\\\\me\\nx\xef\xbf\xbd\"} 5000\n") != NULL);
    CHECK(strstr(t, "pyloot_workers{state=\"alive\"} 1\npyloot_workers{state=\"dead\"} 1\n") != NULL);
    char rss[96];
    snprintf(rss, sizeof rss, "pyloot_process_resident_bytes{pid=\"%u\",host=\"web-1\"} 7340032\n", self.pid);
    CHECK(strstr(t, rss) != NULL);
    /* The collector's cost, from the store, for the live worker only. */
    char line[128];
    snprintf(line, sizeof line, "\npyloot_collection_seconds{pid=\"%u\",host=\"web-1\"} 0.125000\n", self.pid);
    CHECK(strstr(t, line) != NULL);
    CHECK(strstr(t, "# TYPE pyloot_collection_seconds gauge\n") != NULL);
    CHECK_EQ_INT(count_lines(t, "pyloot_collection_seconds{"), 1);
    snprintf(line, sizeof line, "\npyloot_gil_held_seconds_total{pid=\"%u\",host=\"web-1\"} 3.250000\n", self.pid);
    CHECK(strstr(t, line) != NULL);
    CHECK(strstr(t, "# TYPE pyloot_gil_held_seconds_total counter\n") != NULL);
    CHECK_EQ_INT(count_lines(t, "pyloot_gil_held_seconds_total{"), 1);
    CHECK(strstr(t, "# EOF") == NULL);
    /* Bounded: the top 100 by count and the top 100 by growth (overlapping). */
    int n = count_lines(t, "pyloot_objects{");
    CHECK(n >= 100 && n <= 200);
    CHECK_EQ_INT(count_lines(t, "pyloot_object_bytes{"), n);
    free(t);

    t = render(5, 0, 0, NULL);
    n = count_lines(t, "pyloot_objects{");
    CHECK(n >= 3 && n <= 10);
    free(t);
}

static void test_patterns(void)
{
    char *t = render(2, 0, 0, "fill.T1?7\nfill.T299\nnope.*");
    CHECK(strstr(t, "pyloot_objects{type=\"fill.T107\"}") != NULL);
    CHECK(strstr(t, "pyloot_objects{type=\"fill.T197\"}") != NULL);
    CHECK(strstr(t, "pyloot_objects{type=\"fill.T299\"}") != NULL);
    CHECK(strstr(t, "pyloot_objects{type=\"fill.T106\"}") == NULL);
    /* Each type once, even when a pattern names a top type. */
    free(t);
    /* A pattern without a literal run reads every type; one with a bracket
     * expression still finds its types. */
    t = render(2, 0, 0, "*");
    CHECK_EQ_INT(count_lines(t, "pyloot_objects{"), N_FILLER + 3);
    free(t);
    t = render(2, 0, 0, "[a]pp.Le?k\nfill.T00[0-2]");
    CHECK(strstr(t, "pyloot_objects{type=\"app.Leak\"}") != NULL);
    CHECK(strstr(t, "pyloot_objects{type=\"fill.T002\"}") != NULL);
    CHECK(strstr(t, "pyloot_objects{type=\"fill.T003\"}") == NULL);
    free(t);
    t = render(2, 0, 0, "app.*\ndict");
    CHECK_EQ_INT(count_lines(t, "pyloot_objects{type=\"app.Leak\"}"), 1);
    CHECK_EQ_INT(count_lines(t, "pyloot_objects{type=\"dict\"}"), 1);
    free(t);
}

static void test_per_worker_and_openmetrics(void)
{
    char *t = render(3, 1, 1, NULL);
    char line[128];
    snprintf(line, sizeof line, "\npyloot_objects{type=\"app.Leak\",pid=\"%u\",host=\"web-1\"} 300\n", self.pid);
    CHECK(strstr(t, line) != NULL);
    CHECK(strstr(t, "pyloot_objects{type=\"app.Leak\"}") == NULL);
    /* OpenMetrics: the counter's family is named without _total, its sample with it. */
    CHECK(strstr(t, "# TYPE pyloot_gil_held_seconds counter\n") != NULL);
    snprintf(line, sizeof line, "\npyloot_gil_held_seconds_total{pid=\"%u\",host=\"web-1\"} 3.250000\n", self.pid);
    CHECK(strstr(t, line) != NULL);
    size_t len = strlen(t);
    CHECK(len > 6 && strcmp(t + len - 6, "# EOF\n") == 0);
    free(t);
    CHECK(pl_metrics_wants_openmetrics("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"));
    CHECK(!pl_metrics_wants_openmetrics("text/plain"));
    CHECK(!pl_metrics_wants_openmetrics(NULL));
}

static void test_through_the_handler(void)
{
    pl_handler *h = NULL;
    pl_handler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = store;
    opt.disable_gzip = 1;
    CHECK_OK(pl_handler_new(&h, &opt));
    pl_response r;
    pl_request req = {.method = "GET", .path = "/metrics", .query = "workers=2"};
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK_EQ_INT(r.status, 400);
    pl_response_free(&r);
    req.query = "top=1001";
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK_EQ_INT(r.status, 400);
    pl_response_free(&r);
    req.query = NULL;
    req.accept = "application/openmetrics-text; version=1.0.0";
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.content_type, PL_METRICS_OPENMETRICS_TYPE);
    pl_response_free(&r);
    req.accept = NULL;
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK_EQ_STR(r.content_type, PL_METRICS_TEXT_TYPE);
    CHECK(strstr(pl_buf_cstr(&r.body), "pyloot_objects{type=\"app.Leak\"} 300\n") != NULL);
    pl_response_free(&r);
    req.method = "POST";
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK_EQ_INT(r.status, 405);
    pl_response_free(&r);
    pl_handler_free(h);
}

/* A central server's workers of two hosts may share a pid: the host label
 * keeps their series apart (a scrape with two equal series is refused). */
static void test_same_pid_on_two_hosts(void)
{
    pl_proc_info info;
    pl_incarnation got;
    memset(&info, 0, sizeof info);
    info.inc.pid = self.pid;
    info.inc.start = 77;
    info.interval_ms = 1000;
    info.rss = 4096;
    strcpy(info.host, "web-2");
    CHECK_OK(pl_store_remote_register(store, &info, pl_now_ms(), &got));
    char *t = render(3, 1, 0, NULL);
    char line[128];
    snprintf(line, sizeof line, "\npyloot_process_resident_bytes{pid=\"%u\",host=\"web-2\"} 4096\n", self.pid);
    CHECK(strstr(t, line) != NULL);
    CHECK_EQ_INT(count_lines(t, "pyloot_process_resident_bytes{"), 2);
    CHECK_EQ_INT(count_lines(t, "pyloot_collection_seconds{"), 2);
    CHECK_EQ_INT(count_lines(t, "pyloot_gil_held_seconds_total{"), 2);
    free(t);
}

int main(void)
{
    setup();
    RUN(test_families_and_values);
    RUN(test_patterns);
    RUN(test_per_worker_and_openmetrics);
    RUN(test_through_the_handler);
    RUN(test_same_pid_on_two_hosts);
    teardown();
    return TEST_EXIT();
}
