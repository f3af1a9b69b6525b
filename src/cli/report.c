/* pyloot report: where the workers' memory went (report_memory.c), which
 * types grew (the growing ones first), which grew and then levelled off (a
 * filled cache or pool?), how much, in which workers, and what held them
 * (the latest witness), with the store's facts. Built on the public history
 * API (pl_store_history: the as-of counts, the trend, one line per
 * incarnation for the growth) and the witnesses (pl_store_witnesses), so a
 * store copied off a dead machine reads the same as a live one. docs/cli.md
 * shows an example. */
#include "report.h"
#include "cli.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyloot/error.h"
#include "pyloot/handler.h"
#include "pyloot/json.h"
#include "pyloot/redact.h"
#include "pyloot/trend.h"
#include "pyloot/verify.h"

/* Types read per history page: every type of the store is measured, a page
 * at a time (a dead store's merged growth does not rank them yet). */
#define REPORT_PAGE 1000

/* Rates per hour only from a window this long: a few minutes of samples
 * do not tell what an hour brings. */
#define REPORT_RATE_MIN_MS (30 * 60 * 1000)

typedef struct grower {
    char *name;             /* malloc'ed */
    size_t n_lines;         /* incarnations with a line */
    pl_incarnation worst_inc;
    int64_t growth;         /* sum over incarnations of last - first count */
    int64_t bytes_growth;   /* sum over incarnations of last - first bytes */
    int64_t key;            /* what ranks it: growth or bytes_growth */
    uint64_t count;         /* at the as-of moment, over the incarnations alive then (the history's) */
    uint64_t bytes;         /* same, shallow bytes */
    size_t workers;         /* incarnations whose key grew */
    int64_t worst_growth;   /* the worst incarnation's key growth */
    int trend;              /* PL_TREND_* of the merged counts */
} grower;

/* One list of the report: growers[0..n), at most `limit`. */
typedef struct ranked {
    grower *g;
    size_t n;
} ranked;

/* Workers that did not end cleanly, listed at most (the newest). */
#define REPORT_ENDS 10

/* One worker that did not end cleanly. */
typedef struct bad_end {
    pl_proc_info proc;
    char text[48];          /* pl_proc_end_text: "killed (SIGKILL)", "exited 5", "killed" */
} bad_end;

typedef struct facts {
    size_t seen, alive, killed, exited, ended;
    bad_end ends[REPORT_ENDS]; /* the newest REPORT_ENDS killed or exited ones, oldest first */
    size_t n_ends;
    int64_t first_ms, last_ms;
    pl_buf command; /* the newest incarnation's command line, secrets redacted */
} facts;

static void fail(const char *what, const char *why)
{
    fprintf(stderr, "pyloot: %s failed: %s\n", what, why);
}

