/* Opening and closing a store: the LMDB environment, its tables, the schema
 * (and its migration, migrate.c), the handle's lifetime (close, forget
 * after fork), the test hooks of a handle, and the note of a store started
 * in place of a damaged one (recover.c writes it). */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include "pyloot/error.h"

/* Opens the chunk tables (open_dbs' transaction, s->schema set):
 * ichunks and ichunks2, or chunks and chunks2 of an older store opened
 * read-only. */
static int open_chunks(pl_store *s, MDB_txn *txn, unsigned flags)
{
    int old = !layout4(s);
    int rc = mdb_dbi_open(txn, old ? "chunks" : "ichunks", flags, &s->chunks);

    return rc ? rc : mdb_dbi_open(txn, old ? "chunks2" : "ichunks2", flags, &s->chunks2);
}

static int open_dbs(pl_store *s)
{
    MDB_txn *txn = NULL;
    unsigned flags = s->read_only ? 0 : MDB_CREATE;
    MDB_val k, v;
    uint8_t schema[4];
    uint32_t version;
    int rc;

    rc = txn_begin(s, !s->read_only, &txn);
    if (rc)
        goto out;
    if ((rc = mdb_dbi_open(txn, "meta", flags, &s->meta)) ||
        (rc = mdb_dbi_open(txn, "procs", flags, &s->procs)) ||
        (rc = mdb_dbi_open(txn, "types", flags, &s->types)) ||
        (rc = mdb_dbi_open(txn, "typenames", flags, &s->names)) ||
        (rc = mdb_dbi_open(txn, "log", flags, &s->log)) ||
        (rc = mdb_dbi_open(txn, "windows", flags, &s->windows)) ||
        (rc = mdb_dbi_open(txn, "snap", flags, &s->snap)) ||
        (rc = mdb_dbi_open(txn, "mailbox", flags, &s->mailbox)))
        goto abort;
    /* Added after schema 1 without a bump: older readers ignore it, and a
     * read-only open of an older store has no witnesses. */
    rc = mdb_dbi_open(txn, "witness", flags, &s->witness);
    if (rc == MDB_NOTFOUND && s->read_only)
        s->witness = 0;
    else if (rc)
        goto abort;
    /* Schema 5: a read-only open of an older store has no memory figures. */
    rc = mdb_dbi_open(txn, "memory", flags, &s->memory);
    if (rc == MDB_NOTFOUND && s->read_only)
        s->memory = 0;
    else if (rc)
        goto abort;
    /* Schema 6: a read-only open of an older store has no requests by route. */
    rc = mdb_dbi_open(txn, "routes", flags, &s->routes);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "routeids", flags, &s->routeids);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "routenames", flags, &s->routenames);
    if (rc == MDB_NOTFOUND && s->read_only)
        s->routes = s->routeids = s->routenames = 0;
    else if (rc)
        goto abort;
    k.mv_data = "schema";
    k.mv_size = 6;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND && !s->read_only) {
        memcpy(schema, &(uint32_t){SCHEMA_VERSION}, 4);
        v.mv_data = schema;
        v.mv_size = 4;
        rc = mdb_put(txn, s->meta, &k, &v, 0);
        if (rc)
            goto abort;
        s->schema = SCHEMA_VERSION;
    } else if (rc) {
        goto abort;
    } else {
        if (v.mv_size != 4) {
            rc = PL_ESCHEMA;
            goto abort;
        }
        memcpy(&version, v.mv_data, 4);
        if (version < SCHEMA_OLDEST || version > SCHEMA_VERSION) {
            rc = PL_ESCHEMA;
            goto abort;
        }
        if (version < SCHEMA_VERSION && !s->read_only) {
            /* Migration: schemas 2 and 3 only appended fields to procs
             * records (worker_start; collection_us, gil_held_us), which
             * rec_decode reads at any of the sizes; records are rewritten
             * at the new size when next updated. Schema 4 changed the
             * layout of the log, the snapshots and the chunk tables:
             * migrate_layout4 rewrites them here. Schema 5 added the
             * table `memory` (created above; older samples have no
             * figures), so writing the version is its whole migration.
             * Schema 6 added the tables `routes`, `routeids` and
             * `routenames` (created above; older samples have no requests
             * by route): the same. */
            if (version < PACKED_SCHEMA && (rc = migrate_layout4(s, txn)))
                goto abort;
            memcpy(schema, &(uint32_t){SCHEMA_VERSION}, 4);
            v.mv_data = schema;
            v.mv_size = 4;
            rc = mdb_put(txn, s->meta, &k, &v, 0);
            if (rc)
                goto abort;
        }
        s->schema = version < SCHEMA_VERSION && s->read_only ? version : SCHEMA_VERSION;
    }
    rc = open_chunks(s, txn, flags);
    if (rc)
        goto abort;
    rc = txn_commit(s, txn);
    txn = NULL;
    goto out;
