/* Type names and their ids: global to the store, looked up through a
 * name hash that tolerates collisions. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

/* FNV-1a, then a murmur finalizer so that the high bytes (the key prefix)
 * are well mixed. Collisions are handled by the lookup, not avoided. */
static uint64_t name_hash(const pl_store *s, const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return s->collide_hashes ? 42 : h;
}

/* ----------------------------------------------------------------- types */

/* Finds `name` among the typenames records with its hash. 0 and *id, or
 * MDB_NOTFOUND. */
static int name_lookup(pl_store *s, MDB_cursor *cur, const char *name, size_t len, uint32_t *id)
{
    uint8_t kb[12];
    MDB_val k = {12, kb}, v;
    int rc;

    put_be64(kb, name_hash(s, name, len));
    put_be32(kb + 8, 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || memcmp(k.mv_data, kb, 8) != 0) {
            rc = MDB_NOTFOUND;
            break;
        }
        if (v.mv_size == len && memcmp(v.mv_data, name, len) == 0) {
            *id = get_be32((const uint8_t *)k.mv_data + 8);
            break;
        }
    }
    return rc;
}

/* See store_int.h. */
int type_find(pl_store *s, MDB_txn *txn, const char *name, size_t len, uint32_t *id)
{
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, s->names, &cur);

    if (rc == 0)
        rc = name_lookup(s, cur, name, len, id);
    mdb_cursor_close(cur);
    return rc;
}

/* Looks up or creates type ids (see store.h). The common case (all names
 * known) needs only a read transaction. */
int type_ids_unguarded(pl_store *s, const char *const *names, const size_t *lens, size_t n,
                      uint32_t *ids)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL, *tcur = NULL;
    size_t i, missing = 0;
    uint32_t next_id = 1;
    MDB_val k, v;
    uint8_t kb[12];
    int rc = 0;

    for (i = 0; i < n; i++) {
        if (lens[i] == 0 || lens[i] > PL_TYPE_NAME_MAX) {
            rc = lens[i] ? PL_ETOOBIG : PL_EBADARG;
            goto out;
        }
    }
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    rc = mdb_cursor_open(txn, s->names, &cur);
    if (rc)
        goto abort;
    for (i = 0; i < n; i++) {
        ids[i] = 0;
        rc = name_lookup(s, cur, names[i], lens[i], &ids[i]);
        if (rc == MDB_NOTFOUND)
            missing++;
        else if (rc)
            goto abort;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    txn_abort(s, txn);
    txn = NULL;
    rc = 0;
    if (!missing)
        goto out;

    rc = txn_begin(s, 1, &txn);
    if (rc)
        goto out;
    if ((rc = mdb_cursor_open(txn, s->names, &cur)) || (rc = mdb_cursor_open(txn, s->types, &tcur)))
        goto abort;
    rc = mdb_cursor_get(tcur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 4)
        next_id = get_be32(k.mv_data) + 1;
    else if (rc != MDB_NOTFOUND && rc != 0)
        goto abort;
    for (i = 0; i < n; i++) {
        if (ids[i])
            continue;
        rc = name_lookup(s, cur, names[i], lens[i], &ids[i]);
        if (rc == 0)
            continue;
        if (rc != MDB_NOTFOUND)
            goto abort;
        if (next_id >= WIDE_BASE) {
            rc = PL_ETOOBIG;
            goto abort;
        }
        ids[i] = next_id++;
        put_be64(kb, name_hash(s, names[i], lens[i]));
        put_be32(kb + 8, ids[i]);
        k.mv_size = 12;
        k.mv_data = kb;
        v.mv_size = lens[i];
        v.mv_data = (void *)names[i];
        if ((rc = mdb_put(txn, s->names, &k, &v, 0)))
            goto abort;
        k.mv_size = 4;
        k.mv_data = kb + 8;
        if ((rc = mdb_put(txn, s->types, &k, &v, 0)))
            goto abort;
    }
    mdb_cursor_close(cur);
    mdb_cursor_close(tcur);
    cur = tcur = NULL;
    rc = txn_commit(s, txn);
    txn = NULL;
    goto out;
abort:
    mdb_cursor_close(cur);
    mdb_cursor_close(tcur);
    txn_abort(s, txn);
out:
    return rc;
}

/* Highest type id in use (0 when none). */
uint32_t max_type_id(pl_store *s, MDB_txn *txn)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint32_t id = 0;

    if (mdb_cursor_open(txn, s->types, &cur) == 0) {
        if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 4)
            id = get_be32(k.mv_data);
        mdb_cursor_close(cur);
    }
    return id;
}
