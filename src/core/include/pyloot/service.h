/* pyloot core: the zero-config stores of services (service.c).
 *
 * A service is what stays the same when a server restarts (a deploy, a
 * service manager's restart): the working directory and the command line of
 * its root process (pl_proc_server_root). Its zero-config store is named
 * after them, so a restart continues the same history with new incarnations,
 * and two services that differ in either never share one. Each such store
 * holds a small text file, `service`, that says which service it belongs to
 * and how long it keeps its samples; a store idle longer than that is removed
 * by the next pyloot that starts (pl_stores_sweep), never while any process
 * has it open. docs/store.md, "Where the zero-config store lives".
 *
 * Linux only (/proc). No state: every function is thread-safe. */
#ifndef PYLOOT_SERVICE_H
#define PYLOOT_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/proc.h"

/* What names a service. */
typedef struct pl_service {
    char cwd[4096];     /* the root process's working directory, as the kernel resolves it */
    char command[4096]; /* its command line, arguments joined by spaces (truncated) */
    uint64_t key;       /* hash of cwd, the program's base name and the other arguments */
} pl_service;

/* Fills svc for the process `root` (its /proc/<pid>/cwd and cmdline). The
 * key hashes the working directory, the base name of argv[0] (an interpreter
 * found at another path is the same program) and every other argument as it
 * is, each separately. Returns 0, or the errno value of reading either
 * (the process is gone, or belongs to another user), PL_ENOTFOUND when one
 * is empty. */
int pl_service_describe(uint32_t root, pl_service *svc);

/* The directory name of svc's store: "<cwd base>-<program>-<key, 16 hex>",
 * the two words cut at 24 bytes and reduced to [A-Za-z0-9._-] (anything else
 * becomes '_'; a leading '.' too). Always NUL-terminates out (len >= 64). */
void pl_service_store_name(const pl_service *svc, char *out, size_t len);

/* Writes `dir`/service for svc (max_age_s: how long the store keeps its
 * samples, 0 for the store's default), unless it already says exactly that;
 * written to a temporary file and renamed, mode 0600. 0 or an errno value. */
int pl_service_note(const char *dir, const pl_service *svc, uint64_t max_age_s);

/* Reads `dir`/service: 0 with svc (key 0) and *max_age_s (0: the default)
 * set, PL_ENOTFOUND when there is none, PL_ECORRUPT when it is not one. */
int pl_service_read(const char *dir, pl_service *svc, uint64_t *max_age_s);

/* 1 when a process has the LMDB environment in `dir` open (LMDB holds a lock
 * on the first byte of lock.mdb while it is open), else 0. Never call it on a
 * store the calling process has open itself: closing any descriptor of
 * lock.mdb drops the process's own POSIX locks on it, LMDB's among them. */
int pl_store_dir_in_use(const char *dir);

/* The root of this user's zero-config stores as the Python side chooses it
 * (pyloot.backends.default_root), found without creating anything: the first
 * of $TMPDIR/pyloot-<uid> (TMPDIR absolute, else /tmp), $XDG_RUNTIME_DIR/pyloot,
 * $HOME/.cache/pyloot-<uid> that is a directory of this user (not a symbolic
 * link) that neither group nor others can write. 0 with out set, or
 * PL_ENOTFOUND (out then names the first candidate). */
int pl_service_default_root(char *out, size_t len);

/* One store directory under a root. */
typedef struct pl_store_dir {
    char name[256];         /* the directory's name under the root */
    int has_service;        /* a `service` file was read (else svc is empty: a store of an older pyloot) */
    pl_service svc;
    uint64_t max_age_s;     /* from the service file; 0: the store's default */
    int64_t last_write_ms;  /* data.mdb's modification time */
    uint64_t bytes;         /* data.mdb's size */
    int in_use;             /* pl_store_dir_in_use; 1 for `keep` (not checked) */
} pl_store_dir;

/* Lists the pyloot stores directly under `root`: directories of this user
 * (not symbolic links) that hold a data.mdb, whose names do not start with
 * '.' and are not a damaged store moved aside (".corrupt-"). Sorted by name.
 * `keep` (a directory name or path, may be NULL) is the caller's own store:
 * listed as in use without a check (see pl_store_dir_in_use). *out is
 * malloc'ed (free() it). 0, ENOTDIR/ENOENT/EACCES for a root that cannot be
 * read, or ENOMEM. */
int pl_stores_list(const char *root, const char *keep, pl_store_dir **out, size_t *n);

/* Removes every store listed by pl_stores_list(root, keep) that has been
 * idle (no write to data.mdb) longer than its retention (its service file's
 * max_age_s, else PL_STORE_DEFAULT_MAX_AGE_S), other than `keep` (a directory name or
 * path, may be NULL), and that no process has open: each is locked (so that
 * an LMDB open waits), renamed to a hidden name, then deleted. *removed (may
 * be NULL) is the number removed. Never removes anything else; a store that
 * cannot be removed is left as it is. 0 or the error of pl_stores_list. */
int pl_stores_sweep(const char *root, const char *keep, int64_t now_ms, size_t *removed);

#endif
