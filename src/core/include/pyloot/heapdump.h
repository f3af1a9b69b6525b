/* pyloot core: heap dumps, one worker's object graph kept in a file
 * (docs/heapdump.md has the byte layout).
 *
 * A dump holds, per object (vertex), its address, type, shallow size, flags
 * (root, module) and a short description (the annotation of
 * docs/objectgraph.md: it is read from C fields and never holds an
 * attribute's value, so redaction holds by construction); per edge its head
 * and how the tail holds it (the edge vocabulary of docs/edges.md); and
 * what retained sizes need beyond the edges: the untracked objects several
 * vertices share (groups) and those that belong to the root. Strings (type
 * names, edge labels) are stored once. Vertices are in ascending address
 * order, edges grouped by tail.
 *
 * heapdump.c encodes and decodes (zlib, CRC-32, versioned header; a
 * damaged, truncated or hostile file is refused with a message, never
 * read past its end); heapdump_dom.c builds the dominator tree, retained
 * sizes and root paths; heapdump_report.c says what `pyloot heap` says
 * (top types, retainers and their paths, the difference of two dumps) and
 * writes it as JSON. Everything allocates
 * with libc and needs no lock: a dump is owned by one thread at a time.
 * Functions return 0, ENOMEM, errno values or PL_E* codes (error.h). */
#ifndef PYLOOT_HEAPDUMP_H
#define PYLOOT_HEAPDUMP_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/buf.h"

#define PL_HEAPDUMP_MAGIC "PYLOOTHD"
#define PL_HEAPDUMP_VERSION 1
#define PL_HEAPDUMP_HEADER 40          /* bytes before the compressed payload */
#define PL_HEAPDUMP_REPR_MAX 120       /* bytes of a vertex description, cut on a UTF-8 boundary */
#define PL_HEAPDUMP_STRING_MAX 4096    /* bytes of a type name or an edge label */
#define PL_HEAPDUMP_META_MAX 4096      /* bytes of host, argv, python */
#define PL_HEAPDUMP_RAW_MAX (16ULL << 30) /* uncompressed payload: 16 GiB */
#define PL_HEAPDUMP_RATIO_MAX 1100     /* raw / compressed: deflate cannot do better than ~1032 */
#define PL_HEAPDUMP_BYTES_MAX (1ULL << 56) /* object sizes summed, and group and root sizes summed: 64 PiB */

#define PL_HEAPDUMP_ROOT 1u   /* referenced from outside the graph (more references than edges) */
#define PL_HEAPDUMP_MODULE 2u /* a module object */

/* An edge label: 0 none, PL_HEAPDUMP_ITEM | i "item[i]", else string k + 1. */
#define PL_HEAPDUMP_ITEM 0x80000000u

typedef struct pl_heapdump {
    /* the worker */
    int64_t time_ms;  /* when the dump was taken, unix ms */
    uint32_t pid;
    uint64_t start;   /* process start, clock ticks since boot (pl_incarnation) */
    char *host, *argv, *python; /* NUL-terminated; argv already redacted */
    /* strings: type names and edge labels */
    size_t nstrings;
    char **strings;   /* NUL-terminated */
    /* types: string index of each type's name */
    size_t ntypes;
    uint32_t *type_name;
    /* vertices */
    size_t n;
    uint64_t *addr;   /* n, strictly ascending, nonzero */
    uint32_t *type;   /* n, < ntypes */
    uint64_t *size;   /* n, shallow size plus untracked objects only this vertex holds */
    uint8_t *flags;   /* n, PL_HEAPDUMP_ROOT | PL_HEAPDUMP_MODULE */
    uint32_t *repr_off; /* n + 1 offsets into repr */
    char *repr;       /* descriptions, concatenated (not NUL-separated) */
    /* edges */
    uint32_t *out_off; /* n + 1 */
    uint32_t *head;    /* out_off[n] vertex numbers */
    uint32_t *label;   /* out_off[n] labels (PL_HEAPDUMP_ITEM, string index + 1 or 0) */
    /* untracked objects shared by several vertices: size goes to their lowest common dominator */
    size_t ngroups;
    uint32_t *group_off;    /* ngroups + 1 offsets into group_holder */
    uint32_t *group_holder; /* vertex numbers */
    uint64_t *group_size;   /* ngroups */
    uint64_t root_size;     /* untracked objects held from elsewhere too */
} pl_heapdump;

