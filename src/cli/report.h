/* pyloot CLI: `pyloot report` (report.c), a leak report for a store, live
 * or dead. Single-threaded; prints to stdout, errors to stderr. */
#ifndef PYLOOT_CLI_REPORT_H
#define PYLOOT_CLI_REPORT_H

#include <stdint.h>

#include "pyloot/route_obs.h"
#include "pyloot/store.h"

/* Prints the report of `store` (opened by the caller, read-only is enough):
 * format 'j' for JSON, anything else for text; at most `limit` growers
 * (1..1000), ranked by `sort`: PL_SORT_BYTES_GROWTH (shallow bytes gained)
 * or PL_SORT_GROWTH (objects gained). Returns the process exit code: 0; CLI_EXIT_DAMAGED (3) when
 * records of the store do not decode (the report is printed past them and
 * ends with a "store damaged: ..." line); or 1 with "pyloot: ... failed:
 * ..." on stderr. */
int pl_cli_report(pl_store *store, int format, uint64_t limit, int sort);

/* The memory section (report_memory.c). Reads every worker's figures over
 * all the samples: 0 with *out (free with pl_memory_free), or the store's
 * error. */
int pl_cli_report_memory_read(pl_store *store, pl_memory **out);
/* Prints the section: per worker (then merged) the RSS growth and what
 * Python objects, the allocators' free bytes and other memory explain of
 * it. m may be NULL (not read). */
void pl_cli_report_memory_text(const pl_memory *m);
/* Appends "memory":{"workers":[{pid, start, host, rss, rss_growth,
 * python_bytes_growth, allocator_free_bytes_growth, other_bytes_growth,
 * outside_python}], "merged":{...} or null} to b. */
void pl_cli_report_memory_json(pl_buf *b, const pl_memory *m);

/* The route section of each grower (report_routes.c). Fits the growth of
 * `type` per request of each route over every sample: 0 with *out (free
 * with pl_route_growth_free), or *out NULL when the store has no requests
 * by route or no history of type; else the store's error. */
int pl_cli_report_route_read(pl_store *store, const char *type, pl_route_growth_result **out);
/* Prints "    grows with ROUTE: +X per request (...)" for the route with the
 * largest contribution, or that none explains the growth; nothing for g NULL. */
void pl_cli_report_route_text(const pl_route_growth_result *g);
/* Appends "route":{route, per_request, requests, contribution, separable,
 * r2} or "route":null to b. */
void pl_cli_report_route_json(pl_buf *b, const pl_route_growth_result *g);

#endif
