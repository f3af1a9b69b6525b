/* The trend rule (trend.c) on synthetic series: steady growth, growth in
 * steps, a cache that fills then stays flat, garbage that comes and goes,
 * falling, too few points, gaps; the trend= list parser; and the trends
 * of a history query (merged, per worker, filtered, paged). */
#include "test.h"

#include <stdint.h>
#include <unistd.h>

#include "pyloot/store.h"
#include "pyloot/trend.h"

#define N 60

static int trend_of(const int64_t *s, size_t n)
{
    int t = -1;

    CHECK_OK(pl_trend_classify(s, n, &t));
    return t;
}

/* A small deterministic generator (test series only). */
static uint32_t next_rand(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static void test_steady(void)
{
    int64_t s[N];

    for (int i = 0; i < N; i++)
        s[i] = 100 + 3 * i;
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_GROWING);
    /* One new object per point, from nothing. */
    for (int i = 0; i < N; i++)
        s[i] = i;
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_GROWING);
}

static void test_steps(void)
{
    int64_t s[N];

    /* Steps of 50 every 6, 12 and 20 points: a pause as long as the flat
     * end is no reason to call it levelled. */
    for (int period = 6; period <= 20; period += period == 6 ? 6 : 8) {
        for (int i = 0; i < N; i++)
            s[i] = 1000 + 50 * (i / period);
        CHECK_EQ_INT(trend_of(s, N), PL_TREND_GROWING);
    }
    /* Steps every 5 points, each one in a burst over two points. */
    for (int i = 0; i < N; i++)
        s[i] = 1000 + 40 * (i / 5) + (i % 5 == 4 ? 20 : 0);
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_GROWING);
}

static void test_filled_then_flat(void)
{
    int64_t s[N];
    uint32_t r = 7;

    /* A cache of 100 entries filled over the first third, then full. */
    for (int i = 0; i < N; i++)
        s[i] = 500 + (i < 20 ? 5 * i : 100);
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_LEVELLED);
    /* The same with garbage that comes and goes on top. */
    for (int i = 0; i < N; i++)
        s[i] = 500 + (i < 20 ? 5 * i : 100) + (int64_t)(next_rand(&r) % 8);
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_LEVELLED);
    /* Filled in steps, then flat for longer than any pause before. */
    for (int i = 0; i < N; i++)
        s[i] = 500 + (i < 30 ? 20 * (i / 5) : 120);
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_LEVELLED);
    /* Full, then a few more near the end (6 % of the fill: objects that a
     * later request keeps, outside the cache): still levelled. */
    for (int i = 0; i < N; i++)
        s[i] = 500 + (i < 20 ? 5 * i : 100) + (i >= N - 6 ? 6 : 0);
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_LEVELLED);
    /* Filled until the last sixth: too soon to call it levelled. */
    for (int i = 0; i < N; i++)
        s[i] = 500 + (i < 50 ? 2 * i : 100);
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_GROWING);
    /* Filled before the window: flat. */
    for (int i = 0; i < N; i++)
        s[i] = 600;
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_FLAT);
}

