/* alloc_sites.c: which line creates a type's instances (alloc_sites.h,
 * docs/allocations.md).
 *
 * Three tables, all protected by the GIL:
 *   traced[]  the traced types: the type (borrowed; a weak reference with a
 *             callback drops the entry when the type is freed), its name,
 *             its sampling state; found from the wrapper through `by_type`,
 *             a small open-addressing index rebuilt on every change;
 *   sites[]   one per distinct (type, stack): the stack's code objects
 *             (strong references, so that an address of a freed code
 *             object cannot match a later stack) and instruction indices
 *             are the key; file, line and function are computed once, when
 *             the site is made; found through `site_index` (open addressing
 *             on the key's hash);
 *   amap[]    sampled object address -> site, 4-way set-associative: a
 *             sample goes first in its set of 4 and the oldest entry of a
 *             full set is dropped (a direct-mapped table lost ~2 % of 50
 *             samples in a row to collisions among themselves). An entry
 *             whose object died stays until dropped; it is never
 *             dereferenced, only compared with the address and type of an
 *             object met alive.
 * The wrapper costs one index probe and one decrement per allocation of a
 * traced type; types not traced never reach it.
 *
 * Windows (CPython 3.13): the interpreter allocates the instances of a class
 * with object's __new__ and a Python __init__ inline at the call sites it
 * specialized (CALL_ALLOC_AND_ENTER_INIT), and only while tp_alloc is
 * PyType_GenericAlloc (Python/specialize.c, specialize_class_call). So the
 * wrapper is installed for sampling windows only: a window ends after
 * PL_ALLOC_WINDOW_SAMPLES samples (the first one after the
 * PL_ALLOC_SAMPLE_ALL ones), the plain slot is given back (no
 * PyType_Modified: the call sites that failed to specialize retry by
 * themselves) and the collector thread's tick installs the wrapper again
 * later with PyType_Modified, so that the specialized sites fall back to
 * the slot. Each new window costs the class one version tag, of which 3.13
 * gives a class 1,000 in its life: windows are spaced further apart as the
 * type ages and stop once the class has used PL_ALLOC_VERSIONS_CAP. */
#include "alloc_sites.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "call_site.h"
#include "heap.h"
#include "pyloot/json.h"
#include "util.h"
#include "witness.h"

typedef struct traced {
    PyTypeObject *tp; /* NULL: free entry */
    PyObject *weak;   /* weak reference to tp, with type_freed as callback */
    char *name;       /* pl_typename(tp) when traced */
    int automatic;
    long gap;         /* allocations the next sample stands for */
    long countdown;   /* allocations until the next sample */
    uint64_t samples, allocs; /* allocs: sampled gaps summed */
    int armed;        /* tp_alloc is the wrapper (else between two windows) */
    int every;        /* this window samples every allocation */
    int spent;        /* no more windows: the version tags allowed are used */
    long window;      /* samples left in this window */
    uint64_t windows; /* windows ended: > 0, the counts cover windows only */
    double since;     /* pl_now_s() when traced */
    double due;       /* between windows: when the next one may begin */
} traced;

typedef struct site {
    PyTypeObject *tp; /* NULL: a dead site, about to be compacted */
    uint64_t hash;
    unsigned n;
    pl_stack_frame key[PL_ALLOC_FRAMES]; /* code: strong references */
    int line[PL_ALLOC_FRAMES];
    char *text;       /* "file\0function\0" per frame */
    size_t bytes;
    uint64_t allocs;  /* sample weights summed */
} site;

typedef struct addr_entry {
    uintptr_t addr;
    uint32_t site;
    uint32_t weight;
} addr_entry;

#define BY_TYPE_SLOTS 256   /* > 2 * PL_ALLOC_TRACED_MAX */
#define ADDR_WAYS 4         /* entries of one set of amap */
#define SITE_SLOTS 8192     /* 2 * PL_ALLOC_SITES_MAX */

static traced T[PL_ALLOC_TRACED_MAX];
static int by_type[BY_TYPE_SLOTS];  /* index + 1 into T, 0 empty */
static site *sites;                 /* PL_ALLOC_SITES_MAX, allocated on first trace */
static size_t nsites, site_bytes;
static uint32_t site_index[SITE_SLOTS]; /* index + 1 into sites, 0 empty */
static addr_entry *amap;            /* PL_ALLOC_ADDR_SLOTS */
static char *names[PL_ALLOC_NAMES_MAX]; /* waiting for their type */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t sites_dropped, samples_total;
static PyObject *freed_cb;          /* the weak references' callback; never freed */

/* The windows: off (the wrapper stays, 3.11 and 3.12), auto (3.13: while
 * the collector thread ticks, since it begins the windows) or always (for
 * tests: the collector's count pass begins them too). */
