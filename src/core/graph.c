/* Graph algorithms over compact arrays. See graph.h for the contracts. Over
 * 800 lines because every algorithm (reach, paths, SCC, subgraphs, set
 * operations) works on the same CSR arrays and key index, iteratively; one
 * function each. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/graph.h"

/* Open-addressing index from key to vertex number: linear probing over
 * 16-byte slots, so a hit costs one cache miss. The slot count is not a power
 * of two (range reduction by multiply-high keeps the load near 3/4 and the
 * index at ~21 bytes per vertex). */
/* How far ahead loops over scattered memory prefetch. */
#define PREFETCH_AHEAD 16
/* Batch inserts and lookups work in blocks: every slot of a block is
 * computed and prefetched first, then probed, so the misses overlap. */
#define LOOKUP_BLOCK 32

typedef struct slot {
    uint64_t key; /* 0: empty */
    uint32_t v;
} slot;

struct pl_graph {
    size_t n, vcap;
    uint64_t *keys;
    slot *table;
    size_t tcap;
    size_t m, ecap;
    uint32_t *out_off;  /* n+1 once finished; during building out_off[v] for v <= last tail */
    uint32_t *out_head; /* m */
    uint32_t *in_off;   /* n+1 */
    uint32_t *in_tail;  /* m */
    uint32_t last_tail; /* building: tail of the last edge added */
    int edges_started;
    int finished;
    int sorted; /* keys strictly ascending and no table: lookups search keys */
};

static inline uint64_t hash_key(uint64_t k)
{
    /* Addresses are 16-byte aligned and close together: mix them well. */
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static inline size_t slot_of(uint64_t k, size_t tcap)
{
    return (size_t)(((unsigned __int128)hash_key(k) * tcap) >> 64);
}

/* Slots for n keys: a load of 0.6 keeps misses (referents that are not
 * vertices, frequent in a snapshot) at about two probes. */
static size_t table_cap_for(size_t n)
{
    return n + n / 3 * 2 + 8;
}

static int table_rebuild(pl_graph *g, size_t want)
{
    size_t tcap = table_cap_for(want);
    slot *t = calloc(tcap, sizeof(slot));
    if (!t)
        return ENOMEM;
    for (size_t v = 0; v < g->n; v++) {
        size_t i = slot_of(g->keys[v], tcap);
        while (t[i].key)
            if (++i == tcap)
                i = 0;
        t[i].key = g->keys[v];
        t[i].v = (uint32_t)v;
    }
    free(g->table);
    g->table = t;
    g->tcap = tcap;
    return 0;
}

int pl_graph_new(size_t vertex_hint, pl_graph **out)
{
    *out = NULL;
    pl_graph *g = calloc(1, sizeof(*g));
    if (!g)
        return ENOMEM;
    if (vertex_hint > PL_GRAPH_MAX)
        vertex_hint = PL_GRAPH_MAX;
    g->vcap = vertex_hint ? vertex_hint : 16;
    g->keys = malloc(g->vcap * sizeof(uint64_t));
    if (!g->keys || table_rebuild(g, g->vcap)) {
        pl_graph_free(g);
        return ENOMEM;
    }
    *out = g;
    return 0;
}

void pl_graph_free(pl_graph *g)
{
    if (!g)
        return;
    free(g->keys);
    free(g->table);
    free(g->out_off);
    free(g->out_head);
    free(g->in_off);
    free(g->in_tail);
    free(g);
}

/* The vertex of `key` in a sorted graph's keys[lo, n), or PL_GRAPH_NONE;
 * *next (may be NULL) gets the first position whose key is >= key. */
static uint32_t sorted_find(const pl_graph *g, size_t lo, uint64_t key, size_t *next)
{
    size_t hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->keys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (next)
        *next = lo;
    return lo < g->n && g->keys[lo] == key ? (uint32_t)lo : PL_GRAPH_NONE;
}

uint32_t pl_graph_lookup(const pl_graph *g, uint64_t key)
{
    if (g->sorted)
        return key ? sorted_find(g, 0, key, NULL) : PL_GRAPH_NONE;
    if (!key || !g->table)
        return PL_GRAPH_NONE;
    size_t i = slot_of(key, g->tcap);
    for (;;) {
        const slot *s = &g->table[i];
        if (s->key == key)
            return s->v;
        if (!s->key)
            return PL_GRAPH_NONE;
        if (++i == g->tcap)
            i = 0;
    }
}


/* Probes for `key` starting at slot i. */
static inline uint32_t probe(const pl_graph *g, uint64_t key, size_t i)
{
    for (;;) {
        const slot *s = &g->table[i];
        if (s->key == key)
            return s->v;
        if (!s->key)
            return PL_GRAPH_NONE;
        if (++i == g->tcap)
            i = 0;
    }
}


/* Sorted graph: ascending runs of queries are merged with the keys (each
 * search gallops on from where the previous one ended), a query smaller than
 * the previous one starts again from the first key. */
static void sorted_lookup_many(const pl_graph *g, const uint64_t *keys, size_t n, uint32_t *out)
{
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t key = keys[i];
        if (!key) {
            out[i] = PL_GRAPH_NONE;
            continue;
        }
        if (pos && g->keys[pos - 1] >= key)
            pos = 0;
        /* keys[lo - 1] < key <= keys[hi] (hi may pass the end). */
        size_t lo = pos, hi = pos, step = 1;
        while (hi < g->n && g->keys[hi] < key) {
            lo = hi + 1;
            hi += step;
            step *= 2;
        }
        if (hi > g->n)
            hi = g->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (g->keys[mid] < key)
                lo = mid + 1;
            else
                hi = mid;
        }
        pos = lo;
        out[i] = lo < g->n && g->keys[lo] == key ? (uint32_t)lo : PL_GRAPH_NONE;
    }
}

