/* pyloot report: where the workers' memory went (report_memory.c), which
 * types grew, how fast, in which workers, and what
 * held them (the latest witness), with the store's facts. Built on the
 * public history API (pl_store_history, one line per incarnation,
 * ranked by bytes growth or count growth) and the witnesses (pl_store_witnesses), so a store copied off
 * a dead machine reads the same as a live one. docs/cli.md shows an example. */
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
#include "pyloot/verify.h"

/* Types read per history page: every type of the store is measured, a page
 * at a time (a dead store's merged growth does not rank them yet). */
#define REPORT_PAGE 1000

typedef struct grower {
    char *name;             /* malloc'ed */
    size_t n_lines;         /* incarnations with a line */
    pl_incarnation worst_inc;
    int64_t growth;         /* sum over incarnations of last - first count */
    int64_t bytes_growth;   /* sum over incarnations of last - first bytes */
    int64_t key;            /* what ranks it: growth or bytes_growth */
    uint64_t count;         /* sum over incarnations of their last count */
    uint64_t bytes;         /* sum over incarnations of their last bytes */
    size_t workers;         /* incarnations whose key grew */
    int64_t worst_growth;   /* the worst incarnation's key growth */
} grower;

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

static int cmp_grower(const void *a, const void *b)
{
    const grower *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* One type's growth from its per-incarnation lines, ranked by `sort`
 * (PL_SORT_BYTES_GROWTH or PL_SORT_GROWTH). */
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
        g->count += (uint64_t)c[last];
        g->bytes += (uint64_t)b[last];
        if (dk > 0)
            g->workers++;
        if (dk > g->worst_growth) {
            g->worst_growth = dk;
            g->worst_inc = t->lines[j].inc;
        }
    }
    g->key = sort == PL_SORT_GROWTH ? g->growth : g->bytes_growth;
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

static void print_text(const facts *f, const int64_t *window, const grower *g, size_t n, pl_witness_list *wl,
                       const char *path, const pl_store_damage *d, size_t skipped, int sort,
                       const pl_memory *mem)
{
    char a[32], b[32];
    int64_t span = window[1] - window[0];
    printf("pyloot report of %s\n\n", path);
    printf("workers: %zu seen, %zu alive, %zu killed, %zu exited with an error, %zu ended cleanly\n", f->seen,
           f->alive, f->killed, f->exited, f->ended);
    for (size_t i = 0; i < f->n_ends; i++) {
        const pl_proc_info *p = &f->ends[i].proc;
        fmt_utc(p->ended_ms ? p->ended_ms : p->last_seen_ms, a, sizeof a);
        printf("  pid %u: %s, %s %s UTC\n", p->inc.pid, f->ends[i].text, p->ended_ms ? "at" : "last seen", a);
    }
    if (f->command.len)
        printf("command: %s\n", f->command.data);
    if (window[1]) {
        fmt_utc(window[0], a, sizeof a);
        fmt_utc(window[1], b, sizeof b);
        printf("samples: %s to %s UTC (%.0f s)\n", a, b, (double)span / 1000.0);
    } else {
        printf("samples: none\n");
    }
    pl_cli_report_memory_text(mem);
    if (!n) {
        printf("\nno type grew over the samples stored\n");
        print_damage(d, skipped);
        return;
    }
    printf("\ntop growers by %s:\n", sort == PL_SORT_GROWTH ? "count growth" : "bytes growth");
    for (size_t i = 0; i < n; i++) {
        const grower *x = &g[i];
        printf("%2zu. %s\n", i + 1, x->name);
        printf("    bytes %+" PRId64 " (%+.0f/h), growth %+" PRId64 " (%+.0f/h), count %" PRIu64 ", %" PRIu64
               " bytes; grew in %zu of %zu workers, most in pid %u (%+" PRId64 "%s)\n",
               x->bytes_growth, per_hour(x->bytes_growth, span), x->growth, per_hour(x->growth, span), x->count,
               x->bytes, x->workers, x->n_lines, x->worst_inc.pid, x->worst_growth,
               sort == PL_SORT_GROWTH ? "" : " bytes");
        if (wl[i].n) {
            pl_buf line = PL_BUF_INIT;
            pl_witness_held_by(&wl[i].w[0], &line);
            fmt_utc(wl[i].w[0].time_ms, a, sizeof a);
            printf("    held by: %s\n      (witness of pid %u at %s UTC)\n", pl_buf_cstr(&line), wl[i].w[0].inc.pid, a);
            if (wl[i].w[0].site)
                printf("    created at: %s\n", wl[i].w[0].site);
            pl_buf_free(&line);
        } else {
            printf("    held by: (no witness recorded)\n");
        }
    }
    print_damage(d, skipped);
}

