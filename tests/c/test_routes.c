/* Requests by route: the route names (pl_route_name), the tables routes,
 * routeids and routenames (schema 6) written beside a sample and read back,
 * retained with the samples, the migration of a schema-5 store, and the
 * observations of the growth fit. */
#include <lmdb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyloot/route_name.h"
#include "pyloot/route_obs.h"
#include "pyloot/store.h"
#include "pyloot/verify.h"
#include "test.h"
#include "test_schema.h"

#define T0 1700000000000LL

static pl_store *open_at(const char *dir, int read_only, uint32_t max_samples)
{
    pl_store_options opt;
    pl_store *s = NULL;

    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.read_only = read_only;
    opt.max_samples = max_samples;
    CHECK_OK(pl_store_open(&s, &opt));
    return s;
}

static void reg(pl_store *s, pl_incarnation inc)
{
    pl_proc_info info;

    memset(&info, 0, sizeof info);
    info.inc = inc;
    snprintf(info.host, sizeof info.host, "testhost");
    info.interval_ms = 1000;
    info.first_seen_ms = T0;
    info.last_seen_ms = T0;
    CHECK_OK(pl_store_register(s, &info));
}

static uint32_t one_type(pl_store *s)
{
    const char *names[1] = {"m.Leak"};
    size_t lens[1] = {6};
    uint32_t id = 0;

    CHECK_OK(pl_store_type_ids(s, names, lens, 1, &id));
    return id;
}

/* One sample of `count` m.Leak with the requests of n routes. */
static void append(pl_store *s, pl_incarnation inc, uint32_t id, int64_t t, uint64_t count,
                   const pl_route_count *routes, size_t n)
{
    pl_type_count c = {id, count, count * 10};
    pl_memory_sample m = {1000, 10, 0};
    pl_route_sample r = {routes, n};

    CHECK_OK(pl_store_append_routes(s, &inc, t, &c, 1, &m, &r));
}

static const pl_route_count *find(const pl_route_totals *t, const char *name)
{
    static pl_route_count found;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->routes[i].name, name) == 0) {
            found = (pl_route_count){t->routes[i].name, strlen(name), t->routes[i].requests};
            return &found;
        }
    }
    return NULL;
}

static void check_name(const char *method, const char *route, int is_template, const char *want)
{
    char out[PL_ROUTE_NAME_MAX + 1];
    size_t len = pl_route_name(method, method ? strlen(method) : 0, route, route ? strlen(route) : 0, is_template,
                               out);

    CHECK_EQ_STR(out, want);
    CHECK_EQ_INT(len, strlen(want));
    CHECK(pl_route_name_valid(out, len));
}

static void test_names(void)
{
    char long_path[1000], out[PL_ROUTE_NAME_MAX + 1];

    check_name("GET", "/users/42", 0, "GET /users/{id}");
    check_name("GET", "/users/42/posts/7/", 0, "GET /users/{id}/posts/{id}/");
    check_name("GET", "/u/123e4567-e89b-12d3-a456-426614174000", 0, "GET /u/{id}");
    check_name("GET", "/t/0123456789abcdefABCD", 0, "GET /t/{id}");
    check_name("GET", "/t/0123456789abcde", 0, "GET /t/0123456789abcde"); /* 15 hex digits: a name */
    check_name("GET", "/t/123e4567-e89b-12d3-a456-42661417400g", 0, "GET /t/123e4567-e89b-12d3-a456-42661417400g");
    check_name("GET", "/search?q=1", 0, "GET /search");
    check_name("GET", "", 0, "GET /");
    check_name("", "/x", 0, "? /x");
    check_name("GET", "/login/<user>", 1, "GET /login/<user>");
    check_name("GET", "/users/{id:int}/42", 1, "GET /users/{id:int}/42"); /* a template is kept as it is */
    check_name("GE T\r\n", "/a\r\nb\x01/\xff\xfe/caf\xc3\xa9", 0, "GE?T?" "? /a?" "?b?/?" "?/caf\xc3\xa9");
    check_name("PROPFINDPROPFINDPROPFIND", "/", 0, "PROPFINDPROPFIND /");
    /* Cut to the bound, never inside a UTF-8 sequence. */
    for (size_t i = 0; i < sizeof long_path - 1; i += 2) {
        long_path[i] = '\xc3';
        long_path[i + 1] = '\xa9';
    }
    long_path[0] = '/';
    long_path[1] = 'x';
    long_path[sizeof long_path - 1] = '\0';
    size_t len = pl_route_name("GET", 3, long_path, strlen(long_path), 0, out);
    CHECK(len <= PL_ROUTE_NAME_MAX && len >= PL_ROUTE_NAME_MAX - 1);
    CHECK(pl_route_name_valid(out, len));
    CHECK(!pl_route_name_valid("", 0));
    CHECK(!pl_route_name_valid("GET /\n", 6));
    CHECK(!pl_route_name_valid("GET /\xc3", 6));
    CHECK(!pl_route_name_valid(long_path, strlen(long_path)));
}

