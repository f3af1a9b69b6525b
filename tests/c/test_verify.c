/* Unit tests of the store check and the guarded open (verify.c, recover.c):
 * a damaged store is judged in a child (this process never crashes), moved
 * aside rather than deleted, noted in the new store; an unusable path gives a
 * message that says how to fix it; the handler answers 503 without a store. */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "pyloot/handler.h"
#include "pyloot/store.h"
#include "pyloot/verify.h"
#include "test.h"

#define PAGE 4096

/* A store of a few hundred pages: 2,000 types over 40 samples. */
static void fill_store(const char *path)
{
    pl_store_options opt;
    pl_store *s = NULL;
    pl_proc_info info;
    enum { TYPES = 2000 };
    static char names[TYPES][24];
    static const char *ptrs[TYPES];
    static size_t lens[TYPES];
    static uint32_t ids[TYPES];
    static pl_type_count counts[TYPES];

    memset(&opt, 0, sizeof opt);
    opt.path = path;
    CHECK_OK(pl_store_open(&s, &opt));
    if (!s)
        return;
    memset(&info, 0, sizeof info);
    CHECK_OK(pl_proc_self(&info.inc));
    info.interval_ms = 1000;
    info.first_seen_ms = 1000;
    CHECK_OK(pl_store_register(s, &info));
    for (int i = 0; i < TYPES; i++) {
        lens[i] = (size_t)snprintf(names[i], sizeof names[i], "mod.Type%d", i);
        ptrs[i] = names[i];
    }
    CHECK_OK(pl_store_type_ids(s, ptrs, lens, TYPES, ids));
    for (int t = 0; t < 40; t++) {
        for (int i = 0; i < TYPES; i++) {
            counts[i].type_id = ids[i];
            counts[i].count = (uint64_t)(i * 7 + t * (i % 5));
            counts[i].bytes = counts[i].count * 56;
        }
        CHECK_OK(pl_store_append(s, &info.inc, 1000 + t * 1000, counts, TYPES));
    }
    pl_store_close(s);
}

/* Overwrites all but the 16-byte header of the last `pages` pages with
 * garbage (a fixed sequence), as a torn copy or a disk error would. */
static void damage_tail(const char *path, int pages)
{
    char data[512];
    uint8_t buf[PAGE];
    uint32_t x = 9;
    struct stat st;
    FILE *f;

    snprintf(data, sizeof data, "%s/data.mdb", path);
    CHECK(stat(data, &st) == 0);
    f = fopen(data, "r+b");
    CHECK(f != NULL);
    if (!f)
        return;
    for (long pg = st.st_size / PAGE - pages; pg < st.st_size / PAGE; pg++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        fseek(f, pg * PAGE + 16, SEEK_SET);
        fwrite(buf, 1, PAGE - 16, f);
    }
    fclose(f);
}

static void truncate_data(const char *path)
{
    char data[512];

    snprintf(data, sizeof data, "%s/data.mdb", path);
    CHECK(truncate(data, 100) == 0);
}

static void test_sound(void)
{
    char dir[64], why[256];

    make_dir_at(dir, sizeof dir);
    fill_store(dir);
    CHECK_OK(pl_store_walk(dir, why, sizeof why));
    CHECK_OK(pl_store_verify(dir, 0, why, sizeof why));
    remove_dir(dir);
}

static void test_damaged(void)
{
    char dir[64], why[256];

    make_dir_at(dir, sizeof dir);
    fill_store(dir);
    damage_tail(dir, 12);
    /* Judged in a child: this process survives whatever the pages hold. */
    CHECK_EQ_INT(pl_store_verify(dir, 0, why, sizeof why), PL_EDAMAGED);
    CHECK(why[0] != 0);
    truncate_data(dir);
    CHECK_EQ_INT(pl_store_verify(dir, 0, why, sizeof why), PL_EDAMAGED);
    CHECK(strstr(why, "MDB_INVALID") != NULL);
    remove_dir(dir);
}

