/* Unit tests of the shared LMDB store. Each test runs in a fresh temporary
 * directory that is removed afterwards. Live incarnations are real child
 * processes (forked before any store is opened, sleeping until killed);
 * dead ones use this process's pid with a start time that does not match. */
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyloot/store.h"
#include "test.h"
#include "test_schema.h"

/* ------------------------------------------------------------- helpers */

static pl_store *open_store(const char *dir, uint64_t map_size, uint32_t max_samples,
                            uint64_t max_age_s, uint64_t max_bytes)
{
    pl_store_options opt;
    pl_store *s = NULL;
    int rc;

    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.map_size = map_size;
    opt.max_samples = max_samples;
    opt.max_age_s = max_age_s;
    opt.max_bytes = max_bytes;
    rc = pl_store_open(&s, &opt);
    if (rc) {
        fprintf(stderr, "pl_store_open(%s): %s\n", dir, pl_strerror(rc));
        exit(2);
    }
    return s;
}

/* Opens the store at dir read-only; NULL (a failed check) when it cannot. */
static pl_store *open_read_only(const char *dir)
{
    pl_store_options opt;
    pl_store *s = NULL;

    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.read_only = 1;
    CHECK_OK(pl_store_open(&s, &opt));
    return s;
}

/* A live incarnation: a child that sleeps until killed. */
struct child {
    pid_t pid;
    pl_incarnation inc;
};

static struct child spawn_sleeper(void)
{
    struct child c;
    int fds[2];

    memset(&c, 0, sizeof c);
    if (pipe(fds) != 0)
        exit(2);
    c.pid = fork();
    if (c.pid == 0) {
        pl_incarnation me;

        close(fds[0]);
        /* Gone with the parent, even when it exits on a failure. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pl_proc_self(&me);
        if (write(fds[1], &me, sizeof me) != (ssize_t)sizeof me)
            _exit(1);
        close(fds[1]);
        for (;;)
            pause();
    }
    close(fds[1]);
    if (read(fds[0], &c.inc, sizeof c.inc) != (ssize_t)sizeof c.inc)
        exit(2);
    close(fds[0]);
    return c;
}

static void kill_child(struct child *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        c->pid = 0;
    }
}

static pl_incarnation dead_inc(uint64_t start)
{
    pl_incarnation inc = {(uint32_t)getpid(), start};
    return inc;
}

/* The collection interval reg() registers: the slot grid's step. 1 ms lets
 * tests that append a sample per millisecond see one slot per sample. */
static uint32_t reg_interval_ms = 1;

static void reg(pl_store *s, pl_incarnation inc, int64_t first_seen)
{
    pl_proc_info info;

    memset(&info, 0, sizeof info);
    info.inc = inc;
    snprintf(info.host, sizeof info.host, "testhost");
    snprintf(info.argv, sizeof info.argv, "test_store");
    info.interval_ms = reg_interval_ms;
    info.first_seen_ms = first_seen;
    info.last_seen_ms = first_seen;
    CHECK_OK(pl_store_register(s, &info));
}

static uint32_t type_id(pl_store *s, const char *name)
{
    const char *names[1] = {name};
    size_t lens[1] = {strlen(name)};
    uint32_t id = 0;

    CHECK_OK(pl_store_type_ids(s, names, lens, 1, &id));
    return id;
}

static void append1(pl_store *s, pl_incarnation inc, int64_t t, uint32_t id, uint64_t count)
{
    pl_type_count c = {id, count, count * 16};

    CHECK_OK(pl_store_append(s, &inc, t, &c, 1));
}

/* Gives out ids for the n types named fmt % k, k = 0 .. n - 1 (fmt takes
 * one size_t), into ids; pl_store_type_ids' result. */
static int numbered_types(pl_store *s, const char *fmt, size_t n, uint32_t *ids)
{
    char (*buf)[32] = malloc(n * sizeof *buf);
    const char **names = malloc(n * sizeof *names);
    size_t *lens = malloc(n * sizeof *lens), k;
    int rc = ENOMEM;

    if (buf && names && lens) {
        for (k = 0; k < n; k++) {
            snprintf(buf[k], sizeof buf[k], fmt, k);
            names[k] = buf[k];
            lens[k] = strlen(buf[k]);
        }
        rc = pl_store_type_ids(s, names, lens, n, ids);
    }
    free(buf);
    free(names);
    free(lens);
    return rc;
}

static pl_history *history(pl_store *s, const char *q, int sort, uint64_t offset, uint64_t limit,
                           uint64_t top, uint32_t pid, int per_worker, uint32_t max_points)
{
    pl_history_query hq;
    pl_history *h = NULL;
    int rc;

    memset(&hq, 0, sizeof hq);
    hq.q = q;
    hq.sort = sort;
    hq.offset = offset;
    hq.limit = limit;
    hq.top = top;
    hq.pid = pid;
    hq.per_worker = per_worker;
    hq.max_points = max_points;
    hq.now_ms = pl_now_ms();
    rc = pl_store_history(s, &hq, &h);
    if (rc) {
        fprintf(stderr, "pl_store_history: %s\n", pl_strerror(rc));
        test_failures++;
    }
    return h;
}

static const pl_history_type *find_type(const pl_history *h, const char *name)
{
    size_t i;

    for (i = 0; h && i < h->n_types; i++)
        if (strcmp(h->types[i].name, name) == 0)
            return &h->types[i];
    return NULL;
}

static int series_eq(const int64_t *got, const int64_t *want, size_t n, const char *what)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            fprintf(stderr, "  %s[%zu] = %lld, expected %lld\n", what, i, (long long)got[i],
                    (long long)want[i]);
            return 0;
        }
    }
    return 1;
}

static uint32_t proc_samples(pl_store *s, pl_incarnation inc, int *found)
{
    pl_proc_info *procs = NULL;
    size_t n = 0, i;
    uint32_t samples = 0;

    *found = 0;
    CHECK_OK(pl_store_procs(s, &procs, &n));
    for (i = 0; i < n; i++) {
        if (procs[i].inc.pid == inc.pid && procs[i].inc.start == inc.start) {
            samples = procs[i].samples;
            *found = 1;
        }
    }
    free(procs);
    return samples;
}

/* --------------------------------------------------------------- tests */

/* Two live incarnations and a dead one: the slot semantics of store.h, the
 * sort keys over live incarnations only, per-worker lines and pid=. */
static void test_merge(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper(), b = spawn_sleeper();
    pl_incarnation c = dead_inc(1);
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    uint32_t leak;
    pl_history *h;
    const pl_history_type *t;
    pl_proc_info *procs = NULL;
    size_t n = 0, i;

    reg_interval_ms = 500;
    reg(s, c, 400);
    reg(s, a.inc, 900);
    reg(s, b.inc, 1400);
    reg_interval_ms = 1;
    leak = type_id(s, "app.Leak");
    CHECK(leak > 0);
    CHECK_EQ_INT(type_id(s, "app.Leak"), leak);
    {
        pl_type_count bad[2] = {{leak, 1, 1}, {leak, 2, 2}};
        pl_type_count unknown = {leak + 1, 1, 1};
        pl_incarnation nobody = dead_inc(424242);

        CHECK_EQ_INT(pl_store_append(s, &c, 400, bad, 2), PL_EBADARG);     /* duplicate id */
        CHECK_EQ_INT(pl_store_append(s, &c, 400, &unknown, 1), PL_EBADARG); /* never allocated */
        CHECK_EQ_INT(pl_store_append(s, &c, -1, bad, 1), PL_EBADARG);
        CHECK_EQ_INT(pl_store_append(s, &nobody, 400, bad, 1), PL_ENOTFOUND);
    }
    append1(s, c, 500, leak, 100);
    append1(s, c, 1200, leak, 100);
    append1(s, a.inc, 1000, leak, 10);
    append1(s, a.inc, 2000, leak, 20);
    append1(s, a.inc, 3000, leak, 30);
    append1(s, b.inc, 1500, leak, 5);
    append1(s, b.inc, 2500, leak, 7);

    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK_EQ_INT(n, 3);
    for (i = 0; i < n; i++) {
        if (procs[i].inc.pid == (uint32_t)getpid())
            CHECK_EQ_INT(procs[i].alive, 0);
        else
            CHECK_EQ_INT(procs[i].alive, 1);
    }
    if (n == 3) {
        CHECK_EQ_INT(procs[0].first_seen_ms, 400); /* sorted by first_seen */
        CHECK_EQ_INT(procs[1].inc.pid, a.inc.pid);
        CHECK_EQ_INT(procs[0].samples, 2);
        CHECK_EQ_INT(procs[1].samples, 3);
        CHECK_EQ_STR(procs[1].host, "testhost");
    }
    free(procs);

    h = history(s, NULL, PL_SORT_GROWTH, 0, 50, 0, 0, 1, 0);
    if (h) {
        /* Slots every 500 ms (the interval); the dead c (last sample 1200)
         * counts until 1.5 intervals after it. */
        int64_t times[] = {500, 1000, 1500, 2000, 2500, 3000};
        int64_t merged[] = {100, 110, 115, 25, 27, 37};
        int64_t line_c[] = {100, 100, 100, -1, -1, -1};
        int64_t line_a[] = {-1, 10, 10, 20, 20, 30};
        int64_t line_b[] = {-1, -1, 5, 5, 7, 7};

        CHECK_EQ_INT(h->n_times, 6);
        CHECK_EQ_INT(h->total, 1);
        CHECK_EQ_INT(h->live, 1);
        CHECK_EQ_INT(h->step_ms, 500);
        t = find_type(h, "app.Leak");
        CHECK(t != NULL);
        if (t && h->n_times == 6) {
            CHECK(series_eq(h->times, times, 6, "times"));
            CHECK(series_eq(t->counts, merged, 6, "merged"));
            CHECK_EQ_INT(t->count, 37);
            CHECK_EQ_INT(t->bytes, 37 * 16);
            CHECK_EQ_INT(t->growth, 22);
            CHECK_EQ_INT(t->bytes_series[5], 37 * 16);
            CHECK_EQ_INT(t->n_lines, 3);
            if (t->n_lines == 3) {
                CHECK(series_eq(t->lines[0].counts, line_c, 6, "line dead"));
                CHECK(series_eq(t->lines[1].counts, line_a, 6, "line a"));
                CHECK(series_eq(t->lines[2].counts, line_b, 6, "line b"));
            }
        }
        pl_history_free(h);
    }

    /* pid=: only that pid's incarnations; count from its latest. */
    h = history(s, NULL, PL_SORT_GROWTH, 0, 50, 0, b.inc.pid, 0, 0);
    if (h) {
        int64_t want[] = {5, 5, 7};

        CHECK_EQ_INT(h->n_times, 3);
        t = find_type(h, "app.Leak");
        CHECK(t != NULL);
        if (t && h->n_times == 3) {
            CHECK(series_eq(t->counts, want, 3, "pid b"));
            CHECK_EQ_INT(t->count, 7);
            CHECK_EQ_INT(t->growth, 2);
            CHECK(t->lines == NULL);
        }
        pl_history_free(h);
    }
    h = history(s, NULL, PL_SORT_GROWTH, 0, 50, 0, (uint32_t)getpid(), 0, 0);
    if (h) {
        t = find_type(h, "app.Leak");
        CHECK(t != NULL);
        if (t)
            CHECK_EQ_INT(t->count, 100); /* dead, but the pid's latest incarnation */
        pl_history_free(h);
    }
    {
        pl_history_query hq;
        pl_history *none = NULL;

        memset(&hq, 0, sizeof hq);
        hq.limit = 10;
        hq.pid = 1; /* init: never registered */
        CHECK_EQ_INT(pl_store_history(s, &hq, &none), PL_ENOTFOUND);
        CHECK(none == NULL);
        hq.pid = 0;
        hq.limit = 0;
        CHECK_EQ_INT(pl_store_history(s, &hq, &none), PL_EBADARG);
    }

    /* Killing a worker among live ones: it leaves the count and the newest
     * slot ("now") at once. */
    kill_child(&b);
    h = history(s, NULL, PL_SORT_GROWTH, 0, 50, 0, 0, 0, 0);
    if (h) {
        int64_t merged[] = {100, 110, 115, 25, 27, 30};

        t = find_type(h, "app.Leak");
        CHECK(t != NULL);
        if (t && h->n_times == 6) {
            CHECK(series_eq(t->counts, merged, 6, "merged after kill"));
            CHECK_EQ_INT(t->count, 30);
        }
        pl_history_free(h);
    }
    /* Once none is alive the store reads as of the last moment one was
     * (5000, the clean ends): a and b, whose last samples are within 1.5
     * intervals of it, both count; no staircase down at the end. */
    CHECK_OK(pl_store_end(s, &a.inc, 5000));
    CHECK_EQ_INT(pl_store_end(s, &b.inc, 5000), 0);
    h = history(s, NULL, PL_SORT_GROWTH, 0, 50, 0, 0, 0, 0);
    if (h) {
        t = find_type(h, "app.Leak");
        CHECK(t != NULL);
        CHECK_EQ_INT(h->live, 0);
        CHECK_EQ_INT(h->as_of_ms, 5000);
        if (t) {
            CHECK_EQ_INT(t->count, 37);
            CHECK_EQ_INT(t->growth, 22);
            CHECK_EQ_INT(t->counts[h->n_times - 1], 37);
        }
        pl_history_free(h);
    }
    pl_store_close(s);
    kill_child(&a);
    kill_child(&b);
    remove_dir(dir);
}