static void fmt_utc(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Growing types first, then by key (descending), then by name. */
static int cmp_grower(const void *a, const void *b)
{
    const grower *x = a, *y = b;
    int gx = x->trend == PL_TREND_GROWING, gy = y->trend == PL_TREND_GROWING;
    if (gx != gy)
        return gx ? -1 : 1;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* One type's growth from its per-incarnation lines, ranked by `sort`
 * (PL_SORT_BYTES_GROWTH or PL_SORT_GROWTH); its count, bytes and trend are
 * the history's (as of its moment, over the incarnations alive then: never
 * a dead worker's last count). */
static void measure(const pl_history *h, const pl_history_type *t, int sort, grower *g)
{
    memset(g, 0, sizeof *g);
    g->n_lines = t->n_lines;
    for (size_t j = 0; j < t->n_lines; j++) {
        const int64_t *c = t->lines[j].counts, *b = t->lines[j].bytes;
        ptrdiff_t first = -1, last = -1;
        for (size_t k = 0; k < h->n_times; k++) {
            if (c[k] < 0)
                continue;
            if (first < 0)
                first = (ptrdiff_t)k;
            last = (ptrdiff_t)k;
        }
        if (last < 0)
            continue;
        int64_t d = c[last] - c[first], db = b[last] - b[first];
        int64_t dk = sort == PL_SORT_GROWTH ? d : db;
        g->growth += d;
        g->bytes_growth += db;
        if (dk > 0)
            g->workers++;
        if (dk > g->worst_growth) {
            g->worst_growth = dk;
            g->worst_inc = t->lines[j].inc;
        }
    }
    g->key = sort == PL_SORT_GROWTH ? g->growth : g->bytes_growth;
    g->count = t->count;
    g->bytes = t->bytes;
    g->trend = t->trend;
}

static int read_facts(pl_store *store, facts *f)
{
    pl_proc_info *procs = NULL;
    size_t n = 0;
    int rc = pl_store_procs(store, &procs, &n);
    memset(f, 0, sizeof *f);
    if (rc)
        return rc;
    f->seen = n;
    for (size_t i = 0; i < n; i++) {
        int how = pl_proc_end_kind(&procs[i], NULL);
        if (how == PL_END_NONE)
            f->alive++;
        else if (how == PL_END_CLEAN)
            f->ended++;
        else if (how == PL_END_EXITED)
            f->exited++;
        else
            f->killed++;
        if (how == PL_END_EXITED || how == PL_END_KILLED) {
            if (f->n_ends == REPORT_ENDS)
                memmove(f->ends, f->ends + 1, --f->n_ends * sizeof *f->ends);
            bad_end *e = &f->ends[f->n_ends++];
            e->proc = procs[i];
            pl_proc_end_text(&procs[i], e->text, sizeof e->text);
        }
        if (!f->first_ms || (procs[i].first_seen_ms && procs[i].first_seen_ms < f->first_ms))
            f->first_ms = procs[i].first_seen_ms;
        if (procs[i].last_seen_ms > f->last_ms)
            f->last_ms = procs[i].last_seen_ms;
    }
    if (n) {
        rc = pl_redact_cmdline(NULL, procs[n - 1].argv, &f->command); /* procs are oldest first */
        pl_buf_cstr(&f->command);
    }
    free(procs);
    return rc;
}

static double per_hour(int64_t growth, int64_t span_ms)
{
    return span_ms > 0 ? (double)growth * 3600000.0 / (double)span_ms : 0.0;
}

/* A change over the window: "+532 (+17688/h)" (bytes: "+1.2 MiB (+2.4
 * MiB/h)") when the window is REPORT_RATE_MIN_MS or longer, else "+532 in
 * 3 min". */
static void fmt_change(int64_t v, int bytes, int64_t span_ms, char *out, size_t len)
{
    char a[32], r[32];

    if (bytes)
        cli_fmt_bytes(v, 1, a, sizeof a);
    else
        snprintf(a, sizeof a, "%+" PRId64, v);
    if (span_ms >= REPORT_RATE_MIN_MS) {
        double ph = per_hour(v, span_ms);

        if (bytes)
            cli_fmt_bytes((int64_t)ph, 1, r, sizeof r);
        else
            snprintf(r, sizeof r, "%+.0f", ph);
        snprintf(out, len, "%s (%s/h)", a, r);
    } else if (span_ms < 120000) {
        snprintf(out, len, "%s in %.0f s", a, (double)span_ms / 1000);
    } else {
        snprintf(out, len, "%s in %.0f min", a, (double)span_ms / 60000);
    }
}

/* "store damaged: N records could not be read (first: table T, key K: what)" */
static void print_damage(const pl_store_damage *d, size_t skipped)
{
    if (!d->records)
        return;
    printf("\nstore damaged: %" PRIu64 " record%s could not be read (first: %s)\n", d->records,
           d->records == 1 ? "" : "s", d->first);
    if (skipped)
        printf("  the growers above leave out %zu pid%s whose history could not be read\n", skipped,
               skipped == 1 ? "" : "s");
}

/* One type of a list: its name, then one line of figures, then what held
 * it. Each further fact about a type is one more line here. */
static void print_grower_text(const grower *x, size_t rank, const pl_witness_list *wl,
                              const pl_route_growth_result *rg, int sort, int64_t span)
{
    char bg[96], g[96], now[32], worst[32], when[32];

    fmt_change(x->bytes_growth, 1, span, bg, sizeof bg);
    fmt_change(x->growth, 0, span, g, sizeof g);
    cli_fmt_bytes((int64_t)x->bytes, 0, now, sizeof now);
    if (sort == PL_SORT_GROWTH)
        snprintf(worst, sizeof worst, "%+" PRId64, x->worst_growth);
    else
        cli_fmt_bytes(x->worst_growth, 1, worst, sizeof worst);
    printf("%2zu. %s\n", rank, x->name);
    printf("    %s: bytes %s, growth %s; now %" PRIu64 " objects, %s; grew in %zu of %zu workers, most in pid %u "
           "(%s)\n",
           pl_trend_names[x->trend], bg, g, x->count, now, x->workers, x->n_lines, x->worst_inc.pid, worst);
    if (wl->n) {
        pl_buf line = PL_BUF_INIT;
        pl_witness_held_by(&wl->w[0], &line);
        fmt_utc(wl->w[0].time_ms, when, sizeof when);
        printf("    held by: %s\n      (witness of pid %u at %s UTC)\n", pl_buf_cstr(&line), wl->w[0].inc.pid, when);
        if (wl->w[0].site)
            printf("    created at: %s\n", wl->w[0].site);
        pl_buf_free(&line);
    } else {
        printf("    held by: (no witness recorded)\n");
    }
    pl_cli_report_route_text(rg);
}

/* The report's view of the store: its facts, the window, the two lists
 * (their witnesses: growers' first, then levelled ones'), the damage. */
typedef struct report_view {
    const facts *f;
    const int64_t *window;
    const ranked *growers, *levelled;
    pl_witness_list *wl;
    const char *path;
    const pl_store_damage *d;
    size_t skipped;
    int sort;
    const pl_memory *mem;
    pl_route_growth_result *const *rg; /* like wl: the route each type grows with, or NULL */
} report_view;

static void print_text(const report_view *r)
{
    const facts *f = r->f;
    char a[32], b[32];
    int64_t span = r->window[1] - r->window[0];
    printf("pyloot report of %s\n\n", r->path);
    printf("workers: %zu seen, %zu alive, %zu killed, %zu exited with an error, %zu ended cleanly\n", f->seen,
           f->alive, f->killed, f->exited, f->ended);
    for (size_t i = 0; i < f->n_ends; i++) {
        const pl_proc_info *p = &f->ends[i].proc;
        fmt_utc(p->ended_ms ? p->ended_ms : p->last_seen_ms, a, sizeof a);
        printf("  pid %u: %s, %s %s UTC\n", p->inc.pid, f->ends[i].text, p->ended_ms ? "at" : "last seen", a);
    }
    if (f->command.len)
        printf("command: %s\n", f->command.data);
    if (r->window[1]) {
        fmt_utc(r->window[0], a, sizeof a);
        fmt_utc(r->window[1], b, sizeof b);
        printf("samples: %s to %s UTC (%.0f s)\n", a, b, (double)span / 1000.0);
    } else {
        printf("samples: none\n");
    }
    pl_cli_report_memory_text(r->mem);
    if (!r->growers->n && !r->levelled->n) {
        printf("\nno type grew over the samples stored\n");
        print_damage(r->d, r->skipped);
        return;
    }
    if (r->growers->n)
        printf("\ntop growers by %s (growing first):\n", r->sort == PL_SORT_GROWTH ? "count growth" : "bytes growth");
    else
        printf("\nno type is still growing\n");
    for (size_t i = 0; i < r->growers->n; i++)
        print_grower_text(&r->growers->g[i], i + 1, &r->wl[i], r->rg[i], r->sort, span);
    if (r->levelled->n)
        printf("\nlevelled (filled caches?): grew, then stopped for the last stretch of the window\n");
    for (size_t i = 0; i < r->levelled->n; i++)
        print_grower_text(&r->levelled->g[i], i + 1, &r->wl[r->growers->n + i], r->rg[r->growers->n + i], r->sort,
                          span);
    print_damage(r->d, r->skipped);
}

/* A rate per hour, or null for a window shorter than REPORT_RATE_MIN_MS. */
static void json_rate(pl_buf *b, int64_t v, int64_t span)
{
    if (span >= REPORT_RATE_MIN_MS)
        pl_json_f64(b, per_hour(v, span));
    else
        pl_buf_puts(b, "null");
}

static void print_grower_json(pl_buf *b, const grower *x, const pl_witness_list *wl, const pl_route_growth_result *rg,
                              int64_t span)
{
    pl_buf_puts(b, "{\"name\":");
    pl_json_cstr(b, x->name);
    pl_buf_printf(b, ",\"trend\":\"%s\",\"growth\":%" PRId64 ",\"growth_per_hour\":", pl_trend_names[x->trend],
                  x->growth);
    json_rate(b, x->growth, span);
    pl_buf_printf(b, ",\"bytes_growth\":%" PRId64 ",\"bytes_growth_per_hour\":", x->bytes_growth);
    json_rate(b, x->bytes_growth, span);
    pl_buf_printf(b,
                  ",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"workers\":%zu,\"workers_total\":%zu,"
                  "\"worst\":{\"pid\":%u,\"start\":\"%" PRIu64 "\",\"growth\":%" PRId64 "},\"witness\":",
                  x->count, x->bytes, x->workers, x->n_lines, x->worst_inc.pid, x->worst_inc.start, x->worst_growth);
    if (wl->n)
        pl_json_witness(b, &wl->w[0]);
    else
        pl_buf_puts(b, "null");
    pl_buf_putc(b, ',');
    pl_cli_report_route_json(b, rg);
    pl_buf_putc(b, '}');
}

static void print_json(const report_view *r)
{
    const facts *f = r->f;
    const int64_t *window = r->window;
    pl_buf b = PL_BUF_INIT;
    int64_t span = window[1] - window[0];
    pl_buf_puts(&b, "{\"store\":{\"path\":");
    pl_json_cstr(&b, r->path);
    pl_buf_printf(&b, ",\"workers\":%zu,\"alive\":%zu,\"killed\":%zu,\"exited\":%zu,\"ended\":%zu,", f->seen,
                  f->alive, f->killed, f->exited, f->ended);
    pl_buf_puts(&b, "\"ends\":[");
    for (size_t i = 0; i < f->n_ends; i++) {
        const pl_proc_info *p = &f->ends[i].proc;
        pl_buf_printf(&b, "%s{\"pid\":%u,\"start\":\"%" PRIu64 "\",\"end\":", i ? "," : "", p->inc.pid, p->inc.start);
        pl_json_proc_end(&b, p);
        pl_buf_printf(&b, ",\"ended\":%" PRId64 ".%03d}", (p->ended_ms ? p->ended_ms : p->last_seen_ms) / 1000,
                      (int)((p->ended_ms ? p->ended_ms : p->last_seen_ms) % 1000));
    }
    pl_buf_puts(&b, "],");
    pl_buf_puts(&b, "\"command\":");
    pl_json_str(&b, f->command.data ? f->command.data : "", f->command.len);
    pl_buf_putc(&b, ',');
    pl_buf_printf(&b, "\"first_seen\":%" PRId64 ".%03d,\"last_seen\":%" PRId64 ".%03d}", f->first_ms / 1000,
                  (int)(f->first_ms % 1000), f->last_ms / 1000, (int)(f->last_ms % 1000));
    if (window[1])
        pl_buf_printf(&b, ",\"window\":{\"from\":%" PRId64 ".%03d,\"to\":%" PRId64 ".%03d}", window[0] / 1000,
                      (int)(window[0] % 1000), window[1] / 1000, (int)(window[1] % 1000));
    else
        pl_buf_puts(&b, ",\"window\":null");
    pl_buf_putc(&b, ',');
    pl_cli_report_memory_json(&b, r->mem);
    pl_buf_printf(&b, ",\"sort\":\"%s\",\"growers\":[", pl_sort_names[r->sort]);
    for (size_t i = 0; i < r->growers->n; i++) {
        if (i)
            pl_buf_putc(&b, ',');
        print_grower_json(&b, &r->growers->g[i], &r->wl[i], r->rg[i], span);
    }
    pl_buf_puts(&b, "],\"levelled\":[");
    for (size_t i = 0; i < r->levelled->n; i++) {
        if (i)
            pl_buf_putc(&b, ',');
        print_grower_json(&b, &r->levelled->g[i], &r->wl[r->growers->n + i], r->rg[r->growers->n + i], span);
    }
    pl_buf_puts(&b, "],\"damage\":");
    if (r->d->records) {
        pl_buf_printf(&b, "{\"records\":%" PRIu64 ",\"first\":", r->d->records);
        pl_json_cstr(&b, r->d->first);
        pl_buf_printf(&b, ",\"pids_left_out\":%zu}", r->skipped);
    } else {
        pl_buf_puts(&b, "null");
    }
    pl_buf_puts(&b, "}\n");
    fwrite(b.data ? b.data : "", 1, b.len, stdout);
    pl_buf_free(&b);
}

/* Adds g to list l (kept sorted, at most limit): 0, or -1 (memory). */
static int keep(ranked *l, grower *g, const char *name, uint64_t limit)
{
    if (l->n == limit) {
        grower *last = &l->g[l->n - 1];
        g->name = (char *)name; /* compared only */
        if (cmp_grower(g, last) >= 0)
            return 0;
        free(last->name);
        l->n--;
    }
    g->name = strdup(name);
    if (!g->name)
        return -1;
    size_t at = l->n;
    while (at > 0 && cmp_grower(g, &l->g[at - 1]) < 0) {
        l->g[at] = l->g[at - 1];
        at--;
    }
    l->g[at] = *g;
    l->n++;
    return 0;
}

/* Keeps the `limit` largest growers of a page in growers (growing ones
 * first) and the `limit` largest levelled ones in levelled. */
static int keep_top(const pl_history *h, int sort, ranked *growers, ranked *levelled, uint64_t limit)
{
    for (size_t i = 0; i < h->n_types; i++) {
        grower g;
        measure(h, &h->types[i], sort, &g);
        if (g.key <= 0)
            continue;
        if (keep(g.trend == PL_TREND_LEVELLED ? levelled : growers, &g, h->types[i].name, limit) < 0)
            return -1;
    }
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const grower *)a)->name, ((const grower *)b)->name);
}

