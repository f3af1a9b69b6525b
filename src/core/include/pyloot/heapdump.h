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
 * read past its end); heapdump_report.c analyses (dominator tree,
 * retained sizes, top types, retainers and their paths, the difference of
 * two dumps) and writes the JSON of `pyloot heap`. Everything allocates
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
 * then rename, so a reader never sees half a file). Returns 0, an errno
 * value, ENOMEM or PL_EBADARG. */
int pl_heapdump_write(const pl_heapdump *d, int level, const char *path);

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

/* ---- analysis (heapdump_report.c) ---- */

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

/* Report options for `pyloot heap` (and the UI, which reads the same JSON). */
typedef struct pl_heapdump_report_options {
    size_t types;     /* top types listed (default 20) */
    size_t retainers; /* biggest retainers listed, each with its path (default 10) */
    size_t path_max;  /* steps of a path shown (default 32) */
} pl_heapdump_report_options;

/* Appends the JSON summary of one dump to out: {"pid", "host", "time",
 * "argv", "python", "objects", "edges", "bytes", "types": [{"name", "count",
 * "bytes"}], "retainers": [{"id", "type", "repr", "size", "retained",
 * "path": [{"id", "type", "repr", "via"}]}]}. opt may be NULL. Returns 0
 * or ENOMEM. */
int pl_heapdump_report_json(const pl_heapdump *d, const pl_heapdump_report_options *opt, pl_buf *out);

/* Appends the JSON comparison of two dumps of one worker to out: objects
 * are matched by address and type name. {"old": {...}, "new": {...},
 * "types": [{"name", "count_change", "bytes_change", "count", "bytes"}]
 * ranked by bytes change (then count change, then name), "grown":
 * [{"id", "type", "repr", "retained_change", "retained"}] the matched
 * holders whose retained size grew most, "new_held_by_old": [{"id",
 * "type", "repr", "new_objects", "new_bytes", "new_types": [..]}] matched
 * objects referring directly to objects new in `new`}. Returns 0 or ENOMEM. */
int pl_heapdump_diff_json(const pl_heapdump *old, const pl_heapdump *new_, const pl_heapdump_report_options *opt,
                          pl_buf *out);

#endif