abort:
    txn_abort(s, txn);
out:
    return rc;
}

/* The part of the open that reads the map (guarded by pl_store_open):
 * clears dead readers and opens (creating, migrating) the databases. */
int open_unguarded(pl_store *s)
{
    int rc, tries, dead = 0;

    /* Readers left behind by killed processes pin old pages; clear them. */
    mdb_reader_check(s->env, &dead);
    /* A migration to schema 4 holds a second copy of the chunks until its
     * commit: when the map is too small for that, grow it and try again. */
    for (tries = 0; (rc = open_dbs(s)) == MDB_MAP_FULL && !s->read_only && tries < 3; tries++) {
        MDB_envinfo info;

        if (mdb_env_info(s->env, &info) || mdb_env_set_mapsize(s->env, info.me_mapsize * 2))
            break;
        guard_map_update(s);
    }
    return rc;
}

/* Opens the store (see store.h). MDB_NOMETASYNC: the meta page is written
 * but not fsynced at commit; the next commit's data sync covers it. A system
 * crash can lose the last transaction, never corrupt the file, and it saves
 * one of the two fsyncs of every commit. */
int pl_store_open(pl_store **out, const pl_store_options *opt)
{
    return store_open(out, opt, NULL, 0);
}

/* See store_int.h. */
int store_open(pl_store **out, const pl_store_options *opt, char *why, size_t len)
{
    pl_store *s = NULL;
    unsigned flags = MDB_NOTLS | MDB_NOMETASYNC;
    int rc = 0;
    int locks = 0, mapped = 0;

    *out = NULL;
    if (why && len)
        why[0] = 0;
    if (!opt || !opt->path || !*opt->path) {
        rc = PL_EBADARG;
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        rc = ENOMEM;
        goto out;
    }
    s->fd = -1;
    s->path = strdup(opt->path);
    if (!s->path) {
        rc = ENOMEM;
        goto fail;
    }
    s->read_only = opt->read_only != 0;
    s->map_size = opt->map_size ? opt->map_size : DEFAULT_MAP_SIZE;
    s->max_samples = opt->max_samples ? opt->max_samples : DEFAULT_MAX_SAMPLES;
    s->max_age_s = opt->max_age_s ? opt->max_age_s : DEFAULT_MAX_AGE_S;
    s->max_bytes = opt->max_bytes;
    if (pthread_rwlock_init(&s->resize_lock, NULL) != 0) {
        rc = ENOMEM;
        goto fail;
    }
    if (pthread_mutex_init(&s->prune_lock, NULL) != 0) {
        pthread_rwlock_destroy(&s->resize_lock);
        rc = ENOMEM;
        goto fail;
    }
    locks = 1;
    if (!s->read_only && mkdir(s->path, 0700) != 0 && errno != EEXIST) {
        rc = errno;
        goto fail;
    }
    if (s->read_only)
        flags |= MDB_RDONLY;
    if ((rc = mdb_env_create(&s->env)))
        goto fail;
    /* Its assertions jump through the guard rather than abort() (guard.c). */
    mdb_env_set_assert(s->env, guard_on_assert);
    if ((rc = mdb_env_set_maxdbs(s->env, 32)) ||
        (rc = mdb_env_set_maxreaders(s->env, 1022)) ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)s->map_size)))
        goto fail_env;
    /* mdb_env_open reads the meta pages with pread(), never through the map. */
    if ((rc = mdb_env_open(s->env, s->path, flags, 0600)))
        goto fail_env;
    if ((rc = guard_attach(s)))
        goto fail_env; /* nothing read through the map yet: closing is safe */
    mapped = 1;
    rc = STORE_GUARDED(s, open_unguarded(s));
    if (rc)
        goto fail_env;
    *out = s;
    goto out;
