/* Store benchmarks (DESIGN.md §5), not part of ctest:
 *
 *   1. pl_store_append of one sample of 5,000 types: median and p99 per
 *      call, the compaction calls on their own, and the amortized cost.
 *      Goal: <= 2 ms per call.
 *   2. pl_store_history, merged, 50 types per page, sort=growth (and the
 *      trends of the page, and trend=growing over every type), over
 *      8 live incarnations x 2,880 samples x 5,000 types. Goal: <= 30 ms.
 *
 * Baselines measured in the same run make the figures comparable across
 * machines: for appends, the same sample written type-major (one mdb_put
 * per type, key type+incarnation+time, one transaction); for history, a
 * plain LMDB cursor scan over as many stored values as the page reads.
 *
 * Runs in a fresh directory under /tmp (removed at the end); building the
 * 8 x 2,880 x 5,000 store takes most of the time (about a minute on a
 * 2-core VM; the whole run stays under 3 minutes).
 * Usage: bench_store [--quick] [--keep] [--churn]
 *   --quick  8 x 300 samples, for a smoke run
 *   --keep   leave the store directory in place and print its path
 *   --churn  only the worker-churn scenario: 500 dead incarnations of 20
 *            samples plus 8 live ones of 300, 5,000 types (about a minute)
 *   --fleet  only the fleet scenario: 100 hosts x 8 pushed workers, 500
 *            types, 24 samples (all in the log) and 40 (compacted once);
 *            the merged page against the page of one host's 8 workers
 *            in the same store (about a minute)
 *   --guard  only the cost of the checks made before each call (damage at
 *            run time, docs/store.md): a store-wide stat, an append of
 *            5,000 types and a history page, each timed (thread CPU) with
 *            the checks on and off, in alternating rounds (about a minute)
 * PYLOOT_BENCH_REUSE=<dir> runs only the history queries on a kept store
 * (with --fleet: on a kept fleet store, within 30 minutes of its build). */
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/store.h"
#include "pyloot/trend.h"

#define NTYPES 5000
#define NINCS 8
#define INTERVAL_MS 30000

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: excludes waiting for fsync and for a CPU on a
 * loaded machine, so it is comparable across runs. */
static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Anonymous resident memory of this process (RssAnon, KiB): the heap,
 * including the dirty-page buffers LMDB keeps for reuse, not the map. */
static long rss_anon_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    size_t i;

    qsort(v, n, sizeof *v, cmp_double);
    i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_store: %s failed: %s\n", what, pl_strerror(rc));
    exit(1);
}

/* Deterministic xorshift so every run writes the same data. */
static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A workload shaped like a real heap: every type present, a quarter of them
 * moving by a few objects per sample, 50 leaking steadily. */
struct workload {
    uint32_t ids[NTYPES];
    uint64_t count[NTYPES];
    uint64_t size[NTYPES];
};

static void workload_init(struct workload *w, const uint32_t *ids)
{
    size_t k;

    for (k = 0; k < NTYPES; k++) {
        w->ids[k] = ids[k];
        w->count[k] = 5 + (k * 37) % 2000;
        w->size[k] = 16 + (k % 50) * 8;
    }
}

static void workload_step(struct workload *w, pl_type_count *out)
{
    size_t k;

    for (k = 0; k < NTYPES; k++) {
        if (k % 100 == 7) {
            w->count[k] += 1 + k % 5;
        } else if (rnd() % 4 == 0) {
            int64_t d = (int64_t)(rnd() % 7) - 3;

            if ((int64_t)w->count[k] + d >= 0)
                w->count[k] = (uint64_t)((int64_t)w->count[k] + d);
        }
        out[k].type_id = w->ids[k];
        out[k].count = w->count[k];
        out[k].bytes = w->count[k] * w->size[k];
    }
}

static void make_types(pl_store *s, uint32_t *ids)
{
    static char buf[NTYPES][48];
    const char *names[NTYPES];
    size_t lens[NTYPES], k;
    int rc;

    for (k = 0; k < NTYPES; k++) {
        snprintf(buf[k], sizeof buf[k], "app.module%zu.Type%zu", k % 97, k);
        names[k] = buf[k];
        lens[k] = strlen(buf[k]);
    }
    if ((rc = pl_store_type_ids(s, names, lens, NTYPES, ids)))
        die("pl_store_type_ids", rc);
}