enum { DUTY_OFF, DUTY_AUTO, DUTY_ALWAYS };
#if PY_VERSION_HEX >= 0x030D0000
#define DUTY_DEFAULT DUTY_AUTO
#else
#define DUTY_DEFAULT DUTY_OFF
#endif
static struct {
    int mode;
    long window;   /* samples per window */
    double gap;    /* seconds between windows, at least */
} duty = {DUTY_DEFAULT, PL_ALLOC_WINDOW_SAMPLES, PL_ALLOC_WINDOW_GAP_MS / 1000.0};
static uint64_t windows_total;
static PyObject *init_name;         /* "__init__", interned; never freed */
/* Read by the collector thread without the GIL. */
static atomic_llong tick_ms;        /* the thread's last tick, monotonic ms */
static atomic_llong next_due_ms;    /* the earliest window due; 0 none */

static size_t hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

/* The set of 4 entries of amap where o's address may be. */
static addr_entry *addr_set(const void *o)
{
    return &amap[(hash_ptr(o) & (PL_ALLOC_ADDR_SLOTS / ADDR_WAYS - 1)) * ADDR_WAYS];
}

static traced *find_traced(PyTypeObject *tp)
{
    for (size_t i = hash_ptr(tp) & (BY_TYPE_SLOTS - 1);; i = (i + 1) & (BY_TYPE_SLOTS - 1)) {
        int k = by_type[i];
        if (!k)
            return NULL;
        if (T[k - 1].tp == tp)
            return &T[k - 1];
    }
}

static void rebuild_by_type(void)
{
    memset(by_type, 0, sizeof by_type);
    for (int k = 0; k < PL_ALLOC_TRACED_MAX; k++) {
        if (!T[k].tp)
            continue;
        size_t i = hash_ptr(T[k].tp) & (BY_TYPE_SLOTS - 1);
        while (by_type[i])
            i = (i + 1) & (BY_TYPE_SLOTS - 1);
        by_type[i] = k + 1;
    }
}

/* ---- sites ---- */

static uint64_t stack_hash(PyTypeObject *tp, const pl_stack_frame *f, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)tp;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint64_t)(uintptr_t)f[i].code) * 1099511628211ULL;
        h = (h ^ (uint64_t)(unsigned)f[i].lasti) * 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static int same_key(const site *s, PyTypeObject *tp, const pl_stack_frame *f, size_t n)
{
    if (s->tp != tp || s->n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s->key[i].code != f[i].code || s->key[i].lasti != f[i].lasti)
            return 0;
    return 1;
}

static void index_site(uint32_t k)
{
    size_t i = (size_t)sites[k].hash & (SITE_SLOTS - 1);
    while (site_index[i])
        i = (i + 1) & (SITE_SLOTS - 1);
    site_index[i] = k + 1;
}

/* Appends s (a str, or anything else as "?") as UTF-8 cut to
 * PL_ALLOC_TEXT_MAX bytes, and its NUL. */
static void put_text(pl_buf *b, PyObject *s)
{
    Py_ssize_t len = 0;
    const char *u = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &len) : NULL;
    if (!u) {
        PyErr_Clear();
        u = "?";
        len = 1;
    }
    size_t n = (size_t)len;
    if (n > PL_ALLOC_TEXT_MAX) {
        n = PL_ALLOC_TEXT_MAX;
        while (n > 0 && ((unsigned char)u[n] & 0xc0) == 0x80)
            n--;
    }
    pl_buf_append(b, u, n);
    pl_buf_putc(b, '\0');
}

/* The site of (tp, stack), made when new and the bounds allow. Index, or -1. */
static long site_for(PyTypeObject *tp, const pl_stack_frame *f, size_t n)
{
    uint64_t h = stack_hash(tp, f, n);
    size_t i = (size_t)h & (SITE_SLOTS - 1);
    for (; site_index[i]; i = (i + 1) & (SITE_SLOTS - 1)) {
        site *s = &sites[site_index[i] - 1];
        if (s->hash == h && same_key(s, tp, f, n))
            return (long)site_index[i] - 1;
    }
    if (nsites >= PL_ALLOC_SITES_MAX || site_bytes + sizeof(site) > PL_ALLOC_SITES_BYTES) {
        sites_dropped++;
        return -1;
    }
    site *s = &sites[nsites];
    memset(s, 0, sizeof *s);
    pl_buf text = PL_BUF_INIT;
    for (size_t k = 0; k < n; k++) {
        put_text(&text, f[k].code->co_filename);
        put_text(&text, f[k].code->co_qualname);
        s->line[k] = PyCode_Addr2Line(f[k].code, f[k].lasti);
    }
    if (text.err || site_bytes + sizeof(site) + text.len > PL_ALLOC_SITES_BYTES) {
        pl_buf_free(&text);
        sites_dropped++;
        return -1;
    }
    s->text = text.data; /* owned by the site now */
    s->bytes = sizeof(site) + text.len;
    s->tp = tp;
    s->hash = h;
    s->n = (unsigned)n;
    for (size_t k = 0; k < n; k++) {
        s->key[k] = f[k];
        Py_INCREF(f[k].code);
    }
    site_bytes += s->bytes;
    index_site((uint32_t)nsites);
    return (long)nsites++;
}

