/* Heap dumps written from a live heap (docs/heapdump.md): dump_heap() and
 * the live query behind GET /api/heapdump, plus heap_load() for
 * pyloot.load_heap.
 *
 * Order: with the GIL, a snapshot graph (graph_build.c) and its heap info;
 * what the file needs from the objects is read into plain C memory while
 * the snapshot's edge pass has each object in the cache (pl_snap_notes):
 * type names (pl_typename, the history's names), the vertex descriptions
 * and edge labels of annotated graphs (graph_labels.c). A short pass after
 * it takes what needed more than C fields and str objects (a few thousand
 * vertices: types, functions, big containers); a given graph gets one
 * whole pass instead. Then without the GIL (the graph kept alive
 * meanwhile): roots by reference counts, the columns in address order with
 * shallow sizes (pl_heapinfo), encoding, compression and the file write.
 * The descriptions are read from C fields (no repr() of the program runs)
 * and never show an attribute's value, so what redaction hides is not in
 * the file. */
#include "graph_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"
#include "live.h"
#include "pyloot/heapdump.h"
#include "pyloot/memory.h"
#include "pyloot/proc.h"
#include "pyloot/redact.h"
#include "referents.h"

/* Largest dump answered by GET /api/heapdump (docs/security.md). */
#define PL_HEAPDUMP_HTTP_MAX_DEFAULT (256u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- gathering (GIL held) ---- */

/* A label whose key is a str: (kind, key object) -> string index. The
 * cache holds a reference to each key object in it (builder.held): a key
 * may be a str made for the label alone (a slot's name), whose address a
 * later key could take. */
struct label_slot {
    const void *key; /* the str key, or a field's static name */
    uint32_t kind, index;
};

typedef struct builder {
    pl_heapdump *d;
    const pl_graph *g;
    const pl_heapinfo *h;
    PyObject *keep;       /* keeps g and h alive until the dump is complete;
                           * dropped with the GIL held */
    pl_heapinfo *own;     /* h when made for the dump (freed with the builder) */
    const uint32_t *rank; /* vertex -> its number in address order, or NULL (already ordered) */
    char **strings;
    size_t nstrings, strcap;
    uint32_t *str_slot; /* open addressing on the string contents: index + 1, 0 empty */
    size_t str_slots;
    PyTypeObject **type_key; /* open addressing on the type pointer */
    uint32_t *type_val;
    size_t type_slots;
    int64_t *type_descr; /* per type index: its instances' description in `descr`
                          * (offset << 16 | length), -1 unknown yet, -2 not
                          * described by their type */
    pl_buf descr;
    struct label_slot *label_cache; /* formatted labels of str keys (interned names) and fields */
    size_t label_slots, nlabels;
    PyObject **held; /* the key objects in label_cache: references, dropped with the GIL */
    size_t nheld, heldcap;
    uint32_t *label;     /* per edge, in the graph's edge order */
    pl_buf repr, scratch;
    uint32_t *repr_off;  /* per vertex in graph order: start in repr, or in descr (length below) */
    uint16_t *repr_len;  /* its length, | REPR_OF_TYPE when it is its type's description in descr */
    uint8_t *later;      /* per vertex of a noted snapshot: LATER_* (what the snapshot could not take) */
    /* In front of label_cache for the notes, direct-mapped: the labels of
     * the few attribute names and fields most of a heap's edges have. */
    struct label_slot front[256];
    PyTypeObject *last_type; /* the last vertex's type, and its index */
    uint32_t last_index;
} builder;

/* What is left of a vertex after a snapshot that took its notes
 * (notes_vertex): */
#define LATER_DESCRIBE 1 /* its description (pl_objgraph_describe) */
#define LATER_LABELS 2   /* its edges' labels */

/* repr_len: the description is the type's own, in `descr`: shared, copied
 * into the file's column later, possibly after the GIL is released. */
#define REPR_OF_TYPE 0x8000u

/* The descriptions of a snapshot, laid out into the file's column without
 * the GIL (lay_out_descriptions): everything they are copied from. */
typedef struct pending_repr {
    pl_buf repr, descr;
    uint32_t *off;
    uint16_t *len;
    size_t n;
} pending_repr;

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

/* The index of string s[0..len) in the table, added if new. UINT32_MAX
 * when out of memory. */