/* More distinct times than max_points: evenly spaced slot ends from the
 * first to the last sample, each showing the last sample at or before it. */
static void test_slots(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    uint32_t id;
    pl_history *h;
    int64_t t;

    reg_interval_ms = 10;
    reg(s, a.inc, 0);
    reg_interval_ms = 1;
    id = type_id(s, "x.Y");
    for (t = 0; t < 100; t++)
        append1(s, a.inc, 1000 + t * 10, id, (uint64_t)t); /* t=1000..1990 */
    h = history(s, NULL, PL_SORT_COUNT, 0, 10, 0, 0, 0, 10);
    if (h) {
        size_t i;

        /* 100 slots of 10 ms do not fit in 10: the step becomes 120 ms
         * (a multiple of the interval), the slots multiples of it, then
         * the newest sample. */
        CHECK_EQ_INT(h->step_ms, 120);
        CHECK_EQ_INT(h->n_times, 9);
        if (h->n_times == 9) {
            CHECK_EQ_INT(h->times[0], 1080);
            CHECK_EQ_INT(h->times[7], 1920);
            CHECK_EQ_INT(h->times[8], 1990);
            for (i = 0; i < 9; i++) {
                int64_t want = (h->times[i] - 1000) / 10;

                if (i < 8)
                    CHECK_EQ_INT(h->times[i] % 120, 0);

                CHECK_EQ_INT(h->types[0].counts[i], want);
            }
        }
        pl_history_free(h);
    }
    pl_store_close(s);
    kill_child(&a);
    remove_dir(dir);
}

/* q (case-insensitive), sort (count, growth, name, bytes, bytes_growth),
 * top, offset, limit. */
static void test_query(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    const char *names[] = {"app.Alpha", "app.beta", "lib.Gamma", "lib.delta", "APP.Epsilon"};
    /* first and latest counts: growth = latest - first */
    uint64_t first[] = {10, 50, 5, 100, 1};
    uint64_t latest[] = {40, 60, 200, 90, 2};
    size_t lens[5], i;
    uint32_t ids[5];
    pl_type_count c[5];
    pl_history *h;

    reg(s, a.inc, 0);
    for (i = 0; i < 5; i++)
        lens[i] = strlen(names[i]);
    CHECK_OK(pl_store_type_ids(s, names, lens, 5, ids));
    for (i = 0; i < 5; i++)
        c[i] = (pl_type_count){ids[i], first[i], first[i] * 8};
    CHECK_OK(pl_store_append(s, &a.inc, 1000, c, 5));
    for (i = 0; i < 5; i++)
        c[i] = (pl_type_count){ids[i], latest[i], latest[i] * 8};
    c[1].bytes = 100000; /* app.beta: few objects that hold much */
    CHECK_OK(pl_store_append(s, &a.inc, 2000, c, 5));

    h = history(s, NULL, PL_SORT_COUNT, 0, 10, 0, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->total, 5);
        CHECK_EQ_INT(h->n_types, 5);
        if (h->n_types == 5) {
            CHECK_EQ_STR(h->types[0].name, "lib.Gamma");
            CHECK_EQ_STR(h->types[1].name, "lib.delta");
            CHECK_EQ_STR(h->types[2].name, "app.beta");
            CHECK_EQ_STR(h->types[3].name, "app.Alpha");
            CHECK_EQ_STR(h->types[4].name, "APP.Epsilon");
        }
        pl_history_free(h);
    }
    h = history(s, NULL, PL_SORT_GROWTH, 0, 10, 0, 0, 0, 0);
    if (h && h->n_types == 5) {
        CHECK_EQ_STR(h->types[0].name, "lib.Gamma"); /* +195 */
        CHECK_EQ_INT(h->types[0].growth, 195);
        CHECK_EQ_STR(h->types[1].name, "app.Alpha"); /* +30 */
        CHECK_EQ_STR(h->types[2].name, "app.beta");  /* +10 */
        CHECK_EQ_STR(h->types[3].name, "APP.Epsilon");
        CHECK_EQ_STR(h->types[4].name, "lib.delta"); /* -10 */
        CHECK_EQ_INT(h->types[4].growth, -10);
    }
    pl_history_free(h);
    /* bytes: 8 per object, but app.beta's last sample holds more (below) */
    h = history(s, NULL, PL_SORT_BYTES, 0, 10, 0, 0, 0, 0);
    if (h && h->n_types == 5) {
        CHECK_EQ_STR(h->types[0].name, "app.beta"); /* 60 objects, 100000 bytes */
        CHECK_EQ_INT(h->types[0].bytes, 100000);
        CHECK_EQ_STR(h->types[1].name, "lib.Gamma"); /* 1600 */
        CHECK_EQ_STR(h->types[4].name, "APP.Epsilon");
    }
    pl_history_free(h);
    h = history(s, NULL, PL_SORT_BYTES_GROWTH, 0, 10, 0, 0, 0, 0);
    if (h && h->n_types == 5) {
        CHECK_EQ_STR(h->types[0].name, "app.beta"); /* 100000 - 400 */
        CHECK_EQ_INT(h->types[0].bytes_growth, 100000 - 400);
        CHECK_EQ_INT(h->types[0].growth, 10);
        CHECK_EQ_STR(h->types[1].name, "lib.Gamma"); /* +1560 */
        CHECK_EQ_INT(h->types[1].bytes_growth, 1560);
        CHECK_EQ_STR(h->types[4].name, "lib.delta"); /* -80 */
        CHECK_EQ_INT(h->types[4].bytes_growth, -80);
    }
    pl_history_free(h);
    h = history(s, NULL, PL_SORT_NAME, 1, 2, 0, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->total, 5);
        CHECK_EQ_INT(h->n_types, 2);
        if (h->n_types == 2) { /* bytewise: APP.Epsilon app.Alpha app.beta lib.Gamma lib.delta */
            CHECK_EQ_STR(h->types[0].name, "app.Alpha");
            CHECK_EQ_STR(h->types[1].name, "app.beta");
        }
        pl_history_free(h);
    }
    h = history(s, "aPp.", PL_SORT_NAME, 0, 10, 0, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->total, 3);
        CHECK_EQ_INT(h->n_types, 3);
        pl_history_free(h);
    }
    h = history(s, "nothing-matches", PL_SORT_NAME, 0, 10, 0, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->total, 0);
        CHECK_EQ_INT(h->n_types, 0);
        pl_history_free(h);
    }
    /* top=2 keeps Gamma (200) and delta (90); then q=app matches neither. */
    h = history(s, NULL, PL_SORT_NAME, 0, 10, 2, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->total, 2);
        if (h->n_types == 2) {
            CHECK_EQ_STR(h->types[0].name, "lib.Gamma");
            CHECK_EQ_STR(h->types[1].name, "lib.delta");
        }
        pl_history_free(h);
    }
    h = history(s, "app", PL_SORT_NAME, 0, 10, 2, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->total, 0);
        pl_history_free(h);
    }
    h = history(s, NULL, PL_SORT_COUNT, 7, 10, 0, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->total, 5);
        CHECK_EQ_INT(h->n_types, 0);
        pl_history_free(h);
    }
    pl_store_close(s);
    kill_child(&a);
    remove_dir(dir);
}

/* Enough samples and types to go through both compaction levels: every
 * value read back equals what was appended (level-2 and level-1 windows and
 * the log), and growth uses the first stored sample from the snapshot. */
static uint64_t synth(uint32_t type, int64_t i)
{
    /* Some types are constant, some grow, some jitter, some come and go. */
    switch (type % 4) {
    case 0:
        return 1000 + type;
    case 1:
        return (uint64_t)(type + 3 * i);
    case 2:
        return (uint64_t)(type * 2 + ((i * 7 + type) % 5));
    default:
        return (i / 10) % 2 ? 0 : (uint64_t)(i + type);
    }
}

