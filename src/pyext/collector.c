/* The collector: counts live gc objects by type (and shallow bytes), and a
 * native thread that does it every `interval` seconds and answers live-object
 * requests forwarded by other workers. Over 800 lines because the count pass,
 * the thread's loop and its start/stop/fork handling share the locks and the
 * state described below; each is a function of its own.
 *
 * Locking order: collect_lock, then the GIL. A Python thread that wants
 * collect_lock releases the GIL first, so the collector thread (which holds
 * collect_lock while it waits for the GIL) can never deadlock with it. */
#include "pyext.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "heap.h"
#include "requests.h"
#include "pyloot/error.h"
#include "pyloot/push.h"
#include "pyloot/store.h"
#include "pyloot/verify.h"
#include "typetable.h"
#include "untracked.h"
#include "util.h"
#include "witness.h"

#if PY_VERSION_HEX >= 0x030D0000
#define pl_is_finalizing() Py_IsFinalizing()
#else
#define pl_is_finalizing() _Py_IsFinalizing()
#endif

/* Everything below is protected by collect_lock, except where noted. */
static pthread_mutex_t collect_lock = PTHREAD_MUTEX_INITIALIZER;
static pl_type_table table;
static pl_untracked untracked; /* the visited set of untracked objects, kept across passes */

/* Thread state, protected by state_lock. */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t state_cond = PTHREAD_COND_INITIALIZER;
typedef struct collector_state {
    int running;          /* a thread exists and has not been joined */
    int stop;             /* asked to stop */
    pthread_t thread;
    pl_store *store;      /* borrowed from store_obj; NULL while the store is unavailable, and in remote mode */
    int registered;       /* this incarnation's procs record is written (local mode) */
    pl_push *push;        /* remote mode: the pusher (owned), used by the thread only; else NULL */
    uint64_t serial;      /* pl_store_serial of store_obj */
    PyObject *store_obj;  /* strong reference; changed only with the GIL held */
    double interval;
    int gc_collect;
    pl_incarnation self;
    /* statistics, read by stats() */
    uint64_t collections;
    uint64_t errors;
    int last_error;
    double last_pass_ms;  /* GIL held: gc.collect excluded */
    double last_gc_ms;
    double last_write_ms;
    pl_untracked_pass untracked; /* the last pass's untracked objects */
    uint64_t requests_answered;
    int paused;           /* a store outage is in progress (see "store errors") */
    uint64_t dropped;     /* samples dropped by outages, all of them */
    int outage_rc;        /* the error of the outage in progress */
} collector_state;
/* Serial of a pusher's type ids in table.ids_for: store serials are small
 * counters, so the top bit keeps the two apart. */
#define PUSH_SERIAL(p) ((UINT64_C(1) << 63) | pl_push_generation(p))
static collector_state C;

/* Answers forwarded live-object requests; handed in by module.c, so that
 * this file does not depend on the live-object code. Set once at module
 * exec, before any thread starts. */
static pl_live_fn live_answer;

/* Called at each wake-up of the thread (module.c hands in the live routes'
 * cache expiry). Set once at module initialisation. */
static void (*tick_fn)(void);

/* See pyext.h. */
void pl_collector_set_tick(void (*fn)(void))
{
    tick_fn = fn;
}

/* ---- the count pass ---- */

/* Counts a tracked object, then the untracked objects it refers to. */
static int count_one(PyObject *o, void *arg)
{
    pl_type_table *t = arg;
    pl_type_entry *e = pl_typetable_lookup(t, Py_TYPE(o));
    if (!e)
        return ENOMEM;
    e->count++;
    e->bytes += pl_sizeof_by(o, e->size);
    return pl_untracked_referents(&untracked, o);
}

/* One pass over the tracked objects into `table`. collect_lock and the GIL
 * held. Returns 0, -1 with a Python exception, or an errno value. */
static int count_pass(int gc_collect, double *gc_ms, double *pass_ms)
{
    double t0 = pl_now_s();
    if (gc_collect) {
        /* PyGC_Collect does nothing while the app has gc disabled; the
         * seed's gc.collect() collects regardless, so enable it around. */
        int was_enabled = PyGC_Enable();
        PyGC_Collect();
        if (!was_enabled)
            PyGC_Disable();
    }
    double t1 = pl_now_s();
    table.epoch++;
    /* The gc lists themselves (objects frozen by gc.freeze() included), not a
     * list built from them: no allocation proportional to the heap. The
     * untracked objects are reached from them (untracked.h). */
    int rc = pl_untracked_begin(&untracked, &table);
    if (rc == 0)
        rc = pl_live_walk(count_one, &table);
    pl_untracked_end(&untracked);
    if (rc == 0)
        pl_typetable_publish(&table);
    double t2 = pl_now_s();
    *gc_ms = (t1 - t0) * 1e3;
    *pass_ms = (t2 - t1) * 1e3;
    /* stats() shows the last pass, the thread's or collect()'s. */
    pthread_mutex_lock(&state_lock);
    C.untracked = untracked.last;
    C.last_gc_ms = *gc_ms;
    C.last_pass_ms = *pass_ms;
    pthread_mutex_unlock(&state_lock);
    return rc;
}