static pl_store *open_at(const char *dir)
{
    pl_store_options opt;
    pl_store *s = NULL;
    int rc;

    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    if ((rc = pl_store_open(&s, &opt)))
        die("pl_store_open", rc);
    return s;
}

static void reg(pl_store *s, pl_incarnation inc)
{
    pl_proc_info info;
    int rc;

    memset(&info, 0, sizeof info);
    info.inc = inc;
    pl_proc_describe(&info);
    info.interval_ms = INTERVAL_MS;
    info.first_seen_ms = 1;
    info.last_seen_ms = 1;
    if ((rc = pl_store_register(s, &info)))
        die("pl_store_register", rc);
}

/* A live incarnation: a child sleeping until killed. */
static pid_t spawn_sleeper(pl_incarnation *inc)
{
    int fds[2];
    pid_t pid;

    if (pipe(fds) != 0)
        exit(1);
    pid = fork();
    if (pid == 0) {
        pl_incarnation me;

        /* Gone with the parent, even when it exits on a failure. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pl_proc_self(&me);
        if (write(fds[1], &me, sizeof me) != (ssize_t)sizeof me)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    if (read(fds[0], inc, sizeof *inc) != (ssize_t)sizeof *inc)
        exit(1);
    close(fds[0]);
    return pid;
}

/* One line that says what a history page holds (the first run's). */
static void print_page(const pl_history *h)
{
    printf("  (page: %zu types, %zu points, total %llu; first: %s growth %lld)\n", h->n_types, h->n_times,
           (unsigned long long)h->total, h->n_types ? h->types[0].name : "-",
           h->n_types ? (long long)h->types[0].growth : 0);
}

/* ------------------------------------------------------------- appends */

static void bench_append(const char *root)
{
    enum { N = 1024 };
    char dir[256];
    pl_store *s;
    static struct workload w;
    static pl_type_count sample[NTYPES];
    uint32_t ids[NTYPES];
    pl_incarnation me;
    static double plain[N], all[N], compacting[N], cpu_plain[N], cpu_comp[N];
    size_t n_plain = 0, n_comp = 0, i;
    double total = 0, total_cpu = 0, t0, c0, base_med, commit_med, base_cpu;
    int rc;

    long rss0;

    snprintf(dir, sizeof dir, "%s/append", root);
    s = open_at(dir);
    make_types(s, ids);
    workload_init(&w, ids);
    pl_proc_self(&me);
    reg(s, me);
    rss0 = rss_anon_kib();
    for (i = 0; i < N; i++) {
        double dt, dc;

        workload_step(&w, sample);
        t0 = now_s();
        c0 = cpu_s();
        rc = pl_store_append(s, &me, 1000000 + (int64_t)i * INTERVAL_MS, sample, NTYPES);
        dc = cpu_s() - c0;
        dt = now_s() - t0;
        if (rc)
            die("pl_store_append", rc);
        all[i] = dt;
        total += dt;
        total_cpu += dc;
        /* Samples 33, 65, ... are the ones whose call also compacts (every
         * fourth of those merges into a level-2 window). */
        if (i >= 32 && (i - 32) % 32 == 0) {
            cpu_comp[n_comp] = dc;
            compacting[n_comp++] = dt;
        } else {
            cpu_plain[n_plain] = dc;
            plain[n_plain++] = dt;
        }
    }
    printf("append: anonymous RSS grew by %.1f MiB over %d appends (LMDB keeps dirty-page "
           "buffers for reuse)\n",
           (double)(rss_anon_kib() - rss0) / 1024.0, N);
    pl_store_close(s);

    /* Baseline 1: the same sample type-major, one mdb_put per type. */
    {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        static double base[64], commits[64], base_c[64];
        char bdir[300];
        size_t r, k;

        snprintf(bdir, sizeof bdir, "%s/baseline", root);
        mkdir(bdir, 0700);
        if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_mapsize(env, 1u << 30)) ||
            (rc = mdb_env_set_maxdbs(env, 4)) ||
            (rc = mdb_env_open(env, bdir, MDB_NOTLS | MDB_NOMETASYNC, 0600)))
            die("baseline env", rc);
        for (r = 0; r < 64; r++) {
            workload_step(&w, sample);
            t0 = now_s();
            c0 = cpu_s();
            if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
                (rc = mdb_dbi_open(txn, "series", MDB_CREATE, &dbi)))
                die("baseline txn", rc);
            for (k = 0; k < NTYPES; k++) {
                uint8_t key[24];
                uint64_t val[2] = {sample[k].count, sample[k].bytes};
                MDB_val kv = {sizeof key, key}, vv = {sizeof val, val};
                uint32_t id = sample[k].type_id;
                uint64_t t = 1000000 + r * INTERVAL_MS;
                int b;

                for (b = 0; b < 4; b++)
                    key[b] = (uint8_t)(id >> (24 - 8 * b));
                memset(key + 4, 0, 12);
                for (b = 0; b < 8; b++)
                    key[16 + b] = (uint8_t)(t >> (56 - 8 * b));
                if ((rc = mdb_put(txn, dbi, &kv, &vv, 0)))
                    die("baseline put", rc);
            }
            if ((rc = mdb_txn_commit(txn)))
                die("baseline commit", rc);
            base[r] = now_s() - t0;
            base_c[r] = cpu_s() - c0;
            /* Baseline 2: an empty write transaction (the fsync floor). */
            t0 = now_s();
            if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
                die("baseline txn", rc);
            {
                uint8_t key[4] = {0xff, 0xff, 0xff, (uint8_t)r};
                MDB_val kv = {4, key}, vv = {4, key};

                mdb_put(txn, dbi, &kv, &vv, 0);
            }
            if ((rc = mdb_txn_commit(txn)))
                die("baseline commit", rc);
            commits[r] = now_s() - t0;
        }
        mdb_env_close(env);
        base_med = pct(base, 64, 0.5);
        base_cpu = pct(base_c, 64, 0.5);
        commit_med = pct(commits, 64, 0.5);
    }

    printf("append, 5,000 types per sample, %d samples, one incarnation (wall = incl. fsync):\n",
           N);
    printf("  per call (no compaction)   wall median %7.3f  p99 %7.3f ms | CPU median %6.3f  p99 "
           "%6.3f ms   goal <= 2 ms\n",
           pct(plain, n_plain, 0.5) * 1e3, pct(plain, n_plain, 0.99) * 1e3,
           pct(cpu_plain, n_plain, 0.5) * 1e3, pct(cpu_plain, n_plain, 0.99) * 1e3);
    printf("  calls that also compact    wall median %7.3f  max %7.3f ms | CPU median %6.3f  max "
           "%6.3f ms   (1 in 32)\n",
           pct(compacting, n_comp, 0.5) * 1e3, pct(compacting, n_comp, 1.0) * 1e3,
           pct(cpu_comp, n_comp, 0.5) * 1e3, pct(cpu_comp, n_comp, 1.0) * 1e3);
    printf("  all calls                  wall median %7.3f  p99 %7.3f ms\n", pct(all, N, 0.5) * 1e3,
           pct(all, N, 0.99) * 1e3);
    printf("  amortized incl. compaction wall %7.3f ms | CPU %6.3f ms per sample   goal <= 2 ms\n",
           total / N * 1e3, total_cpu / N * 1e3);
    printf("  baseline: type-major, one mdb_put per type     wall median %7.3f ms | CPU %6.3f ms"
           "  (%.1fx our amortized wall)\n",
           base_med * 1e3, base_cpu * 1e3, base_med / (total / N));
    printf("  baseline: empty write txn commit (fsync floor) wall median %7.3f ms\n",
           commit_med * 1e3);
}