/* Written beside the samples, read back merged and per incarnation; a
 * sample of 300 routes (more than one value), names repeated in a sample
 * add up, a name that is not valid counts under `other`. */
static void test_store_and_read(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, 0);
    pl_incarnation a, b = {0x7ffffffe, 12345};
    pl_route_totals *t = NULL;
    pl_routes_query q;
    static char names[300][32];
    pl_route_count many[300];
    uint32_t id;

    CHECK_OK(pl_proc_self(&a));
    reg(s, a);
    reg(s, b);
    id = one_type(s);
    for (int i = 0; i < 300; i++) {
        snprintf(names[i], sizeof names[i], "GET /r%d", i);
        many[i] = (pl_route_count){names[i], strlen(names[i]), (uint64_t)i + 1};
    }
    pl_route_count r1[] = {{"GET /a", 6, 5}, {"GET /b", 6, 2}, {"GET /a", 6, 1}, {"GET /\n", 6, 4}};
    append(s, a, id, T0, 1, NULL, 0);
    append(s, a, id, T0 + 1000, 2, r1, 4);
    append(s, b, id, T0 + 500, 1, many, 300);
    append(s, b, id, T0 + 1500, 1, NULL, 0); /* an empty route sample: no requests */

    memset(&q, 0, sizeof q);
    CHECK_OK(pl_route_totals_read(s, &q, &t));
    if (t) {
        CHECK_EQ_INT(t->workers, 2);
        CHECK_EQ_INT(t->n, 303);
        CHECK_EQ_STR(t->routes[0].name, "GET /r299");
        CHECK_EQ_INT(t->routes[0].requests, 300);
        CHECK(find(t, "GET /a") && find(t, "GET /a")->requests == 6);
        CHECK(find(t, "GET /b") && find(t, "GET /b")->requests == 2);
        CHECK(find(t, PL_ROUTE_OTHER) && find(t, PL_ROUTE_OTHER)->requests == 4);
        CHECK_EQ_INT(t->requests, 12 + 300 * 301 / 2);
        for (size_t i = 1; i < t->n; i++)
            CHECK(t->routes[i - 1].requests >= t->routes[i].requests);
        /* Per incarnation: records in time order, the empty one included. */
        for (size_t w = 0; w < t->data->n_workers; w++) {
            const pl_route_worker *wk = &t->data->workers[w];
            if (wk->inc.pid == b.pid) {
                CHECK_EQ_INT(wk->n_records, 2);
                CHECK_EQ_INT(wk->records[0].n, 300);
                CHECK_EQ_INT(wk->records[1].n, 0);
            } else {
                CHECK_EQ_INT(wk->n_records, 2);
                CHECK_EQ_INT(wk->records[1].n, 3);
            }
        }
    }
    pl_route_totals_free(t);
    t = NULL;

    /* A window and one pid. */
    q.since_ms = T0 + 500;
    CHECK_OK(pl_route_totals_read(s, &q, &t));
    if (t)
        CHECK_EQ_INT(t->requests, 12);
    pl_route_totals_free(t);
    t = NULL;
    memset(&q, 0, sizeof q);
    q.pid = b.pid;
    CHECK_OK(pl_route_totals_read(s, &q, &t));
    if (t)
        CHECK_EQ_INT(t->requests, 300 * 301 / 2);
    pl_route_totals_free(t);
    t = NULL;
    q.pid = 4000000;
    CHECK_EQ_INT(pl_route_totals_read(s, &q, &t), PL_ENOTFOUND);
    q.pid = 0;
    q.since_ms = T0 + 10;
    q.until_ms = T0;
    CHECK_EQ_INT(pl_route_totals_read(s, &q, &t), PL_EBADARG);
    pl_store_close(s);
    remove_dir(dir);
}

