/* typetable.c: the collector's type table and the display names of types
 * (typetable.h). */
#include "typetable.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Same-named types as the last pass named them ("mod.T", "mod.T#2", ...),
 * for live-object queries. Protected by shared_names_lock, a leaf lock: nothing
 * else is acquired while it is held, so it may be taken with the GIL. */
typedef struct named_type {
    char *name;
    const PyTypeObject *tp; /* compared only: it may be stale */
} named_type;
static pthread_mutex_t shared_names_lock = PTHREAD_MUTEX_INITIALIZER;
static named_type *shared_names;
static size_t n_shared_names;

/* ---- type names ---- */

static PyObject *str_module; /* interned "__module__"; immortal for the process (never freed on purpose) */

static int put_str(PyObject *s, pl_buf *out)
{
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (!u) {
        PyErr_Clear();
        return -1;
    }
    return pl_buf_append(out, u, (size_t)n) ? -1 : 0;
}

/* See pyext.h. */
int pl_typename(PyTypeObject *tp, pl_buf *out)
{
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE))
        return pl_buf_puts(out, tp->tp_name) ? -1 : 0;

    PyHeapTypeObject *ht = (PyHeapTypeObject *)tp;
    if (!str_module) {
        str_module = PyUnicode_InternFromString("__module__");
        if (!str_module) {
            PyErr_Clear();
            return pl_buf_puts(out, tp->tp_name) ? -1 : 0;
        }
    }
    /* The type's own dict, not attribute lookup: no descriptor or metaclass
     * code runs, and nothing is created. */
    PyObject *mod = tp->tp_dict ? PyDict_GetItemWithError(tp->tp_dict, str_module) : NULL;
    if (!mod && PyErr_Occurred())
        PyErr_Clear();
    size_t mark = out->len;
    if (mod && PyUnicode_Check(mod) && PyUnicode_CompareWithASCIIString(mod, "builtins") != 0) {
        if (put_str(mod, out) < 0 || pl_buf_putc(out, '.'))
            goto fallback;
    }
    if (ht->ht_qualname && PyUnicode_Check(ht->ht_qualname)) {
        if (put_str(ht->ht_qualname, out) < 0)
            goto fallback;
        return 0;
    }
fallback:
    out->len = mark;
    out->err = 0;
    return pl_buf_puts(out, tp->tp_name) ? -1 : 0;
}

/* ---- name sets ---- */

static const char name_tomb[1];

/* The slot holding a string equal to name, or SIZE_MAX. */
static size_t set_find(const pl_name_set *ns, const char *name)
{
    if (!ns->cap)
        return SIZE_MAX;
    for (size_t i = pl_hash_str(name) & (ns->cap - 1);; i = (i + 1) & (ns->cap - 1)) {
        const char *v = ns->slot[i];
        if (!v)
            return SIZE_MAX;
        if (v != name_tomb && strcmp(v, name) == 0)
            return i;
    }
}

static int set_add(pl_name_set *ns, const char *name)
{
    if ((ns->used + ns->tombs + 1) * 2 > ns->cap) {
        size_t cap = ns->cap ? ns->cap : 1024;
        while ((ns->used + 1) * 2 > cap)
            cap *= 2;
        const char **slot = calloc(cap, sizeof *slot);
        if (!slot)
            return ENOMEM;
        for (size_t i = 0; i < ns->cap; i++) {
            const char *v = ns->slot[i];
            if (!v || v == name_tomb)
                continue;
            size_t j = pl_hash_str(v) & (cap - 1);
            while (slot[j])
                j = (j + 1) & (cap - 1);
            slot[j] = v;
        }
        free(ns->slot);
        ns->slot = slot;
        ns->cap = cap;
        ns->tombs = 0;
    }
    size_t i = pl_hash_str(name) & (ns->cap - 1);
    while (ns->slot[i] && ns->slot[i] != name_tomb)
        i = (i + 1) & (ns->cap - 1);
    if (ns->slot[i] == name_tomb)
        ns->tombs--;
    ns->slot[i] = name;
    ns->used++;
    return 0;
}

/* Removes this very string (compared by address once found by contents). */
static void set_remove(pl_name_set *ns, const char *name)
{
    size_t i = set_find(ns, name);
    if (i != SIZE_MAX && ns->slot[i] == name) {
        ns->slot[i] = name_tomb;
        ns->used--;
        ns->tombs++;
    }
}

static void set_free(pl_name_set *ns)
{
    free(ns->slot);
    memset(ns, 0, sizeof *ns);
}

static void entry_clear(pl_type_table *t, pl_type_entry *e)
{
    if (e->name)
        set_remove(&t->names, e->name);
    free(e->base);
    if (e->name != e->base)
        free(e->name);
    memset(e, 0, sizeof *e);
}