static int cmp_pid(const void *a, const void *b)
{
    uint32_t x = ((const pl_proc_info *)a)->inc.pid, y = ((const pl_proc_info *)b)->inc.pid;
    return x < y ? -1 : x > y;
}

/* The growers of a store whose history as a whole cannot be read (a record
 * does not decode): each pid's history on its own, merged by type name
 * (the trend: growing if one pid's grows, else levelled if one's is),
 * leaving out the pids whose records do not decode (counted in *skipped).
 * Fills the lists like keep_top. 0, PL_ECORRUPT-free errors, or -1 (memory). */
static int growers_by_pid(pl_store *store, pl_history_query q, ranked *growers, ranked *levelled, uint64_t limit,
                          int64_t *window, size_t *skipped)
{
    pl_proc_info *procs = NULL;
    pl_history *h = NULL;
    grower *all = NULL;
    size_t n_procs = 0, n_all = 0, cap = 0, m = 0;
    int rc = pl_store_procs(store, &procs, &n_procs);

    if (rc)
        goto out;
    qsort(procs, n_procs, sizeof *procs, cmp_pid);
    for (size_t i = 0; i < n_procs; i++) {
        if (i && procs[i].inc.pid == procs[i - 1].inc.pid)
            continue;
        q.pid = procs[i].inc.pid;
        q.offset = 0;
        for (;;) {
            rc = pl_store_history(store, &q, &h);
            if (rc == PL_ECORRUPT || rc == PL_ENOTFOUND) {
                *skipped += rc == PL_ECORRUPT;
                rc = 0;
                break;
            }
            if (rc)
                goto out;
            if (h->n_times) {
                if (!window[0] || h->times[0] < window[0])
                    window[0] = h->times[0];
                if (h->times[h->n_times - 1] > window[1])
                    window[1] = h->times[h->n_times - 1];
            }
            for (size_t t = 0; t < h->n_types; t++) {
                if (n_all == cap) {
                    grower *more = realloc(all, (cap = cap ? cap * 2 : 256) * sizeof *all);
                    if (!more) {
                        rc = -1;
                        goto out;
                    }
                    all = more;
                }
                measure(h, &h->types[t], q.sort, &all[n_all]);
                if (!(all[n_all].name = strdup(h->types[t].name))) {
                    rc = -1;
                    goto out;
                }
                n_all++;
            }
            q.offset += REPORT_PAGE;
            int more = h->n_types == REPORT_PAGE && q.offset < h->total;
            pl_history_free(h);
            h = NULL;
            if (!more)
                break;
        }
    }
    /* One grower per name: the sums over pids, the worst pid's growth. */
    if (n_all)
        qsort(all, n_all, sizeof *all, cmp_name);
    for (size_t i = 0; i < n_all; i++) {
        if (m && strcmp(all[m - 1].name, all[i].name) == 0) {
            grower *a = &all[m - 1], *x = &all[i];
            a->n_lines += x->n_lines;
            a->growth += x->growth;
            a->bytes_growth += x->bytes_growth;
            a->key += x->key;
            a->count += x->count;
            a->bytes += x->bytes;
            a->workers += x->workers;
            if (x->trend == PL_TREND_GROWING || (x->trend == PL_TREND_LEVELLED && a->trend != PL_TREND_GROWING))
                a->trend = x->trend;
            if (x->worst_growth > a->worst_growth) {
                a->worst_growth = x->worst_growth;
                a->worst_inc = x->worst_inc;
            }
            free(x->name);
        } else {
            all[m++] = all[i];
        }
    }
    n_all = m;
    if (n_all)
        qsort(all, n_all, sizeof *all, cmp_grower);
    for (size_t i = 0; i < n_all; i++) {
        ranked *l = all[i].trend == PL_TREND_LEVELLED ? levelled : growers;
        if (all[i].key > 0 && l->n < limit) {
            l->g[l->n++] = all[i];
            all[i].name = NULL;
        }
        free(all[i].name);
    }
    n_all = 0;
out:
    for (size_t i = 0; i < n_all; i++)
        free(all[i].name);
    free(all);
    free(procs);
    pl_history_free(h);
    return rc;
}