static void test_compaction(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    /* 200 samples: one level-2 window (0..127), two level-1 windows
     * (128..191) and 8 log samples. */
    enum { NT = 300, NS = 200 };
    uint32_t ids[NT];
    pl_type_count c[NT];
    pl_history *h;
    int64_t i;
    size_t k, j;

    reg_interval_ms = 1000;
    reg(s, a.inc, 0);
    reg_interval_ms = 1;
    CHECK_OK(numbered_types(s, "mod.T%03zu", NT, ids));
    for (k = 0; k < NT; k++)
        CHECK_EQ_INT(ids[k], k + 1);
    for (i = 0; i < NS; i++) {
        for (k = 0; k < NT; k++) {
            uint64_t v = synth((uint32_t)k, i);

            c[k] = (pl_type_count){ids[k], v, v * 3 + (uint64_t)i};
        }
        CHECK_OK(pl_store_append(s, &a.inc, 10000 + i * 1000, c, NT));
    }
    {
        int found;

        CHECK_EQ_INT(proc_samples(s, a.inc, &found), NS);
    }
    h = history(s, NULL, PL_SORT_NAME, 0, NT, 0, 0, 1, 1000);
    if (h) {
        int bad = 0;

        CHECK_EQ_INT(h->n_times, NS);
        CHECK_EQ_INT(h->n_types, NT);
        for (j = 0; j < h->n_types && h->n_times == NS; j++) {
            const pl_history_type *t = &h->types[j];
            uint32_t k_t = t->type_id - 1;

            for (i = 0; i < NS; i++) {
                uint64_t v = synth(k_t, i), bv = v * 3 + (uint64_t)i;

                if (t->counts[i] != (int64_t)v || t->bytes_series[i] != (int64_t)bv) {
                    if (bad++ < 5)
                        fprintf(stderr, "  type %u sample %lld: %lld/%lld expected %llu/%llu\n",
                                k_t, (long long)i, (long long)t->counts[i],
                                (long long)t->bytes_series[i], (unsigned long long)v,
                                (unsigned long long)bv);
                }
            }
            if (t->count != synth(k_t, NS - 1) ||
                t->growth != (int64_t)synth(k_t, NS - 1) - (int64_t)synth(k_t, 0))
                bad++;
            /* bytes_growth from the same first sample (the snapshot): v * 3 + i */
            if (t->bytes_growth != ((int64_t)synth(k_t, NS - 1) * 3 + NS - 1) - (int64_t)synth(k_t, 0) * 3)
                bad++;
            if (t->n_lines != 1 || t->lines[0].counts[NS - 1] != (int64_t)synth(k_t, NS - 1) ||
                t->lines[0].bytes[NS - 1] != (int64_t)synth(k_t, NS - 1) * 3 + NS - 1)
                bad++;
        }
        CHECK_EQ_INT(bad, 0);
        pl_history_free(h);
    }
    pl_store_close(s);
    kill_child(&a);
    remove_dir(dir);
}

/* Retention by samples: at most max_samples stay (dropped a window at a
 * time, so at least max_samples - 31), and the newest are kept. */
static void test_retention_samples(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_store *s = open_store(dir, 0, 40, 0, 0);
    uint32_t id;
    int64_t i;
    int found;
    uint32_t n;
    pl_history *h;

    reg(s, a.inc, 0);
    id = type_id(s, "r.S");
    for (i = 0; i < 200; i++)
        append1(s, a.inc, 1000 + i, id, (uint64_t)i);
    n = proc_samples(s, a.inc, &found);
    CHECK(found);
    CHECK(n <= 40 && n >= 40 - 31);
    h = history(s, NULL, PL_SORT_COUNT, 0, 1, 0, 0, 0, 5000);
    if (h) {
        CHECK_EQ_INT(h->n_times, n);
        if (h->n_times == n && h->n_types == 1) {
            CHECK_EQ_INT(h->times[h->n_times - 1], 1199);
            CHECK_EQ_INT(h->types[0].counts[h->n_times - 1], 199);
            CHECK_EQ_INT(h->types[0].counts[0], 200 - (int64_t)n);
            CHECK_EQ_INT(h->types[0].growth, (int64_t)n - 1);
        }
        pl_history_free(h);
    }
    /* max_samples smaller than a window: dropped one log sample at a time. */
    pl_store_close(s);
    remove_dir(dir);
    dir = make_dir();
    s = open_store(dir, 0, 5, 0, 0);
    reg(s, a.inc, 0);
    id = type_id(s, "r.S");
    for (i = 0; i < 20; i++)
        append1(s, a.inc, 1000 + i, id, (uint64_t)i);
    CHECK_EQ_INT(proc_samples(s, a.inc, &found), 5);
    pl_store_close(s);
    remove_dir(dir);

    /* Large enough for level-2 windows (128 samples): dropped whole, so
     * between max_samples - 127 and max_samples remain, and the growth base
     * (the snapshot) follows the first remaining sample. */
    dir = make_dir();
    s = open_store(dir, 0, 200, 0, 0);
    reg(s, a.inc, 0);
    id = type_id(s, "r.S");
    for (i = 0; i < 450; i++) {
        pl_type_count c[2] = {{id, (uint64_t)i, (uint64_t)i * 2}, {id + 1, 5, 5}};

        type_id(s, "r.Other");
        CHECK_OK(pl_store_append(s, &a.inc, 1000 + i, c, 2));
    }
    n = proc_samples(s, a.inc, &found);
    CHECK(n <= 200 && n >= 200 - 127);
    h = history(s, "r.S", PL_SORT_COUNT, 0, 1, 0, 0, 0, 5000);
    if (h) {
        CHECK_EQ_INT(h->n_times, n);
        if (h->n_times == n && h->n_types == 1) {
            int64_t k;
            int bad = 0;

            for (k = 0; k < (int64_t)n; k++)
                if (h->types[0].counts[k] != 450 - (int64_t)n + k ||
                    h->types[0].bytes_series[k] != 2 * (450 - (int64_t)n + k))
                    bad++;
            CHECK_EQ_INT(bad, 0);
            CHECK_EQ_INT(h->types[0].growth, (int64_t)n - 1);
            CHECK_EQ_INT(h->times[0], 1000 + 450 - (int64_t)n);
        }
        pl_history_free(h);
    }
    pl_store_close(s);
    kill_child(&a);
    remove_dir(dir);
}

/* Retention by age: old samples go, and a dead incarnation whose last
 * activity is older than max_age goes entirely. */
static void test_retention_age(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_incarnation d = dead_inc(7);
    pl_store *s = open_store(dir, 0, 0, 10, 0); /* 10 s */
    uint32_t id;
    int64_t i;
    int found;
    uint32_t n;

    reg(s, a.inc, 400);
    reg(s, d, 400);
    id = type_id(s, "r.A");
    append1(s, d, 500, id, 1);
    for (i = 0; i < 100; i++)
        append1(s, a.inc, 1000 + i * 1000, id, (uint64_t)i); /* 1 s apart, t up to 100 s */
    n = proc_samples(s, a.inc, &found);
    /* Samples older than now-10 s go; a window goes only when all of it is
     * old, so up to 31 older samples may remain. */
    CHECK(found);
    CHECK(n >= 10 && n <= 11 + 31);
    CHECK_OK(pl_store_prune(s, 1000 + 99 * 1000));
    proc_samples(s, d, &found);
    CHECK_EQ_INT(found, 0);
    /* Everything of a live incarnation ages out when it stops sampling. */
    CHECK_OK(pl_store_prune(s, 1000000));
    CHECK_EQ_INT(proc_samples(s, a.inc, &found), 0);
    CHECK_EQ_INT(found, 1);
    pl_store_close(s);
    kill_child(&a);
    remove_dir(dir);
}

/* Bytes of 2^33 and more: 12 bytes an entry in the log, so that the store
 * fills its budget. */
static void fill_sample(pl_type_count *c, const uint32_t *ids, size_t n, int64_t i)
{
    size_t k;

    for (k = 0; k < n; k++)
        c[k] = (pl_type_count){ids[k], (uint64_t)(k * 7 + (size_t)i), ((uint64_t)k << 33) + (uint64_t)i};
}

/* Retention by bytes: dead incarnations go first, the used size ends below
 * max_bytes, and the live incarnation's newest data stays readable. */
static void test_retention_bytes(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_store *s = open_store(dir, 64u << 20, 0, 0, 1u << 20);
    enum { NT = 400 };
    uint32_t ids[NT];
    pl_type_count c[NT];
    pl_store_stat st;
    int64_t i;
    int found;
    uint64_t d;
    pl_history *h;

    CHECK_OK(numbered_types(s, "b.T%zu", NT, ids));
    for (d = 1; d <= 6; d++) {
        pl_incarnation dead = dead_inc(100 + d);

        reg(s, dead, (int64_t)d);
        for (i = 0; i < 40; i++) {
            fill_sample(c, ids, NT, i);
            CHECK_OK(pl_store_append(s, &dead, (int64_t)(d * 100000 + (uint64_t)i), c, NT));
        }
    }
    reg(s, a.inc, 100);
    for (i = 0; i < 300; i++) {
        fill_sample(c, ids, NT, i);
        CHECK_OK(pl_store_append(s, &a.inc, 10000000 + i, c, NT));
    }
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK(st.used_bytes <= st.max_bytes);
    CHECK_EQ_INT(st.max_bytes, 1u << 20);
    proc_samples(s, dead_inc(101), &found);
    CHECK_EQ_INT(found, 0);
    CHECK(proc_samples(s, a.inc, &found) > 0);
    h = history(s, "b.T5", PL_SORT_NAME, 0, 1, 0, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->n_types, 1);
        if (h->n_types == 1 && h->n_times) {
            CHECK_EQ_STR(h->types[0].name, "b.T5");
            CHECK_EQ_INT(h->types[0].counts[h->n_times - 1], 5 * 7 + 299);
            CHECK_EQ_INT(h->types[0].count, 5 * 7 + 299);
        }
        pl_history_free(h);
    }
    pl_store_close(s);
    kill_child(&a);
    remove_dir(dir);
}

/* Creates n long unused names "flood.<k>.<padding>" in another process
 * (as a flooding push would through the central server, and so that this
 * handle does not count them as just created); returns the highest id. */
static uint32_t flood_names_elsewhere(pl_store *s, const char *dir, size_t n)
{
    int fds[2];
    uint32_t top = 0;
    pid_t pid;

    if (pipe(fds) != 0)
        return 0;
    pid = fork();
    if (pid == 0) {
        pl_store *c = NULL;
        char (*buf)[420] = malloc(n * sizeof *buf);
        const char **names = malloc(n * sizeof *names);
        size_t *lens = malloc(n * sizeof *lens), k;
        uint32_t *ids = malloc(n * sizeof *ids), hi = 0;
        pl_store_options opt;

        pl_store_forget(s);
        memset(&opt, 0, sizeof opt);
        opt.path = dir;
        if (!buf || !names || !lens || !ids || pl_store_open(&c, &opt) != 0)
            _exit(1);
        for (k = 0; k < n; k++) {
            snprintf(buf[k], sizeof buf[k], "flood.%zu.%0380d", k, 0);
            names[k] = buf[k];
            lens[k] = strlen(buf[k]);
        }
        if (pl_store_type_ids(c, names, lens, n, ids) != 0)
            _exit(1);
        for (k = 0; k < n; k++)
            hi = ids[k] > hi ? ids[k] : hi;
        pl_store_close(c);
        if (write(fds[1], &hi, sizeof hi) != (ssize_t)sizeof hi)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], &top, sizeof top) != (ssize_t)sizeof top)
        top = 0;
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return top;
}

/* Names that no record uses go before any history does when the name
 * tables are over their share of the byte budget: a flood of names leaves
 * a live worker's history whole, and no id is ever given out twice. */
