/* The small store fixture of the C tests of tables written beside a sample
 * (test_memory.c, test_routes.c): open a store at a directory, register an
 * incarnation of host "testhost" seen at T0, and the id of one type. */
#ifndef PYLOOT_TEST_STORE_FIXTURE_H
#define PYLOOT_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "pyloot/store.h"
#include "test.h"

#define T0 1700000000000LL

static pl_store *open_at(const char *dir, int read_only, uint32_t max_samples)
{
    pl_store_options opt;
    pl_store *s = NULL;

    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    opt.read_only = read_only;
    opt.max_samples = max_samples;
    CHECK_OK(pl_store_open(&s, &opt));
    return s;
}

static void reg(pl_store *s, pl_incarnation inc)
{
    pl_proc_info info;

    memset(&info, 0, sizeof info);
    info.inc = inc;
    snprintf(info.host, sizeof info.host, "testhost");
    info.interval_ms = 1000;
    info.first_seen_ms = T0;
    info.last_seen_ms = T0;
    CHECK_OK(pl_store_register(s, &info));
}

/* The id of the type "m.Leak". */
static uint32_t one_type(pl_store *s)
{
    const char *names[1] = {"m.Leak"};
    size_t lens[1] = {6};
    uint32_t id = 0;

    CHECK_OK(pl_store_type_ids(s, names, lens, 1, &id));
    return id;
}

#endif