static void test_guarded_recovers(void)
{
    char dir[64], store[128], moved[4200];
    pl_store_options opt;
    pl_store_report rep;
    pl_store *s = NULL;
    pl_buf from = PL_BUF_INIT, reason = PL_BUF_INIT;
    int64_t when = 0;
    struct stat st;

    make_dir_at(dir, sizeof dir);
    snprintf(store, sizeof store, "%s/store", dir);
    fill_store(store);
    damage_tail(store, 12);
    memset(&opt, 0, sizeof opt);
    opt.path = store;

    /* Read-only (the CLI): reported, never moved. */
    opt.read_only = 1;
    CHECK_EQ_INT(pl_store_open_guarded(&s, &opt, 0, &rep), PL_EDAMAGED);
    CHECK(s == NULL && rep.moved_to[0] == 0);
    CHECK(strstr(rep.message, "is damaged") != NULL);
    CHECK(stat(store, &st) == 0);

    opt.read_only = 0;
    CHECK_OK(pl_store_open_guarded(&s, &opt, 0, &rep));
    CHECK(rep.checked);
    CHECK(strncmp(rep.moved_to, store, strlen(store)) == 0 && strstr(rep.moved_to, ".corrupt-"));
    snprintf(moved, sizeof moved, "%s/data.mdb", rep.moved_to);
    CHECK(stat(moved, &st) == 0 && st.st_size > 100 * PAGE); /* moved, not deleted */
    CHECK(s != NULL);
    if (s) {
        CHECK_OK(pl_store_recovery(s, &from, &reason, &when));
        CHECK_EQ_STR(pl_buf_cstr(&from), rep.moved_to);
        CHECK_EQ_STR(pl_buf_cstr(&reason), rep.reason);
        CHECK(when > 0);
        pl_store_close(s);
        s = NULL;
    }
    /* The new store is this server's: the marker vouches for it. */
    CHECK_OK(pl_store_open_guarded(&s, &opt, 0, &rep));
    CHECK(!rep.checked && !rep.moved_to[0]);
    pl_store_close(s);
    pl_buf_free(&from);
    pl_buf_free(&reason);
    remove_dir(dir);
}