/* ---- the sink: each sample goes to the local store, or (remote mode) to the
 * pusher's queue; the pusher sends it from the collector thread ---- */

typedef struct pl_sink {
    pl_store *store;  /* local mode */
    uint64_t serial;
    pl_push *push;    /* remote mode */
} pl_sink;

static int sink_type_ids(const pl_sink *sink, const char **names, const size_t *lens, size_t n, uint32_t *ids)
{
    if (sink->push)
        return pl_push_type_ids(sink->push, names, lens, n, ids);
    return pl_store_type_ids(sink->store, names, lens, n, ids);
}

static int sink_append(const pl_sink *sink, const pl_incarnation *self, int64_t now_ms, pl_type_count *counts,
                       size_t n, const pl_memory_sample *memory, const pl_route_sample *routes)
{
    if (sink->push)
        return pl_push_add_sample(sink->push, now_ms, counts, n, memory, routes);
    return pl_store_append_routes(sink->store, self, now_ms, counts, n, memory, routes);
}

/* After a collection (its witness search included): the collector's stats
 * go with the heartbeat (local mode: one write; remote mode: with the next
 * message the pusher sends). GIL NOT held. */
static int sink_beat(const pl_sink *sink, const pl_incarnation *self, int64_t now_ms, const pl_proc_stats *stats)
{
    if (sink->push) {
        pl_push_set_stats(sink->push, stats);
        return 0;
    }
    return pl_store_heartbeat(sink->store, self, now_ms, pl_proc_rss(), stats);
}

/* Remote mode: sends what the pusher holds (bounded by its timeout) and
 * prints its outage lines. Collector thread, GIL NOT held. */
static void sink_send(pl_push *push, int end, int timeout_ms)
{
    pl_buf log = PL_BUF_INIT;
    pl_push_send(push, pl_now_ms(), end, timeout_ms, &log);
    if (log.len)
        fputs(pl_buf_cstr(&log), stderr);
    pl_buf_free(&log);
}

/* Resolves new names to ids of the sink and hands it the sample. collect_lock
 * held, GIL NOT held: only C memory is touched. */
static int write_sample(const pl_sink *sink, const pl_incarnation *self, int64_t now_ms)
{
    uint64_t serial = sink->serial;
    int rc = 0;
    size_t n = 0, n_new = 0;
    pl_type_count *counts = NULL;
    const char **names = NULL;
    size_t *lens = NULL;
    uint32_t *ids = NULL;
    pl_type_entry **fresh = NULL;

    if (table.ids_for != serial) {
        /* Ids are per store: a different store (after fork, or a new PyLoot) resolves again. */
        for (size_t i = 0; i < table.cap; i++)
            table.slots[i].type_id = UINT32_MAX;
        table.ids_for = serial;
    }
    counts = malloc((table.used + 1) * sizeof *counts);
    names = malloc((table.used + 1) * sizeof *names);
    lens = malloc((table.used + 1) * sizeof *lens);
    ids = malloc((table.used + 1) * sizeof *ids);
    fresh = malloc((table.used + 1) * sizeof *fresh);
    if (!counts || !names || !lens || !ids || !fresh) {
        rc = ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < table.cap; i++) {
        pl_type_entry *e = &table.slots[i];
        if (e->tp && e->epoch == table.epoch && e->type_id == UINT32_MAX) {
            names[n_new] = e->name;
            lens[n_new] = strlen(e->name);
            if (lens[n_new] > PL_TYPE_NAME_MAX)
                lens[n_new] = PL_TYPE_NAME_MAX;
            fresh[n_new++] = e;
        }
    }
    if (n_new) {
        rc = sink_type_ids(sink, names, lens, n_new, ids);
        if (rc)
            goto done;
        for (size_t i = 0; i < n_new; i++)
            fresh[i]->type_id = ids[i];
    }
    for (size_t i = 0; i < table.cap; i++) {
        pl_type_entry *e = &table.slots[i];
        if (e->tp && e->epoch == table.epoch && e->count) {
            counts[n].type_id = e->type_id;
            counts[n].count = e->count;
            counts[n].bytes = e->bytes;
            n++;
        }
    }
    /* Where the memory is, beside the sample: its objects' bytes, then RSS
     * and the allocator's free bytes, measured now (GIL released). */
    pl_memory_sample memory = {0, 0, 0};
    for (size_t i = 0; i < n; i++)
        memory.python_bytes += counts[i].bytes;
    pl_memory_measure(&memory);
    /* The requests served since the last sample, by route, go with it (and
     * are lost with it when it cannot be written). */
    pl_requests_taken taken;
    if (pl_requests_copy(&taken, 1) == 0) {
        pl_route_sample routes = {taken.routes, taken.n};
        rc = sink_append(sink, self, now_ms, counts, n, &memory, taken.tracking ? &routes : NULL);
        pl_requests_taken_free(&taken);
    } else {
        rc = sink_append(sink, self, now_ms, counts, n, &memory, NULL);
    }
done:
    free(counts);
    free(names);
    free(lens);
    free(ids);
    free(fresh);
    return rc;
}

