/* Unit tests of witness records (src/core/store/witness.c) and of
 * GET /api/witnesses. Each test runs in a fresh temporary store. The live
 * incarnation is this process; a dead one is this pid with a start time
 * that does not match. */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/handler.h"
#include "pyloot/store.h"
#include "test.h"

/* The access rule (pyloot/access.h) is merged on main in parallel with this
 * test: once it is there, /api/witnesses (a route that shows reprs) answers
 * a loopback peer. */
#if defined(__has_include)
#if __has_include("pyloot/access.h")
#define PL_HAVE_ACCESS_RULE 1
#endif
#endif
#ifndef PL_HAVE_ACCESS_RULE
#define PL_HAVE_ACCESS_RULE 0
#endif

static pl_store *open_store(const char *dir, uint32_t max_samples, uint64_t max_age_s, int read_only)
{
    pl_store_options opt;
    pl_store *s = NULL;

    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.map_size = 64u << 20;
    opt.max_samples = max_samples;
    opt.max_age_s = max_age_s;
    opt.read_only = read_only;
    if (pl_store_open(&s, &opt)) {
        fprintf(stderr, "pl_store_open(%s) failed\n", dir);
        exit(2);
    }
    return s;
}

static void register_inc(pl_store *s, const pl_incarnation *inc, const char *host, int64_t seen_ms)
{
    pl_proc_info info;
    memset(&info, 0, sizeof info);
    info.inc = *inc;
    info.interval_ms = 1000;
    info.first_seen_ms = info.last_seen_ms = seen_ms;
    snprintf(info.host, sizeof info.host, "%s", host);
    CHECK_OK(pl_store_register(s, &info));
}

static uint32_t type_id(pl_store *s, const char *name)
{
    uint32_t id = 0;
    size_t len = strlen(name);
    CHECK_OK(pl_store_type_ids(s, &name, &len, 1, &id));
    return id;
}

static const pl_witness_step demo_path[] = {
    {"module", "", "<module 'demo_app'>"},
    {"list", "attribute '_sessions'", "[<Session 1>, <Session 2>]"},
    {"demo_app.Session", "item[1]", "<Session 2>"},
};

static void test_write_read(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0);
    pl_incarnation self, other;
    int64_t now = pl_now_ms();
    CHECK_OK(pl_proc_self(&self));
    other = self;
    other.start += 12345; /* dead: the start time does not match */
    register_inc(s, &self, "hosta", now);
    register_inc(s, &other, "hostb", now);
    uint32_t session = type_id(s, "demo_app.Session");
    (void)type_id(s, "other.Type");

    /* a long path with long strings: several parts, strings cut at 1024 bytes */
    static char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[1023] = (char)0xc3; /* a 2-byte UTF-8 sequence across the cut */
    big[1024] = (char)0xa9;
    pl_witness_step long_path[40];
    for (int i = 0; i < 40; i++)
        long_path[i] = (pl_witness_step){"T", i ? "item[0]" : "", big};
    CHECK_OK(pl_store_witness_put(s, &self, session, now - 2000, demo_path, 3));
    CHECK_OK(pl_store_witness_put(s, &other, session, now - 1500, demo_path, 3));
    CHECK_OK(pl_store_witness_put(s, &self, session, now - 1000, long_path, 40));

    pl_witness_list l;
    CHECK_OK(pl_store_witnesses(s, "demo_app.Session", 0, NULL, 10, &l));
    CHECK_EQ_INT(l.n, 3);
    if (l.n == 3) {
        CHECK_EQ_INT(l.w[0].time_ms, now - 1000); /* newest first */
        CHECK_EQ_INT(l.w[0].n_steps, 40);
        CHECK_EQ_INT(strlen(l.w[0].steps[39].repr), 1023); /* cut before the split sequence */
        CHECK_EQ_INT(l.w[1].inc.start, other.start);
        CHECK_EQ_STR(l.w[1].host, "hostb");
        CHECK_EQ_INT(l.w[2].n_steps, 3);
        CHECK_EQ_STR(l.w[2].steps[0].type, "module");
        CHECK_EQ_STR(l.w[2].steps[1].via, "attribute '_sessions'");
        CHECK_EQ_STR(l.w[2].steps[2].repr, "<Session 2>");
        CHECK_EQ_INT(l.w[2].type_id, session);
    }
    pl_witness_list_free(&l);

    CHECK_OK(pl_store_witnesses(s, "demo_app.Session", 0, "hostb", 10, &l));
    CHECK_EQ_INT(l.n, 1);
    pl_witness_list_free(&l);
    CHECK_OK(pl_store_witnesses(s, "demo_app.Session", self.pid + 1, NULL, 10, &l));
    CHECK_EQ_INT(l.n, 0);
    pl_witness_list_free(&l);
    CHECK_OK(pl_store_witnesses(s, "demo_app.Session", 0, NULL, 1, &l));
    CHECK_EQ_INT(l.n, 1);
    pl_witness_list_free(&l);
    CHECK_OK(pl_store_witnesses(s, "other.Type", 0, NULL, 10, &l));
    CHECK_EQ_INT(l.n, 0);
    pl_witness_list_free(&l);

    /* The instance's allocation site travels after the path; none is NULL. */
    CHECK_OK(pl_store_witnesses(s, "demo_app.Session", 0, NULL, 1, &l));
    CHECK(l.n == 1 && l.w[0].site == NULL);
    pl_witness_list_free(&l);
    CHECK_OK(pl_store_witness_put_site(s, &self, session, now - 500, demo_path, 3, "/srv/app.py:42 in open"));
    CHECK_OK(pl_store_witness_put_site(s, &self, session, now - 400, long_path, 40, big));
    CHECK_OK(pl_store_witnesses(s, "demo_app.Session", 0, NULL, 2, &l));
    CHECK_EQ_INT(l.n, 2);
    if (l.n == 2) {
        CHECK(l.w[0].site && strlen(l.w[0].site) == 1023); /* cut as the path's strings are */
        CHECK(l.w[1].site && strcmp(l.w[1].site, "/srv/app.py:42 in open") == 0);
        CHECK_EQ_STR(l.w[1].steps[2].repr, "<Session 2>");
    }
    pl_witness_list_free(&l);
    pl_store_close(s);

    /* read back by a read-only handle, as the CLI does */
    s = open_store(dir, 0, 0, 1);
    CHECK_OK(pl_store_witnesses(s, "demo_app.Session", 0, NULL, 10, &l));
    CHECK_EQ_INT(l.n, 5);
    pl_witness_list_free(&l);
    CHECK_EQ_INT(pl_store_witness_put(s, &self, session, now, demo_path, 3), EROFS);
    pl_store_close(s);
    remove_dir(dir);
}