fail_env:
    if (mapped && pl_store_damaged(s, why, len)) {
        /* Abandoned, never closed: see guard.c. Its memory and descriptors
         * are leaked on purpose (the caller moves the store aside). */
        rc = PL_EDAMAGED;
        goto out;
    }
    if (rc == PL_EDAMAGED && why && len)
        pl_store_damaged(s, why, len);
    mdb_env_close(s->env);
fail:
    if (locks) {
        pthread_mutex_destroy(&s->prune_lock);
        pthread_rwlock_destroy(&s->resize_lock);
    }
    free(s->data_path);
    free(s->path);
    free(s);
out:
    return rc;
}

/* Closes the env and frees the handle (see store.h). A handle given up
 * after damage is left as it is: see guard.c. */
void pl_store_close(pl_store *s)
{
    if (s && !pl_store_damaged(s, NULL, 0)) {
        mdb_env_close(s->env);
        pthread_mutex_destroy(&s->prune_lock);
        pthread_rwlock_destroy(&s->resize_lock);
        free(s->data_path);
        free(s->path);
        free(s);
    }
}

/* Deliberately leaks the inherited handle: closing an env inherited through
 * fork() would release the parent's file locks (see store.h). */
void pl_store_forget(pl_store *s)
{
    (void)s;
}

/* The environment directory, owned by the store. */
const char *pl_store_path(const pl_store *s)
{
    return s->path;
}

/* Test hook (see store.h). */
void pl_store_test_collide_hashes(pl_store *s, int on)
{
    s->collide_hashes = on != 0;
}

void pl_store_test_schema(pl_store *s, uint32_t schema)
{
    s->schema = schema;
}

/* ---------------------------------------------------------- recovery note */

/* The meta key of the note a store started in place of a damaged one keeps. */
#define RECOVERY_KEY "recovered"

/* See verify.h. Value: when_ms (8, host order), moved_to, NUL, reason. */
int note_recovery_unguarded(pl_store *s, const char *moved_to, const char *reason, int64_t when_ms)
{
    size_t a = strlen(moved_to), b = strlen(reason);
    uint8_t buf[PART_MAX];
    MDB_val k = {sizeof RECOVERY_KEY - 1, RECOVERY_KEY}, v;
    MDB_txn *txn = NULL;
    int rc;

    if (a > 1200)
        a = 1200;
    if (8 + a + 1 + b > sizeof buf)
        b = sizeof buf - 8 - a - 1;
    memcpy(buf, &when_ms, 8);
    memcpy(buf + 8, moved_to, a);
    buf[8 + a] = 0;
    memcpy(buf + 9 + a, reason, b);
    v.mv_data = buf;
    v.mv_size = 9 + a + b;
    rc = txn_begin(s, 1, &txn);
    if (rc == 0)
        rc = txn_end(s, txn, mdb_put(txn, s->meta, &k, &v, 0));
    return rc;
}

/* See verify.h. */
int recovery_unguarded(pl_store *s, pl_buf *moved_to, pl_buf *reason, int64_t *when_ms)
{
    MDB_val k = {sizeof RECOVERY_KEY - 1, RECOVERY_KEY}, v;
    MDB_txn *txn = NULL;
    const uint8_t *p, *nul;
    int rc = txn_begin(s, 0, &txn);

    if (rc)
        return rc;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rc = PL_ENOTFOUND;
    } else if (rc == 0) {
        p = v.mv_data;
        nul = v.mv_size > 8 ? memchr(p + 8, 0, v.mv_size - 8) : NULL;
        if (!nul) {
            rc = PL_ECORRUPT;
        } else {
            memcpy(when_ms, p, 8);
            pl_buf_append(moved_to, p + 8, (size_t)(nul - p - 8));
            pl_buf_cstr(moved_to);
            pl_buf_append(reason, nul + 1, v.mv_size - (size_t)(nul + 1 - p));
            pl_buf_cstr(reason);
            rc = moved_to->err || reason->err ? ENOMEM : 0;
        }
    }
    txn_abort(s, txn);
    return rc;
}