/* ------------------------------------------------------------- history */

static void run_queries(pl_store *s, const pl_incarnation *incs, size_t samples);
static void baseline_scan(const char *dir, size_t samples);

static void bench_history(const char *root, int quick)
{
    char dir[256];
    pl_store *s;
    static struct workload w[NINCS];
    static pl_type_count sample[NTYPES];
    uint32_t ids[NTYPES];
    pl_incarnation incs[NINCS];
    pid_t pids[NINCS];
    size_t samples = quick ? 300 : 2880, i, j;
    double t0, build;
    pl_store_stat st;
    int rc;

    snprintf(dir, sizeof dir, "%s/history", root);
    s = open_at(dir);
    make_types(s, ids);
    for (j = 0; j < NINCS; j++) {
        pids[j] = spawn_sleeper(&incs[j]);
        reg(s, incs[j]);
        workload_init(&w[j], ids);
    }
    t0 = now_s();
    for (i = 0; i < samples; i++) {
        for (j = 0; j < NINCS; j++) {
            workload_step(&w[j], sample);
            rc = pl_store_append(s, &incs[j], 1000000 + (int64_t)i * INTERVAL_MS + (int64_t)j * 100,
                                 sample, NTYPES);
            if (rc)
                die("pl_store_append", rc);
        }
    }
    build = now_s() - t0;
    if ((rc = pl_store_stat_get(s, &st)))
        die("pl_store_stat_get", rc);
    printf("\nhistory store: %d incarnations x %zu samples x %d types built in %.1f s "
           "(%.2f ms per append)\n",
           NINCS, samples, NTYPES, build, build / (double)(samples * NINCS) * 1e3);
    printf("  used %.1f MiB of a %.0f MiB map (max_bytes %.0f MiB): %.2f bytes per point\n",
           (double)st.used_bytes / 1048576.0, (double)st.map_size / 1048576.0,
           (double)st.max_bytes / 1048576.0,
           (double)st.used_bytes / ((double)samples * NINCS * NTYPES));

    run_queries(s, incs, samples);
    pl_store_close(s);
    baseline_scan(dir, samples);
    for (j = 0; j < NINCS; j++) {
        kill(pids[j], SIGKILL);
        waitpid(pids[j], NULL, 0);
    }
}