static void test_bad_input(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0);
    pl_incarnation self, stranger;
    CHECK_OK(pl_proc_self(&self));
    stranger = self;
    stranger.start += 1;
    register_inc(s, &self, "h", pl_now_ms());
    uint32_t id = type_id(s, "demo_app.Session");
    pl_witness_step bad[] = {{"module", NULL, "r"}};
    pl_witness_step many[PL_WITNESS_MAX_STEPS + 1];
    for (size_t i = 0; i < PL_WITNESS_MAX_STEPS + 1; i++)
        many[i] = demo_path[0];

    CHECK_EQ_INT(pl_store_witness_put(s, &self, id, 1000, demo_path, 0), PL_EBADARG);
    CHECK_EQ_INT(pl_store_witness_put(s, &self, id, 1000, many, PL_WITNESS_MAX_STEPS + 1), PL_EBADARG);
    CHECK_EQ_INT(pl_store_witness_put(s, &self, id, 1000, bad, 1), PL_EBADARG);
    CHECK_EQ_INT(pl_store_witness_put(s, &self, id, -1, demo_path, 3), PL_EBADARG);
    CHECK_EQ_INT(pl_store_witness_put(s, &stranger, id, 1000, demo_path, 3), PL_ENOTFOUND);
    CHECK_OK(pl_store_witness_put(s, &self, id, 1000, many, PL_WITNESS_MAX_STEPS));

    pl_witness_list l;
    CHECK_EQ_INT(pl_store_witnesses(s, "no.SuchType", 0, NULL, 10, &l), PL_ENOTFOUND);
    CHECK_EQ_INT(l.n, 0);
    CHECK_EQ_INT(pl_store_witnesses(s, "", 0, NULL, 10, &l), PL_EBADARG);
    pl_witness_list_free(&l);
    pl_store_close(s);
    remove_dir(dir);
}

/* Witnesses follow the samples: older than the first stored sample, or of a
 * deleted incarnation, they go in the retention pass. */