void pl_graph_lookup_many(const pl_graph *g, const uint64_t *keys, size_t n, uint32_t *out)
{
    if (g->sorted) {
        sorted_lookup_many(g, keys, n, out);
        return;
    }
    if (!g->table) {
        for (size_t i = 0; i < n; i++)
            out[i] = PL_GRAPH_NONE;
        return;
    }
    size_t slots[LOOKUP_BLOCK];
    for (size_t base = 0; base < n; base += LOOKUP_BLOCK) {
        size_t len = n - base < LOOKUP_BLOCK ? n - base : LOOKUP_BLOCK;
        for (size_t j = 0; j < len; j++) {
            slots[j] = slot_of(keys[base + j], g->tcap);
            __builtin_prefetch(&g->table[slots[j]]);
        }
        for (size_t j = 0; j < len; j++) {
            uint64_t key = keys[base + j];
            out[base + j] = key ? probe(g, key, slots[j]) : PL_GRAPH_NONE;
        }
    }
}

int pl_graph_has_index(const pl_graph *g)
{
    return g->table != NULL || g->sorted;
}

int pl_graph_ensure_index(pl_graph *g)
{
    return g->table || g->sorted ? 0 : table_rebuild(g, g->n);
}

int pl_graph_adopt_sorted(uint64_t *keys, size_t n, uint32_t *out_off, uint32_t *out_head,
                          pl_graph **out)
{
    *out = NULL;
    if (n > PL_GRAPH_MAX || !keys || !out_off || out_off[0] != 0 || out_off[n] > PL_GRAPH_MAX)
        return PL_EBADARG;
    for (size_t v = 0; v < n; v++)
        if (!keys[v] || (v && keys[v] <= keys[v - 1]) || out_off[v + 1] < out_off[v])
            return PL_EBADARG;
    size_t m = out_off[n];
    if (m && !out_head)
        return PL_EBADARG;
    for (size_t e = 0; e < m; e++)
        if (out_head[e] >= n)
            return PL_EBADARG;
    pl_graph *g = calloc(1, sizeof(*g));
    if (!g)
        return ENOMEM;
    g->n = g->vcap = n;
    g->m = g->ecap = m;
    g->keys = keys;
    g->out_off = out_off;
    g->out_head = out_head;
    g->last_tail = (uint32_t)n;
    g->edges_started = g->finished = g->sorted = 1;
    *out = g;
    return 0;
}

int pl_graph_add_vertex(pl_graph *g, uint64_t key, uint32_t *index, int *added)
{
    if (added)
        *added = 0;
    if (!key || g->edges_started || g->finished || !g->table)
        return PL_EBADARG;
    size_t i = slot_of(key, g->tcap);
    for (;;) {
        if (g->table[i].key == key) {
            if (index)
                *index = g->table[i].v;
            return 0;
        }
        if (!g->table[i].key)
            break;
        if (++i == g->tcap)
            i = 0;
    }
    if (g->n >= PL_GRAPH_MAX)
        return PL_ETOOBIG;
    if (g->n == g->vcap) {
        size_t ncap = g->vcap * 2;
        if (ncap > PL_GRAPH_MAX)
            ncap = PL_GRAPH_MAX;
        uint64_t *k = realloc(g->keys, ncap * sizeof(uint64_t));
        if (!k)
            return ENOMEM;
        g->keys = k;
        g->vcap = ncap;
    }
    /* Keep the load at or under 3/4 of the slots. */
    if ((g->n + 1) * 4 > g->tcap * 3) { /* over 0.75: grow */
        int rc = table_rebuild(g, g->vcap > (g->n + 1) * 2 ? g->vcap : (g->n + 1) * 2);
        if (rc)
            return rc;
        i = slot_of(key, g->tcap);
        while (g->table[i].key)
            if (++i == g->tcap)
                i = 0;
    }
    uint32_t v = (uint32_t)g->n++;
    g->keys[v] = key;
    g->table[i].key = key;
    g->table[i].v = v;
    if (index)
        *index = v;
    if (added)
        *added = 1;
    return 0;
}