static void test_unusable_path(void)
{
    char dir[64], file[128], store[160];
    pl_store_options opt;
    pl_store_report rep;
    pl_store *s = NULL;
    FILE *f;

    make_dir_at(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/a-file", dir);
    f = fopen(file, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    snprintf(store, sizeof store, "%s/store", file);
    memset(&opt, 0, sizeof opt);
    opt.path = store;
    CHECK_EQ_INT(pl_store_open_guarded(&s, &opt, 0, &rep), ENOTDIR);
    CHECK(strstr(rep.message, "Not a directory") && strstr(rep.message, "Fix:"));
    /* Fixed by the operator: the missing parents are created. */
    CHECK(unlink(file) == 0);
    CHECK_OK(pl_store_open_guarded(&s, &opt, 0, &rep));
    pl_store_close(s);
    remove_dir(dir);
}

/* A store of another schema is not damaged: it is reported (how to fix
 * it included) and left alone. */
static void test_other_schema(void)
{
    char dir[64];
    pl_store_options opt;
    pl_store_report rep;
    pl_store *s = NULL;
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta;
    uint32_t v99 = 99;
    MDB_val k = {6, "schema"}, v = {4, &v99};

    make_dir_at(dir, sizeof dir);
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    CHECK_OK(pl_store_open_guarded(&s, &opt, 0, &rep));
    pl_store_close(s);
    s = NULL;
    CHECK_OK(mdb_env_create(&env));
    CHECK_OK(mdb_env_set_maxdbs(env, 16));
    CHECK_OK(mdb_env_open(env, dir, 0, 0600));
    CHECK_OK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK_OK(mdb_dbi_open(txn, "meta", 0, &meta));
    CHECK_OK(mdb_put(txn, meta, &k, &v, 0));
    CHECK_OK(mdb_txn_commit(txn));
    mdb_env_close(env);
    CHECK_EQ_INT(pl_store_open_guarded(&s, &opt, 0, &rep), PL_ESCHEMA);
    CHECK(s == NULL && !rep.moved_to[0]);
    CHECK(strstr(rep.message, "incompatible") && strstr(rep.message, "Fix: move it away"));
    remove_dir(dir);
}

static void test_handler_unavailable(void)
{
    pl_handler_options hopt;
    pl_handler *h = NULL;
    pl_response resp;
    pl_request procs = {.method = "GET", .path = "/api/procs", .peer = "127.0.0.1"};
    pl_request ui = {.method = "GET", .path = "/"};

    memset(&hopt, 0, sizeof hopt);
    hopt.unavailable = "opening the store /x failed: Permission denied. Fix: chmod";
    CHECK_OK(pl_handler_new(&h, &hopt));
    if (!h)
        return;
    pl_handler_handle(h, &procs, &resp);
    CHECK_EQ_INT(resp.status, 503);
    CHECK(resp.body.data && strstr(pl_buf_cstr(&resp.body), "Permission denied. Fix: chmod"));
    pl_response_free(&resp);
    pl_handler_handle(h, &ui, &resp);
    CHECK_EQ_INT(resp.status, 200);
    pl_response_free(&resp);
    pl_handler_free(h);
}

/* Replaces the value of the first record of table `name` with `bad` (len
 * bytes) through LMDB itself: sound pages, a value no reader decodes. */
static void put_bad_value(const char *path, const char *name, int nth, const void *bad, size_t len)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    MDB_val k, v;
    uint8_t key[64];
    int rc;

    CHECK_OK(mdb_env_create(&env));
    CHECK_OK(mdb_env_set_maxdbs(env, 32));
    CHECK_OK(mdb_env_open(env, path, 0, 0600));
    CHECK_OK(mdb_txn_begin(env, NULL, 0, &txn));
    CHECK_OK(mdb_dbi_open(txn, name, 0, &dbi));
    CHECK_OK(mdb_cursor_open(txn, dbi, &cur));
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (int i = 0; rc == 0 && i < nth; i++)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    CHECK_OK(rc);
    CHECK(k.mv_size <= sizeof key);
    memcpy(key, k.mv_data, k.mv_size);
    mdb_cursor_close(cur);
    k.mv_data = key;
    v.mv_data = (void *)bad;
    v.mv_size = len;
    CHECK_OK(mdb_put(txn, dbi, &k, &v, 0));
    CHECK_OK(mdb_txn_commit(txn));
    mdb_env_close(env);
}

/* Records that do not decode on sound pages: the walk decodes them and says
 * which table and key; a read-only open goes on (the CLI reports around
 * them); a server's open moves the store aside as damaged. */
static void test_records_damaged(void)
{
    char dir[64], store[128], why[480], want[64];
    static const uint8_t bad_log[] = {0xff, 1, 2, 3};      /* a packed header no schema writes */
    static const uint8_t bad_chunk[] = {3, 0x7f, 1, 2};    /* a type entry longer than the value */
    pl_store_options opt;
    pl_store_report rep;
    pl_store_damage d;
    pl_incarnation self;
    pl_store *s = NULL;

    make_dir_at(dir, sizeof dir);
    snprintf(store, sizeof store, "%s/store", dir);
    fill_store(store);
    CHECK_OK(pl_store_walk(store, why, sizeof why));
    put_bad_value(store, "log", 0, bad_log, sizeof bad_log);
    put_bad_value(store, "ichunks", 3, bad_chunk, sizeof bad_chunk);
    CHECK_OK(pl_proc_self(&self));
    snprintf(want, sizeof want, "key incarnation %u/%llu time ", self.pid, (unsigned long long)self.start);

    CHECK_EQ_INT(pl_store_walk(store, why, sizeof why), PL_ECORRUPT);
    CHECK(strstr(why, "2 records could not be read (first: table log, ") != NULL);
    CHECK(strstr(why, want) != NULL);
    CHECK(strstr(why, "its type counts do not decode") != NULL);
    CHECK_EQ_INT(pl_store_verify(store, 0, why, sizeof why), PL_ECORRUPT);
    CHECK(strstr(why, "2 records could not be read") != NULL);

    /* Read-only (the CLI): opened, and the records are counted in-process. */
    memset(&opt, 0, sizeof opt);
    opt.path = store;
    opt.read_only = 1;
    CHECK_OK(pl_store_open_guarded(&s, &opt, 0, &rep));
    CHECK(s != NULL && rep.moved_to[0] == 0 && rep.records_damaged);
    CHECK(strstr(rep.reason, "could not be read") != NULL);
    if (s) {
        CHECK_OK(pl_store_check_records(s, &d));
        CHECK_EQ_INT((int)d.records, 2);
        CHECK(strncmp(d.first, "table log, key incarnation ", 27) == 0);
        pl_store_close(s);
        s = NULL;
    }

    /* A server's open: not trusted, moved aside, a new store started. */
    opt.read_only = 0;
    CHECK_OK(pl_store_open_guarded(&s, &opt, 0, &rep));
    CHECK(rep.checked && strstr(rep.moved_to, ".corrupt-") != NULL);
    CHECK(strstr(rep.reason, "table log") != NULL);
    if (s) {
        CHECK_OK(pl_store_check_records(s, &d));
        CHECK_EQ_INT((int)d.records, 0);
        pl_store_close(s);
    }
    remove_dir(dir);
}

/* Runs one raw write on the closed store at path: schema != 0 sets meta's
 * schema, drop names a table to delete. */
static void raw_edit(const char *path, uint32_t schema, const char *drop)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k = {6, "schema"}, v = {4, &schema};

    CHECK_OK(mdb_env_create(&env));
    CHECK_OK(mdb_env_set_maxdbs(env, 32));
    CHECK_OK(mdb_env_open(env, path, 0, 0600));
    CHECK_OK(mdb_txn_begin(env, NULL, 0, &txn));
    if (schema) {
        CHECK_OK(mdb_dbi_open(txn, "meta", 0, &dbi));
        CHECK_OK(mdb_put(txn, dbi, &k, &v, 0));
    }
    if (drop) {
        CHECK_OK(mdb_dbi_open(txn, drop, 0, &dbi));
        CHECK_OK(mdb_drop(txn, dbi, 1));
    }
    CHECK_OK(mdb_txn_commit(txn));
    mdb_env_close(env);
}