static void test_retention(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 2, 3600, 0);
    pl_incarnation self, dead;
    int64_t now = pl_now_ms();
    CHECK_OK(pl_proc_self(&self));
    dead = self;
    dead.start += 7;
    register_inc(s, &self, "h", now);
    register_inc(s, &dead, "h", now - 2 * 3600 * 1000); /* last seen beyond max_age */
    uint32_t id = type_id(s, "demo_app.Session");
    CHECK_OK(pl_store_witness_put(s, &dead, id, now - 2 * 3600 * 1000, demo_path, 3));
    pl_type_count c = {id, 5, 100};
    for (int i = 0; i < 5; i++) {
        c.count = 5 + (uint64_t)i;
        CHECK_OK(pl_store_append(s, &self, now - 5000 + i * 1000, &c, 1));
        CHECK_OK(pl_store_witness_put(s, &self, id, now - 5000 + i * 1000 + 1, demo_path, 3));
    }
    CHECK_OK(pl_store_prune(s, now));

    pl_witness_list l;
    CHECK_OK(pl_store_witnesses(s, "demo_app.Session", 0, NULL, 100, &l));
    /* max_samples 2: the samples at now-2000 and now-1000 remain, so do the
     * witnesses taken after them; the dead incarnation's went with it */
    CHECK_EQ_INT(l.n, 2);
    for (size_t i = 0; i < l.n; i++) {
        CHECK(l.w[i].time_ms >= now - 2000);
        CHECK_EQ_INT(l.w[i].inc.start, self.start);
    }
    pl_witness_list_free(&l);
    pl_store_close(s);
    remove_dir(dir);
}

static int get(pl_handler *h, const char *query, pl_buf *body)
{
    pl_request req = {.method = "GET", .path = "/api/witnesses", .query = query};
#if PL_HAVE_ACCESS_RULE
    req.peer = "127.0.0.1"; /* a route of values: answered to a loopback peer */
#endif
    pl_response resp;
    pl_handler_handle(h, &req, &resp);
    pl_buf_reset(body);
    pl_buf_append(body, resp.body.data ? resp.body.data : "", resp.body.len);
    pl_buf_cstr(body);
    int status = resp.status;
    pl_response_free(&resp);
    return status;
}

static void test_http(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0);
    pl_incarnation self;
    CHECK_OK(pl_proc_self(&self));
    register_inc(s, &self, "hosta", pl_now_ms());
    uint32_t id = type_id(s, "demo_app.Session");
    CHECK_OK(pl_store_witness_put(s, &self, id, 1700000000123, demo_path, 3));
    pl_handler *h = NULL;
    pl_handler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = s;
    opt.disable_gzip = 1;
    CHECK_OK(pl_handler_new(&h, &opt));
    pl_buf body = PL_BUF_INIT;
    char want[512];
    snprintf(want, sizeof want,
             "{\"group\":\"demo_app.Session\",\"witnesses\":[{\"pid\":%u,\"start\":\"%llu\",\"host\":\"hosta\","
             "\"time\":1700000000.123,\"held_by\":\"module demo_app \xE2\x86\x92 attribute '_sessions' "
             "\xE2\x86\x92 list \xE2\x86\x92 item[1] \xE2\x86\x92 demo_app.Session\",\"path\":[{\"type\":\"module\",\"via\":null,\"repr\":\"<module "
             "'demo_app'>\"},{\"type\":\"list\",\"via\":\"attribute '_sessions'\",\"repr\":\"[<Session 1>, "
             "<Session 2>]\"},{\"type\":\"demo_app.Session\",\"via\":\"item[1]\",\"repr\":\"<Session 2>\"}]}]}",
             self.pid, (unsigned long long)self.start);
    CHECK_EQ_INT(get(h, "group=demo_app.Session", &body), 200);
    CHECK_EQ_STR(body.data, want);
    CHECK_EQ_INT(get(h, "group=demo_app.Session&host=hostb", &body), 200);
    CHECK_EQ_STR(body.data, "{\"group\":\"demo_app.Session\",\"witnesses\":[]}");
    const char *bad[] = {NULL, "group=", "pid=1", "group=x&pid=abc", "group=x&pid=0", "group=x&pid=99999999",
                         "group=x&pid=-1", "group=x&limit=0", "group=x&host=", "group=%00", NULL};
    for (size_t i = 0; i == 0 || bad[i]; i++) {
        CHECK_EQ_INT(get(h, bad[i], &body), 400);
        CHECK(strncmp(body.data, "{\"error\":", 9) == 0);
    }
    CHECK_EQ_INT(get(h, "group=no.Such", &body), 404);
    CHECK(strncmp(body.data, "{\"error\":", 9) == 0);
    pl_buf_free(&body);
    pl_handler_free(h);
    pl_store_close(s);
    remove_dir(dir);
}

int main(void)
{
    RUN(test_write_read);
    RUN(test_bad_input);
    RUN(test_retention);
    RUN(test_http);
    return TEST_EXIT();
}
