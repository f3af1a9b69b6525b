/* Damage met while a store is in use (guard.c, recover.c): the cheap checks
 * find a shrunk file, zeroed meta pages and a store moved away; the fault
 * guard turns a SIGBUS inside the map into PL_EDAMAGED and releases LMDB's
 * writer lock; a fault anywhere else still reaches the handler installed
 * before; a damaged handle is replaced by moving the store aside; the end of
 * an incarnation can be written from a child process.
 *
 * Run with ASAN_OPTIONS=detect_leaks=0 (CMakeLists.txt): a handle given up
 * after damage is abandoned on purpose, with what the interrupted call had
 * allocated. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "pyloot/store.h"
#include "pyloot/verify.h"
#include "test.h"

#define PAGE 4096
#define TYPES 500

static const char *self_exe;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void make_tmp(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/pyloot-test-damage-XXXXXX");
    if (!mkdtemp(dir))
        abort();
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A store at path with one incarnation (pid `pid`) and 40 samples of TYPES
 * types; returns the open handle. */
static pl_store *fill(const char *path, uint32_t pid)
{
    pl_store_options opt;
    pl_store *s = NULL;
    pl_proc_info info;
    static char names[TYPES][24];
    static const char *ptrs[TYPES];
    static size_t lens[TYPES];
    static uint32_t ids[TYPES];
    static pl_type_count counts[TYPES];

    memset(&opt, 0, sizeof opt);
    opt.path = path;
    CHECK_OK(pl_store_open(&s, &opt));
    if (!s)
        abort();
    memset(&info, 0, sizeof info);
    info.inc.pid = pid;
    info.inc.start = 12345;
    info.interval_ms = 1000;
    info.first_seen_ms = info.last_seen_ms = 1000;
    CHECK_OK(pl_store_register(s, &info));
    for (int i = 0; i < TYPES; i++) {
        lens[i] = (size_t)snprintf(names[i], sizeof names[i], "mod.Type%d", i);
        ptrs[i] = names[i];
    }
    CHECK_OK(pl_store_type_ids(s, ptrs, lens, TYPES, ids));
    for (int t = 0; t < 40; t++) {
        for (int i = 0; i < TYPES; i++) {
            counts[i].type_id = ids[i];
            counts[i].count = (uint64_t)(i * 7 + t * (i % 5) + 1);
            counts[i].bytes = counts[i].count * 56;
        }
        CHECK_OK(pl_store_append(s, &info.inc, 1000 + t * 1000, counts, TYPES));
    }
    return s;
}

static void data_path(char *out, size_t len, const char *dir)
{
    snprintf(out, len, "%s/data.mdb", dir);
}

static int history_rc(pl_store *s)
{
    pl_history_query q;
    pl_history *h = NULL;
    int rc;

    memset(&q, 0, sizeof q);
    q.limit = 50;
    q.now_ms = 50000;
    rc = pl_store_history(s, &q, &h);
    pl_history_free(h);
    return rc;
}

static void zero_metas(const char *data)
{
    static char zeros[2 * PAGE];
    int fd = open(data, O_WRONLY);

    CHECK(fd >= 0 && pwrite(fd, zeros, sizeof zeros, 0) == (ssize_t)sizeof zeros);
    close(fd);
}

/* A shrunk data.mdb is found before anything reads through the map. */
static void test_truncated_found_by_check(void)
{
    char dir[64], data[128], why[256];
    pl_store *s;
    pl_proc_info *procs = NULL;
    size_t n = 0;

    make_tmp(dir, sizeof dir);
    data_path(data, sizeof data, dir);
    s = fill(dir, 4242);
    CHECK_OK(history_rc(s));
    CHECK(!pl_store_damaged(s, why, sizeof why));
    CHECK_OK(truncate(data, 8192));
    CHECK_EQ_INT(pl_store_procs(s, &procs, &n), PL_EDAMAGED);
    CHECK(procs == NULL && n == 0);
    CHECK(pl_store_damaged(s, why, sizeof why));
    CHECK(strstr(why, "shrank") != NULL);
    /* Given up for good: every call refuses at once. */
    CHECK_EQ_INT(history_rc(s), PL_EDAMAGED);
    CHECK_EQ_INT(pl_store_heartbeat(s, &(pl_incarnation){4242, 12345}, 99000, 1, NULL), PL_EDAMAGED);
    pl_store_close(s); /* leaves a damaged handle alone */
    rm_tree(dir);
}

/* Zeroed meta pages are found by the check too. */
static void test_meta_zeroed_found_by_check(void)
{
    char dir[64], data[128], why[256];
    pl_store *s;

    make_tmp(dir, sizeof dir);
    data_path(data, sizeof data, dir);
    s = fill(dir, 4243);
    zero_metas(data);
    CHECK_EQ_INT(history_rc(s), PL_EDAMAGED);
    CHECK(pl_store_damaged(s, why, sizeof why) && strstr(why, "meta page 0") != NULL);
    rm_tree(dir);
}

