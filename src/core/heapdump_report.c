/* What `pyloot heap` says about one dump or two (pyloot/heapdump.h): the
 * top types, the biggest retainers with a path from a root to each, and
 * the comparison of two dumps of one worker (objects matched by address
 * and type name). The CLI prints these structures as text, and their JSON
 * written here is what `--json` prints and the UI's Heap view reads, so
 * the views never disagree. */
#include "pyloot/heapdump.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/json.h"

static void fill_options(const pl_heapdump_report_options *opt, pl_heapdump_report_options *o)
{
    o->types = opt && opt->types ? opt->types : 20;
    o->retainers = opt && opt->retainers ? opt->retainers : 10;
    o->path_max = opt && opt->path_max ? opt->path_max : 32;
}

/* Indices of the `want` largest values of key[0..n) (ties: lower index),
 * largest first, among those with key > 0. *out malloc'ed. */
static int top_k(const uint64_t *key, size_t n, size_t want, uint32_t **out, size_t *nout)
{
    uint32_t *best = malloc((want + 1) * sizeof(uint32_t));
    size_t len = 0;
    if (!best)
        return ENOMEM;
    for (uint32_t v = 0; v < n; v++) {
        if (!key[v] || (len == want && key[v] <= key[best[len - 1]]))
            continue;
        size_t i = len < want ? len++ : len - 1;
        while (i > 0 && key[best[i - 1]] < key[v]) {
            best[i] = best[i - 1];
            i--;
        }
        best[i] = v;
    }
    *out = best;
    *nout = len;
    return 0;
}

/* ---- one dump ---- */

static int by_bytes(const void *x, const void *y)
{
    const pl_heapdump_type_row *a = x, *b = y;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int top_types(pl_heapdump_report *r, size_t want)
{
    const pl_heapdump *d = r->d;
    pl_heapdump_type_row *t = calloc(d->ntypes + 1, sizeof *t);
    if (!t)
        return ENOMEM;
    for (uint32_t i = 0; i < d->ntypes; i++)
        t[i].name = d->strings[d->type_name[i]];
    for (size_t v = 0; v < d->n; v++) {
        t[d->type[v]].count++;
        t[d->type[v]].bytes += d->size[v];
        r->bytes += d->size[v];
    }
    qsort(t, d->ntypes, sizeof *t, by_bytes);
    r->types = t;
    r->ntypes = d->ntypes < want ? d->ntypes : want;
    return 0;
}

/* See pl_heapdump_report.retainers. */
static int pick_retainers(pl_heapdump_report *r, size_t want, uint32_t **out, size_t *nout)
{
    const pl_heapdump *d = r->d;
    uint32_t *cand = NULL, *chosen = malloc((want + 1) * sizeof(uint32_t));
    uint8_t *mark = calloc(d->n + 1, 1);
    uint64_t *retained = malloc((d->n + 1) * sizeof(uint64_t));
    size_t ncand = 0, len = 0;
    int rc = chosen && mark && retained ? 0 : ENOMEM;
    for (uint32_t v = 0; v < d->n && !rc; v++)
        retained[v] = pl_heapdump_retained(r->t, v);
    if (!rc)
        rc = top_k(retained, d->n, want * 20 + 20, &cand, &ncand);
    for (size_t i = 0; i < ncand && !rc; i++) {
        uint32_t v = cand[i], u = pl_heapdump_idom(r->t, v);
        for (int steps = 0; u < d->n && !mark[u] && steps < 256; steps++)
            u = pl_heapdump_idom(r->t, u);
        if (u < d->n && mark[u] && (double)retained[v] >= 0.9 * (double)retained[u]) {
            for (size_t j = 0; j < len; j++)
                if (chosen[j] == u)
                    chosen[j] = v;
            mark[u] = 0;
            mark[v] = 1;
        } else if (len < want) {
            chosen[len++] = v;
            mark[v] = 1;
        }
    }
    free(cand);
    free(mark);
    free(retained);
    if (rc)
        free(chosen);
    else {
        *out = chosen;
        *nout = len;
    }
    return rc;
}

/* See heapdump.h. */
void pl_heapdump_report_free(pl_heapdump_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->retainers && i < r->nretainers; i++)
        free(r->retainers[i].path);
    free(r->retainers);
    free(r->types);
    pl_heapdump_dom_free(r->t);
    free(r);
}

