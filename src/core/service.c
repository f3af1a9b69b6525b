/* The zero-config stores of services (service.h): what names a service, its
 * store's directory name and `service` file, the list of the stores under a
 * root and the removal of the idle ones. */
#include "pyloot/service.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/hash.h"
#include "pyloot/store.h"

#define SERVICE_FILE "service"
#define SERVICE_MAGIC "pyloot-service 1"
/* A service file is a few lines: anything larger is not one. */
#define SERVICE_MAX 20000
/* Files a store directory holds (data.mdb, lock.mdb, the marker, service,
 * temporaries): a removal gives up on a directory with more. */
#define STORE_FILES_MAX 64

/* Reads the whole of a small file into buf (NUL-terminated), never through
 * a symbolic link; its length or -1. */
static ssize_t read_file(const char *path, char *buf, size_t cap)
{
    return pl_read_small(path, buf, cap, O_NOFOLLOW);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* See service.h. */
int pl_service_describe(uint32_t root, pl_service *svc)
{
    char path[64], *cmd = NULL;
    ssize_t n, len;
    uint64_t h = PL_FNV1A64_INIT;
    int rc = PL_ENOTFOUND;

    memset(svc, 0, sizeof *svc);
    snprintf(path, sizeof path, "/proc/%u/cwd", root);
    n = readlink(path, svc->cwd, sizeof svc->cwd - 1);
    if (n <= 0) {
        rc = n < 0 && errno ? errno : PL_ENOTFOUND;
        goto out;
    }
    svc->cwd[n] = '\0';
    cmd = malloc(SERVICE_MAX);
    if (!cmd) {
        rc = ENOMEM;
        goto out;
    }
    snprintf(path, sizeof path, "/proc/%u/cmdline", root);
    len = read_file(path, cmd, SERVICE_MAX);
    if (len <= 0) {
        rc = len < 0 && errno ? errno : PL_ENOTFOUND;
        goto out;
    }
    while (len > 0 && cmd[len - 1] == '\0')
        len--;
    /* The key: cwd, then each argument with a NUL after it (so that "a b"
     * and "a" "b" differ), argv[0] by its base name. */
    h = pl_fnv1a64_more(h, svc->cwd, (size_t)n + 1);
    for (ssize_t at = 0, arg = 0; at < len; arg++) {
        const char *a = cmd + at;
        size_t alen = strnlen(a, (size_t)(len - at));
        const char *k = arg == 0 ? base_name(a) : a;
        h = pl_fnv1a64_more(h, k, strlen(k) + 1);
        at += (ssize_t)alen + 1;
    }
    svc->key = pl_hash_mix(h);
    for (ssize_t i = 0; i < len; i++)
        if (cmd[i] == '\0')
            cmd[i] = ' ';
    cmd[len] = '\0';
    snprintf(svc->command, sizeof svc->command, "%s", cmd);
    rc = 0;
out:
    free(cmd);
    return rc;
}

/* Appends up to 24 bytes of word to out, reduced to [A-Za-z0-9._-]. */
static size_t put_word(char *out, const char *word)
{
    size_t n = 0;

    for (; word[n] && n < 24; n++) {
        char c = word[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                 c == '_' || (c == '.' && n > 0);
        out[n] = ok ? c : '_';
    }
    if (!n)
        out[n++] = '_';
    return n;
}

/* The program's name in a command line: the base name of argv[0], or of
 * the script or module it runs when argv[0] is a Python interpreter
 * ("python -m gunicorn", "python3 /venv/bin/gunicorn"). */
static void program_of(const char *command, char *out, size_t cap)
{
    char first[256] = "", second[256] = "", third[256] = "";
    const char *prog;

    sscanf(command, "%255s %255s %255s", first, second, third);
    prog = base_name(first);
    if (strncmp(prog, "python", 6) == 0 && second[0]) {
        if (strcmp(second, "-m") == 0 && third[0])
            prog = third;
        else if (second[0] != '-')
            prog = base_name(second);
    }
    snprintf(out, cap, "%s", prog);
}

/* See service.h. */
void pl_service_store_name(const pl_service *svc, char *out, size_t len)
{
    char buf[128], prog[256];
    const char *dir = base_name(svc->cwd);
    size_t n = 0;

    program_of(svc->command, prog, sizeof prog);
    n += put_word(buf + n, dir[0] ? dir : "root");
    buf[n++] = '-';
    n += put_word(buf + n, prog);
    snprintf(buf + n, sizeof buf - n, "-%016llx", (unsigned long long)svc->key);
    snprintf(out, len, "%s", buf);
}

/* Appends s to out with '\\' and newlines escaped; 0 or ENOSPC. */
static int put_escaped(char *out, size_t cap, size_t *at, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : NULL;
        size_t need = e ? 2 : 1;
        if (*at + need + 1 >= cap)
            return ENOSPC;
        if (e)
            memcpy(out + *at, e, 2);
        else
            out[*at] = *s;
        *at += need;
    }
    out[*at] = '\0';
    return 0;
}

/* The service file's text for svc; 0 or ENOSPC. */
static int service_text(const pl_service *svc, uint64_t max_age_s, char *out, size_t cap)
{
    size_t at = 0;
    int rc;

    at = (size_t)snprintf(out, cap, SERVICE_MAGIC "\ncwd ");
    if ((rc = put_escaped(out, cap, &at, svc->cwd)))
        return rc;
    at += (size_t)snprintf(out + at, cap - at, "\ncommand ");
    if (at >= cap || (rc = put_escaped(out, cap, &at, svc->command)))
        return ENOSPC;
    at += (size_t)snprintf(out + at, cap - at, "\nmax_age_s %llu\n", (unsigned long long)max_age_s);
    return at < cap ? 0 : ENOSPC;
}

/* See service.h. */
int pl_service_note(const char *dir, const pl_service *svc, uint64_t max_age_s)
{
    char *want = malloc(SERVICE_MAX), *have = malloc(SERVICE_MAX);
    char path[4200], tmp[4250];
    size_t len;
    int rc, fd = -1;

    if (!want || !have) {
        rc = ENOMEM;
        goto out;
    }
    rc = service_text(svc, max_age_s, want, SERVICE_MAX);
    if (rc)
        goto out;
    snprintf(path, sizeof path, "%s/" SERVICE_FILE, dir);
    if (read_file(path, have, SERVICE_MAX) >= 0 && strcmp(have, want) == 0)
        goto out;
    snprintf(tmp, sizeof tmp, "%s/.service.%ld", dir, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = errno;
        goto out;
    }
    len = strlen(want);
    if (write(fd, want, len) != (ssize_t)len)
        rc = errno ? errno : EIO;
    if (close(fd) != 0 && !rc)
        rc = errno;
    if (!rc && rename(tmp, path) != 0)
        rc = errno;
    if (rc)
        unlink(tmp);
out:
    free(want);
    free(have);
    return rc;
}

/* Copies the value of the line starting with `key ` in text, unescaped. */
static int get_line(const char *text, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key), n = 0;
    const char *p = text;

    for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) != 0 || p[klen] != ' ')
            continue;
        for (p += klen + 1; *p && *p != '\n' && n + 1 < cap; p++) {
            if (*p == '\\' && (p[1] == '\\' || p[1] == 'n')) {
                out[n++] = p[1] == 'n' ? '\n' : '\\';
                p++;
            } else {
                out[n++] = *p;
            }
        }
        out[n] = '\0';
        return 0;
    }
    return PL_ECORRUPT;
}