/* What the trends of one page cost: pl_trend_classify on each type's
 * merged series, against the page query that includes it. */
static void time_trends(const pl_history *h)
{
    enum { REPS = 31 };
    double times[REPS];
    int trend, n[PL_TREND_N] = {0};

    for (int r = 0; r < REPS; r++) {
        double t0 = cpu_s();
        for (size_t i = 0; i < h->n_types; i++) {
            pl_trend_classify(h->types[i].counts, h->n_times, &trend);
            if (r == 0)
                n[trend]++;
        }
        times[r] = cpu_s() - t0;
    }
    printf("  trends of the page (%zu types x %zu points): CPU median %.3f ms; %d growing, %d levelled, "
           "%d flat, %d falling\n",
           h->n_types, h->n_times, pct(times, REPS, 0.5) * 1e3, n[PL_TREND_GROWING], n[PL_TREND_LEVELLED],
           n[PL_TREND_FLAT], n[PL_TREND_FALLING]);
}

static void run_queries(pl_store *s, const pl_incarnation *incs, size_t samples)
{
    double t0;
    int rc;

    (void)samples;
    {
        struct {
            const char *label;
            int sort;
            const char *q;
            int per_worker;
            uint32_t pid;
        } cases[] = {
            {"merged, sort=growth, 50 types      ", PL_SORT_GROWTH, NULL, 0, 0},
            {"merged, sort=count, 50 types       ", PL_SORT_COUNT, NULL, 0, 0},
            {"merged, sort=name, q=module1, 50   ", PL_SORT_NAME, "module1", 0, 0},
            {"merged + per-worker lines, growth  ", PL_SORT_GROWTH, NULL, 1, 0},
            {"pid=<one worker>, sort=growth      ", PL_SORT_GROWTH, NULL, 0, 1},
            {"merged, trend=growing (all types)  ", PL_SORT_GROWTH, NULL, 0, 2},
        };
        size_t c;

        for (c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            enum { REPS = 31 };
            double times[REPS], cpu[REPS], c0;
            pl_history_query q;
            pl_history *h = NULL;
            int r;

            memset(&q, 0, sizeof q);
            q.sort = cases[c].sort;
            q.q = cases[c].q;
            q.limit = 50;
            q.per_worker = cases[c].per_worker;
            q.pid = cases[c].pid == 1 ? incs[3].pid : 0;
            q.trends = cases[c].pid == 2 ? 1u << PL_TREND_GROWING : 0;
            q.now_ms = pl_now_ms();
            /* The trend filter reads every type: a few runs tell its cost. */
            int reps = cases[c].pid == 2 ? 5 : REPS;
            for (r = 0; r < reps; r++) {
                t0 = now_s();
                c0 = cpu_s();
                rc = pl_store_history(s, &q, &h);
                cpu[r] = cpu_s() - c0;
                times[r] = now_s() - t0;
                if (rc)
                    die("pl_store_history", rc);
                if (r == 0 && c == 0) {
                    print_page(h);
                    time_trends(h);
                }
                pl_history_free(h);
                h = NULL;
            }
            printf("  history %s wall median %6.2f  min %6.2f  max %6.2f ms | CPU median %6.2f"
                   "  min %6.2f ms%s\n",
                   cases[c].label, pct(times, reps, 0.5) * 1e3, pct(times, reps, 0.0) * 1e3,
                   pct(times, reps, 1.0) * 1e3, pct(cpu, reps, 0.5) * 1e3, pct(cpu, reps, 0.0) * 1e3,
                   c == 0 ? "   goal <= 30 ms" : "");
        }
    }
}