/* ---- store errors: pause, back off, count (docs/store.md, "Faults") ----
 * Nothing the store does at run time raises into the app. A store that
 * cannot be opened, or a write that fails (disk full, a full map pruning
 * cannot cure, permission denied), pauses collection: the thread retries
 * with a backoff of 1 s doubling to 60 s, logs one line when a write outage
 * begins and one when it ends, and counts the samples dropped meanwhile.
 * (A store that cannot be opened logs through its Store object, once per
 * distinct error.) Only the collector thread touches an outage; what stats()
 * shows is copied into C under state_lock. */

#define OUTAGE_FIRST_S 1.0
#define OUTAGE_MAX_S 60.0
#define STORE_UNAVAILABLE (-1) /* the Store object is unavailable: it said why */

typedef struct outage {
    int rc;         /* the error of the outage in progress; 0 when none */
    double since;   /* when it began (pl_now_s) */
    double delay;   /* the current backoff */
} outage;

static uint64_t outage_dropped(const outage *o, double interval, double now)
{
    uint64_t n = (uint64_t)((now - o->since) / interval);
    return n ? n : 1;
}

static void outage_publish(const outage *o, uint64_t dropped_now)
{
    pthread_mutex_lock(&state_lock);
    C.paused = o->rc != 0;
    C.outage_rc = o->rc;
    C.dropped += dropped_now;
    pthread_mutex_unlock(&state_lock);
}

/* A collection failed with rc: returns when to try again. */
static double outage_failed(outage *o, int rc, pl_store *store, double interval)
{
    double now = pl_now_s();
    if (!o->rc) {
        o->since = now;
        o->delay = OUTAGE_FIRST_S;
        if (rc != STORE_UNAVAILABLE && store) {
            char msg[1024];
            pl_store_explain(rc, "writing to", pl_store_path(store), msg, sizeof msg);
            pl_log("pyloot: pid %d: %s (samples are dropped until it works; retrying every %g s to %g s)",
                   (int)getpid(), msg, OUTAGE_FIRST_S, OUTAGE_MAX_S);
        }
    } else {
        o->delay = o->delay * 2 < OUTAGE_MAX_S ? o->delay * 2 : OUTAGE_MAX_S;
    }
    o->rc = rc;
    outage_publish(o, 0);
    return now + (o->delay > interval ? o->delay : interval);
}

/* A collection worked: ends the outage in progress, if any. */
static void outage_ended(outage *o, pl_store *store, double interval)
{
    if (!o->rc)
        return;
    double now = pl_now_s();
    uint64_t dropped = outage_dropped(o, interval, now);
    if (o->rc != STORE_UNAVAILABLE)
        pl_log("pyloot: pid %d: writing to the store %s works again after %.0f s; %llu samples were dropped",
               (int)getpid(), pl_store_path(store), now - o->since, (unsigned long long)dropped);
    o->rc = 0;
    outage_publish(o, dropped);
}

/* The collector thread's store when it has none: asks the Store object
 * (which retries its open when its backoff allows). 0 with *store set,
 * STORE_UNAVAILABLE, or ECANCELED at interpreter exit. */
static int acquire_store(pl_store **store, uint64_t *serial)
{
    int rc = STORE_UNAVAILABLE;
    if (pl_is_finalizing())
        return ECANCELED;
    PyGILState_STATE g = PyGILState_Ensure();
    double t0 = pl_now_s();
    const char *why = NULL;
    pl_store *s = C.store_obj ? pl_store_try(C.store_obj, &why) : NULL;
    if (s) {
        *store = s;
        *serial = pl_store_serial(C.store_obj);
        rc = 0;
    } else if (!why && PyErr_Occurred()) {
        PyErr_Clear(); /* a closed store: stay paused until stopped */
    }
    pl_gil_held_add(pl_now_s() - t0);
    PyGILState_Release(g);
    if (!rc) {
        pthread_mutex_lock(&state_lock);
        C.store = *store;
        C.serial = *serial;
        pthread_mutex_unlock(&state_lock);
    }
    return rc;
}