/* Route rows go with their samples (max_samples) and their incarnation;
 * names no sample uses go once there are enough of them. */
static void test_retention(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, 2);
    pl_incarnation a;
    pl_route_totals *t = NULL;
    pl_routes_query q;
    static char names[1100][32];
    pl_route_count r[1100];
    uint32_t id;

    CHECK_OK(pl_proc_self(&a));
    reg(s, a);
    id = one_type(s);
    for (int i = 0; i < 1100; i++) {
        snprintf(names[i], sizeof names[i], "GET /n%d", i);
        r[i] = (pl_route_count){names[i], strlen(names[i]), 1};
    }
    append(s, a, id, T0, 1, r, 1100); /* 1,100 names, used by the first sample only */
    for (int i = 1; i < 5; i++)
        append(s, a, id, T0 + i * 1000, 1, r, 1);
    CHECK_OK(pl_store_prune(s, T0 + 5000));
    memset(&q, 0, sizeof q);
    CHECK_OK(pl_route_totals_read(s, &q, &t));
    if (t) {
        /* Kept from the first sample kept (T0 + 3000) on: GET /n0 twice. */
        CHECK_EQ_INT(t->n, 1);
        CHECK_EQ_INT(t->requests, 2);
        CHECK_EQ_INT(t->data->workers[0].records[0].time_ms, T0 + 3000);
        CHECK(t->data->n_names <= 2);
    }
    pl_route_totals_free(t);
    pl_store_close(s);

    /* The names no sample uses are gone from both tables. */
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi ids, byname;
    MDB_stat st;
    CHECK_OK(mdb_env_create(&env));
    CHECK_OK(mdb_env_set_maxdbs(env, 32));
    CHECK_OK(mdb_env_open(env, dir, MDB_RDONLY, 0600));
    CHECK_OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    CHECK_OK(mdb_dbi_open(txn, "routeids", 0, &ids));
    CHECK_OK(mdb_dbi_open(txn, "routenames", 0, &byname));
    CHECK_OK(mdb_stat(txn, ids, &st));
    CHECK_EQ_INT(st.ms_entries, 1);
    CHECK_OK(mdb_stat(txn, byname, &st));
    CHECK_EQ_INT(st.ms_entries, 1);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    remove_dir(dir);
}

/* Schema 5 had no route tables: a read-only open reads it without requests
 * by route, a writable one migrates (version 6, the tables) and stores them. */
static void test_schema5(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, 0);
    pl_incarnation a;
    pl_routes_query q;
    pl_route_totals *t = NULL;
    pl_store_stat st;
    pl_route_count r[] = {{"GET /a", 6, 3}};
    uint32_t id;

    CHECK_OK(pl_proc_self(&a));
    reg(s, a);
    id = one_type(s);
    append(s, a, id, T0, 1, r, 1);
    pl_store_close(s);
    rewrite_schema(dir, 5, 0);

    memset(&q, 0, sizeof q);
    s = open_at(dir, 1, 0);
    if (s) {
        CHECK_OK(pl_store_stat_get(s, &st));
        CHECK_EQ_INT(st.schema, 5);
        CHECK_OK(pl_route_totals_read(s, &q, &t));
        if (t)
            CHECK_EQ_INT(t->n, 0);
        pl_route_totals_free(t);
        t = NULL;
        pl_store_close(s);
    }
    s = open_at(dir, 0, 0);
    if (s) {
        CHECK_OK(pl_store_stat_get(s, &st));
        CHECK_EQ_INT(st.schema, 6);
        append(s, a, id, T0 + 1000, 2, r, 1);
        CHECK_OK(pl_route_totals_read(s, &q, &t));
        if (t) {
            CHECK_EQ_INT(t->n, 1);
            CHECK_EQ_INT(t->requests, 3);
        }
        pl_route_totals_free(t);
        pl_store_close(s);
    }
    remove_dir(dir);
}