/* Makes room for `more` vertices: keys array and an index kept at or under
 * 3/4 load. */
static int reserve_vertices(pl_graph *g, size_t more)
{
    if (more > PL_GRAPH_MAX - g->n)
        return PL_ETOOBIG;
    size_t want = g->n + more;
    if (want > g->vcap) {
        size_t ncap = g->vcap * 2 > want ? g->vcap * 2 : want;
        if (ncap > PL_GRAPH_MAX)
            ncap = PL_GRAPH_MAX;
        uint64_t *k = realloc(g->keys, ncap * sizeof(uint64_t));
        if (!k)
            return ENOMEM;
        g->keys = k;
        g->vcap = ncap;
    }
    /* Grow the index geometrically: batches must not rebuild it each time. */
    if (want * 4 > g->tcap * 3)
        return table_rebuild(g, want > 2 * g->n ? want : 2 * g->n);
    return 0;
}

int pl_graph_add_vertices(pl_graph *g, const uint64_t *keys, size_t n, uint8_t *added)
{
    if (added)
        memset(added, 0, n);
    if (g->edges_started || g->finished || !g->table)
        return PL_EBADARG;
    int rc = reserve_vertices(g, n);
    if (rc)
        return rc;
    size_t slots[LOOKUP_BLOCK];
    for (size_t base = 0; base < n; base += LOOKUP_BLOCK) {
        size_t len = n - base < LOOKUP_BLOCK ? n - base : LOOKUP_BLOCK;
        for (size_t j = 0; j < len; j++) {
            slots[j] = slot_of(keys[base + j], g->tcap);
            __builtin_prefetch(&g->table[slots[j]], 1);
        }
        for (size_t j = 0; j < len; j++) {
            uint64_t key = keys[base + j];
            if (!key)
                return PL_EBADARG;
            size_t i = slots[j];
            while (g->table[i].key && g->table[i].key != key)
                if (++i == g->tcap)
                    i = 0;
            if (g->table[i].key)
                continue;
            uint32_t v = (uint32_t)g->n++;
            g->keys[v] = key;
            g->table[i].key = key;
            g->table[i].v = v;
            if (added)
                added[base + j] = 1;
        }
    }
    return 0;
}

int pl_graph_add_edge(pl_graph *g, uint32_t tail, uint32_t head)
{
    if (g->finished || tail >= g->n || head >= g->n)
        return PL_EBADARG;
    if (!g->edges_started) {
        g->out_off = malloc((g->n + 1) * sizeof(uint32_t));
        if (!g->out_off)
            return ENOMEM;
        g->edges_started = 1;
        g->last_tail = 0;
        g->out_off[0] = 0;
    }
    if (tail < g->last_tail)
        return PL_EBADARG;
    if (g->m >= PL_GRAPH_MAX)
        return PL_ETOOBIG;
    if (g->m == g->ecap) {
        size_t ncap = g->ecap ? g->ecap * 2 : 1024;
        if (ncap > PL_GRAPH_MAX)
            ncap = PL_GRAPH_MAX;
        uint32_t *h = realloc(g->out_head, ncap * sizeof(uint32_t));
        if (!h)
            return ENOMEM;
        g->out_head = h;
        g->ecap = ncap;
    }
    /* Close the offsets of the vertices between the last tail and this one. */
    while (g->last_tail < tail)
        g->out_off[++g->last_tail] = (uint32_t)g->m;
    g->out_head[g->m++] = head;
    return 0;
}

int pl_graph_add_edges_by_key(pl_graph *g, const uint32_t *tails, const uint64_t *heads,
                              size_t n)
{
    if (g->finished || !g->table)
        return PL_EBADARG;
    if (n && (tails[0] < g->last_tail || tails[n - 1] >= g->n))
        return PL_EBADARG;
    if (!g->edges_started) {
        g->out_off = malloc((g->n + 1) * sizeof(uint32_t));
        if (!g->out_off)
            return ENOMEM;
        g->edges_started = 1;
        g->last_tail = 0;
        g->out_off[0] = 0;
    }
    if (n > PL_GRAPH_MAX - g->m)
        return PL_ETOOBIG;
    if (g->m + n > g->ecap) {
        size_t ncap = g->ecap * 2 > g->m + n ? g->ecap * 2 : g->m + n;
        if (ncap > PL_GRAPH_MAX)
            ncap = PL_GRAPH_MAX;
        uint32_t *h = realloc(g->out_head, ncap * sizeof(uint32_t));
        if (!h)
            return ENOMEM;
        g->out_head = h;
        g->ecap = ncap;
    }
    size_t slots[LOOKUP_BLOCK];
    for (size_t base = 0; base < n; base += LOOKUP_BLOCK) {
        size_t len = n - base < LOOKUP_BLOCK ? n - base : LOOKUP_BLOCK;
        for (size_t j = 0; j < len; j++) {
            slots[j] = slot_of(heads[base + j], g->tcap);
            __builtin_prefetch(&g->table[slots[j]]);
        }
        for (size_t j = 0; j < len; j++) {
            uint64_t key = heads[base + j];
            uint32_t h = key ? probe(g, key, slots[j]) : PL_GRAPH_NONE;
            if (h == PL_GRAPH_NONE)
                continue;
            uint32_t tail = tails[base + j];
            if (tail < g->last_tail || tail >= g->n)
                return PL_EBADARG;
            while (g->last_tail < tail)
                g->out_off[++g->last_tail] = (uint32_t)g->m;
            g->out_head[g->m++] = h;
        }
    }
    return 0;
}