/* Drops the sites of dead types (tp NULL) and renumbers the rest: the
 * index is rebuilt and the address map follows. */
static void compact_sites(void)
{
    size_t old = nsites, w = 0;
    uint32_t *remap = malloc((old + 1) * sizeof *remap);
    for (size_t r = 0; r < nsites; r++) {
        if (!sites[r].tp) {
            if (remap)
                remap[r] = UINT32_MAX;
            continue;
        }
        if (remap)
            remap[r] = (uint32_t)w;
        sites[w++] = sites[r];
    }
    nsites = w;
    memset(site_index, 0, sizeof site_index);
    for (size_t k = 0; k < nsites; k++)
        index_site((uint32_t)k);
    if (amap) {
        for (size_t i = 0; i < PL_ALLOC_ADDR_SLOTS; i++) {
            if (!amap[i].addr)
                continue;
            uint32_t to = remap && amap[i].site < old ? remap[amap[i].site] : UINT32_MAX;
            if (to == UINT32_MAX)
                memset(&amap[i], 0, sizeof amap[i]);
            else
                amap[i].site = to;
        }
    }
    free(remap);
}

/* Marks the sites of tp dead, releasing what they hold, and compacts. */
static void forget_sites(PyTypeObject *tp)
{
    int any = 0;
    for (size_t k = 0; k < nsites; k++) {
        site *s = &sites[k];
        if (s->tp != tp)
            continue;
        for (unsigned i = 0; i < s->n; i++)
            Py_DECREF(s->key[i].code);
        free(s->text);
        site_bytes -= s->bytes;
        s->tp = NULL;
        any = 1;
    }
    if (any)
        compact_sites();
}

/* ---- the wrapper ---- */

static long next_gap(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return 1 + (long)(rng % (2 * PL_ALLOC_SAMPLE_MEAN - 1));
}

static void sample(traced *t, PyObject *o)
{
    pl_stack_frame f[PL_ALLOC_FRAMES];
    size_t n = pl_stack_current(f, PL_ALLOC_FRAMES);
    long weight = t->gap;
    t->samples++;
    t->allocs += (uint64_t)weight;
    samples_total++;
    t->gap = t->countdown = t->samples < PL_ALLOC_SAMPLE_ALL || t->every ? 1 : next_gap();
    long k = site_for(t->tp, f, n);
    if (k < 0)
        return;
    sites[k].allocs += (uint64_t)weight;
    addr_entry *set = addr_set(o);
    int w = 0;
    while (w < ADDR_WAYS - 1 && set[w].addr != (uintptr_t)o)
        w++; /* this address's own entry, else the oldest */
    memmove(&set[1], &set[0], (size_t)w * sizeof *set);
    set[0] = (addr_entry){(uintptr_t)o, (uint32_t)k, (uint32_t)weight};
}

/* ---- windows ---- */

/* The call sites that made tp's sampled instances and that 3.13 left on
 * its generic path while the wrapper was there: specialized again at their
 * next call (call_site.h). The slot is the plain one by now. */
static void respecialize_sites(PyTypeObject *tp)
{
    for (size_t k = 0; k < nsites; k++)
        if (sites[k].tp == tp && sites[k].n)
            pl_call_site_respecialize(sites[k].key[0].code, sites[k].key[0].lasti);
}

#if PY_VERSION_HEX >= 0x030D0000
#define PL_IS_FINALIZING() Py_IsFinalizing()
#else
#define PL_IS_FINALIZING() _Py_IsFinalizing()
#endif

static PyObject *traced_alloc(PyTypeObject *type, Py_ssize_t nitems);

static double now_ms(void)
{
    return pl_now_s() * 1e3;
}

/* The interpreter would allocate tp's instances inline at a specialized
 * call site: object's __new__ and a Python __init__ (specialize_class_call
 * also wants tp_alloc to be PyType_GenericAlloc: that is the point). */
static int inlined(PyTypeObject *tp)
{
    if (tp->tp_new != PyBaseObject_Type.tp_new)
        return 0;
    if (!init_name && !(init_name = PyUnicode_InternFromString("__init__"))) {
        PyErr_Clear();
        return 0;
    }
    PyObject *init = _PyType_Lookup(tp, init_name); /* borrowed; runs no Python code */
    return init && PyFunction_Check(init);
}

/* Publishes when the earliest window is due, for the collector's tick. */
static void publish_due(void)
{
    double first = 0;
    for (int k = 0; k < PL_ALLOC_TRACED_MAX; k++)
        if (T[k].tp && !T[k].armed && !T[k].spent && (first == 0 || T[k].due < first))
            first = T[k].due;
    atomic_store(&next_due_ms, first > 0 ? (long long)(first * 1e3) + 1 : 0);
}