static int register_nogil(pl_store *store, const pl_incarnation *self, double interval);

/* ---- the thread ---- */

static void answer_mailbox(pl_store *store, const pl_incarnation *self)
{
    pl_buf req = PL_BUF_INIT, body = PL_BUF_INIT;
    /* A bounded number per wake-up, so collections are never starved. */
    for (int i = 0; i < 8; i++) {
        uint64_t ticket;
        pl_buf_reset(&req);
        int rc = pl_store_mailbox_take(store, self, pl_now_ms(), 30000, &ticket, &req);
        if (rc)
            break;
        pl_live_query q;
        int status = 400;
        pl_buf_reset(&body);
        if (pl_live_query_decode(req.data, req.len, &q) != 0)
            pl_buf_puts(&body, "{\"error\":\"malformed forwarded request\"}");
        else if (pl_is_finalizing() || !live_answer || live_answer(NULL, &q, &body, &status) != 0) {
            pl_buf_reset(&body);
            status = 503;
            pl_buf_puts(&body, "{\"error\":\"the worker could not answer\"}");
        }
        pl_store_mailbox_reply(store, ticket, status, body.data, body.len, pl_now_ms());
        pthread_mutex_lock(&state_lock);
        C.requests_answered++;
        pthread_mutex_unlock(&state_lock);
    }
    pl_buf_free(&req);
    pl_buf_free(&body);
}

/* One collection from the collector thread. Returns 0 or an error.
 * Measures the collection's wall time (waiting for the GIL, gc.collect when
 * asked, the count pass and its type naming, the store write, the witness
 * search) and adds the GIL-held part to pyloot's GIL time (util.h). */
static int thread_collect(const pl_sink *sink, const pl_incarnation *self, int gc_collect)
{
    double gc_ms = 0, pass_ms = 0;
    pthread_mutex_lock(&collect_lock);
    if (pl_is_finalizing()) {
        pthread_mutex_unlock(&collect_lock);
        return ECANCELED;
    }
    double start = pl_now_s();
    PyGILState_STATE g = PyGILState_Ensure();
    double held = pl_now_s();
    int rc = count_pass(gc_collect, &gc_ms, &pass_ms);
    if (rc < 0) {
        PyErr_WriteUnraisable(NULL);
        rc = EIO;
    }
    pl_gil_held_add(pl_now_s() - held);
    PyGILState_Release(g);
    double t0 = pl_now_s();
    int64_t now_ms = pl_now_ms();
    if (!rc)
        rc = write_sample(sink, self, now_ms);
    double write_ms = (pl_now_s() - t0) * 1e3;
    /* Witnesses are stored beside the samples: local mode only. */
    if (!rc && sink->store)
        pl_witness_after_collection(&table, sink->store, self, now_ms);
    pl_typetable_evict(&table);
    pthread_mutex_unlock(&collect_lock);
    if (!rc) {
        pl_proc_stats stats;
        double took = pl_now_s() - start;
        stats.collection_us = (uint64_t)(took * 1e6) ? (uint64_t)(took * 1e6) : 1;
        stats.gil_held_us = pl_gil_held_us();
        rc = sink_beat(sink, self, now_ms, &stats);
    }

    pthread_mutex_lock(&state_lock);
    C.collections++;
    C.last_gc_ms = gc_ms;
    C.last_pass_ms = pass_ms;
    C.last_write_ms = write_ms;
    if (rc) {
        C.errors++;
        C.last_error = rc;
    }
    pthread_mutex_unlock(&state_lock);
    return rc;
}

#define POLL_MS 50

/* A write error that nothing outside the store explains (not a full disk
 * or map, permissions, memory, an unavailable store): see collector_main. */
static int unexplained(int rc)
{
    return rc != STORE_UNAVAILABLE && rc != PL_EDAMAGED && rc != ECANCELED && rc != ENOSPC && rc != EDQUOT &&
           rc != EROFS && rc != EACCES && rc != EPERM && rc != ENOMEM && rc != MDB_MAP_FULL && rc != PL_ETIMEOUT &&
           rc != PL_EBUSY;
}

