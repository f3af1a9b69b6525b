/* The memory figures stored with the samples (table `memory`, schema 5):
 * written beside a sample, read as merged and per-incarnation series on the
 * history's slot grid, retained with the samples, and the migration of a
 * schema-4 store. */
#include <lmdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pyloot/memory.h"
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

static void append(pl_store *s, pl_incarnation inc, uint32_t id, int64_t t, uint64_t rss, uint64_t py,
                   uint64_t freeb)
{
    pl_type_count c = {id, 10, py};
    pl_memory_sample m = {rss, py, freeb};

    CHECK_OK(pl_store_append_memory(s, &inc, t, &c, 1, &m));
}

static void test_other(void)
{
    pl_memory_sample a = {1000, 300, 200}, b = {1000, 900, 200}, c = {100, UINT64_MAX, 1};

    CHECK_EQ_INT(pl_memory_other(&a), 500);
    CHECK_EQ_INT(pl_memory_other(&b), 0);
    CHECK_EQ_INT(pl_memory_other(&c), 0);
}

/* Growth between the first and last slot with figures; outside Python
 * when RSS grew notably and Python objects explain under half of it. */
static void test_growth(void)
{
    const int64_t M = 1 << 20;
    int64_t rss[4] = {-1, 100 * M, -1, 130 * M}, py[4] = {-1, 10 * M, -1, 11 * M}, fr[4] = {-1, M, -1, M},
            oth[4] = {-1, 89 * M, -1, 118 * M};
    pl_memory_growth g;

    pl_memory_growth_of(rss, py, fr, oth, 4, &g);
    CHECK(g.known);
    CHECK_EQ_INT(g.rss, 30 * M);
    CHECK_EQ_INT(g.python_bytes, M);
    CHECK_EQ_INT(g.other_bytes, 29 * M);
    CHECK(pl_memory_outside_python(&g));
    py[3] = 30 * M; /* Python objects explain most of it */
    pl_memory_growth_of(rss, py, fr, oth, 4, &g);
    CHECK(!pl_memory_outside_python(&g));
    py[3] = 11 * M;
    rss[3] = 104 * M; /* too small to remark on */
    pl_memory_growth_of(rss, py, fr, oth, 4, &g);
    CHECK(!pl_memory_outside_python(&g));
    pl_memory_growth_of(rss, py, fr, oth, 2, &g); /* one slot: unknown */
    CHECK(!g.known && g.rss == 0 && !pl_memory_outside_python(&g));
}

/* A live incarnation (this process) and a dead one: per worker and merged,
 * as of a moment, with the liveness rules of the history. */
