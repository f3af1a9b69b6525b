/* Checking a store where a crash cannot hurt: pl_store_walk reads every
 * record of every database; pl_store_verify runs it in a forked child under
 * a time bound and judges the child's end (see verify.h, docs/store.md).
 *
 * The child of a multithreaded process (a Python worker) may only rely on
 * what fork() makes safe: glibc resets malloc's locks in the child, and the
 * walk uses nothing but libc and LMDB on an environment it opens itself. It
 * never touches the parent's environments, Python, or a lock another thread
 * may hold, and it ends with _exit(). */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/verify.h"

#define FREE_DBI 0
#define MAIN_DBI 1
#define NAME_MAX_LEN 511

/* LMDB codes that mean the file itself is bad (rather than the caller's
 * environment: permissions, a missing directory, no memory). */
static int is_damage(int rc)
{
    return rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID ||
           rc == MDB_VERSION_MISMATCH || rc == MDB_CURSOR_FULL || rc == MDB_BAD_VALSIZE ||
           rc == MDB_INCOMPATIBLE || rc == PL_EDAMAGED;
}

/* memcmp order with the shorter key first on a tie: LMDB's default. */
static int key_order(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int c = n ? memcmp(a->mv_data, b->mv_data, n) : 0;

    if (c == 0 && a->mv_size != b->mv_size)
        c = a->mv_size < b->mv_size ? -1 : 1;
    return c;
}

struct walk {
    MDB_txn *txn;
    size_t last_pgno;
    char *why;
    size_t len;
    unsigned sink; /* values are read into it, so a bad mapping faults here */
};

/* A free-list record: the txn id key (size_t, integer order) and a page
 * list whose first word is its length; every page must exist. */
static int check_free(struct walk *w, const MDB_val *k, const MDB_val *v, size_t *prev_txn, int first)
{
    size_t txnid, n, pg;

    if (k->mv_size != sizeof(size_t) || v->mv_size < sizeof(size_t) || v->mv_size % sizeof(size_t))
        return PL_EDAMAGED;
    memcpy(&txnid, k->mv_data, sizeof txnid);
    if (!first && txnid <= *prev_txn)
        return PL_EDAMAGED;
    *prev_txn = txnid;
    memcpy(&n, v->mv_data, sizeof n);
    if (n != v->mv_size / sizeof(size_t) - 1)
        return PL_EDAMAGED;
    for (size_t i = 1; i <= n; i++) {
        memcpy(&pg, (const char *)v->mv_data + i * sizeof(size_t), sizeof pg);
        if (pg < 2 || pg > w->last_pgno)
            return PL_EDAMAGED;
    }
    return 0;
}

/* Reads every record of one database in order. */
static int walk_dbi(struct walk *w, MDB_dbi dbi, const char *name)
{
    MDB_cursor *cur = NULL;
    MDB_stat st;
    MDB_val k, v, prev;
    uint8_t prevbuf[NAME_MAX_LEN + 1];
    size_t n = 0, prev_txn = 0;
    int rc;

    if ((rc = mdb_stat(w->txn, dbi, &st)) || (rc = mdb_cursor_open(w->txn, dbi, &cur)))
        goto out;
    prev.mv_data = prevbuf;
    prev.mv_size = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data;

        if (k.mv_size > NAME_MAX_LEN || ++n > st.ms_entries) {
            rc = PL_EDAMAGED;
            snprintf(w->why, w->len, "database %s holds more records than it counts", name);
            goto out;
        }
        if (dbi == FREE_DBI) {
            rc = check_free(w, &k, &v, &prev_txn, n == 1);
        } else if (n > 1 && key_order(&prev, &k) >= 0) {
            rc = PL_EDAMAGED;
        }
        if (rc) {
            snprintf(w->why, w->len, "database %s has a record out of order or malformed", name);
            goto out;
        }
        memcpy(prevbuf, k.mv_data, k.mv_size);
        prev.mv_size = k.mv_size;
        for (size_t i = 0; i < v.mv_size; i += 4096)
            w->sink += p[i];
        if (v.mv_size)
            w->sink += p[v.mv_size - 1];
    }
    if (rc == MDB_NOTFOUND)
        rc = n == st.ms_entries ? 0 : PL_EDAMAGED;
    if (rc == PL_EDAMAGED && !*w->why)
        snprintf(w->why, w->len, "database %s holds %zu records but counts %zu", name, n,
                 (size_t)st.ms_entries);
    else if (rc)
        snprintf(w->why, w->len, "reading database %s: %s", name, pl_strerror(rc));
out:
    if (cur)
        mdb_cursor_close(cur);
    return rc;
}

/* Walks the main database: each record names a database, walked in turn. */
static int walk_named(struct walk *w)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    char name[NAME_MAX_LEN + 1];
    int rc = walk_dbi(w, MAIN_DBI, "(main)");

    if (rc || (rc = mdb_cursor_open(w->txn, MAIN_DBI, &cur)))
        goto out;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        MDB_dbi dbi;
        int orc;

        if (k.mv_size == 0 || k.mv_size > NAME_MAX_LEN || memchr(k.mv_data, 0, k.mv_size))
            continue; /* not a database name */
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        orc = mdb_dbi_open(w->txn, name, 0, &dbi);
        if (orc == MDB_INCOMPATIBLE || orc == MDB_NOTFOUND)
            continue; /* a plain record of the main database */
        if (orc) {
            rc = orc;
            snprintf(w->why, w->len, "opening database %s: %s", name, pl_strerror(rc));
            goto out;
        }
        rc = walk_dbi(w, dbi, name);
        if (rc)
            goto out;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    else if (!*w->why)
        snprintf(w->why, w->len, "listing the databases: %s", pl_strerror(rc));