/* See heapdump.h. */
int pl_heapdump_report_make(const pl_heapdump *d, const pl_heapdump_report_options *opt,
                            pl_heapdump_report **out)
{
    pl_heapdump_report_options o;
    uint32_t *chosen = NULL;
    size_t nchosen = 0;
    fill_options(opt, &o);
    *out = NULL;
    pl_heapdump_report *r = calloc(1, sizeof *r);
    if (!r)
        return ENOMEM;
    r->d = d;
    int rc = pl_heapdump_dom_build(d, &r->t);
    if (!rc)
        rc = top_types(r, o.types);
    if (!rc)
        rc = pick_retainers(r, o.retainers, &chosen, &nchosen);
    if (!rc && !(r->retainers = calloc(nchosen + 1, sizeof *r->retainers)))
        rc = ENOMEM;
    for (size_t i = 0; i < nchosen && !rc; i++) {
        pl_heapdump_retainer *x = &r->retainers[r->nretainers++];
        x->vertex = chosen[i];
        x->retained = pl_heapdump_retained(r->t, chosen[i]);
        rc = pl_heapdump_path(d, r->t, chosen[i], o.path_max, &x->path, &x->npath, &x->path_cut);
    }
    free(chosen);
    if (rc)
        pl_heapdump_report_free(r);
    else
        *out = r;
    return rc;
}

/* ---- JSON ---- */

static void json_vertex(pl_buf *b, const pl_heapdump *d, uint32_t v)
{
    pl_buf_puts(b, "\"id\":");
    pl_json_u64(b, d->addr[v]);
    pl_buf_puts(b, ",\"type\":");
    pl_json_cstr(b, pl_heapdump_type_of(d, v));
    pl_buf_puts(b, ",\"repr\":");
    pl_json_str(b, d->repr + d->repr_off[v], d->repr_off[v + 1] - d->repr_off[v]);
    pl_buf_puts(b, ",\"size\":");
    pl_json_u64(b, d->size[v]);
}

static void json_meta(pl_buf *b, const pl_heapdump *d, const pl_heapdump_dom *t)
{
    pl_buf_puts(b, "\"pid\":");
    pl_json_u64(b, d->pid);
    pl_buf_puts(b, ",\"start\":");
    pl_json_u64_str(b, d->start);
    pl_buf_puts(b, ",\"host\":");
    pl_json_cstr(b, d->host ? d->host : "");
    pl_buf_puts(b, ",\"time\":");
    pl_json_i64(b, d->time_ms);
    pl_buf_puts(b, ",\"argv\":");
    pl_json_cstr(b, d->argv ? d->argv : "");
    pl_buf_puts(b, ",\"python\":");
    pl_json_cstr(b, d->python ? d->python : "");
    pl_buf_puts(b, ",\"objects\":");
    pl_json_u64(b, d->n);
    pl_buf_puts(b, ",\"edges\":");
    pl_json_u64(b, d->out_off[d->n]);
    pl_buf_puts(b, ",\"total\":");
    pl_json_u64(b, pl_heapdump_total(t));
}

static void json_path(pl_buf *b, const pl_heapdump *d, const pl_heapdump_retainer *x, pl_buf *label)
{
    pl_buf_puts(b, ",\"path_cut\":");
    pl_json_bool(b, x->path_cut);
    pl_buf_puts(b, ",\"path\":[");
    for (size_t i = 0; i < x->npath; i++) {
        pl_buf_puts(b, i ? ",{" : "{");
        json_vertex(b, d, x->path[i].vertex);
        pl_buf_puts(b, ",\"via\":");
        if (x->path[i].via == UINT32_MAX) {
            pl_buf_puts(b, "null");
        } else {
            pl_buf_reset(label);
            pl_heapdump_label(d, x->path[i].via, label);
            pl_json_str(b, label->data ? label->data : "", label->len);
        }
        pl_buf_putc(b, '}');
    }
    pl_buf_putc(b, ']');
}