static void test_series(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, 0);
    pl_incarnation a, b = {0x7ffffffe, 12345};
    pl_memory_query q;
    pl_memory *m = NULL;
    uint32_t id;

    CHECK_OK(pl_proc_self(&a));
    reg(s, a);
    reg(s, b);
    id = one_type(s);
    for (int i = 0; i < 3; i++)
        append(s, a, id, T0 + i * 1000, 1000 + i * 100, 400 + i, 100);
    append(s, b, id, T0, 500, 600, 0);
    append(s, b, id, T0 + 1000, 700, 600, 0);

    memset(&q, 0, sizeof q);
    q.until_ms = T0 + 2000;
    CHECK_OK(pl_store_memory(s, &q, &m));
    if (m) {
        CHECK_EQ_INT(m->n_times, 3);
        CHECK_EQ_INT(m->n_workers, 2);
        CHECK_EQ_INT(m->as_of_ms, T0 + 2000);
        CHECK_EQ_INT(m->times[0], T0);
        CHECK_EQ_INT(m->merged.rss[0], 1500);
        CHECK_EQ_INT(m->merged.python_bytes[0], 1000);
        CHECK_EQ_INT(m->merged.allocator_free_bytes[0], 100);
        /* other per worker, then summed: 1000-400-100 and 0 (not -600). */
        CHECK_EQ_INT(m->merged.other_bytes[0], 500);
        CHECK_EQ_INT(m->merged.rss[1], 1100 + 700);
        /* b's last sign of life was T0+1000; 1.5 intervals later it still counts. */
        CHECK_EQ_INT(m->merged.rss[2], 1200 + 700);
        /* Merged growth: the sum of the workers' own growths. */
        CHECK(m->merged.growth.known);
        CHECK_EQ_INT(m->merged.growth.rss, 200 + 200);
        CHECK_EQ_INT(m->merged.growth.python_bytes, 2);
        for (size_t w = 0; w < m->n_workers; w++) {
            CHECK_EQ_STR(m->workers[w].host, "testhost");
            if (m->workers[w].inc.pid == a.pid) {
                CHECK_EQ_INT(m->workers[w].s.rss[2], 1200);
                CHECK_EQ_INT(m->workers[w].s.python_bytes[2], 402);
                CHECK_EQ_INT(m->workers[w].s.other_bytes[2], 1200 - 402 - 100);
            } else {
                CHECK_EQ_INT(m->workers[w].s.rss[0], 500);
                CHECK_EQ_INT(m->workers[w].s.other_bytes[0], 0);
            }
        }
    }
    pl_memory_free(m);
    m = NULL;

    /* Long after b died it no longer counts. */
    append(s, a, id, T0 + 9000, 5000, 400, 100);
    q.until_ms = T0 + 9000;
    CHECK_OK(pl_store_memory(s, &q, &m));
    if (m) {
        CHECK_EQ_INT(m->times[m->n_times - 1], T0 + 9000);
        CHECK_EQ_INT(m->merged.rss[m->n_times - 1], 5000);
    }
    pl_memory_free(m);
    m = NULL;

    /* One pid; since. */
    q.pid = b.pid;
    q.since_ms = T0 + 1000;
    CHECK_OK(pl_store_memory(s, &q, &m));
    if (m) {
        CHECK_EQ_INT(m->n_workers, 1);
        CHECK_EQ_INT(m->times[0], T0 + 1000);
        CHECK_EQ_INT(m->merged.rss[0], 700);
    }
    pl_memory_free(m);
    m = NULL;

    /* A window that starts between two records shows the one before it. */
    q.pid = a.pid;
    q.since_ms = T0 + 1500;
    q.until_ms = T0 + 1900;
    CHECK_OK(pl_store_memory(s, &q, &m));
    if (m) {
        CHECK_EQ_INT(m->n_times, 1);
        CHECK_EQ_INT(m->merged.rss[0], 1100);
    }
    pl_memory_free(m);
    m = NULL;

    /* Bad arguments. */
    q.pid = 0x7ffffffd;
    CHECK_EQ_INT(pl_store_memory(s, &q, &m), PL_ENOTFOUND);
    CHECK(m == NULL);
    memset(&q, 0, sizeof q);
    q.host = "nohost";
    CHECK_EQ_INT(pl_store_memory(s, &q, &m), PL_ENOTFOUND);
    q.host = NULL;
    q.since_ms = T0 + 5;
    q.until_ms = T0;
    CHECK_EQ_INT(pl_store_memory(s, &q, &m), PL_EBADARG);
    q.since_ms = -1;
    q.until_ms = 0;
    CHECK_EQ_INT(pl_store_memory(s, &q, &m), PL_EBADARG);
    pl_store_close(s);
    remove_dir(dir);
}

/* A record goes with the samples: older than the first stored sample, or
 * with its incarnation. */
static void test_retention(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, 2);
    pl_incarnation a;
    pl_memory_query q;
    pl_memory *m = NULL;
    uint32_t id;

    CHECK_OK(pl_proc_self(&a));
    reg(s, a);
    id = one_type(s);
    for (int i = 0; i < 5; i++)
        append(s, a, id, T0 + i * 1000, 1000 + i, 10, 0);
    CHECK_OK(pl_store_prune(s, T0 + 5000));
    memset(&q, 0, sizeof q);
    q.until_ms = T0 + 4000;
    q.since_ms = T0 - 1;
    CHECK_OK(pl_store_memory(s, &q, &m));
    if (m) {
        /* The axis starts at the first record kept. */
        CHECK_EQ_INT(m->times[0], T0 + 3000);
        CHECK_EQ_INT(m->merged.rss[0], 1003);
    }
    pl_memory_free(m);
    pl_store_close(s);
    remove_dir(dir);
}

/* Schema 4 had no memory table: read-only reads it as it is (no figures),
 * a writable open migrates (version 5, the table) and stores figures. */
