/* Building object graphs: vertices from Python objects (the heap for a
 * snapshot, an iterable, what one object reaches), edges from tp_traverse
 * (what gc.get_referents gives), plus what running frames hold. Over 800
 * lines because the three builders share the vertex numbering, the edge
 * pass and the frames' extra edges; each builder is a function of its own.
 *
 * A graph owns one strong reference to each vertex and nothing else: no
 * Python container, so it creates no reference cycle of its own and a
 * snapshot has no storage of its own to leave out. Everything here runs
 * with the GIL held and calls no Python code (tp_traverse only reports
 * pointers), except iterating a user's iterable in pl_objgraph_from_objects.
 *
 * Running frames, and what they hold beyond what their tp_traverse reports,
 * are read by heap.c (pl_running_frames, pl_frame_extras), the one reader
 * of CPython's internals. */
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

#include "heap.h" /* the gc lists (frozen objects included), running frames */

/* ---- edges ---- */

/* Referents are gathered in batches and looked up together, so the index
 * lookups can be prefetched: on a large heap each one is a cache miss. */
#define EDGE_BATCH 65536

struct edge_ctx {
    pl_graph *g;
    uint64_t *refs;  /* referents of the vertices in the batch, in order */
    uint32_t *tails; /* the vertex each referent belongs to */
    size_t len;
    uint32_t tail;
    int rc;
};

static void edge_flush(struct edge_ctx *ctx)
{
    if (ctx->rc || !ctx->len)
        return;
    ctx->rc = pl_graph_add_edges_by_key(ctx->g, ctx->tails, ctx->refs, ctx->len);
    ctx->len = 0;
}

static int edge_visit(PyObject *o, void *arg)
{
    struct edge_ctx *ctx = arg;
    if (!o)
        return 0;
    if (ctx->len == EDGE_BATCH) {
        edge_flush(ctx);
        if (ctx->rc)
            return 1;
    }
    ctx->refs[ctx->len] = pl_obj_key(o);
    ctx->tails[ctx->len++] = ctx->tail;
    return 0;
}

/* Adds the edges of every vertex (the same referents gc.get_referents
 * reports, plus running frames' extras), then finishes the graph. */
static int build_edges(pl_graph *g)
{
    struct edge_ctx ctx = {g, NULL, NULL, 0, 0, 0};
    ctx.refs = malloc(EDGE_BATCH * sizeof(uint64_t));
    ctx.tails = malloc(EDGE_BATCH * sizeof(uint32_t));
    if (!ctx.refs || !ctx.tails)
        ctx.rc = ENOMEM;
    size_t n = pl_graph_order(g);
    for (uint32_t v = 0; v < n && !ctx.rc; v++) {
        PyObject *o = pl_vertex_obj(g, v);
        ctx.tail = v;
        if (PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse)
            Py_TYPE(o)->tp_traverse(o, edge_visit, &ctx);
        if (!ctx.rc && PyFrame_Check(o))
            pl_frame_extras(o, edge_visit, &ctx);
    }
    edge_flush(&ctx);
    free(ctx.refs);
    free(ctx.tails);
    if (ctx.rc)
        return ctx.rc;
    return pl_graph_finish(g);
}

/* ---- vertices ---- */

/* See graph_int.h. */
void pl_objgraph_release(pl_graph *g)
{
    if (!g)
        return;
    size_t n = pl_graph_order(g);
    for (uint32_t v = 0; v < n; v++)
        Py_DECREF(pl_vertex_obj(g, v));
    pl_graph_free(g);
}

static int add_vertex_ref(pl_graph *g, PyObject *o)
{
    int added;
    int rc = pl_graph_add_vertex(g, pl_obj_key(o), NULL, &added);
    if (rc == 0 && added)
        Py_INCREF(o);
    return rc;
}

/* Vertices are added in batches too (see EDGE_BATCH); each object gets its
 * reference when it is added, while the caller keeps it alive. */
struct vertex_batch {
    pl_graph *g;
    uint64_t *keys;
    uint8_t *added;
    size_t len;
    int rc;
};

static int batch_init(struct vertex_batch *b, pl_graph *g)
{
    b->g = g;
    b->len = 0;
    b->keys = malloc(EDGE_BATCH * sizeof(uint64_t));
    b->added = malloc(EDGE_BATCH);
    b->rc = b->keys && b->added ? 0 : ENOMEM;
    return b->rc;
}

static void batch_flush(struct vertex_batch *b)
{
    if (b->rc || !b->len)
        return;
    b->rc = pl_graph_add_vertices(b->g, b->keys, b->len, b->added);
    /* Even on error, the vertices that were added need their reference
     * (pl_objgraph_release drops the graph with one per vertex). */
    for (size_t i = 0; i < b->len; i++)
        if (b->added[i])
            Py_INCREF((PyObject *)(uintptr_t)b->keys[i]);
    b->len = 0;
}