static int table_grow(pl_type_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    pl_type_entry *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        pl_type_entry *e = &t->slots[i];
        if (!e->tp)
            continue;
        size_t j = pl_hash_ptr((uintptr_t)e->tp) & (cap - 1);
        while (slots[j].tp)
            j = (j + 1) & (cap - 1);
        slots[j] = *e;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

/* See typetable.h. Removes the entries not seen in the current pass (their types may be gone,
 * and their pointers reused) by rebuilding the table. */
void pl_typetable_evict(pl_type_table *t)
{
    if (!t->cap)
        return;
    pl_type_entry *slots = calloc(t->cap, sizeof *slots);
    if (!slots)
        return; /* stale entries are harmless: they are re-validated before reuse */
    size_t kept = 0;
    for (size_t i = 0; i < t->cap; i++) {
        pl_type_entry *e = &t->slots[i];
        if (!e->tp)
            continue;
        if (e->epoch != t->epoch) {
            entry_clear(t, e);
            continue;
        }
        /* Reinsert survivors so that probe chains stay unbroken. */
        size_t j = pl_hash_ptr((uintptr_t)e->tp) & (t->cap - 1);
        while (slots[j].tp)
            j = (j + 1) & (t->cap - 1);
        slots[j] = *e;
        kept++;
    }
    free(t->slots);
    t->slots = slots;
    t->used = kept;
}

/* Gives e a display name unique among the table's entries. */
static int entry_name(pl_type_table *t, pl_type_entry *e)
{
    for (unsigned n = 1;; n++) {
        char *name = e->base;
        if (n > 1) {
            size_t len = strlen(e->base) + 16;
            name = malloc(len);
            if (!name)
                return ENOMEM;
            snprintf(name, len, "%s#%u", e->base, n);
        }
        if (set_find(&t->names, name) == SIZE_MAX) {
            if (set_add(&t->names, name)) {
                if (name != e->base)
                    free(name);
                return ENOMEM;
            }
            e->name = name;
            return 0;
        }
        if (name != e->base)
            free(name);
    }
}

/* See typetable.h. */
pl_type_entry *pl_typetable_lookup(pl_type_table *t, PyTypeObject *tp)
{
    if ((t->used + 1) * 2 > t->cap && table_grow(t))
        return NULL;
    size_t i = pl_hash_ptr((uintptr_t)tp) & (t->cap - 1);
    while (t->slots[i].tp && t->slots[i].tp != tp)
        i = (i + 1) & (t->cap - 1);
    pl_type_entry *e = &t->slots[i];
    if (e->tp == tp && e->epoch == t->epoch)
        return e;
    /* First time in this pass: check that the cached name still belongs to
     * this pointer (a freed type's address can be reused by a new type). */
    pl_buf_reset(&t->scratch);
    if (pl_typename(tp, &t->scratch) < 0 || t->scratch.err)
        return NULL;
    if (e->tp == tp && strcmp(e->base, pl_buf_cstr(&t->scratch)) == 0) {
        e->epoch = t->epoch;
        e->count = e->bytes = 0;
        e->size = pl_size_rule_of(tp); /* a class may have gained a __sizeof__ */
        return e;
    }
    if (e->tp)
        entry_clear(t, e);
    else
        t->used++;
    e->tp = tp;
    e->base = strdup(pl_buf_cstr(&t->scratch));
    e->type_id = UINT32_MAX;
    e->epoch = t->epoch;
    e->size = pl_size_rule_of(tp);
    if (!e->base || entry_name(t, e)) {
        free(e->base);
        memset(e, 0, sizeof *e);
        t->used--;
        return NULL;
    }
    return e;
}

/* See typetable.h. The GIL held (and the table's owner lock). Allocation failures leave the
 * previous list in place. */
void pl_typetable_publish(pl_type_table *t)
{
    size_t k = 0, n = 0;
    pl_name_set bases = {0};
    named_type *list = NULL;
    for (size_t i = 0; i < t->cap; i++) {
        pl_type_entry *e = &t->slots[i];
        if (e->tp && e->epoch == t->epoch && e->name != e->base) {
            k++;
            if (set_find(&bases, e->base) == SIZE_MAX && set_add(&bases, e->base))
                goto out;
        }
    }
    if (k) {
        list = calloc(2 * k + t->used, sizeof *list);
        if (!list)
            goto out;
        for (size_t i = 0; i < t->cap; i++) {
            pl_type_entry *e = &t->slots[i];
            if (!e->tp || e->epoch != t->epoch || set_find(&bases, e->base) == SIZE_MAX)
                continue;
            list[n].name = strdup(e->name);
            list[n].tp = e->tp;
            if (!list[n].name)
                break;
            n++;
        }
    }
    pthread_mutex_lock(&shared_names_lock);
    named_type *old = shared_names;
    size_t n_old = n_shared_names;
    shared_names = list;
    n_shared_names = n;
    pthread_mutex_unlock(&shared_names_lock);
    for (size_t i = 0; i < n_old; i++)
        free(old[i].name);
    free(old);
out:
    set_free(&bases);
}

/* See typetable.h. */
int pl_type_named(const char *name, const PyTypeObject **tp)
{
    int found = 0;
    pthread_mutex_lock(&shared_names_lock);
    for (size_t i = 0; i < n_shared_names && !found; i++) {
        if (strcmp(shared_names[i].name, name) == 0) {
            *tp = shared_names[i].tp;
            found = 1;
        }
    }
    pthread_mutex_unlock(&shared_names_lock);
    return found;
}


void pl_typetable_atfork_child(pl_type_table *t)
{
    pthread_mutex_init(&shared_names_lock, NULL);
    shared_names = NULL;
    n_shared_names = 0;
    memset(t, 0, sizeof *t);
}
