/* live_tasks.c: a worker's asyncio tasks grouped by coroutine
 * (GET /api/tasks, docs/http-api.md).
 *
 * The tasks are found by walking the gc-tracked objects for instances of
 * _asyncio.Task and its subclasses, not through asyncio.all_tasks(): that
 * needs the event loop's thread, and this runs on whichever thread asks
 * (the collector's, a request's), with the GIL but not the loop. Each task
 * is read through task_info.c (C getters only: no code of the app runs),
 * with automatic collections kept off for the whole answer so that no
 * finalizer runs either. */
#include "live.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "pyloot/json.h"
#include "task_info.h"

/* Documented bounds (docs/http-api.md, docs/security.md). */
#define PL_TASKS_EXAMPLES 5        /* example task ids per group */
#define PL_TASKS_KEYS_MAX 10000    /* distinct coroutines + (coroutine, place) pairs counted */

/* An open-addressing table of strings (owned copies) to an index. */
struct strtab {
    char **key;
    uint32_t *val;
    size_t cap, n;
};

static void strtab_free(struct strtab *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->key[i]);
    free(t->key);
    free(t->val);
    memset(t, 0, sizeof *t);
}

static int strtab_grow(struct strtab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 256;
    char **key = calloc(cap, sizeof *key);
    uint32_t *val = calloc(cap, sizeof *val);
    if (!key || !val) {
        free(key);
        free(val);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->key[i])
            continue;
        size_t j = pl_hash_str(t->key[i]) & (cap - 1);
        while (key[j])
            j = (j + 1) & (cap - 1);
        key[j] = t->key[i];
        val[j] = t->val[i];
    }
    free(t->key);
    free(t->val);
    t->key = key;
    t->val = val;
    t->cap = cap;
    return 0;
}

/* The index of `key`: 1 found (*val set), 0 added with value `next` (when
 * the table is not full), 2 not there and full, -1 out of memory. */
static int strtab_get_or_add(struct strtab *t, const char *key, uint32_t next, uint32_t *val)
{
    if ((t->n + 1) * 2 > t->cap && strtab_grow(t) < 0)
        return -1;
    size_t j = pl_hash_str(key) & (t->cap - 1);
    while (t->key[j]) {
        if (strcmp(t->key[j], key) == 0) {
            *val = t->val[j];
            return 1;
        }
        j = (j + 1) & (t->cap - 1);
    }
    if (t->n >= PL_TASKS_KEYS_MAX)
        return 2;
    t->key[j] = strdup(key);
    if (!t->key[j])
        return -1;
    t->val[j] = next;
    t->n++;
    *val = next;
    return 0;
}

struct group {
    char *coroutine;           /* owned */
    uint64_t count;
    uint64_t example[PL_TASKS_EXAMPLES];
    int examples;
    char *waiting_at;          /* owned; the place met most often, NULL when none */
    uint64_t waiting_at_count;
};

struct tally {
    struct strtab names, places; /* coroutine -> group; "group\x1fplace" -> index in place_count */
    struct group *group;
    size_t ngroups, capgroups;
    uint64_t *place_count;
    size_t nplaces, capplaces;
    uint64_t ungrouped;          /* tasks whose coroutine came past PL_TASKS_KEYS_MAX */
};

static void tally_free(struct tally *t)
{
    for (size_t i = 0; i < t->ngroups; i++) {
        free(t->group[i].coroutine);
        free(t->group[i].waiting_at);
    }
    free(t->group);
    free(t->place_count);
    strtab_free(&t->names);
    strtab_free(&t->places);
}

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*v, c * size);
    if (!p)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}

/* Counts one task of `coroutine` standing at `where` ("" when unknown).
 * 0, or -1 out of memory. */