static void test_unused_names_pruned(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_store *s = open_store(dir, 64u << 20, 0, 0, 4u << 20);
    enum { NT = 20, NS = 40 };
    uint32_t ids[NT], again[NT], top, fresh;
    pl_type_count c[NT];
    pl_store_stat st;
    int found;
    int64_t i;

    CHECK_OK(numbered_types(s, "v.T%zu", NT, ids));
    reg(s, a.inc, 100);
    for (i = 0; i < NS; i++) {
        fill_sample(c, ids, NT, i);
        CHECK_OK(pl_store_append(s, &a.inc, 10000000 + i, c, NT));
    }
    /* ~5 MB of names in a 4 MiB budget. */
    top = flood_names_elsewhere(s, dir, 6000);
    CHECK(top > ids[NT - 1]);
    CHECK_OK(pl_store_prune(s, 10000000 + NS));
    CHECK_EQ_INT(proc_samples(s, a.inc, &found), NS);
    CHECK_EQ_INT(found, 1);
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK(st.used_bytes <= st.max_bytes);
    /* The worker's names kept their ids; a flood name asked for again is
     * a new id, above every id given out before. */
    CHECK_OK(numbered_types(s, "v.T%zu", NT, again));
    CHECK(memcmp(ids, again, sizeof ids) == 0);
    fresh = type_id(s, "flood.0");
    CHECK(fresh > top);
    pl_store_close(s);
    kill_child(&a);
    remove_dir(dir);
}

/* Retention by bytes with one live incarnation far larger than the others
 * (many types, as a flooding worker pushes): it loses its own oldest
 * windows, down to its share, before a small live worker loses any. */
static void test_retention_share(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper(), b = spawn_sleeper();
    pl_store *s = open_store(dir, 64u << 20, 0, 0, 2u << 20);
    enum { SMALL = 50, BIG = 3000, NS = 200 };
    uint32_t *ids = malloc(BIG * sizeof *ids);
    pl_type_count *c = malloc(BIG * sizeof *c);
    pl_store_stat st;
    int found;
    int64_t i;

    CHECK(ids && c);
    if (!ids || !c)
        goto out;
    CHECK_OK(numbered_types(s, "t.T%zu", BIG, ids));
    reg(s, a.inc, 100);
    reg(s, b.inc, 200);
    for (i = 0; i < NS; i++) {
        fill_sample(c, ids, SMALL, i);
        CHECK_OK(pl_store_append(s, &a.inc, 10000000 + i, c, SMALL));
    }
    for (i = 0; i < NS; i++) {
        fill_sample(c, ids, BIG, i);
        CHECK_OK(pl_store_append(s, &b.inc, 20000000 + i, c, BIG));
    }
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK(st.used_bytes <= st.max_bytes);
    CHECK_EQ_INT(proc_samples(s, a.inc, &found), NS);
    CHECK(proc_samples(s, b.inc, &found) < NS);
    CHECK_EQ_INT(found, 1);
out:
    free(ids);
    free(c);
    pl_store_close(s);
    kill_child(&a);
    kill_child(&b);
    remove_dir(dir);
}

/* A tiny map and max_bytes as large as the map: appends hit MDB_MAP_FULL,
 * which is handled by dropping old data; no error escapes and the newest
 * sample stays readable. */
static void test_map_full(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_store *s = open_store(dir, 1u << 20, 0, 0, 1u << 20);
    enum { NT = 300 };
    uint32_t ids[NT];
    pl_type_count c[NT];
    int64_t i;
    int errors = 0, found;
    pl_history *h;
    pl_incarnation dead = dead_inc(55);

    CHECK_OK(numbered_types(s, "m.T%zu", NT, ids));
    reg(s, dead, 1);
    for (i = 0; i < 60; i++) {
        fill_sample(c, ids, NT, i);
        if (pl_store_append(s, &dead, 1000 + i, c, NT) != 0)
            errors++;
    }
    reg(s, a.inc, 2);
    for (i = 0; i < 1500; i++) {
        int rc;

        fill_sample(c, ids, NT, i);
        rc = pl_store_append(s, &a.inc, 100000 + i, c, NT);
        if (rc && errors++ < 3)
            fprintf(stderr, "  append %lld: %s\n", (long long)i, pl_strerror(rc));
    }
    CHECK_EQ_INT(errors, 0);
    proc_samples(s, dead, &found);
    CHECK_EQ_INT(found, 0);
    CHECK(proc_samples(s, a.inc, &found) < 1500);
    h = history(s, "m.T7", PL_SORT_NAME, 0, 1, 0, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->n_types, 1);
        if (h->n_types == 1 && h->n_times) {
            CHECK_EQ_INT(h->times[h->n_times - 1], 100000 + 1499);
            CHECK_EQ_INT(h->types[0].counts[h->n_times - 1], 7 * 7 + 1499);
        }
        pl_history_free(h);
    }
    pl_store_close(s);
    kill_child(&a);
    remove_dir(dir);
}

/* A writer SIGKILLed mid-append: every sample it reported committed is
 * readable after reopening, and appends work again. */
static void test_killed_writer(void)
{
    char *dir = make_dir();
    enum { NT = 2000 };
    int fds[2];
    pid_t pid;
    pl_incarnation child_inc;
    uint32_t committed = 0, got;
    pl_store *s;
    pl_history *h;
    int found;

    if (pipe(fds) != 0)
        exit(2);
    pid = fork();
    if (pid == 0) {
        /* The child opens its own env (never one inherited through fork). */
        pl_store *cs;
        pl_incarnation me;
        static pl_type_count c[NT];
        static uint32_t ids[NT];
        uint32_t i;
        size_t k;

        close(fds[0]);
        cs = open_store(dir, 0, 0, 0, 0);
        pl_proc_self(&me);
        reg(cs, me, 1);
        if (numbered_types(cs, "k.T%zu", NT, ids))
            _exit(3);
        if (write(fds[1], &me, sizeof me) != (ssize_t)sizeof me)
            _exit(3);
        for (i = 0;; i++) {
            for (k = 0; k < NT; k++)
                c[k] = (pl_type_count){ids[k], i + k, 8 * (i + k)};
            if (pl_store_append(cs, &me, 1000 + (int64_t)i, c, NT) != 0)
                _exit(4);
            if (write(fds[1], &i, sizeof i) != (ssize_t)sizeof i)
                _exit(5);
        }
    }
    close(fds[1]);
    if (read(fds[0], &child_inc, sizeof child_inc) != (ssize_t)sizeof child_inc)
        exit(2);
    while (committed < 120 && read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
        committed = got + 1;
    kill(pid, SIGKILL);
    while (read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
        committed = got + 1;
    waitpid(pid, NULL, 0);
    close(fds[0]);
    CHECK(committed >= 120);

    s = open_store(dir, 0, 0, 0, 0);
    got = proc_samples(s, child_inc, &found);
    CHECK(found);
    CHECK(got >= committed && got <= committed + 1);
    h = history(s, "k.T0", PL_SORT_NAME, 0, 1, 0, child_inc.pid, 0, 5000);
    if (h) {
        CHECK_EQ_INT(h->n_types, 1);
        CHECK_EQ_INT(h->n_times, got);
        if (h->n_types == 1 && h->n_times == got) {
            int64_t i;
            int bad = 0;

            for (i = 0; i < (int64_t)got; i++)
                if (h->times[i] != 1000 + i || h->types[0].counts[i] != i)
                    bad++;
            CHECK_EQ_INT(bad, 0);
        }
        pl_history_free(h);
    }
    {
        pl_incarnation me = dead_inc(999);
        uint32_t id = type_id(s, "k.After");

        reg(s, me, 5);
        append1(s, me, 5000, id, 77);
        h = history(s, "k.After", PL_SORT_NAME, 0, 1, 0, me.pid, 0, 0);
        if (h) {
            CHECK_EQ_INT(h->n_types, 1);
            if (h->n_types == 1)
                CHECK_EQ_INT(h->types[0].count, 77);
            pl_history_free(h);
        }
    }
    pl_store_close(s);
    remove_dir(dir);
}

/* Mailbox: post, take, reply (large body), result, cancel, the bound of
 * pending requests, stale requests and the sweep. */
static void test_mailbox(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_incarnation dead = dead_inc(3);
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    uint64_t t1 = 0, t2 = 0, t, tickets[PL_MAILBOX_MAX_PENDING];
    pl_buf req = PL_BUF_INIT, body = PL_BUF_INIT;
    char *big;
    size_t i, big_len = 1u << 20;
    int status = 0;

    reg(s, a.inc, 1);
    reg(s, dead, 1);
    CHECK_EQ_INT(pl_store_mailbox_post(s, &dead, "x", 1, 1000, &t), PL_ENOTFOUND);
    CHECK_EQ_INT(pl_store_mailbox_take(s, &a.inc, 1000, 5000, &t, &req), PL_ENOTFOUND);
    CHECK_OK(pl_store_mailbox_post(s, &a.inc, "GET /api/objects", 16, 1000, &t1));
    CHECK_OK(pl_store_mailbox_post(s, &a.inc, "second", 6, 1001, &t2));
    /* Tickets are random (test_remote_live.c): distinct, never 0; the
     * first posted is still the first taken (below). */
    CHECK(t1 && t2 && t2 != t1);
    CHECK_EQ_INT(pl_store_mailbox_result(s, t1, &status, &body), PL_ENOTFOUND);

    CHECK_OK(pl_store_mailbox_take(s, &a.inc, 1100, 5000, &t, &req));
    CHECK_EQ_INT(t, t1);
    CHECK_EQ_STR(pl_buf_cstr(&req), "GET /api/objects");
    big = malloc(big_len);
    for (i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    CHECK_OK(pl_store_mailbox_reply(s, t1, 200, big, big_len, 1200));
    CHECK_OK(pl_store_mailbox_result(s, t1, &status, &body));
    CHECK_EQ_INT(status, 200);
    CHECK_EQ_INT(body.len, big_len);
    CHECK(body.len == big_len && memcmp(body.data, big, big_len) == 0);
    CHECK_EQ_INT(pl_store_mailbox_result(s, t1, &status, &body), PL_ENOTFOUND);
    free(big);

    /* Cancel: the waiter gives up; a late reply is dropped. */
    pl_buf_reset(&req);
    CHECK_OK(pl_store_mailbox_take(s, &a.inc, 1300, 5000, &t, &req));
    CHECK_EQ_INT(t, t2);
    CHECK_EQ_STR(pl_buf_cstr(&req), "second");
    CHECK_OK(pl_store_mailbox_cancel(s, t2));
    CHECK_EQ_INT(pl_store_mailbox_reply(s, t2, 200, "late", 4, 1400), PL_ENOTFOUND);
    CHECK_EQ_INT(pl_store_mailbox_result(s, t2, &status, &body), PL_ENOTFOUND);
    CHECK_OK(pl_store_mailbox_cancel(s, 123456)); /* missing is fine */

    /* Bound: 32 waiting, the 33rd is refused; a cancelled one frees a slot. */
    for (i = 0; i < PL_MAILBOX_MAX_PENDING; i++)
        CHECK_OK(pl_store_mailbox_post(s, &a.inc, "r", 1, 2000, &tickets[i]));
    CHECK_EQ_INT(pl_store_mailbox_post(s, &a.inc, "r", 1, 2000, &t), PL_EBUSY);
    CHECK_OK(pl_store_mailbox_cancel(s, tickets[0]));
    CHECK_OK(pl_store_mailbox_post(s, &a.inc, "r", 1, 2000, &tickets[0]));
    CHECK_EQ_INT(pl_store_mailbox_post(s, &a.inc, "r", 1, 2000, &t), PL_EBUSY);
    {
        char large[5000];

        memset(large, 'x', sizeof large);
        CHECK_EQ_INT(pl_store_mailbox_post(s, &a.inc, large, sizeof large, 2000, &t), PL_ETOOBIG);
    }

    /* Stale requests are discarded by take, not returned. */
    pl_buf_reset(&req);
    CHECK_EQ_INT(pl_store_mailbox_take(s, &a.inc, 100000, 5000, &t, &req), PL_ENOTFOUND);
    CHECK_OK(pl_store_mailbox_post(s, &a.inc, "fresh", 5, 100000, &t1));
    CHECK_OK(pl_store_mailbox_take(s, &a.inc, 100001, 5000, &t, &req));
    CHECK_EQ_INT(t, t1);
    /* A reply nobody fetches is swept after the TTL. */
    CHECK_OK(pl_store_mailbox_reply(s, t1, 500, "orphan", 6, 100002));
    CHECK_OK(pl_store_prune(s, 100002 + 61000));
    CHECK_EQ_INT(pl_store_mailbox_result(s, t1, &status, &body), PL_ENOTFOUND);
    /* Requests waiting for a dead target are swept too, freeing the slots. */
    for (i = 0; i < PL_MAILBOX_MAX_PENDING; i++)
        CHECK_OK(pl_store_mailbox_post(s, &a.inc, "r", 1, 200000, &tickets[i]));
    CHECK_EQ_INT(pl_store_mailbox_post(s, &a.inc, "r", 1, 200000, &t), PL_EBUSY);
    CHECK_OK(pl_store_prune(s, 200000 + 61000));
    CHECK_OK(pl_store_mailbox_post(s, &a.inc, "r", 1, 300000, &t));
    kill_child(&a);
    CHECK_EQ_INT(pl_store_mailbox_post(s, &a.inc, "r", 1, 300000, &t), PL_ENOTFOUND);
    pl_buf_free(&req);
    pl_buf_free(&body);
    pl_store_close(s);
    remove_dir(dir);
}

/* Names longer than LMDB's 511-byte key limit, up to PL_TYPE_NAME_MAX. */
static void test_long_names(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    pl_incarnation me = dead_inc(11);
    char n1[PL_TYPE_NAME_MAX + 1], n2[PL_TYPE_NAME_MAX + 1], n3[PL_TYPE_NAME_MAX + 2];
    const char *names[3] = {n1, n2, n3};
    size_t lens[3];
    uint32_t ids[3] = {0, 0, 0}, again[2] = {0, 0};
    pl_history *h;

    memset(n1, 'a', PL_TYPE_NAME_MAX);
    memset(n2, 'a', PL_TYPE_NAME_MAX);
    n1[PL_TYPE_NAME_MAX] = n2[PL_TYPE_NAME_MAX] = '\0';
    n2[PL_TYPE_NAME_MAX - 1] = 'b'; /* differs only in the last byte */
    memset(n3, 'c', sizeof n3);
    lens[0] = lens[1] = PL_TYPE_NAME_MAX;
    lens[2] = PL_TYPE_NAME_MAX + 1;
    CHECK_EQ_INT(pl_store_type_ids(s, names, lens, 3, ids), PL_ETOOBIG);
    CHECK_OK(pl_store_type_ids(s, names, lens, 2, ids));
    CHECK(ids[0] && ids[1] && ids[0] != ids[1]);
    CHECK_OK(pl_store_type_ids(s, names, lens, 2, again));
    CHECK_EQ_INT(again[0], ids[0]);
    CHECK_EQ_INT(again[1], ids[1]);
    reg(s, me, 1);
    append1(s, me, 1000, ids[1], 3);
    h = history(s, "ab", PL_SORT_NAME, 0, 5, 0, me.pid, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->n_types, 1);
        if (h->n_types == 1) {
            CHECK_EQ_INT(strlen(h->types[0].name), PL_TYPE_NAME_MAX);
            CHECK(strcmp(h->types[0].name, n2) == 0);
            CHECK_EQ_INT(h->types[0].count, 3);
        }
        pl_history_free(h);
    }
    pl_store_close(s);
    remove_dir(dir);
}

/* Forced hash collisions: every name gets the same hash, yet ids stay
 * distinct and stable, and names read back correctly. */
static void test_hash_collisions(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    enum { N = 40 };
    char buf[N][16];
    const char *names[N];
    size_t lens[N], i, j;
    uint32_t ids[N], again[N];
    pl_store_stat st;
    pl_history *h;

    pl_store_test_collide_hashes(s, 1);
    for (i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "c.N%zu", i);
        names[i] = buf[i];
        lens[i] = strlen(buf[i]);
    }
    CHECK_OK(pl_store_type_ids(s, names, lens, N / 2, ids));
    CHECK_OK(pl_store_type_ids(s, names, lens, N, ids)); /* half known, half new */
    for (i = 0; i < N; i++)
        for (j = i + 1; j < N; j++)
            CHECK(ids[i] != ids[j]);
    CHECK_OK(pl_store_type_ids(s, names + 5, lens + 5, N - 5, again));
    for (i = 5; i < N; i++)
        CHECK_EQ_INT(again[i - 5], ids[i]);
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK_EQ_INT(st.types, N);
    h = history(s, NULL, PL_SORT_NAME, 0, 1000, 0, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->n_types, N);
        for (i = 0; i < h->n_types; i++) {
            uint32_t id = h->types[i].type_id;

            for (j = 0; j < N; j++)
                if (ids[j] == id)
                    CHECK_EQ_STR(h->types[i].name, names[j]);
        }
        pl_history_free(h);
    }
    pl_store_close(s);
    remove_dir(dir);
}

