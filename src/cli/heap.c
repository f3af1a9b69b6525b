/* `pyloot heap FILE` and `pyloot heap OLD NEW` (docs/cli.md,
 * docs/heapdump.md): what a leak hunt starts with, read from heap dump
 * files without Python. The figures come from the core's report
 * structures (heapdump_report.c); --json prints their JSON, the one the
 * UI's Heap view reads. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "pyloot/error.h"
#include "pyloot/heapdump.h"

const char cli_heap_help[] =
    "usage: pyloot heap FILE [--types N] [--retainers N] [--json]\n"
    "       pyloot heap OLD NEW [--types N] [--retainers N] [--json]\n"
    "\n"
    "Read heap dumps (PyLoot.dump_heap(path), pyloot.dump_heap, GET /api/heapdump).\n"
    "With one file: the top types by bytes and count, the biggest retainers (retained size from\n"
    "the dominator tree) and a path from a root to each. With two dumps of one worker: the types\n"
    "ranked by bytes change, the objects whose retained size grew most, and the old objects that\n"
    "hold the most objects new in NEW (objects are matched by address and type name).\n"
    "\n"
    "--types N             types listed (default 20, at most 10000)\n"
    "--retainers N         retainers and holders listed (default 10, at most 1000)\n"
    "--json                one JSON document instead of text\n"
    "\n"
    "Exit status 1: a file cannot be read or is not a usable heap dump (the message says why).\n";

const struct cli_option cli_heap_options[] = {{"--types", NULL, 1}, {"--retainers", NULL, 1}, {NULL, NULL, 0}};

static void print_size(uint64_t b)
{
    static const char *const unit[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    if (u == 0)
        printf("%" PRIu64 " B", b);
    else
        printf("%.1f %s", v, unit[u]);
}

static void print_repr(const pl_heapdump *d, uint32_t v)
{
    const char *s = d->repr + d->repr_off[v];
    size_t len = d->repr_off[v + 1] - d->repr_off[v];
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len && s[i + 1] == 'n') {
            putchar(' ');
            i++;
        } else {
            putchar((unsigned char)s[i] < 0x20 ? '?' : s[i]);
        }
    }
}

static void print_meta(const char *what, const pl_heapdump *d)
{
    char when[32] = "";
    time_t t = (time_t)(d->time_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("%s: worker %" PRIu32 " on %s at %s, Python %s, %zu objects, %" PRIu32 " references\n", what, d->pid,
           d->host, when, d->python, d->n, d->out_off[d->n]);
    if (d->argv && d->argv[0])
        printf("  %s\n", d->argv);
}

static void print_report(const pl_heapdump_report *r)
{
    const pl_heapdump *d = r->d;
    pl_buf label = PL_BUF_INIT;
    print_meta("heap dump", d);
    printf("  ");
    print_size(r->bytes);
    printf(" in objects, ");
    print_size(pl_heapdump_total(r->t));
    printf(" with the untracked objects they hold\n\ntop types by bytes:\n%12s %12s  %s\n", "count", "bytes",
           "type");
    for (size_t i = 0; i < r->ntypes; i++)
        printf("%12" PRIu64 " %12" PRIu64 "  %s\n", r->types[i].count, r->types[i].bytes, r->types[i].name);
    printf("\nbiggest retainers (retained size: what freeing the object would free):\n");
    for (size_t i = 0; i < r->nretainers; i++) {
        const pl_heapdump_retainer *x = &r->retainers[i];
        printf("%2zu. ", i + 1);
        print_size(x->retained);
        printf("  %s  ", pl_heapdump_type_of(d, x->vertex));
        print_repr(d, x->vertex);
        printf("  (id %" PRIu64 ")\n    held by: %s", d->addr[x->vertex], x->path_cut ? "... " : "");
        for (size_t k = 0; k < x->npath; k++) {
            const pl_heapdump_step *s = &x->path[k];
            if (k) {
                pl_buf_reset(&label);
                pl_heapdump_label(d, s->via, &label);
                printf(" → %.*s%s", (int)label.len, label.data ? label.data : "", label.len ? " → " : "");
            }
            printf("%s", pl_heapdump_type_of(d, s->vertex));
        }
        printf("\n");
    }
    pl_buf_free(&label);
}

static void print_diff(const pl_heapdump_diff *f)
{
    const pl_heapdump *d = f->d;
    print_meta("old", f->old);
    print_meta("new", d);
    if (f->old->pid != d->pid || f->old->start != d->start)
        printf("warning: the dumps come from two different workers; matching objects by address means little\n");
    printf("%zu objects in both, %zu new, %zu gone\n\ntypes by bytes change:\n%12s %12s %12s  %s\n", f->matched,
           f->new_objects, f->gone_objects, "count", "bytes", "now", "type");
    for (size_t i = 0; i < f->ntypes; i++)
        printf("%+12" PRId64 " %+12" PRId64 " %12" PRIu64 "  %s\n", f->types[i].count_change,
               f->types[i].bytes_change, f->types[i].bytes, f->types[i].name);
    printf("\nretained size grew most:\n");
    for (size_t i = 0; i < f->ngrown; i++) {
        const pl_heapdump_holder *x = &f->grown[i];
        printf("%2zu. +", i + 1);
        print_size(x->retained_change);
        printf(" (now ");
        print_size(x->retained);
        printf(")  %s  ", pl_heapdump_type_of(d, x->vertex));
        print_repr(d, x->vertex);
        printf("  (id %" PRIu64 ")\n", d->addr[x->vertex]);
    }
    printf("\nold objects holding new ones:\n");
    for (size_t i = 0; i < f->nnew_held; i++) {
        const pl_heapdump_holder *x = &f->new_held[i];
        printf("%2zu. %" PRIu64 " new %s (", i + 1, x->new_objects, x->new_type ? x->new_type : "");
        print_size(x->new_bytes);
        printf(") held by %s  ", pl_heapdump_type_of(d, x->vertex));
        print_repr(d, x->vertex);
        printf("  (id %" PRIu64 ")\n", d->addr[x->vertex]);
    }
}

static int read_dump(const char *path, pl_heapdump **out)
{
    char err[512], what[600];
    int rc = pl_heapdump_read(path, out, err, sizeof err);
    if (rc) {
        snprintf(what, sizeof what, "reading %s", path);
        cli_fail(what, err[0] ? err : pl_strerror(rc));
    }
    return rc;
}

/* See cli.h: checks the arguments, reads the dumps, prints. */
int cli_heap(const struct cli_globals *g, int argc, char **argv)
{
    const char *files[2] = {NULL, NULL};
    size_t nfiles = 0;
    uint64_t types = 20, retainers = 10;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (argv[i][0] == '\0') {
            if (nfiles == 2) {
                cli_fail("reading the arguments", "pyloot heap takes one or two files");
                return 2;
            }
            files[nfiles++] = argv[i + 1];
        } else if (strcmp(argv[i], "--types") == 0 && cli_parse_num(argv[i + 1], 1, 10000, &types) != 0) {
            cli_fail("reading the arguments", "--types must be a number from 1 to 10000");
            return 2;
        } else if (strcmp(argv[i], "--retainers") == 0 && cli_parse_num(argv[i + 1], 1, 1000, &retainers) != 0) {
            cli_fail("reading the arguments", "--retainers must be a number from 1 to 1000");
            return 2;
        }
    }
    if (nfiles == 0) {
        cli_fail("reading the arguments", "pyloot heap needs a file (pyloot heap FILE, or OLD NEW)");
        return 2;
    }
    pl_heapdump *dumps[2] = {NULL, NULL};
    pl_heapdump_report_options opt = {(size_t)types, (size_t)retainers, 32};
    pl_buf out = PL_BUF_INIT;
    int code = 1, rc = 0;
    for (size_t i = 0; i < nfiles; i++)
        if (read_dump(files[i], &dumps[i]))
            goto done;
    if (nfiles == 1) {
        pl_heapdump_report *r = NULL;
        rc = pl_heapdump_report_make(dumps[0], &opt, &r);
        if (!rc && g->format == 'j')
            rc = pl_heapdump_report_json(r, &out);
        else if (!rc)
            print_report(r);
        pl_heapdump_report_free(r);
    } else {
        pl_heapdump_diff *f = NULL;
        rc = pl_heapdump_diff_make(dumps[0], dumps[1], &opt, &f);
        if (!rc && g->format == 'j')
            rc = pl_heapdump_diff_json(f, &out);
        else if (!rc)
            print_diff(f);
        pl_heapdump_diff_free(f);
    }
    if (rc) {
        cli_fail("analysing the heap dump", pl_strerror(rc));
        goto done;
    }
    if (out.len) {
        fwrite(out.data, 1, out.len, stdout);
        putchar('\n');
    }
    code = fflush(stdout) == 0 ? 0 : 1;
done:
    pl_buf_free(&out);
    pl_heapdump_free(dumps[0]);
    pl_heapdump_free(dumps[1]);
    return code;
}

/* See cli.h. */
int cli_heap_json(const char *const *files, int n, pl_buf *out)
{
    pl_heapdump *dumps[2] = {NULL, NULL};
    int rc = -1;
    for (int i = 0; i < n && i < 2; i++)
        if (read_dump(files[i], &dumps[i]))
            goto done;
    int err = pl_heapdump_page_json(dumps, files, (size_t)n, out);
    if (err)
        cli_fail("analysing the heap dump", pl_strerror(err));
    else
        rc = 0;
done:
    pl_heapdump_free(dumps[0]);
    pl_heapdump_free(dumps[1]);
    return rc;
}