/* Ends t's window: the plain slot goes back when something begins the
 * next window (the collector thread ticks, or tests asked for windows)
 * and the interpreter would allocate the class inline; otherwise the
 * wrapper stays and a new window simply begins. */
static void window_end(traced *t)
{
    t->window = duty.window;
    double now = pl_now_s();
    if (!t->armed || t->tp->tp_alloc != traced_alloc || !inlined(t->tp) ||
        (duty.mode == DUTY_AUTO && now_ms() - (double)atomic_load(&tick_ms) > PL_ALLOC_TICK_STALE_MS)) {
        t->every = 0; /* the wrapper stays: sampled at gaps, as without windows */
        return;
    }
    t->tp->tp_alloc = PyType_GenericAlloc;
    t->armed = 0;
    t->every = 0;
    respecialize_sites(t->tp);
    t->windows++;
    windows_total++;
    double gap = (now - t->since) / PL_ALLOC_GAP_AGE;
    t->due = now + (duty.gap <= 0 ? 0 : gap > duty.gap ? gap : duty.gap);
    publish_due();
}

/* Begins a window of t: the wrapper again, and a new version tag so that
 * the call sites specialized in between fall back to the slot. */
static void window_begin(traced *t)
{
#if PY_VERSION_HEX >= 0x030D0000
    if (t->tp->tp_versions_used >= PL_ALLOC_VERSIONS_CAP)
        t->spent = 1;
#endif
    if (t->tp->tp_alloc != PyType_GenericAlloc)
        t->spent = 1; /* something else took the slot meanwhile */
    if (t->spent)
        return;
    t->tp->tp_alloc = traced_alloc;
    t->armed = 1;
    t->every = duty.mode != DUTY_OFF; /* every allocation: each site left generic is known */
    t->window = duty.window;
    t->gap = t->countdown = 1;
    PyType_Modified(t->tp);
}

/* Begins the windows that are due (all of them with `all`). GIL held. */
static void windows_due(int all)
{
    double now = pl_now_s();
    for (int k = 0; k < PL_ALLOC_TRACED_MAX; k++)
        if (T[k].tp && !T[k].armed && !T[k].spent && (all || T[k].due <= now))
            window_begin(&T[k]);
    publish_due();
}

/* See alloc_sites.h. */
void pl_alloc_tick(void)
{
    atomic_store(&tick_ms, (long long)now_ms());
    long long due = atomic_load(&next_due_ms);
    if (!due || now_ms() < (double)due || PL_IS_FINALIZING())
        return;
    PyGILState_STATE g = PyGILState_Ensure();
    double held = pl_now_s();
    windows_due(0);
    pl_gil_held_add(pl_now_s() - held);
    PyGILState_Release(g);
}

/* The tp_alloc of traced types, and of the subclasses that inherited it
 * while their base was traced (a class statement sets PyType_GenericAlloc
 * itself, but a type made from a C spec inherits the slot): a subclass is
 * not traced itself (it gets nothing but the probe). Allocation itself is always PyType_GenericAlloc,
 * the slot every type traced here had. */
static PyObject *traced_alloc(PyTypeObject *type, Py_ssize_t nitems)
{
    PyObject *o = PyType_GenericAlloc(type, nitems);
    if (o) {
        traced *t = find_traced(type);
        if (t && --t->countdown <= 0) {
            sample(t, o);
            if (duty.mode != DUTY_OFF && t->samples > PL_ALLOC_SAMPLE_ALL && --t->window <= 0)
                window_end(t);
        }
    }
    return o;
}

/* ---- tracing and untracing ---- */

static void drop_entry(traced *t)
{
    PyTypeObject *tp = t->tp;
    Py_CLEAR(t->weak);
    free(t->name);
    memset(t, 0, sizeof *t);
    rebuild_by_type();
    forget_sites(tp);
    publish_due();
}

/* The weak references' callback: a traced type is being freed. Its slot
 * does not matter any more; its entry and sites go. */
static PyObject *type_freed(PyObject *self, PyObject *weak)
{
    (void)self;
    for (int k = 0; k < PL_ALLOC_TRACED_MAX; k++)
        if (T[k].tp && T[k].weak == weak)
            drop_entry(&T[k]);
    Py_RETURN_NONE;
}

static PyMethodDef freed_def = {"_alloc_type_freed", type_freed, METH_O, NULL};

/* Gives back PyType_GenericAlloc to tp's subclasses that inherited the
 * wrapper and are not traced themselves, recursively. */