static void test_noise(void)
{
    int64_t s[N];

    for (uint32_t seed = 1; seed <= 200; seed++) {
        uint32_t r = seed;

        /* Uniform garbage of up to 200 objects over 1000 stable ones. */
        for (int i = 0; i < N; i++)
            s[i] = 1000 + (int64_t)(next_rand(&r) % 200);
        CHECK_EQ_INT(trend_of(s, N), PL_TREND_FLAT);
        /* 200 temporaries present in about half the samples. */
        for (int i = 0; i < N; i++)
            s[i] = 1000 + (next_rand(&r) % 2 ? 200 : 0);
        CHECK_EQ_INT(trend_of(s, N), PL_TREND_FLAT);
        /* Rare spikes of 5000. */
        for (int i = 0; i < N; i++)
            s[i] = 1000 + (next_rand(&r) % 10 == 0 ? 5000 : 0);
        CHECK_EQ_INT(trend_of(s, N), PL_TREND_FLAT);
        /* Steady growth of 20 per point under the uniform garbage. */
        for (int i = 0; i < N; i++)
            s[i] = 1000 + 20 * i + (int64_t)(next_rand(&r) % 200);
        CHECK_EQ_INT(trend_of(s, N), PL_TREND_GROWING);
        /* Steps of 100 every 8 points under garbage of up to 30. */
        for (int i = 0; i < N; i++)
            s[i] = 1000 + 100 * (i / 8) + (int64_t)(next_rand(&r) % 30);
        CHECK_EQ_INT(trend_of(s, N), PL_TREND_GROWING);
        /* A cache of 200 filled over the first half, under garbage of up to 25. */
        for (int i = 0; i < N; i++)
            s[i] = 1000 + (i < 30 ? 200 * i / 30 : 200) + (int64_t)(next_rand(&r) % 25);
        CHECK_EQ_INT(trend_of(s, N), PL_TREND_LEVELLED);
    }
    /* A burst that went away again. */
    for (int i = 0; i < N; i++)
        s[i] = 1000 + (i >= 20 && i < 30 ? 300 : 0);
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_FLAT);
    /* One object more or less: no trend. */
    for (int i = 0; i < N; i++)
        s[i] = 10 + (i > 30);
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_FLAT);
}

static void test_falling(void)
{
    int64_t s[N];

    for (int i = 0; i < N; i++)
        s[i] = 1000 - 5 * i;
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_FALLING);
    for (int i = 0; i < N; i++)
        s[i] = i < 10 ? 800 : 300;
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_FALLING);
}

static void test_few_points_and_gaps(void)
{
    int64_t s[N];

    for (int i = 0; i < N; i++)
        s[i] = 100 * i;
    CHECK_EQ_INT(trend_of(s, PL_TREND_MIN_POINTS - 1), PL_TREND_FLAT);
    CHECK_EQ_INT(trend_of(s, PL_TREND_MIN_POINTS), PL_TREND_GROWING);
    CHECK_EQ_INT(trend_of(s, 0), PL_TREND_FLAT);
    /* Gaps (no incarnation alive) are skipped, not read as zeros. */
    for (int i = 0; i < N; i++)
        s[i] = i % 3 == 1 ? -1 : 500 + (i < 20 ? 5 * i : 100);
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_LEVELLED);
    for (int i = 0; i < N; i++)
        s[i] = i % 2 ? -1 : 2 * i;
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_GROWING);
    /* Only five known points among many gaps: too few. */
    for (int i = 0; i < N; i++)
        s[i] = i % 12 ? -1 : 100 * i;
    CHECK_EQ_INT(trend_of(s, N), PL_TREND_FLAT);
}

static void test_names(void)
{
    unsigned m = 0;

    CHECK_OK(pl_trend_mask_parse("growing,levelled", 16, &m));
    CHECK_EQ_INT(m, (1u << PL_TREND_GROWING) | (1u << PL_TREND_LEVELLED));
    CHECK_OK(pl_trend_mask_parse("flat", 4, &m));
    CHECK_EQ_INT(m, 1u << PL_TREND_FLAT);
    CHECK_EQ_INT(pl_trend_mask_parse("", 0, &m), PL_EBADARG);
    CHECK_EQ_INT(pl_trend_mask_parse("growing,", 8, &m), PL_EBADARG);
    CHECK_EQ_INT(pl_trend_mask_parse(",growing", 8, &m), PL_EBADARG);
    CHECK_EQ_INT(pl_trend_mask_parse("Growing", 7, &m), PL_EBADARG);
    CHECK_EQ_INT(pl_trend_mask_parse("rising", 6, &m), PL_EBADARG);
    CHECK_EQ_STR(pl_trend_names[PL_TREND_LEVELLED], "levelled");
    CHECK_EQ_INT(pl_trend_from_name("falling", 7), PL_TREND_FALLING);
}

/* A dead incarnation (this pid, a start time that is not ours) with 40
 * samples a second apart of four types: steady, a cache of 50 filled over
 * the first 10 samples, flat, falling. */
