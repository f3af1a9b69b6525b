/* pyloot CLI: `pyloot report` (report.c), a leak report for a store, live
 * or dead. Single-threaded; prints to stdout, errors to stderr. */
#ifndef PYLOOT_CLI_REPORT_H
#define PYLOOT_CLI_REPORT_H

#include <stdint.h>

#include "pyloot/store.h"

/* Prints the report of `store` (opened by the caller, read-only is enough):
 * format 'j' for JSON, anything else for text; at most `limit` growers
 * (1..1000), ranked by `sort`: PL_SORT_BYTES_GROWTH (shallow bytes gained)
 * or PL_SORT_GROWTH (objects gained). Returns the process exit code: 0; CLI_EXIT_DAMAGED (3) when
 * records of the store do not decode (the report is printed past them and
 * ends with a "store damaged: ..." line); or 1 with "pyloot: ... failed:
 * ..." on stderr. */
int pl_cli_report(pl_store *store, int format, uint64_t limit, int sort);

#endif
