/* What checking a store costs (docs/store.md, "Damaged stores"), not part
 * of ctest: grows a store of 5,000 types with noisy counts from several
 * incarnations, and when its data.mdb passes each size given (default 100
 * and 700 MB) times pl_store_verify (the forked check a server runs once
 * per store file) and pl_store_walk (the same walk in this process, without
 * the fork), best and median of 3, with the page cache warm.
 *
 * Usage: bench_verify [--keep] [MB ...]   (in a fresh directory under /tmp,
 * removed at the end unless --keep, which prints its path; about 3 minutes
 * for 700 MB on a 2-core VM, mostly fsyncs)
 *        bench_verify --store DIR         (times the check of an existing
 * store: the same store before and after a change of the check). */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/store.h"
#include "pyloot/verify.h"

#define NTYPES 5000
#define INCS 16

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void measure(const char *dir, off_t size)
{
    double v[3], w[3];
    char why[256];

    for (int i = 0; i < 3; i++) {
        double t = now_s();
        int rc = pl_store_verify(dir, 0, why, sizeof why);
        v[i] = now_s() - t;
        if (rc)
            printf("  verify: %s (%s)\n", pl_strerror(rc), why);
        t = now_s();
        rc = pl_store_walk(dir, why, sizeof why);
        w[i] = now_s() - t;
        if (rc)
            printf("  walk: %s (%s)\n", pl_strerror(rc), why);
    }
    qsort(v, 3, sizeof v[0], cmp_d);
    qsort(w, 3, sizeof w[0], cmp_d);
    printf("data.mdb %7.1f MB: pl_store_verify (fork + walk) best %.3f s, median %.3f s; "
           "pl_store_walk in process best %.3f s, median %.3f s\n",
           size / 1048576.0, v[0], v[1], w[0], w[1]);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static uint32_t ids[NTYPES];
    static pl_type_count counts[NTYPES];
    static char names[NTYPES][24];
    static const char *ptrs[NTYPES];
    static size_t lens[NTYPES];
    double sizes_mb[8] = {100, 700};
    int n_sizes = 2, next = 0;
    char dir[64] = "/tmp/pyloot-bench-verify-XXXXXX", data[128];
    pl_store_options opt;
    pl_store *s = NULL;
    uint32_t x = 1;
    int rc, keep = 0;

    if (argc == 3 && strcmp(argv[1], "--store") == 0) {
        struct stat st;
        snprintf(data, sizeof data, "%.100s/data.mdb", argv[2]);
        if (stat(data, &st) != 0) {
            perror(data);
            return 2;
        }
        measure(argv[2], st.st_size);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--keep") == 0) {
        keep = 1;
        argv++;
        argc--;
    }
    if (argc > 1) {
        n_sizes = 0;
        for (int i = 1; i < argc && n_sizes < 8; i++)
            sizes_mb[n_sizes++] = atof(argv[i]);
    }
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.map_size = 4ull << 30;
    opt.max_bytes = 3ull << 30;
    opt.max_samples = 100000;
    opt.max_age_s = 1000ull * 86400;
    if ((rc = pl_store_open(&s, &opt))) {
        fprintf(stderr, "open: %s\n", pl_strerror(rc));
        return 1;
    }
    for (int i = 0; i < NTYPES; i++) {
        lens[i] = (size_t)snprintf(names[i], sizeof names[i], "bench.Type%d", i);
        ptrs[i] = names[i];
    }
    pl_store_type_ids(s, ptrs, lens, NTYPES, ids);
    pl_incarnation incs[INCS];
    for (int k = 0; k < INCS; k++) {
        pl_proc_info info;
        memset(&info, 0, sizeof info);
        info.inc.pid = 4000000u + (uint32_t)k; /* dead: never a live pid */
        info.inc.start = 1;
        info.interval_ms = 30000;
        info.first_seen_ms = 1;
        incs[k] = info.inc;
        pl_store_register(s, &info);
    }
    for (int64_t t = 0; next < n_sizes; t++) {
        for (int k = 0; k < INCS && next < n_sizes; k++) {
            for (int i = 0; i < NTYPES; i++) {
                x = x * 1103515245u + 12345u;
                counts[i].type_id = ids[i];
                counts[i].count = 1000 + (x >> 20);
                counts[i].bytes = counts[i].count * 64 + (x & 0xff);
            }
            if ((rc = pl_store_append(s, &incs[k], 1000 + t * 30000, counts, NTYPES))) {
                fprintf(stderr, "append: %s\n", pl_strerror(rc));
                next = n_sizes;
                break;
            }
            struct stat st;
            if (k == 0 && stat(data, &st) == 0 && st.st_size >= sizes_mb[next] * 1048576.0) {
                pl_store_close(s);
                measure(dir, st.st_size);
                next++;
                if (next < n_sizes && (rc = pl_store_open(&s, &opt))) {
                    fprintf(stderr, "reopen: %s\n", pl_strerror(rc));
                    next = n_sizes;
                }
                if (next == n_sizes)
                    s = NULL;
            }
        }
    }
    pl_store_close(s);
    if (keep)
        printf("store kept in %s\n", dir);
    else
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
