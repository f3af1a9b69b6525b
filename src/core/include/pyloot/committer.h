/* pyloot core: group commit for the central server's ingest. Requests
 * queue their store items (pl_store_batch_item) here; one thread takes
 * everything queued, up to a bound, and stores it with ONE
 * pl_store_append_batch (one write transaction, one fsync), then says which
 * tickets are done. Requests that arrive while a transaction commits go
 * into the next one, so the rate is no longer bounded by one commit per
 * request.
 *
 * Threads: every function may be called from any thread at once (an
 * internal mutex protects the queue); `done` is called on the committer's
 * thread, without the mutex held. */
#ifndef PYLOOT_COMMITTER_H
#define PYLOOT_COMMITTER_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/store.h"

#define PL_COMMIT_MAX_JOBS 256u          /* jobs in one transaction at most */
#define PL_COMMIT_MAX_BYTES (8u << 20)   /* and their counts' bytes, roughly */

/* One queued piece of work. The submitter fills `item` (and whatever it
 * points to, which the job owns) and `release`; the committer fills
 * item.rc, item.inc (for a pushed incarnation) and `rc`. */
typedef struct pl_commit_job {
    pl_store_batch_item item;
    size_t bytes;                  /* counted against PL_COMMIT_MAX_BYTES */
    void (*release)(struct pl_commit_job *job); /* frees the job and what it owns */
    int rc;                        /* item.rc, or the batch's error after the commit */
    /* Private to the committer; protected by its mutex. */
    struct pl_commit_job *next;
    uint64_t ticket;
    int state;
} pl_commit_job;

/* Called after a transaction with the highest ticket it answered: every job
 * with a ticket <= done_upto is done. Must not call back into the
 * committer's submit. */
typedef void (*pl_commit_done_fn)(void *ctx, uint64_t done_upto);

typedef struct pl_committer pl_committer;

/* Starts the committing thread over `store` (borrowed; must outlive it).
 * 0 or an errno. */
int pl_committer_new(pl_committer **out, pl_store *store, pl_commit_done_fn done, void *ctx);

/* Commits what is queued, stops the thread, releases the abandoned jobs and
 * frees. Jobs done but never collected are the submitters' (they collect or
 * abandon them first). NULL is a no-op. */
void pl_committer_free(pl_committer *c);

/* Queues a job; the committer owns it until pl_committer_collect hands it
 * back or, after pl_committer_abandon, releases it. *ticket (>= 1) is the
 * number the done callback compares with. 0, or ESHUTDOWN once stopping
 * (the job stays the caller's). */
int pl_committer_submit(pl_committer *c, pl_commit_job *job, uint64_t *ticket);

/* 1 when the job is done (the caller owns it again and reads job->rc and
 * job->item), 0 while it waits. With `block`, waits until it is done. */
int pl_committer_collect(pl_committer *c, pl_commit_job *job, int block);

/* The submitter no longer waits: the job is released now if done, else by
 * the committer after its transaction. */
void pl_committer_abandon(pl_committer *c, pl_commit_job *job);

#endif