static uint32_t intern(builder *b, const char *s, size_t len)
{
    if (len > PL_HEAPDUMP_STRING_MAX)
        len = PL_HEAPDUMP_STRING_MAX;
    if ((b->nstrings + 1) * 2 > b->str_slots) {
        size_t ncap = b->str_slots ? b->str_slots * 2 : 1024;
        uint32_t *slot = calloc(ncap, sizeof(uint32_t));
        if (!slot)
            return UINT32_MAX;
        for (size_t i = 0; i < b->nstrings; i++) {
            size_t j = hash_bytes(b->strings[i], strlen(b->strings[i])) & (ncap - 1);
            while (slot[j])
                j = (j + 1) & (ncap - 1);
            slot[j] = (uint32_t)i + 1;
        }
        free(b->str_slot);
        b->str_slot = slot;
        b->str_slots = ncap;
    }
    size_t j = hash_bytes(s, len) & (b->str_slots - 1);
    while (b->str_slot[j]) {
        const char *t = b->strings[b->str_slot[j] - 1];
        if (strncmp(t, s, len) == 0 && t[len] == '\0')
            return b->str_slot[j] - 1;
        j = (j + 1) & (b->str_slots - 1);
    }
    if (b->nstrings == b->strcap) {
        size_t ncap = b->strcap ? b->strcap * 2 : 256;
        char **t = realloc(b->strings, ncap * sizeof(char *));
        if (!t)
            return UINT32_MAX;
        b->strings = t;
        b->strcap = ncap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return UINT32_MAX;
    memcpy(copy, s, len);
    copy[len] = '\0';
    /* A NUL inside a name would cut it: the file's strings have none. */
    for (size_t i = 0; i < len; i++)
        if (!copy[i])
            copy[i] = '?';
    b->strings[b->nstrings] = copy;
    b->str_slot[j] = (uint32_t)++b->nstrings;
    return (uint32_t)b->nstrings - 1;
}

/* The type index of tp. UINT32_MAX when out of memory. */
static uint32_t type_index(builder *b, PyTypeObject *tp)
{
    pl_heapdump *d = b->d;
    if ((d->ntypes + 1) * 2 > b->type_slots) {
        size_t ncap = b->type_slots ? b->type_slots * 2 : 256;
        PyTypeObject **key = calloc(ncap, sizeof(PyTypeObject *));
        uint32_t *val = calloc(ncap, sizeof(uint32_t));
        uint32_t *names = realloc(d->type_name, ncap / 2 * sizeof(uint32_t));
        if (names)
            d->type_name = names;
        int64_t *descr = realloc(b->type_descr, ncap / 2 * sizeof(int64_t));
        if (descr)
            b->type_descr = descr;
        if (!key || !val || !names || !descr) {
            free(key);
            free(val);
            return UINT32_MAX;
        }
        for (size_t i = 0; i < b->type_slots; i++)
            if (b->type_key[i]) {
                size_t j = ((uintptr_t)b->type_key[i] >> 4) & (ncap - 1);
                while (key[j])
                    j = (j + 1) & (ncap - 1);
                key[j] = b->type_key[i];
                val[j] = b->type_val[i];
            }
        free(b->type_key);
        free(b->type_val);
        b->type_key = key;
        b->type_val = val;
        b->type_slots = ncap;
    }
    size_t j = ((uintptr_t)tp >> 4) & (b->type_slots - 1);
    while (b->type_key[j]) {
        if (b->type_key[j] == tp)
            return b->type_val[j];
        j = (j + 1) & (b->type_slots - 1);
    }
    pl_buf_reset(&b->scratch);
    if (pl_typename(tp, &b->scratch) < 0)
        return UINT32_MAX;
    uint32_t s = intern(b, b->scratch.data ? b->scratch.data : "", b->scratch.len);
    if (s == UINT32_MAX)
        return UINT32_MAX;
    b->type_key[j] = tp;
    b->type_val[j] = (uint32_t)d->ntypes;
    d->type_name[d->ntypes] = s;
    b->type_descr[d->ntypes] = -1;
    return (uint32_t)d->ntypes++;
}

/* Appends s[0..n) cut to PL_HEAPDUMP_REPR_MAX bytes on a UTF-8 boundary.
 * 0 or ENOMEM (no exception set). */
static int put_description(builder *b, uint32_t v, const char *s, size_t n)
{
    if (n > PL_HEAPDUMP_REPR_MAX) {
        n = PL_HEAPDUMP_REPR_MAX;
        while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80)
            n--;
    }
    b->repr_off[v] = (uint32_t)b->repr.len;
    b->repr_len[v] = (uint16_t)n;
    /* Once per vertex: the common case, room left, without a call. */
    if ((b->repr.cap - b->repr.len <= n && pl_buf_reserve(&b->repr, n)) || b->repr.len + n > UINT32_MAX)
        return ENOMEM;
    memcpy(b->repr.data + b->repr.len, s, n);
    b->repr.len += n;
    b->repr.data[b->repr.len] = '\0';
    return 0;
}

/* "name[len]" into text (at least 48 bytes), as snprintf would write it;
 * its length. */
