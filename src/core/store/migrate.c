/* Migration of a store written by schemas 1-3 to schema 4 (docs/store.md):
 * packed log and snapshot values, chunk keys with the incarnation first. Run
 * once, by the first writable open (open.c), inside its transaction. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"

/* Schema migration to packed values: rewrites every sample of `dbi` (the
 * log, prefix inc + time, or the snapshots, prefix inc) from the older part
 * format, one sample at a time, inside txn. */
static int pack_log_values(MDB_txn *txn, MDB_dbi dbi, size_t plen)
{
    MDB_cursor *cur = NULL;
    struct sample smp;
    uint8_t lo[LOG_KEY], hi[LOG_KEY];
    MDB_val k, v;
    size_t deleted, i;
    int rc, more;

    memset(&smp, 0, sizeof smp);
    memset(lo, 0, sizeof lo);
    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        goto out;
    k.mv_size = plen + 4;
    k.mv_data = lo;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;) {
        if (k.mv_size != plen + 4) {
            rc = PL_ECORRUPT;
            break;
        }
        memcpy(lo, k.mv_data, plen);
        smp.n = 0;
        /* Decode (copy) every part of this sample before any write. */
        for (; rc == 0 && k.mv_size == plen + 4 && memcmp(k.mv_data, lo, plen) == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            rc = sample_add_part(&smp, 0, get_be32((const uint8_t *)k.mv_data + plen), &v);
            if (rc)
                goto out;
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
            break;
        memset(lo + plen, 0, 4);
        memcpy(hi, lo, plen);
        memset(hi + plen, 0xff, 4);
        deleted = 0;
        rc = del_range(cur, lo, plen + 4, hi, plen + 4, SIZE_MAX, &deleted, &more);
        if (rc == 0)
            rc = put_sample_parts(txn, dbi, 1, lo, plen, smp.e, smp.n);
        if (rc)
            break;
        /* On past this prefix: add 1 to it (big-endian). */
        for (i = plen; i > 0 && ++lo[i - 1] == 0; i--)
            ;
        if (i == 0)
            break;
        k.mv_size = plen + 4;
        k.mv_data = lo;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    mdb_cursor_close(cur);
    free(smp.e);
    return rc;
}

/* Copies every chunk of `from` (schemas 1-3: keys group first) into `to`
 * with its key inc first, then deletes `from`. */
static int rekey_chunks(MDB_txn *txn, MDB_dbi from, MDB_dbi to)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v, nk;
    uint8_t kb[CHUNK_KEY];
    int rc;

    rc = mdb_cursor_open(txn, from, &cur);
    if (rc)
        goto out;
    nk.mv_size = CHUNK_KEY;
    nk.mv_data = kb;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        const uint8_t *p = k.mv_data;

        if (k.mv_size != CHUNK_KEY) {
            rc = PL_ECORRUPT;
            goto out;
        }
        chunk_key(kb, 1, get_be32(p), p + 4, get_be64(p + 4 + INC_KEY), p[CHUNK_KEY - 1]);
        rc = mdb_put(txn, to, &nk, &v, 0);
        if (rc)
            goto out;
    }
    if (rc != MDB_NOTFOUND)
        goto out;
    mdb_cursor_close(cur);
    cur = NULL;
    rc = mdb_drop(txn, from, 1);
out:
    mdb_cursor_close(cur);
    return rc;
}

int migrate_layout4(pl_store *s, MDB_txn *txn)
{
    static const char *const tables[2][2] = {{"chunks", "ichunks"}, {"chunks2", "ichunks2"}};
    MDB_dbi from, to;
    int rc, i;

    rc = pack_log_values(txn, s->log, INC_KEY + 8);
    if (rc == 0)
        rc = pack_log_values(txn, s->snap, INC_KEY);
    for (i = 0; rc == 0 && i < 2; i++) {
        if ((rc = mdb_dbi_open(txn, tables[i][0], MDB_CREATE, &from)) == 0 &&
            (rc = mdb_dbi_open(txn, tables[i][1], MDB_CREATE, &to)) == 0)
            rc = rekey_chunks(txn, from, to);
    }
    return rc;
}