static int tally_add(struct tally *t, const char *coroutine, const char *where, uint64_t id)
{
    uint32_t gi;
    int rc = strtab_get_or_add(&t->names, coroutine, (uint32_t)t->ngroups, &gi);
    if (rc < 0)
        return -1;
    if (rc == 2) {
        t->ungrouped++;
        return 0;
    }
    if (rc == 0) {
        if (grow((void **)&t->group, &t->capgroups, t->ngroups, sizeof *t->group) < 0)
            return -1;
        struct group *g = &t->group[t->ngroups];
        memset(g, 0, sizeof *g);
        g->coroutine = strdup(coroutine);
        if (!g->coroutine)
            return -1;
        t->ngroups++;
    }
    struct group *g = &t->group[gi];
    g->count++;
    if (g->examples < PL_TASKS_EXAMPLES)
        g->example[g->examples++] = id;
    if (!*where)
        return 0;
    /* The group's number in hex, a separator, its place (no printf per task). */
    char head[9];
    for (int k = 0; k < 8; k++)
        head[k] = "0123456789abcdef"[(gi >> (28 - 4 * k)) & 15];
    head[8] = '\x1f';
    pl_buf key = PL_BUF_INIT;
    pl_buf_append(&key, head, sizeof head);
    pl_buf_puts(&key, where);
    uint32_t pi;
    rc = key.err ? -1 : strtab_get_or_add(&t->places, key.data, (uint32_t)t->nplaces, &pi);
    pl_buf_free(&key);
    if (rc < 0)
        return -1;
    if (rc == 2)
        return 0;
    if (rc == 0) {
        if (grow((void **)&t->place_count, &t->capplaces, t->nplaces, sizeof *t->place_count) < 0)
            return -1;
        t->place_count[t->nplaces++] = 0;
    }
    /* Counts only grow: the running maximum is the most common place. */
    uint64_t c = ++t->place_count[pi];
    if (c > g->waiting_at_count) {
        if (!g->waiting_at || strcmp(g->waiting_at, where) != 0) {
            char *w = strdup(where);
            if (!w)
                return -1;
            free(g->waiting_at);
            g->waiting_at = w;
        }
        g->waiting_at_count = c;
    }
    return 0;
}

static int cmp_groups(const void *pa, const void *pb)
{
    const struct group *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->coroutine, b->coroutine);
}

/* The walk: every tracked instance of _asyncio.Task or a subclass, borrowed. */
struct task_scan {
    const pl_aio *aio;
    PyTypeObject *last_t;
    int last_is_task;
    pl_objvec tasks;
    int err;
};

static int task_visit(PyObject *o, void *arg)
{
    struct task_scan *s = arg;
    PyTypeObject *t = Py_TYPE(o);
    if (t != s->last_t) {
        s->last_t = t;
        s->last_is_task = PyType_IsSubtype(t, s->aio->task);
    }
    if (s->last_is_task && pl_objvec_push(&s->tasks, o) < 0) {
        s->err = 1;
        return 1;
    }
    return 0;
}

/* q->group: which tasks ("pending", "done", "cancelled", "all"). */
static int wanted_state(const char *filter)
{
    if (strcmp(filter, "done") == 0)
        return PL_AIO_DONE;
    if (strcmp(filter, "cancelled") == 0)
        return PL_AIO_CANCELLED;
    if (strcmp(filter, "all") == 0)
        return PL_AIO_UNKNOWN;
    return PL_AIO_PENDING;
}

