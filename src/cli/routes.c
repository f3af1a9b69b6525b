/* pyloot routes: the requests of each route over the store's samples and,
 * with --group, how much a type grows per request of each route (the
 * answers of GET /api/routes, as a table or, with --json, as the route's
 * JSON). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pyloot/error.h"
#include "pyloot/route_obs.h"

const char cli_routes_help[] =
    "usage: pyloot routes --db DIR [--group TYPE] [--pid N] [--limit N] [--json]\n"
    "\n"
    "The requests each route served (counted by PyLoot.track_requests in every worker), most\n"
    "requested first; with --group, how much TYPE's count grows per request of each route, ranked by\n"
    "its contribution (per request x requests). The answers of GET /api/routes.\n"
    "\n"
    "--db DIR              the store directory. Default: $PYLOOT_DB\n"
    "--group TYPE          a type name as `pyloot history` prints it\n"
    "--pid N               only the incarnations of this pid\n"
    "--limit N             routes to print (default 100, at most 1000)\n"
    "--json                the JSON of GET /api/routes instead of a table\n";

const struct cli_option cli_routes_options[] = {
    {"--group", NULL, 1}, {"--pid", NULL, 1}, {"--limit", NULL, 1}, {NULL, NULL, 0}};

static int bad(const char *why)
{
    cli_fail("reading the arguments", why);
    return 2;
}

static void print_totals(const pl_route_totals *t, uint64_t limit)
{
    printf("%12s  %s\n", "REQUESTS", "ROUTE");
    for (size_t i = 0; i < t->n && i < limit; i++)
        printf("%12" PRIu64 "  %s\n", t->routes[i].requests, t->routes[i].name);
    if (!t->n)
        printf("(no requests by route: no worker of this store counted its requests)\n");
}

static void print_growth(const char *group, const pl_route_growth_result *g, uint64_t limit)
{
    printf("%s: %zu observations (%zu outliers left out), r2 %.3f, intercept %+.3f per interval\n", group,
           g->fit.observations, g->fit.outliers, g->fit.r2, g->fit.intercept);
    printf("%12s %12s %10s %12s  %s\n", "REQUESTS", "PER REQUEST", "STDERR", "CONTRIBUTION", "ROUTE");
    for (size_t i = 0; i < g->n && i < limit; i++) {
        const pl_route_growth *r = &g->routes[i];
        printf("%12" PRIu64 " %+12.4f %10.4f %+12.1f  %s%s\n", r->requests, r->coef.per_request, r->coef.stderr_,
               r->contribution, r->name, r->coef.separable ? "" : " (not told apart)");
    }
}

/* See cli.h. */
int cli_routes(const struct cli_globals *g, int argc, char **argv)
{
    pl_store *store = NULL;
    pl_routes_query q;
    pl_route_totals *totals = NULL;
    pl_route_growth_result *growth = NULL;
    const char *group = NULL;
    uint64_t limit = 100, pid = 0;
    char raw[1200] = "", *at = raw;
    int rc, code = 1;

    memset(&q, 0, sizeof q);
    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--limit") == 0 && cli_parse_num(argv[i + 1], 1, 1000, &limit))
            return bad("--limit must be a number from 1 to 1000");
        if (strcmp(argv[i], "--pid") == 0 && cli_parse_num(argv[i + 1], 1, 4194304, &pid))
            return bad("--pid must be a number from 1 to 4194304");
        if (strcmp(argv[i], "--group") == 0) {
            group = argv[i + 1];
            if (!*group || strlen(group) > PL_TYPE_NAME_MAX)
                return bad("--group must be a type name of 1 to 1024 bytes");
        }
    }
    q.pid = (uint32_t)pid;
    if (cli_open_store(g, &store))
        return 1;
    if (g->format == 'j') {
        /* The same answer as the route: its query, the group escaped. */
        at += snprintf(at, 32, "limit=%" PRIu64, limit);
        if (pid)
            at += snprintf(at, 32, "&pid=%" PRIu64, pid);
        if (group) {
            at += snprintf(at, 8, "&group=");
            for (const unsigned char *p = (const unsigned char *)group; *p; p++)
                at += snprintf(at, 4, "%%%02X", *p);
        }
        code = cli_print_api_json(store, "/api/routes", raw);
        goto out;
    }
    rc = pl_route_totals_read(store, &q, &totals);
    if (rc == 0 && group) {
        rc = pl_route_growth_read(store, &q, totals, group, 0, pl_now_ms(), &growth);
        totals = NULL;
        if (rc == PL_ENOTFOUND) {
            cli_fail("reading the routes", "no type of that name in this store");
            goto out;
        }
    }
    if (rc == PL_ENOTFOUND) {
        cli_fail("reading the routes", "no incarnation with that pid in this store");
        goto out;
    }
    if (rc) {
        cli_fail("reading the routes", pl_strerror(rc));
        goto out;
    }
    if (growth)
        print_growth(group, growth, limit);
    else
        print_totals(totals, limit);
    code = 0;
out:
    pl_route_growth_free(growth);
    pl_route_totals_free(totals);
    pl_store_close(store);
    return code;
}