static size_t container_text(char *text, const char *name, Py_ssize_t len)
{
    size_t n = strlen(name);
    memcpy(text, name, n);
    text[n++] = '[';
    char digits[24];
    size_t k = 0;
    size_t u = len < 0 ? 0 : (size_t)len; /* a size is never negative */
    do {
        digits[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (k)
        text[n++] = digits[--k];
    text[n++] = ']';
    text[n] = '\0';
    return n;
}

/* The part of a vertex's gathering that reads C fields alone: its type,
 * and its description when its type or its length words it. 0 when done,
 * 1 when it is still to be described (vertex_describe), or ENOMEM (no
 * exception set). */
static int vertex_fields(builder *b, uint32_t v, PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    uint32_t t = tp == b->last_type ? b->last_index : type_index(b, tp);
    if (t == UINT32_MAX)
        return ENOMEM;
    b->last_type = tp;
    b->last_index = t;
    b->d->type[v] = t;
    int64_t at = b->type_descr[t];
    /* An instance described by its type is no module (the description of
     * a module names it). */
    if (at >= 0) {
        b->repr_off[v] = (uint32_t)(at >> 16);
        b->repr_len[v] = (uint16_t)(REPR_OF_TYPE | (uint32_t)(at & 0xffff));
        return 0;
    }
    /* The commonest containers (never modules), worded as
     * pl_objgraph_describe words them, without making a str object. */
    const char *container = PyList_Check(o) ? "list" : PyTuple_Check(o) ? "tuple" : PyDict_Check(o) ? "dict" : NULL;
    if (container) {
        if (at == -1)
            b->type_descr[t] = -2; /* described one by one, like every container */
        Py_ssize_t len = PyList_Check(o) ? PyList_GET_SIZE(o) : PyTuple_Check(o) ? PyTuple_GET_SIZE(o)
                                                                                   : PyDict_GET_SIZE(o);
        char text[48];
        return put_description(b, v, text, container_text(text, container, len));
    }
    if (PyModule_Check(o))
        b->d->flags[v] |= PL_HEAPDUMP_MODULE;
    return 1;
}

/* Whether o is the first of its type's instances, all described by the
 * type: its description, which only names the type, is made at once. */
static int first_of_described_type(builder *b, uint32_t v, PyObject *o)
{
    int64_t *at = &b->type_descr[b->d->type[v]];
    if (*at == -1 && !pl_objgraph_described_by_type(o))
        *at = -2;
    return *at == -1;
}

/* The rest of a vertex's gathering after vertex_fields returned 1: its
 * description from pl_objgraph_describe, kept as its type's when the type
 * describes its instances. 0, or -1 with an exception set. */
static int vertex_describe(builder *b, uint32_t v, PyObject *o)
{
    uint32_t t = b->d->type[v];
    int64_t at = b->type_descr[t];
    if (at >= 0) { /* an earlier instance described the type meanwhile */
        b->repr_off[v] = (uint32_t)(at >> 16);
        b->repr_len[v] = (uint16_t)(REPR_OF_TYPE | (uint32_t)(at & 0xffff));
        return 0;
    }
    /* Whether a type's instances are described by it depends on the type
     * alone: asked once per type. */
    int by_type = at == -1 && pl_objgraph_described_by_type(o);
    if (!by_type)
        b->type_descr[t] = -2;
    PyObject *text = pl_objgraph_describe(o);
    if (!text)
        return -1;
    Py_ssize_t len = 0;
    const char *s = PyUnicode_AsUTF8AndSize(text, &len);
    PyObject *bytes = NULL;
    if (!s) {
        /* A name with a lone surrogate (a module named after a file name
         * that is not UTF-8): '?' in its place, as in the type names. */
        PyErr_Clear();
        if ((bytes = PyUnicode_AsEncodedString(text, "utf-8", "replace"))) {
            s = PyBytes_AS_STRING(bytes);
            len = PyBytes_GET_SIZE(bytes);
        }
    }
    int rc = s ? put_description(b, v, s, (size_t)len) : -1;
    if (!rc && by_type) {
        size_t n = b->repr_len[v];
        b->type_descr[t] = (int64_t)b->descr.len << 16 | (int64_t)n;
        if (b->descr.len + n > UINT32_MAX || pl_buf_append(&b->descr, s, n))
            rc = ENOMEM;
    }
    Py_XDECREF(bytes);
    Py_DECREF(text);
    if (rc > 0)
        PyErr_NoMemory();
    return rc ? -1 : 0;
}

/* pl_edge_label_fn for a vertex: its type and description. */
static int gather_vertex(uint32_t v, const struct pl_edge *unused, void *arg)
{
    (void)unused;
    builder *b = arg;
    PyObject *o = pl_vertex_obj(b->g, v);
    int rc = vertex_fields(b, v, o);
    if (rc == 1)
        return vertex_describe(b, v, o);
    if (rc)
        PyErr_NoMemory();
    return rc ? -1 : 0;
}

/* The string index of label e, which its kind and key (a str key, or the
 * static name of a field) decide alone: from the cache or made. */
static uint32_t str_key_label(builder *b, const struct pl_edge *label, const void *key)
{
    if (b->nlabels * 2 >= b->label_slots) {
        size_t ncap = b->label_slots ? b->label_slots * 2 : 1024;
        struct label_slot *t = calloc(ncap, sizeof *t);
        if (!t)
            return UINT32_MAX;
        for (size_t i = 0; i < b->label_slots; i++)
            if (b->label_cache[i].key) {
                size_t j = (((uintptr_t)b->label_cache[i].key >> 4) * 31 + b->label_cache[i].kind) & (ncap - 1);
                while (t[j].key)
                    j = (j + 1) & (ncap - 1);
                t[j] = b->label_cache[i];
            }
        free(b->label_cache);
        b->label_cache = t;
        b->label_slots = ncap;
    }
    size_t j = (((uintptr_t)key >> 4) * 31 + (uint32_t)label->kind) & (b->label_slots - 1);
    while (b->label_cache[j].key) {
        if (b->label_cache[j].key == key && b->label_cache[j].kind == (uint32_t)label->kind)
            return b->label_cache[j].index;
        j = (j + 1) & (b->label_slots - 1);
    }
    pl_buf_reset(&b->scratch);
    uint32_t s = pl_edge_format(label, &b->scratch) < 0
                     ? UINT32_MAX
                     : intern(b, b->scratch.data ? b->scratch.data : "", b->scratch.len);
    if (s != UINT32_MAX && label->key) {
        if (b->nheld == b->heldcap) {
            size_t ncap = b->heldcap ? b->heldcap * 2 : 256;
            PyObject **t = realloc(b->held, ncap * sizeof *t);
            if (!t)
                return UINT32_MAX; /* a key not held is never cached */
            b->held = t;
            b->heldcap = ncap;
        }
        b->held[b->nheld++] = Py_NewRef(label->key);
    }
    if (s != UINT32_MAX) {
        b->label_cache[j].key = key;
        b->label_cache[j].kind = (uint32_t)label->kind;
        b->label_cache[j].index = s;
        b->nlabels++;
    }
    return s;
}

/* The file's label of an edge (0 none, PL_HEAPDUMP_ITEM | i for
 * "item[i]", else its string's index + 1). UINT32_MAX when out of memory
 * (no exception set). */
static uint32_t edge_code(builder *b, const struct pl_edge *label)
{
    if (!label)
        return 0;
    if (label->kind == PL_EDGE_ITEM && label->index >= 0 && (uint64_t)label->index < PL_HEAPDUMP_ITEM)
        return PL_HEAPDUMP_ITEM | (uint32_t)label->index;
    uint32_t s;
    if (label->key && PyUnicode_CheckExact(label->key)) {
        s = str_key_label(b, label, label->key);
    } else if (!label->key && (label->kind == PL_EDGE_FIELD || label->kind == PL_EDGE_ELEMENT ||
                                   label->kind == PL_EDGE_REFERENT)) {
        /* A C-level field ("__class__", one per instance), "element" or
         * "referent": the label depends on the kind and the field's static
         * name alone, formatted once. The cache keys them by that name (or
         * by the kind's own marker), never the address of an object. */
        static const char no_field;
        s = str_key_label(b, label, label->field ? (const void *)label->field : (const void *)&no_field);
    } else {
        pl_buf_reset(&b->scratch);
        s = pl_edge_format(label, &b->scratch) < 0
                ? UINT32_MAX
                : intern(b, b->scratch.data ? b->scratch.data : "", b->scratch.len);
    }
    return s == UINT32_MAX ? UINT32_MAX : s + 1;
}

/* pl_edge_label_fn for an edge: its label into b->label. */
static int gather_edge(uint32_t e, const struct pl_edge *label, void *arg)
{
    builder *b = arg;
    uint32_t code = edge_code(b, label);
    if (code == UINT32_MAX) {
        PyErr_NoMemory();
        return -1;
    }
    b->label[e] = code;
    return 0;
}

/* ---- gathering during the snapshot (pl_snap_notes) ---- */

/* A noted vertex's labels: notes[i] for its reference i. */
struct note_edges {
    builder *b;
    uint32_t *notes;
    int nomem;
};

/* pl_edge_label_fn of the stream: the labels made without Python code (a
 * str key, a field, an item); any other key is left to the general way. */
static int note_label(uint32_t i, const struct pl_edge *label, void *arg)
{
    struct note_edges *ne = arg;
    builder *b = ne->b;
    const void *key = label ? label->key ? (const void *)label->key : (const void *)label->field : NULL;
    struct label_slot *slot = NULL;
    if (key && label->kind != PL_EDGE_ITEM) {
        slot = &b->front[(((uintptr_t)key >> 4) ^ (uint32_t)label->kind) & 255];
        if (slot->key == key && slot->kind == (uint32_t)label->kind) {
            ne->notes[i] = slot->index;
            return 0;
        }
    }
    if (label && label->key && !PyUnicode_CheckExact(label->key))
        return 1;
    uint32_t code = edge_code(b, label);
    if (code == UINT32_MAX) {
        ne->nomem = 1;
        return -1;
    }
    if (slot) {
        slot->key = key;
        slot->kind = (uint32_t)label->kind;
        slot->index = code;
    }
    ne->notes[i] = code;
    return 0;
}

/* The labels of an exact list's or tuple's references when they are its
 * items, in either order (list and tuple traverse them last to first):
 * "item[i]", as sequence_labels (graph_labels.c) gives them. In reverse,
 * an object held twice would take its first position first: such a
 * sequence, and a reversed one of more than NOTE_REVERSED_MAX items (its
 * check would need a table), is left to the general way. 1 when given, 0
 * when not. */
#define NOTE_REVERSED_MAX 16
static int note_items(PyObject *o, const uint64_t *refs, size_t k, uint32_t *notes)
{
    PyObject **items;
    size_t len;
    if (PyList_CheckExact(o)) {
        items = ((PyListObject *)o)->ob_item;
        len = (size_t)PyList_GET_SIZE(o);
    } else if (PyTuple_CheckExact(o)) {
        items = ((PyTupleObject *)o)->ob_item;
        len = (size_t)PyTuple_GET_SIZE(o);
    } else {
        return 0;
    }
    if (len != k || len >= PL_HEAPDUMP_ITEM)
        return 0;
    int forward = 1, backward = 1;
    for (size_t i = 0; i < k && (forward || backward); i++) {
        forward &= refs[i] == pl_obj_key(items[i]);
        backward &= refs[i] == pl_obj_key(items[k - 1 - i]);
    }
    if (!forward && !backward)
        return 0;
    if (!forward) {
        if (k > NOTE_REVERSED_MAX)
            return 0;
        for (size_t i = 1; i < k; i++)
            for (size_t j = 0; j < i; j++)
                if (refs[i] == refs[j])
                    return 0;
    }
    /* Both at once: a palindrome of references, the same label either way
     * for each (the first of its head's labels goes to its first edge). */
    for (size_t i = 0; i < k; i++)
        notes[i] = PL_HEAPDUMP_ITEM | (uint32_t)(forward ? i : k - 1 - i);
    return 1;
}

/* The dump and its per-vertex columns for n vertices. 0 or ENOMEM. */
static int columns_alloc(builder *b, size_t n)
{
    pl_heapdump *d = b->d = calloc(1, sizeof *d);
    if (d) {
        d->n = n;
        d->type = calloc(n + 1, sizeof(uint32_t));
        d->flags = calloc(n + 1, 1);
        d->size = malloc((n + 1) * sizeof(uint64_t));
    }
    b->repr_off = calloc(n + 1, sizeof(uint32_t));
    b->repr_len = calloc(n + 1, sizeof(uint16_t));
    return !d || !d->type || !d->flags || !d->size || !b->repr_off || !b->repr_len ? ENOMEM : 0;
}

/* pl_snap_notes.begin: the columns, before the edge pass. */
static int notes_begin(size_t n, void *arg)
{
    builder *b = arg;
    if (columns_alloc(b, n) || !(b->later = calloc(n + 1, 1)))
        return ENOMEM;
    return 0;
}

/* pl_snap_notes.vertex: the vertex's type and description, and its edges'
 * labels, while the snapshot has it in the cache; what needs Python
 * objects other than str is left for gather_later. */
static int notes_vertex(uint32_t v, PyObject *o, const uint64_t *refs, size_t k, uint32_t *notes, void *arg)
{
    builder *b = arg;
    int rc = vertex_fields(b, v, o);
    if (rc == 1) {
        /* The first instance of a type described by its type: a str that
         * names the type, made now, or every instance would wait. */
        if (!first_of_described_type(b, v, o)) {
            b->later[v] |= LATER_DESCRIBE;
        } else if (vertex_describe(b, v, o) < 0) {
            /* It fails again, and is raised, in gather_later; the type's
             * other instances go there without trying. */
            PyErr_Clear();
            b->type_descr[b->d->type[v]] = -2;
            b->later[v] |= LATER_DESCRIBE;
        }
    } else if (rc) {
        return rc;
    }
    if (!refs) {
        b->later[v] |= LATER_LABELS;
        return 0;
    }
    if (!k || note_items(o, refs, k, notes))
        return 0;
    struct note_edges ne = {b, notes, 0};
    rc = pl_objgraph_stream_labels(o, refs, k, note_label, &ne);
    if (rc < 0)
        return ENOMEM;
    if (!rc)
        b->later[v] |= LATER_LABELS;
    return 0;
}

/* pl_edge_label_fn for a vertex after a noted snapshot: what was left of
 * it; 1 when its labels were taken. */
static int gather_later(uint32_t v, const struct pl_edge *unused, void *arg)
{
    (void)unused;
    builder *b = arg;
    if ((b->later[v] & LATER_DESCRIBE) && vertex_describe(b, v, pl_vertex_obj(b->g, v)) < 0)
        return -1;
    return b->later[v] & LATER_LABELS ? 0 : 1;
}

static int by_key(const void *x, const void *y, void *keys)
{
    uint64_t a = ((const uint64_t *)keys)[*(const uint32_t *)x], c = ((const uint64_t *)keys)[*(const uint32_t *)y];
    return a < c ? -1 : a > c;
}

/* The file's description column: out_off[i] and the text of vertex
 * perm[i] (i itself when perm is NULL), from p. Plain C memory only: runs
 * with or without the GIL. Returns 0 or ENOMEM. */
static int lay_out_descriptions(const pending_repr *p, const uint32_t *perm, char **out, uint32_t **out_off)
{
    size_t total = 0;
    for (size_t v = 0; v < p->n; v++)
        total += p->len[v] & ~REPR_OF_TYPE;
    char *text = total <= UINT32_MAX ? malloc(total + 1) : NULL;
    uint32_t *off = malloc((p->n + 1) * sizeof(uint32_t));
    if (!text || !off) {
        free(text);
        free(off);
        return ENOMEM;
    }
    uint32_t r = 0;
    for (size_t i = 0; i < p->n; i++) {
        size_t v = perm ? perm[i] : i;
        uint32_t len = p->len[v] & ~REPR_OF_TYPE;
        const char *from = (p->len[v] & REPR_OF_TYPE ? p->descr.data : p->repr.data) + p->off[v];
        off[i] = r;
        memcpy(text + r, from, len);
        r += len;
    }
    off[p->n] = r;
    *out = text;
    *out_off = off;
    return 0;
}

static void pending_repr_free(pending_repr *p)
{
    pl_buf_free(&p->repr);
    pl_buf_free(&p->descr);
    free(p->off);
    free(p->len);
    memset(p, 0, sizeof *p);
}

/* The builder's descriptions, taken over by p. */
static void take_descriptions(builder *b, pending_repr *p)
{
    p->repr = b->repr;
    p->descr = b->descr;
    p->off = b->repr_off;
    p->len = b->repr_len;
    p->n = b->d->n;
    memset(&b->repr, 0, sizeof b->repr);
    memset(&b->descr, 0, sizeof b->descr);
    b->repr_off = NULL;
    b->repr_len = NULL;
}

/* The columns of a graph in address order already (a snapshot): the
 * gathered arrays become the dump's as they are, without a copy through a
 * permutation. Plain C memory only (no GIL needed). Returns 0, ENOMEM, or
 * PL_EBADARG when the graph's edges are not numbered in vertex order. */
static int take_in_order(builder *b)
{
    pl_heapdump *d = b->d;
    const pl_graph *g = b->g;
    size_t n = pl_graph_order(g), m = pl_graph_size(g);
    d->addr = malloc((n + 1) * sizeof(uint64_t));
    d->out_off = malloc((n + 1) * sizeof(uint32_t));
    d->head = malloc((m + 1) * sizeof(uint32_t));
    if (!d->addr || !d->out_off || !d->head)
        return ENOMEM;
    memcpy(d->addr, pl_graph_keys(g), n * sizeof(uint64_t));
    memcpy(d->size, b->h->size, n * sizeof(uint64_t));
    /* The graph's edges are numbered in vertex order, as the file's. */
    uint32_t e = 0;
    for (uint32_t v = 0; v < n; v++) {
        size_t k;
        uint32_t first;
        const uint32_t *heads = pl_graph_out(g, v, &k, &first);
        if (first != e)
            return PL_EBADARG;
        d->out_off[v] = e;
        if (k)
            memcpy(d->head + e, heads, k * sizeof(uint32_t));
        e += (uint32_t)k;
    }
    d->out_off[n] = e;
    d->label = b->label;
    b->label = NULL;
    pending_repr p;
    take_descriptions(b, &p);
    int rc = lay_out_descriptions(&p, NULL, &d->repr, &d->repr_off);
    pending_repr_free(&p);
    return rc;
}

/* Lays the gathered columns out in address order (the file's rule): a
 * snapshot is in that order already; a graph of given objects is not.
 * Plain C memory only (no GIL needed). Returns 0, ENOMEM or PL_EBADARG. */
static int order_by_address(builder *b)
{
    pl_heapdump *d = b->d;
    const pl_graph *g = b->g;
    size_t n = pl_graph_order(g), m = pl_graph_size(g);
    const uint64_t *keys = pl_graph_keys(g);
    int sorted = 1;
    for (uint32_t v = 1; v < n && sorted; v++)
        sorted = keys[v - 1] < keys[v];
    if (sorted)
        return take_in_order(b);
    uint32_t *perm = malloc((n + 1) * sizeof(uint32_t)), *rank = malloc((n + 1) * sizeof(uint32_t));
    uint64_t *size = malloc((n + 1) * sizeof(uint64_t));
    uint32_t *type = malloc((n + 1) * sizeof(uint32_t));
    uint8_t *flags = malloc(n + 1);
    if (!perm || !rank || !size || !type || !flags)
        goto nomem;
    for (uint32_t v = 0; v < n; v++)
        perm[v] = v;
    qsort_r(perm, n, sizeof(uint32_t), by_key, (void *)keys);
    for (uint32_t i = 0; i < n; i++)
        rank[perm[i]] = i;
    d->addr = malloc((n + 1) * sizeof(uint64_t));
    d->out_off = malloc((n + 1) * sizeof(uint32_t));
    d->head = malloc((m + 1) * sizeof(uint32_t));
    d->label = malloc((m + 1) * sizeof(uint32_t));
    if (!d->addr || !d->out_off || !d->head || !d->label)
        goto nomem;
    pending_repr p;
    take_descriptions(b, &p);
    int rc = lay_out_descriptions(&p, perm, &d->repr, &d->repr_off);
    pending_repr_free(&p);
    if (rc)
        goto nomem;
    uint32_t e = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = perm[i];
        d->addr[i] = keys[v];
        size[i] = b->h->size[v];
        type[i] = d->type[v];
        flags[i] = d->flags[v];
        d->out_off[i] = e;
        size_t k;
        uint32_t first;
        const uint32_t *heads = pl_graph_out(g, v, &k, &first);
        for (size_t j = 0; j < k; j++, e++) {
            d->head[e] = rank[heads[j]];
            d->label[e] = b->label[first + j];
        }
    }
    d->out_off[n] = e;
    free(d->size);
    free(d->type);
    free(d->flags);
    d->size = size;
    d->type = type;
    d->flags = flags;
    free(perm);
    b->rank = rank;
    return 0;
nomem:
    free(perm);
    free(rank);
    free(size);
    free(type);
    free(flags);
    return ENOMEM;
}

static void meta(pl_heapdump *d)
{
    pl_incarnation inc = {0, 0};
    pl_proc_info info;
    memset(&info, 0, sizeof info);
    pl_proc_self(&inc);
    pl_proc_describe(&info);
    d->time_ms = pl_now_ms();
    d->pid = inc.pid ? inc.pid : (uint32_t)getpid();
    d->start = inc.start;
    d->host = strdup(info.host);
    pl_buf argv = PL_BUF_INIT;
    if (pl_redact_cmdline(pl_redact_current(), info.argv, &argv) == 0 && argv.data)
        d->argv = strdup(argv.data);
    pl_buf_free(&argv);
    const char *v = Py_GetVersion();
    d->python = strndup(v, strcspn(v, " "));
}

/* Drops b's references to objects (b->keep, the label keys), with the
 * GIL. */
static void builder_drop(builder *b)
{
    for (size_t i = 0; i < b->nheld; i++)
        Py_DECREF(b->held[i]);
    b->nheld = 0;
    Py_CLEAR(b->keep);
}

/* Frees what b holds (its dump too, unless taken), not b->keep nor the
 * label keys (builder_drop, with the GIL). Plain C memory: no GIL
 * needed. */
static void builder_free(builder *b)
{
    pl_heapdump_free(b->d);
    for (size_t i = 0; b->strings && i < b->nstrings; i++)
        free(b->strings[i]);
    free(b->strings);
    free(b->str_slot);
    free(b->type_key);
    free(b->type_val);
    free(b->type_descr);
    free(b->label_cache);
    free(b->held);
    pl_buf_free(&b->descr);
    free(b->label);
    free((void *)b->rank);
    free(b->repr_off);
    free(b->repr_len);
    free(b->later);
    pl_buf_free(&b->repr);
    pl_buf_free(&b->scratch);
    pl_heapinfo_free(b->own);
    memset(b, 0, sizeof *b);
}

/* The part of a dump that reads the objects, GIL held: each vertex's type
 * and description, each edge's label, the process's facts; after a
 * snapshot that took its notes (b->later set), what it left. The rest is
 * plain C memory left to gather_complete. 0, or -1 with an exception set. */
static int gather(builder *b)
{
    const pl_graph *g = b->g;
    size_t n = pl_graph_order(g), m = pl_graph_size(g);
    if (b->later) {
        size_t nlater = 0;
        for (size_t v = 0; v < n; v++)
            nlater += b->later[v] != 0;
        uint32_t *vs = malloc((nlater + 1) * sizeof(uint32_t));
        if (!vs) {
            PyErr_NoMemory();
            return -1;
        }
        nlater = 0;
        for (uint32_t v = 0; v < n; v++)
            if (b->later[v])
                vs[nlater++] = v;
        int rc = pl_objgraph_edge_labels_of(g, vs, nlater, gather_later, gather_edge, b);
        free(vs);
        if (rc < 0)
            return -1;
    } else {
        if (columns_alloc(b, n) || !(b->label = calloc(m + 1, sizeof(uint32_t)))) {
            PyErr_NoMemory();
            return -1;
        }
        if (pl_objgraph_edge_labels(g, gather_vertex, gather_edge, b) < 0)
            return -1;
    }
    pl_heapdump *d = b->d;
    meta(d);
    if (!d->host || !d->argv || !d->python) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* The part of a dump that needs only the graph's arrays and what gather
 * took, run without the GIL: roots by reference counts (more references
 * than in-edges), the columns in address order, the untracked groups, the
 * descriptions' column. Returns 0, ENOMEM or PL_EBADARG. */
static int gather_complete(builder *b)
{
    pl_heapdump *d = b->d;
    const pl_graph *g = b->g;
    const pl_heapinfo *h = b->h;
    size_t n = pl_graph_order(g);
    uint32_t *indeg = calloc(n + 1, sizeof(uint32_t));
    if (!indeg)
        return ENOMEM;
    const uint32_t *out_off, *out_head;
    pl_graph_csr(g, &out_off, &out_head, NULL, NULL);
    for (size_t e = 0; e < out_off[n]; e++)
        indeg[out_head[e]]++;
    for (uint32_t v = 0; v < n; v++)
        if (h->outside[v] > indeg[v])
            d->flags[v] |= PL_HEAPDUMP_ROOT;
    free(indeg);
    int rc = order_by_address(b);
    if (rc)
        return rc;
    d->ngroups = h->ngroups;
    size_t holders = h->ngroups ? h->group_off[h->ngroups] : 0;
    d->group_off = malloc((h->ngroups + 1) * sizeof(uint32_t));
    d->group_holder = malloc((holders + 1) * sizeof(uint32_t));
    d->group_size = malloc((h->ngroups + 1) * sizeof(uint64_t));
    if (!d->group_off || !d->group_holder || !d->group_size)
        return ENOMEM;
    d->group_off[0] = 0;
    for (size_t i = 0; i < h->ngroups; i++) {
        d->group_off[i + 1] = h->group_off[i + 1];
        d->group_size[i] = h->group_size[i];
    }
    for (size_t k = 0; k < holders; k++)
        d->group_holder[k] = b->rank ? b->rank[h->group_holder[k]] : h->group_holder[k];
    d->root_size = h->root_size;
    d->strings = b->strings;
    d->nstrings = b->nstrings;
    b->strings = NULL;
    return 0;
}

/* ---- dump_heap ---- */

typedef struct dump_timing {
    double snapshot_s, gather_s, write_s;
} dump_timing;

/* Starts the dump of the whole heap (graph NULL) or of a Graph object in b
 * (zeroed), with the GIL: the snapshot and the gathering. The caller then
 * completes it with gather_complete (without the GIL), drops b's
 * references with builder_drop (GIL held) and frees b with builder_free.
 * 0, or -1 with an exception set (b still to drop and free). */
static int dump_start(PyObject *graph, dump_timing *t, builder *b)
{
    double t0 = now_s();
    if (!graph || graph == Py_None) {
        /* The types, descriptions and labels are mostly taken during the
         * snapshot's edge pass, which reads every object anyway. Only str
         * objects are made then, and no collection can start. */
        pl_snap_notes notes = {notes_begin, notes_vertex, b, NULL};
#ifdef PL_HAVE_INLINE_VALUES
        pl_snap_notes *take = &notes;
#else
        /* Reading an instance's attributes there makes its dict (heap.h):
         * no labels while the snapshot runs. */
        pl_snap_notes *take = NULL;
#endif
        int gc_was = PyGC_Disable();
        PlGraphObject *snap = pl_objgraph_snapshot_object(take);
        if (gc_was)
            PyGC_Enable();
        b->label = notes.edge_note;
        if (!snap)
            return -1;
        b->keep = (PyObject *)snap;
        b->g = snap->graph;
        b->h = snap->heap;
    } else {
        PlGraphObject *go = (PlGraphObject *)graph;
        if (!go->graph) {
            PyErr_SetString(PyExc_ValueError, "the graph has been cleared");
            return -1;
        }
        b->keep = Py_NewRef(graph);
        b->g = go->graph;
        if (!(b->h = go->heap) && !(b->h = b->own = pl_objgraph_heapinfo(b->g)))
            return -1;
    }
    double t1 = now_s();
    int rc = gather(b);
    t->snapshot_s = t1 - t0;
    t->gather_s = now_s() - t1;
    return rc;
}

/* _pyloot.heap_dump(path, graph=None, level=6) -> dict of figures. */
static PyObject *heap_dump(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"path", "graph", "level", NULL};
    PyObject *path_obj = NULL, *graph = Py_None;
    int level = 6;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|Oi:heap_dump", kwlist, PyUnicode_FSConverter, &path_obj,
                                     &graph, &level))
        return NULL;
    PyObject *result = NULL;
    builder b;
    memset(&b, 0, sizeof b);
    pl_modstate *st = pl_modstate_get(module);
    if (graph != Py_None && !PyObject_TypeCheck(graph, st->graph_type)) {
        PyErr_SetString(PyExc_TypeError, "graph must be a pyloot ObjectGraph or None (the whole heap)");
        goto done;
    }
    if (level < -1 || level > 9) {
        PyErr_SetString(PyExc_ValueError, "level must be -1..9");
        goto done;
    }
    dump_timing t = {0, 0, 0};
    if (dump_start(graph, &t, &b) < 0)
        goto done;
    pl_buf img = PL_BUF_INIT;
    int rc;
    double t0 = now_s();
    Py_BEGIN_ALLOW_THREADS
    rc = gather_complete(&b);
    if (!rc)
        rc = pl_heapdump_write(b.d, level, PyBytes_AS_STRING(path_obj), &img.len);
    Py_END_ALLOW_THREADS
    t.write_s = now_s() - t0;
    if (rc) {
        errno = rc > 0 ? rc : EIO;
        if (rc > 0 && rc != ENOMEM)
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path_obj);
        else
            pl_raise(module, rc, "writing the heap dump");
    } else {
        pl_heapdump *d = b.d;
        result = Py_BuildValue("{s:n,s:n,s:n,s:d,s:d,s:d}", "objects", (Py_ssize_t)d->n, "edges",
                               (Py_ssize_t)d->out_off[d->n], "bytes", (Py_ssize_t)img.len, "snapshot_seconds",
                               t.snapshot_s, "gather_seconds", t.gather_s, "write_seconds", t.write_s);
    }