static void put_doc(pl_answer *a, const char *filter, uint64_t in_state, const uint64_t *states,
                    struct tally *t)
{
    pl_buf *b = a->body;
    pl_answer_begin_doc(a);
    pl_buf_putc(b, ',');
    pl_json_key(b, "state");
    pl_json_cstr(b, filter);
    pl_buf_putc(b, ',');
    pl_json_key(b, "tasks");
    pl_json_u64(b, in_state);
    pl_buf_putc(b, ',');
    pl_json_key(b, "states");
    pl_buf_putc(b, '{');
    for (int s = PL_AIO_PENDING; s <= PL_AIO_CANCELLED; s++) {
        if (s != PL_AIO_PENDING)
            pl_buf_putc(b, ',');
        pl_json_key(b, pl_aio_state_name(s));
        pl_json_u64(b, states[s]);
    }
    pl_buf_putc(b, '}');
    pl_buf_putc(b, ',');
    pl_json_key(b, "groups_total");
    pl_json_u64(b, t->ngroups);
    pl_buf_putc(b, ',');
    pl_json_key(b, "ungrouped");
    pl_json_u64(b, t->ungrouped);
    pl_buf_putc(b, ',');
    pl_json_key(b, "limit");
    pl_json_u64(b, a->q->limit);
    pl_buf_putc(b, ',');
    pl_json_key(b, "groups");
    pl_buf_putc(b, '[');
    size_t shown = t->ngroups < a->q->limit ? t->ngroups : (size_t)a->q->limit;
    for (size_t i = 0; i < shown; i++) {
        const struct group *g = &t->group[i];
        if (i)
            pl_buf_putc(b, ',');
        pl_buf_putc(b, '{');
        pl_json_key(b, "coroutine");
        pl_json_cstr(b, g->coroutine);
        pl_buf_putc(b, ',');
        pl_json_key(b, "count");
        pl_json_u64(b, g->count);
        pl_buf_putc(b, ',');
        pl_json_key(b, "waiting_at");
        if (g->waiting_at)
            pl_json_cstr(b, g->waiting_at);
        else
            pl_buf_puts(b, "null");
        pl_buf_putc(b, ',');
        pl_json_key(b, "waiting_at_count");
        pl_json_u64(b, g->waiting_at_count);
        pl_buf_putc(b, ',');
        pl_json_key(b, "examples");
        pl_buf_putc(b, '[');
        for (int k = 0; k < g->examples; k++) {
            if (k)
                pl_buf_putc(b, ',');
            pl_json_u64_str(b, g->example[k]);
        }
        pl_buf_puts(b, "]}");
    }
    pl_buf_puts(b, "]}");
}

/* See live.h. */
int pl_answer_tasks(pl_answer *a)
{
    pl_aio aio;
    struct task_scan scan = {&aio, NULL, 0, {0}, 0};
    struct tally tally;
    uint64_t states[PL_AIO_CANCELLED + 1] = {0}, in_state = 0;
    pl_buf coroutine = PL_BUF_INIT, where = PL_BUF_INIT;
    int want = wanted_state(a->q->group), rc = -1;
    size_t held = 0; /* references taken on scan.tasks.v[0..held) */
    const char *filter = pl_aio_state_name(want);
    memset(&tally, 0, sizeof tally);
    if (want == PL_AIO_UNKNOWN)
        filter = "all";

    a->gc_was_enabled |= PyGC_Disable(); /* kept off to the end: no finalizer runs meanwhile */
    if (pl_aio_find(&aio)) {
        int vr = pl_live_walk(task_visit, &scan);
        if (vr < 0 && !scan.err)
            goto out;
        PyErr_Clear();
        if (scan.err)
            goto nomem;
    }
    for (; held < scan.tasks.n; held++)
        Py_INCREF(scan.tasks.v[held]);
    for (size_t i = 0; i < scan.tasks.n; i++) {
        PyObject *task = scan.tasks.v[i];
        int state = pl_aio_state(&aio, task);
        states[state]++;
        if (want != PL_AIO_UNKNOWN && state != want)
            continue;
        in_state++;
        pl_buf_reset(&coroutine);
        pl_buf_reset(&where);
        if (pl_aio_task_where(&aio, task, &coroutine, &where) < 0 ||
            tally_add(&tally, pl_buf_cstr(&coroutine), state == PL_AIO_PENDING ? pl_buf_cstr(&where) : "",
                      (uint64_t)(uintptr_t)task) < 0)
            goto nomem;
    }
    if (tally.ngroups)
        qsort(tally.group, tally.ngroups, sizeof *tally.group, cmp_groups);
    put_doc(a, filter, in_state, states, &tally);
    a->status = 200;
    rc = 0;
    goto out;
nomem:
    PyErr_NoMemory();
out:
    for (size_t i = 0; i < held; i++)
        Py_DECREF(scan.tasks.v[i]);
    pl_objvec_free(&scan.tasks);
    pl_answer_end_snapshot(a);
    tally_free(&tally);
    pl_buf_free(&coroutine);
    pl_buf_free(&where);
    return rc;
}