static void print_json(const facts *f, const int64_t *window, const grower *g, size_t n, pl_witness_list *wl,
                       const char *path, const pl_store_damage *d, size_t skipped, int sort,
                       const pl_memory *mem)
{
    pl_buf b = PL_BUF_INIT;
    int64_t span = window[1] - window[0];
    pl_buf_puts(&b, "{\"store\":{\"path\":");
    pl_json_cstr(&b, path);
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
    pl_cli_report_memory_json(&b, mem);
    pl_buf_printf(&b, ",\"sort\":\"%s\",\"growers\":[", pl_sort_names[sort]);
    for (size_t i = 0; i < n; i++) {
        const grower *x = &g[i];
        pl_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        pl_json_cstr(&b, x->name);
        pl_buf_printf(&b, ",\"growth\":%" PRId64 ",\"growth_per_hour\":", x->growth);
        pl_json_f64(&b, per_hour(x->growth, span));
        pl_buf_printf(&b, ",\"bytes_growth\":%" PRId64 ",\"bytes_growth_per_hour\":", x->bytes_growth);
        pl_json_f64(&b, per_hour(x->bytes_growth, span));
        pl_buf_printf(&b,
                      ",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"workers\":%zu,\"workers_total\":%zu,"
                      "\"worst\":{\"pid\":%u,\"start\":\"%" PRIu64 "\",\"growth\":%" PRId64 "},\"witness\":",
                      x->count, x->bytes, x->workers, x->n_lines, x->worst_inc.pid, x->worst_inc.start,
                      x->worst_growth);
        if (wl[i].n)
            pl_json_witness(&b, &wl[i].w[0]);
        else
            pl_buf_puts(&b, "null");
        pl_buf_putc(&b, '}');
    }
    pl_buf_puts(&b, "],\"damage\":");
    if (d->records) {
        pl_buf_printf(&b, "{\"records\":%" PRIu64 ",\"first\":", d->records);
        pl_json_cstr(&b, d->first);
        pl_buf_printf(&b, ",\"pids_left_out\":%zu}", skipped);
    } else {
        pl_buf_puts(&b, "null");
    }
    pl_buf_puts(&b, "}\n");
    fwrite(b.data ? b.data : "", 1, b.len, stdout);
    pl_buf_free(&b);
}

/* Keeps the `limit` largest growers of a page in top[0..*n) (sorted). */
static int keep_top(const pl_history *h, int sort, grower *top, size_t *n, uint64_t limit)
{
    for (size_t i = 0; i < h->n_types; i++) {
        grower g;
        measure(h, &h->types[i], sort, &g);
        if (g.key <= 0)
            continue;
        if (*n == limit) {
            grower *last = &top[*n - 1];
            g.name = h->types[i].name; /* compared only */
            if (cmp_grower(&g, last) >= 0)
                continue;
            free(last->name);
            (*n)--;
        }
        g.name = strdup(h->types[i].name);
        if (!g.name)
            return -1;
        size_t at = *n;
        while (at > 0 && cmp_grower(&g, &top[at - 1]) < 0) {
            top[at] = top[at - 1];
            at--;
        }
        top[at] = g;
        (*n)++;
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
 * does not decode): each pid's history on its own, merged by type name,
 * leaving out the pids whose records do not decode (counted in *skipped).
 * Fills top[0..*n) like keep_top. 0, PL_ECORRUPT-free errors, or -1 (memory). */
static int growers_by_pid(pl_store *store, pl_history_query q, grower *top, size_t *n, uint64_t limit,
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
        if (all[i].key > 0 && *n < limit) {
            top[(*n)++] = all[i];
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
    grower *g = NULL;
    pl_witness_list *wl = NULL;
    pl_memory *mem = NULL;
    facts f;
    size_t n = 0;
    int64_t window[2] = {0, 0};
    int code = 1;
    pl_store_damage damage;
    size_t skipped = 0;
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
    g = calloc((size_t)limit + 1, sizeof *g);
    if (!g) {
        fail("building the report", "out of memory");
        goto out;
    }
    /* Every incarnation's line, so that a dead store (where the merged
     * growth of live incarnations is zero) still shows what grew. */
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
            for (size_t i = 0; i < n; i++)
                free(g[i].name);
            n = 0;
            window[0] = window[1] = 0;
            rc = growers_by_pid(store, q, g, &n, limit, window, &skipped);
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
        if (keep_top(h, sort, g, &n, limit) < 0) {
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
    wl = calloc(n + 1, sizeof *wl);
    if (!wl) {
        fail("building the report", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rc = pl_store_witnesses(store, g[i].name, 0, NULL, 1, &wl[i]);
        if (rc == PL_ECORRUPT) {
            if (!damage.records++)
                snprintf(damage.first, sizeof damage.first, "table witness, type %.300s: a path does not decode",
                         g[i].name);
            continue;
        }
        if (rc && rc != PL_ENOTFOUND) {
            fail("reading the witnesses", pl_strerror(rc));
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
    if (format == 'j')
        print_json(&f, window, g, n, wl, pl_store_path(store), &damage, skipped, sort, mem);
    else
        print_text(&f, window, g, n, wl, pl_store_path(store), &damage, skipped, sort, mem);
    code = damage.records ? CLI_EXIT_DAMAGED : 0;
out:
    pl_buf_free(&f.command);
    for (size_t i = 0; wl && i < n; i++)
        pl_witness_list_free(&wl[i]);
    free(wl);
    for (size_t i = 0; g && i < n; i++)
        free(g[i].name);
    free(g);
    pl_history_free(h);
    pl_memory_free(mem);
    return code;
}

const char cli_report_help[] =
    "usage: pyloot report --db DIR [--limit N] [--sort bytes_growth|growth] [--json]\n"
    "\n"
    "A leak report for a store, live or dead: first where each worker's memory went (RSS growth,\n"
    "and how much Python objects, the allocators' free bytes and other memory explain), then\n"
    "the types that grew (bytes and objects gained, per hour, count, bytes, how many workers, the\n"
    "worst one), each with the latest recorded path that held one\n"
    "of them, and the store's facts (workers seen, alive, killed; time span; the newest command\n"
    "line, its secrets redacted).\n"
    "\n"
    "--db DIR              the store directory. Default: $PYLOOT_DB\n"
    "--limit N             growers to print (default 10, at most 1000)\n"
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
