/* Type names and their ids: global to the store, looked up through a
 * name hash that tolerates collisions; and the pruning of names that no
 * record uses (prune_types). An id is never given out twice: once names
 * were pruned, meta "typeid" keeps the highest id ever given out, so a
 * process that still holds a pruned id never finds it naming another type. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/hash.h"
#include "pyloot/proc.h"

/* Protects the fresh[] ring of every store of this process. */
static pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;

#define N_FRESH (sizeof ((pl_store *)0)->fresh / sizeof ((pl_store *)0)->fresh[0])

/* Records that ids first_id..last_id were just created. */
static void fresh_add(pl_store *s, uint32_t first_id, uint32_t last_id)
{
    pthread_mutex_lock(&fresh_lock);
    s->fresh[s->fresh_next % N_FRESH].ms = pl_now_ms();
    s->fresh[s->fresh_next % N_FRESH].first_id = first_id;
    s->fresh[s->fresh_next % N_FRESH].last_id = last_id;
    s->fresh_next++;
    pthread_mutex_unlock(&fresh_lock);
}

/* The id ranges created in the last FRESH_NAMES_MS, copied into out (at
 * least N_FRESH pairs); returns how many. Older ones beyond the last
 * N_FRESH creations are forgotten: they may be pruned sooner. */
static size_t fresh_ranges(pl_store *s, uint32_t (*out)[2])
{
    int64_t now = pl_now_ms();
    size_t i, n = 0;

    pthread_mutex_lock(&fresh_lock);
    for (i = 0; i < N_FRESH; i++)
        if (s->fresh[i].ms && now - s->fresh[i].ms < FRESH_NAMES_MS) {
            out[n][0] = s->fresh[i].first_id;
            out[n][1] = s->fresh[i].last_id;
            n++;
        }
    pthread_mutex_unlock(&fresh_lock);
    return n;
}

/* FNV-1a, then a murmur finalizer so that the high bytes (the key prefix)
 * are well mixed. Collisions are handled by the lookup, not avoided. */
static uint64_t name_hash(const pl_store *s, const char *p, size_t n)
{
    return s->collide_hashes ? 42 : pl_hash_mix(pl_fnv1a64(p, n));
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
    uint32_t next_id = 1, first_new = 0;
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
    next_id = max_type_id(s, txn) + 1;
    first_new = next_id;
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
    if (rc == 0 && next_id > first_new)
        fresh_add(s, first_new, next_id - 1);
    goto out;
abort:
    mdb_cursor_close(cur);
    mdb_cursor_close(tcur);
    txn_abort(s, txn);
out:
    return rc;
}

static const char TYPEID_KEY[] = "typeid";

/* Highest type id given out (0 when none): the last name's, or meta
 * "typeid" when names were pruned since. */
uint32_t max_type_id(pl_store *s, MDB_txn *txn)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint32_t id = 0, hw;

    if (mdb_cursor_open(txn, s->types, &cur) == 0) {
        if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 4)
            id = get_be32(k.mv_data);
        mdb_cursor_close(cur);
    }
    k.mv_size = sizeof TYPEID_KEY - 1;
    k.mv_data = (void *)TYPEID_KEY;
    if (mdb_get(txn, s->meta, &k, &v) == 0 && v.mv_size == 4) {
        memcpy(&hw, v.mv_data, 4);
        if (hw > id)
            id = hw;
    }
    return id;
}

/* ------------------------------------------------------- pruning names */

#define BIT_SET(m, i) ((m)[(i) >> 3] |= (uint8_t)(1u << ((i) & 7)))
#define BIT_GET(m, i) (((m)[(i) >> 3] >> ((i) & 7)) & 1u)

/* Marks in `used` (hw + 1 bits) the ids of every packed value of dbi
 * (log or snap: the first id is the key's last 4 bytes). */