/* See service.h. */
int pl_service_read(const char *dir, pl_service *svc, uint64_t *max_age_s)
{
    char *text = malloc(SERVICE_MAX), path[4200], num[32];
    char *end;
    int rc = 0;

    memset(svc, 0, sizeof *svc);
    *max_age_s = 0;
    if (!text)
        return ENOMEM;
    snprintf(path, sizeof path, "%s/" SERVICE_FILE, dir);
    if (read_file(path, text, SERVICE_MAX) < 0) {
        rc = PL_ENOTFOUND;
        goto out;
    }
    if (strncmp(text, SERVICE_MAGIC "\n", sizeof SERVICE_MAGIC) != 0 ||
        get_line(text, "cwd", svc->cwd, sizeof svc->cwd) || get_line(text, "command", svc->command, sizeof svc->command) ||
        get_line(text, "max_age_s", num, sizeof num)) {
        rc = PL_ECORRUPT;
        goto out;
    }
    errno = 0;
    *max_age_s = strtoull(num, &end, 10);
    if (errno || end == num || *end)
        rc = PL_ECORRUPT;
out:
    free(text);
    return rc;
}

/* See service.h. An OFD lock conflicts with LMDB's process-owned lock even
 * within one process, so a store this very process has open counts too. */
int pl_store_dir_in_use(const char *dir)
{
    char path[4200];
    struct flock fl;
    int fd, busy = 0;

    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0; /* no lock file: no LMDB open has run on it since it was made */
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 1;
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0 || fl.l_type != F_UNLCK)
        busy = 1;
    close(fd);
    return busy;
}

/* 1 when path is a directory of this user, not a link, that group and others cannot write. */
static int safe_root(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022);
}

/* See service.h. */
int pl_service_default_root(char *out, size_t len)
{
    const char *tmp = getenv("TMPDIR"), *xdg = getenv("XDG_RUNTIME_DIR"), *home = getenv("HOME");
    char path[4096];

    if (!tmp || tmp[0] != '/')
        tmp = "/tmp";
    snprintf(out, len, "%s/pyloot-%u", tmp, (unsigned)getuid());
    if (safe_root(out))
        return 0;
    if (xdg && xdg[0] == '/') {
        snprintf(path, sizeof path, "%s/pyloot", xdg);
        if (safe_root(path)) {
            snprintf(out, len, "%s", path);
            return 0;
        }
    }
    if (home && home[0] == '/') {
        snprintf(path, sizeof path, "%s/.cache/pyloot-%u", home, (unsigned)getuid());
        if (safe_root(path)) {
            snprintf(out, len, "%s", path);
            return 0;
        }
    }
    return PL_ENOTFOUND;
}