static void *collector_main(void *arg)
{
    pthread_setname_np(pthread_self(), "pyloot-collect");
    pl_gil_account_thread();
    pthread_mutex_lock(&state_lock);
    pl_sink sink = {C.store, C.serial, C.push};
    int registered = C.registered;
    pl_incarnation self = C.self;
    double interval = C.interval;
    int gc_collect = C.gc_collect;
    pthread_mutex_unlock(&state_lock);
    outage o = {0, 0, 0};

    double next = pl_now_s(); /* first collection right away */
    for (;;) {
        pthread_mutex_lock(&state_lock);
        if (!C.stop) {
            double wait = next - pl_now_s();
            if (wait > POLL_MS / 1000.0)
                wait = POLL_MS / 1000.0;
            if (wait > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                long ns = ts.tv_nsec + (long)(wait * 1e9);
                ts.tv_sec += ns / 1000000000L;
                ts.tv_nsec = ns % 1000000000L;
                pthread_cond_timedwait(&state_cond, &state_lock, &ts);
            }
        }
        int stop = C.stop;
        pthread_mutex_unlock(&state_lock);
        if (stop || pl_is_finalizing())
            break;
        if (sink.store && registered)
            answer_mailbox(sink.store, &self);
        if (tick_fn)
            tick_fn();
        if (pl_now_s() >= next) {
            int rc = 0;
            if (!sink.push) {
                /* Local mode: a store that is unavailable is asked for again,
                 * and this incarnation registered once it is there. */
                rc = sink.store ? 0 : acquire_store(&sink.store, &sink.serial);
                if (!rc && !registered) {
                    rc = register_nogil(sink.store, &self, interval);
                    registered = rc == 0;
                }
            }
            if (!rc)
                rc = thread_collect(&sink, &self, gc_collect);
            if (rc == ECANCELED)
                break;
            if (rc && !o.rc && sink.store && !sink.push && unexplained(rc)) {
                /* The first failure of an outage that nothing outside the
                 * store explains: garbage in a page can read as wrong
                 * answers rather than fault. Checked in a child process. */
                if (pl_store_check_now(sink.store, 0) == PL_EDAMAGED)
                    rc = PL_EDAMAGED;
            }
            if (rc == PL_EDAMAGED && !sink.push) {
                /* The store was found damaged while in use (docs/store.md,
                 * "Damage at run time"): its handle is given up. The Store
                 * object replaces it and says so in one log line; this
                 * thread pauses like for an unavailable store and asks for
                 * the new one (acquire_store), then registers again. */
                sink.store = NULL;
                registered = 0;
                rc = STORE_UNAVAILABLE;
                pthread_mutex_lock(&state_lock);
                C.store = NULL;
                C.registered = 0;
                pthread_mutex_unlock(&state_lock);
            }
            if (sink.push) {
                /* The pusher has its own buffer, backoff and outage lines. */
                next = pl_now_s() + interval;
            } else if (rc) {
                next = outage_failed(&o, rc, sink.store, interval);
            } else {
                outage_ended(&o, sink.store, interval);
                next = pl_now_s() + interval;
            }
        }
        /* Right after a collection, or a retry once the backoff has passed. */
        if (sink.push && pl_push_due(sink.push, pl_now_ms()))
            sink_send(sink.push, 0, 0);
    }
    /* A clean stop tells the central server at once (bounded: an exit never
     * waits long for it, and not at all while the server is away). */
    pthread_mutex_lock(&state_lock);
    int clean = C.stop;
    pthread_mutex_unlock(&state_lock);
    if (sink.push && clean)
        sink_send(sink.push, 1, 2000);
    return NULL;
}

/* See pyext.h. */
void pl_collector_atfork_child(void)
{
    /* The thread does not exist in the child, and the table may have been
     * in the middle of an update by it: drop everything. The table's memory
     * is leaked on purpose (freeing half-updated entries is unsafe), and the
     * locks are re-created because a thread that no longer exists may have
     * held them at the fork. */
    pthread_mutex_init(&collect_lock, NULL);
    pthread_mutex_init(&state_lock, NULL);
    pthread_cond_init(&state_cond, NULL);
    pl_typetable_atfork_child(&table);
    memset(&untracked, 0, sizeof untracked); /* leaked on purpose, like the table */
    pl_gil_held_reset(); /* the child is a new incarnation */
    C.running = 0;
    C.stop = 0;
    C.store = NULL;
    C.registered = 0;
    C.paused = 0;
    C.outage_rc = 0;
    /* The pusher may have been in the middle of a send by the thread that
     * is gone: leaked on purpose, like the table. */
    C.push = NULL;
    /* store_obj's reference is owned by the Python object graph of the child;
     * it is released by collector_stop or a new start. */
}

/* ---- Python bindings ---- */

static void join_stopped(void);

/* The pl_store of a Store object and this process's incarnation. Returns 0,
 * or -1 with an exception set. GIL held. */
static int store_and_self(PyObject *module, PyObject *store_obj, pl_store **store, pl_incarnation *self)
{
    *store = pl_store_of(store_obj);
    if (!*store)
        return -1;
    int rc = pl_proc_self(self);
    if (rc) {
        pl_raise(module, rc, "reading /proc/self");
        return -1;
    }
    return 0;
}

