/* pyloot: the subcommands that print what a store holds (`procs`,
 * `history`) as a table, JSON (exactly what the HTTP API answers) or CSV,
 * and their arguments. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "pyloot/access.h"
#include "pyloot/buf.h"
#include "pyloot/error.h"
#include "pyloot/handler.h"
#include "pyloot/trend.h"
#include "pyloot/verify.h"

const char cli_procs_help[] =
    "usage: pyloot procs --db DIR [--json | --csv]\n"
    "\n"
    "Every process incarnation of a store, alive or not.\n"
    "\n"
    "--db DIR              the store directory. Default: $PYLOOT_DB\n"
    "--json, --csv         machine-readable output (--json: what /api/procs answers)\n";

const char cli_history_help[] =
    "usage: pyloot history --db DIR [-q TEXT] [--sort KEY] [--limit N] [--offset N]\n"
    "                      [--pid PID] [--since TIME] [--until TIME] [--trend LIST] [--json | --csv]\n"
    "\n"
    "Object counts by type, as of a moment: the types' count and bytes at --until, and their\n"
    "growth between --since and --until. Without --until: now while a process of the store is\n"
    "alive, otherwise the last moment one was (the output says which). TREND says how each type's\n"
    "count moved over the window: growing, levelled (grew, then stopped: a filled cache?), flat\n"
    "or falling.\n"
    "\n"
    "--db DIR              the store directory. Default: $PYLOOT_DB\n"
    "-q TEXT               only types whose name contains TEXT (case-insensitive)\n"
    "--sort KEY            growth (default: count growth), count, name, bytes (shallow bytes now)\n"
    "                      or bytes_growth\n"
    "--limit N             types to print (default 50, at most 1000)\n"
    "--offset N            skip the first N types\n"
    "--pid PID             one process instead of the merged processes\n"
    "--since TIME          start of the window (default: the first sample)\n"
    "--until TIME          the moment counts are taken at (default: see above)\n"
    "                      TIME: unix seconds, ISO 8601 (2026-11-28T09:30:00Z, 2026-11-28 09:30,\n"
    "                      +01:00 offsets; UTC when none), or back from now: -90s, -30m, -2h, -1d\n"
    "--trend LIST          only types of these trends, comma-separated: growing,levelled,flat,falling\n"
    "--json, --csv         machine-readable output (--json: what /api/history answers)\n";

const struct cli_option cli_history_options[] = {
    {"-q", NULL, 1},       {"--sort", NULL, 1},  {"--limit", NULL, 1}, {"--offset", NULL, 1},
    {"--pid", NULL, 1},    {"--since", NULL, 1}, {"--until", NULL, 1}, {"--trend", NULL, 1},
    {NULL, NULL, 0},
};

/* ---- terminal output ---- */