/* The in-edge CSR: a counting sort of the edges by head. Scanning tails in
 * order keeps each in-list ordered by edge number. */
static int build_reverse(pl_graph *g)
{
    size_t n = g->n, m = g->m;
    uint32_t *in_off = calloc(n + 1, sizeof(uint32_t));
    uint32_t *in_tail = malloc((m ? m : 1) * sizeof(uint32_t));
    if (!in_off || !in_tail) {
        free(in_off);
        free(in_tail);
        return ENOMEM;
    }
    /* Heads are scattered: prefetch the counters ahead so the misses
     * overlap instead of queueing. */
    const uint32_t *head = g->out_head;
    for (size_t e = 0; e < m; e++) {
        if (e + PREFETCH_AHEAD < m)
            __builtin_prefetch(&in_off[head[e + PREFETCH_AHEAD] + 1], 1);
        in_off[head[e] + 1]++;
    }
    for (size_t v = 0; v < n; v++)
        in_off[v + 1] += in_off[v];
    uint32_t tail = 0;
    for (size_t e = 0; e < m; e++) {
        while (e >= g->out_off[tail + 1])
            tail++;
        if (e + PREFETCH_AHEAD < m)
            __builtin_prefetch(&in_off[head[e + PREFETCH_AHEAD]], 1);
        in_tail[in_off[head[e]]++] = tail;
    }
    for (size_t v = n; v > 0; v--)
        in_off[v] = in_off[v - 1];
    in_off[0] = 0;
    g->in_off = in_off;
    g->in_tail = in_tail;
    return 0;
}

int pl_graph_finish(pl_graph *g)
{
    if (g->finished)
        return 0;
    size_t n = g->n, m = g->m;
    if (!g->edges_started) {
        g->out_off = malloc((n + 1) * sizeof(uint32_t));
        if (!g->out_off)
            return ENOMEM;
        g->edges_started = 1;
        g->last_tail = 0;
        g->out_off[0] = 0;
    }
    while (g->last_tail < n)
        g->out_off[++g->last_tail] = (uint32_t)m;
    if (n == 0)
        g->out_off[0] = 0;
    /* Give back the slack of the growing arrays. */
    if (m && m < g->ecap) {
        uint32_t *h = realloc(g->out_head, m * sizeof(uint32_t));
        if (h)
            g->out_head = h;
        g->ecap = m;
    }
    if (n && n < g->vcap) {
        uint64_t *k = realloc(g->keys, n * sizeof(uint64_t));
        if (k)
            g->keys = k;
        g->vcap = n;
        if (g->table && g->tcap > table_cap_for(n) * 2)
            (void)table_rebuild(g, n); /* on ENOMEM the larger table still works */
    }
    g->finished = 1;
    return 0;
}

int pl_graph_ensure_reverse(pl_graph *g)
{
    if (!g->finished)
        return PL_EBADARG;
    return g->in_off ? 0 : build_reverse(g);
}

int pl_graph_has_reverse(const pl_graph *g)
{
    return g->in_off != NULL;
}

size_t pl_graph_order(const pl_graph *g) { return g->n; }
size_t pl_graph_size(const pl_graph *g) { return g->m; }
uint64_t pl_graph_key(const pl_graph *g, uint32_t v) { return g->keys[v]; }
const uint64_t *pl_graph_keys(const pl_graph *g) { return g->keys; }

const uint32_t *pl_graph_out(const pl_graph *g, uint32_t v, size_t *count, uint32_t *first_edge)
{
    uint32_t b = g->out_off[v];
    *count = g->out_off[v + 1] - b;
    if (first_edge)
        *first_edge = b;
    return g->out_head ? g->out_head + b : NULL;
}

const uint32_t *pl_graph_in(const pl_graph *g, uint32_t v, size_t *count)
{
    if (!g->in_off) {
        *count = 0;
        return NULL;
    }
    uint32_t b = g->in_off[v];
    *count = g->in_off[v + 1] - b;
    return g->in_tail + b;
}

