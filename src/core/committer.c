/* Group commit for the ingest (see pyloot/committer.h): a FIFO of jobs,
 * one thread that stores the head of the queue (at most
 * PL_COMMIT_MAX_JOBS jobs or PL_COMMIT_MAX_BYTES) in one
 * pl_store_append_batch, marks them done in order and calls `done`. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/committer.h"
#include "pyloot/error.h"

enum { QUEUED = 0, COMMITTING, DONE, ABANDONED };

struct pl_committer {
    pl_store *store;
    pl_commit_done_fn done;
    void *ctx;
    pthread_mutex_t lock;
    pthread_cond_t work;          /* jobs queued, or stopping */
    pthread_cond_t finished;      /* a transaction's jobs are done */
    pl_commit_job *head, *tail;   /* the queue; protected by lock */
    uint64_t next_ticket;         /* protected by lock */
    int stopping;                 /* protected by lock */
    pthread_t thread;
    int started;
};

/* Takes the head of the queue up to the bounds (at least one job). Called
 * with the lock held. */
static size_t take(pl_committer *c, pl_commit_job **batch)
{
    size_t n = 0, bytes = 0;

    while (c->head && n < PL_COMMIT_MAX_JOBS && (n == 0 || bytes + c->head->bytes <= PL_COMMIT_MAX_BYTES)) {
        pl_commit_job *job = c->head;

        c->head = job->next;
        job->next = NULL;
        bytes += job->bytes;
        batch[n++] = job;
    }
    if (!c->head)
        c->tail = NULL;
    return n;
}

/* Stores one batch: the items are copied into one array for the store
 * (the jobs stay where they are), then the results copied back. An error
 * of the work after the commit (compaction, trims) leaves the stored items
 * stored: their rc stays 0 and they answer success. */
static void commit_batch(pl_committer *c, pl_commit_job **batch, size_t n, pl_store_batch_item *items)
{
    size_t i;

    for (i = 0; i < n; i++)
        items[i] = batch[i]->item;
    pl_store_append_batch(c->store, items, n);
    for (i = 0; i < n; i++) {
        batch[i]->item.rc = items[i].rc;
        batch[i]->item.inc = items[i].inc;
        batch[i]->rc = items[i].rc;
    }
}

static void *run(void *arg)
{
    pl_committer *c = arg;
    pl_commit_job *batch[PL_COMMIT_MAX_JOBS];
    pl_store_batch_item items[PL_COMMIT_MAX_JOBS];
    size_t n, i;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->head && !c->stopping)
            pthread_cond_wait(&c->work, &c->lock);
        if (!c->head)
            break; /* stopping with nothing left */
        n = take(c, batch);
        for (i = 0; i < n; i++)
            if (batch[i]->state == QUEUED)
                batch[i]->state = COMMITTING;
        pthread_mutex_unlock(&c->lock);
        commit_batch(c, batch, n, items);
        pthread_mutex_lock(&c->lock);
        uint64_t upto = batch[n - 1]->ticket;
        for (i = 0; i < n; i++) {
            if (batch[i]->state == ABANDONED)
                batch[i]->release(batch[i]);
            else
                batch[i]->state = DONE;
        }
        pthread_cond_broadcast(&c->finished);
        pthread_mutex_unlock(&c->lock);
        if (c->done)
            c->done(c->ctx, upto);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int pl_committer_new(pl_committer **out, pl_store *store, pl_commit_done_fn done, void *ctx)
{
    pl_committer *c;
    int rc;

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return ENOMEM;
    c->store = store;
    c->done = done;
    c->ctx = ctx;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->work, NULL);
    pthread_cond_init(&c->finished, NULL);
    rc = pthread_create(&c->thread, NULL, run, c);
    if (rc) {
        pthread_cond_destroy(&c->finished);
        pthread_cond_destroy(&c->work);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return rc;
    }
    c->started = 1;
    *out = c;
    return 0;
}

void pl_committer_free(pl_committer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_broadcast(&c->work);
    pthread_mutex_unlock(&c->lock);
    if (c->started)
        pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->finished);
    pthread_cond_destroy(&c->work);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int pl_committer_submit(pl_committer *c, pl_commit_job *job, uint64_t *ticket)
{
    int rc = 0;

    pthread_mutex_lock(&c->lock);
    if (c->stopping) {
        rc = ESHUTDOWN;
        goto out;
    }
    job->next = NULL;
    job->state = QUEUED;
    job->ticket = *ticket = ++c->next_ticket;
    if (c->tail)
        c->tail->next = job;
    else
        c->head = job;
    c->tail = job;
    pthread_cond_signal(&c->work);
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int pl_committer_collect(pl_committer *c, pl_commit_job *job, int block)
{
    int done;

    pthread_mutex_lock(&c->lock);
    while (block && job->state != DONE)
        pthread_cond_wait(&c->finished, &c->lock);
    done = job->state == DONE;
    pthread_mutex_unlock(&c->lock);
    return done;
}

void pl_committer_abandon(pl_committer *c, pl_commit_job *job)
{
    int release;

    pthread_mutex_lock(&c->lock);
    release = job->state == DONE;
    if (!release)
        job->state = ABANDONED;
    pthread_mutex_unlock(&c->lock);
    if (release)
        job->release(job);
}