static void restore_subclasses(PyTypeObject *tp, int depth)
{
    if (depth > 64)
        return;
    PyObject *subs = PyObject_CallMethod((PyObject *)tp, "__subclasses__", NULL);
    if (!subs || !PyList_Check(subs)) {
        PyErr_Clear();
        Py_XDECREF(subs);
        return;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(subs); i++) {
        PyTypeObject *sub = (PyTypeObject *)PyList_GET_ITEM(subs, i);
        if (!PyType_Check(sub) || find_traced(sub))
            continue;
        if (sub->tp_alloc == traced_alloc) {
            sub->tp_alloc = PyType_GenericAlloc;
            PyType_Modified(sub);
        }
        restore_subclasses(sub, depth + 1);
    }
    Py_DECREF(subs);
}

/* See alloc_sites.h. */
int pl_alloc_trace(PyTypeObject *tp, int automatic, const char **why)
{
    *why = NULL;
#ifdef Py_GIL_DISABLED
    /* The tables are protected by the GIL. */
    *why = "allocation sites need the GIL (this is a free-threaded build)";
    return 0;
#endif
    if (find_traced(tp))
        return 1;
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        *why = "not a class made by a class statement (a builtin or static type)";
        return 0;
    }
    if (tp->tp_alloc != PyType_GenericAlloc && tp->tp_alloc != traced_alloc) {
        *why = "its instances are allocated by its own tp_alloc";
        return 0;
    }
    int slot = -1;
    for (int k = 0; k < PL_ALLOC_TRACED_MAX && slot < 0; k++)
        if (!T[k].tp)
            slot = k;
    if (slot < 0) {
        *why = "64 types are traced already";
        return 0;
    }
    if (!sites) {
        sites = calloc(PL_ALLOC_SITES_MAX, sizeof *sites);
        amap = calloc(PL_ALLOC_ADDR_SLOTS, sizeof *amap);
        if (!sites || !amap) {
            free(sites);
            free(amap);
            sites = NULL;
            amap = NULL;
            PyErr_NoMemory();
            return -1;
        }
    }
    if (!freed_cb && !(freed_cb = PyCFunction_New(&freed_def, NULL)))
        return -1;
    pl_buf name = PL_BUF_INIT;
    PyObject *weak = PyWeakref_NewRef((PyObject *)tp, freed_cb);
    if (!weak || pl_typename(tp, &name) < 0 || name.err) {
        Py_XDECREF(weak);
        pl_buf_free(&name);
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return -1;
    }
    traced *t = &T[slot];
    t->tp = tp;
    t->weak = weak;
    t->name = strdup(pl_buf_cstr(&name));
    pl_buf_free(&name);
    t->automatic = automatic;
    t->gap = t->countdown = 1;
    t->armed = 1;
    t->every = duty.mode != DUTY_OFF;
    t->window = duty.window;
    t->since = pl_now_s();
    rebuild_by_type();
    tp->tp_alloc = traced_alloc;
    /* A new version tag: call sites the interpreter specialized for the
     * old slot (3.13 allocates simple classes inline when tp_alloc is
     * PyType_GenericAlloc) fall back to the slot. */
    PyType_Modified(tp);
    return 1;
}

/* Untraces tp; with `subclasses`, also gives the plain slot back to the
 * subclasses that inherited the wrapper (a Python call: not at teardown). */
static int untrace(PyTypeObject *tp, int subclasses)
{
    traced *t = find_traced(tp);
    if (!t)
        return 0;
    tp->tp_alloc = PyType_GenericAlloc;
    PyType_Modified(tp);
    respecialize_sites(tp);
    drop_entry(t);
    if (subclasses)
        restore_subclasses(tp, 0);
    return 1;
}

/* See alloc_sites.h. */
int pl_alloc_untrace(PyTypeObject *tp)
{
    return untrace(tp, 1);
}

/* See alloc_sites.h. */
void pl_alloc_untrace_all(int teardown)
{
    for (int k = 0; k < PL_ALLOC_TRACED_MAX; k++)
        if (T[k].tp)
            untrace(T[k].tp, !teardown);
    for (int i = 0; i < PL_ALLOC_NAMES_MAX; i++) {
        free(names[i]);
        names[i] = NULL;
    }
}

/* ---- what the collector finds ---- */

/* See alloc_sites.h. */
void pl_alloc_sites_pass(pl_type_table *t)
{
    uint32_t grow[PL_WITNESS_TOP];
    size_t ngrow = pl_witness_candidates(t, grow, PL_WITNESS_TOP);
    int any_name = 0;
    for (int i = 0; i < PL_ALLOC_NAMES_MAX && !any_name; i++)
        any_name = names[i] != NULL;
    if (duty.mode != DUTY_OFF)
        windows_due(0);
    if (!ngrow && !any_name)
        return;
    for (size_t i = 0; i < t->cap; i++) {
        pl_type_entry *e = &t->slots[i];
        if (!e->tp || e->epoch != t->epoch)
            continue;
        const char *why;
        for (int k = 0; k < PL_ALLOC_NAMES_MAX; k++) {
            if (names[k] && strcmp(names[k], e->base) == 0) {
                if (pl_alloc_trace(e->tp, 0, &why) < 0)
                    PyErr_Clear();
                free(names[k]);
                names[k] = NULL;
            }
        }
        for (size_t g = 0; g < ngrow; g++)
            if (e->type_id == grow[g] && !find_traced(e->tp) && pl_alloc_trace(e->tp, 1, &why) < 0)
                PyErr_Clear();
    }
}

