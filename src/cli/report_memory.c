/* The memory section of `pyloot report`: for each worker, how much its RSS
 * grew over the samples and how much of it Python objects, the allocators'
 * free bytes and other memory explain (pl_store_memory: the same figures
 * and growth as GET /api/memory). */
#include "report.h"
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "pyloot/json.h"

static int64_t last_of(const int64_t *s, size_t n)
{
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] >= 0)
            return s[i - 1];
    return -1;
}

/* See report.h. */
int pl_cli_report_memory_read(pl_store *store, pl_memory **out)
{
    pl_memory_query q = {0};
    q.now_ms = pl_now_ms();
    return pl_store_memory(store, &q, out);
}

static void text_line(const char *who, const pl_memory_series *s, size_t n)
{
    const pl_memory_growth *g = &s->growth;
    char rss[32], py[32], fr[32], oth[32];
    int64_t now = last_of(s->rss, n);

    if (!g->known) {
        printf("  %s: RSS %.1f MiB, one sample: no growth to explain\n", who, now >= 0 ? (double)now / 1048576 : 0.0);
        return;
    }
    cli_fmt_bytes(g->rss, 1, rss, sizeof rss);
    cli_fmt_bytes(g->python_bytes, 1, py, sizeof py);
    cli_fmt_bytes(g->allocator_free_bytes, 1, fr, sizeof fr);
    cli_fmt_bytes(g->other_bytes, 1, oth, sizeof oth);
    printf("  %s: RSS %s to %.1f MiB: Python objects %s, allocator free %s, other %s\n", who, rss,
           (double)now / 1048576, py, fr, oth);
    if (pl_memory_outside_python(g))
        printf("    the growth is outside Python objects: native memory or allocator fragmentation\n");
}

/* See report.h. */
void pl_cli_report_memory_text(const pl_memory *m)
{
    char who[128];

    printf("\nmemory (RSS growth over the samples, and what explains it):\n");
    if (!m || !m->n_workers) {
        printf("  no memory figures stored (a store written by an older pyloot has none)\n");
        return;
    }
    for (size_t i = 0; i < m->n_workers; i++) {
        snprintf(who, sizeof who, "pid %u%s%s", m->workers[i].inc.pid, m->workers[i].host[0] ? " on " : "",
                 m->workers[i].host);
        text_line(who, &m->workers[i].s, m->n_times);
    }
    if (m->n_workers > 1)
        text_line(m->live ? "all live workers" : "all workers alive at the end", &m->merged, m->n_times);
}

static void json_growth(pl_buf *b, const pl_memory_series *s, size_t n)
{
    const pl_memory_growth *g = &s->growth;

    pl_buf_printf(b, "\"rss\":%" PRId64 ",", last_of(s->rss, n));
    if (g->known)
        pl_buf_printf(b,
                      "\"rss_growth\":%" PRId64 ",\"python_bytes_growth\":%" PRId64
                      ",\"allocator_free_bytes_growth\":%" PRId64 ",\"other_bytes_growth\":%" PRId64
                      ",\"outside_python\":%s",
                      g->rss, g->python_bytes, g->allocator_free_bytes, g->other_bytes,
                      pl_memory_outside_python(g) ? "true" : "false");
    else
        pl_buf_puts(b, "\"rss_growth\":null,\"python_bytes_growth\":null,\"allocator_free_bytes_growth\":null,"
                       "\"other_bytes_growth\":null,\"outside_python\":false");
}

/* See report.h. */
void pl_cli_report_memory_json(pl_buf *b, const pl_memory *m)
{
    pl_buf_puts(b, "\"memory\":{\"workers\":[");
    for (size_t i = 0; m && i < m->n_workers; i++) {
        pl_buf_printf(b, "%s{\"pid\":%u,\"start\":\"%" PRIu64 "\",\"host\":", i ? "," : "", m->workers[i].inc.pid,
                      m->workers[i].inc.start);
        pl_json_cstr(b, m->workers[i].host);
        pl_buf_putc(b, ',');
        json_growth(b, &m->workers[i].s, m->n_times);
        pl_buf_putc(b, '}');
    }
    pl_buf_puts(b, "],\"merged\":");
    if (m && m->n_workers) {
        pl_buf_putc(b, '{');
        json_growth(b, &m->merged, m->n_times);
        pl_buf_putc(b, '}');
    } else {
        pl_buf_puts(b, "null");
    }
    pl_buf_putc(b, '}');
}