done:
    builder_drop(&b);
    builder_free(&b);
    Py_XDECREF(path_obj);
    Py_BEGIN_ALLOW_THREADS
    pl_memory_give_back(); /* the snapshot's and the dump's arrays */
    Py_END_ALLOW_THREADS
    return result;
}

/* ---- heap_load ---- */

static PyObject *text_of(const char *s, size_t len)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "replace");
}

/* _pyloot.heap_load(path) -> dict of lists (python/pyloot/heapdump.py builds the graph). */
static PyObject *heap_load(PyObject *module, PyObject *arg)
{
    PyObject *path_obj = NULL, *r = NULL;
    if (!PyUnicode_FSConverter(arg, &path_obj))
        return NULL;
    pl_heapdump *d = NULL;
    pl_heapdump_dom *t = NULL;
    char err[512];
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pl_heapdump_read(PyBytes_AS_STRING(path_obj), &d, err, sizeof err);
    if (!rc)
        rc = pl_heapdump_dom_build(d, &t);
    Py_END_ALLOW_THREADS
    if (rc) {
        if (rc == ENOMEM)
            PyErr_NoMemory();
        else
            PyErr_Format(PyExc_ValueError, "%s: not a usable heap dump: %s", PyBytes_AS_STRING(path_obj), err);
        goto done;
    }
    size_t n = d->n, m = d->out_off[n];
    PyObject *types = PyList_New((Py_ssize_t)d->ntypes), *ids = PyList_New((Py_ssize_t)n),
             *vt = PyList_New((Py_ssize_t)n), *sizes = PyList_New((Py_ssize_t)n),
             *retained = PyList_New((Py_ssize_t)n), *flags = PyList_New((Py_ssize_t)n),
             *descr = PyList_New((Py_ssize_t)n), *edges = PyList_New((Py_ssize_t)m);
    if (!types || !ids || !vt || !sizes || !retained || !flags || !descr || !edges)
        goto fail;
    for (size_t i = 0; i < d->ntypes; i++) {
        PyObject *s = PyUnicode_DecodeUTF8(d->strings[d->type_name[i]], (Py_ssize_t)strlen(d->strings[d->type_name[i]]), "replace");
        if (!s)
            goto fail;
        PyList_SET_ITEM(types, (Py_ssize_t)i, s);
    }
    pl_buf lb = PL_BUF_INIT;
    for (uint32_t v = 0; v < n; v++) {
        PyObject *a = PyLong_FromUnsignedLongLong(d->addr[v]), *ty = PyLong_FromUnsignedLong(d->type[v]),
                 *sz = PyLong_FromUnsignedLongLong(d->size[v]),
                 *rt = PyLong_FromUnsignedLongLong(pl_heapdump_retained(t, v)), *fl = PyLong_FromLong(d->flags[v]),
                 *ds = text_of(d->repr + d->repr_off[v], d->repr_off[v + 1] - d->repr_off[v]);
        PyList_SET_ITEM(ids, v, a);
        PyList_SET_ITEM(vt, v, ty);
        PyList_SET_ITEM(sizes, v, sz);
        PyList_SET_ITEM(retained, v, rt);
        PyList_SET_ITEM(flags, v, fl);
        PyList_SET_ITEM(descr, v, ds);
        if (!a || !ty || !sz || !rt || !fl || !ds)
            goto fail;
        for (uint32_t e = d->out_off[v]; e < d->out_off[v + 1]; e++) {
            PyObject *label;
            if (d->label[e]) {
                pl_buf_reset(&lb);
                if (pl_heapdump_label(d, e, &lb)) {
                    PyErr_NoMemory();
                    goto fail;
                }
                label = text_of(lb.data ? lb.data : "", lb.len);
            } else {
                label = Py_NewRef(Py_None);
            }
            PyObject *edge = label ? Py_BuildValue("(IIN)", v, d->head[e], label) : NULL;
            if (!edge) {
                pl_buf_free(&lb);
                goto fail;
            }
            PyList_SET_ITEM(edges, e, edge);
        }
    }
    pl_buf_free(&lb);
    r = Py_BuildValue("{s:I,s:K,s:s,s:L,s:s,s:s,s:K,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N}", "pid", d->pid, "start",
                      (unsigned long long)d->start, "host", d->host, "time_ms", (long long)d->time_ms, "argv",
                      d->argv, "python", d->python, "total", (unsigned long long)pl_heapdump_total(t), "types",
                      types, "ids", ids, "type", vt, "sizes", sizes, "retained", retained, "flags", flags,
                      "descriptions", descr, "edges", edges);
    goto done;
fail:
    Py_XDECREF(types);
    Py_XDECREF(ids);
    Py_XDECREF(vt);
    Py_XDECREF(sizes);
    Py_XDECREF(retained);
    Py_XDECREF(flags);
    Py_XDECREF(descr);
    Py_XDECREF(edges);
done:
    pl_heapdump_dom_free(t);
    pl_heapdump_free(d);
    Py_XDECREF(path_obj);
    return r;
}

