/* pyloot core: facts about processes (Linux /proc only).
 *
 * An incarnation names one run of a process (pid + start time), so a reused
 * pid is a new incarnation; the store keys everything by it. The functions
 * read /proc afresh and keep no state: all are thread-safe and fork-safe,
 * and none allocates (every result is written into caller-owned memory).
 * Implemented in procinfo.c. */
#ifndef PYLOOT_PROC_H
#define PYLOOT_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A process incarnation. `start` is the process start time in clock ticks
 * since boot (field 22 of /proc/<pid>/stat), so a reused pid is a new
 * incarnation. Stored big-endian as pid(4) + start(8). */
typedef struct pl_incarnation {
    uint32_t pid;
    uint64_t start;
} pl_incarnation;

/* What a collector measures of its own cost, written with each heartbeat
 * (docs/metrics.md). Microseconds of the monotonic clock. */
typedef struct pl_proc_stats {
    uint64_t collection_us;   /* wall time of the last collection pass (count pass + witness search) */
    uint64_t gil_held_us;     /* GIL held by pyloot's own threads since the process started, cumulative */
} pl_proc_stats;

/* How an incarnation ended (pl_proc_info.end_how), as the parent that reaped
 * it saw it (a gunicorn master's child_exit hook: pl_store_end_status). */
enum {
    PL_END_NONE = 0,   /* running, or ended without a word from its parent */
    PL_END_CLEAN = 1,  /* exited with code 0 */
    PL_END_EXITED = 2, /* exited with a non-zero code (end_value) */
    PL_END_KILLED = 3  /* killed by signal end_value */
};

/* Information about one incarnation, as registered and as listed. */
typedef struct pl_proc_info {
    pl_incarnation inc;
    char host[64];          /* NUL-terminated, truncated */
    char argv[256];         /* command line, arguments separated by spaces; NUL-terminated, truncated */
    uint32_t interval_ms;   /* collector interval */
    int64_t first_seen_ms;  /* unix time in ms */
    int64_t last_seen_ms;   /* last heartbeat */
    int64_t ended_ms;       /* clean exit time, 0 while running or if killed */
    uint64_t rss;           /* bytes, at the last heartbeat */
    uint32_t samples;       /* samples currently stored */
    int alive;              /* filled by pl_store_procs: not ended, and pl_proc_alive() (local)
                             * or a push within max(3 x interval, 10 s) (remote) */
    int remote;             /* pl_store_procs: pushed by a worker of another host (remote mode) */
    uint64_t worker_start;  /* remote: the start the worker gave; inc.start is assigned by the store */
    pl_proc_stats stats;    /* at the last heartbeat (0 before the first, and for an older writer);
                             * stored by pl_store_remote_register, ignored by pl_store_register */
    int end_how;            /* PL_END_*, as stored (pl_store_end_status); ignored by pl_store_register */
    int end_value;          /* PL_END_EXITED: the exit code; PL_END_KILLED: the signal number */
} pl_proc_info;

/* How a listed incarnation ended, the one rule every view uses: PL_END_NONE
 * while alive; the stored end_how when its parent gave one; PL_END_CLEAN for
 * an end the process wrote itself on its way out (its exit handlers ran);
 * PL_END_KILLED with *value 0 (signal unknown) for one that is gone without
 * writing an end. *value is the exit code or signal number (0 otherwise). */
int pl_proc_end_kind(const pl_proc_info *p, int *value);

/* "SIGKILL" for 9 and the other common signals; NULL for a number without a name here. */
const char *pl_signal_name(int sig);

/* Writes how p ended in words into out (NUL-terminated, truncated):
 * "killed (SIGKILL)", "killed (signal 40)", "killed" (no status seen),
 * "exited 3", "ended cleanly", or "alive". Returns out. */
const char *pl_proc_end_text(const pl_proc_info *p, char *out, size_t len);

/* Fills `inc` for the calling process. */
int pl_proc_self(pl_incarnation *inc);
/* 1 when pid is running and its start time matches, else 0. */
int pl_proc_alive(const pl_incarnation *inc);
/* Reads at most cap-1 bytes of a small file (a /proc file, a store's
 * service file) into buf, NUL-terminated; `flags` are added to O_RDONLY |
 * O_CLOEXEC (e.g. O_NOFOLLOW). Returns the byte count, or -1 (errno set). */
ssize_t pl_read_small(const char *path, char *buf, size_t cap, int flags);
/* Resident set size of the calling process in bytes (0 if unknown). */
uint64_t pl_proc_rss(void);
/* Fills info->host and info->argv for the calling process. */
void pl_proc_describe(pl_proc_info *info);
/* Unix time in milliseconds. */
int64_t pl_now_ms(void);

/* Fills *root with the zero-config store key of the calling process: walks
 * up the parent chain while the parent's /proc/<ppid>/exe is the same file
 * (same device and inode) as /proc/self/exe, and returns the topmost such
 * ancestor's incarnation, or the calling process itself when its parent runs
 * another program. A gunicorn master and its workers, uvicorn's supervisor
 * and its spawned workers, and Flask's reloader and its child all run the
 * same interpreter binary, so they share one key; two servers started from
 * a shell share none. Caveat: a supervisor that itself runs on the same
 * interpreter binary (supervisord, a pytest run spawning servers) becomes the
 * root of everything it starts. Returns 0 or PL_ENOTFOUND (no /proc).
 * Thread-safe. */
int pl_proc_server_root(pl_incarnation *root);

#endif
