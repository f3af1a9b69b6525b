/* Facts about processes: incarnation, liveness, rss, and the zero-config
 * store key (the topmost ancestor running the same program). Linux /proc
 * only; every function reads /proc afresh and keeps no state, so all of them
 * are thread-safe and fork-safe. */
#include "pyloot/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "pyloot/error.h"

/* See proc.h. */
ssize_t pl_read_small(const char *path, char *buf, size_t cap, int flags)
{
    ssize_t n = -1;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | flags);

    if (fd < 0)
        goto out;
    while (got + 1 < cap) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    n = (ssize_t)got;
    close(fd);
out:
    return n;
}

static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    return pl_read_small(path, buf, cap, 0);
}

/* Parses /proc/<pid>/stat: the state letter (field 3), ppid (field 4) and
 * start time (field 22). The command name (field 2) may contain spaces and
 * parentheses, so fields are counted from the last ')'. Returns 0 or
 * PL_ENOTFOUND. */
static int read_stat(uint32_t pid, char *state, uint32_t *ppid, uint64_t *start)
{
    char path[64], buf[1024];
    int rc = PL_ENOTFOUND;
    char *p;
    int field;

    if (pid == 0)
        snprintf(path, sizeof path, "/proc/self/stat");
    else
        snprintf(path, sizeof path, "/proc/%u/stat", pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        goto out;
    p = strrchr(buf, ')');
    if (!p)
        goto out;
    p++;
    /* p now points at " S ppid ..." : field 3 is the next token. */
    for (field = 3; field <= 22; field++) {
        char *end;
        unsigned long long v;

        while (*p == ' ')
            p++;
        if (!*p)
            goto out;
        if (field == 3) {
            if (state)
                *state = *p;
            while (*p && *p != ' ')
                p++;
            continue;
        }
        v = strtoull(p, &end, 10);
        if (end == p)
            goto out;
        if (field == 4 && ppid)
            *ppid = (uint32_t)v;
        if (field == 22 && start)
            *start = (uint64_t)v;
        p = end;
    }
    rc = 0;
out:
    return rc;
}

/* Fills `inc` for the calling process. Returns 0 or PL_ENOTFOUND when /proc
 * cannot be read. Thread-safe. */
int pl_proc_self(pl_incarnation *inc)
{
    uint64_t start = 0;
    int rc = read_stat(0, NULL, NULL, &start);

    if (rc == 0) {
        inc->pid = (uint32_t)getpid();
        inc->start = start;
    }
    return rc;
}

/* 1 when the incarnation's pid runs (a zombie counts as dead) and its start
 * time matches, else 0. kill(pid, 0) failing with EPERM still means the pid
 * exists (another user's process). Thread-safe. */
int pl_proc_alive(const pl_incarnation *inc)
{
    int alive = 0;
    char state = 0;
    uint64_t start = 0;

    if (!inc || inc->pid == 0 || inc->pid > 0x7fffffffu)
        goto out;
    if (kill((pid_t)inc->pid, 0) != 0 && errno != EPERM)
        goto out;
    if (read_stat(inc->pid, &state, NULL, &start) != 0)
        goto out;
    alive = start == inc->start && state != 'Z' && state != 'X' && state != 'x';
out:
    return alive;
}

/* Resident set size of the calling process in bytes (0 if unknown). */
uint64_t pl_proc_rss(void)
{
    char buf[256];
    unsigned long long size = 0, resident = 0;
    uint64_t rss = 0;
    long page = sysconf(_SC_PAGESIZE);

    if (read_small("/proc/self/statm", buf, sizeof buf) > 0 &&
        sscanf(buf, "%llu %llu", &size, &resident) == 2 && page > 0)
        rss = (uint64_t)resident * (uint64_t)page;
    return rss;
}

/* Fills info->host and info->argv (arguments joined by spaces, truncated)
 * for the calling process. Never fails: unknown values are left empty. */
void pl_proc_describe(pl_proc_info *info)
{
    char buf[sizeof info->argv];
    ssize_t n, i;

    info->host[0] = '\0';
    if (gethostname(info->host, sizeof info->host) != 0)
        info->host[0] = '\0';
    info->host[sizeof info->host - 1] = '\0';

    info->argv[0] = '\0';
    n = read_small("/proc/self/cmdline", buf, sizeof buf);
    if (n > 0) {
        /* cmdline separates arguments with NULs and ends with one. */
        while (n > 0 && buf[n - 1] == '\0')
            n--;
        for (i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[n] = '\0';
        memcpy(info->argv, buf, (size_t)n + 1);
    }
}

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t pl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Walks up from the calling process while the parent runs the same
 * executable file (same device and inode behind /proc/<pid>/exe), and fills
 * *root with the topmost such ancestor. Stops at pid 1 and at a parent whose
 * exe cannot be read (another user's process). Returns 0, or PL_ENOTFOUND
 * when /proc/self cannot be read. Thread-safe. */
int pl_proc_server_root(pl_incarnation *root)
{
    struct stat self_exe, parent_exe;
    uint32_t cur = (uint32_t)getpid(), ppid = 0;
    uint64_t start = 0;
    char path[64];
    int rc = PL_ENOTFOUND;
    int depth;

    if (stat("/proc/self/exe", &self_exe) != 0)
        goto out;
    /* 64 bounds the walk against a pathological (or racing) parent chain. */
    for (depth = 0; depth < 64; depth++) {
        if (read_stat(cur, NULL, &ppid, NULL) != 0 || ppid <= 1)
            break;
        snprintf(path, sizeof path, "/proc/%u/exe", ppid);
        if (stat(path, &parent_exe) != 0 || parent_exe.st_dev != self_exe.st_dev ||
            parent_exe.st_ino != self_exe.st_ino)
            break;
        cur = ppid;
    }
    rc = read_stat(cur, NULL, NULL, &start);
    if (rc == 0) {
        root->pid = cur;
        root->start = start;
    }
out:
    return rc;
}

/* See proc.h. */
int pl_proc_end_kind(const pl_proc_info *p, int *value)
{
    int how = PL_END_NONE, v = 0;

    if (p->alive)
        how = PL_END_NONE;
    else if (p->end_how == PL_END_EXITED || p->end_how == PL_END_KILLED) {
        how = p->end_how;
        v = p->end_value;
    } else if (p->end_how == PL_END_CLEAN || p->ended_ms)
        how = PL_END_CLEAN;
    else
        how = PL_END_KILLED;
    if (value)
        *value = v;
    return how;
}

/* See proc.h. Linux numbering (x86, arm, most others). */
const char *pl_signal_name(int sig)
{
    static const char *const names[] = {
        NULL,      "SIGHUP",  "SIGINT",    "SIGQUIT", "SIGILL",    "SIGTRAP", "SIGABRT", "SIGBUS",
        "SIGFPE",  "SIGKILL", "SIGUSR1",   "SIGSEGV", "SIGUSR2",   "SIGPIPE", "SIGALRM", "SIGTERM",
        "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP",   "SIGTTIN", "SIGTTOU", "SIGURG",
        "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH",  "SIGIO",   "SIGPWR",  "SIGSYS",
    };

    return sig > 0 && sig < (int)(sizeof names / sizeof names[0]) ? names[sig] : NULL;
}

/* See proc.h. */
const char *pl_proc_end_text(const pl_proc_info *p, char *out, size_t len)
{
    int value = 0, how = pl_proc_end_kind(p, &value);
    const char *name = pl_signal_name(value);

    if (!len)
        return out;
    if (how == PL_END_NONE)
        snprintf(out, len, "alive");
    else if (how == PL_END_CLEAN)
        snprintf(out, len, "ended cleanly");
    else if (how == PL_END_EXITED)
        snprintf(out, len, "exited %d", value);
    else if (!value)
        snprintf(out, len, "killed");
    else if (name)
        snprintf(out, len, "killed (%s)", name);
    else
        snprintf(out, len, "killed (signal %d)", value);
    return out;
}