void pl_graph_csr(const pl_graph *g, const uint32_t **out_off, const uint32_t **out_head,
                  const uint32_t **in_off, const uint32_t **in_tail)
{
    if (out_off)
        *out_off = g->out_off;
    if (out_head)
        *out_head = g->out_head;
    if (in_off)
        *in_off = g->in_off;
    if (in_tail)
        *in_tail = g->in_tail;
}

uint32_t pl_graph_edge_head(const pl_graph *g, uint32_t e)
{
    return e < g->m ? g->out_head[e] : PL_GRAPH_NONE;
}

uint32_t pl_graph_edge_tail(const pl_graph *g, uint32_t e)
{
    if (e >= g->m)
        return PL_GRAPH_NONE;
    /* The last vertex whose first edge is <= e (empty vertices before a
     * busy one share its offset: take the last of them). */
    size_t lo = 0, hi = g->n; /* out_off[lo] <= e < out_off[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->out_off[mid] <= e)
            lo = mid;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

int pl_graph_in_edges(const pl_graph *g, uint32_t v, uint32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (v >= g->n || !g->in_off)
        return PL_EBADARG;
    size_t k = g->in_off[v + 1] - g->in_off[v];
    const uint32_t *tails = g->in_tail + g->in_off[v];
    uint32_t *edges = malloc((k + 1) * sizeof(uint32_t));
    if (!edges)
        return ENOMEM;
    /* The tails come by edge number, so the edges from one tail are
     * consecutive: one scan of that tail's out-edges finds all of them. */
    size_t found = 0;
    for (size_t i = 0; i < k; i++) {
        if (i && tails[i] == tails[i - 1])
            continue;
        uint32_t t = tails[i];
        for (uint32_t e = g->out_off[t]; e < g->out_off[t + 1]; e++)
            if (g->out_head[e] == v)
                edges[found++] = e;
    }
    *out = edges;
    *n = found;
    return 0;
}

size_t pl_graph_memory(const pl_graph *g)
{
    size_t bytes = sizeof(*g) + g->vcap * sizeof(uint64_t) + g->tcap * sizeof(slot) +
                   g->ecap * sizeof(uint32_t);
    if (g->out_off)
        bytes += (g->n + 1) * sizeof(uint32_t);
    if (g->in_off)
        bytes += (g->n + 1) * sizeof(uint32_t) + g->m * sizeof(uint32_t);
    return bytes;
}

/* ---- breadth-first searches ---- */

#define BIT_SET(bits, i) ((bits)[(i) >> 6] |= (uint64_t)1 << ((i) & 63))
#define BIT_GET(bits, i) (((bits)[(i) >> 6] >> ((i) & 63)) & 1)

static uint64_t *bits_new(size_t n)
{
    return calloc(n / 64 + 1, sizeof(uint64_t));
}

int pl_graph_reach(const pl_graph *g, uint32_t start, int reverse, long generations,
                   uint32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (start >= g->n || (reverse && !g->in_off))
        return PL_EBADARG;
    uint64_t *seen = bits_new(g->n);
    uint32_t *queue = malloc(g->n * sizeof(uint32_t));
    if (!seen || !queue) {
        free(seen);
        free(queue);
        return ENOMEM;
    }
    size_t head = 0, tail = 0, level_end = 1;
    long depth = 0;
    queue[tail++] = start;
    BIT_SET(seen, start);
    const uint32_t *off = reverse ? g->in_off : g->out_off;
    const uint32_t *adj = reverse ? g->in_tail : g->out_head;
    while (head < tail) {
        if (head == level_end) {
            depth++;
            level_end = tail;
        }
        if (generations >= 0 && depth >= generations)
            break;
        uint32_t v = queue[head++];
        for (uint32_t e = off[v]; e < off[v + 1]; e++) {
            uint32_t w = adj[e];
            if (!BIT_GET(seen, w)) {
                BIT_SET(seen, w);
                queue[tail++] = w;
            }
        }
    }
    free(seen);
    uint32_t *shrunk = realloc(queue, (tail ? tail : 1) * sizeof(uint32_t));
    *out = shrunk ? shrunk : queue;
    *n = tail;
    return 0;
}

/* Breadth-first search from the children of `from` until `target` is
 * reached; pred[] gets, for each reached vertex, the vertex it was first
 * reached from. `from_counts` says whether `from` itself counts as reached
 * (shortest path) or must be reached again (shortest cycle). */
static int bfs_pred(const pl_graph *g, uint32_t from, uint32_t target, int from_counts,
                    uint32_t *pred, uint64_t *seen)
{
    uint32_t *queue = malloc((g->n + 1) * sizeof(uint32_t));
    if (!queue)
        return ENOMEM;
    size_t head = 0, tail = 0;
    queue[tail++] = from;
    if (from_counts)
        BIT_SET(seen, from);
    int found = from_counts && from == target;
    while (!found && head < tail) {
        uint32_t v = queue[head++];
        for (uint32_t e = g->out_off[v]; e < g->out_off[v + 1]; e++) {
            uint32_t w = g->out_head[e];
            if (BIT_GET(seen, w))
                continue;
            BIT_SET(seen, w);
            pred[w] = v;
            if (w == target) {
                found = 1;
                break;
            }
            queue[tail++] = w;
        }
    }
    free(queue);
    return found ? 0 : PL_ENOTFOUND;
}

