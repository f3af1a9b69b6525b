/* Containers of util.h. */
#include "util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* See util.h: one line, one write(). */
void pl_log(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(2, line, (size_t)n) < 0)
        return;
}

int pl_objvec_push(pl_objvec *a, struct _object *o)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        struct _object **v = realloc(a->v, cap * sizeof(*v));
        if (!v)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = o;
    return 0;
}

void pl_objvec_free(pl_objvec *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

int pl_cmp_addr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

int pl_ptrmap_init(pl_ptrmap *m, size_t expected)
{
    size_t cap = 64;
    while (cap < expected * 2)
        cap <<= 1;
    m->keys = calloc(cap, sizeof(*m->keys));
    m->vals = malloc(cap * sizeof(*m->vals));
    m->cap = cap;
    m->n = 0;
    if (!m->keys || !m->vals) {
        free(m->keys);
        free(m->vals);
        m->keys = NULL;
        m->vals = NULL;
        m->cap = 0;
        return -1;
    }
    return 0;
}

void pl_ptrmap_free(pl_ptrmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

static int ptrmap_grow(pl_ptrmap *m)
{
    pl_ptrmap bigger;
    if (pl_ptrmap_init(&bigger, m->cap) < 0)
        return -1;
    size_t mask = bigger.cap - 1;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->keys[j])
            continue;
        size_t i = pl_hash_ptr(m->keys[j]) & mask;
        while (bigger.keys[i])
            i = (i + 1) & mask;
        bigger.keys[i] = m->keys[j];
        bigger.vals[i] = m->vals[j];
    }
    bigger.n = m->n;
    pl_ptrmap_free(m);
    *m = bigger;
    return 0;
}

int pl_ptrmap_add(pl_ptrmap *m, uintptr_t k, uint32_t v)
{
    if ((m->n + 1) * 2 > m->cap && ptrmap_grow(m) < 0)
        return -1;
    size_t mask = m->cap - 1;
    size_t i = pl_hash_ptr(k) & mask;
    for (; m->keys[i]; i = (i + 1) & mask)
        if (m->keys[i] == k)
            return 0;
    m->keys[i] = k;
    m->vals[i] = v;
    m->n++;
    return 1;
}

uint32_t *pl_ptrmap_slot(pl_ptrmap *m, uintptr_t k)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = pl_hash_ptr(k) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == k)
            return &m->vals[i];
        if (m->keys[i] == 0)
            return NULL;
    }
}

int pl_ptrmap_get(const pl_ptrmap *m, uintptr_t k, uint32_t *v)
{
    uint32_t *slot = pl_ptrmap_slot((pl_ptrmap *)m, k);
    if (!slot)
        return 0;
    *v = *slot;
    return 1;
}

/* ---- GIL time of pyloot's own threads (see util.h) ---- */

static _Atomic uint64_t gil_held_ns;
static _Thread_local int gil_counted;

void pl_gil_account_thread(void)
{
    gil_counted = 1;
}

void pl_gil_held_add(double seconds)
{
    if (gil_counted && seconds > 0)
        atomic_fetch_add(&gil_held_ns, (uint64_t)(seconds * 1e9));
}

uint64_t pl_gil_held_us(void)
{
    return atomic_load(&gil_held_ns) / 1000;
}

void pl_gil_held_reset(void)
{
    atomic_store(&gil_held_ns, 0);
}
