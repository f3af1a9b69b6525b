/* pyloot core: checking a store before trusting it, and recovering from a
 * damaged one.
 *
 * LMDB trusts its pages: a damaged page makes a reader follow a wild pointer
 * (SIGSEGV, SIGBUS). So a store this server did not create is first walked
 * by a forked child process, where a crash cannot hurt, under a time bound;
 * a damaged store is renamed aside (never deleted) and a fresh one created
 * in its place. See docs/store.md ("Damaged stores").
 *
 * Threads: every function here may be called from any thread, with the GIL
 * released; the check forks, and the child only runs libc and LMDB on a
 * fresh environment before _exit(). Implemented in src/core/store/verify.c
 * (the walk and the child) and src/core/store/recover.c (the guarded open). */
#ifndef PYLOOT_VERIFY_H
#define PYLOOT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/buf.h"
#include "pyloot/store.h"

/* Bound of one check (a 700 MB store takes about 1 s; docs/store.md). */
#define PL_VERIFY_TIMEOUT_MS 20000u
/* Time the walk spends decoding records at most (after the page checks;
 * pl_store_verify's child also stops at three quarters of its bound): keeps
 * the check inside its bound on a store far larger than the default
 * max_bytes (about 1.5 s for 700 MB, docs/store.md); records left undecoded
 * then are not judged. */
#define PL_VERIFY_DECODE_MS 8000u
/* The marker file next to data.mdb: which server checked which file. */
#define PL_VERIFY_MARKER "pyloot-verified"

/* Walks the store at `path` in THIS process: opens the environment
 * read-only and reads every record of every database (the free list
 * included), checking key order, entry counts and page numbers; then, the
 * pages being sound, decodes every value of procs, types, log, snap,
 * windows and the chunk tables as the readers do (for at most
 * PL_VERIFY_DECODE_MS). Returns 0, PL_EDAMAGED
 * (bad pages) or PL_ECORRUPT (sound pages, but records that do not decode:
 * "N records could not be read (first: table T, key K: what)"), with the
 * reason in why (NUL-terminated, truncated to len), or an errno/LMDB code
 * for a store that cannot be opened for other reasons (permissions,
 * missing). A damaged store may crash the caller: use pl_store_verify
 * unless the store is known to be sound (tests). */
int pl_store_walk(const char *path, char *why, size_t len);

/* Runs pl_store_walk in a forked child and waits at most timeout_ms (0 =
 * PL_VERIFY_TIMEOUT_MS) for it. Returns 0 (sound), PL_EDAMAGED (the child
 * found damage or was killed by SIGSEGV, SIGBUS, SIGILL, SIGFPE or
 * SIGABRT; why says which), PL_ECORRUPT (records that do not decode, as
 * pl_store_walk), PL_ETIMEOUT (the child was killed at the bound:
 * not judged damaged, since a slow disk can do that), or another code from
 * the walk or from fork. Never crashes the caller whatever the file holds. */
int pl_store_verify(const char *path, unsigned timeout_ms, char *why, size_t len);

/* Records of a store that do not decode (pl_store_check_records). */
typedef struct pl_store_damage {
    uint64_t records;   /* how many */
    int incomplete;     /* the walk's decode budget ran out before the last record */
    char first[400];    /* the first: "table T, key K: what failed" ("" when none) */
} pl_store_damage;

/* Decodes every record of the tables the readers decode (as pl_store_walk
 * does after its page checks) in one read transaction of an open store,
 * counting those that do not decode into *d. Returns 0 (d->records may be
 * > 0) or an LMDB error. Reads bad pages as LMDB does: call it only on a
 * store pl_store_verify (or pl_store_open_guarded) found sound or
 * PL_ECORRUPT. Thread-safe as any read of the store. */
int pl_store_check_records(pl_store *s, pl_store_damage *d);

/* What pl_store_open_guarded did. */
typedef struct pl_store_report {
    int checked;              /* a check ran (the marker did not vouch for the file) */
    int records_damaged;      /* read-only: the pages are sound but records do not decode
                               * (reason says which); the store was opened anyway */
    char moved_to[4096];      /* the damaged store's new name ("" when nothing was moved) */
    char reason[512];         /* why it was judged damaged */
    char message[1024];       /* on failure: what is wrong and how to fix it */
} pl_store_report;

/* Opens the store at opt->path like pl_store_open, but never trusts a file
 * this server did not create: unless the marker says this server (boot id +
 * pl_proc_server_root) already checked this very data.mdb (device, inode),
 * it runs pl_store_verify, under an flock on the marker so that workers
 * starting together check once. A damaged store is renamed to
 * "<path>.corrupt-<UTC time>", a new one is created in its place and the
 * move is noted in its meta (pl_store_recovery); rep says so. A store the
 * marker vouches for but that the open itself finds damaged (damaged since:
 * see pl_store_damaged) is moved aside the same way, without a check. With
 * opt->read_only nothing is written: the check always runs and a damaged
 * store gives PL_EDAMAGED, except one whose pages are sound but whose
 * records do not decode (PL_ECORRUPT from the check): it is opened, to be
 * read past those records, with rep->records_damaged set. On failure rep->message says what is wrong and
 * how to fix it. *out as for pl_store_open. */
int pl_store_open_guarded(pl_store **out, const pl_store_options *opt, unsigned timeout_ms,
                          pl_store_report *rep);

/* Replaces the store of `damaged`, a handle pl_store_damaged() has given
 * up: like pl_store_open_guarded at opt->path, except that when data.mdb is
 * still the file that handle opened it is moved aside without a check (the
 * reason is the handle's) and a new store started, its meta noting the move.
 * When it is another file (another process moved the damaged one already, or
 * someone replaced it), that one is opened as pl_store_open_guarded would.
 * Never touches the damaged handle's env. rep and *out as for
 * pl_store_open_guarded; rep->moved_to is set when this call moved it. */
int pl_store_replace(pl_store *damaged, pl_store **out, const pl_store_options *opt, unsigned timeout_ms,
                     pl_store_report *rep);

/* Marks the newest incarnation of `pid` that has not ended as ended at
 * now_ms, with how it ended (pl_store_end_status: `how` a PL_END_*, `value`
 * the exit code or signal; with a status, an incarnation that wrote its own
 * end in the last minute and has no status yet gets it), in a forked child process, so that the caller (a gunicorn master:
 * the one process that must never die) keeps no env and no damaged store
 * can crash it. The child ends within timeout_ms (it is killed then).
 * Returns 0 (marked), PL_ENOTFOUND (none to mark), PL_EDAMAGED (the child
 * died of a signal: the store looks damaged), PL_ETIMEOUT, or the store's
 * error; why says what went wrong in words. Thread-safe. */
int pl_store_end_isolated(const char *path, uint32_t pid, int64_t now_ms, int how, int value, unsigned timeout_ms,
                          char *why, size_t len);

/* Reads the recovery note of a store started in place of a damaged one:
 * 0 with the old store's new name, the reason and the time (unix ms) set,
 * or PL_ENOTFOUND. moved_to and reason are appended to (NUL-terminated). */
int pl_store_recovery(pl_store *s, pl_buf *moved_to, pl_buf *reason, int64_t *when_ms);

/* Writes that note (see pl_store_open_guarded). */
int pl_store_note_recovery(pl_store *s, const char *moved_to, const char *reason, int64_t when_ms);

/* Describes error rc of the store at path in words, with how to fix it, into
 * buf (NUL-terminated, truncated to len). `what` names the step
 * ("opening", "writing to"). */
void pl_store_explain(int rc, const char *what, const char *path, char *buf, size_t len);

#endif