/* Lists from, pred[from], ... up to and including stop. */
static int walk_back(const uint32_t *pred, uint32_t from, uint32_t stop, size_t limit,
                     uint32_t **out, size_t *n)
{
    uint32_t *path = malloc((limit + 1) * sizeof(uint32_t));
    if (!path)
        return ENOMEM;
    size_t k = 0;
    uint32_t v = from;
    path[k++] = v;
    while (v != stop) {
        v = pred[v];
        path[k++] = v;
    }
    uint32_t *shrunk = realloc(path, k * sizeof(uint32_t));
    *out = shrunk ? shrunk : path;
    *n = k;
    return 0;
}

int pl_graph_shortest_path(const pl_graph *g, uint32_t start, uint32_t end, uint32_t **out,
                           size_t *n)
{
    *out = NULL;
    *n = 0;
    if (start >= g->n || end >= g->n)
        return PL_EBADARG;
    if (start == end) {
        if (!(*out = malloc(sizeof(uint32_t))))
            return ENOMEM;
        (*out)[0] = start;
        *n = 1;
        return 0;
    }
    uint32_t *pred = malloc(g->n * sizeof(uint32_t));
    uint64_t *seen = bits_new(g->n);
    int rc = ENOMEM;
    if (pred && seen)
        rc = bfs_pred(g, start, end, 1, pred, seen);
    if (rc == 0)
        rc = walk_back(pred, end, start, g->n, out, n);
    free(pred);
    free(seen);
    return rc;
}

int pl_graph_shortest_cycle(const pl_graph *g, uint32_t start, uint32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (start >= g->n)
        return PL_EBADARG;
    uint32_t *pred = malloc(g->n * sizeof(uint32_t));
    uint64_t *seen = bits_new(g->n);
    int rc = ENOMEM;
    if (pred && seen)
        rc = bfs_pred(g, start, start, 0, pred, seen);
    if (rc == 0) {
        /* start, pred[start], pred[pred[start]], ... until start again. */
        uint32_t *path = malloc(g->n * sizeof(uint32_t));
        if (!path) {
            rc = ENOMEM;
        } else {
            size_t k = 0;
            uint32_t v = start;
            do {
                path[k++] = v;
                v = pred[v];
            } while (v != start);
            *out = path;
            *n = k;
        }
    }
    free(pred);
    free(seen);
    return rc;
}

/* ---- strongly connected components ---- */

void pl_graph_components_free(pl_graph_components *c)
{
    free(c->start);
    free(c->members);
    free(c->component_of);
    memset(c, 0, sizeof(*c));
}

int pl_graph_scc(const pl_graph *g, pl_graph_components *out)
{
    memset(out, 0, sizeof(*out));
    size_t n = g->n;
    /* Tarjan's algorithm with an explicit call stack. IDX(v) is the
     * discovery number + 1 (0: unvisited); after v is assigned to a
     * component, LOW(v) is set to UINT32_MAX so edges into finished
     * components are ignored. Completed components are written to
     * `members` in completion order. Index and low of a vertex share a
     * cache line: an edge to a random vertex costs one miss, not two. */
    uint32_t *il = calloc(2 * (n + 1), sizeof(uint32_t));
#define IDX(v) il[2 * (size_t)(v)]
#define LOW(v) il[2 * (size_t)(v) + 1]
    uint32_t *stack = malloc((n + 1) * sizeof(uint32_t)); /* Tarjan's vertex stack */
    uint32_t *call_v = malloc((n + 1) * sizeof(uint32_t));
    uint32_t *call_e = malloc((n + 1) * sizeof(uint32_t));
    uint32_t *members = malloc((n + 1) * sizeof(uint32_t));
    uint32_t *component_of = malloc((n + 1) * sizeof(uint32_t));
    uint32_t *start = malloc((n + 2) * sizeof(uint32_t));
    int rc = ENOMEM;
    if (!il || !stack || !call_v || !call_e || !members || !component_of || !start)
        goto done;

    uint32_t next_index = 1;
    size_t sp = 0, cp = 0, filled = 0, ncomp = 0;
    start[0] = 0;
    for (size_t root = 0; root < n; root++) {
        if (IDX(root))
            continue;
        IDX(root) = LOW(root) = next_index++;
        stack[sp++] = (uint32_t)root;
        call_v[cp] = (uint32_t)root;
        call_e[cp] = g->out_off[root];
        cp++;
        while (cp) {
            uint32_t v = call_v[cp - 1];
            uint32_t e = call_e[cp - 1];
            if (e < g->out_off[v + 1]) {
                call_e[cp - 1] = e + 1;
                uint32_t w = g->out_head[e];
                if (!IDX(w)) {
                    IDX(w) = LOW(w) = next_index++;
                    stack[sp++] = w;
                    call_v[cp] = w;
                    call_e[cp] = g->out_off[w];
                    cp++;
                } else if (LOW(w) != UINT32_MAX && IDX(w) < LOW(v)) {
                    LOW(v) = IDX(w); /* w is on the stack */
                }
                continue;
            }
            /* v is done: pop it, propagate low to its caller. */
            cp--;
            if (LOW(v) == IDX(v)) {
                size_t base = sp;
                while (stack[base - 1] != v)
                    base--;
                base--;
                for (size_t i = base; i < sp; i++) {
                    uint32_t w = stack[i];
                    members[filled++] = w;
                    component_of[w] = (uint32_t)ncomp;
                    LOW(w) = UINT32_MAX;
                }
                sp = base;
                ncomp++;
                start[ncomp] = (uint32_t)filled;
            }
            if (cp) {
                uint32_t u = call_v[cp - 1];
                if (LOW(v) != UINT32_MAX && LOW(v) < LOW(u))
                    LOW(u) = LOW(v);
            }
        }
    }
    uint32_t *s = realloc(start, (ncomp + 1) * sizeof(uint32_t));
    out->start = s ? s : start;
    start = NULL;
    out->members = members;
    out->component_of = component_of;
    members = component_of = NULL;
    out->count = ncomp;
    rc = 0;
done:
#undef IDX
#undef LOW
    free(il);
    free(stack);
    free(call_v);
    free(call_e);
    free(members);
    free(component_of);
    free(start);
    return rc;
}