out:
    if (cur)
        mdb_cursor_close(cur);
    return rc;
}

/* See verify.h. */
int pl_store_walk(const char *path, char *why, size_t len)
{
    MDB_env *env = NULL;
    MDB_envinfo info;
    MDB_stat est;
    struct stat st;
    struct walk w;
    char data[4096];
    int rc;

    memset(&w, 0, sizeof w);
    w.why = why;
    w.len = len;
    if (len)
        why[0] = 0;
    if ((size_t)snprintf(data, sizeof data, "%s/data.mdb", path) >= sizeof data) {
        rc = ENAMETOOLONG;
        goto out;
    }
    if ((rc = mdb_env_create(&env)) || (rc = mdb_env_set_maxdbs(env, 256)))
        goto out;
    rc = mdb_env_open(env, path, MDB_RDONLY | MDB_NOTLS, 0600);
    if (rc) {
        snprintf(why, len, "opening it: %s", pl_strerror(rc));
        goto out;
    }
    if (stat(data, &st) != 0) {
        rc = errno;
        goto out;
    }
    mdb_env_info(env, &info);
    mdb_env_stat(env, &est);
    w.last_pgno = info.me_last_pgno;
    if ((uint64_t)(info.me_last_pgno + 1) * est.ms_psize > (uint64_t)st.st_size) {
        rc = PL_EDAMAGED;
        snprintf(why, len, "data.mdb is %lld bytes but its pages reach %llu (truncated)",
                 (long long)st.st_size, (unsigned long long)(info.me_last_pgno + 1) * est.ms_psize);
        goto out;
    }
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &w.txn))) {
        snprintf(why, len, "beginning a read: %s", pl_strerror(rc));
        goto out;
    }
    rc = walk_dbi(&w, FREE_DBI, "(free pages)");
    if (!rc)
        rc = walk_named(&w);
    mdb_txn_abort(w.txn);
out:
    if (env)
        mdb_env_close(env);
    if (rc && is_damage(rc))
        rc = PL_EDAMAGED;
    return rc;
}

/* ------------------------------------------------------------ the child */

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGALRM: return "SIGALRM";
    default: return "a signal";
    }
}

/* In the child: walk, report "<code> <why>" on fd, _exit. Never returns. */
static void child_main(const char *path, int fd, unsigned timeout_ms)
{
    char why[480], line[512];
    int rc, n;

    /* Never outlive the bound, nor the parent. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(timeout_ms / 1000 + 2);
    rc = pl_store_walk(path, why, sizeof why);
    n = snprintf(line, sizeof line, "%d %s", rc, why);
    if (n > 0 && write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
        rc = EIO;
    _exit(rc == 0 ? 0 : 1);
}

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads what the child reported (appending to buf). */
static void drain(int fd, char *buf, size_t cap, size_t *used)
{
    ssize_t r;

    while (*used + 1 < cap && (r = read(fd, buf + *used, cap - 1 - *used)) > 0)
        *used += (size_t)r;
    buf[*used] = 0;
}

/* Turns the child's end (exit status or signal) and its report into a code. */
static int judge(int status, int reaped, const char *report, char *why, size_t len)
{
    const char *sp = strchr(report, ' ');
    int code = 0, have = sscanf(report, "%d", &code) == 1;

    if (reaped && WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(why, len, "reading it crashed the checking process (%s)", signal_name(sig));
        if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT)
            return PL_EDAMAGED;
        return EINTR;
    }
    if (!have) {
        /* Reaped by someone else (SIGCHLD ignored) and no report: it died. */
        snprintf(why, len, "the checking process ended without a report");
        return reaped && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : PL_EDAMAGED;
    }
    snprintf(why, len, "%s", sp ? sp + 1 : "");
    return code;
}

/* See verify.h. */
int pl_store_verify(const char *path, unsigned timeout_ms, char *why, size_t len)
{
    char report[512];
    size_t used = 0;
    int fds[2], status = 0, reaped = 0, rc;
    double deadline;
    pid_t pid;

    if (len)
        why[0] = 0;
    report[0] = 0;
    if (!timeout_ms)
        timeout_ms = PL_VERIFY_TIMEOUT_MS;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return errno;
    pid = fork();
    if (pid < 0) {
        rc = errno;
        close(fds[0]);
        close(fds[1]);
        snprintf(why, len, "could not start the checking process: %s", strerror(rc));
        return rc;
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(path, fds[1], timeout_ms);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    deadline = mono_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        pid_t w = waitpid(pid, &status, WNOHANG);

        if (w == pid || (w < 0 && errno == ECHILD)) {
            reaped = w == pid;
            break;
        }
        if (mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            close(fds[0]);
            snprintf(why, len, "checking it took more than %u s", timeout_ms / 1000);
            return PL_ETIMEOUT;
        }
        if (poll(&p, 1, 20) > 0)
            drain(fds[0], report, sizeof report, &used);
    }
    drain(fds[0], report, sizeof report, &used);
    close(fds[0]);
    return judge(status, reaped, report, why, len);
}