/* See heapdump.h. */
int pl_heapdump_report_json(const pl_heapdump_report *r, pl_buf *out)
{
    const pl_heapdump *d = r->d;
    pl_buf label = PL_BUF_INIT;
    pl_buf_putc(out, '{');
    json_meta(out, d, r->t);
    pl_buf_puts(out, ",\"bytes\":");
    pl_json_u64(out, r->bytes);
    pl_buf_puts(out, ",\"roots\":");
    pl_json_u64(out, pl_heapdump_nroots(r->t));
    pl_buf_puts(out, ",\"types\":[");
    for (size_t i = 0; i < r->ntypes; i++) {
        pl_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        pl_json_cstr(out, r->types[i].name);
        pl_buf_printf(out, ",\"count\":%llu,\"bytes\":%llu}", (unsigned long long)r->types[i].count,
                      (unsigned long long)r->types[i].bytes);
    }
    pl_buf_puts(out, "],\"retainers\":[");
    for (size_t i = 0; i < r->nretainers; i++) {
        const pl_heapdump_retainer *x = &r->retainers[i];
        pl_buf_puts(out, i ? ",{" : "{");
        json_vertex(out, d, x->vertex);
        pl_buf_puts(out, ",\"retained\":");
        pl_json_u64(out, x->retained);
        json_path(out, d, x, &label);
        pl_buf_putc(out, '}');
    }
    pl_buf_puts(out, "]}");
    pl_buf_free(&label);
    return out->err || label.err ? ENOMEM : 0;
}

/* ---- two dumps ---- */

typedef struct type_map {
    pl_heapdump_type_row *slot;
    size_t cap;
} type_map;

static pl_heapdump_type_row *map_get(type_map *m, const char *name)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slot[i].name && strcmp(m->slot[i].name, name) != 0)
        i = (i + 1) & (m->cap - 1);
    m->slot[i].name = name;
    return &m->slot[i];
}

static int by_change(const void *x, const void *y)
{
    const pl_heapdump_type_row *a = x, *b = y;
    if (a->bytes_change != b->bytes_change)
        return a->bytes_change > b->bytes_change ? -1 : 1;
    if (a->count_change != b->count_change)
        return a->count_change > b->count_change ? -1 : 1;
    return strcmp(a->name, b->name);
}

static int type_changes(pl_heapdump_diff *f, size_t want)
{
    const pl_heapdump *o = f->old, *d = f->d;
    type_map m = {NULL, 64};
    while (m.cap < 2 * (o->ntypes + d->ntypes) + 2)
        m.cap *= 2;
    if (!(m.slot = calloc(m.cap, sizeof *m.slot)))
        return ENOMEM;
    for (uint32_t v = 0; v < o->n; v++) {
        pl_heapdump_type_row *c = map_get(&m, pl_heapdump_type_of(o, v));
        c->count_change--;
        c->bytes_change -= (int64_t)o->size[v];
    }
    for (uint32_t v = 0; v < d->n; v++) {
        pl_heapdump_type_row *c = map_get(&m, pl_heapdump_type_of(d, v));
        c->count++;
        c->bytes += d->size[v];
        c->count_change++;
        c->bytes_change += (int64_t)d->size[v];
    }
    size_t k = 0;
    for (size_t i = 0; i < m.cap; i++)
        if (m.slot[i].name && (m.slot[i].count_change || m.slot[i].bytes_change))
            m.slot[k++] = m.slot[i];
    qsort(m.slot, k, sizeof *m.slot, by_change);
    f->types = m.slot;
    f->ntypes = k < want ? k : want;
    return 0;
}

