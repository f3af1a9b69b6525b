/* The public entry points of the store (store.h, verify.h): each checks the
 * handle and runs its body, the *_unguarded function of its file, inside
 * STORE_GUARDED (guard.c), so that damage met while it runs makes the store
 * unavailable instead of killing the process. The top of the store's files:
 * only recover.c calls into it from inside the store. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/verify.h"

/* Each public entry point below runs its body (the *_unguarded function of
 * its file) inside STORE_GUARDED; the contracts are in store.h and verify.h. */

/* Test hook (see store.h). */
void pl_store_test_skip_checks(pl_store *s, int on)
{
    s->skip_checks = on != 0;
}

/* See store.h. */
int pl_store_register(pl_store *s, const pl_proc_info *info)
{
    return STORE_GUARDED(s, register_unguarded(s, info));
}

/* See store.h. */
int pl_store_heartbeat(pl_store *s, const pl_incarnation *inc, int64_t now_ms, uint64_t rss,
                       const pl_proc_stats *stats)
{
    return STORE_GUARDED(s, heartbeat_unguarded(s, inc, now_ms, rss, stats));
}

/* See store.h. */
int pl_store_end(pl_store *s, const pl_incarnation *inc, int64_t now_ms)
{
    return STORE_GUARDED(s, end_unguarded(s, inc, now_ms, PL_END_NONE, 0));
}

/* See store.h. */
int pl_store_end_status(pl_store *s, const pl_incarnation *inc, int64_t now_ms, int how, int value)
{
    return STORE_GUARDED(s, end_unguarded(s, inc, now_ms, how, value));
}

/* See store.h. */
int pl_store_procs(pl_store *s, pl_proc_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return STORE_GUARDED(s, procs_unguarded(s, out, n));
}

/* See store.h. */
int pl_store_type_ids(pl_store *s, const char *const *names, const size_t *lens, size_t n, uint32_t *ids)
{
    return STORE_GUARDED(s, type_ids_unguarded(s, names, lens, n, ids));
}

/* See store.h. */
int pl_store_append_batch(pl_store *s, pl_store_batch_item *items, size_t n)
{
    int rc = STORE_GUARDED(s, append_batch_unguarded(s, items, n));

    /* Refused at the door or abandoned half way: no item counts as stored. */
    for (size_t i = 0; rc == PL_EDAMAGED && items && i < n; i++)
        items[i].rc = rc;
    return rc;
}

/* See store.h. */
int pl_store_memory(pl_store *s, const pl_memory_query *q, pl_memory **out)
{
    *out = NULL;
    return STORE_GUARDED(s, memory_unguarded(s, q, out));
}

/* See store.h. */
int pl_store_routes(pl_store *s, const pl_routes_query *q, pl_route_data **out)
{
    *out = NULL;
    return STORE_GUARDED(s, routes_unguarded(s, q, out));
}

/* See store.h. */
int pl_store_prune(pl_store *s, int64_t now_ms)
{
    return STORE_GUARDED(s, prune_unguarded(s, now_ms));
}

/* See store.h. */
int pl_store_stat_get(pl_store *s, pl_store_stat *out)
{
    memset(out, 0, sizeof *out);
    return STORE_GUARDED(s, stat_get_unguarded(s, out));
}

/* See store.h. */
int pl_store_history(pl_store *s, const pl_history_query *q, pl_history **out)
{
    *out = NULL;
    return STORE_GUARDED(s, history_unguarded(s, q, out));
}

/* See store.h. */
int pl_store_mailbox_post(pl_store *s, const pl_incarnation *to, const void *req, size_t len, int64_t now_ms,
                          uint64_t *ticket)
{
    return STORE_GUARDED(s, mailbox_post_unguarded(s, to, req, len, now_ms, ticket));
}

/* See store.h. */
int pl_store_mailbox_take(pl_store *s, const pl_incarnation *me, int64_t now_ms, int64_t max_age_ms,
                          uint64_t *ticket, pl_buf *req)
{
    return STORE_GUARDED(s, mailbox_take_unguarded(s, me, now_ms, max_age_ms, ticket, req));
}