static int mark_packed(MDB_txn *txn, MDB_dbi dbi, size_t keylen, uint8_t *used, uint32_t hw)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct packed pk;
    uint64_t count, bytes;
    uint32_t id;
    size_t i;
    int rc = mdb_cursor_open(txn, dbi, &cur);

    for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != keylen ||
            packed_open(&pk, get_be32((const uint8_t *)k.mv_data + keylen - 4), &v) != 0)
            continue;
        for (i = 0; i < pk.n; i++) {
            packed_get(&pk, i, &id, &count, &bytes);
            if (id <= hw)
                BIT_SET(used, id);
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Marks the ids of every chunk-group value of one window level (keys
 * inc(12) group(4) ...; id = group << shift | the entry's low bits). */
static int mark_chunks(MDB_txn *txn, MDB_dbi dbi, unsigned shift, uint8_t *used, uint32_t hw)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct group_iter it;
    const uint8_t *data;
    size_t len;
    unsigned low;
    uint32_t group, id;
    int rc = mdb_cursor_open(txn, dbi, &cur);

    for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != CHUNK_KEY)
            continue;
        group = get_be32((const uint8_t *)k.mv_data + INC_KEY);
        group_iter_init(&it, &v);
        while (group_next(&it, &low, &data, &len) == 1) {
            id = (group << shift) | low;
            if (id <= hw)
                BIT_SET(used, id);
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Marks the type ids of the witnesses (keys type_id(4) ...). */
static int mark_witnesses(pl_store *s, MDB_txn *txn, uint8_t *used, uint32_t hw)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint32_t id;
    int rc;

    if (!s->witness)
        return 0;
    rc = mdb_cursor_open(txn, s->witness, &cur);
    for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 4)
            continue;
        id = get_be32(k.mv_data);
        if (id <= hw)
            BIT_SET(used, id);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

struct names_prune {
    const uint32_t *ids; /* to delete, ascending */
    size_t n, next;
    uint32_t hw;         /* written to meta "typeid" first */
    size_t deleted;
};

/* One batch of prune_types: the high-water mark, then up to `batch` names
 * (both records of each). A retried batch starts again where it did. */
static int names_step(pl_store *s, MDB_txn *txn, size_t batch, int retry, void *arg, int *done)
{
    struct names_prune *np = arg;
    uint8_t kb[12];
    MDB_val k = {sizeof TYPEID_KEY - 1, (void *)TYPEID_KEY}, v = {4, &np->hw}, name;
    size_t i = np->next, end = np->next + batch / 2 + 1;
    int rc = mdb_put(txn, s->meta, &k, &v, 0);

    (void)retry;
    for (; rc == 0 && i < np->n && i < end; i++) {
        put_be32(kb + 8, np->ids[i]);
        k.mv_size = 4;
        k.mv_data = kb + 8;
        rc = mdb_get(txn, s->types, &k, &name);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            break;
        put_be64(kb, name_hash(s, name.mv_data, name.mv_size));
        k.mv_size = 12;
        k.mv_data = kb;
        rc = mdb_del(txn, s->names, &k, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        k.mv_size = 4;
        k.mv_data = kb + 8;
        if (rc == 0)
            rc = mdb_del(txn, s->types, &k, NULL);
    }
    if (rc == 0) {
        np->deleted += i - np->next;
        np->next = i;
        *done = i >= np->n;
    }
    return rc;
}

/* See store_int.h. */
int prune_types(pl_store *s, size_t *pruned)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t *used = NULL;
    uint32_t *ids = NULL, hw, id, fresh[N_FRESH][2];
    size_t n_fresh, f;
    size_t n = 0, cap = 0;
    struct names_prune np;
    int rc;

    *pruned = 0;
    if (!layout4(s) || s->read_only)
        return 0;
    /* Taken before the scan: a name created after it is above hw. */
    n_fresh = fresh_ranges(s, fresh);
    rc = txn_begin(s, 0, &txn);
    if (rc)
        goto out;
    hw = max_type_id(s, txn);
    used = calloc((size_t)hw / 8 + 1, 1);
    if (!used) {
        rc = ENOMEM;
        goto abort;
    }
    if ((rc = mark_packed(txn, s->log, LOG_KEY, used, hw)) || (rc = mark_packed(txn, s->snap, SNAP_KEY, used, hw)) ||
        (rc = mark_chunks(txn, s->chunks, GROUP_SHIFT, used, hw)) ||
        (rc = mark_chunks(txn, s->chunks2, GROUP2_SHIFT, used, hw)) || (rc = mark_witnesses(s, txn, used, hw)))
        goto abort;
    rc = mdb_cursor_open(txn, s->types, &cur);
    for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 4)
            continue;
        id = get_be32(k.mv_data);
        if (id > hw)
            break;
        if (BIT_GET(used, id))
            continue;
        for (f = 0; f < n_fresh && (id < fresh[f][0] || id > fresh[f][1]); f++)
            ;
        if (f < n_fresh)
            continue;
        if ((rc = array_reserve(&ids, &cap, n + 1, sizeof *ids, 256)))
            goto abort;
        ids[n++] = id;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (rc != MDB_NOTFOUND && rc != 0)
        goto abort;
    txn_abort(s, txn);
    txn = NULL;
    rc = 0;
    if (!n)
        goto out;
    np = (struct names_prune){ids, n, 0, hw, 0};
    rc = batched_delete(s, names_step, &np);
    *pruned = np.deleted;
    goto out;
abort:
    mdb_cursor_close(cur);
    txn_abort(s, txn);
out:
    free(used);
    free(ids);
    return rc;
}