/* Without the checks, the guard alone: the SIGBUS of a read past the end of
 * the shrunk file ends the call, not the process, and the write transaction
 * it interrupted is aborted, so that another process can write at once. */
static void test_guard_catches_sigbus_and_frees_the_writer(void)
{
    char dir[64], data[128], why[256];
    pl_type_count one = {1, 1, 1};
    pl_store *s;
    pid_t child;
    int status = 0;

    make_tmp(dir, sizeof dir);
    data_path(data, sizeof data, dir);
    s = fill(dir, 4244);
    pl_store_test_skip_checks(s, 1);
    CHECK_OK(truncate(data, 8192));
    CHECK_EQ_INT(pl_store_append(s, &(pl_incarnation){4244, 12345}, 90000, &one, 1), PL_EDAMAGED);
    CHECK(pl_store_damaged(s, why, sizeof why));
    CHECK(strstr(why, "SIGBUS") != NULL);
    CHECK_EQ_INT(history_rc(s), PL_EDAMAGED);
    child = fork();
    if (child == 0) {
        MDB_env *env;
        MDB_txn *txn;

        alarm(10); /* a writer lock never released would hang here */
        if (mdb_env_create(&env) || mdb_env_open(env, dir, MDB_NOTLS, 0600) ||
            mdb_txn_begin(env, NULL, 0, &txn))
            _exit(2);
        mdb_txn_abort(txn);
        _exit(0);
    }
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    rm_tree(dir);
}

/* A store moved away (by another process, after damage) is noticed. */
static void test_moved_away_found_by_check(void)
{
    char dir[64], aside[96], why[256];
    pl_store *s;

    make_tmp(dir, sizeof dir);
    snprintf(aside, sizeof aside, "%s.aside", dir);
    s = fill(dir, 4245);
    CHECK_OK(rename(dir, aside));
    CHECK_EQ_INT(history_rc(s), PL_EDAMAGED);
    CHECK(pl_store_damaged(s, why, sizeof why) && strstr(why, "moved") != NULL);
    rm_tree(aside);
}

/* A damaged handle is replaced: the store is moved aside (kept), a new one
 * started and noted; a second replace of the same handle moves nothing. */
static void test_replace_moves_aside(void)
{
    char dir[64], data[4200], aside[4096];
    pl_store_options opt;
    pl_store_report *rep = calloc(1, sizeof *rep);
    pl_store *s, *s2 = NULL, *s3 = NULL;
    pl_buf moved = PL_BUF_INIT, reason = PL_BUF_INIT;
    struct stat st;
    int64_t when = 0;

    make_tmp(dir, sizeof dir);
    data_path(data, sizeof data, dir);
    s = fill(dir, 4246);
    CHECK_OK(truncate(data, 8192));
    CHECK_EQ_INT(history_rc(s), PL_EDAMAGED);
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    CHECK_OK(pl_store_replace(s, &s2, &opt, 0, rep));
    CHECK(rep->moved_to[0] && strncmp(rep->moved_to, dir, strlen(dir)) == 0);
    CHECK(strstr(rep->reason, "shrank") != NULL);
    snprintf(aside, sizeof aside, "%s", rep->moved_to);
    snprintf(data, sizeof data, "%s/data.mdb", aside);
    CHECK(stat(data, &st) == 0 && st.st_size == 8192); /* kept as it was */
    CHECK(s2 != NULL);
    if (s2) {
        CHECK_OK(history_rc(s2));
        CHECK_OK(pl_store_recovery(s2, &moved, &reason, &when));
        CHECK_EQ_STR(pl_buf_cstr(&moved), aside);
    }
    /* Another worker's replace of its own damaged handle: nothing to move. */
    CHECK_OK(pl_store_replace(s, &s3, &opt, 0, rep));
    CHECK(rep->moved_to[0] == 0 && s3 != NULL);
    pl_store_close(s3);
    pl_store_close(s2);
    pl_buf_free(&moved);
    pl_buf_free(&reason);
    free(rep);
    rm_tree(aside);
    rm_tree(dir);
}

/* A store the marker vouches for, damaged since, is moved aside when opened. */
static void test_guarded_open_of_store_damaged_since(void)
{
    char dir[64], data[128];
    pl_store_options opt;
    pl_store_report *rep = calloc(1, sizeof *rep);
    pl_store *s = NULL;

    make_tmp(dir, sizeof dir);
    data_path(data, sizeof data, dir);
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    pl_store_close(fill(dir, 4247));
    CHECK_OK(pl_store_open_guarded(&s, &opt, 0, rep)); /* marks it as checked */
    pl_store_close(s);
    s = NULL;
    zero_metas(data);
    CHECK_OK(pl_store_open_guarded(&s, &opt, 0, rep));
    CHECK(s != NULL && rep->moved_to[0]);
    if (s)
        CHECK_OK(history_rc(s));
    pl_store_close(s);
    if (rep->moved_to[0])
        rm_tree(rep->moved_to);
    free(rep);
    rm_tree(dir);
}