/* ---- queries ---- */

/* See alloc_sites.h. */
PyTypeObject *pl_alloc_traced_named(const char *group)
{
    PyTypeObject *found = NULL;
    const PyTypeObject *named = NULL;
    int have_named = pl_type_named(group, &named);
    size_t glen = strlen(group);
    const char *hash = strrchr(group, '#');
    size_t blen = hash && hash[1] >= '1' && hash[1] <= '9' ? (size_t)(hash - group) : glen;
    for (int k = 0; k < PL_ALLOC_TRACED_MAX; k++) {
        if (!T[k].tp)
            continue;
        if (have_named && T[k].tp == named)
            return T[k].tp;
        if (blen == glen && strcmp(T[k].name, group) == 0 && !found)
            found = T[k].tp;
    }
    return found;
}

/* See alloc_sites.h. */
int pl_alloc_windowed(PyTypeObject *tp)
{
    const traced *t = find_traced(tp);
    return t && t->windows > 0;
}

/* See alloc_sites.h. */
long pl_alloc_site_of(PyObject *o, unsigned *weight)
{
    if (!amap)
        return -1;
    const addr_entry *set = addr_set(o), *e = NULL;
    for (int w = 0; w < ADDR_WAYS && !e; w++)
        if (set[w].addr == (uintptr_t)o)
            e = &set[w];
    if (!e || e->site >= nsites || sites[e->site].tp != Py_TYPE(o))
        return -1;
    *weight = e->weight;
    return (long)e->site;
}

/* See alloc_sites.h. */
void pl_alloc_site_json(long k, pl_buf *b)
{
    pl_buf_putc(b, '[');
    if (k >= 0 && (size_t)k < nsites) {
        const site *s = &sites[k];
        const char *p = s->text;
        for (unsigned i = 0; i < s->n; i++) {
            const char *file = p;
            const char *func = file + strlen(file) + 1;
            p = func + strlen(func) + 1;
            if (i)
                pl_buf_putc(b, ',');
            pl_buf_putc(b, '{');
            pl_json_key(b, "file");
            pl_json_cstr(b, file);
            pl_buf_printf(b, ",\"line\":%d,", s->line[i]);
            pl_json_key(b, "function");
            pl_json_cstr(b, func);
            pl_buf_putc(b, '}');
        }
    }
    pl_buf_putc(b, ']');
}

/* See alloc_sites.h. */
void pl_alloc_site_line(long k, pl_buf *b)
{
    if (k < 0 || (size_t)k >= nsites || !sites[k].n) {
        pl_buf_puts(b, "(no Python frame)");
        return;
    }
    /* The innermost frame of a real file: a namedtuple's __new__ (and any
     * code made by exec) is "<string>", which says nothing of who made it. */
    const char *file = sites[k].text, *func = file + strlen(file) + 1;
    int line = sites[k].line[0];
    const char *f = file;
    for (unsigned i = 0; i < sites[k].n; i++) {
        const char *fn = f + strlen(f) + 1;
        if (f[0] != '<') {
            file = f;
            func = fn;
            line = sites[k].line[i];
            break;
        }
        f = fn + strlen(fn) + 1;
    }
    pl_buf_printf(b, "%s:%d in %s", file, line, func);
}

/* See alloc_sites.h. */
int pl_alloc_sites_of(PyTypeObject *tp, long **out, uint64_t **allocs, size_t *n)
{
    *out = NULL;
    *allocs = NULL;
    *n = 0;
    size_t m = 0;
    for (size_t k = 0; k < nsites; k++)
        m += sites[k].tp == tp;
    if (!m)
        return 0;
    *out = malloc(m * sizeof **out);
    *allocs = malloc(m * sizeof **allocs);
    if (!*out || !*allocs) {
        free(*out);
        free(*allocs);
        *out = NULL;
        *allocs = NULL;
        return -1;
    }
    for (size_t k = 0; k < nsites; k++) {
        if (sites[k].tp != tp)
            continue;
        (*out)[*n] = (long)k;
        (*allocs)[(*n)++] = sites[k].allocs;
    }
    return 0;
}

/* ---- module functions ---- */

/* alloc_trace(type, automatic=False) -> None or the reason it cannot be traced */
static PyObject *py_alloc_trace(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *tp;
    int automatic = 0;
    if (!PyArg_ParseTuple(args, "O!|p:alloc_trace", &PyType_Type, &tp, &automatic))
        return NULL;
    const char *why;
    int rc = pl_alloc_trace((PyTypeObject *)tp, automatic, &why);
    if (rc < 0)
        return NULL;
    if (rc == 0)
        return PyUnicode_FromString(why);
    Py_RETURN_NONE;
}

