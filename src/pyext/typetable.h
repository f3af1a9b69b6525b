/* pyloot extension: types as the history names them (typetable.c).
 *
 * The collector's count pass keeps one table of the live types: pointer ->
 * "module.qualname", its store id and this pass's counts. Types sharing a
 * name get "#2", "#3" ... in the order the table first met them; the names
 * given by the last pass are published so that live-object queries list
 * the very type the history calls "mod.T#2".
 *
 * A table is owned by its user (the collector, under its collect_lock) and
 * is not thread-safe; lookups need the GIL (they read the type). The
 * published names are behind their own leaf lock: pl_type_named is
 * thread-safe, with or without the GIL. */
#ifndef PYLOOT_PYEXT_TYPETABLE_H
#define PYLOOT_PYEXT_TYPETABLE_H

#include "pyext.h"
#include "sizeof.h"

typedef struct pl_type_entry {
    PyTypeObject *tp;   /* compared, never dereferenced outside a pass (may be stale) */
    char *base;         /* "module.qualname" as computed for tp */
    char *name;         /* base, or base + "#n" when another live type has the same base */
    uint32_t type_id;   /* store id of name; UINT32_MAX until resolved */
    uint64_t epoch;     /* pass that last saw it */
    uint64_t count, bytes;
    pl_size_rule size;  /* how its instances are sized, decided once per pass */
} pl_type_entry;

/* A set of NUL-terminated strings owned elsewhere (open addressing on the
 * contents, with tombstones), so that name checks cost O(1). */
typedef struct pl_name_set {
    const char **slot;
    size_t cap, used, tombs;
} pl_name_set;

typedef struct pl_type_table {
    pl_type_entry *slots; /* open addressing on the type pointer; tp == NULL is empty */
    size_t cap;           /* power of two */
    size_t used;
    uint64_t epoch;       /* the current pass; callers increment it to start one */
    uint64_t ids_for;     /* serial of the store handle the type ids belong to */
    pl_name_set names;    /* every entry's display name */
    pl_buf scratch;
} pl_type_table;

/* The entry of tp for the current pass (counts reset when first met in the
 * pass, name re-validated since a freed type's address can be reused).
 * NULL when out of memory. GIL held. */
pl_type_entry *pl_typetable_lookup(pl_type_table *t, PyTypeObject *tp);

/* Removes the entries not seen in the current pass. No GIL needed. */
void pl_typetable_evict(pl_type_table *t);

/* Publishes the names the current pass gave to types sharing a base name,
 * for pl_type_named. GIL held. Out of memory leaves the previous names. */
void pl_typetable_publish(pl_type_table *t);

/* When the last published pass saw several live types sharing a base name,
 * finds the one it named `name` ("mod.T", "mod.T#2"): returns 1 and sets
 * *tp (compare it, never dereference it: the type may be gone since), else
 * 0. Thread-safe. */
int pl_type_named(const char *name, const PyTypeObject **tp);

/* In a fork child: forgets t and the published names without freeing them
 * (another thread may have been changing them at the fork), and re-creates
 * the lock. */
void pl_typetable_atfork_child(pl_type_table *t);

#endif