/* Schema check, read-only open, stat, register refresh, heartbeat. */
static void test_open_and_procs(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    pl_store_options opt;
    pl_store *ro = NULL, *bad = NULL;
    pl_incarnation me;
    pl_proc_info info, *procs = NULL;
    pl_store_stat st;
    size_t n = 0;
    struct stat sb;

    CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700);
    CHECK_OK(pl_proc_self(&me));
    CHECK_EQ_INT(me.pid, getpid());
    CHECK_EQ_INT(pl_proc_alive(&me), 1);
    me.start++;
    CHECK_EQ_INT(pl_proc_alive(&me), 0);
    me.start--;
    CHECK(pl_proc_rss() > 0);
    memset(&info, 0, sizeof info);
    pl_proc_describe(&info);
    CHECK(strstr(info.argv, "test_store") != NULL);
    info.inc = me;
    info.first_seen_ms = 100;
    info.interval_ms = 30000;
    CHECK_OK(pl_store_register(s, &info));
    CHECK_OK(pl_store_heartbeat(s, &me, 5000, 12345, NULL));
    info.first_seen_ms = 4000; /* a refresh keeps first_seen */
    CHECK_OK(pl_store_register(s, &info));
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        CHECK_EQ_INT(procs[0].first_seen_ms, 100);
        CHECK_EQ_INT(procs[0].alive, 1);
        CHECK_EQ_INT(procs[0].interval_ms, 30000);
        CHECK_EQ_INT(procs[0].ended_ms, 0);
    }
    free(procs);
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK_EQ_INT(st.map_size, 1u << 30);
    CHECK_EQ_INT(st.max_bytes, (1u << 30) / 4 * 3);
    CHECK_EQ_INT(st.max_samples, 2880);
    CHECK_EQ_INT(st.max_age_s, 7 * 86400);
    CHECK_EQ_INT(st.schema, 6);
    CHECK(st.used_bytes > 0 && st.used_bytes < (1u << 20));
    CHECK_EQ_STR(pl_store_path(s), dir);

    ro = open_read_only(dir);
    if (ro) {
        CHECK_OK(pl_store_procs(ro, &procs, &n));
        CHECK_EQ_INT(n, 1);
        free(procs);
        CHECK(pl_store_register(ro, &info) != 0);
        pl_store_close(ro);
    }
    pl_store_close(s);

    /* A store written by another schema version is refused. */
    {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        uint32_t v = 99;
        MDB_val k = {6, "schema"}, val = {4, &v};

        CHECK_OK(mdb_env_create(&env));
        mdb_env_set_maxdbs(env, 16);
        CHECK_OK(mdb_env_open(env, dir, 0, 0600));
        CHECK_OK(mdb_txn_begin(env, NULL, 0, &txn));
        CHECK_OK(mdb_dbi_open(txn, "meta", 0, &dbi));
        CHECK_OK(mdb_put(txn, dbi, &k, &val, 0));
        CHECK_OK(mdb_txn_commit(txn));
        mdb_env_close(env);
    }
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    CHECK_EQ_INT(pl_store_open(&bad, &opt), PL_ESCHEMA);
    CHECK(bad == NULL);
    remove_dir(dir);
}

/* The collector's stats ride on the heartbeat; a schema-2 store is read as
 * it is by a read-only open (stats 0) and migrated by a writable one. */
static void test_proc_stats_and_schema2(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    pl_proc_info info, *procs = NULL;
    pl_proc_stats stats = {250000, 1500000};
    pl_store_stat st;
    size_t n = 0;

    memset(&info, 0, sizeof info);
    CHECK_OK(pl_proc_self(&info.inc));
    info.interval_ms = 1000;
    info.rss = 8192;
    snprintf(info.argv, sizeof info.argv, "gunicorn app:app");
    CHECK_OK(pl_store_register(s, &info));
    CHECK_OK(pl_store_heartbeat(s, &info.inc, 5000, 4096, &stats));
    /* NULL leaves the stats as they are; a refreshing register too. */
    CHECK_OK(pl_store_heartbeat(s, &info.inc, 6000, 8192, NULL));
    CHECK_OK(pl_store_register(s, &info));
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK(n == 1 && procs[0].stats.collection_us == 250000 && procs[0].stats.gil_held_us == 1500000);
    free(procs);
    pl_store_close(s);
    rewrite_schema(dir, 2, 24); /* schema 3 appended collection_us, gil_held_us; 5 end_how, end_value */

    /* Read-only: schema 2 read as it is, the records at their old size. */
    s = open_read_only(dir);
    if (s) {
        CHECK_OK(pl_store_stat_get(s, &st));
        CHECK_EQ_INT(st.schema, 2);
        CHECK_OK(pl_store_procs(s, &procs, &n));
        CHECK(n == 1 && procs[0].stats.collection_us == 0 && procs[0].stats.gil_held_us == 0 &&
              procs[0].rss == 8192 && strcmp(procs[0].argv, "gunicorn app:app") == 0);
        free(procs);
        pl_store_close(s);
    }
    /* Writable: migrated to schema 3; the old record is updated to the new size. */
    s = open_store(dir, 0, 0, 0, 0);
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK_EQ_INT(st.schema, 6);
    stats.collection_us = 7;
    stats.gil_held_us = 1600000;
    CHECK_OK(pl_store_heartbeat(s, &info.inc, 7000, 4096, &stats));
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK(n == 1 && procs[0].stats.collection_us == 7 && procs[0].stats.gil_held_us == 1600000 &&
          procs[0].rss == 4096 && strcmp(procs[0].argv, "gunicorn app:app") == 0);
    free(procs);
    pl_store_close(s);
    remove_dir(dir);
}

