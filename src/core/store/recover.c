/* The guarded open: check a store this server did not create (once per
 * file per server, under an flock), move a damaged one aside and start a
 * new one, note the move in the new store's meta, and say in words what is
 * wrong when nothing works. See verify.h and docs/store.md. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/verify.h"



/* ------------------------------------------------------------ messages */

/* See verify.h. */
void pl_store_explain(int rc, const char *what, const char *path, char *buf, size_t len)
{
    const char *fix;

    switch (rc) {
    case EACCES:
    case EPERM:
    case EROFS:
        fix = "make it writable by this user, or point PYLOOT_DB (or PyLoot(path=...)) at a "
              "directory this user can create and write";
        break;
    case ENOTDIR:
    case ENOENT:
    case ENAMETOOLONG:
    case ELOOP:
        fix = "a part of the path is missing or not a directory: point PYLOOT_DB (or "
              "PyLoot(path=...)) at a directory pyloot can create";
        break;
    case ENOSPC:
    case EDQUOT:
        fix = "free space on the device that holds it; pyloot retries by itself";
        break;
    case MDB_MAP_FULL:
        fix = "pruning could not free space; give the store a larger map_size, or lower max_bytes";
        break;
    case PL_ESCHEMA:
        fix = "move it away (or point PYLOOT_DB elsewhere) and pyloot starts a new store";
        break;
    case PL_EDAMAGED:
    case PL_ECORRUPT:
        fix = "move it away by hand; pyloot then starts a new store";
        break;
    case PL_ETIMEOUT:
    case PL_EBUSY:
        fix = "pyloot retries by itself; if this lasts, check the disk that holds it";
        break;
    default:
        fix = "pyloot retries by itself";
        break;
    }
    snprintf(buf, len, "%s the store %s failed: %s. Fix: %s", what, path, pl_strerror(rc), fix);
}

/* --------------------------------------------------------------- marker */

/* This server, as written in the marker: boot id + the server root. */
static void server_key(char *out, size_t len)
{
    char boot[64] = "";
    pl_incarnation root = {0, 0};
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

    if (f) {
        if (!fgets(boot, sizeof boot, f))
            boot[0] = 0;
        fclose(f);
        boot[strcspn(boot, "\n")] = 0;
    }
    pl_proc_server_root(&root);
    snprintf(out, len, "%s %" PRIu32 " %" PRIu64, boot, root.pid, root.start);
}