/* alloc_trace_name(name) -> bool: the name waits for its type (the
 * collector's count passes look for it); False when the list is full. */
static PyObject *py_alloc_trace_name(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_ssize_t len;
    const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8AndSize(arg, &len) : NULL;
    if (!s) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "a type name must be a str");
        return NULL;
    }
    if (len == 0 || len > PL_TYPE_NAME_MAX || memchr(s, 0, (size_t)len))
        return PyErr_Format(PyExc_ValueError, "a type name is 1..%d bytes", PL_TYPE_NAME_MAX);
    int free_slot = -1;
    for (int i = 0; i < PL_ALLOC_NAMES_MAX; i++) {
        if (names[i] && strcmp(names[i], s) == 0)
            Py_RETURN_TRUE;
        if (!names[i] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0)
        Py_RETURN_FALSE;
    if (!(names[free_slot] = strdup(s)))
        return PyErr_NoMemory();
    Py_RETURN_TRUE;
}

static PyObject *py_alloc_untrace(PyObject *module, PyObject *tp)
{
    (void)module;
    if (PyUnicode_Check(tp)) {
        const char *s = PyUnicode_AsUTF8(tp);
        if (!s)
            return NULL;
        int was = 0;
        for (int i = 0; i < PL_ALLOC_NAMES_MAX; i++) {
            if (names[i] && strcmp(names[i], s) == 0) {
                free(names[i]);
                names[i] = NULL;
                was = 1;
            }
        }
        PyTypeObject *t = pl_alloc_traced_named(s);
        was |= t && pl_alloc_untrace(t);
        return PyBool_FromLong(was);
    }
    if (!PyType_Check(tp)) {
        PyErr_SetString(PyExc_TypeError, "alloc_untrace takes a type or its name");
        return NULL;
    }
    return PyBool_FromLong(pl_alloc_untrace((PyTypeObject *)tp));
}

/* alloc_wrapped(type) -> bool: its tp_alloc is the wrapper (traced, or a
 * subclass that inherited it): for tests of the slot's restoration. */
static PyObject *py_alloc_wrapped(PyObject *module, PyObject *tp)
{
    (void)module;
    if (!PyType_Check(tp)) {
        PyErr_SetString(PyExc_TypeError, "alloc_wrapped takes a type");
        return NULL;
    }
    return PyBool_FromLong(((PyTypeObject *)tp)->tp_alloc == traced_alloc);
}

/* alloc_duty(mode=None, window=PL_ALLOC_WINDOW_SAMPLES, gap_ms=PL_ALLOC_WINDOW_GAP_MS)
 * -> the mode before: None the default of this CPython ("auto" on 3.13,
 * else "off"), "off" (the wrapper stays), "always" (windows even without
 * the collector thread; the count pass begins them: for tests). */
static PyObject *py_alloc_duty(PyObject *module, PyObject *args, PyObject *kw)
{
    (void)module;
    static char *kwlist[] = {"mode", "window", "gap_ms", NULL};
    static const char *names_of[] = {"off", "auto", "always"};
    const char *mode = NULL;
    long window = PL_ALLOC_WINDOW_SAMPLES;
    double gap_ms = PL_ALLOC_WINDOW_GAP_MS;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|zld:alloc_duty", kwlist, &mode, &window, &gap_ms))
        return NULL;
    int m = DUTY_DEFAULT;
    if (mode) {
        for (m = 0; m < 3 && strcmp(mode, names_of[m]) != 0; m++)
            ;
        if (m == 3)
            return PyErr_Format(PyExc_ValueError, "mode is None, \"off\", \"auto\" or \"always\"");
    }
    if (window < 1 || window > 1000000 || !(gap_ms >= 0 && gap_ms <= 86400e3))
        return PyErr_Format(PyExc_ValueError, "window is 1..1000000 samples, gap_ms 0..86400000");
    const char *before = names_of[duty.mode];
    duty.mode = m;
    duty.window = window;
    duty.gap = gap_ms / 1e3;
    if (m == DUTY_OFF)
        windows_due(1); /* the wrapper back on every traced type */
    return PyUnicode_FromString(before);
}

static PyObject *py_alloc_untrace_all(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    pl_alloc_untrace_all(0);
    Py_RETURN_NONE;
}

/* Appends the names of the traced types with `pick` (0 the automatic
 * ones, 1 the named ones, 2 between two windows, 3 spent) to list l. */