/* Writes (or refreshes) this process's procs record. No GIL needed (none
 * is taken): C memory and the store only. Returns 0 or the store's error. */
static int register_nogil(pl_store *store, const pl_incarnation *self, double interval)
{
    pl_proc_info info;
    memset(&info, 0, sizeof info);
    info.inc = *self;
    info.interval_ms = (uint32_t)(interval * 1000);
    info.first_seen_ms = info.last_seen_ms = pl_now_ms();
    info.rss = pl_proc_rss();
    pl_proc_describe(&info);
    return pl_store_register(store, &info);
}

/* register_nogil for a caller holding the GIL (released around the I/O).
 * Returns 0, or -1 with an exception set. */
static int register_self(PyObject *module, pl_store *store, const pl_incarnation *self, double interval)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = register_nogil(store, self, interval);
    Py_END_ALLOW_THREADS
    if (rc) {
        pl_raise(module, rc, "registering in the store");
        return -1;
    }
    return 0;
}

/* Remote mode: a pusher for this process. GIL held. Returns NULL with an
 * exception set on error. */
static pl_push *new_pusher(PyObject *module, PyObject *remote, const pl_incarnation *self, double interval)
{
    const char *host, *token = NULL, *host_name;
    unsigned int port;
    Py_ssize_t max_samples = 0, max_bytes = 0;
    double timeout = 5.0;
    if (!PyArg_ParseTuple(remote, "sIzs|nnd:remote", &host, &port, &token, &host_name, &max_samples,
                          &max_bytes, &timeout))
        return NULL;
    if (port < 1 || port > 65535 || max_samples < 0 || max_bytes < 0 || !(timeout > 0 && timeout <= 60)) {
        PyErr_SetString(PyExc_ValueError, "remote: port 1..65535, buffer sizes >= 0, timeout 0..60 s");
        return NULL;
    }
    pl_proc_info info;
    memset(&info, 0, sizeof info);
    pl_proc_describe(&info);
    pl_push_options opt = {
        .server_host = host,
        .server_port = (uint16_t)port,
        .token = token,
        .host_name = host_name,
        .self = *self,
        .interval_ms = (uint32_t)(interval * 1000),
        .argv = info.argv,
        .max_samples = (size_t)max_samples,
        .max_bytes = (size_t)max_bytes,
        .timeout_ms = (int)(timeout * 1000),
    };
    pl_push *push = NULL;
    int rc = pl_push_new(&push, &opt);
    if (rc == PL_EBADARG) {
        PyErr_SetString(PyExc_ValueError, "remote: host_name must be 1 to 63 bytes without control characters, "
                                          "the token at most 1024 bytes");
        return NULL;
    }
    if (rc) {
        pl_raise(module, rc, "starting the pusher");
        return NULL;
    }
    return push;
}

/* collector_start(store, interval=30.0, gc_collect=True, remote=None):
 * remote = (server_host, port, token, host_name[, buffer_samples,
 * buffer_bytes, timeout]) pushes to a central server instead (store None). */
static PyObject *py_collector_start(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"store", "interval", "gc_collect", "remote", NULL};
    PyObject *store_obj, *remote = Py_None;
    double interval = 30.0;
    int gc_collect = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|dpO:collector_start", kwlist, &store_obj, &interval,
                                     &gc_collect, &remote))
        return NULL;
    if (!(interval >= 0.05 && interval <= 86400.0)) {
        PyErr_SetString(PyExc_ValueError, "interval must be between 0.05 and 86400 seconds");
        return NULL;
    }
    /* A store that cannot be used does not raise: the thread starts paused
     * and retries (see "store errors"). Remote mode has no store. */
    pl_store *store = NULL;
    pl_push *push = NULL;
    pl_incarnation self;
    if (remote == Py_None) {
        const char *why = NULL;
        store = pl_store_try(store_obj, &why);
        if (!store && !why)
            return NULL;
    }
    int rc = pl_proc_self(&self);
    if (rc)
        return pl_raise(module, rc, "reading /proc/self");
    join_stopped();
    pthread_mutex_lock(&state_lock);
    int running = C.running;
    pthread_mutex_unlock(&state_lock);
    if (running)
        Py_RETURN_FALSE;

    int registered = 0;
    if (remote != Py_None) {
        push = new_pusher(module, remote, &self, interval);
        if (!push)
            return NULL;
    } else if (store) {
        Py_BEGIN_ALLOW_THREADS
        registered = register_nogil(store, &self, interval) == 0; /* else the thread retries */
        Py_END_ALLOW_THREADS
    }

    /* Local mode keeps the Store object even while it is unavailable: the
     * thread asks it again (acquire_store). */
    PyObject *keep = remote == Py_None ? store_obj : NULL;
    Py_XINCREF(keep);
    Py_XSETREF(C.store_obj, keep);
    pthread_mutex_lock(&state_lock);
    pl_push *old = C.push;
    C.store = store;
    C.serial = push ? PUSH_SERIAL(push) : store ? pl_store_serial(store_obj) : 0;
    C.registered = registered;
    C.push = push;
    C.self = self;
    C.interval = interval;
    C.gc_collect = gc_collect;
    C.stop = 0;
    C.collections = C.errors = 0;
    C.last_error = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    rc = pthread_create(&C.thread, &attr, collector_main, NULL);
    pthread_attr_destroy(&attr);
    if (!rc)
        C.running = 1;
    else
        C.push = NULL;
    pthread_mutex_unlock(&state_lock);
    pl_push_free(old); /* the previous thread was joined: nothing uses it */
    if (rc) {
        pl_push_free(push);
        Py_CLEAR(C.store_obj);
        errno = rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_TRUE;
}