static void batch_add(struct vertex_batch *b, PyObject *o)
{
    if (b->len == EDGE_BATCH)
        batch_flush(b);
    if (!b->rc)
        b->keys[b->len++] = pl_obj_key(o);
}

static void batch_free(struct vertex_batch *b)
{
    free(b->keys);
    free(b->added);
}

static int add_sequence(pl_graph *g, PyObject *seq)
{
    /* The sequence keeps its items alive while they are added, and no
     * Python code runs meanwhile. */
    struct vertex_batch batch;
    if (!batch_init(&batch, g)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        PyObject **items = PySequence_Fast_ITEMS(seq);
        for (Py_ssize_t i = 0; i < n && !batch.rc; i++)
            batch_add(&batch, items[i]);
        batch_flush(&batch);
    }
    batch_free(&batch);
    return batch.rc;
}

/* Adds the items of any iterable; -1 with an exception set on failure. */
static int add_iterable(pl_graph *g, PyObject *objects)
{
    PyObject *it = PyObject_GetIter(objects);
    if (!it)
        return -1;
    PyObject *o;
    while ((o = PyIter_Next(it))) {
        int rc = add_vertex_ref(g, o);
        Py_DECREF(o);
        if (rc) {
            Py_DECREF(it);
            pl_raise(NULL, rc, "the graph operation");
            return -1;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* See graph_int.h. */
pl_graph *pl_objgraph_from_objects(PyObject *objects)
{
    Py_ssize_t hint = objects ? PyObject_LengthHint(objects, 16) : 0;
    if (hint < 0)
        return NULL;
    pl_graph *g;
    int rc = pl_graph_new((size_t)hint, &g);
    if (rc) {
        pl_raise(NULL, rc, "the graph operation");
        return NULL;
    }
    if (objects && (PyList_CheckExact(objects) || PyTuple_CheckExact(objects))) {
        if ((rc = add_sequence(g, objects))) {
            pl_raise(NULL, rc, "the graph operation");
            goto fail;
        }
    } else if (objects && add_iterable(g, objects) < 0) {
        goto fail;
    }
    if ((rc = build_edges(g))) {
        pl_raise(NULL, rc, "the graph operation");
        goto fail;
    }
    return g;
fail:
    pl_objgraph_release(g);
    return NULL;
}

/* ---- snapshot ----
 *
 * The snapshot is built in address order, with no hash lookup per edge:
 *  1. the gc lists are walked once, taking a reference to each object;
 *  2. the addresses are sorted: vertex numbers are address ranks, and
 *     tp_traverse then visits the objects in memory order;
 *  3. a block index maps an address to its vertex: one 32-byte entry per
 *     2 KB block of memory that holds vertices, with a bit per 16 bytes
 *     (CPython allocates in 16-byte units) and the rank of its first
 *     vertex, in address order. A directory of the 1 MB chunks that hold
 *     blocks gives each chunk 512 slots, one per block, holding the block's
 *     entry number (0: no vertex there). A heap of a million objects has a
 *     few hundred chunks and a few tens of thousands of blocks, so the
 *     directory and the slots stay in the caches, and a referent that is
 *     not a vertex (an untracked int or str next to the vertices) is
 *     answered by them without a probe sequence;
 *  4. each object's tp_traverse writes its edges straight into the CSR
 *     arrays; referents that are not vertices go to the heap info (untracked
 *     objects: their sizes and holders).
 * When the vertices are too sparse for blocks to pay (few per block, or
 * few blocks per chunk), an address table is used instead (same
 * numbering). */

#define BLOCK_SHIFT 11 /* 2 KB blocks */
#define GRAIN_SHIFT 4  /* a bit per 16 bytes (CPython's allocation unit): 128 per block */
#define CHUNK_SHIFT 20 /* 1 MB chunks */
#define CHUNK_BLOCKS (1u << (CHUNK_SHIFT - BLOCK_SHIFT))

typedef struct block {
    uint64_t bits[2];  /* a bit per grain that starts a vertex */
    uint32_t base[2];  /* vertex number of the first vertex of each 64-bit word */
    uint64_t unused;   /* 32 bytes: two per cache line */
} block;

/* The directory: open addressing, linear probing, a power of two. */
typedef struct chunk_slot {
    uint64_t id;   /* (address >> CHUNK_SHIFT) + 1; 0: empty slot */
    uint32_t slot; /* where its CHUNK_BLOCKS slots start */
} chunk_slot;

/* Address table for sparse heaps: open addressing, linear probing. */
typedef struct addr_slot {
    uint64_t key; /* 0: empty */
    uint32_t v;
} addr_slot;

typedef struct vertex_index {
    block *blocks;      /* NULL when the address table is used */
    uint32_t *slots_of; /* CHUNK_BLOCKS per chunk: block entry + 1, or 0 */
    chunk_slot *chunks;
    size_t nchunks, chunk_mask, nblocks;
    addr_slot *addrs;
    size_t slots;
} vertex_index;

static inline uint64_t popcount64(uint64_t x)
{
    /* Portable: the build does not assume the popcnt instruction. */
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (x * 0x0101010101010101ULL) >> 56;
}

/* Range reduction by multiply-high: the table need not be a power of two. */
static inline size_t index_slot(const vertex_index *ix, uint64_t id)
{
    return (size_t)(((unsigned __int128)(id * 0x9E3779B97F4A7C15ULL) * ix->slots) >> 64);
}

/* The directory slot where the probe for chunk id `id` starts. */
static inline size_t chunk_home(const vertex_index *ix, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 32) & ix->chunk_mask;
}

/* Where the block slot of address `key` is, or NULL when its chunk holds
 * no vertex. */
static inline const uint32_t *block_slot(const vertex_index *ix, uint64_t key)
{
    uint64_t id = (key >> CHUNK_SHIFT) + 1;
    for (size_t i = chunk_home(ix, id);; i = (i + 1) & ix->chunk_mask) {
        if (ix->chunks[i].id == id)
            return &ix->slots_of[ix->chunks[i].slot + ((key >> BLOCK_SHIFT) & (CHUNK_BLOCKS - 1))];
        if (!ix->chunks[i].id)
            return NULL;
    }
}

/* The vertex at address `key` in block entry b (1-based, 0: none), or
 * PL_GRAPH_NONE. */
static inline uint32_t block_find(const vertex_index *ix, uint32_t b, uint64_t key)
{
    if (!b || (key & ((1u << GRAIN_SHIFT) - 1)))
        return PL_GRAPH_NONE;
    const block *bk = &ix->blocks[b - 1];
    unsigned grain = (unsigned)(key >> GRAIN_SHIFT) & 127;
    uint64_t word = bk->bits[grain >> 6], me = (uint64_t)1 << (grain & 63);
    if (!(word & me))
        return PL_GRAPH_NONE;
    return bk->base[grain >> 6] + (uint32_t)popcount64(word & (me - 1));
}

/* The vertex at address `key`, or PL_GRAPH_NONE. */
static inline uint32_t index_find(const vertex_index *ix, uint64_t key)
{
    if (!ix->blocks) {
        for (size_t i = index_slot(ix, key);; i = i + 1 == ix->slots ? 0 : i + 1) {
            if (ix->addrs[i].key == key)
                return ix->addrs[i].v;
            if (!ix->addrs[i].key)
                return PL_GRAPH_NONE;
        }
    }
    const uint32_t *at = block_slot(ix, key);
    return at ? block_find(ix, *at, key) : PL_GRAPH_NONE;
}

/* Whether blocks pay for nkeys vertices in nblocks blocks of nchunks
 * chunks: two vertices a block, and the chunks' slots no more than two a
 * vertex (else a few vertices spread over much memory cost slots for
 * every block between them). */
static int blocks_pay(size_t nkeys, size_t nblocks, size_t nchunks)
{
    return nblocks * 2 <= nkeys && nchunks * CHUNK_BLOCKS <= 2 * nkeys + 16 * CHUNK_BLOCKS;
}

/* Allocates the block index for nblocks blocks in nchunks chunks, empty. */
static int blocks_alloc(vertex_index *ix, size_t nblocks, size_t nchunks)
{
    size_t cslots = 16;
    while (cslots < 2 * nchunks)
        cslots *= 2;
    ix->chunk_mask = cslots - 1;
    ix->nchunks = ix->nblocks = 0;
    ix->chunks = calloc(cslots, sizeof(chunk_slot));
    ix->slots_of = calloc(nchunks ? nchunks * CHUNK_BLOCKS : 1, sizeof(uint32_t));
    ix->blocks = aligned_alloc(64, ((nblocks ? nblocks : 1) * sizeof(block) + 63) / 64 * 64);
    return ix->chunks && ix->slots_of && ix->blocks ? 0 : ENOMEM;
}

/* Appends the block of id `id` (as (address >> BLOCK_SHIFT)), higher than
 * every block appended before, whose first vertex is number v. */
static block *blocks_append(vertex_index *ix, uint64_t id, uint32_t v)
{
    uint64_t cid = (id >> (CHUNK_SHIFT - BLOCK_SHIFT)) + 1;
    size_t i = chunk_home(ix, cid);
    while (ix->chunks[i].id && ix->chunks[i].id != cid)
        i = (i + 1) & ix->chunk_mask;
    if (!ix->chunks[i].id) {
        ix->chunks[i].id = cid;
        ix->chunks[i].slot = (uint32_t)(ix->nchunks++ * CHUNK_BLOCKS);
    }
    ix->slots_of[ix->chunks[i].slot + (id & (CHUNK_BLOCKS - 1))] = (uint32_t)++ix->nblocks;
    block *b = &ix->blocks[ix->nblocks - 1];
    memset(b, 0, sizeof(*b));
    b->base[0] = b->base[1] = v;
    return b;
}

/* Builds the index of keys[0..n), sorted ascending and distinct: blocks
 * when they pay, or as `how` says (PL_SNAPSHOT_BLOCKS, _ADDRESSES; tests). */
static int index_build(vertex_index *ix, const uint64_t *keys, size_t n, int how)
{
    memset(ix, 0, sizeof(*ix));
    size_t nblocks = 0, nchunks = 0, unaligned = 0;
    for (size_t v = 0; v < n; v++) {
        if (!v || (keys[v] >> BLOCK_SHIFT) != (keys[v - 1] >> BLOCK_SHIFT))
            nblocks++;
        if (!v || (keys[v] >> CHUNK_SHIFT) != (keys[v - 1] >> CHUNK_SHIFT))
            nchunks++;
        unaligned |= keys[v] & ((1u << GRAIN_SHIFT) - 1);
    }
    int use_blocks = !unaligned && (how == PL_SNAPSHOT_BLOCKS ||
                                    (how == PL_SNAPSHOT_AUTO && blocks_pay(n, nblocks, nchunks)));
    if (!use_blocks) {
        /* An address costs 16 bytes at 1/2 load. */
        size_t slots = ix->slots = n * 2 + 16;
        ix->addrs = calloc(slots, sizeof(addr_slot));
        if (!ix->addrs)
            return ENOMEM;
        for (size_t v = 0; v < n; v++) {
            size_t i = index_slot(ix, keys[v]);
            while (ix->addrs[i].key)
                i = i + 1 == slots ? 0 : i + 1;
            ix->addrs[i] = (addr_slot){keys[v], (uint32_t)v};
        }
        return 0;
    }
    if (blocks_alloc(ix, nblocks, nchunks))
        return ENOMEM;
    block *b = NULL;
    for (size_t v = 0; v < n; v++) {
        if (!b || (keys[v] >> BLOCK_SHIFT) != (keys[v - 1] >> BLOCK_SHIFT))
            b = blocks_append(ix, keys[v] >> BLOCK_SHIFT, (uint32_t)v);
        unsigned grain = (unsigned)(keys[v] >> GRAIN_SHIFT) & 127;
        b->bits[grain >> 6] |= (uint64_t)1 << (grain & 63);
        /* The second word's vertices come after this one. */
        if (grain < 64)
            b->base[1] = (uint32_t)v + 1;
    }
    return 0;
}

static void index_free(vertex_index *ix)
{
    free(ix->blocks);
    free(ix->slots_of);
    free(ix->chunks);
    free(ix->addrs);
}

/* Sorts keys[0..n) ascending: least significant byte first, over the bytes
 * in which the keys differ only (addresses share their top bytes and their
 * alignment), with every byte's histogram counted in one first pass. */
static int sort_keys(uint64_t *keys, size_t n)
{
    uint64_t diff = 0;
    for (size_t i = 1; i < n; i++)
        diff |= keys[i] ^ keys[0];
    if (!diff)
        return 0;
    int low = __builtin_ctzll(diff) / 8, high = (71 - __builtin_clzll(diff)) / 8;
    size_t (*count)[256] = calloc((size_t)(high - low), sizeof(*count));
    uint64_t *tmp = malloc(n * sizeof(uint64_t));
    if (!count || !tmp) {
        free(count);
        free(tmp);
        return ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        for (int d = low; d < high; d++)
            count[d - low][(keys[i] >> (8 * d)) & 255]++;
    uint64_t *from = keys, *to = tmp;
    for (int d = low; d < high; d++) {
        size_t *c = count[d - low], sum = 0;
        for (int b = 0; b < 256; b++) {
            size_t k = c[b];
            c[b] = sum;
            sum += k;
        }
        for (size_t i = 0; i < n; i++)
            to[c[(from[i] >> (8 * d)) & 255]++] = from[i];
        uint64_t *t = from;
        from = to;
        to = t;
    }
    if (from != keys)
        memcpy(keys, from, n * sizeof(uint64_t));
    free(tmp);
    free(count);
    return 0;
}

/* The visit only gathers the objects (and takes a reference to each). */
struct snap_ctx {
    uint64_t *keys;
    size_t len, cap;
    PyTypeObject *exclude;
    int rc;
    PyTypeObject *last_type; /* the last type met (objects come in runs of a type) */
    int last_excluded;       /* whether it is `exclude` or a subtype */
};

/* A run of gathered keys in one block, ascending. */
typedef struct segment {
    uint64_t id; /* block id, as in struct block */
    uint32_t start, len;
} segment;

static int segment_cmp(const void *x, const void *y)
{
    const segment *a = x, *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* The fast way to order the gathered keys when the heap walk gave them
 * nearly sorted (the gc lists mostly follow allocation order): cut them into
 * runs within one block, sort the runs by block, and rebuild each block's
 * keys from a bitmap of its grains. The bitmaps are the block index, and a
 * key seen twice (a frame the gc also tracks) drops its second reference.
 * *done is 0 (nothing changed) when the keys are not 16-byte aligned or too
 * shuffled for this to pay; else keys[0..*n) are sorted and distinct and ix
 * holds the block index, or nothing when blocks do not pay (sparse
 * vertices). Returns 0 or ENOMEM (nothing changed). */
static int order_by_blocks(struct snap_ctx *ctx, int how, vertex_index *ix, size_t *n, int *done)
{
    uint64_t *keys = ctx->keys;
    size_t len = ctx->len, nseg = 0, nblocks = 0;
    uint64_t low = 0;
    *done = 0;
    for (size_t i = 0; i < len; i++) {
        low |= keys[i];
        if (!i || (keys[i] >> BLOCK_SHIFT) != (keys[i - 1] >> BLOCK_SHIFT) || keys[i] < keys[i - 1])
            nseg++;
    }
    if (!len || (low & ((1u << GRAIN_SHIFT) - 1)) || nseg > len / 8 || len > UINT32_MAX ||
        how == PL_SNAPSHOT_ADDRESSES)
        return 0;
    segment *segs = malloc(nseg * sizeof(segment));
    uint64_t *out = malloc(len * sizeof(uint64_t));
    if (!segs || !out) {
        free(segs);
        free(out);
        return ENOMEM;
    }
    nseg = 0;
    for (size_t i = 0; i < len; i++) {
        if (!i || (keys[i] >> BLOCK_SHIFT) != (keys[i - 1] >> BLOCK_SHIFT) || keys[i] < keys[i - 1])
            segs[nseg++] = (segment){(keys[i] >> BLOCK_SHIFT) + 1, (uint32_t)i, 0};
        segs[nseg - 1].len++;
    }
    qsort(segs, nseg, sizeof(segment), segment_cmp);
    size_t nchunks = 0;
    for (size_t i = 0; i < nseg; i++) {
        nblocks += !i || segs[i].id != segs[i - 1].id;
        nchunks += !i || (segs[i].id - 1) >> (CHUNK_SHIFT - BLOCK_SHIFT) !=
                             (segs[i - 1].id - 1) >> (CHUNK_SHIFT - BLOCK_SHIFT);
    }
    memset(ix, 0, sizeof(*ix));
    if ((how == PL_SNAPSHOT_BLOCKS || blocks_pay(len, nblocks, nchunks)) &&
        blocks_alloc(ix, nblocks, nchunks)) {
        index_free(ix);
        memset(ix, 0, sizeof(*ix));
        free(segs);
        free(out);
        return ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0, j; i < nseg; i = j) {
        uint64_t bits[2] = {0, 0}, id = segs[i].id;
        for (j = i; j < nseg && segs[j].id == id; j++)
            for (uint32_t k = segs[j].start; k < segs[j].start + segs[j].len; k++) {
                unsigned grain = (unsigned)(keys[k] >> GRAIN_SHIFT) & 127;
                uint64_t bit = (uint64_t)1 << (grain & 63);
                if (bits[grain >> 6] & bit)
                    Py_DECREF((PyObject *)(uintptr_t)keys[k]); /* the graph keeps one */
                bits[grain >> 6] |= bit;
            }
        if (ix->blocks) {
            block *b = blocks_append(ix, id - 1, (uint32_t)m);
            b->bits[0] = bits[0];
            b->bits[1] = bits[1];
            b->base[0] = (uint32_t)m;
            b->base[1] = (uint32_t)(m + popcount64(bits[0]));
        }
        for (unsigned w = 0; w < 2; w++)
            for (uint64_t word = bits[w]; word; word &= word - 1)
                out[m++] = ((id - 1) << BLOCK_SHIFT) |
                           ((uint64_t)(w * 64 + (unsigned)__builtin_ctzll(word)) << GRAIN_SHIFT);
    }
    free(segs);
    free(keys);
    ctx->keys = out;
    ctx->len = ctx->cap = m;
    *n = m;
    *done = 1;
    return 0;
}

static int snap_push(struct snap_ctx *ctx, PyObject *o)
{
    if (ctx->len == ctx->cap) {
        size_t ncap = ctx->cap ? ctx->cap * 2 : 1 << 16;
        uint64_t *k = realloc(ctx->keys, ncap * sizeof(uint64_t));
        if (!k)
            return ctx->rc = ENOMEM;
        ctx->keys = k;
        ctx->cap = ncap;
    }
    ctx->keys[ctx->len++] = pl_obj_key(o);
    return 0;
}

static int snap_add(PyObject *o, void *arg)
{
    struct snap_ctx *ctx = arg;
    PyTypeObject *tp = Py_TYPE(o);
    /* No Python code runs during the walk: a type met stays alive. */
    if (tp != ctx->last_type) {
        ctx->last_type = tp;
        ctx->last_excluded = PyType_IsSubtype(tp, ctx->exclude);
    }
    if (ctx->last_excluded)
        return 0;
    if (snap_push(ctx, o))
        return 1;
    Py_INCREF(o);
    return 0;
}

static int snap_frame(PyObject *frame, void *arg)
{
    struct snap_ctx *ctx = arg;
    if (snap_push(ctx, frame)) {
        Py_DECREF(frame);
        return 1;
    }
    return 0; /* the reference now belongs to the gathered keys */
}

/* Adds the frame objects of every thread's running frames (not gc-tracked
 * on 3.11+), skipping the `skip` innermost frames of the calling thread (the
 * pyloot functions taking the snapshot). */
static int add_thread_frames(struct snap_ctx *ctx, long skip)
{
    if (pl_running_frames(skip, snap_frame, ctx) < 0 && !ctx->rc)
        ctx->rc = ENOMEM;
    return ctx->rc;
}

/* Referents are resolved in batches, prefetching the index entries ahead:
 * one lookup at a time would wait for each entry in turn. */
#define RESOLVE_BATCH 4096
#define RESOLVE_AHEAD 16

struct csr_ctx {
    const vertex_index *ix;
    pl_heapinfo_builder *heap;
    uint64_t refs[RESOLVE_BATCH]; /* the batch: referents and their holders */
    uint32_t holders[RESOLVE_BATCH];
    uint32_t blk[RESOLVE_BATCH]; /* their block entries (1-based, 0: none) */
    size_t len;
    uint32_t *off;  /* n + 1 */
    uint32_t *head;
    size_t m, cap;
    uint32_t last; /* off[0..last] are written */
    uint32_t tail;
    int rc;
    /* With notes (pl_snap_notes): the batch's notes, the edges' (cap + 1),
     * where the tail's references start in the batch, and whether some of
     * them were resolved before its traversal ended. */
    const pl_snap_notes *notes;
    uint32_t *note;
    uint32_t nbuf[RESOLVE_BATCH];
    size_t vstart;
    int vsplit;
};

/* Adds the resolved edge i of the batch (h: its head's vertex). */
static inline void csr_put(struct csr_ctx *c, size_t i, uint32_t h)
{
    uint32_t tail = c->holders[i];
    if (h == PL_GRAPH_NONE) {
        pl_heapinfo_untracked(c->heap, tail, (PyObject *)(uintptr_t)c->refs[i]);
        return;
    }
    while (c->last < tail)
        c->off[++c->last] = (uint32_t)c->m;
    if (c->note)
        c->note[c->m] = c->nbuf[i];
    c->head[c->m++] = h;
}

/* Resolves the batch: edges to vertices go to the CSR arrays, the others to
 * the heap info. With blocks, in two passes: each referent's block entry
 * (its chunk's slot prefetched ahead), then the vertex (its block
 * prefetched ahead); a referent in no block stops at the first pass. */
static void csr_flush(struct csr_ctx *c)
{
    if (c->rc)
        return;
    if (c->m + c->len > c->cap) {
        size_t ncap = c->cap * 2 > c->m + c->len ? c->cap * 2 : c->m + c->len;
        if (ncap > PL_GRAPH_MAX)
            ncap = PL_GRAPH_MAX;
        uint32_t *t = ncap >= c->m + c->len ? realloc(c->head, ncap * sizeof(uint32_t)) : NULL;
        if (!t) {
            c->rc = ncap >= c->m + c->len ? ENOMEM : PL_ETOOBIG;
            return;
        }
        c->head = t;
        if (c->note) {
            uint32_t *nt = realloc(c->note, (ncap + 1) * sizeof(uint32_t));
            if (!nt) {
                c->rc = ENOMEM;
                return;
            }
            c->note = nt;
        }
        c->cap = ncap;
    }
    const vertex_index *ix = c->ix;
    if (!ix->blocks) {
        for (size_t i = 0; i < c->len && i < RESOLVE_AHEAD; i++)
            __builtin_prefetch(&ix->addrs[index_slot(ix, c->refs[i])]);
        for (size_t i = 0; i < c->len; i++) {
            if (i + RESOLVE_AHEAD < c->len)
                __builtin_prefetch(&ix->addrs[index_slot(ix, c->refs[i + RESOLVE_AHEAD])]);
            csr_put(c, i, index_find(ix, c->refs[i]));
        }
        c->len = 0;
        return;
    }
    const uint32_t *slots[RESOLVE_AHEAD];
    for (size_t i = 0; i < c->len + RESOLVE_AHEAD; i++) {
        /* slots[i % RESOLVE_AHEAD] holds entry i - RESOLVE_AHEAD's until
         * entry i's replaces it. */
        if (i >= RESOLVE_AHEAD) {
            size_t k = i - RESOLVE_AHEAD;
            const uint32_t *at = slots[k % RESOLVE_AHEAD];
            uint32_t e = at ? *at : 0;
            c->blk[k] = e;
            if (e)
                __builtin_prefetch(&ix->blocks[e - 1]);
        }
        if (i < c->len) {
            const uint64_t key = c->refs[i];
            const uint32_t *at = key & ((1u << GRAIN_SHIFT) - 1) ? NULL : block_slot(ix, key);
            if (at)
                __builtin_prefetch(at);
            slots[i % RESOLVE_AHEAD] = at;
        }
    }
    for (size_t i = 0; i < c->len; i++)
        csr_put(c, i, block_find(ix, c->blk[i], c->refs[i]));
    c->len = 0;
}

static int csr_visit(PyObject *o, void *arg)
{
    struct csr_ctx *c = arg;
    if (!o)
        return 0;
    if (c->len == RESOLVE_BATCH) {
        c->vsplit |= c->vstart < c->len;
        c->vstart = 0;
        csr_flush(c);
        if (c->rc)
            return 1;
    }
    c->nbuf[c->len] = 0;
    c->refs[c->len] = pl_obj_key(o);
    c->holders[c->len++] = c->tail;
    return 0;
}

/* Notes vertex v's references (pl_snap_notes), while o is in the cache. */
static void note_vertex(struct csr_ctx *c, uint32_t v, PyObject *o)
{
    const pl_snap_notes *ns = c->notes;
    int split = c->vsplit;
    int rc = ns->vertex(v, o, split ? NULL : c->refs + c->vstart, split ? 0 : c->len - c->vstart,
                        split ? NULL : c->nbuf + c->vstart, ns->arg);
    if (rc && !c->rc)
        c->rc = rc;
    c->vsplit = 0;
}

/* A batch this close to full is resolved before the next vertex, so the
 * references of a vertex of fewer stay together for its notes. */
#define NOTE_ROOM 256

/* Traverses every vertex in order, writing the out-edges into *off and
 * *head (and the notes into *note, with notes) and the heap facts into
 * heap. */
static int snap_edges(const uint64_t *keys, size_t n, const vertex_index *ix, pl_heapinfo_builder *heap,
                      const pl_snap_notes *notes, uint32_t **off, uint32_t **head, uint32_t **note)
{
    struct csr_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return ENOMEM;
    c->ix = ix;
    c->heap = heap;
    c->notes = notes;
    c->cap = n * 4 + 1024;
    c->off = malloc((n + 1) * sizeof(uint32_t));
    c->head = malloc(c->cap * sizeof(uint32_t));
    if (notes)
        c->note = malloc((c->cap + 1) * sizeof(uint32_t));
    if (!c->off || !c->head || (notes && !c->note))
        c->rc = ENOMEM;
    else
        c->off[0] = 0;
    for (size_t v = 0; v < n && !c->rc; v++) {
        PyObject *o = (PyObject *)(uintptr_t)keys[v];
        if (v + 16 < n)
            __builtin_prefetch((const void *)(uintptr_t)keys[v + 16]);
        c->tail = (uint32_t)v;
        if (notes) {
            if (c->len > RESOLVE_BATCH - NOTE_ROOM) {
                csr_flush(c);
                if (c->rc)
                    break;
            }
            c->vstart = c->len;
        }
        pl_heapinfo_vertex(heap, (uint32_t)v, o);
        if (PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse)
            Py_TYPE(o)->tp_traverse(o, csr_visit, c);
        if (!c->rc && PyFrame_Check(o))
            pl_frame_extras(o, csr_visit, c);
        if (notes && !c->rc)
            note_vertex(c, (uint32_t)v, o);
    }
    csr_flush(c);
    while (!c->rc && c->last < n)
        c->off[++c->last] = (uint32_t)c->m;
    if (!c->rc && c->note)
        c->note[c->m] = 0;
    int rc = c->rc;
    *off = c->off;
    *head = c->head;
    *note = c->note;
    free(c);
    return rc;
}

/* See graph_int.h. */
pl_graph *pl_objgraph_snapshot(PyTypeObject *exclude, long skip, int how, pl_heapinfo **heap, pl_snap_notes *notes)
{
    struct snap_ctx ctx = {NULL, 0, 0, exclude, 0, NULL, 0};
    vertex_index ix = {0};
    pl_heapinfo_builder *hb = NULL;
    uint32_t *off = NULL, *head = NULL, *note = NULL;
    pl_graph *g = NULL;
    size_t n = 0;
    *heap = NULL;
    if (notes)
        notes->edge_note = NULL;
    /* The gc lists walked directly: no list of every object is built, and
     * the objects frozen by gc.freeze() (gunicorn --preload) are included. */
    int vrc = pl_live_walk(snap_add, &ctx);
    int rc = ctx.rc;
    if (!rc && vrc >= 0)
        rc = add_thread_frames(&ctx, skip);
    int ordered = 0;
    if (!rc && vrc >= 0)
        rc = order_by_blocks(&ctx, how, &ix, &n, &ordered);
    if (!ordered) {
        if (!rc && vrc >= 0)
            rc = sort_keys(ctx.keys, ctx.len);
        /* Every gathered key holds a reference; from here on, n keys are the
         * vertices (duplicates, a frame the gc tracks too, drop theirs). */
        for (size_t i = 0; i < ctx.len; i++) {
            if (rc || vrc < 0 || (n && ctx.keys[n - 1] == ctx.keys[i]))
                Py_DECREF((PyObject *)(uintptr_t)ctx.keys[i]);
            else
                ctx.keys[n++] = ctx.keys[i];
        }
    }
    if (rc || vrc < 0)
        goto fail;
    if (n > PL_GRAPH_MAX) {
        rc = PL_ETOOBIG;
        goto fail;
    }
    if (!ix.blocks && (rc = index_build(&ix, ctx.keys, n, ordered ? PL_SNAPSHOT_ADDRESSES : how)))
        goto fail;
    if ((rc = pl_heapinfo_begin(&hb, n)) || (notes && (rc = notes->begin(n, notes->arg))) ||
        (rc = snap_edges(ctx.keys, n, &ix, hb, notes, &off, &head, &note)))
        goto fail;
    index_free(&ix);
    memset(&ix, 0, sizeof(ix));
    uint64_t *keys = n ? realloc(ctx.keys, n * sizeof(uint64_t)) : ctx.keys;
    if (keys)
        ctx.keys = keys;
    if (off[n] && off[n] < n * 4 + 1024) {
        uint32_t *h = realloc(head, off[n] * sizeof(uint32_t));
        if (h)
            head = h;
        if (note && (h = realloc(note, (off[n] + 1) * sizeof(uint32_t))))
            note = h;
    }
    if ((rc = pl_graph_adopt_sorted(ctx.keys, n, off, head, &g)))
        goto fail;
    ctx.keys = NULL;
    off = head = NULL;
    rc = pl_heapinfo_end(hb, g, heap);
    hb = NULL;
    if (rc)
        goto fail;
    if (notes)
        notes->edge_note = note;
    return g;
fail:
    if (!g && ctx.keys)
        for (size_t i = 0; i < n; i++)
            Py_DECREF((PyObject *)(uintptr_t)ctx.keys[i]);
    free(ctx.keys);
    free(off);
    free(head);
    free(note);
    index_free(&ix);
    pl_heapinfo_abort(hb);
    pl_objgraph_release(g);
    if (rc)
        pl_raise(NULL, rc, "the graph operation");
    return NULL;
}

/* ---- reachable from one object ---- */

struct reach_ctx {
    pl_graph *g;
    int rc;
};

static int reach_add(PyObject *o, void *arg)
{
    struct reach_ctx *ctx = arg;
    if (o && (ctx->rc = add_vertex_ref(ctx->g, o)))
        return 1;
    return 0;
}

/* Breadth-first over the vertex numbers: the vertex array is the queue, so
 * no recursion and no extra memory. */
pl_graph *pl_objgraph_reachable(PyObject *obj)
{
    pl_graph *g;
    int rc = pl_graph_new(64, &g);
    if (rc) {
        pl_raise(NULL, rc, "the graph operation");
        return NULL;
    }
    struct reach_ctx ctx = {g, add_vertex_ref(g, obj)};
    for (uint32_t v = 0; !ctx.rc && v < pl_graph_order(g); v++) {
        PyObject *o = pl_vertex_obj(g, v);
        if (PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse)
            Py_TYPE(o)->tp_traverse(o, reach_add, &ctx);
        if (!ctx.rc && PyFrame_Check(o))
            pl_frame_extras(o, reach_add, &ctx);
    }
    if (ctx.rc || (rc = build_edges(g))) {
        pl_raise(NULL, ctx.rc ? ctx.rc : rc, "the graph operation");
        pl_objgraph_release(g);
        return NULL;
    }
    return g;
}

/* ---- explicit edges ---- */

/* See graph_int.h. */
pl_graph *pl_objgraph_from_edges(PyObject *vertices, PyObject *pairs)
{
    PyObject *vs = PySequence_Fast(vertices, "vertices must be a sequence");
    if (!vs)
        return NULL;
    PyObject *es = PySequence_Fast(pairs, "pairs must be a sequence");
    if (!es) {
        Py_DECREF(vs);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(vs), m = PySequence_Fast_GET_SIZE(es);
    pl_graph *g;
    int rc = pl_graph_new((size_t)n, &g);
    if (rc) {
        Py_DECREF(vs);
        Py_DECREF(es);
        pl_raise(NULL, rc, "the graph operation");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n && !rc; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(vs, i);
        rc = add_vertex_ref(g, o);
        if (!rc && pl_graph_order(g) != (size_t)i + 1)
            rc = PL_EBADARG;
    }
    for (Py_ssize_t i = 0; i < m && !rc; i++) {
        unsigned long t, h;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(es, i), "kk", &t, &h))
            break;
        rc = pl_graph_add_edge(g, (uint32_t)t, (uint32_t)h);
    }
    Py_DECREF(vs);
    Py_DECREF(es);
    if (!rc && !PyErr_Occurred())
        rc = pl_graph_finish(g);
    if (rc || PyErr_Occurred()) {
        if (rc == PL_EBADARG)
            PyErr_SetString(PyExc_ValueError, "duplicate vertex or bad edge order");
        else if (rc)
            pl_raise(NULL, rc, "the graph operation");
        pl_objgraph_release(g);
        return NULL;
    }
    return g;
}