/* The main database's root page of the newer meta (LMDB 0.9's layout, as
 * in guard.c: the root is the last field of the second 48-byte database
 * record, which starts 72 bytes into the meta, 16 into the page). */
static uint64_t main_root(const char *data)
{
    uint8_t m[2][160];
    uint64_t root[2], txnid[2];
    int fd = open(data, O_RDONLY);

    CHECK(fd >= 0 && pread(fd, m[0], 160, 0) == 160 && pread(fd, m[1], 160, PAGE) == 160);
    close(fd);
    for (int i = 0; i < 2; i++) {
        memcpy(&root[i], m[i] + 16 + 72 + 40, 8);
        memcpy(&txnid[i], m[i] + 16 + 128, 8);
    }
    return txnid[1] > txnid[0] ? root[1] : root[0];
}

/* An LMDB assertion (a branch page without keys in the main database, in a
 * store the marker vouches for) ends the open with PL_EDAMAGED instead of
 * abort(): the guarded open moves the store aside, saying why. */
static void test_assertion_is_caught(void)
{
    char dir[64], data[128];
    pl_store_options opt;
    pl_store_report *rep = calloc(1, sizeof *rep);
    pl_store *s = NULL;
    uint16_t hdr[3] = {0x01, 16, PAGE}; /* flags P_BRANCH, lower, upper: no keys */
    uint64_t root;
    int fd;

    make_tmp(dir, sizeof dir);
    data_path(data, sizeof data, dir);
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    pl_store_close(fill(dir, 4250));
    CHECK_OK(pl_store_open_guarded(&s, &opt, 0, rep)); /* the marker vouches for it from now on */
    pl_store_close(s);
    s = NULL;
    root = main_root(data);
    fd = open(data, O_WRONLY);
    CHECK(fd >= 0 && root > 1 && pwrite(fd, hdr, sizeof hdr, (off_t)(root * PAGE + 10)) == (ssize_t)sizeof hdr);
    close(fd);
    CHECK_OK(pl_store_open_guarded(&s, &opt, 0, rep));
    CHECK(s != NULL && rep->moved_to[0]);
    CHECK(strstr(rep->reason, "assertion") != NULL);
    if (!strstr(rep->reason, "assertion"))
        fprintf(stderr, "reason: %s\n", rep->reason);
    pl_store_close(s);
    rm_tree(rep->moved_to);
    free(rep);
    rm_tree(dir);
}

/* Marks every plain node of every leaf page in data.mdb as holding
 * duplicates (F_DUPDATA), which none of the store's databases allows:
 * LMDB then reads through a sub-cursor it never made, a NULL pointer, a
 * fault far outside the map (LMDB 0.9's page layout: a 16-byte header with
 * the flags at 10 and the lower bound at 12, then 16-bit node offsets; a
 * node's flags 4 bytes into it). Returns the number of nodes changed. */
static unsigned mark_dupdata(const char *data)
{
    static uint8_t page[PAGE];
    unsigned changed = 0;
    int fd = open(data, O_RDWR);
    struct stat st;

    CHECK(fd >= 0 && fstat(fd, &st) == 0);
    for (off_t pg = 2; fd >= 0 && (pg + 1) * PAGE <= st.st_size; pg++) {
        uint16_t flags, lower, off, nflags;

        CHECK(pread(fd, page, PAGE, pg * PAGE) == PAGE);
        memcpy(&flags, page + 10, 2);
        memcpy(&lower, page + 12, 2);
        if ((flags & 0x7f) != 0x02 || lower < 16 || lower > PAGE) /* P_LEAF alone */
            continue;
        for (unsigned i = 0; i < (lower - 16u) / 2; i++) {
            memcpy(&off, page + 16 + 2 * i, 2);
            if (off < lower || off > PAGE - 8)
                continue;
            memcpy(&nflags, page + off + 4, 2);
            if (nflags != 0)
                continue;
            nflags = 0x04; /* F_DUPDATA */
            memcpy(page + off + 4, &nflags, 2);
            changed++;
        }
        CHECK(pwrite(fd, page, PAGE, pg * PAGE) == PAGE);
    }
    if (fd >= 0)
        close(fd);
    return changed;
}