static void baseline_scan(const char *dir, size_t samples)
{
    double t0;
    int rc;

    /* Baseline: a plain LMDB cursor scan over about as many chunk values as
     * the page reads (50 types x 8 incarnations x (level-2 windows + up to 3
     * level-1 windows)). */
    {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        MDB_cursor *cur;
        MDB_val k, v;
        size_t want = 50 * NINCS * (samples / 128 + 3), got = 0, bytes = 0;
        double times[15];
        int r;

        if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 16)) ||
            (rc = mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0600)))
            die("baseline env", rc);
        for (r = 0; r < 15; r++) {
            t0 = now_s();
            if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) ||
                (rc = mdb_dbi_open(txn, "ichunks2", 0, &dbi)) ||
                (rc = mdb_cursor_open(txn, dbi, &cur)))
                die("baseline txn", rc);
            got = bytes = 0;
            for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && got < want;
                 rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                const uint8_t *p = v.mv_data;
                size_t b;
                unsigned sum = 0;

                for (b = 0; b < v.mv_size; b += 64)
                    sum += p[b];
                bytes += v.mv_size + (sum & 1);
                got++;
            }
            mdb_cursor_close(cur);
            mdb_txn_abort(txn);
            times[r] = now_s() - t0;
        }
        mdb_env_close(env);
        printf("  baseline: LMDB cursor scan of %zu chunk values (%.1f MiB)  median %7.2f ms\n",
               got, (double)bytes / 1048576.0, pct(times, 15, 0.5) * 1e3);
    }
}

/* Worker churn (max_requests): many short-lived dead incarnations in the
 * merged view, after a retention pass compacted their logs. */
static void bench_churn(const char *root)
{
    enum { NDEAD = 500, DEAD_SAMPLES = 20, LIVE_SAMPLES = 300 };
    char dir[256];
    pl_store *s;
    static struct workload w;
    static pl_type_count sample[NTYPES];
    uint32_t ids[NTYPES];
    pl_incarnation incs[NINCS];
    pid_t pids[NINCS];
    size_t i, j;
    double t0, c0, times[31], cpu[31];
    int rc, r;

    snprintf(dir, sizeof dir, "%s/churn", root);
    s = open_at(dir);
    make_types(s, ids);
    workload_init(&w, ids);
    t0 = now_s();
    for (j = 0; j < NDEAD; j++) {
        /* Above pid_max: like a killed worker, kill(pid, 0) fails at once. */
        pl_incarnation dead = {0x7fff0000u + (uint32_t)j, 1000 + j};

        reg(s, dead);
        for (i = 0; i < DEAD_SAMPLES; i++) {
            workload_step(&w, sample);
            rc = pl_store_append(s, &dead,
                                 1000000 + (int64_t)(j * DEAD_SAMPLES + i) * INTERVAL_MS / 8,
                                 sample, NTYPES);
            if (rc)
                die("pl_store_append", rc);
        }
    }
    for (j = 0; j < NINCS; j++) {
        pids[j] = spawn_sleeper(&incs[j]);
        reg(s, incs[j]);
    }
    for (i = 0; i < LIVE_SAMPLES; i++) {
        for (j = 0; j < NINCS; j++) {
            workload_step(&w, sample);
            rc = pl_store_append(s, &incs[j], 1000000 + (int64_t)i * INTERVAL_MS + (int64_t)j,
                                 sample, NTYPES);
            if (rc)
                die("pl_store_append", rc);
        }
    }
    if ((rc = pl_store_prune(s, 1000000 + LIVE_SAMPLES * INTERVAL_MS)))
        die("pl_store_prune", rc);
    printf("churn store: %d dead incarnations x %d samples + %d live x %d, %d types, built in "
           "%.1f s\n",
           NDEAD, DEAD_SAMPLES, NINCS, LIVE_SAMPLES, NTYPES, now_s() - t0);
    for (r = 0; r < 31; r++) {
        pl_history_query q;
        pl_history *h = NULL;

        memset(&q, 0, sizeof q);
        q.sort = PL_SORT_GROWTH;
        q.limit = 50;
        q.now_ms = pl_now_ms();
        t0 = now_s();
        c0 = cpu_s();
        if ((rc = pl_store_history(s, &q, &h)))
            die("pl_store_history", rc);
        cpu[r] = cpu_s() - c0;
        times[r] = now_s() - t0;
        pl_history_free(h);
    }
    printf("  history merged, sort=growth, 50 types over %d incarnations: wall median %.2f ms | "
           "CPU median %.2f  min %.2f ms\n",
           NDEAD + NINCS, pct(times, 31, 0.5) * 1e3, pct(cpu, 31, 0.5) * 1e3,
           pct(cpu, 31, 0.0) * 1e3);
    pl_store_close(s);
    for (j = 0; j < NINCS; j++) {
        kill(pids[j], SIGKILL);
        waitpid(pids[j], NULL, 0);
    }
}