/* See report.h. */
int pl_cli_report(pl_store *store, int format, uint64_t limit, int sort)
{
    pl_history *h = NULL;
    ranked growers = {NULL, 0}, levelled = {NULL, 0};
    pl_witness_list *wl = NULL;
    pl_route_growth_result **rg = NULL;
    pl_memory *mem = NULL;
    facts f;
    int64_t window[2] = {0, 0};
    int code = 1;
    pl_store_damage damage;
    size_t skipped = 0, n;
    int rc = read_facts(store, &f);
    if (rc) {
        fail("reading the store", pl_strerror(rc));
        goto out;
    }
    /* Every record decoded once: damage is reported even where the report
     * does not read (cli_open_store checked the pages in a child first). */
    if ((rc = pl_store_check_records(store, &damage)) != 0) {
        fail("checking the records", pl_strerror(rc));
        goto out;
    }
    growers.g = calloc((size_t)limit + 1, sizeof *growers.g);
    levelled.g = calloc((size_t)limit + 1, sizeof *levelled.g);
    if (!growers.g || !levelled.g) {
        fail("building the report", "out of memory");
        goto out;
    }
    /* Every incarnation's line, so that the growth of workers gone before
     * the as-of moment counts too; counts and trends are the merged ones. */
    pl_history_query q;
    memset(&q, 0, sizeof q);
    q.sort = sort; /* keep_top ranks each page's types itself */
    q.limit = REPORT_PAGE;
    q.per_worker = 1;
    q.now_ms = pl_now_ms();
    for (;;) {
        rc = pl_store_history(store, &q, &h);
        if (rc == PL_ECORRUPT) {
            /* Damaged records: each pid on its own, past the damage. */
            for (size_t i = 0; i < growers.n; i++)
                free(growers.g[i].name);
            for (size_t i = 0; i < levelled.n; i++)
                free(levelled.g[i].name);
            growers.n = levelled.n = 0;
            window[0] = window[1] = 0;
            rc = growers_by_pid(store, q, &growers, &levelled, limit, window, &skipped);
            if (rc) {
                fail("reading the history", rc < 0 ? "out of memory" : pl_strerror(rc));
                goto out;
            }
            break;
        }
        if (rc) {
            fail("reading the history", pl_strerror(rc));
            goto out;
        }
        if (h->n_times) {
            window[0] = h->times[0];
            window[1] = h->times[h->n_times - 1];
        }
        if (keep_top(h, sort, &growers, &levelled, limit) < 0) {
            fail("building the report", "out of memory");
            goto out;
        }
        q.offset += REPORT_PAGE;
        int more = h->n_types == REPORT_PAGE && q.offset < h->total;
        pl_history_free(h);
        h = NULL;
        if (!more)
            break;
    }
    n = growers.n + levelled.n;
    wl = calloc(n + 1, sizeof *wl);
    if (!wl) {
        fail("building the report", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = i < growers.n ? growers.g[i].name : levelled.g[i - growers.n].name;
        rc = pl_store_witnesses(store, name, 0, NULL, 1, &wl[i]);
        if (rc == PL_ECORRUPT) {
            if (!damage.records++)
                snprintf(damage.first, sizeof damage.first, "table witness, type %.300s: a path does not decode",
                         name);
            continue;
        }
        if (rc && rc != PL_ENOTFOUND) {
            fail("reading the witnesses", pl_strerror(rc));
            goto out;
        }
    }
    /* The route each type grows with, when requests by route were counted. */
    rg = calloc(n + 1, sizeof *rg);
    if (!rg) {
        fail("building the report", "out of memory");
        goto out;
    }
    /* Not for the levelled types: a cache that filled early and stayed full
     * is no straight line of requests, and the route the fit would name
     * for it is whichever moved with the load while it filled. */
    for (size_t i = 0; i < growers.n; i++) {
        const char *name = growers.g[i].name;
        rc = pl_cli_report_route_read(store, name, &rg[i]);
        if (rc == PL_ECORRUPT) {
            if (!damage.records++)
                snprintf(damage.first, sizeof damage.first, "table routes: a record does not decode");
            break;
        }
        if (rc) {
            fail("reading the requests by route", pl_strerror(rc));
            goto out;
        }
    }
    if (skipped && !damage.records) {
        damage.records = skipped;
        snprintf(damage.first, sizeof damage.first, "the history of %zu pid%s", skipped, skipped == 1 ? "" : "s");
    }
    /* The memory figures: a store that cannot give them still gets the
     * rest of its report (a damaged memory record counts as damage). */
    rc = pl_cli_report_memory_read(store, &mem);
    if (rc == PL_ECORRUPT && !damage.records++)
        snprintf(damage.first, sizeof damage.first, "table memory: a record does not decode");
    else if (rc)
        fail("reading the memory figures", pl_strerror(rc));
    report_view view = {&f, window, &growers, &levelled, wl, pl_store_path(store), &damage, skipped, sort, mem, rg};
    if (format == 'j')
        print_json(&view);
    else
        print_text(&view);
    code = damage.records ? CLI_EXIT_DAMAGED : 0;
out:
    pl_buf_free(&f.command);
    for (size_t i = 0; wl && i < growers.n + levelled.n; i++)
        pl_witness_list_free(&wl[i]);
    free(wl);
    for (size_t i = 0; rg && i < growers.n + levelled.n; i++)
        pl_route_growth_free(rg[i]);
    free(rg);
    for (size_t i = 0; growers.g && i < growers.n; i++)
        free(growers.g[i].name);
    for (size_t i = 0; levelled.g && i < levelled.n; i++)
        free(levelled.g[i].name);
    free(growers.g);
    free(levelled.g);
    pl_history_free(h);
    pl_memory_free(mem);
    return code;
}

const char cli_report_help[] =
    "usage: pyloot report --db DIR [--limit N] [--sort bytes_growth|growth] [--json]\n"
    "\n"
    "A leak report for a store, live or dead: first where each worker's memory went (RSS growth,\n"
    "and how much Python objects, the allocators' free bytes and other memory explain), then\n"
    "the types that grew, those still growing first (bytes and objects gained, per hour over a\n"
    "window of 30 min or more, count and bytes as of the end, how many workers, the worst one),\n"
    "then apart those that grew and levelled off (filled caches?), each with the latest recorded\n"
    "path that held one of them and, when the workers counted their requests (track_requests),\n"
    "the route whose requests explain most of its growth (\"grows with GET /login/<user>: +1.00\n"
    "per request\"), and the store's facts (workers seen, alive, killed; time span; the newest\n"
    "command line, its secrets redacted).\n"
    "\n"
    "--db DIR              the store directory. Default: $PYLOOT_DB\n"
    "--limit N             growers (and levelled types) to print (default 10, at most 1000)\n"
    "--sort KEY            bytes_growth (default: shallow bytes gained) or growth (objects gained)\n"
    "--json                one JSON document instead of text\n"
    "\n"
    "Exit status 3: some records of the store do not decode; the report is printed past them\n"
    "and ends with \"store damaged: N records could not be read (first: ...)\".\n";

const struct cli_option cli_report_options[] = {{"--limit", NULL, 1}, {"--sort", NULL, 1}, {NULL, NULL, 0}};

/* See cli.h: checks --limit, opens the store read-only, prints the report. */
int cli_report(const struct cli_globals *g, int argc, char **argv)
{
    uint64_t limit = 10;
    int sort = PL_SORT_BYTES_GROWTH;
    pl_store *store = NULL;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--limit") == 0 && cli_parse_num(argv[i + 1], 1, 1000, &limit) != 0) {
            cli_fail("reading the arguments", "--limit must be a number from 1 to 1000");
            return 2;
        }
        if (strcmp(argv[i], "--sort") == 0) {
            sort = pl_sort_from_name(argv[i + 1], strlen(argv[i + 1]));
            if (sort != PL_SORT_BYTES_GROWTH && sort != PL_SORT_GROWTH) {
                cli_fail("reading the arguments", "--sort must be bytes_growth or growth");
                return 2;
            }
        }
    }
    if (cli_open_store(g, &store))
        return 1;
    int code = pl_cli_report(store, g->format, limit, sort);
    pl_store_close(store);
    return code;
}
