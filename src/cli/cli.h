/* pyloot command: what the subcommands share (internal to src/cli/).
 *
 * main.c parses the command line: global options (cli_globals) may stand
 * before or after the subcommand; everything else after the subcommand's
 * name is handed to that subcommand's `run` as argc/argv, options and their
 * values in order. A subcommand is one entry of the table in main.c plus
 * one function: declare its options (so that main.c knows which take a
 * value) and its --help text.
 *
 * Exit codes: 0 success, 1 a store that cannot be opened or read, 2 bad
 * arguments. Errors print "pyloot: <what> failed: <why>" on stderr
 * (cli_fail). */
#ifndef PYLOOT_CLI_H
#define PYLOOT_CLI_H

#include <stdint.h>

#include "pyloot/store.h"

/* Exit status of a command that read past records of the store that do not
 * decode (its output ends with "store damaged: ..."; docs/cli.md). */
#define CLI_EXIT_DAMAGED 3

/* Options every subcommand accepts, anywhere on the command line. */
struct cli_globals {
    const char *host;   /* -h/--host; default 0.0.0.0 (cli_serve: --read-only, --heap 127.0.0.1) */
    const char *port;   /* -p/--port; default 8000 */
    const char *db;     /* --db; default $PYLOOT_DB */
    const char *token;  /* --token; default $PYLOOT_TOKEN */
    int format;         /* 't' table (default), 'j' --json, 'c' --csv */
    int no_gzip;        /* --no-gzip */
    int read_only;      /* --read-only: serve an existing store, take no pushes */
    int host_given;     /* -h/--host was given */
    const char *heap[2];/* --heap FILE (at most twice): serve these heap dumps */
    int nheap;
};

/* One option of a subcommand. */
struct cli_option {
    const char *name;   /* "--limit" */
    const char *alias;  /* "-q", or NULL */
    int takes_value;
};

struct cli_command {
    const char *name;
    const char *help;                   /* printed by `pyloot NAME --help` */
    const struct cli_option *options;   /* its own options; ends with {NULL} */
    /* argv[0..argc): this subcommand's options (never the global ones) as
     * pairs: the option's long name, then its value (NULL for a flag);
     * `--opt=value` and aliases are already resolved. Checks them first, then
     * opens the store with cli_open_store. Returns the exit code. */
    int (*run)(const struct cli_globals *g, int argc, char **argv);
    int positional;  /* takes arguments that are not options: handed to run as the
                      * pair ("", argument) */
};

/* common.c: opens g->db read-only into *store (close with pl_store_close);
 * prints why not and returns -1 when it cannot. */
int cli_open_store(const struct cli_globals *g, pl_store **store);

/* common.c: prints "pyloot: <what> failed: <why>" to stderr. */
void cli_fail(const char *what, const char *why);

/* common.c: v bytes in human units into out: "512 B", "40.0 KiB",
 * "1.2 MiB", "3.0 GiB" (1024-based); with sign, "+" before a value >= 0 as
 * well ("+63.6 MiB"). Thread-safe. */
void cli_fmt_bytes(int64_t v, int sign, char *out, size_t len);

/* common.c: strict decimal within [lo, hi] (pl_parse_u64): 0, or -1 for
 * anything else. */
int cli_parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* common.c: parses a point in time for --since/--until into unix
 * milliseconds: unix seconds with up to three decimals ("1764320000",
 * "1764320000.5"), ISO 8601 in UTC or with an offset
 * ("2026-11-28T09:30:00Z", "2026-11-28 09:30", "2026-11-28T09:30:00+01:00",
 * "2026-11-28"), or an offset back from now_ms ("-2h", "-30m", "-1d", "-90s").
 * 0, or -1 when s is none of these. Thread-safe. */
int cli_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* Subcommands (tables.c, serve.c). */
/* tables.c: runs one GET of `path` with `query` (NULL: none) through the
 * shared handler, let in as the store's reader (value routes too), and prints its JSON body (an error too, as JSON on
 * stdout, and "pyloot: ... failed" on stderr). Returns the exit code: 0,
 * 2 for a 400, else 1. */
int cli_print_api_json(pl_store *store, const char *path, const char *query);

int cli_procs(const struct cli_globals *g, int argc, char **argv);
int cli_history(const struct cli_globals *g, int argc, char **argv);
int cli_serve(const struct cli_globals *g, int argc, char **argv);

extern const struct cli_option cli_history_options[];
extern const char cli_history_help[];
extern const char cli_procs_help[];
extern const char cli_serve_help[];
extern const struct cli_option cli_serve_options[];

/* `pyloot report` (report.c). */
/* routes.c: `pyloot routes`, requests by route and a type's growth per request. */
int cli_routes(const struct cli_globals *g, int argc, char **argv);
extern const struct cli_option cli_routes_options[];
extern const char cli_routes_help[];

int cli_report(const struct cli_globals *g, int argc, char **argv);
extern const struct cli_option cli_report_options[];
extern const char cli_report_help[];

/* `pyloot stores` (stores.c). */
int cli_stores(const struct cli_globals *g, int argc, char **argv);
extern const struct cli_option cli_stores_options[];
extern const char cli_stores_help[];

/* `pyloot heap` (heap.c). */
int cli_heap(const struct cli_globals *g, int argc, char **argv);
/* heap.c: {"files": [...], "report": (the last dump's), "diff": (the two's) or null}, what GET
 * /api/heap serves for `pyloot --heap`. Prints why and returns nonzero when a file is not a usable
 * dump. */
int cli_heap_json(const char *const *files, int n, pl_buf *out);
extern const struct cli_option cli_heap_options[];
extern const char cli_heap_help[];

#endif