/* Frees every array of d and d itself; NULL is a no-op. */
void pl_heapdump_free(pl_heapdump *d);

/* Appends the file image of d (header + zlib payload) to out, compressed
 * at zlib `level` (0..9; -1 default). d must hold the rules above
 * (PL_EBADARG otherwise). Returns 0, ENOMEM or PL_EBADARG. Thread-safe for
 * distinct d; needs no GIL. */
int pl_heapdump_encode(const pl_heapdump *d, int level, pl_buf *out);

/* Writes the file image to `path` (a temporary name in the same directory,
 * then rename, so a reader never sees half a file); *bytes (may be NULL)
 * gets the file's size. Returns 0, an errno value, ENOMEM or PL_EBADARG. */
int pl_heapdump_write(const pl_heapdump *d, int level, const char *path, size_t *bytes);

/* Decodes a file image. On success *out is a new dump (pl_heapdump_free).
 * On failure returns PL_ECORRUPT (or ENOMEM, PL_ETOOBIG, PL_ESCHEMA for a
 * newer version) and writes a sentence saying what is wrong into
 * err[0..errlen) (may be NULL). Never reads outside data[0..len), never
 * allocates more than a small multiple of what the payload can describe. */
int pl_heapdump_decode(const void *data, size_t len, pl_heapdump **out, char *err, size_t errlen);

/* Reads and decodes the file at path (pl_heapdump_decode), errors as there
 * plus errno values for the file itself (err says which). */
int pl_heapdump_read(const char *path, pl_heapdump **out, char *err, size_t errlen);

/* Appends the label of edge e (e < out_off[n]) to out: "item[3]", the
 * label's string, or nothing for an unlabelled edge. Returns 0 or ENOMEM. */
int pl_heapdump_label(const pl_heapdump *d, uint32_t e, pl_buf *out);

/* ---- analysis (heapdump_dom.c, heapdump_report.c) ---- */

typedef struct pl_heapdump_dom pl_heapdump_dom;

/* The dominator tree of the dump's graph from its roots (vertices flagged
 * PL_HEAPDUMP_ROOT, then, for vertices those do not reach, the first of
 * them in vertex order, and so on: the live graph's rule, graph_dom.c),
 * and every vertex's retained size (groups placed at their holders' lowest
 * common dominator). *out is freed with pl_heapdump_dom_free. Returns 0 or
 * ENOMEM. */
int pl_heapdump_dom_build(const pl_heapdump *d, pl_heapdump_dom **out);
void pl_heapdump_dom_free(pl_heapdump_dom *t);
/* Retained size of v (v < n), bytes. */
uint64_t pl_heapdump_retained(const pl_heapdump_dom *t, uint32_t v);
/* Sum of everything reachable, the untracked root objects included. */
uint64_t pl_heapdump_total(const pl_heapdump_dom *t);
/* Immediate dominator of v: a vertex, or UINT32_MAX - 1 (the virtual root). */
uint32_t pl_heapdump_idom(const pl_heapdump_dom *t, uint32_t v);
/* Number of roots the tree hangs from (flagged ones, then those added). */
size_t pl_heapdump_nroots(const pl_heapdump_dom *t);

/* One step of a path from a root: the vertex and the edge from the step
 * before (UINT32_MAX for the first step). */
typedef struct pl_heapdump_step {
    uint32_t vertex, via;
} pl_heapdump_step;

/* A shortest path from the roots to v, root first, cut to its last `max`
 * steps (*cut set; the first step's via is then UINT32_MAX too). *out is
 * malloc'ed, *n its length (0 never: v itself is the last step). Returns 0
 * or ENOMEM. */
int pl_heapdump_path(const pl_heapdump *d, const pl_heapdump_dom *t, uint32_t v, size_t max,
                     pl_heapdump_step **out, size_t *n, int *cut);

/* Options of a report (pyloot heap); zero fields take the defaults. */
typedef struct pl_heapdump_report_options {
    size_t types;     /* rows of types listed (default 20) */
    size_t retainers; /* biggest retainers / holders listed (default 10) */
    size_t path_max;  /* steps of a path shown (default 32) */
} pl_heapdump_report_options;

/* A type's row: totals in one dump, changes between two. */
typedef struct pl_heapdump_type_row {
    const char *name; /* owned by the dump */
    uint64_t count, bytes;
    int64_t count_change, bytes_change; /* diff only */
} pl_heapdump_type_row;