int pl_graph_source_components(const pl_graph *g, const pl_graph_components *c, uint32_t **ids,
                               size_t *n)
{
    *ids = NULL;
    *n = 0;
    uint64_t *entered = bits_new(c->count);
    uint32_t *list = malloc((c->count + 1) * sizeof(uint32_t));
    if (!entered || !list) {
        free(entered);
        free(list);
        return ENOMEM;
    }
    for (size_t v = 0; v < g->n; v++)
        for (uint32_t e = g->out_off[v]; e < g->out_off[v + 1]; e++) {
            uint32_t w = g->out_head[e];
            if (c->component_of[w] != c->component_of[v])
                BIT_SET(entered, c->component_of[w]);
        }
    size_t k = 0;
    for (size_t i = 0; i < c->count; i++)
        if (!BIT_GET(entered, i))
            list[k++] = (uint32_t)i;
    free(entered);
    *ids = list;
    *n = k;
    return 0;
}

/* ---- induced subgraphs ---- */

/* A graph for exactly n vertices whose keys the caller appends, without an
 * index (callers guarantee distinct keys). */
static int new_unindexed(size_t n, pl_graph **out)
{
    *out = NULL;
    pl_graph *g = calloc(1, sizeof(*g));
    if (!g)
        return ENOMEM;
    g->vcap = n ? n : 1;
    g->keys = malloc(g->vcap * sizeof(uint64_t));
    if (!g->keys) {
        free(g);
        return ENOMEM;
    }
    *out = g;
    return 0;
}

/* Fills the out-edges of s, whose vertex i is g's vertex parents[i], with
 * the edges of g between them, then finishes s. Membership of a head w is
 * component_of[w] == id when component_of is given (members of component
 * `id`), else the seen bitmap; its new number is pos[w] either way.
 * Writes the CSR arrays directly: the parents' degrees bound the count. */
static int fill_edges(pl_graph *s, const pl_graph *g, const uint32_t *parents, size_t count,
                      const uint32_t *component_of, uint32_t id, const uint64_t *seen,
                      const uint32_t *pos)
{
    size_t bound = 0;
    for (size_t i = 0; i < count; i++)
        bound += g->out_off[parents[i] + 1] - g->out_off[parents[i]];
    s->out_off = malloc((count + 1) * sizeof(uint32_t));
    s->out_head = malloc((bound ? bound : 1) * sizeof(uint32_t));
    if (!s->out_off || !s->out_head)
        return ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t p = parents[i];
        s->out_off[i] = (uint32_t)m;
        if (i + PREFETCH_AHEAD < count)
            __builtin_prefetch(&g->out_off[parents[i + PREFETCH_AHEAD]]);
        for (uint32_t e = g->out_off[p]; e < g->out_off[p + 1]; e++) {
            uint32_t w = g->out_head[e];
            if (component_of) {
                if (component_of[w] == id)
                    s->out_head[m++] = pos[w];
            } else if (BIT_GET(seen, w)) {
                s->out_head[m++] = pos[w];
            }
        }
    }
    s->out_off[count] = (uint32_t)m;
    s->m = m;
    s->ecap = bound ? bound : 1;
    s->edges_started = 1;
    s->last_tail = (uint32_t)count;
    return pl_graph_finish(s);
}

