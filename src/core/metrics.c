/* GET /metrics (see pyloot/metrics.h and docs/http-api.md). */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/metrics.h"

/* One exported type. */
struct mtype {
    char *name;
    uint32_t type_id;
    uint64_t count;
    uint64_t bytes;
    size_t n_lines;
    struct mline { size_t proc; int64_t count; } *lines; /* per_worker: live incarnations only (proc: index in procs) */
};

struct mset {
    struct mtype *v;
    size_t n, cap;
};

static void mset_free(struct mset *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].name);
        free(m->v[i].lines);
    }
    free(m->v);
}

/* The index of inc in procs when it is alive there, else n. */
static size_t alive_proc(const pl_proc_info *procs, size_t n, const pl_incarnation *inc)
{
    for (size_t i = 0; i < n; i++)
        if (procs[i].inc.pid == inc->pid && procs[i].inc.start == inc->start)
            return procs[i].alive ? i : n;
    return n;
}

/* The labels of one worker's series: pid, and its host (pids repeat across
 * the hosts of a central server, and a series must be unique). */
static void worker_labels(pl_buf *b, const pl_proc_info *p)
{
    pl_buf_printf(b, "pid=\"%u\",host=\"", p->inc.pid);
    pl_metrics_label(b, p->host);
    pl_buf_puts(b, "\"");
}

/* Adds t unless its type is already in m. */
static int mset_add(struct mset *m, const pl_history_type *t, size_t n_times, const pl_proc_info *procs,
                    size_t n_procs)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].type_id == t->type_id)
            return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct mtype *v = realloc(m->v, cap * sizeof *v);
        if (!v)
            return ENOMEM;
        m->v = v;
        m->cap = cap;
    }
    struct mtype *e = &m->v[m->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(t->name);
    if (!e->name)
        return ENOMEM;
    e->type_id = t->type_id;
    e->count = t->count;
    e->bytes = t->bytes;
    m->n++;
    if (t->n_lines && n_times) {
        e->lines = calloc(t->n_lines, sizeof *e->lines);
        if (!e->lines)
            return ENOMEM;
        for (size_t j = 0; j < t->n_lines; j++) {
            const pl_history_line *l = &t->lines[j];
            size_t at = alive_proc(procs, n_procs, &l->inc);
            if (at == n_procs || l->counts[n_times - 1] < 0)
                continue;
            e->lines[e->n_lines].proc = at;
            e->lines[e->n_lines].count = l->counts[n_times - 1];
            e->n_lines++;
        }
    }
    return 0;
}