static int cmp_dir(const void *a, const void *b)
{
    return strcmp(((const pl_store_dir *)a)->name, ((const pl_store_dir *)b)->name);
}

/* 1 when `name` under the root looks like a store directory: fills e. */
static int read_store_dir(int rootfd, const char *root, const char *name, const char *keep, pl_store_dir *e)
{
    char path[4400];
    struct stat st, data;

    if (name[0] == '.' || strstr(name, ".corrupt-") || strlen(name) >= sizeof e->name)
        return 0;
    if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return 0;
    snprintf(path, sizeof path, "%s/%s/data.mdb", root, name);
    if (lstat(path, &data) != 0 || !S_ISREG(data.st_mode))
        return 0;
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->last_write_ms = (int64_t)data.st_mtim.tv_sec * 1000 + data.st_mtim.tv_nsec / 1000000;
    e->bytes = (uint64_t)data.st_size;
    snprintf(path, sizeof path, "%s/%s", root, name);
    e->has_service = pl_service_read(path, &e->svc, &e->max_age_s) == 0;
    e->in_use = strcmp(name, keep) == 0 || pl_store_dir_in_use(path);
    return 1;
}

/* See service.h. */
int pl_stores_list(const char *root, const char *keep, pl_store_dir **out, size_t *n)
{
    pl_store_dir *list = NULL;
    size_t count = 0, cap = 0;
    struct dirent *d;
    DIR *dir;
    int rc = 0;

    *out = NULL;
    *n = 0;
    keep = keep ? base_name(keep) : "";
    dir = opendir(root);
    if (!dir)
        return errno;
    while ((d = readdir(dir)) != NULL) {
        if (count == cap) {
            pl_store_dir *more = realloc(list, (cap = cap ? cap * 2 : 8) * sizeof *list);
            if (!more) {
                rc = ENOMEM;
                break;
            }
            list = more;
        }
        count += (size_t)read_store_dir(dirfd(dir), root, d->d_name, keep, &list[count]);
    }
    closedir(dir);
    if (rc) {
        free(list);
        return rc;
    }
    if (count > 1)
        qsort(list, count, sizeof *list, cmp_dir);
    *out = list;
    *n = count;
    return 0;
}

/* Deletes the files of a store directory renamed aside, then the directory.
 * A subdirectory is not a store's: unlinkat fails on it and rmdir then
 * leaves the directory where it is. */
static void remove_store_files(const char *path)
{
    struct dirent *d;
    DIR *dir = opendir(path);
    int fd, left = STORE_FILES_MAX;

    if (!dir)
        return;
    fd = dirfd(dir);
    while ((d = readdir(dir)) != NULL && left-- > 0)
        if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
            unlinkat(fd, d->d_name, 0);
    closedir(dir);
    rmdir(path);
}

/* Locks lock.mdb of `path` as LMDB's exclusive opener would (so that an
 * open starting now waits), renames the directory aside and deletes it.
 * 1 when removed. */
static int remove_store(const char *root, const char *name)
{
    char path[4400], aside[4500], lock[4500];
    struct flock fl;
    int fd, removed = 0;

    snprintf(path, sizeof path, "%s/%s", root, name);
    snprintf(lock, sizeof lock, "%s/lock.mdb", path);
    fd = open(lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno != ENOENT)
        return 0;
    if (fd >= 0) {
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = 0;
        fl.l_len = 1;
        if (fcntl(fd, F_OFD_SETLK, &fl) != 0)
            goto out; /* open by someone */
    }
    snprintf(aside, sizeof aside, "%s/.%s.removing.%ld", root, name, (long)getpid());
    if (rename(path, aside) == 0) {
        remove_store_files(aside);
        removed = 1;
    }
out:
    if (fd >= 0)
        close(fd);
    return removed;
}

/* See service.h. */
int pl_stores_sweep(const char *root, const char *keep, int64_t now_ms, size_t *removed)
{
    pl_store_dir *list = NULL;
    size_t n = 0, count = 0;
    int rc = pl_stores_list(root, keep, &list, &n);

    if (removed)
        *removed = 0;
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        uint64_t age = list[i].max_age_s ? list[i].max_age_s : PL_STORE_DEFAULT_MAX_AGE_S;
        if (list[i].in_use)
            continue;
        if (now_ms - list[i].last_write_ms <= (int64_t)(age * 1000))
            continue;
        count += (size_t)remove_store(root, list[i].name);
    }
    free(list);
    if (removed)
        *removed = count;
    return 0;
}