/* A table the schema always has, gone (a damaged name in the main
 * database): damaged. A newer schema's records: not ours to decode. */
static void test_tables_and_schema(void)
{
    static const uint8_t bad_log[] = {0xff, 1, 2, 3};
    char dir[64], why[480];

    make_dir_at(dir, sizeof dir);
    fill_store(dir);
    raw_edit(dir, 0, "snap");
    CHECK_EQ_INT(pl_store_walk(dir, why, sizeof why), PL_EDAMAGED);
    CHECK_EQ_STR(why, "table snap is missing");
    CHECK_EQ_INT(pl_store_verify(dir, 0, why, sizeof why), PL_EDAMAGED);
    remove_dir(dir);

    make_dir_at(dir, sizeof dir);
    fill_store(dir);
    put_bad_value(dir, "log", 0, bad_log, sizeof bad_log);
    CHECK_EQ_INT(pl_store_walk(dir, why, sizeof why), PL_ECORRUPT);
    raw_edit(dir, 99, NULL);
    CHECK_OK(pl_store_walk(dir, why, sizeof why));
    remove_dir(dir);
}

int main(void)
{
    RUN(test_sound);
    RUN(test_damaged);
    RUN(test_records_damaged);
    RUN(test_tables_and_schema);
    RUN(test_guarded_recovers);
    RUN(test_unusable_path);
    RUN(test_other_schema);
    RUN(test_handler_unavailable);
    return TEST_EXIT();
}