typedef struct pl_heapdump_retainer {
    uint32_t vertex;
    uint64_t retained;
    pl_heapdump_step *path; /* from a root to vertex */
    size_t npath;
    int path_cut;
} pl_heapdump_retainer;

/* What `pyloot heap FILE` says about one dump. The CLI's text and the
 * JSON (pl_heapdump_report_json, also read by the UI) both come from it. */
typedef struct pl_heapdump_report {
    const pl_heapdump *d;  /* borrowed: must outlive the report */
    pl_heapdump_dom *t;
    uint64_t bytes;        /* sum of the shallow sizes */
    pl_heapdump_type_row *types; /* by bytes, then count, then name */
    size_t ntypes;
    pl_heapdump_retainer *retainers; /* largest retained size first; a vertex keeping
                                      * 90 % of what a listed dominator of it retains
                                      * replaces it (the list a leak appends to rather
                                      * than the module holding it) */
    size_t nretainers;
} pl_heapdump_report;

/* Builds the report of d. *out is freed with pl_heapdump_report_free.
 * Returns 0 or ENOMEM. */
int pl_heapdump_report_make(const pl_heapdump *d, const pl_heapdump_report_options *opt,
                            pl_heapdump_report **out);
void pl_heapdump_report_free(pl_heapdump_report *r);
/* Appends {"pid", "start", "host", "time", "argv", "python", "objects",
 * "edges", "bytes", "total", "roots", "types": [{"name", "count",
 * "bytes"}], "retainers": [{"id", "type", "repr", "size", "retained",
 * "path_cut", "path": [{"id", "type", "repr", "size", "via"}]}]}. */
int pl_heapdump_report_json(const pl_heapdump_report *r, pl_buf *out);

/* A holder in the comparison of two dumps (a vertex of the newer one). */
typedef struct pl_heapdump_holder {
    uint32_t vertex;
    uint64_t retained, retained_change; /* grown */
    uint64_t new_objects, new_bytes;    /* new_held */
    const char *new_type;               /* new_held: the type of those, or "(several types)" */
} pl_heapdump_holder;

/* What `pyloot heap OLD NEW` says. Objects are matched by address and type
 * name: an address reused by another object of the same type counts as the
 * same object (docs/heapdump.md). */
typedef struct pl_heapdump_diff {
    const pl_heapdump *old, *d; /* borrowed */
    pl_heapdump_dom *old_t, *t;
    size_t matched, new_objects, gone_objects;
    pl_heapdump_type_row *types; /* changed types by bytes change, then count change, then name */
    size_t ntypes;
    pl_heapdump_holder *grown;   /* matched vertices whose retained size grew most */
    size_t ngrown;
    pl_heapdump_holder *new_held; /* matched vertices referring to most objects new in d */
    size_t nnew_held;
} pl_heapdump_diff;

int pl_heapdump_diff_make(const pl_heapdump *old, const pl_heapdump *d, const pl_heapdump_report_options *opt,
                          pl_heapdump_diff **out);
void pl_heapdump_diff_free(pl_heapdump_diff *f);
/* Appends {"old": {meta, "total"}, "new": {...}, "same_worker", "matched",
 * "new_objects", "gone_objects", "types": [{"name", "count_change",
 * "bytes_change", "count", "bytes"}], "grown": [{"id", "type", "repr",
 * "size", "retained", "retained_change"}], "new_held_by_old": [{"id",
 * "type", "repr", "size", "new_objects", "new_bytes", "new_type"}]}. */
int pl_heapdump_diff_json(const pl_heapdump_diff *f, pl_buf *out);

/* What the UI's Heap view reads (GET and POST /api/heap): {"files": [names],
 * "report": (the last dump's report), "diff": (the first two compared) or
 * null}, for n (1 or 2) dumps. Returns 0, ENOMEM or PL_EBADARG (n). */
int pl_heapdump_page_json(pl_heapdump *const *dumps, const char *const *names, size_t n, pl_buf *out);

/* Uploads of dumps to a `pyloot` command (POST /api/heap): at most this many
 * bytes of body, and payloads of at most PL_HEAPDUMP_UPLOAD_RAW_MAX each. */
#define PL_HEAPDUMP_UPLOAD_MAX (64u << 20)
#define PL_HEAPDUMP_UPLOAD_RAW_MAX (1ULL << 30)

/* The type name of vertex v. */
static inline const char *pl_heapdump_type_of(const pl_heapdump *d, uint32_t v)
{
    return d->strings[d->type_name[d->type[v]]];
}

#endif