/* A fleet in remote mode: FLEET_HOSTS hosts x FLEET_PER pushed workers, all
 * alive, FLEET_TYPES types. The merged growth page over all of them is timed
 * against the same page restricted to one host (8 workers, same data). */
#define FLEET_HOSTS 100
#define FLEET_PER 8
#define FLEET_TYPES 500

static void bench_fleet_one(const char *root, size_t samples)
{
    enum { REPS = 21 };
    char dir[256], host[64];
    pl_store *s;
    static pl_type_count sample[FLEET_TYPES];
    static pl_incarnation incs[FLEET_HOSTS * FLEET_PER];
    const char *names[FLEET_TYPES];
    static char buf[FLEET_TYPES][40];
    size_t lens[FLEET_TYPES], i, j, k;
    uint32_t ids[FLEET_TYPES];
    int64_t now = pl_now_ms(), t0;
    double b0, times[REPS], cpu[REPS], one[REPS], c0, w0, fleet_med, one_med;
    int rc, r, pass, reuse_dir;

    snprintf(dir, sizeof dir, "%s/fleet%zu", root, samples);
    reuse_dir = access(dir, F_OK) == 0;
    s = open_at(dir);
    for (k = 0; k < FLEET_TYPES; k++) {
        snprintf(buf[k], sizeof buf[k], "bench.app.Type%zu", k);
        names[k] = buf[k];
        lens[k] = strlen(buf[k]);
    }
    if ((rc = pl_store_type_ids(s, names, lens, FLEET_TYPES, ids)))
        die("pl_store_type_ids", rc);
    b0 = now_s();
    t0 = now - (int64_t)samples * INTERVAL_MS;
    for (j = 0; !reuse_dir && j < FLEET_HOSTS * FLEET_PER; j++) {
        pl_proc_info info;

        memset(&info, 0, sizeof info);
        snprintf(info.host, sizeof info.host, "host-%02zu", j / FLEET_PER);
        info.inc.pid = 100 + (uint32_t)(j % FLEET_PER);
        info.inc.start = 7;
        info.interval_ms = 600000; /* alive for 30 min after the last push */
        if ((rc = pl_store_remote_register(s, &info, now, &incs[j])))
            die("pl_store_remote_register", rc);
        for (i = 0; i < samples; i++) {
            for (k = 0; k < FLEET_TYPES; k++) {
                sample[k].type_id = ids[k];
                sample[k].count = 10 + k + i * (k % 4 == 0) * (j % FLEET_PER + 1) + (k * 7 + j) % 13;
                sample[k].bytes = 480;
            }
            rc = pl_store_append(s, &incs[j], t0 + (int64_t)i * INTERVAL_MS + (int64_t)(j % 97),
                                 sample, FLEET_TYPES);
            if (rc)
                die("pl_store_append", rc);
        }
    }
    printf("fleet store: %d hosts x %d workers x %zu samples x %d types built in %.1f s\n",
           FLEET_HOSTS, FLEET_PER, samples, FLEET_TYPES, now_s() - b0);
    for (pass = 0; pass < 2; pass++) {
        for (r = 0; r < REPS; r++) {
            pl_history_query q;
            pl_history *h = NULL;

            memset(&q, 0, sizeof q);
            q.sort = PL_SORT_GROWTH;
            q.limit = 50;
            q.now_ms = now + 1000;
            snprintf(host, sizeof host, "host-%02d", 42);
            q.host = pass ? host : NULL;
            w0 = now_s();
            c0 = cpu_s();
            if ((rc = pl_store_history(s, &q, &h)))
                die("pl_store_history", rc);
            cpu[r] = cpu_s() - c0;
            (pass ? one : times)[r] = now_s() - w0;
            if (r == 0 && pass == 0)
                print_page(h);
            pl_history_free(h);
        }
        if (pass == 0)
            printf("  history merged, sort=growth, 50 types over %d incarnations: wall median "
                   "%6.2f  min %6.2f ms | CPU median %6.2f ms   goal <= 50 ms\n",
                   FLEET_HOSTS * FLEET_PER, pct(times, REPS, 0.5) * 1e3,
                   pct(times, REPS, 0.0) * 1e3, pct(cpu, REPS, 0.5) * 1e3);
    }
    fleet_med = pct(times, REPS, 0.5);
    one_med = pct(one, REPS, 0.5);
    printf("  baseline: host=host-42 (its %d workers), same query  wall median %6.2f ms\n",
           FLEET_PER, one_med * 1e3);
    printf("  ratio fleet / one host: %.1f (%d x the incarnations)\n", fleet_med / one_med,
           FLEET_HOSTS);
    pl_store_close(s);
}