/* See store.h. */
int pl_store_mailbox_reply(pl_store *s, uint64_t ticket, int status, const void *body, size_t len,
                           int64_t now_ms)
{
    return STORE_GUARDED(s, mailbox_reply_unguarded(s, ticket, status, body, len, now_ms));
}

/* See store.h. */
int pl_store_mailbox_result(pl_store *s, uint64_t ticket, int *status, pl_buf *body)
{
    return STORE_GUARDED(s, mailbox_result_unguarded(s, ticket, status, body));
}

/* See store.h. */
int pl_store_mailbox_cancel(pl_store *s, uint64_t ticket)
{
    return STORE_GUARDED(s, mailbox_cancel_unguarded(s, ticket));
}

/* See store.h. */
int pl_store_witness_put(pl_store *s, const pl_incarnation *inc, uint32_t type_id, int64_t time_ms,
                         const pl_witness_step *steps, size_t n)
{
    return STORE_GUARDED(s, witness_put_unguarded(s, inc, type_id, time_ms, steps, n));
}

/* See store.h. */
int pl_store_witnesses(pl_store *s, const char *group, uint32_t pid, const char *host, size_t max,
                       pl_witness_list *out)
{
    memset(out, 0, sizeof *out);
    return STORE_GUARDED(s, witnesses_unguarded(s, group, pid, host, max, out));
}

/* See store.h. */
int pl_store_remote_register(pl_store *s, const pl_proc_info *info, int64_t now_ms, pl_incarnation *out)
{
    return STORE_GUARDED(s, remote_register_unguarded(s, info, now_ms, out));
}

/* See store.h. */
int pl_store_remote_find(pl_store *s, const char *host, uint32_t pid, uint64_t worker_start,
                         pl_incarnation *out)
{
    return STORE_GUARDED(s, remote_find_unguarded(s, host, pid, worker_start, out));
}

/* See verify.h. */
int pl_store_note_recovery(pl_store *s, const char *moved_to, const char *reason, int64_t when_ms)
{
    return STORE_GUARDED(s, note_recovery_unguarded(s, moved_to, reason, when_ms));
}

/* See verify.h. */
int pl_store_recovery(pl_store *s, pl_buf *moved_to, pl_buf *reason, int64_t *when_ms)
{
    return STORE_GUARDED(s, recovery_unguarded(s, moved_to, reason, when_ms));
}

/* Appends one sample (see store.h): a batch of one item. */
int pl_store_append(pl_store *s, const pl_incarnation *inc, int64_t time_ms,
                    const pl_type_count *counts, size_t n)
{
    return pl_store_append_memory(s, inc, time_ms, counts, n, NULL);
}

/* See store.h. */
int pl_store_append_memory(pl_store *s, const pl_incarnation *inc, int64_t time_ms,
                           const pl_type_count *counts, size_t n, const pl_memory_sample *memory)
{
    return pl_store_append_routes(s, inc, time_ms, counts, n, memory, NULL);
}

/* See store.h. */
int pl_store_append_routes(pl_store *s, const pl_incarnation *inc, int64_t time_ms, const pl_type_count *counts,
                           size_t n, const pl_memory_sample *memory, const pl_route_sample *routes)
{
    pl_store_sample smp = {time_ms, counts, n};
    pl_store_batch_item item;
    int rc;

    memset(&item, 0, sizeof item);
    item.inc = *inc;
    item.samples = &smp;
    item.n_samples = 1;
    item.memory = memory;
    item.routes = routes;
    rc = pl_store_append_batch(s, &item, 1);
    return item.rc ? item.rc : rc;
}

/* See store.h. */
int pl_store_check_now(pl_store *s, unsigned timeout_ms)
{
    char why[480];
    int rc;

    if (pl_store_damaged(s, NULL, 0))
        return PL_EDAMAGED;
    rc = pl_store_verify(s->path, timeout_ms, why, sizeof why);
    if (rc == PL_EDAMAGED)
        guard_mark(s, "checked after an unexpected error: %s", why);
    return rc;
}
