/* pyloot: the command-line program: argument parsing and dispatch.
 *
 *   pyloot [serve] [-h HOST] [-p PORT] [--db DIR] [--token T] [--read-only]
 *                                                 the central server: takes workers' pushes
 *                                                 into a store and serves its UI and API
 *                                                 (serve.c, central.c)
 *   pyloot procs --db DIR [--json|--csv]          the incarnations of a store (tables.c)
 *   pyloot history --db DIR [...]                 object counts by type (tables.c)
 *   pyloot report --db DIR [--json]               a leak report (report.c)
 *   pyloot routes --db DIR [--group T] [--json]   requests by route, growth per request (routes.c)
 *   pyloot stores [--root DIR] [--json]           the zero-config stores (stores.c)
 *   pyloot heap FILE [NEW] [--json]               heap dumps: one, or two compared (heap.c)
 *
 * Global options (struct cli_globals) may stand before or after the
 * subcommand; a subcommand's own options come after its name. Adding a
 * subcommand is one entry in `commands` below and one function (cli.h).
 * Never links libpython. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pyloot/access.h"

static const char usage[] =
    "usage: pyloot [-h HOST] [-p PORT] [--db DIR] [--token TOKEN] [--read-only] [--no-gzip] [--help]\n"
    "              [--version] [--heap FILE [--heap NEW]]\n"
    "       pyloot [--db DIR] [--json | --csv] COMMAND [options]\n"
    "\n"
    "Collect the samples of pyloot workers on many hosts (PyLoot(host=..., port=...)) into a store\n"
    "and serve its UI and HTTP API; or serve, or print, what a store holds.\n"
    "\n"
    "commands:\n"
    "  serve               take workers' pushes, serve the UI and the HTTP API (the default)\n"
    "  procs               every process incarnation of the store\n"
    "  history             object counts by type, as of a moment (--since, --until)\n"
    "  report              a leak report: what grew, how fast, where, and what held it\n"
    "  routes              requests by route; with --group T, how much T grows per request of each\n"
    "  stores              this user's zero-config stores: service, last write, size, workers\n"
    "  heap FILE [NEW]     a heap dump: top types, biggest retainers; or what grew between two\n"
    "`pyloot COMMAND --help` describes a command's options.\n"
    "\n"
    "global options (before or after the command):\n"
    "-h HOST, --host HOST  Host to listen on. (Default: 0.0.0.0; with --read-only, 127.0.0.1)\n"
    "-p PORT, --port PORT  Port to listen on. (Default: 8000)\n"
    "--db DIR              The store directory. Serving, it is created if missing (default: $PYLOOT_DB,\n"
    "                      else $XDG_DATA_HOME/pyloot, else ~/.local/share/pyloot); the commands\n"
    "                      open it read-only (default: $PYLOOT_DB)\n"
    "--token TOKEN         Require this token (Authorization: Bearer, or the UI's login) for every\n"
    "                      route but the UI files. Default: $PYLOOT_TOKEN. Without one, live-object\n"
    "                      routes answer only requests from a loopback address that carry\n"
    "                      no proxy header (X-Forwarded-For, Forwarded, X-Real-IP)\n"
    "--read-only           Serve an existing store (a server's PyLoot(path=...)); take no pushes;\n"
    "                      on 127.0.0.1 unless -h is given\n"
    "--heap FILE           Serve the UI's Heap view of a heap dump (twice: OLD then NEW, compared);\n"
    "                      read-only, on 127.0.0.1 unless -h is given, with --db's store if given\n"
    "--no-gzip             Never gzip responses\n"
    "--json, --csv         machine-readable output instead of a table\n"
    "--help                show this help message (or a command's) and exit; so does -h\n"
    "                      with no value after it\n"
    "--version             show the version and exit\n";

static const struct cli_option no_options[] = {{NULL, NULL, 0}};

static const struct cli_command commands[] = {
    {"serve", cli_serve_help, cli_serve_options, cli_serve, 0},
    {"procs", cli_procs_help, no_options, cli_procs, 0},
    {"history", cli_history_help, cli_history_options, cli_history, 0},
    {"report", cli_report_help, cli_report_options, cli_report, 0},
    {"routes", cli_routes_help, cli_routes_options, cli_routes, 0},
    {"heap", cli_heap_help, cli_heap_options, cli_heap, 1},
    {"stores", cli_stores_help, cli_stores_options, cli_stores, 0},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* The global options; `takes_value` as in cli_option. */
static const struct cli_option globals[] = {
    {"--host", "-h", 1}, {"--port", "-p", 1},    {"--db", NULL, 1},   {"--token", NULL, 1},
    {"--json", NULL, 0}, {"--csv", NULL, 0},     {"--no-gzip", NULL, 0}, {"--help", NULL, 0},
    {"--read-only", NULL, 0}, {"--heap", NULL, 1},
    {"--version", NULL, 0}, {NULL, NULL, 0},
};

/* The option of table t named like a (up to `len` bytes), or NULL. */
static const struct cli_option *find_option(const struct cli_option *t, const char *a, size_t len)
{
    for (; t && t->name; t++)
        if ((strlen(t->name) == len && strncmp(a, t->name, len) == 0) ||
            (t->alias && strlen(t->alias) == len && strncmp(a, t->alias, len) == 0))
            return t;
    return NULL;
}

