/* pyloot stores: the zero-config stores under a root (default: this user's,
 * pl_service_default_root), each with its service (working directory and
 * command line, secrets redacted), last write, size and workers. The list
 * and the service files are core (pyloot/service.h); this file opens each
 * store read-only for its workers and prints. docs/cli.md shows an example. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "pyloot/error.h"
#include "pyloot/json.h"
#include "pyloot/redact.h"
#include "pyloot/service.h"
#include "pyloot/verify.h"

const char cli_stores_help[] =
    "usage: pyloot stores [--root DIR] [--json]\n"
    "\n"
    "The zero-config stores of this user (one per service: a working directory and a command\n"
    "line), with their service, last write, size and workers (alive, ended). Stores idle longer\n"
    "than their retention are removed by the next pyloot that starts.\n"
    "\n"
    "--root DIR            where to look (default: $TMPDIR/pyloot-<uid>, else\n"
    "                      $XDG_RUNTIME_DIR/pyloot, else ~/.cache/pyloot-<uid>: the first that is\n"
    "                      a directory of this user that no one else can write)\n"
    "--json                one JSON document instead of a table\n";

const struct cli_option cli_stores_options[] = {{"--root", NULL, 1}, {NULL, NULL, 0}};

/* A store's workers, read through a read-only guarded open. */
struct workers {
    size_t alive, ended;
    char error[256]; /* "" when read */
};

static void count_workers(const char *root, const char *name, struct workers *w)
{
    char path[4400];
    pl_store_options opt;
    pl_store_report rep;
    pl_store *store = NULL;
    pl_proc_info *procs = NULL;
    size_t n = 0;
    int rc;

    memset(w, 0, sizeof *w);
    snprintf(path, sizeof path, "%s/%s", root, name);
    memset(&opt, 0, sizeof opt);
    opt.path = path;
    opt.read_only = 1;
    rc = pl_store_open_guarded(&store, &opt, 0, &rep);
    if (rc == 0)
        rc = pl_store_procs(store, &procs, &n);
    if (rc) {
        snprintf(w->error, sizeof w->error, "%s", pl_strerror(rc));
    } else {
        for (size_t i = 0; i < n; i++) {
            if (procs[i].alive)
                w->alive++;
            else
                w->ended++;
        }
    }
    free(procs);
    pl_store_close(store);
}