/* How an incarnation ended: the parent's status is stored with the end (an
 * end the process wrote itself keeps its time), read back by every view
 * through pl_proc_end_kind; a schema-4 store reads as "no status" and is
 * migrated to 5 by a writable open. */
static void test_end_status_and_schema4(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    pl_proc_info a, b, c, *procs = NULL;
    pl_store_stat st;
    size_t n = 0;
    char text[64];
    int value = -1;

    memset(&a, 0, sizeof a);
    snprintf(a.argv, sizeof a.argv, "gunicorn app:app");
    a.interval_ms = 1000;
    b = c = a;
    a.inc = (pl_incarnation){4001, 11};
    b.inc = (pl_incarnation){4002, 12};
    c.inc = (pl_incarnation){4003, 13};
    a.first_seen_ms = 1000;
    b.first_seen_ms = 1001;
    c.first_seen_ms = 1002;
    CHECK_OK(pl_store_register(s, &a));
    CHECK_OK(pl_store_register(s, &b));
    CHECK_OK(pl_store_register(s, &c));
    /* a: killed by SIGKILL; b: wrote its own end, then its parent saw exit 5; c: nothing. */
    CHECK_OK(pl_store_end_status(s, &a.inc, 5000, PL_END_KILLED, 9));
    CHECK_OK(pl_store_end(s, &b.inc, 5000));
    CHECK_OK(pl_store_end_status(s, &b.inc, 6000, PL_END_EXITED, 5));
    CHECK_EQ_INT(pl_store_end_status(s, &b.inc, 6000, 7, 0), PL_EBADARG);
    CHECK_EQ_INT(pl_store_end_status(s, &(pl_incarnation){4009, 1}, 6000, PL_END_CLEAN, 0), PL_ENOTFOUND);
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_EQ_INT(procs[0].ended_ms, 5000);
        CHECK_EQ_INT(pl_proc_end_kind(&procs[0], &value), PL_END_KILLED);
        CHECK_EQ_INT(value, 9);
        CHECK_EQ_STR(pl_proc_end_text(&procs[0], text, sizeof text), "killed (SIGKILL)");
        CHECK_EQ_INT(procs[1].ended_ms, 5000);
        CHECK_EQ_INT(pl_proc_end_kind(&procs[1], &value), PL_END_EXITED);
        CHECK_EQ_STR(pl_proc_end_text(&procs[1], text, sizeof text), "exited 5");
        /* Not running (no such process), no end written: killed, signal unknown. */
        CHECK_EQ_INT(pl_proc_end_kind(&procs[2], &value), PL_END_KILLED);
        CHECK_EQ_INT(value, 0);
        CHECK_EQ_STR(pl_proc_end_text(&procs[2], text, sizeof text), "killed");
    }
    free(procs);
    /* A refreshing register (a respawn reusing the record) clears the status. */
    CHECK_OK(pl_store_register(s, &a));
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK(n == 3 && procs[0].end_how == PL_END_NONE && procs[0].ended_ms == 0);
    free(procs);
    pl_store_close(s);

    rewrite_schema(dir, 4, 8); /* schema 5 appended end_how, end_value */
    s = open_read_only(dir);
    if (s) {
        CHECK_OK(pl_store_stat_get(s, &st));
        CHECK_EQ_INT(st.schema, 4);
        CHECK_OK(pl_store_procs(s, &procs, &n));
        CHECK(n == 3 && procs[1].end_how == PL_END_NONE && procs[1].ended_ms == 5000);
        if (n == 3)
            CHECK_EQ_STR(pl_proc_end_text(&procs[1], text, sizeof text), "ended cleanly");
        free(procs);
        pl_store_close(s);
    }
    s = open_store(dir, 0, 0, 0, 0);
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK_EQ_INT(st.schema, 6);
    CHECK_OK(pl_store_end_status(s, &c.inc, 7000, PL_END_KILLED, 64));
    CHECK_OK(pl_store_procs(s, &procs, &n));
    if (n == 3)
        CHECK_EQ_STR(pl_proc_end_text(&procs[2], text, sizeof text), "killed (signal 64)");
    free(procs);
    pl_store_close(s);
    remove_dir(dir);
}

/* The zero-config key: this test's parent runs another program, so the
 * root is this process; a forked child (same executable) finds this
 * process. */
static void test_server_root(void)
{
    pl_incarnation root, me;
    int fds[2];
    pid_t pid;

    CHECK_OK(pl_proc_server_root(&root));
    CHECK_OK(pl_proc_self(&me));
    CHECK_EQ_INT(root.pid, me.pid);
    CHECK_EQ_INT(root.start, me.start);
    if (pipe(fds) != 0)
        exit(2);
    pid = fork();
    if (pid == 0) {
        pl_incarnation r;

        close(fds[0]);
        if (pl_proc_server_root(&r) != 0)
            _exit(1);
        if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    memset(&root, 0, sizeof root);
    CHECK(read(fds[0], &root, sizeof root) == (ssize_t)sizeof root);
    close(fds[0]);
    waitpid(pid, NULL, 0);
    CHECK_EQ_INT(root.pid, me.pid);
    CHECK_EQ_INT(root.start, me.start);
}

/* Two processes with different map sizes: a child opens the store with a
 * larger map and writes beyond the parent's map; the parent, holding its
 * smaller env open, adopts the grown map (MDB_MAP_RESIZED) and reads and
 * writes on. */
static void test_map_resized(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 4u << 20, 0, 0, 1ull << 40);
    enum { NT = 2000, NI = 8, NS = 30 };
    pl_store_stat st;
    pid_t pid, parent = getpid();
    int status = 0, found;
    pl_history *h;

    pid = fork();
    if (pid == 0) {
        static pl_type_count c[NT];
        size_t k;
        uint32_t ids[NT];
        pl_store *cs = open_store(dir, 64u << 20, 0, 0, 1ull << 40);
        int i, j, bad = 0;

        bad |= numbered_types(cs, "z.T%zu", NT, ids);
        for (j = 0; j < NI; j++) {
            pl_incarnation inc = {(uint32_t)parent, 500 + (uint64_t)j};

            reg(cs, inc, 10 + j);
            /* At most 32 samples: they stay in the log, 36 KB each (bytes
             * of 2^40 take 8 bytes an entry). */
            for (i = 0; i < NS; i++) {
                for (k = 0; k < NT; k++)
                    c[k] = (pl_type_count){ids[k], (uint64_t)(i + j), 1ull << 40};
                bad |= pl_store_append(cs, &inc, 1000 + i, c, NT);
            }
        }
        pl_store_close(cs);
        _exit(bad ? 1 : 0);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK(st.map_size >= (64u << 20));
    CHECK(st.used_bytes > (4u << 20));
    CHECK_EQ_INT(proc_samples(s, dead_inc(507), &found), NS);
    CHECK(found);
    h = history(s, "z.T1999", PL_SORT_NAME, 0, 1, 0, (uint32_t)getpid(), 1, 0);
    if (h) {
        CHECK_EQ_INT(h->n_types, 1);
        if (h->n_types == 1) {
            CHECK_EQ_INT(h->types[0].n_lines, NI);
            CHECK_EQ_INT(h->types[0].count, NS - 1 + NI - 1); /* the latest incarnation's */
        }
        pl_history_free(h);
    }
    {
        pl_incarnation me = dead_inc(900);

        reg(s, me, 100);
        append1(s, me, 5000, type_id(s, "z.After"), 9);
        CHECK_EQ_INT(proc_samples(s, me, &found), 1);
    }
    pl_store_close(s);
    remove_dir(dir);
}

/* Several processes append at once, each through compaction, level-2
 * merges and retention (max_samples 150), while the parent queries: every
 * worker's stored values are exactly its own afterwards. */
static void test_concurrent_writers(void)
{
    char *dir = make_dir();
    enum { NW = 3, NT = 500, NS = 300, MAXS = 150 };
    pid_t pids[NW];
    pl_incarnation incs[NW];
    int fds[2], status, w, queries = 0;
    pl_store *s;
    pl_history *h;

    reg_interval_ms = 10; /* the children sample every 10 ms */

    if (pipe(fds) != 0)
        exit(2);
    s = open_store(dir, 0, MAXS, 0, 0);
    (void)type_id(s, "w.T0"); /* the store exists before the workers open it */
    pl_store_close(s);
    for (w = 0; w < NW; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            static pl_type_count c[NT];
            size_t k;
            uint32_t ids[NT];
            pl_incarnation me;
            pl_store *cs;
            int i, bad = 0;

            close(fds[0]);
            cs = open_store(dir, 0, MAXS, 0, 0);
            pl_proc_self(&me);
            reg(cs, me, 1);
            if (write(fds[1], &me, sizeof me) != (ssize_t)sizeof me)
                _exit(3);
            bad |= numbered_types(cs, "w.T%zu", NT, ids) != 0;
            for (i = 0; i < NS; i++) {
                for (k = 0; k < NT; k++)
                    c[k] = (pl_type_count){ids[k], (uint64_t)(1000 * w + i + (int)k % 3),
                                           (uint64_t)i};
                bad |= pl_store_append(cs, &me, 10000 + i * 10, c, NT) != 0;
            }
            pl_store_close(cs);
            _exit(bad ? 1 : 0);
        }
    }
    close(fds[1]);
    /* The children announce themselves in the order they get there, not in
     * fork order: put each incarnation at its worker's index by pid, since
     * the checks below expect worker w's own counts. */
    for (w = 0; w < NW; w++) {
        pl_incarnation got;
        int k;

        if (read(fds[0], &got, sizeof got) != (ssize_t)sizeof got)
            exit(2);
        for (k = 0; k < NW && (pid_t)got.pid != pids[k]; k++)
            ;
        if (k == NW)
            exit(2);
        incs[k] = got;
    }
    close(fds[0]);
    s = open_store(dir, 0, MAXS, 0, 0);
    /* Query while they write: must never fail. */
    for (;;) {
        int running = 0;

        for (w = 0; w < NW; w++)
            running |= pids[w] > 0 && waitpid(pids[w], &status, WNOHANG) == 0;
        h = history(s, "w.T1", PL_SORT_NAME, 0, 5, 0, 0, 1, 0);
        pl_history_free(h);
        queries++;
        if (!running)
            break;
    }
    for (w = 0; w < NW; w++) {
        status = 0;
        waitpid(pids[w], &status, 0);
    }
    CHECK(queries > 0);
    for (w = 0; w < NW; w++) {
        int found;
        uint32_t n = proc_samples(s, incs[w], &found);

        CHECK(found);
        CHECK(n <= MAXS && n >= MAXS - 127);
        h = history(s, "w.T7", PL_SORT_NAME, 0, 1, 0, incs[w].pid, 0, 5000);
        if (h) {
            CHECK_EQ_INT(h->n_times, n);
            if (h->n_types == 1 && h->n_times == n) {
                int64_t i, first = NS - (int64_t)n;
                int bad = 0;

                for (i = 0; i < (int64_t)n; i++)
                    if (h->types[0].counts[i] != 1000 * w + first + i + 1 ||
                        h->times[i] != 10000 + (first + i) * 10)
                        bad++;
                CHECK_EQ_INT(bad, 0);
            }
            pl_history_free(h);
        }
    }
    pl_store_close(s);
    remove_dir(dir);
}