static const struct cli_command *find_command(const char *name)
{
    size_t i;

    for (i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int bad_args(const char *fmt, const char *arg, const struct cli_command *cmd)
{
    fprintf(stderr, "pyloot: reading the arguments failed: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", cmd ? cmd->help : usage);
    return 2;
}

/* Sets one global option (o) to val. 0, 2 for a bad value, or -1 for
 * --help / --version (printed). */
static int set_global(struct cli_globals *g, const struct cli_option *o, const char *val,
                      const struct cli_command *cmd)
{
    uint64_t v;

    if (strcmp(o->name, "--help") == 0) {
        fputs(cmd ? cmd->help : usage, stdout);
        return -1;
    }
    if (strcmp(o->name, "--version") == 0) {
        printf("pyloot %s\n", PYLOOT_VERSION);
        return -1;
    }
    if (strcmp(o->name, "--json") == 0)
        g->format = 'j';
    else if (strcmp(o->name, "--csv") == 0)
        g->format = 'c';
    else if (strcmp(o->name, "--no-gzip") == 0)
        g->no_gzip = 1;
    else if (strcmp(o->name, "--read-only") == 0)
        g->read_only = 1;
    else if (strcmp(o->name, "--host") == 0) {
        g->host = val;
        g->host_given = 1;
    } else if (strcmp(o->name, "--heap") == 0) {
        if (g->nheap == 2) {
            cli_fail("reading the arguments", "--heap is given once (a dump) or twice (OLD and NEW)");
            return 2;
        }
        g->heap[g->nheap++] = val;
    }
    else if (strcmp(o->name, "--db") == 0)
        g->db = val;
    else if (strcmp(o->name, "--token") == 0)
        g->token = val;
    else if (strcmp(o->name, "--port") == 0) {
        if (cli_parse_num(val, 1, 65535, &v)) {
            cli_fail("reading the arguments", "--port must be a number from 1 to 65535");
            return 2;
        }
        g->port = val;
    }
    return 0;
}

/* `-h` is --host's short name, as in the seed (`pyloot -h 127.0.0.1`), and
 * also what people type for help: `-h` with no value after it (last, or
 * followed by another option; a host never starts with '-') means --help. */
static int help_by_h(int argc, char **argv, int i)
{
    return strcmp(argv[i], "-h") == 0 && (i + 1 >= argc || argv[i + 1][0] == '-');
}

/* Finds the subcommand: the first argument that is neither an option nor
 * the value of a global option. An option before it that is not global is
 * refused (its arity is unknown until the command is). */
static int find_subcommand(int argc, char **argv, const struct cli_command **cmd, int *at)
{
    int i;

    *cmd = NULL;
    *at = -1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        size_t len = a[0] == '-' && eq ? (size_t)(eq - a) : strlen(a);
        const struct cli_option *o;

        if (a[0] != '-') {
            *cmd = find_command(a);
            if (!*cmd)
                return bad_args("unknown argument %s", a, NULL);
            *at = i;
            return 0;
        }
        o = find_option(globals, a, len);
        if (!o)
            return 0; /* reported with the right help by the main loop */
        if (o->takes_value && !eq && !help_by_h(argc, argv, i))
            i++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cli_globals g = {"0.0.0.0", "8000", getenv("PYLOOT_DB"), getenv("PYLOOT_TOKEN"), 't', 0, 0, 0, {NULL, NULL}, 0};
    const struct cli_command *cmd = NULL;
    char **own = calloc((size_t)argc * 2 + 1, sizeof *own);
    int n_own = 0, at, i, code = 2;

    if (!own) {
        cli_fail("starting", "out of memory");
        return 1;
    }
    if (find_subcommand(argc, argv, &cmd, &at))
        goto out;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        size_t len = a[0] == '-' && eq ? (size_t)(eq - a) : strlen(a);
        const struct cli_option *o;
        const char *val = NULL;
        int global = 1, rc;

        if (i == at)
            continue;
        if (help_by_h(argc, argv, i)) {
            a = "--help";
            len = strlen(a);
        }
        o = a[0] == '-' ? find_option(globals, a, len) : NULL;
        if (!o && a[0] == '-' && cmd && i > at) {
            o = find_option(cmd->options, a, len);
            global = 0;
        }
        if (!o && a[0] != '-' && cmd && i > at && cmd->positional) {
            own[n_own++] = (char *)"";
            own[n_own++] = argv[i];
            continue;
        }
        if (!o) {
            code = bad_args("unknown argument %s", a, cmd);
            goto out;
        }
        if (o->takes_value) {
            val = eq && a[0] == '-' ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!val) {
                code = bad_args("%s needs a value", o->name, cmd);
                goto out;
            }
        } else if (eq && a[0] == '-') {
            code = bad_args("%s takes no value", o->name, cmd);
            goto out;
        }
        if (!global) {
            own[n_own++] = (char *)o->name;
            own[n_own++] = (char *)val;
            continue;
        }
        rc = set_global(&g, o, val, cmd);
        if (rc) {
            code = rc < 0 ? 0 : rc;
            goto out;
        }
    }
    if (!cmd)
        cmd = find_command("serve");
    if (g.token && *g.token && !pl_token_valid(g.token)) {
        cli_fail("reading the arguments", "the token (--token or PYLOOT_TOKEN) must be 1 to 1024 "
                                          "visible ASCII characters other than '\"', ',', ';' and '\\'");
        goto out;
    }
    code = cmd->run(&g, n_own, own);
out:
    free(own);
    return code;
}