/* The marker's text for data.mdb as it is now ("" when it is absent). */
static void marker_text(const char *data, char *out, size_t len)
{
    char key[160];
    struct stat st;

    out[0] = 0;
    if (stat(data, &st) != 0)
        return;
    server_key(key, sizeof key);
    snprintf(out, len, "pyloot-verified 1 %s %llu %llu\n", key, (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
}

/* Opens and flocks the marker of the directory as it is named now: retries
 * when the directory was renamed aside while we waited (the locked file
 * then lives under the old name). Waits at most wait_ms. */
static int lock_marker(const char *marker, unsigned wait_ms, int *out)
{
    struct stat a, b;
    unsigned waited = 0;
    int fd = -1, rc = 0;

    for (;;) {
        fd = open(marker, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = errno;
            break;
        }
        while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK && errno != EINTR) {
                rc = errno;
                goto fail;
            }
            if (waited >= wait_ms) {
                rc = PL_EBUSY;
                goto fail;
            }
            usleep(20000);
            waited += 20;
        }
        if (fstat(fd, &a) == 0 && stat(marker, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            break;
        close(fd); /* moved aside meanwhile: lock the new one */
        fd = -1;
    }
    *out = fd;
    return rc;
fail:
    close(fd);
    return rc;
}

/* ------------------------------------------------------------- moving */

/* Renames path to path.corrupt-<UTC time>[-n]; the new name goes to out. */
static int move_aside(const char *path, char *out, size_t len)
{
    char stamp[32];
    struct tm tm;
    struct stat st;
    time_t now = time(NULL);

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (int n = 1; n < 100; n++) {
        int w = n == 1 ? snprintf(out, len, "%s.corrupt-%s", path, stamp)
                       : snprintf(out, len, "%s.corrupt-%s-%d", path, stamp, n);
        if (w < 0 || (size_t)w >= len)
            return ENAMETOOLONG;
        if (lstat(out, &st) == 0)
            continue;
        return rename(path, out) == 0 ? 0 : errno;
    }
    return EEXIST;
}

/* mkdir -p (mode 0700): the store's parents too, as PyLoot always did. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n >= sizeof buf)
        return ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        buf[i] = 0;
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return errno;
        buf[i] = i == n ? 0 : '/';
    }
    return 0;
}

/* ------------------------------------------------------- guarded open */

static int open_read_only(pl_store **out, const pl_store_options *opt, unsigned timeout_ms,
                          pl_store_report *rep)
{
    int rc = pl_store_verify(opt->path, timeout_ms, rep->reason, sizeof rep->reason);

    rep->checked = 1;
    /* Records that do not decode sit on sound pages: readable past them
     * (pyloot report says which), unlike bad pages, which crash a reader. */
    if (rc == PL_ECORRUPT) {
        rep->records_damaged = 1;
        rc = 0;
    }
    if (rc == PL_EDAMAGED)
        snprintf(rep->message, sizeof rep->message,
                 "the store %s is damaged (%s); it was not opened. Fix: move it away; a server "
                 "using it starts a new one", opt->path, rep->reason);
    else if (rc == 0 && (rc = pl_store_open(out, opt)) != 0)
        pl_store_explain(rc, "opening", opt->path, rep->message, sizeof rep->message);
    else if (rc)
        snprintf(rep->message, sizeof rep->message, "checking the store %s failed: %s",
                 opt->path, *rep->reason ? rep->reason : pl_strerror(rc));
    return rc;
}

/* A data.mdb found damaged while in use (or while opening it): no check
 * needed, it is moved aside if it is still that file. */
struct known_bad {
    dev_t dev;
    ino_t ino;
    const char *why;
};

/* Checks the store unless the marker vouches for it; moves it aside when
 * damaged (marker_fd is then swapped for the new directory's, locked). */
static int check_or_recover(const pl_store_options *opt, unsigned timeout_ms, const char *data,
                            const char *marker, int *marker_fd, pl_store_report *rep,
                            const struct known_bad *bad)
{
    char want[256], have[256];
    struct stat st;
    ssize_t n;
    int rc, fd;

    if (stat(data, &st) != 0 || st.st_size == 0)
        return 0; /* a new store: this server creates it */
    if (bad && st.st_dev == bad->dev && st.st_ino == bad->ino) {
        rep->checked = 1;
        snprintf(rep->reason, sizeof rep->reason, "%s", bad->why);
        rc = PL_EDAMAGED;
        goto move;
    }
    marker_text(data, want, sizeof want);
    n = pread(*marker_fd, have, sizeof have - 1, 0);
    have[n > 0 ? n : 0] = 0;
    if (strcmp(want, have) == 0)
        return 0;
    rep->checked = 1;
    rc = pl_store_verify(opt->path, timeout_ms, rep->reason, sizeof rep->reason);
    if (rc == 0)
        return 0;
move:
    if (rc != PL_EDAMAGED && rc != PL_ECORRUPT) {
        char explained[600];
        pl_store_explain(rc, "checking", opt->path, explained, sizeof explained);
        snprintf(rep->message, sizeof rep->message, "%.600s (%.400s)", explained,
                 *rep->reason ? rep->reason : pl_strerror(rc));
        return rc;
    }
    rc = move_aside(opt->path, rep->moved_to, sizeof rep->moved_to);
    if (rc) {
        rep->moved_to[0] = 0;
        snprintf(rep->message, sizeof rep->message,
                 "the store %s is damaged (%s) and could not be moved aside: %s. Fix: move it "
                 "away by hand; pyloot then starts a new store", opt->path, rep->reason, pl_strerror(rc));
        return PL_EDAMAGED;
    }
    if (mkdir(opt->path, 0700) != 0 && errno != EEXIST)
        rc = errno;
    if (rc == 0)
        rc = lock_marker(marker, timeout_ms + 10000, &fd);
    if (rc) {
        /* Moved (reported in moved_to), but the new one cannot be started yet. */
        pl_store_explain(rc, "creating", opt->path, rep->message, sizeof rep->message);
        return rc;
    }
    /* Hold the old lock until the new one is held: a worker woken on the
     * old marker then finds the new one locked, never an unchecked gap. */
    close(*marker_fd);
    *marker_fd = fd;
    return 0;
}

/* Opens the store under the marker's lock (see pl_store_open_guarded),
 * treating `bad` as known damaged. Damage met by the open itself (a file
 * the marker vouched for, damaged since) is moved aside the same way, once. */
static int open_guarded(pl_store **out, const pl_store_options *opt, unsigned timeout_ms,
                        pl_store_report *rep, const struct known_bad *bad)
{
    char data[4200], marker[4200], text[256], why[256];
    struct known_bad found;
    struct stat st;
    int rc, fd = -1;

    *out = NULL;
    memset(rep, 0, sizeof *rep);
    if (!timeout_ms)
        timeout_ms = PL_VERIFY_TIMEOUT_MS;
    if (!opt || !opt->path || !*opt->path)
        return PL_EBADARG;
    if (opt->read_only)
        return open_read_only(out, opt, timeout_ms, rep);
    if (strlen(opt->path) > 4000) {
        rc = ENAMETOOLONG;
        goto explain;
    }
    snprintf(data, sizeof data, "%s/data.mdb", opt->path);
    snprintf(marker, sizeof marker, "%s/" PL_VERIFY_MARKER, opt->path);
    if ((rc = make_dirs(opt->path)) != 0)
        goto explain;
    rc = lock_marker(marker, timeout_ms + 10000, &fd);
    if (rc)
        goto explain;
    rc = check_or_recover(opt, timeout_ms, data, marker, &fd, rep, bad);
    if (rc)
        goto out;
    if (stat(data, &st) != 0)
        memset(&st, 0, sizeof st);
    rc = store_open(out, opt, why, sizeof why);
    if ((rc == PL_EDAMAGED || rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) &&
        st.st_ino && !rep->moved_to[0]) {
        /* Under the lock nobody else moved it: the file opened is st. */
        found.dev = st.st_dev;
        found.ino = st.st_ino;
        found.why = rc == PL_EDAMAGED && why[0] ? why : pl_strerror(rc);
        rc = check_or_recover(opt, timeout_ms, data, marker, &fd, rep, &found);
        if (rc == 0)
            rc = store_open(out, opt, NULL, 0);
        if (rc)
            goto explain;
    } else if (rc) {
        goto explain;
    }
    if (rep->moved_to[0])
        pl_store_note_recovery(*out, rep->moved_to, rep->reason, pl_now_ms());
    marker_text(data, text, sizeof text);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, text, strlen(text), 0) < 0)
        rc = 0; /* without a marker the next worker checks again: slower, not wrong */
    goto out;
explain:
    if (!rep->message[0])
        pl_store_explain(rc, rc == EEXIST || rc == ENOTDIR || rc == ENOENT ? "creating" : "opening",
                         opt->path, rep->message, sizeof rep->message);
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* See verify.h. */
int pl_store_open_guarded(pl_store **out, const pl_store_options *opt, unsigned timeout_ms,
                          pl_store_report *rep)
{
    return open_guarded(out, opt, timeout_ms, rep, NULL);
}

/* See verify.h. */
int pl_store_replace(pl_store *damaged, pl_store **out, const pl_store_options *opt, unsigned timeout_ms,
                     pl_store_report *rep)
{
    char why[256];
    struct known_bad bad = {damaged->dev, damaged->ino, why};

    pl_store_damaged(damaged, why, sizeof why);
    if (!why[0])
        snprintf(why, sizeof why, "%s", pl_strerror(PL_EDAMAGED));
    return open_guarded(out, opt, timeout_ms, rep, &bad);
}

/* ------------------------------------------------ ending, in a child */

/* An end the process wrote itself this recently may still get its parent's
 * status: the parent reaps it within moments of its exit. */
#define END_STATUS_LATE_MS 60000

/* 1 when procs[i] is an incarnation of pid the parent's word applies to: one
 * not ended, or (with a status) one that ended by itself just now and has no
 * status yet. */
static int end_candidate(const pl_proc_info *p, uint32_t pid, int64_t now_ms, int how)
{
    if (p->inc.pid != pid)
        return 0;
    if (!p->ended_ms)
        return 1;
    return how != PL_END_NONE && p->end_how == PL_END_NONE && p->ended_ms >= now_ms - END_STATUS_LATE_MS;
}

/* In the child: marks pid's newest incarnation that has not ended (or, with
 * a status, that ended by itself just now) as ended, reports "<code>" on fd,
 * _exit. Never returns. Only libc and LMDB on an env of its own, as the
 * verifying child (verify.c). */
static void end_child(const char *path, uint32_t pid, int64_t now_ms, int how, int value, int fd,
                      unsigned timeout_ms)
{
    pl_store_options opt;
    pl_store *s = NULL;
    pl_proc_info *procs = NULL;
    size_t n = 0, best = SIZE_MAX;
    char line[32];
    int rc, len;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(timeout_ms / 1000 + 2);
    memset(&opt, 0, sizeof opt);
    opt.path = path;
    rc = pl_store_open(&s, &opt);
    if (rc == 0)
        rc = pl_store_procs(s, &procs, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (end_candidate(&procs[i], pid, now_ms, how) &&
            (best == SIZE_MAX || procs[i].first_seen_ms >= procs[best].first_seen_ms))
            best = i;
    if (rc == 0)
        rc = best == SIZE_MAX ? PL_ENOTFOUND : pl_store_end_status(s, &procs[best].inc, now_ms, how, value);
    len = snprintf(line, sizeof line, "%d", rc);
    if (write(fd, line, (size_t)len) < 0)
        rc = EIO;
    /* No close: the process ends here (LMDB releases its locks with it). */
    _exit(rc == 0 ? 0 : 1);
}

/* See verify.h. The master waits here (bounded); gunicorn's own reaping of
 * children cannot run meanwhile (its SIGCHLD handler is Python code, run
 * after this returns), so the child is reaped here. */
int pl_store_end_isolated(const char *path, uint32_t pid, int64_t now_ms, int how, int value, unsigned timeout_ms,
                          char *why, size_t len)
{
    char report[64];
    int fds[2], status = 0, rc = 0, code = 0;
    ssize_t got = 0, r;
    struct timespec t0, t;
    pid_t child, w;

    if (len)
        why[0] = 0;
    if (how < PL_END_NONE || how > PL_END_KILLED) {
        snprintf(why, len, "%s", pl_strerror(PL_EBADARG));
        return PL_EBADARG;
    }
    if (pipe2(fds, O_CLOEXEC) != 0)
        return errno;
    child = fork();
    if (child < 0) {
        rc = errno;
        close(fds[0]);
        close(fds[1]);
        snprintf(why, len, "could not start a process: %s", strerror(rc));
        return rc;
    }
    if (child == 0) {
        close(fds[0]);
        end_child(path, pid, now_ms, how, value, fds[1], timeout_ms);
    }
    close(fds[1]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        w = waitpid(child, &status, WNOHANG);
        if (w == child || (w < 0 && errno != EINTR))
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= (long)timeout_ms) {
            kill(child, SIGKILL);
            while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
            close(fds[0]);
            snprintf(why, len, "the store did not answer within %u ms", timeout_ms);
            return PL_ETIMEOUT;
        }
        usleep(2000);
    }
    while (got < (ssize_t)sizeof report - 1 &&
           (r = read(fds[0], report + got, sizeof report - 1 - (size_t)got)) > 0)
        got += r;
    report[got > 0 ? got : 0] = 0;
    close(fds[0]);
    if (w == child && WIFSIGNALED(status)) {
        snprintf(why, len, "the process doing it died of signal %d (the store looks damaged)",
                 WTERMSIG(status));
        return PL_EDAMAGED;
    }
    if (sscanf(report, "%d", &code) != 1) {
        snprintf(why, len, "the process doing it ended without a report");
        return PL_EDAMAGED;
    }
    if (code && code != PL_ENOTFOUND)
        snprintf(why, len, "%s", pl_strerror(code));
    return code;
}