static void fmt_time(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (!ms) {
        snprintf(out, len, "-");
        return;
    }
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Writes s as one CSV field (quoted when it needs to be). */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* See cli.h. */
int cli_print_api_json(pl_store *store, const char *path, const char *query)
{
    pl_handler *h = NULL;
    pl_handler_options opt;
    /* Whoever runs the command reads the store's files already: it is let in
     * as an allow callable would let a request in. */
    pl_request req = {.method = "GET", .path = path, .query = query, .allowed = PL_ALLOW_YES};
    pl_response resp;
    int status;

    memset(&opt, 0, sizeof opt);
    opt.store = store;
    opt.disable_gzip = 1;
    if (pl_handler_new(&h, &opt)) {
        cli_fail("answering", "out of memory");
        return 1;
    }
    pl_handler_handle(h, &req, &resp);
    fwrite(resp.body.data ? resp.body.data : "", 1, resp.body.len, stdout);
    fputc('\n', stdout);
    status = resp.status;
    if (status != 200)
        cli_fail(path, resp.body.data ? resp.body.data : "error");
    pl_response_free(&resp);
    pl_handler_free(h);
    return status == 200 ? 0 : status == 400 ? 2 : 1;
}

int cli_procs(const struct cli_globals *g, int argc, char **argv)
{
    pl_store *store = NULL;
    pl_proc_info *procs = NULL;
    size_t n = 0, i;
    int rc;

    (void)argc;
    (void)argv;
    if (cli_open_store(g, &store))
        return 1;
    if (g->format == 'j') {
        rc = cli_print_api_json(store, "/api/procs", NULL);
        pl_store_close(store);
        return rc;
    }
    rc = pl_store_procs(store, &procs, &n);
    pl_store_close(store);
    if (rc) {
        cli_fail("reading the store", pl_strerror(rc));
        return 1;
    }
    if (g->format == 'c')
        printf("pid,start,alive,started,last_seen,ended,samples,rss,host,argv,end\n");
    else
        printf("%-8s %-6s %-19s  %-19s  %-19s  %-18s %8s %10s  %s\n", "PID", "ALIVE", "STARTED (UTC)",
               "LAST SEEN", "ENDED", "END", "SAMPLES", "RSS", "COMMAND");
    for (i = 0; i < n; i++) {
        const pl_proc_info *p = &procs[i];
        char started[32], seen[32], ended[32], end[48];

        pl_proc_end_text(p, end, sizeof end);
        fmt_time(p->first_seen_ms, started, sizeof started);
        fmt_time(p->last_seen_ms, seen, sizeof seen);
        fmt_time(p->ended_ms, ended, sizeof ended);
        if (g->format == 'c') {
            printf("%u,%" PRIu64 ",%s,%s,%s,%s,%u,%" PRIu64 ",", p->inc.pid, p->inc.start,
                   p->alive ? "true" : "false", started, seen, p->ended_ms ? ended : "", p->samples,
                   p->rss);
            csv_field(stdout, p->host);
            fputc(',', stdout);
            csv_field(stdout, p->argv);
            fputc(',', stdout);
            csv_field(stdout, end);
            fputc('\n', stdout);
        } else {
            printf("%-8u %-6s %-19s  %-19s  %-19s  %-18s %8u %9.1fM  %.60s\n", p->inc.pid,
                   p->alive ? "yes" : "no", started, seen, ended, end, p->samples, p->rss / 1048576.0,
                   p->argv);
        }
    }
    free(procs);
    return 0;
}

static int bad(const char *why)
{
    cli_fail("reading the arguments", why);
    return 2;
}

/* Parses history's own options into q and the equivalent HTTP query. */
static int history_args(int argc, char **argv, pl_history_query *q, pl_buf *raw)
{
    int64_t now = pl_now_ms(), t;
    uint64_t v;
    int i;

    for (i = 0; i + 1 < argc; i += 2) {
        const char *a = argv[i], *val = argv[i + 1];

        if (strcmp(a, "-q") == 0) {
            const unsigned char *p;

            if (strlen(val) > 256)
                return bad("-q must be at most 256 bytes");
            q->q = val;
            pl_buf_puts(raw, "&q=");
            for (p = (const unsigned char *)val; *p; p++)
                pl_buf_printf(raw, "%%%02X", *p);
        } else if (strcmp(a, "--sort") == 0) {
            if ((q->sort = pl_sort_from_name(val, strlen(val))) < 0) {
                char why[128];
                snprintf(why, sizeof why, "--sort must be %s", pl_sort_list);
                return bad(why);
            }
            pl_buf_printf(raw, "&sort=%s", val);
        } else if (strcmp(a, "--limit") == 0) {
            if (cli_parse_num(val, 1, 1000, &q->limit))
                return bad("--limit must be a number from 1 to 1000");
            pl_buf_printf(raw, "&limit=%s", val);
        } else if (strcmp(a, "--offset") == 0) {
            if (cli_parse_num(val, 0, 1000000000, &q->offset))
                return bad("--offset must be a number from 0 to 1000000000");
            pl_buf_printf(raw, "&offset=%s", val);
        } else if (strcmp(a, "--pid") == 0) {
            if (cli_parse_num(val, 1, 4194304, &v))
                return bad("--pid must be a number from 1 to 4194304");
            q->pid = (uint32_t)v;
            pl_buf_printf(raw, "&pid=%s", val);
        } else if (strcmp(a, "--trend") == 0) {
            if (pl_trend_mask_parse(val, strlen(val), &q->trends)) {
                char why[128];
                snprintf(why, sizeof why, "--trend must be a comma-separated list of %s", pl_trend_list);
                return bad(why);
            }
            pl_buf_printf(raw, "&trend=%s", val);
        } else if (strcmp(a, "--since") == 0 || strcmp(a, "--until") == 0) {
            if (cli_parse_time(val, now, &t) || t <= 0)
                return bad(a[2] == 's' ? "--since must be unix seconds, an ISO 8601 time or an "
                                         "offset such as -2h"
                                       : "--until must be unix seconds, an ISO 8601 time or an "
                                         "offset such as -2h");
            if (a[2] == 's')
                q->since_ms = t;
            else
                q->until_ms = t;
            pl_buf_printf(raw, "&%s=%" PRId64 ".%03" PRId64, a + 2, t / 1000, t % 1000);
        }
    }
    if (q->since_ms && q->until_ms && q->until_ms <= q->since_ms)
        return bad("--until must be after --since");
    if (q->until_ms > now + PL_HISTORY_FUTURE_MS || q->since_ms > now + PL_HISTORY_FUTURE_MS)
        return bad("--since and --until must not be in the future");
    return 0;
}

int cli_history(const struct cli_globals *g, int argc, char **argv)
{
    pl_store *store = NULL;
    pl_history_query q;
    pl_history *h = NULL;
    pl_buf raw = PL_BUF_INIT; /* the same options as an HTTP query, for --json */
    char when[32];
    size_t i;
    int rc, code = 1;

    memset(&q, 0, sizeof q);
    q.sort = PL_SORT_GROWTH;
    q.limit = 50;
    q.now_ms = pl_now_ms();
    code = history_args(argc, argv, &q, &raw);
    if (code)
        goto out;
    code = 1;
    if (cli_open_store(g, &store))
        goto out;
    if (g->format == 'j') {
        code = cli_print_api_json(store, "/api/history", raw.len ? raw.data + 1 : NULL);
        goto out;
    }
    rc = pl_store_history(store, &q, &h);
    if (rc == PL_ENOTFOUND && q.pid) {
        char why[64];

        snprintf(why, sizeof why, "no incarnation with pid %u in this store", q.pid);
        cli_fail("reading the history", why);
        goto out;
    }
    if (rc == PL_ECORRUPT) {
        /* Say it is damage, and where (the pages are sound: cli_open_store checked them). */
        pl_store_damage d;
        char why[600];

        if (pl_store_check_records(store, &d) == 0 && d.records) {
            snprintf(why, sizeof why, "store damaged: %" PRIu64 " record%s could not be read (first: %s); "
                     "pyloot report reads past them", d.records, d.records == 1 ? "" : "s", d.first);
            cli_fail("reading the history", why);
            code = CLI_EXIT_DAMAGED;
            goto out;
        }
    }
    if (rc) {
        cli_fail("reading the history", pl_strerror(rc));
        goto out;
    }
    if (g->format == 'c') {
        printf("name,count,bytes,growth,bytes_growth,trend\n");
    } else {
        fmt_time(h->as_of_ms, when, sizeof when);
        printf("as of %s UTC (%s)", when, h->live ? "live" : "no process alive then");
        if (h->since_ms) {
            fmt_time(h->since_ms, when, sizeof when);
            printf(", growth since %s UTC", when);
        }
        printf("\n%12s %12s %14s %14s  %-9s %s\n", "COUNT", "GROWTH", "BYTES", "BYTES GROWTH", "TREND", "TYPE");
    }
    for (i = 0; i < h->n_types; i++) {
        const pl_history_type *t = &h->types[i];

        if (g->format == 'c') {
            csv_field(stdout, t->name);
            printf(",%" PRIu64 ",%" PRIu64 ",%" PRId64 ",%" PRId64 ",%s\n", t->count, t->bytes, t->growth,
                   t->bytes_growth, pl_trend_names[t->trend]);
        } else {
            printf("%12" PRIu64 " %+12" PRId64 " %14" PRIu64 " %+14" PRId64 "  %-9s %s\n", t->count, t->growth,
                   t->bytes, t->bytes_growth, pl_trend_names[t->trend], t->name);
        }
    }
    if (g->format != 'c')
        printf("(%zu of %" PRIu64 " types)\n", h->n_types, h->total);
    code = 0;
out:
    pl_history_free(h);
    pl_store_close(store);
    pl_buf_free(&raw);
    return code;
}