/* match[v] = the vertex of old with v's address and type name, else UINT32_MAX. */
static int match_objects(pl_heapdump_diff *f, uint32_t **out)
{
    const pl_heapdump *o = f->old, *d = f->d;
    uint32_t *match = malloc((d->n + 1) * sizeof(uint32_t));
    if (!match)
        return ENOMEM;
    size_t j = 0;
    for (uint32_t v = 0; v < d->n; v++) {
        while (j < o->n && o->addr[j] < d->addr[v])
            j++;
        int same = j < o->n && o->addr[j] == d->addr[v] &&
                   strcmp(pl_heapdump_type_of(o, (uint32_t)j), pl_heapdump_type_of(d, v)) == 0;
        match[v] = same ? (uint32_t)j : UINT32_MAX;
        f->matched += same;
    }
    f->new_objects = d->n - f->matched;
    f->gone_objects = o->n - f->matched;
    *out = match;
    return 0;
}

static int grown(pl_heapdump_diff *f, const uint32_t *match, size_t want)
{
    const pl_heapdump *d = f->d;
    uint64_t *grew = calloc(d->n + 1, sizeof(uint64_t));
    uint32_t *top = NULL;
    size_t ntop = 0;
    if (!grew)
        return ENOMEM;
    for (uint32_t v = 0; v < d->n; v++) {
        uint64_t now = pl_heapdump_retained(f->t, v);
        if (match[v] != UINT32_MAX && now > pl_heapdump_retained(f->old_t, match[v]))
            grew[v] = now - pl_heapdump_retained(f->old_t, match[v]);
    }
    int rc = top_k(grew, d->n, want, &top, &ntop);
    if (!rc && !(f->grown = calloc(ntop + 1, sizeof *f->grown)))
        rc = ENOMEM;
    for (size_t i = 0; i < ntop && !rc; i++) {
        pl_heapdump_holder *x = &f->grown[f->ngrown++];
        x->vertex = top[i];
        x->retained = pl_heapdump_retained(f->t, top[i]);
        x->retained_change = grew[top[i]];
    }
    free(grew);
    free(top);
    return rc;
}

static int new_held(pl_heapdump_diff *f, const uint32_t *match, size_t want)
{
    const pl_heapdump *d = f->d;
    uint64_t *count = calloc(d->n + 1, sizeof(uint64_t));
    uint32_t *top = NULL;
    size_t ntop = 0;
    if (!count)
        return ENOMEM;
    for (uint32_t v = 0; v < d->n; v++)
        if (match[v] != UINT32_MAX)
            for (uint32_t e = d->out_off[v]; e < d->out_off[v + 1]; e++)
                count[v] += match[d->head[e]] == UINT32_MAX;
    int rc = top_k(count, d->n, want, &top, &ntop);
    if (!rc && !(f->new_held = calloc(ntop + 1, sizeof *f->new_held)))
        rc = ENOMEM;
    for (size_t i = 0; i < ntop && !rc; i++) {
        pl_heapdump_holder *x = &f->new_held[f->nnew_held++];
        uint32_t v = x->vertex = top[i];
        x->new_objects = count[v];
        for (uint32_t e = d->out_off[v]; e < d->out_off[v + 1]; e++)
            if (match[d->head[e]] == UINT32_MAX) {
                const char *tn = pl_heapdump_type_of(d, d->head[e]);
                x->new_bytes += d->size[d->head[e]];
                if (!x->new_type)
                    x->new_type = tn;
                else if (strcmp(x->new_type, tn) != 0)
                    x->new_type = "(several types)";
            }
    }
    free(count);
    free(top);
    return rc;
}

/* See heapdump.h. */
void pl_heapdump_diff_free(pl_heapdump_diff *f)
{
    if (!f)
        return;
    pl_heapdump_dom_free(f->old_t);
    pl_heapdump_dom_free(f->t);
    free(f->types);
    free(f->grown);
    free(f->new_held);
    free(f);
}