/* Joins a thread that was asked to stop. GIL held on entry and exit. */
static void join_stopped(void)
{
    pthread_mutex_lock(&state_lock);
    int joinable = C.running && C.stop;
    pthread_t thread = C.thread;
    if (joinable)
        C.running = 0;
    pthread_mutex_unlock(&state_lock);
    if (!joinable)
        return;
    /* The thread may be waiting for the GIL: join without it. */
    Py_BEGIN_ALLOW_THREADS
    pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
    Py_CLEAR(C.store_obj);
}

static PyObject *collector_stop_impl(int blocking)
{
    pthread_mutex_lock(&state_lock);
    int was_running = C.running && !C.stop;
    C.stop = 1;
    pthread_cond_broadcast(&state_cond);
    pthread_mutex_unlock(&state_lock);
    /* Without blocking the thread is joined later, by a blocking stop or the
     * next start (it ends within one poll period or one collection). */
    if (blocking)
        join_stopped();
    return PyBool_FromLong(was_running);
}

static PyObject *py_collector_stop(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"blocking", NULL};
    int blocking = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:collector_stop", kwlist, &blocking))
        return NULL;
    return collector_stop_impl(blocking);
}

static PyObject *py_collector_running(PyObject *module, PyObject *unused)
{
    pthread_mutex_lock(&state_lock);
    int running = C.running && !C.stop;
    pthread_mutex_unlock(&state_lock);
    return PyBool_FromLong(running);
}

static PyObject *py_collector_stats(PyObject *module, PyObject *unused)
{
    pthread_mutex_lock(&state_lock);
    collector_state c = C;
    pl_push_stats ps;
    if (C.push)
        pl_push_stats_get(C.push, &ps);
    pthread_mutex_unlock(&state_lock);
    PyObject *d = Py_BuildValue("{s:O,s:K,s:K,s:s,s:d,s:d,s:d,s:K,s:O,s:K,s:s}", "running",
                         c.running && !c.stop ? Py_True : Py_False,
                         "collections", (unsigned long long)c.collections, "errors",
                         (unsigned long long)c.errors, "last_error",
                         c.last_error ? pl_strerror(c.last_error) : "", "last_gc_ms", c.last_gc_ms,
                         "last_pass_ms", c.last_pass_ms, "last_write_ms", c.last_write_ms,
                         "requests_answered", (unsigned long long)c.requests_answered, "paused",
                         c.paused ? Py_True : Py_False, "dropped", (unsigned long long)c.dropped,
                         "store_error",
                         c.outage_rc == STORE_UNAVAILABLE ? "the store is unavailable"
                         : c.outage_rc                    ? pl_strerror(c.outage_rc)
                                                          : "");
    if (d) {
        PyObject *u = Py_BuildValue("{s:K,s:K,s:K,s:n}", "objects", (unsigned long long)c.untracked.objects,
                                    "shared", (unsigned long long)c.untracked.shared, "overflow",
                                    (unsigned long long)c.untracked.overflow, "set_bytes",
                                    (Py_ssize_t)c.untracked.set_bytes);
        if (!u || PyDict_SetItemString(d, "untracked", u) < 0)
            Py_CLEAR(d);
        Py_XDECREF(u);
    }
    if (d && c.push) {
        PyObject *r = Py_BuildValue(
            "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:O,s:i,s:s}", "queued", (unsigned long long)ps.queued,
            "queued_bytes", (unsigned long long)ps.queued_bytes, "delivered", (unsigned long long)ps.delivered,
            "dropped", (unsigned long long)ps.dropped, "messages", (unsigned long long)ps.messages, "failures",
            (unsigned long long)ps.failures, "reannounces", (unsigned long long)ps.reannounces, "wire_bytes",
            (unsigned long long)ps.wire_bytes, "outage", ps.outage ? Py_True : Py_False, "last_status",
            ps.last_status, "last_error", ps.last_error ? pl_strerror(ps.last_error) : "");
        if (!r || PyDict_SetItemString(d, "remote", r) < 0)
            Py_CLEAR(d);
        Py_XDECREF(r);
    }
    return d;
}