/* One observation per incarnation and interval with requests by route:
 * the fit sees them all (the stub fit reports their number), a type with no
 * history is PL_ENOTFOUND. */
static void test_observations(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, 0);
    pl_incarnation a, b = {0x7ffffffe, 12345};
    pl_routes_query q;
    pl_route_totals *t = NULL;
    pl_route_growth_result *g = NULL;
    uint32_t id;

    CHECK_OK(pl_proc_self(&a));
    reg(s, a);
    reg(s, b);
    id = one_type(s);
    for (int i = 0; i < 6; i++) {
        pl_route_count r[] = {{"GET /a", 6, (uint64_t)i}, {"GET /c", 6, 3}};
        append(s, a, id, T0 + i * 1000, 100 + (uint64_t)i * (i + 1) / 2, r, 2);
        append(s, b, id, T0 + i * 1000 + 10, 50, r + 1, 1);
    }
    memset(&q, 0, sizeof q);
    q.until_ms = T0 + 6000;
    CHECK_OK(pl_route_totals_read(s, &q, &t));
    CHECK_OK(pl_route_growth_read(s, &q, t, "m.Leak", 0, T0 + 6000, &g));
    if (g) {
        /* 5 intervals of each worker. */
        CHECK_EQ_INT(g->fit.observations, 10);
        CHECK_EQ_INT(g->n, 2);
        for (size_t i = 0; i < g->n; i++)
            CHECK(g->routes[i].requests == (strcmp(g->routes[i].name, "GET /a") == 0 ? 15u : 36u));
    }
    pl_route_growth_free(g);
    g = NULL;
    CHECK_OK(pl_route_totals_read(s, &q, &t));
    CHECK_EQ_INT(pl_route_growth_read(s, &q, t, "m.Lea", 0, T0 + 6000, &g), PL_ENOTFOUND);
    CHECK(g == NULL);
    pl_store_close(s);
    remove_dir(dir);
}

/* A routes record that does not decode is damage to the store's check, and
 * an error (not wrong counts) to a reader. */
static void test_damaged_record(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, 0);
    pl_incarnation a;
    pl_routes_query q;
    pl_route_totals *t = NULL;
    pl_route_count r[] = {{"GET /a", 6, 3}};
    char why[480];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v, bad = {3, "\x02\x01\x80"}; /* two entries announced, a varint cut short */
    uint8_t key[32];

    CHECK_OK(pl_proc_self(&a));
    reg(s, a);
    append(s, a, one_type(s), T0, 1, r, 1);
    pl_store_close(s);
    CHECK_OK(pl_store_walk(dir, why, sizeof why));

    CHECK_OK(mdb_env_create(&env));
    mdb_env_set_maxdbs(env, 32);
    CHECK_OK(mdb_env_open(env, dir, 0, 0600));
    CHECK_OK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK_OK(mdb_dbi_open(txn, "routes", 0, &dbi));
    CHECK_OK(mdb_cursor_open(txn, dbi, &cur));
    CHECK_OK(mdb_cursor_get(cur, &k, &v, MDB_FIRST));
    memcpy(key, k.mv_data, k.mv_size);
    k.mv_data = key;
    mdb_cursor_close(cur);
    CHECK_OK(mdb_put(txn, dbi, &k, &bad, 0));
    CHECK_OK(mdb_txn_commit(txn));
    mdb_env_close(env);

    CHECK_EQ_INT(pl_store_walk(dir, why, sizeof why), PL_ECORRUPT);
    CHECK(strstr(why, "table routes, key incarnation ") != NULL);
    CHECK(strstr(why, "requests by route do not decode") != NULL);
    s = open_at(dir, 1, 0);
    if (s) {
        memset(&q, 0, sizeof q);
        CHECK_EQ_INT(pl_route_totals_read(s, &q, &t), PL_ECORRUPT);
        CHECK(t == NULL);
        pl_store_close(s);
    }
    remove_dir(dir);
}

int main(void)
{
    RUN(test_names);
    RUN(test_store_and_read);
    RUN(test_retention);
    RUN(test_schema5);
    RUN(test_observations);
    RUN(test_damaged_record);
    return TEST_EXIT();
}