static void test_schema4(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, 0);
    pl_incarnation a;
    pl_type_count c;
    pl_store_stat st;
    pl_memory_query q;
    pl_memory *m = NULL;
    uint32_t id;

    CHECK_OK(pl_proc_self(&a));
    reg(s, a);
    id = one_type(s);
    c = (pl_type_count){id, 3, 300};
    CHECK_OK(pl_store_append(s, &a, T0, &c, 1));
    pl_store_close(s);
    rewrite_schema(dir, 4, 0);

    memset(&q, 0, sizeof q);
    s = open_at(dir, 1, 0);
    if (s) {
        CHECK_OK(pl_store_stat_get(s, &st));
        CHECK_EQ_INT(st.schema, 4);
        CHECK_OK(pl_store_memory(s, &q, &m));
        if (m) {
            CHECK_EQ_INT(m->n_workers, 0);
            CHECK_EQ_INT(m->n_times, 0);
        }
        pl_memory_free(m);
        m = NULL;
        pl_store_close(s);
    }
    s = open_at(dir, 0, 0);
    if (s) {
        CHECK_OK(pl_store_stat_get(s, &st));
        CHECK_EQ_INT(st.schema, 6);
        append(s, a, id, T0 + 1000, 4096, 300, 8);
        q.until_ms = T0 + 1000;
        CHECK_OK(pl_store_memory(s, &q, &m));
        if (m) {
            CHECK_EQ_INT(m->n_workers, 1);
            CHECK_EQ_INT(m->merged.rss[m->n_times - 1], 4096);
            CHECK_EQ_INT(m->merged.other_bytes[m->n_times - 1], 4096 - 300 - 8);
        }
        pl_memory_free(m);
        m = NULL;
        pl_store_close(s);
    }
    /* The version written is 5: a read-only open finds it, and the figures. */
    s = open_at(dir, 1, 0);
    if (s) {
        CHECK_OK(pl_store_stat_get(s, &st));
        CHECK_EQ_INT(st.schema, 6);
        CHECK_OK(pl_store_memory(s, &q, &m));
        CHECK(m && m->n_workers == 1);
        pl_memory_free(m);
        pl_store_close(s);
    }
    /* A version above this code's is refused. */
    rewrite_schema(dir, 7, 0);
    s = NULL;
    {
        pl_store_options opt;
        memset(&opt, 0, sizeof opt);
        opt.path = dir;
        CHECK_EQ_INT(pl_store_open(&s, &opt), PL_ESCHEMA);
        pl_store_close(s);
    }
    remove_dir(dir);
}

/* A memory record that does not decode is damage to the check, and an
 * error (not a wrong figure) to a reader. */
static void test_damaged_record(void)
{
    char *dir = make_dir();
    pl_store *s = open_at(dir, 0, 0);
    pl_incarnation a;
    pl_memory_query q;
    pl_memory *m = NULL;
    char why[480];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v, bad = {4, "abcd"};
    uint8_t key[32];

    CHECK_OK(pl_proc_self(&a));
    reg(s, a);
    append(s, a, one_type(s), T0, 4096, 10, 0);
    pl_store_close(s);
    CHECK_OK(pl_store_walk(dir, why, sizeof why));

    CHECK_OK(mdb_env_create(&env));
    mdb_env_set_maxdbs(env, 32);
    CHECK_OK(mdb_env_open(env, dir, 0, 0600));
    CHECK_OK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK_OK(mdb_dbi_open(txn, "memory", 0, &dbi));
    CHECK_OK(mdb_cursor_open(txn, dbi, &cur));
    CHECK_OK(mdb_cursor_get(cur, &k, &v, MDB_FIRST));
    memcpy(key, k.mv_data, k.mv_size);
    k.mv_data = key;
    mdb_cursor_close(cur);
    CHECK_OK(mdb_put(txn, dbi, &k, &bad, 0));
    CHECK_OK(mdb_txn_commit(txn));
    mdb_env_close(env);

    CHECK_EQ_INT(pl_store_walk(dir, why, sizeof why), PL_ECORRUPT);
    CHECK(strstr(why, "table memory, key incarnation ") != NULL);
    CHECK(strstr(why, "shorter than 24 bytes") != NULL);
    s = open_at(dir, 1, 0);
    if (s) {
        memset(&q, 0, sizeof q);
        CHECK_EQ_INT(pl_store_memory(s, &q, &m), PL_ECORRUPT);
        CHECK(m == NULL);
        pl_store_close(s);
    }
    remove_dir(dir);
}

/* The process's own figures are plausible. */
static void test_measure(void)
{
    pl_memory_sample m = {0, 0, 0};

    pl_memory_measure(&m);
    CHECK(m.rss > 0);
    /* allocator_free_bytes: 0 under a sanitizer's allocator; the Python
     * tests see glibc's. */
}

int main(void)
{
    RUN(test_other);
    RUN(test_growth);
    RUN(test_series);
    RUN(test_retention);
    RUN(test_schema4);
    RUN(test_damaged_record);
    RUN(test_measure);
    return TEST_EXIT();
}
