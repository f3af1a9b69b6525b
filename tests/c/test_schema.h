/* For the C tests of the store's schema migrations: rewrites a closed store
 * into what an older pyloot wrote. Include after test.h; needs liblmdb. */
#ifndef PYLOOT_TEST_SCHEMA_H
#define PYLOOT_TEST_SCHEMA_H

#include <lmdb.h>
#include <stdint.h>
#include <string.h>

#include "test.h"

/* Writes meta "schema" = version into the closed store at dir and cuts
 * `cut` bytes off the end of every procs record (the fields later schemas
 * appended; 0 leaves them as they are). Below 4, the chunk tables get their
 * old names; below 5, the table `memory` goes; below 6, the tables of
 * requests by route. */
static inline void rewrite_schema(const char *dir, uint32_t version, size_t cut)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta, procs;
    MDB_cursor *cur = NULL;
    MDB_val k = {6, "schema"}, v = {4, &version}, rk, rv;
    CHECK_OK(mdb_env_create(&env));
    mdb_env_set_maxdbs(env, 32);
    mdb_env_set_mapsize(env, 1u << 30);
    CHECK_OK(mdb_env_open(env, dir, MDB_NOTLS, 0600));
    CHECK_OK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK_OK(mdb_dbi_open(txn, "meta", 0, &meta));
    CHECK_OK(mdb_dbi_open(txn, "procs", 0, &procs));
    CHECK_OK(mdb_put(txn, meta, &k, &v, 0));
    if (version < 4) {
        /* Schemas 1-3 name the chunk tables chunks and chunks2. Their
         * entries move as they are: a test that writes samples for an old
         * store writes them with pl_store_test_schema (old keys). */
        const char *from[2] = {"ichunks", "ichunks2"}, *to[2] = {"chunks", "chunks2"};
        for (int i = 0; i < 2; i++) {
            MDB_dbi src, dst;
            CHECK_OK(mdb_dbi_open(txn, from[i], 0, &src));
            CHECK_OK(mdb_dbi_open(txn, to[i], MDB_CREATE, &dst));
            CHECK_OK(mdb_cursor_open(txn, src, &cur));
            while (mdb_cursor_get(cur, &rk, &rv, MDB_NEXT) == 0)
                CHECK_OK(mdb_put(txn, dst, &rk, &rv, 0));
            mdb_cursor_close(cur);
            CHECK_OK(mdb_drop(txn, src, 1));
        }
    }
    if (version < 5) {
        /* Schema 5 added the table `memory`. */
        MDB_dbi mem;
        if (mdb_dbi_open(txn, "memory", 0, &mem) == 0)
            CHECK_OK(mdb_drop(txn, mem, 1));
    }
    if (version < 6) {
        /* Schema 6 added the tables of requests by route. */
        static const char *const tables[] = {"routes", "routeids", "routenames"};
        for (size_t i = 0; i < 3; i++) {
            MDB_dbi dbi;
            if (mdb_dbi_open(txn, tables[i], 0, &dbi) == 0)
                CHECK_OK(mdb_drop(txn, dbi, 1));
        }
    }
    if (cut) {
        /* Copied out first, then written back: a put at another size moves
         * the record, and a cursor walking the table while it does could
         * visit one twice. */
        static char keys[64][16], vals[64][1024];
        size_t sizes[64], n = 0;
        CHECK_OK(mdb_cursor_open(txn, procs, &cur));
        while (n < 64 && mdb_cursor_get(cur, &rk, &rv, MDB_NEXT) == 0 && rk.mv_size <= 16 &&
               rv.mv_size <= sizeof vals[0]) {
            memcpy(keys[n], rk.mv_data, rk.mv_size);
            memcpy(vals[n], rv.mv_data, rv.mv_size);
            sizes[n++] = rk.mv_size | (rv.mv_size << 8);
        }
        mdb_cursor_close(cur);
        for (size_t i = 0; i < n; i++) {
            MDB_val nk = {sizes[i] & 0xff, keys[i]}, nv = {(sizes[i] >> 8) - cut, vals[i]};
            CHECK_OK(mdb_put(txn, procs, &nk, &nv, 0));
        }
    }
    CHECK_OK(mdb_txn_commit(txn));
    mdb_env_close(env);
}

#endif