static int matches(const char *patterns, const char *name)
{
    char pat[1100];
    const char *p = patterns;
    while (p && *p) {
        const char *end = strchr(p, '\n');
        if (!end)
            end = p + strlen(p);
        size_t n = (size_t)(end - p);
        if (n && n < sizeof pat) {
            memcpy(pat, p, n);
            pat[n] = '\0';
            if (strcmp(pat, name) == 0 || fnmatch(pat, name, 0) == 0)
                return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* Runs one history query and adds its types (all of them, or those that
 * match `patterns` up to PL_METRICS_PATTERN_MAX). Sets *total. */
static int add_query(pl_store *s, pl_history_query *hq, const char *patterns, size_t *added, struct mset *m,
                     const pl_proc_info *procs, size_t n_procs, uint64_t *total)
{
    pl_history *h = NULL;
    int rc = pl_store_history(s, hq, &h);
    if (rc)
        return rc;
    *total = h->total;
    for (size_t i = 0; !rc && i < h->n_types; i++) {
        if (patterns) {
            if (*added >= PL_METRICS_PATTERN_MAX || !matches(patterns, h->types[i].name))
                continue;
            (*added)++;
        }
        rc = mset_add(m, &h->types[i], h->n_times, procs, n_procs);
    }
    pl_history_free(h);
    return rc;
}

#define PL_METRICS_RUN_MAX 256

/* The longest run of literal characters of an fnmatch pattern (outside
 * '*', '?', '[...]' and escapes), at most out_len - 1 bytes. */
static void longest_literal(const char *pat, char *out, size_t out_len)
{
    size_t best = 0, start = 0, len = 0;
    const char *from = pat;
    for (const char *c = pat;; c++) {
        int literal = *c && *c != '*' && *c != '?' && *c != '[' && *c != '\\';
        if (literal) {
            if (!len)
                from = c;
            len++;
            continue;
        }
        if (len > best) {
            best = len;
            start = (size_t)(from - pat);
        }
        len = 0;
        if (!*c)
            break;
        if (*c == '[') { /* skip the bracket expression */
            const char *close = strchr(c + 2, ']');
            if (!close)
                break;
            c = close;
        } else if (*c == '\\' && c[1]) {
            c++; /* the escaped character ends the run too: keep it simple */
        }
    }
    if (best > out_len - 1)
        best = out_len - 1;
    memcpy(out, pat + start, best);
    out[best] = '\0';
}

int pl_metrics_label(pl_buf *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        if (c < 0x80) {
            if (c == '\\')
                pl_buf_puts(out, "\\\\");
            else if (c == '"')
                pl_buf_puts(out, "\\\"");
            else if (c == '\n')
                pl_buf_puts(out, "\\n");
            else
                pl_buf_putc(out, (char)c);
            p++;
            continue;
        }
        /* A well-formed UTF-8 sequence is copied; anything else is U+FFFD. */
        size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
        size_t k = 1;
        while (n && k < n && (p[k] & 0xc0) == 0x80)
            k++;
        int ok = n && k == n;
        if (ok && n == 3) {
            unsigned cp = ((c & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6);
            ok = cp >= 0x800 && !(cp >= 0xd800 && cp <= 0xdfff);
        } else if (ok && n == 4) {
            unsigned cp = ((c & 0x07u) << 18) | ((p[1] & 0x3fu) << 12);
            ok = cp >= 0x10000 && cp <= 0x10ffff;
        }
        if (ok) {
            pl_buf_append(out, p, n);
            p += n;
        } else {
            pl_buf_puts(out, "\xef\xbf\xbd");
            p++;
        }
    }
    return out->err;
}

int pl_metrics_wants_openmetrics(const char *accept)
{
    return accept && strstr(accept, "application/openmetrics-text") != NULL;
}

static void family(pl_buf *b, const char *name, const char *type, const char *help)
{
    pl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The memory families: each live worker's figures of its last sample
 * (the newest slot of a live memory query). */
static int render_memory(pl_store *s, const pl_metrics_query *q, pl_buf *b)
{
    static const struct {
        const char *name, *help;
    } fam[4] = {
        {"pyloot_rss_bytes", "Resident set size of a live worker at its last sample."},
        {"pyloot_python_bytes", "Shallow bytes of the Python objects a live worker's last sample counted."},
        {"pyloot_allocator_free_bytes", "Bytes the C allocator of a live worker holds but does not use."},
        {"pyloot_other_bytes",
         "RSS that neither Python objects nor allocator free bytes explain (native memory, interpreter, stacks)."},
    };
    pl_memory_query mq;
    pl_memory *mem = NULL;
    int rc;

    memset(&mq, 0, sizeof mq);
    mq.max_points = 2;
    mq.now_ms = q->now_ms ? q->now_ms : pl_now_ms();
    /* Only the newest figures are exported: a scrape reads each worker's
     * records of the last 10 minutes (and the one before), not its whole
     * history. */
    mq.since_ms = mq.now_ms - 600000;
    rc = pl_store_memory(s, &mq, &mem);
    if (rc)
        return rc;
    for (int f = 0; f < 4; f++) {
        family(b, fam[f].name, "gauge", fam[f].help);
        for (size_t j = 0; mem->live && j < mem->n_workers; j++) {
            const pl_memory_worker *w = &mem->workers[j];
            const int64_t *series[4] = {w->s.rss, w->s.python_bytes, w->s.allocator_free_bytes, w->s.other_bytes};
            int64_t v = series[f][mem->n_times - 1];
            if (v < 0)
                continue;
            pl_buf_printf(b, "%s{pid=\"%u\",host=\"", fam[f].name, w->inc.pid);
            pl_metrics_label(b, w->host);
            pl_buf_printf(b, "\"} %" PRId64 "\n", v);
        }
    }
    pl_memory_free(mem);
    return 0;
}

/* See metrics.h. About 120 lines: it gathers the types (by count, by
 * growth, by pattern) and then writes each metric family in the order the
 * exposition format wants, one after the other, from the same set. */
int pl_metrics_render(pl_store *s, const pl_metrics_query *q, pl_buf *out)
{
    struct mset m = {0};
    pl_proc_info *procs = NULL;
    size_t n_procs = 0, added = 0;
    uint64_t total = 0;
    pl_store_stat st;
    uint32_t top = q->top ? q->top : PL_METRICS_TOP_DEFAULT;
    if (top > PL_METRICS_TOP_MAX)
        top = PL_METRICS_TOP_MAX;

    /* No store (it cannot be used): the handler answers 503 before this;
     * a caller that did not is told so rather than crashing its host. */
    int rc = s ? pl_store_procs(s, &procs, &n_procs) : PL_EBADARG;
    if (!rc)
        rc = pl_store_stat_get(s, &st);
    pl_history_query hq;
    memset(&hq, 0, sizeof hq);
    hq.limit = top;
    hq.max_points = 2;
    hq.per_worker = q->per_worker;
    hq.now_ms = q->now_ms;
    if (!rc) {
        hq.sort = PL_SORT_COUNT;
        rc = add_query(s, &hq, NULL, &added, &m, procs, n_procs, &total);
    }
    if (!rc) {
        hq.sort = PL_SORT_GROWTH;
        rc = add_query(s, &hq, NULL, &added, &m, procs, n_procs, &total);
    }
    /* Each pattern narrows its query to the types containing its longest
     * literal run ("app.models." for "app.models.*"), so a scrape reads a
     * few types, not the whole store; a pattern without one ("*") pages
     * through every type. */
    for (const char *p = q->types; !rc && p && *p && added < PL_METRICS_PATTERN_MAX;) {
        const char *end = strchr(p, '\n');
        if (!end)
            end = p + strlen(p);
        char pat[1100], run[PL_METRICS_RUN_MAX + 1];
        size_t n = (size_t)(end - p);
        if (n && n < sizeof pat) {
            memcpy(pat, p, n);
            pat[n] = '\0';
            longest_literal(pat, run, sizeof run);
            hq.sort = PL_SORT_NAME;
            hq.limit = 1000;
            hq.q = run[0] ? run : NULL;
            for (hq.offset = 0; !rc && added < PL_METRICS_PATTERN_MAX; hq.offset += hq.limit) {
                rc = add_query(s, &hq, pat, &added, &m, procs, n_procs, &total);
                if (hq.offset + hq.limit >= total)
                    break;
            }
            hq.q = NULL;
        }
        p = *end ? end + 1 : end;
    }
    if (rc)
        goto done;

    pl_buf *b = out;
    family(b, "pyloot_objects", "gauge",
           q->per_worker ? "Live objects of a type in one live worker (top types by count and growth)."
                         : "Live objects of a type, summed over the live workers (top types by count and growth).");
    for (size_t i = 0; i < m.n; i++) {
        if (q->per_worker) {
            for (size_t j = 0; j < m.v[i].n_lines; j++) {
                pl_buf_puts(b, "pyloot_objects{type=\"");
                pl_metrics_label(b, m.v[i].name);
                pl_buf_puts(b, "\",");
                worker_labels(b, &procs[m.v[i].lines[j].proc]);
                pl_buf_printf(b, "} %" PRId64 "\n", m.v[i].lines[j].count);
            }
        } else {
            pl_buf_puts(b, "pyloot_objects{type=\"");
            pl_metrics_label(b, m.v[i].name);
            pl_buf_printf(b, "\"} %" PRIu64 "\n", m.v[i].count);
        }
    }
    family(b, "pyloot_object_bytes", "gauge",
           "Shallow bytes of the live objects of a type, summed over the live workers.");
    for (size_t i = 0; i < m.n; i++) {
        pl_buf_puts(b, "pyloot_object_bytes{type=\"");
        pl_metrics_label(b, m.v[i].name);
        pl_buf_printf(b, "\"} %" PRIu64 "\n", m.v[i].bytes);
    }
    size_t alive = 0;
    for (size_t i = 0; i < n_procs; i++)
        alive += procs[i].alive != 0;
    family(b, "pyloot_workers", "gauge", "Process incarnations in the store, alive or dead (kept until retention).");
    pl_buf_printf(b, "pyloot_workers{state=\"alive\"} %zu\npyloot_workers{state=\"dead\"} %zu\n", alive,
                  n_procs - alive);
    family(b, "pyloot_process_resident_bytes", "gauge", "Resident set size of a live worker at its last heartbeat.");
    for (size_t i = 0; i < n_procs; i++)
        if (procs[i].alive) {
            pl_buf_puts(b, "pyloot_process_resident_bytes{");
            worker_labels(b, &procs[i]);
            pl_buf_printf(b, "} %" PRIu64 "\n", procs[i].rss);
        }
    if ((rc = render_memory(s, q, b)))
        goto done;
    family(b, "pyloot_collection_seconds", "gauge",
           "Wall time of a live worker's last collection pass (count pass and witness search).");
    for (size_t i = 0; i < n_procs; i++)
        if (procs[i].alive) {
            pl_buf_puts(b, "pyloot_collection_seconds{");
            worker_labels(b, &procs[i]);
            pl_buf_printf(b, "} %.6f\n", (double)procs[i].stats.collection_us / 1e6);
        }
    /* A counter: OpenMetrics names the family without _total, the
     * Prometheus text format names it as its sample. */
    family(b, q->openmetrics ? "pyloot_gil_held_seconds" : "pyloot_gil_held_seconds_total", "counter",
           "Seconds a live worker's pyloot threads have held the GIL since it started.");
    for (size_t i = 0; i < n_procs; i++)
        if (procs[i].alive) {
            pl_buf_puts(b, "pyloot_gil_held_seconds_total{");
            worker_labels(b, &procs[i]);
            pl_buf_printf(b, "} %.6f\n", (double)procs[i].stats.gil_held_us / 1e6);
        }
    family(b, "pyloot_store_used_bytes", "gauge", "Bytes in use in the store's LMDB map.");
    pl_buf_printf(b, "pyloot_store_used_bytes %" PRIu64 "\n", st.used_bytes);
    if (q->openmetrics)
        pl_buf_puts(b, "# EOF\n");
    rc = b->err;
done:
    mset_free(&m);
    free(procs);
    return rc;
}