static pl_store *trend_store(const char *dir)
{
    static const char *const names[] = {"app.Steady", "app.Cached", "app.Flat", "app.Falling"};
    pl_store_options opt;
    pl_proc_info info;
    pl_store *s = NULL;
    size_t lens[4];
    uint32_t ids[4];

    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    if (pl_store_open(&s, &opt) != 0)
        exit(2);
    memset(&info, 0, sizeof info);
    info.inc.pid = (uint32_t)getpid();
    info.inc.start = 12345;
    info.interval_ms = 1000;
    info.first_seen_ms = info.last_seen_ms = 1000000;
    CHECK_OK(pl_store_register(s, &info));
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(names[i]);
    CHECK_OK(pl_store_type_ids(s, names, lens, 4, ids));
    for (int i = 0; i < 40; i++) {
        pl_type_count c[4] = {{ids[0], 100 + 3 * (uint64_t)i, 0},
                              {ids[1], 5 * (uint64_t)(i < 10 ? i : 10), 0},
                              {ids[2], 100, 0},
                              {ids[3], 400 - 5 * (uint64_t)i, 0}};

        for (int j = 0; j < 4; j++)
            c[j].bytes = c[j].count * 32;
        CHECK_OK(pl_store_append(s, &info.inc, 1000000 + 1000 * (int64_t)i, c, 4));
    }
    return s;
}

static const pl_history_type *by_name(const pl_history *h, const char *name)
{
    for (size_t i = 0; h && i < h->n_types; i++)
        if (strcmp(h->types[i].name, name) == 0)
            return &h->types[i];
    return NULL;
}

static void test_history_trends(void)
{
    char dir[64];
    pl_store *s = trend_store(make_dir_at(dir, sizeof dir));
    pl_history_query q;
    pl_history *h = NULL;
    const pl_history_type *t;

    memset(&q, 0, sizeof q);
    q.sort = PL_SORT_GROWTH;
    q.limit = 10;
    q.per_worker = 1;
    CHECK_OK(pl_store_history(s, &q, &h));
    CHECK(h && h->n_types == 4);
    CHECK((t = by_name(h, "app.Steady")) && t->trend == PL_TREND_GROWING && t->n_lines == 1 &&
          t->lines[0].trend == PL_TREND_GROWING);
    CHECK((t = by_name(h, "app.Cached")) && t->trend == PL_TREND_LEVELLED && t->n_lines == 1 &&
          t->lines[0].trend == PL_TREND_LEVELLED);
    CHECK((t = by_name(h, "app.Flat")) && t->trend == PL_TREND_FLAT);
    CHECK((t = by_name(h, "app.Falling")) && t->trend == PL_TREND_FALLING);
    pl_history_free(h);
    h = NULL;

    /* Only the levelled ones: total counts them. */
    q.trends = 1u << PL_TREND_LEVELLED;
    CHECK_OK(pl_store_history(s, &q, &h));
    CHECK(h && h->total == 1 && h->n_types == 1 && strcmp(h->types[0].name, "app.Cached") == 0);
    pl_history_free(h);
    h = NULL;
    /* Growing or levelled, in growth order, the second one. */
    q.trends |= 1u << PL_TREND_GROWING;
    q.offset = 1;
    q.limit = 1;
    CHECK_OK(pl_store_history(s, &q, &h));
    CHECK(h && h->total == 2 && h->n_types == 1 && strcmp(h->types[0].name, "app.Cached") == 0);
    pl_history_free(h);
    h = NULL;
    /* Past the end: nothing, total still 2. */
    q.offset = 5;
    CHECK_OK(pl_store_history(s, &q, &h));
    CHECK(h && h->total == 2 && h->n_types == 0);
    pl_history_free(h);
    h = NULL;
    q.trends = 1u << PL_TREND_N;
    CHECK_EQ_INT(pl_store_history(s, &q, &h), PL_EBADARG);
    pl_history_free(h);
    pl_store_close(s);
    remove_dir(dir);
}

int main(void)
{
    RUN(test_steady);
    RUN(test_steps);
    RUN(test_filled_then_flat);
    RUN(test_noise);
    RUN(test_falling);
    RUN(test_few_points_and_gaps);
    RUN(test_names);
    RUN(test_history_trends);
    return test_failures ? 1 : 0;
}