/* ---- the live query (GET /api/heapdump) ---- */

static size_t http_max(void)
{
    const char *s = getenv("PYLOOT_HEAPDUMP_MAX_BYTES");
    char *end = NULL;
    unsigned long long v = s && *s ? strtoull(s, &end, 10) : 0;
    return v && end && !*end ? (size_t)v : PL_HEAPDUMP_HTTP_MAX_DEFAULT;
}

/* See live.h. */
int pl_answer_heapdump(pl_answer *a)
{
    dump_timing t = {0, 0, 0};
    builder b;
    memset(&b, 0, sizeof b);
    pl_buf img = PL_BUF_INIT;
    int rc = ENOMEM;
    size_t max = http_max();
    if (dump_start(NULL, &t, &b) < 0)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    rc = gather_complete(&b);
    if (!rc)
        rc = pl_heapdump_encode(b.d, 6, &img);
    Py_END_ALLOW_THREADS
    if (rc == ENOMEM) {
        PyErr_NoMemory();
    } else if (rc) {
        pl_answer_error(a, 500, "encoding the heap dump failed");
    } else if (img.len > max) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "the heap dump is %zu bytes, more than the %zu this route sends (PYLOOT_HEAPDUMP_MAX_BYTES); "
                 "write it to a file with PyLoot.dump_heap(path)",
                 img.len, max);
        pl_answer_error(a, 413, msg);
    } else {
        pl_buf_reset(a->body);
        pl_buf_append(a->body, img.data, img.len);
        a->status = a->body->err ? 500 : 200;
    }