static int subgraph_from_list(const pl_graph *g, const uint32_t *vs, size_t k, pl_graph **out)
{
    *out = NULL;
    /* seen: membership; pos: the new number of each member. pos is left
     * uninitialized: only members' entries are ever read, so a small
     * subgraph of a large graph touches few of its pages. */
    uint64_t *seen = bits_new(g->n);
    uint32_t *pos = malloc((g->n + 1) * sizeof(uint32_t));
    uint32_t *parent = malloc((k + 1) * sizeof(uint32_t));
    pl_graph *s = NULL;
    int rc = ENOMEM;
    if (!seen || !pos || !parent)
        goto done;
    size_t kept = 0;
    for (size_t i = 0; i < k; i++) {
        uint32_t v = vs[i];
        if (v >= g->n) {
            rc = PL_EBADARG;
            goto done;
        }
        if (BIT_GET(seen, v))
            continue;
        BIT_SET(seen, v);
        pos[v] = (uint32_t)kept;
        parent[kept++] = v;
    }
    if ((rc = new_unindexed(kept, &s)))
        goto done;
    for (size_t i = 0; i < kept; i++)
        s->keys[i] = g->keys[parent[i]];
    s->n = kept;
    rc = fill_edges(s, g, parent, kept, NULL, 0, seen, pos);
    if (!rc) {
        *out = s;
        s = NULL;
    }
done:
    pl_graph_free(s);
    free(seen);
    free(pos);
    free(parent);
    return rc;
}

int pl_graph_subgraph(const pl_graph *g, const uint32_t *vs, size_t k, pl_graph **out)
{
    return subgraph_from_list(g, vs, k, out);
}

int pl_graph_component_places(const pl_graph *g, const pl_graph_components *c,
                               uint32_t **place)
{
    *place = malloc((g->n + 1) * sizeof(uint32_t));
    if (!*place)
        return ENOMEM;
    for (size_t i = 0; i < c->count; i++)
        for (uint32_t j = c->start[i]; j < c->start[i + 1]; j++)
            (*place)[c->members[j]] = j - c->start[i];
    return 0;
}

int pl_graph_component_subgraph(const pl_graph *g, const pl_graph_components *c,
                                const uint32_t *place, uint32_t id, pl_graph **out)
{
    *out = NULL;
    if (id >= c->count)
        return PL_EBADARG;
    const uint32_t *mem = c->members + c->start[id];
    size_t cnt = c->start[id + 1] - c->start[id];
    pl_graph *s;
    int rc = new_unindexed(cnt, &s);
    if (rc)
        return rc;
    for (size_t j = 0; j < cnt; j++)
        s->keys[j] = g->keys[mem[j]];
    s->n = cnt;
    rc = fill_edges(s, g, mem, cnt, c->component_of, id, NULL, place);
    if (rc)
        pl_graph_free(s);
    else
        *out = s;
    return rc;
}

int pl_graph_component_subgraphs(const pl_graph *g, const pl_graph_components *c,
                                 const uint32_t *ids, size_t k, pl_graph **outs)
{
    for (size_t i = 0; i < k; i++)
        outs[i] = NULL;
    uint32_t *place;
    int rc = pl_graph_component_places(g, c, &place);
    for (size_t i = 0; !rc && i < k; i++)
        rc = pl_graph_component_subgraph(g, c, place, ids[i], &outs[i]);
    free(place);
    if (rc)
        for (size_t i = 0; i < k; i++) {
            pl_graph_free(outs[i]);
            outs[i] = NULL;
        }
    return rc;
}

int pl_graph_key_filter(const pl_graph *a, const pl_graph *b, int keep_common, pl_graph **out)
{
    *out = NULL;
    if (!pl_graph_has_index(b))
        return PL_EBADARG;
    uint32_t *vs = malloc((a->n + 1) * sizeof(uint32_t));
    if (!vs)
        return ENOMEM;
    /* In blocks, so the lookups can overlap (or merge, when both graphs are
     * sorted snapshots). */
    size_t k = 0;
    uint32_t found[LOOKUP_BLOCK * 8];
    for (size_t base = 0; base < a->n; base += LOOKUP_BLOCK * 8) {
        size_t len = a->n - base < LOOKUP_BLOCK * 8 ? a->n - base : LOOKUP_BLOCK * 8;
        pl_graph_lookup_many(b, a->keys + base, len, found);
        for (size_t j = 0; j < len; j++)
            if ((found[j] != PL_GRAPH_NONE) == !!keep_common)
                vs[k++] = (uint32_t)(base + j);
    }
    int rc = subgraph_from_list(a, vs, k, out);
    free(vs);
    return rc;
}