struct thread_arg {
    pl_store *s;
    pl_incarnation inc;
    uint32_t id;
    int errors;
};

static void *append_thread(void *p)
{
    struct thread_arg *a = p;
    int i;

    for (i = 0; i < 200; i++) {
        pl_type_count c = {a->id, (uint64_t)i, 1};

        a->errors += pl_store_append(a->s, &a->inc, 1000 + i, &c, 1) != 0;
    }
    return NULL;
}

static pl_history *history_window(pl_store *s, uint32_t pid, int64_t since, int64_t until)
{
    pl_history_query hq;
    pl_history *h = NULL;

    memset(&hq, 0, sizeof hq);
    hq.sort = PL_SORT_GROWTH;
    hq.limit = 10;
    hq.pid = pid;
    hq.since_ms = since;
    hq.until_ms = until;
    hq.now_ms = pl_now_ms();
    CHECK_OK(pl_store_history(s, &hq, &h));
    return h;
}

/* since/until on a dead store with known samples (interval 1 s): A samples
 * at 1..40 s (count = seconds; its first 32 samples compacted into a
 * window), B at 1.5..30.5 s (count 100 + i), then both die without a clean
 * end. Counts at `until` come from the incarnations alive then (B stops 1.5
 * intervals after its last sample), growth from their counts at `since`. */
static void test_as_of(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    pl_incarnation a = dead_inc(11), b = dead_inc(12);
    uint32_t leak, flat;
    pl_history *h;
    int i;

    reg_interval_ms = 1000;
    reg(s, a, 1000);
    reg(s, b, 1500);
    reg_interval_ms = 1;
    leak = type_id(s, "asof.Leak");
    flat = type_id(s, "asof.Flat");
    for (i = 1; i <= 40; i++) {
        pl_type_count c[2] = {{leak, (uint64_t)i, (uint64_t)i * 16}, {flat, 50, 800}};

        CHECK_OK(pl_store_append(s, &a, i * 1000, c, 2));
        if (i <= 30)
            append1(s, b, i * 1000 + 500, leak, 100 + (uint64_t)i - 1);
    }

    /* Default: as of the last moment an incarnation was alive (A's 40 s). */
    h = history_window(s, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->live, 0);
        CHECK_EQ_INT(h->as_of_ms, 40000);
        CHECK_EQ_INT(h->n_types, 2);
        if (h->n_types == 2) {
            CHECK_EQ_STR(h->types[0].name, "asof.Leak");
            CHECK_EQ_INT(h->types[0].count, 40);
            CHECK_EQ_INT(h->types[0].growth, 39);
            CHECK_EQ_INT(h->types[1].growth, 0);
            CHECK_EQ_INT(h->types[1].count, 50);
        }
        CHECK_EQ_INT(h->times[h->n_times - 1], 40000);
        pl_history_free(h);
    }
    /* A window in the past: both alive; A's samples there are compacted. */
    h = history_window(s, 0, 10000, 20000);
    if (h) {
        int64_t times[11], merged[11];

        for (i = 0; i < 11; i++) {
            times[i] = 10000 + i * 1000;
            merged[i] = (10 + i) + (100 + 8 + i); /* A at t; B at t - 500 */
        }
        CHECK_EQ_INT(h->live, 0);
        CHECK_EQ_INT(h->as_of_ms, 20000);
        CHECK_EQ_INT(h->since_ms, 10000);
        CHECK_EQ_INT(h->n_times, 11);
        CHECK_EQ_INT(h->n_types, 2);
        if (h->n_types == 2 && h->n_times == 11) {
            CHECK_EQ_STR(h->types[0].name, "asof.Leak");
            CHECK_EQ_INT(h->types[0].count, 138);
            CHECK_EQ_INT(h->types[0].bytes, 20 * 16 + 118 * 16);
            CHECK_EQ_INT(h->types[0].growth, 20);
            CHECK(series_eq(h->times, times, 11, "times"));
            CHECK(series_eq(h->types[0].counts, merged, 11, "merged"));
        }
        pl_history_free(h);
    }
    /* At 35 s B has been dead for more than 1.5 intervals: A alone. */
    h = history_window(s, 0, 0, 35000);
    if (h) {
        if (h->n_types == 2) {
            CHECK_EQ_INT(h->types[0].count, 35);
            CHECK_EQ_INT(h->types[0].growth, 34);
            CHECK_EQ_INT(h->types[0].counts[h->n_times - 1], 35);
        }
        pl_history_free(h);
    }
    /* since before everything: growth from each one's first sample. */
    h = history_window(s, 0, 1, 20000);
    if (h) {
        if (h->n_types == 2)
            CHECK_EQ_INT(h->types[0].growth, 19 + 18);
        pl_history_free(h);
    }
    /* pid: its latest incarnation with a sample by until (B). */
    h = history_window(s, (uint32_t)getpid(), 0, 20000);
    if (h) {
        if (h->n_types == 2)
            CHECK_EQ_INT(find_type(h, "asof.Leak")->count, 118);
        pl_history_free(h);
    }
    /* Before the first sample: nothing counted. */
    h = history_window(s, 0, 0, 500);
    if (h) {
        if (h->n_types == 2)
            CHECK_EQ_INT(h->types[0].count + h->types[1].count, 0);
        pl_history_free(h);
    }
    {
        pl_history_query hq;
        pl_history *none = NULL;

        memset(&hq, 0, sizeof hq);
        hq.limit = 10;
        hq.since_ms = 20000;
        hq.until_ms = 10000;
        CHECK_EQ_INT(pl_store_history(s, &hq, &none), PL_EBADARG);
        hq.since_ms = -1;
        hq.until_ms = 0;
        CHECK_EQ_INT(pl_store_history(s, &hq, &none), PL_EBADARG);
    }
    pl_store_close(s);
    remove_dir(dir);
}

/* One handle shared by two threads (MDB_NOTLS): a writer and a reader. */
static void test_threads(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    struct thread_arg a;
    pthread_t t;
    int i, errors = 0;

    a.s = s;
    a.inc = dead_inc(77);
    a.errors = 0;
    reg(s, a.inc, 1);
    a.id = type_id(s, "t.T");
    CHECK(pthread_create(&t, NULL, append_thread, &a) == 0);
    for (i = 0; i < 50; i++) {
        pl_history_query q;
        pl_history *h = NULL;

        memset(&q, 0, sizeof q);
        q.limit = 5;
        errors += pl_store_history(s, &q, &h) != 0;
        pl_history_free(h);
    }
    pthread_join(t, NULL);
    CHECK_EQ_INT(errors, 0);
    CHECK_EQ_INT(a.errors, 0);
    {
        int found;

        CHECK_EQ_INT(proc_samples(s, a.inc, &found), 200);
    }
    pl_store_close(s);
    remove_dir(dir);
}

/* Counts and bytes that do not fit 32 bits (the log's narrow entries mark
 * them and keep the full values in wide parts): exact through the log,
 * level-1 and level-2 windows, the first-sample snapshot and the sort keys. */
static void test_wide_values(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    const char *names[3] = {"w.Huge", "w.Edge", "w.Small"};
    size_t lens[3] = {6, 6, 7};
    uint32_t ids[3];
    const uint64_t base = 5000000000ull, edge = 0xffffffffull;
    pl_history *h;
    int64_t i;
    enum { NS = 200 };

    reg(s, a.inc, 0);
    CHECK_OK(pl_store_type_ids(s, names, lens, 3, ids));
    for (i = 0; i < NS; i++) {
        pl_type_count c[3] = {{ids[0], base + (uint64_t)i, base * 100 + (uint64_t)i},
                              {ids[1], edge - 1 + (uint64_t)(i % 3), 7},
                              {ids[2], (uint64_t)i, 16 * (uint64_t)i}};

        CHECK_OK(pl_store_append(s, &a.inc, 1000 + i, c, 3));
    }
    h = history(s, NULL, PL_SORT_NAME, 0, 3, 0, 0, 0, 5000);
    if (h) {
        const pl_history_type *huge = find_type(h, "w.Huge"), *e = find_type(h, "w.Edge");
        const pl_history_type *small = find_type(h, "w.Small");
        int bad = 0;

        CHECK_EQ_INT(h->n_times, NS);
        CHECK(huge && e && small);
        for (i = 0; huge && e && small && h->n_times == NS && i < NS; i++) {
            bad += huge->counts[i] != (int64_t)(base + (uint64_t)i);
            bad += huge->bytes_series[i] != (int64_t)(base * 100 + (uint64_t)i);
            bad += e->counts[i] != (int64_t)(edge - 1 + (uint64_t)(i % 3));
            bad += small->counts[i] != i;
        }
        CHECK_EQ_INT(bad, 0);
        if (huge && e) {
            CHECK_EQ_INT(huge->count, base + NS - 1);
            CHECK_EQ_INT(huge->bytes, base * 100 + NS - 1);
            CHECK_EQ_INT(huge->growth, NS - 1);
            CHECK_EQ_INT(e->growth, (NS - 1) % 3);
        }
        pl_history_free(h);
    }
    pl_store_close(s);
    kill_child(&a);
    remove_dir(dir);
}

/* Schema 4's layout: a store as an older pyloot wrote it (schema 3: log and
 * snapshot values of 12-byte entries, wide parts for counts of 2^32 and
 * more; chunk tables chunks and chunks2 keyed group first) is read as it is
 * by a read-only open and migrated by a writable one (packed values, chunk
 * keys inc first in ichunks and ichunks2); both answer exactly what was
 * appended: log samples, level-1 and level-2 windows, the snapshot. */
enum { PK_NT = 300, PK_NS = 170 };

static uint64_t pk_count(size_t k, int64_t i)
{
    if (k == 0)
        return 5000000000ull + (uint64_t)i; /* wide in schema 3 */
    if (k == 5 && i % 2)
        return 0; /* absent from odd samples */
    return k * 3 + (uint64_t)i * (k % 4 == 0);
}