static void fmt_utc(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void fmt_size(uint64_t n, char *out, size_t len)
{
    if (n >= (1ull << 30))
        snprintf(out, len, "%.1f GiB", (double)n / (double)(1ull << 30));
    else if (n >= (1ull << 20))
        snprintf(out, len, "%.1f MiB", (double)n / (double)(1ull << 20));
    else
        snprintf(out, len, "%.0f KiB", (double)n / 1024.0);
}

/* Prints s on one line: control characters (a multi-line `python -c`) as spaces. */
static void put_line(const char *s)
{
    for (; *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

static void print_table(const char *root, const pl_store_dir *list, const struct workers *w, size_t n)
{
    pl_buf cmd = PL_BUF_INIT;
    char when[32], size[32], counts[64];

    printf("%-44s  %-19s  %9s  %-20s  %s\n", "STORE", "LAST WRITE (UTC)", "SIZE", "WORKERS", "SERVICE");
    for (size_t i = 0; i < n; i++) {
        fmt_utc(list[i].last_write_ms, when, sizeof when);
        fmt_size(list[i].bytes, size, sizeof size);
        if (w[i].error[0])
            snprintf(counts, sizeof counts, "?");
        else
            snprintf(counts, sizeof counts, "%zu alive, %zu ended", w[i].alive, w[i].ended);
        printf("%-44s  %-19s  %9s  %-20s  ", list[i].name, when, size, counts);
        if (list[i].has_service) {
            pl_buf_reset(&cmd);
            pl_redact_cmdline(NULL, list[i].svc.command, &cmd);
            put_line(list[i].svc.cwd);
            fputs(": ", stdout);
            put_line(pl_buf_cstr(&cmd));
            putchar('\n');
        } else {
            printf("(not recorded: a store of an older pyloot)\n");
        }
        if (w[i].error[0])
            printf("    workers not read: %s\n", w[i].error);
    }
    printf("(%zu store%s under %s)\n", n, n == 1 ? "" : "s", root);
    pl_buf_free(&cmd);
}

static void print_json(const char *root, const pl_store_dir *list, const struct workers *w, size_t n)
{
    pl_buf b = PL_BUF_INIT, cmd = PL_BUF_INIT;
    char path[4400];

    pl_buf_puts(&b, "{\"root\":");
    pl_json_cstr(&b, root);
    pl_buf_puts(&b, ",\"stores\":[");
    for (size_t i = 0; i < n; i++) {
        const pl_store_dir *e = &list[i];
        snprintf(path, sizeof path, "%s/%s", root, e->name);
        pl_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        pl_json_cstr(&b, e->name);
        pl_buf_puts(&b, ",\"path\":");
        pl_json_cstr(&b, path);
        pl_buf_puts(&b, ",\"service\":");
        if (e->has_service) {
            pl_buf_reset(&cmd);
            pl_redact_cmdline(NULL, e->svc.command, &cmd);
            pl_buf_puts(&b, "{\"cwd\":");
            pl_json_cstr(&b, e->svc.cwd);
            pl_buf_puts(&b, ",\"command\":");
            pl_json_cstr(&b, pl_buf_cstr(&cmd));
            pl_buf_putc(&b, '}');
        } else {
            pl_buf_puts(&b, "null");
        }
        pl_buf_printf(&b, ",\"last_write\":%" PRId64 ".%03d,\"bytes\":%" PRIu64 ",\"in_use\":%s,\"retention_s\":%" PRIu64,
                      e->last_write_ms / 1000, (int)(e->last_write_ms % 1000), e->bytes, e->in_use ? "true" : "false",
                      e->max_age_s ? e->max_age_s : (uint64_t)PL_STORE_DEFAULT_MAX_AGE_S);
        if (w[i].error[0]) {
            pl_buf_puts(&b, ",\"workers\":null,\"error\":");
            pl_json_cstr(&b, w[i].error);
        } else {
            pl_buf_printf(&b, ",\"workers\":{\"alive\":%zu,\"ended\":%zu},\"error\":null", w[i].alive, w[i].ended);
        }
        pl_buf_putc(&b, '}');
    }
    pl_buf_puts(&b, "]}\n");
    fwrite(b.data ? b.data : "", 1, b.len, stdout);
    pl_buf_free(&b);
    pl_buf_free(&cmd);
}

/* See cli.h: checks --root, lists the stores, prints them. */
int cli_stores(const struct cli_globals *g, int argc, char **argv)
{
    char root[4096], why[4200];
    const char *given = NULL;
    pl_store_dir *list = NULL;
    struct workers *w = NULL;
    struct stat st;
    size_t n = 0;
    int rc, code = 0;

    for (int i = 0; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--root") == 0)
            given = argv[i + 1];
    if (g->format == 'c') {
        cli_fail("reading the arguments", "pyloot stores prints a table or --json, not --csv");
        return 2;
    }
    if (given) {
        if (!given[0] || strlen(given) >= sizeof root || stat(given, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(why, sizeof why, "--root %s is not a directory", given);
            cli_fail("reading the arguments", why);
            return 2;
        }
        snprintf(root, sizeof root, "%s", given);
    } else if (pl_service_default_root(root, sizeof root) != 0) {
        /* No root yet: no pyloot of this user has stored anything here. */
        if (g->format == 'j') {
            pl_buf b = PL_BUF_INIT;
            pl_buf_puts(&b, "{\"root\":");
            pl_json_cstr(&b, root);
            pl_buf_puts(&b, ",\"stores\":[]}\n");
            fwrite(b.data, 1, b.len, stdout);
            pl_buf_free(&b);
        } else {
            printf("(no stores: %s does not exist or is not usable)\n", root);
        }
        return 0;
    }
    rc = pl_stores_list(root, NULL, &list, &n);
    if (rc) {
        snprintf(why, sizeof why, "%s: %s", root, pl_strerror(rc));
        cli_fail("listing the stores", why);
        return 1;
    }
    w = calloc(n ? n : 1, sizeof *w);
    if (!w) {
        cli_fail("listing the stores", "out of memory");
        code = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        count_workers(root, list[i].name, &w[i]);
    if (g->format == 'j')
        print_json(root, list, w, n);
    else
        print_table(root, list, w, n);
out:
    free(w);
    free(list);
    return code;
}