/* See heapdump.h. */
int pl_heapdump_diff_make(const pl_heapdump *old, const pl_heapdump *d, const pl_heapdump_report_options *opt,
                          pl_heapdump_diff **out)
{
    pl_heapdump_report_options o;
    uint32_t *match = NULL;
    fill_options(opt, &o);
    *out = NULL;
    pl_heapdump_diff *f = calloc(1, sizeof *f);
    if (!f)
        return ENOMEM;
    f->old = old;
    f->d = d;
    int rc = pl_heapdump_dom_build(old, &f->old_t);
    if (!rc)
        rc = pl_heapdump_dom_build(d, &f->t);
    if (!rc)
        rc = match_objects(f, &match);
    if (!rc)
        rc = type_changes(f, o.types);
    if (!rc)
        rc = grown(f, match, o.retainers);
    if (!rc)
        rc = new_held(f, match, o.retainers);
    free(match);
    if (rc)
        pl_heapdump_diff_free(f);
    else
        *out = f;
    return rc;
}

/* See heapdump.h. */
int pl_heapdump_diff_json(const pl_heapdump_diff *f, pl_buf *out)
{
    const pl_heapdump *d = f->d;
    pl_buf_puts(out, "{\"old\":{");
    json_meta(out, f->old, f->old_t);
    pl_buf_puts(out, "},\"new\":{");
    json_meta(out, d, f->t);
    pl_buf_printf(out, "},\"same_worker\":%s,\"matched\":%zu,\"new_objects\":%zu,\"gone_objects\":%zu",
                  f->old->pid == d->pid && f->old->start == d->start ? "true" : "false", f->matched,
                  f->new_objects, f->gone_objects);
    pl_buf_puts(out, ",\"types\":[");
    for (size_t i = 0; i < f->ntypes; i++) {
        const pl_heapdump_type_row *c = &f->types[i];
        pl_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        pl_json_cstr(out, c->name);
        pl_buf_printf(out, ",\"count_change\":%lld,\"bytes_change\":%lld,\"count\":%llu,\"bytes\":%llu}",
                      (long long)c->count_change, (long long)c->bytes_change, (unsigned long long)c->count,
                      (unsigned long long)c->bytes);
    }
    pl_buf_puts(out, "],\"grown\":[");
    for (size_t i = 0; i < f->ngrown; i++) {
        pl_buf_puts(out, i ? ",{" : "{");
        json_vertex(out, d, f->grown[i].vertex);
        pl_buf_printf(out, ",\"retained\":%llu,\"retained_change\":%llu}",
                      (unsigned long long)f->grown[i].retained, (unsigned long long)f->grown[i].retained_change);
    }
    pl_buf_puts(out, "],\"new_held_by_old\":[");
    for (size_t i = 0; i < f->nnew_held; i++) {
        const pl_heapdump_holder *x = &f->new_held[i];
        pl_buf_puts(out, i ? ",{" : "{");
        json_vertex(out, d, x->vertex);
        pl_buf_printf(out, ",\"new_objects\":%llu,\"new_bytes\":%llu,\"new_type\":",
                      (unsigned long long)x->new_objects, (unsigned long long)x->new_bytes);
        pl_json_cstr(out, x->new_type ? x->new_type : "");
        pl_buf_putc(out, '}');
    }
    pl_buf_puts(out, "]}");
    return out->err ? ENOMEM : 0;
}

/* See heapdump.h. */
int pl_heapdump_page_json(pl_heapdump *const *dumps, const char *const *names, size_t n, pl_buf *out)
{
    if (n < 1 || n > 2)
        return PL_EBADARG;
    pl_heapdump_report *r = NULL;
    pl_heapdump_diff *f = NULL;
    pl_buf_puts(out, "{\"files\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            pl_buf_putc(out, ',');
        pl_json_cstr(out, names[i]);
    }
    pl_buf_puts(out, "],\"report\":");
    int rc = pl_heapdump_report_make(dumps[n - 1], NULL, &r);
    if (!rc)
        rc = pl_heapdump_report_json(r, out);
    pl_buf_puts(out, ",\"diff\":");
    if (!rc && n == 2) {
        rc = pl_heapdump_diff_make(dumps[0], dumps[1], NULL, &f);
        if (!rc)
            rc = pl_heapdump_diff_json(f, out);
    } else {
        pl_buf_puts(out, "null");
    }
    pl_buf_putc(out, '}');
    pl_heapdump_report_free(r);
    pl_heapdump_diff_free(f);
    return rc ? rc : out->err ? ENOMEM : 0;
}