done:
    pl_buf_free(&img);
    builder_drop(&b);
    builder_free(&b);
    Py_BEGIN_ALLOW_THREADS
    pl_memory_give_back(); /* the snapshot's and the dump's arrays */
    Py_END_ALLOW_THREADS
    return rc == ENOMEM ? -1 : 0;
}

static PyMethodDef heap_dump_functions[] = {
    {"heap_dump", (PyCFunction)(void (*)(void))heap_dump, METH_VARARGS | METH_KEYWORDS,
     "heap_dump(path, graph=None, level=6) -> dict\n\n"
     "Writes a heap dump of the whole heap (graph None) or of an ObjectGraph to path\n"
     "(docs/heapdump.md); returns figures: objects, edges, bytes, snapshot_seconds,\n"
     "gather_seconds (both with the GIL), write_seconds (without it)."},
    {"heap_load", heap_load, METH_O,
     "heap_load(path) -> dict\n\nReads a heap dump: meta data, types, and per vertex its id, type,\n"
     "size, retained size, flags and description, and the labelled edges. ValueError for a bad file."},
    {NULL, NULL, 0, NULL},
};

/* See pyext.h. */
int pl_heap_dump_module_exec(PyObject *module)
{
    return PyModule_AddFunctions(module, heap_dump_functions);
}