static void bench_fleet(const char *root)
{
    bench_fleet_one(root, 24);
    fflush(stdout);
    bench_fleet_one(root, 40);
}

/* Queries a kept store again. Its incarnations are dead by now, so the
 * merged sort keys are zero; the page work is the same. */
static int reuse(const char *root)
{
    char dir[256];
    pl_store *s;
    pl_incarnation incs[NINCS];
    pl_proc_info *procs = NULL;
    size_t n = 0, j;
    int rc;

    snprintf(dir, sizeof dir, "%s/history", root);
    s = open_at(dir);
    if ((rc = pl_store_procs(s, &procs, &n)))
        die("pl_store_procs", rc);
    for (j = 0; j < NINCS; j++)
        incs[j] = j < n ? procs[j].inc : procs[0].inc;
    free(procs);
    run_queries(s, incs, 0);
    pl_store_close(s);
    baseline_scan(dir, 2880);
    return 0;
}

/* Median thread-CPU microseconds of `rounds` calls of fn, with the checks
 * before each call on (checks = 1) or off. */
static double guard_round(pl_store *s, int checks, int (*fn)(pl_store *, void *), void *arg, int rounds)
{
    double *v = malloc((size_t)rounds * sizeof *v), m;
    int rc;

    pl_store_test_skip_checks(s, !checks);
    for (int i = 0; i < rounds; i++) {
        double t0 = cpu_s();

        if ((rc = fn(s, arg)) != 0)
            die("a measured call", rc);
        v[i] = (cpu_s() - t0) * 1e6;
    }
    m = pct(v, (size_t)rounds, 0.5);
    free(v);
    pl_store_test_skip_checks(s, 0);
    return m;
}

static int call_stat(pl_store *s, void *arg)
{
    pl_store_stat st;

    (void)arg;
    return pl_store_stat_get(s, &st);
}

struct guard_append {
    pl_incarnation inc;
    pl_type_count *counts;
    int64_t t;
};

static int call_append(pl_store *s, void *arg)
{
    struct guard_append *a = arg;

    a->t += INTERVAL_MS;
    for (size_t k = 0; k < NTYPES; k += 4)
        a->counts[k].count += rnd() % 3;
    return pl_store_append(s, &a->inc, a->t, a->counts, NTYPES);
}

static int call_history(pl_store *s, void *arg)
{
    pl_history_query q;
    pl_history *h = NULL;
    int rc;

    memset(&q, 0, sizeof q);
    q.limit = 50;
    q.sort = PL_SORT_GROWTH;
    q.now_ms = *(int64_t *)arg;
    rc = pl_store_history(s, &q, &h);
    pl_history_free(h);
    return rc;
}