/* A fault in LMDB's own code outside the map (here a NULL pointer LMDB
 * follows because of flags it read from the file) ends the call with
 * PL_EDAMAGED, not the process. In a child, so that a miss is a failed
 * check rather than the end of the tests. */
static void test_fault_in_lmdb_outside_the_map(void)
{
    char dir[64], data[128];
    pl_store *s;
    pid_t child;
    int status = 0;

    make_tmp(dir, sizeof dir);
    data_path(data, sizeof data, dir);
    s = fill(dir, 4251);
    pl_store_test_skip_checks(s, 1);
    CHECK(mark_dupdata(data) > 0);
    child = fork();
    if (child == 0) {
        char why[256];
        int rc;

        alarm(10);
        rc = history_rc(s);
        if (rc != PL_EDAMAGED || !pl_store_damaged(s, why, sizeof why) || !strstr(why, "SIGSEGV")) {
            fprintf(stderr, "rc %d, why: %s\n", rc, why);
            _exit(1);
        }
        _exit(0);
    }
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!WIFEXITED(status))
        fprintf(stderr, "the child died of signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    pl_store_close(s);
    rm_tree(dir);
}

/* The end of an incarnation, written by a child process. */
static void test_end_isolated(void)
{
    char dir[64], data[128], why[256];
    pl_proc_info *procs = NULL;
    pl_store *s;
    size_t n = 0;

    make_tmp(dir, sizeof dir);
    data_path(data, sizeof data, dir);
    s = fill(dir, 4248);
    CHECK_OK(pl_store_end_isolated(dir, 4248, 77000, PL_END_NONE, 0, 5000, why, sizeof why));
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK(n == 1 && procs && procs[0].ended_ms == 77000 && procs[0].end_how == PL_END_NONE);
    free(procs);
    CHECK_EQ_INT(pl_store_end_isolated(dir, 4248, 78000, PL_END_NONE, 0, 5000, why, sizeof why), PL_ENOTFOUND);
    /* The parent's status still reaches an end written a moment before... */
    CHECK_OK(pl_store_end_isolated(dir, 4248, 78000, PL_END_KILLED, 9, 5000, why, sizeof why));
    CHECK_OK(pl_store_procs(s, &procs, &n));
    CHECK(n == 1 && procs && procs[0].ended_ms == 77000 && procs[0].end_how == PL_END_KILLED &&
          procs[0].end_value == 9);
    free(procs);
    /* ...but never overwrites another status. */
    CHECK_EQ_INT(pl_store_end_isolated(dir, 4248, 78000, PL_END_CLEAN, 0, 5000, why, sizeof why), PL_ENOTFOUND);
    CHECK_EQ_INT(pl_store_end_isolated(dir, 4248, 78000, 9, 0, 5000, why, sizeof why), PL_EBADARG);
    pl_store_close(s);
    /* A damaged store: an error, never a crash of the caller. */
    zero_metas(data);
    CHECK(pl_store_end_isolated(dir, 4248, 79000, PL_END_KILLED, 9, 5000, why, sizeof why) != 0);
    CHECK(why[0] != 0);
    rm_tree(dir);
}

/* A fault outside any store reaches the handler installed before the
 * guard's (here the test's own, in a fresh process: see main). */
static void test_other_faults_chain(void)
{
    pid_t child = fork();
    int status = 0;

    if (child == 0) {
        execl(self_exe, self_exe, "--chain-child", (char *)NULL);
        _exit(3);
    }
    CHECK(child > 0 && waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42);
}

static void on_segv(int sig)
{
    _exit(42);
}

/* The child of test_other_faults_chain: its own SIGSEGV handler first, then
 * a store (the guard installs its handler over it), then a fault elsewhere,
 * inside no guarded call. */
static int chain_child(void)
{
    char dir[64];
    struct sigaction sa;
    pl_store *s;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    make_tmp(dir, sizeof dir);
    s = fill(dir, 4249);
    CHECK_OK(history_rc(s));
    pl_store_close(s);
    rm_tree(dir);
    *(volatile int *)(uintptr_t)8 = 1; /* SIGSEGV, outside every store's map */
    return 1;
}

int main(int argc, char **argv)
{
    self_exe = argv[0];
    if (argc > 1 && strcmp(argv[1], "--chain-child") == 0)
        return chain_child();
    RUN(test_other_faults_chain);
    RUN(test_truncated_found_by_check);
    RUN(test_meta_zeroed_found_by_check);
    RUN(test_guard_catches_sigbus_and_frees_the_writer);
    RUN(test_moved_away_found_by_check);
    RUN(test_replace_moves_aside);
    RUN(test_guarded_open_of_store_damaged_since);
    RUN(test_end_isolated);
    RUN(test_assertion_is_caught);
    RUN(test_fault_in_lmdb_outside_the_map);
    return test_failures ? 1 : 0;
}