static int names_where(PyObject *l, int pick)
{
    for (int k = 0; k < PL_ALLOC_TRACED_MAX; k++) {
        const traced *t = &T[k];
        if (!t->tp)
            continue;
        int in = pick == 0 ? t->automatic : pick == 1 ? !t->automatic : pick == 2 ? !t->armed && !t->spent : t->spent;
        if (!in)
            continue;
        PyObject *s = PyUnicode_FromString(t->name ? t->name : "?");
        if (!s || PyList_Append(l, s) < 0) {
            Py_XDECREF(s);
            return -1;
        }
        Py_DECREF(s);
    }
    return 0;
}

/* alloc_stats() -> {"traced": [names], "automatic": [names], "waiting": [names],
 * "sites", "site_bytes", "sites_dropped", "samples", "sites_by_type": {name: n},
 * "windows": mode, "windows_ended", "between_windows": [names], "spent": [names]} */
static PyObject *py_alloc_stats(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    static const char *modes[] = {"off", "auto", "always"};
    PyObject *l[4] = {PyList_New(0), PyList_New(0), PyList_New(0), PyList_New(0)};
    PyObject *wait_l = PyList_New(0), *res = NULL, *by_type_d = NULL;
    if (!l[0] || !l[1] || !l[2] || !l[3] || !wait_l)
        goto out;
    for (int pick = 0; pick < 4; pick++)
        if (names_where(l[pick], pick) < 0)
            goto out;
    for (int i = 0; i < PL_ALLOC_NAMES_MAX; i++) {
        if (!names[i])
            continue;
        PyObject *s = PyUnicode_FromString(names[i]);
        if (!s || PyList_Append(wait_l, s) < 0) {
            Py_XDECREF(s);
            goto out;
        }
        Py_DECREF(s);
    }
    if (!(by_type_d = PyDict_New()))
        goto out;
    for (int k = 0; k < PL_ALLOC_TRACED_MAX; k++) {
        if (!T[k].tp)
            continue;
        Py_ssize_t n = 0;
        for (size_t i = 0; i < nsites; i++)
            n += sites[i].tp == T[k].tp;
        PyObject *v = PyLong_FromSsize_t(n);
        if (!v || PyDict_SetItemString(by_type_d, T[k].name ? T[k].name : "?", v) < 0) {
            Py_XDECREF(v);
            goto out;
        }
        Py_DECREF(v);
    }
    res = Py_BuildValue("{s:O,s:O,s:O,s:n,s:n,s:K,s:K,s:O,s:s,s:K,s:O,s:O}", "traced", l[1], "automatic", l[0],
                        "waiting", wait_l, "sites", (Py_ssize_t)nsites, "site_bytes", (Py_ssize_t)site_bytes,
                        "sites_dropped", (unsigned long long)sites_dropped, "samples",
                        (unsigned long long)samples_total, "sites_by_type", by_type_d, "windows", modes[duty.mode],
                        "windows_ended", (unsigned long long)windows_total, "between_windows", l[2], "spent", l[3]);
out:
    Py_XDECREF(by_type_d);
    for (int i = 0; i < 4; i++)
        Py_XDECREF(l[i]);
    Py_XDECREF(wait_l);
    return res;
}

static PyMethodDef alloc_methods[] = {
    {"alloc_trace", py_alloc_trace, METH_VARARGS,
     "alloc_trace(type, automatic=False) -> None, or why the type cannot be traced (docs/allocations.md)."},
    {"alloc_trace_name", py_alloc_trace_name, METH_O,
     "alloc_trace_name(name) -> bool: trace the type named \"module.qualname\" when a count pass meets it."},
    {"alloc_untrace", py_alloc_untrace, METH_O,
     "alloc_untrace(type or name) -> bool: stop tracing it, restore its slot, forget its sites."},
    {"alloc_untrace_all", py_alloc_untrace_all, METH_NOARGS, "Stops tracing every type."},
    {"alloc_duty", (PyCFunction)(void (*)(void))py_alloc_duty, METH_VARARGS | METH_KEYWORDS,
     "alloc_duty(mode=None, window=..., gap_ms=...) -> the mode before: the sampling windows (docs/allocations.md)."},
    {"alloc_wrapped", py_alloc_wrapped, METH_O, "alloc_wrapped(type) -> bool: its tp_alloc is pyloot's wrapper."},
    {"alloc_stats", py_alloc_stats, METH_NOARGS, "The traced types and the sizes of the site tables."},
    {NULL, NULL, 0, NULL},
};

/* See alloc_sites.h. */
int pl_alloc_module_exec(PyObject *module)
{
    if (PyModule_AddFunctions(module, alloc_methods) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "ALLOC_SITES_MAX", PL_ALLOC_SITES_MAX) < 0 ||
        PyModule_AddIntConstant(module, "ALLOC_FRAMES", PL_ALLOC_FRAMES) < 0 ||
        PyModule_AddIntConstant(module, "ALLOC_SAMPLE_ALL", PL_ALLOC_SAMPLE_ALL) < 0)
        return -1;
    return 0;
}
