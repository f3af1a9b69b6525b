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
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/verify.h"

#define RECOVERY_KEY "recovered"

/* ------------------------------------------------------- recovery note */

/* See verify.h. Value: when_ms (8, host order), moved_to, NUL, reason. */
int pl_store_note_recovery(pl_store *s, const char *moved_to, const char *reason, int64_t when_ms)
{
    size_t a = strlen(moved_to), b = strlen(reason);
    uint8_t buf[PART_MAX];
    MDB_val k = {sizeof RECOVERY_KEY - 1, RECOVERY_KEY}, v;
    MDB_txn *txn = NULL;
    int rc;

    if (a > 1200)
        a = 1200;
    if (8 + a + 1 + b > sizeof buf)
        b = sizeof buf - 8 - a - 1;
    memcpy(buf, &when_ms, 8);
    memcpy(buf + 8, moved_to, a);
    buf[8 + a] = 0;
    memcpy(buf + 9 + a, reason, b);
    v.mv_data = buf;
    v.mv_size = 9 + a + b;
    rc = txn_begin(s, 1, &txn);
    if (rc == 0)
        rc = txn_end(s, txn, mdb_put(txn, s->meta, &k, &v, 0));
    return rc;
}

/* See verify.h. */
int pl_store_recovery(pl_store *s, pl_buf *moved_to, pl_buf *reason, int64_t *when_ms)
{
    MDB_val k = {sizeof RECOVERY_KEY - 1, RECOVERY_KEY}, v;
    MDB_txn *txn = NULL;
    const uint8_t *p, *nul;
    int rc = txn_begin(s, 0, &txn);

    if (rc)
        return rc;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rc = PL_ENOTFOUND;
    } else if (rc == 0) {
        p = v.mv_data;
        nul = v.mv_size > 8 ? memchr(p + 8, 0, v.mv_size - 8) : NULL;
        if (!nul) {
            rc = PL_ECORRUPT;
        } else {
            memcpy(when_ms, p, 8);
            pl_buf_append(moved_to, p + 8, (size_t)(nul - p - 8));
            pl_buf_cstr(moved_to);
            pl_buf_append(reason, nul + 1, v.mv_size - (size_t)(nul + 1 - p));
            pl_buf_cstr(reason);
            rc = moved_to->err || reason->err ? ENOMEM : 0;
        }
    }
    txn_abort(s, txn);
    return rc;
}

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

/* Checks the store unless the marker vouches for it; moves it aside when
 * damaged (marker_fd is then swapped for the new directory's, locked). */
static int check_or_recover(const pl_store_options *opt, unsigned timeout_ms, const char *data,
                            const char *marker, int *marker_fd, pl_store_report *rep)
{
    char want[256], have[256];
    struct stat st;
    ssize_t n;
    int rc, fd;

    if (stat(data, &st) != 0 || st.st_size == 0)
        return 0; /* a new store: this server creates it */
    marker_text(data, want, sizeof want);
    n = pread(*marker_fd, have, sizeof have - 1, 0);
    have[n > 0 ? n : 0] = 0;
    if (strcmp(want, have) == 0)
        return 0;
    rep->checked = 1;
    rc = pl_store_verify(opt->path, timeout_ms, rep->reason, sizeof rep->reason);
    if (rc == 0)
        return 0;
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

/* See verify.h. */
int pl_store_open_guarded(pl_store **out, const pl_store_options *opt, unsigned timeout_ms,
                          pl_store_report *rep)
{
    char data[4200], marker[4200], text[256];
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
    rc = check_or_recover(opt, timeout_ms, data, marker, &fd, rep);
    if (rc)
        goto out;
    rc = pl_store_open(out, opt);
    if (rc)
        goto explain;
    if (rep->moved_to[0])
        pl_store_note_recovery(*out, rep->moved_to, rep->reason, pl_now_ms());
    marker_text(data, text, sizeof text);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, text, strlen(text), 0) < 0)
        rc = 0; /* without a marker the next worker checks again: slower, not wrong */
    goto out;
explain:
    pl_store_explain(rc, rc == EEXIST || rc == ENOTDIR || rc == ENOENT ? "creating" : "opening", opt->path,
                     rep->message, sizeof rep->message);
out:
    if (fd >= 0)
        close(fd);
    return rc;
}