static int pk_check(pl_store *s, int64_t ns)
{
    pl_history *h = history(s, NULL, PL_SORT_NAME, 0, 1000, 0, 0, 0, 5000);
    int bad = 0;
    size_t t;
    int64_t i;

    if (!h)
        return 1;
    bad += h->n_types != PK_NT || h->n_times != (size_t)ns;
    for (t = 0; !bad && t < h->n_types; t++) {
        const pl_history_type *ty = &h->types[t];
        size_t k = (size_t)atoi(ty->name + 3); /* p.TNNN */

        for (i = 0; i < ns; i++) {
            bad += ty->counts[i] != (int64_t)pk_count(k, i);
            bad += ty->bytes_series[i] != (int64_t)pk_count(k, i) * 48;
        }
        bad += ty->count != pk_count(k, ns - 1);
        bad += ty->growth != (int64_t)(pk_count(k, ns - 1) - pk_count(k, 0));
    }
    pl_history_free(h);
    return bad;
}

/* 1 when the closed store at dir has schema 4's layout: every log and
 * snapshot value packed (header, whole entries), no wide part, no table
 * chunks or chunks2, and ichunks and ichunks2 keyed by `pid` first. */
static int pk_layout4(const char *dir, uint32_t pid)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    const char *dbs[2] = {"log", "snap"};
    int ok = 1, seen = 0;

    CHECK_OK(mdb_env_create(&env));
    mdb_env_set_maxdbs(env, 32);
    CHECK_OK(mdb_env_open(env, dir, MDB_RDONLY, 0600));
    CHECK_OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
    for (int d = 0; d < 2; d++) {
        CHECK_OK(mdb_dbi_open(txn, dbs[d], 0, &dbi));
        CHECK_OK(mdb_cursor_open(txn, dbi, &cur));
        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            const uint8_t *p = v.mv_data, *kp = k.mv_data;
            size_t esize;

            if (v.mv_size < 1 || (p[0] & 0xc0) || (p[0] & 3) == 3 || kp[k.mv_size - 4] == 0xff) {
                ok = 0;
                continue;
            }
            esize = (1u << (p[0] & 3)) + (1u << ((p[0] >> 2) & 3)) + (1u << ((p[0] >> 4) & 3));
            ok &= (v.mv_size - 1) % esize == 0;
            seen++;
        }
        mdb_cursor_close(cur);
    }
    for (int d = 0; d < 2; d++) {
        ok &= mdb_dbi_open(txn, d ? "chunks2" : "chunks", 0, &dbi) == MDB_NOTFOUND;
        if (mdb_dbi_open(txn, d ? "ichunks2" : "ichunks", 0, &dbi) != 0) {
            ok = 0;
            continue;
        }
        CHECK_OK(mdb_cursor_open(txn, dbi, &cur));
        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            const uint8_t *kp = k.mv_data;

            ok &= k.mv_size == 25 && ((uint32_t)kp[0] << 24 | (uint32_t)kp[1] << 16 | kp[2] << 8 | kp[3]) == pid;
            seen++;
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return ok && seen > 0;
}

static void test_log_packing(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    static pl_type_count c[PK_NT];
    size_t k, n;
    uint32_t ids[PK_NT];
    pl_store_stat st;
    int64_t i;

    pl_store_test_schema(s, 3);
    reg(s, a.inc, 0);
    CHECK_OK(numbered_types(s, "p.T%03zu", PK_NT, ids));
    /* 170 samples: a level-2 window (128), a level-1 one (32; the first
     * window also gives the snapshot), 10 in the log. */
    for (i = 0; i < PK_NS; i++) {
        for (k = 0, n = 0; k < PK_NT; k++)
            if (pk_count(k, i))
                c[n++] = (pl_type_count){ids[k], pk_count(k, i), pk_count(k, i) * 48};
        CHECK_OK(pl_store_append(s, &a.inc, 1000 + i, c, n));
    }
    CHECK_EQ_INT(pk_check(s, PK_NS), 0);
    pl_store_close(s);
    rewrite_schema(dir, 3, 0);
    CHECK(!pk_layout4(dir, a.inc.pid));

    /* Read-only: the old values read as they are. */
    s = open_read_only(dir);
    if (s) {
        CHECK_OK(pl_store_stat_get(s, &st));
        CHECK_EQ_INT(st.schema, 3);
        CHECK_EQ_INT(pk_check(s, PK_NS), 0);
        pl_store_close(s);
    }
    CHECK(!pk_layout4(dir, a.inc.pid));

    /* Writable: every value rewritten packed; the same answers, and on. */
    s = open_store(dir, 0, 0, 0, 0);
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK_EQ_INT(st.schema, 6);
    CHECK_EQ_INT(pk_check(s, PK_NS), 0);
    for (i = PK_NS; i < PK_NS + 30; i++) {
        for (k = 0, n = 0; k < PK_NT; k++)
            if (pk_count(k, i))
                c[n++] = (pl_type_count){ids[k], pk_count(k, i), pk_count(k, i) * 48};
        CHECK_OK(pl_store_append(s, &a.inc, 1000 + i, c, n));
    }
    CHECK_EQ_INT(pk_check(s, PK_NS + 30), 0);
    pl_store_close(s);
    CHECK(pk_layout4(dir, a.inc.pid));
    kill_child(&a);
    remove_dir(dir);
}

/* A migration to schema 4 needs room for a second copy of the chunks until
 * it commits: an old store that fills most of its map is migrated by a
 * writable open all the same (the map grows), nothing lost. */
static void test_migration_grows_map(void)
{
    char *dir = make_dir();
    struct child a = spawn_sleeper();
    const uint64_t map = 2u << 20;
    pl_store *s = open_store(dir, map, 0, 0, map);
    enum { NT = 200 };
    static pl_type_count c[NT];
    size_t k;
    uint32_t ids[NT];
    pl_store_stat st;
    pl_history *h;
    int64_t i = 0;

    pl_store_test_schema(s, 3);
    reg(s, a.inc, 0);
    CHECK_OK(numbered_types(s, "g.T%03zu", NT, ids));
    /* Noisy counts, so that chunks are large: until the store uses half its map. */
    do {
        for (k = 0; k < NT; k++)
            c[k] = (pl_type_count){ids[k], (uint64_t)((i * 7919 + (int64_t)k * 104729) % 100003) + 1, 1ull << 40};
        CHECK_OK(pl_store_append(s, &a.inc, 1000 + i, c, NT));
        CHECK_OK(pl_store_stat_get(s, &st));
    } while (++i < 20000 && st.used_bytes < map / 2);
    CHECK(st.used_bytes >= map / 2);
    pl_store_close(s);
    rewrite_schema(dir, 3, 0);

    s = open_store(dir, map, 0, 0, map);
    CHECK_OK(pl_store_stat_get(s, &st));
    CHECK_EQ_INT(st.schema, 6);
    CHECK(st.map_size > map);
    h = history(s, "g.T007", PL_SORT_NAME, 0, 1, 0, 0, 0, 0);
    if (h) {
        CHECK_EQ_INT(h->n_types, 1);
        if (h->n_types == 1)
            CHECK_EQ_INT(h->types[0].count, (uint64_t)(((i - 1) * 7919 + 7 * 104729) % 100003) + 1);
        pl_history_free(h);
    }
    pl_store_close(s);
    kill_child(&a);
    remove_dir(dir);
}

/* Worker churn: 20 short-lived incarnations, each alive for a stretch of
 * time. The merged line sums only those running at each slot (a dead one
 * counts for 1.5 intervals after its last sample, 75 ms here, never
 * overlapping the next one, which starts 50 ms after that). */
static void test_churn(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir, 0, 0, 0, 0);
    enum { NI = 20 };
    uint32_t id;
    int j;
    pl_history *h;

    int pass;

    id = type_id(s, "c.Leak");
    for (j = 0; j < NI; j++) {
        pl_incarnation inc = dead_inc(1000 + (uint64_t)j);

        reg_interval_ms = 50;
        reg(s, inc, 10 + j);
        reg_interval_ms = 1;
        /* incarnation j samples at 100j+10 and 100j+60: one at a time. */
        append1(s, inc, 100 * j + 10, id, 1);
        append1(s, inc, 100 * j + 60, id, 2);
    }
    /* The second pass runs after retention moved the dead incarnations'
     * logs into partial windows: nothing visible may change. */
    for (pass = 0; pass < 2; pass++) {
    if (pass)
        CHECK_OK(pl_store_prune(s, 100 * NI));
    h = history(s, NULL, PL_SORT_NAME, 0, 1, 0, 0, 1, 0);
    if (h) {
        int bad = 0;
        size_t i;

        CHECK_EQ_INT(h->n_times, 2 * NI);
        CHECK_EQ_INT(h->n_types, 1);
        for (i = 0; i < h->n_times && h->n_types == 1; i++) {
            /* slots every 50 ms, then the last moment one was alive */
            bad += h->times[i] != (int64_t)(i + 1 < h->n_times ? 50 * (i + 1) : 100 * NI - 40);
            bad += h->types[0].counts[i] != (int64_t)(i % 2 ? 2 : 1);
        }
        CHECK_EQ_INT(bad, 0);
        if (h->n_types == 1)
            CHECK_EQ_INT(h->types[0].n_lines, NI);
        pl_history_free(h);
    }
    h = history(s, NULL, PL_SORT_NAME, 0, 1, 0, (uint32_t)getpid(), 0, 0);
    if (h) {
        if (h->n_types == 1) {
            CHECK_EQ_INT(h->types[0].count, 2);  /* the latest incarnation's last sample */
            CHECK_EQ_INT(h->types[0].growth, 1); /* 2 - its first sample (1) */
        }
        pl_history_free(h);
    }
    }
    pl_store_close(s);
    /* Each dead incarnation now has one log sample and one partial window. */
    {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi log, windows;
        MDB_stat st_log, st_win;

        CHECK_OK(mdb_env_create(&env));
        mdb_env_set_maxdbs(env, 16);
        CHECK_OK(mdb_env_open(env, dir, MDB_RDONLY, 0600));
        CHECK_OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
        CHECK_OK(mdb_dbi_open(txn, "log", 0, &log));
        CHECK_OK(mdb_dbi_open(txn, "windows", 0, &windows));
        CHECK_OK(mdb_stat(txn, log, &st_log));
        CHECK_OK(mdb_stat(txn, windows, &st_win));
        CHECK_EQ_INT(st_log.ms_entries, NI);
        CHECK_EQ_INT(st_win.ms_entries, NI);
        mdb_txn_abort(txn);
        mdb_env_close(env);
    }
    remove_dir(dir);
}

int main(void)
{
    RUN(test_open_and_procs);
    RUN(test_server_root);
    RUN(test_proc_stats_and_schema2);
    RUN(test_end_status_and_schema4);
    RUN(test_merge);
    RUN(test_slots);
    RUN(test_churn);
    RUN(test_query);
    RUN(test_compaction);
    RUN(test_wide_values);
    RUN(test_log_packing);
    RUN(test_migration_grows_map);
    RUN(test_long_names);
    RUN(test_hash_collisions);
    RUN(test_mailbox);
    RUN(test_retention_samples);
    RUN(test_retention_age);
    RUN(test_retention_bytes);
    RUN(test_unused_names_pruned);
    RUN(test_retention_share);
    RUN(test_map_full);
    RUN(test_map_resized);
    RUN(test_killed_writer);
    RUN(test_concurrent_writers);
    reg_interval_ms = 1;
    RUN(test_as_of);
    RUN(test_threads);
    return TEST_EXIT();
}