/* --guard: what the checks before each call cost (see the usage). */
static void bench_guard(const char *root)
{
    char path[256], **names = calloc(NTYPES, sizeof *names);
    size_t *lens = calloc(NTYPES, sizeof *lens);
    uint32_t *ids = calloc(NTYPES, sizeof *ids);
    struct guard_append a;
    pl_store_options opt;
    pl_proc_info info;
    pl_store *s = NULL;
    double on[3] = {0, 0, 0}, off[3] = {0, 0, 0};
    int rc, reps = 7;

    snprintf(path, sizeof path, "%s/guard", root);
    memset(&opt, 0, sizeof opt);
    opt.path = path;
    if ((rc = pl_store_open(&s, &opt)))
        die("open", rc);
    memset(&info, 0, sizeof info);
    info.inc.pid = 77;
    info.inc.start = 1;
    info.interval_ms = INTERVAL_MS;
    info.first_seen_ms = info.last_seen_ms = 1700000000000;
    if ((rc = pl_store_register(s, &info)))
        die("register", rc);
    for (size_t k = 0; k < NTYPES; k++) {
        names[k] = malloc(32);
        lens[k] = (size_t)snprintf(names[k], 32, "module%zu.Type%zu", k % 97, k);
    }
    if ((rc = pl_store_type_ids(s, (const char *const *)names, lens, NTYPES, ids)))
        die("type ids", rc);
    a.inc = info.inc;
    a.t = info.first_seen_ms;
    a.counts = calloc(NTYPES, sizeof *a.counts);
    for (size_t k = 0; k < NTYPES; k++) {
        a.counts[k].type_id = ids[k];
        a.counts[k].count = 5 + (k * 37) % 2000;
        a.counts[k].bytes = 64;
    }
    for (int i = 0; i < 300; i++)
        if ((rc = call_append(s, &a)))
            die("append", rc);
    /* Alternating rounds, the side that goes first flipping each time, so
     * that a loaded machine (and the store growing with the appends) weighs
     * on both sides alike; the reads run once the appends are done. */
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < 2; k++)
            ((r + k) % 2 ? on : off)[1] += guard_round(s, (r + k) % 2, call_append, &a, 100) / reps;
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            double *m = (r + k) % 2 ? on : off;

            m[0] += guard_round(s, (r + k) % 2, call_stat, NULL, 2000) / reps;
            m[2] += guard_round(s, (r + k) % 2, call_history, &a.t, 30) / reps;
        }
    }
    printf("checks before each call (thread CPU, median per call, mean of %d alternating rounds)\n", reps);
    printf("  %-34s %10s %10s %10s\n", "call", "checks off", "checks on", "added");
    printf("  %-34s %8.1f us %8.1f us %8.1f us\n", "pl_store_stat_get (one read txn)", off[0], on[0], on[0] - off[0]);
    printf("  %-34s %8.1f us %8.1f us %8.1f us\n", "pl_store_append, 5,000 types", off[1], on[1], on[1] - off[1]);
    printf("  %-34s %8.1f us %8.1f us %8.1f us\n", "pl_store_history, 50 types", off[2], on[2], on[2] - off[2]);
    pl_store_close(s);
    for (size_t k = 0; k < NTYPES; k++)
        free(names[k]);
    free(names);
    free(lens);
    free(ids);
    free(a.counts);
}

int main(int argc, char **argv)
{
    char root[] = "/tmp/pyloot-bench-XXXXXX";
    int quick = 0, keep = 0, churn = 0, fleet = 0, guard = 0, i;
    double t0 = now_s();

    if (getenv("PYLOOT_BENCH_REUSE") && argc > 1 && strcmp(argv[1], "--fleet") == 0) {
        /* A kept fleet store, queried again while its workers count as alive (30 min). */
        bench_fleet(getenv("PYLOOT_BENCH_REUSE"));
        return 0;
    }
    if (getenv("PYLOOT_BENCH_REUSE"))
        return reuse(getenv("PYLOOT_BENCH_REUSE"));
    for (i = 1; i < argc; i++) {
        quick |= strcmp(argv[i], "--quick") == 0;
        keep |= strcmp(argv[i], "--keep") == 0;
        churn |= strcmp(argv[i], "--churn") == 0;
        fleet |= strcmp(argv[i], "--fleet") == 0;
        guard |= strcmp(argv[i], "--guard") == 0;
    }
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    printf("bench_store: store in %s\n\n", root);
    fflush(stdout);
    if (guard) {
        bench_guard(root);
    } else if (fleet) {
        bench_fleet(root);
    } else if (churn) {
        bench_churn(root);
    } else {
        bench_append(root);
        fflush(stdout);
        bench_history(root, quick);
    }
    if (keep)
        printf("\nkept %s (PYLOOT_BENCH_REUSE=%s bench_store)\n", root, root);
    else
        nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("\ntotal run time %.0f s\n", now_s() - t0);
    return 0;
}