/* Takes collect_lock without holding the GIL (see the locking order). */
static void lock_collect(void)
{
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&collect_lock);
    Py_END_ALLOW_THREADS
}

/* collect(store, gc_collect=True): one collection now, written to the store. */
static PyObject *py_collect(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"store", "gc_collect", "interval", NULL};
    PyObject *store_obj;
    int gc_collect = 1;
    double interval = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pd:collect", kwlist, &store_obj, &gc_collect, &interval))
        return NULL;
    pl_store *store;
    pl_incarnation self;
    if (store_and_self(module, store_obj, &store, &self) < 0)
        return NULL;
    int rc;
    /* Once per store handle: the record stays, and heartbeats refresh it. */
    static uint64_t registered_serial; /* protected by the GIL */
    if (registered_serial != pl_store_serial(store_obj)) {
        if (register_self(module, store, &self, interval) < 0)
            return NULL;
        registered_serial = pl_store_serial(store_obj);
    }
    double gc_ms, pass_ms;
    lock_collect();
    rc = count_pass(gc_collect, &gc_ms, &pass_ms);
    if (rc < 0) {
        pthread_mutex_unlock(&collect_lock);
        return NULL;
    }
    size_t types = table.used;
    uint64_t serial = pl_store_serial(store_obj);
    Py_BEGIN_ALLOW_THREADS
    if (!rc)
        rc = write_sample(&(pl_sink){store, serial, NULL}, &self, pl_now_ms());
    pl_typetable_evict(&table);
    pthread_mutex_unlock(&collect_lock);
    Py_END_ALLOW_THREADS
    if (rc) {
        return pl_raise(module, rc, "collecting");
    }
    return Py_BuildValue("{s:n,s:d,s:d}", "types", (Py_ssize_t)types, "gc_ms", gc_ms, "pass_ms", pass_ms);
}

/* count_types(gc_collect=False) -> {name: (count, bytes)}: one pass, not
 * stored. For tests and benchmarks; the dict is built after the pass. */
static PyObject *py_count_types(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"gc_collect", NULL};
    int gc_collect = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:count_types", kwlist, &gc_collect))
        return NULL;
    double gc_ms, pass_ms;
    lock_collect();
    int rc = count_pass(gc_collect, &gc_ms, &pass_ms);
    PyObject *result = NULL;
    if (rc < 0)
        goto done;
    if (rc) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    result = PyDict_New();
    for (size_t i = 0; result && i < table.cap; i++) {
        pl_type_entry *e = &table.slots[i];
        if (!e->tp || e->epoch != table.epoch || !e->count)
            continue;
        PyObject *v = Py_BuildValue("(KK)", (unsigned long long)e->count, (unsigned long long)e->bytes);
        if (!v || PyDict_SetItemString(result, e->name, v) < 0)
            Py_CLEAR(result);
        Py_XDECREF(v);
    }
done:
    pl_typetable_evict(&table);
    pthread_mutex_unlock(&collect_lock);
    return result;
}

static PyMethodDef collector_methods[] = {
    {"collector_start", (PyCFunction)(void (*)(void))py_collector_start, METH_VARARGS | METH_KEYWORDS,
     "collector_start(store, interval=30.0, gc_collect=True) -> bool\n"
     "Starts the native collector thread of this process (False if it already runs)."},
    {"collector_stop", (PyCFunction)(void (*)(void))py_collector_stop, METH_VARARGS | METH_KEYWORDS,
     "collector_stop(blocking=False) -> bool\nAsks the collector thread to stop; joins it when blocking."},
    {"collector_running", py_collector_running, METH_NOARGS, "True while the collector thread runs."},
    {"collector_stats", py_collector_stats, METH_NOARGS, "Counters and timings of the collector."},
    {"collect", (PyCFunction)(void (*)(void))py_collect, METH_VARARGS | METH_KEYWORDS,
     "collect(store, gc_collect=True, interval=0) -> dict\nRegisters this process (with that interval) "
     "and writes one collection to the store now."},
    {"count_types", (PyCFunction)(void (*)(void))py_count_types, METH_VARARGS | METH_KEYWORDS,
     "count_types(gc_collect=False) -> {name: (count, bytes)}\nOne count pass, not stored."},
    {NULL, NULL, 0, NULL},
};

int pl_collector_module_exec(PyObject *module, pl_live_fn live)
{
    live_answer = live;
    return PyModule_AddFunctions(module, collector_methods);
}
