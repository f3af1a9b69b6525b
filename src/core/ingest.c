/* The decoder of remote-mode sample messages (docs/http-api.md, "POST
 * /api/samples"). Every count read from the input is checked against the
 * bytes left before anything is allocated for it, so a hostile message can
 * make the decoder allocate at most a small multiple of its own size. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/ingest.h"
#include "pyloot/store.h"
#include "pyloot/varint.h"

struct reader {
    const uint8_t *p, *end;
    char *why;
    size_t whylen;
};

static int bad(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, r->whylen, fmt, ap);
    va_end(ap);
    return PL_EBADARG;
}

/* A varint (pyloot/varint.h) whose value fits 64 bits. */
static int get_varint(struct reader *r, const char *what, uint64_t *v)
{
    size_t n = pl_varint_get(r->p, r->end, v);
    if (n) {
        r->p += n;
        return 0;
    }
    if (r->end - r->p < PL_VARINT_MAX)
        return bad(r, "message truncated in %s", what);
    return bad(r, "varint of %s overflows 64 bits", what);
}

static int get_range(struct reader *r, const char *what, uint64_t lo, uint64_t hi, uint64_t *v)
{
    int rc = get_varint(r, what, v);
    if (!rc && (*v < lo || *v > hi))
        rc = bad(r, "%s must be from %llu to %llu", what, (unsigned long long)lo, (unsigned long long)hi);
    return rc;
}

/* A length-prefixed string of lo..hi bytes, pointing into the input. */
static int get_string(struct reader *r, const char *what, size_t lo, size_t hi, const uint8_t **s,
                      size_t *len)
{
    uint64_t n;
    int rc = get_range(r, what, lo, hi, &n);
    if (rc)
        return rc;
    if (n > (uint64_t)(r->end - r->p))
        return bad(r, "message truncated in %s", what);
    *s = r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

/* A count of items that each take at least `min_bytes` of the input. */
static int get_count(struct reader *r, const char *what, size_t min_bytes, size_t *n)
{
    uint64_t v = 0;
    int rc = get_varint(r, what, &v);
    if (rc)
        return rc;
    if (v > (uint64_t)(r->end - r->p) / min_bytes)
        return bad(r, "%s (%llu) is more than the rest of the message can hold", what, (unsigned long long)v);
    *n = (size_t)v;
    return 0;
}

static int copy_text(struct reader *r, const char *what, const uint8_t *s, size_t len, char *out,
                     int allow_empty)
{
    if (!len && !allow_empty)
        return bad(r, "%s must not be empty", what);
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return bad(r, "%s contains a control character", what);
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

static int decode_header(struct reader *r, pl_ingest_msg *m)
{
    uint64_t v = 0;
    const uint8_t *s = NULL;
    size_t len = 0;
    int rc;

    if (r->end - r->p < 4 || memcmp(r->p, PL_INGEST_MAGIC, 4) != 0)
        return bad(r, "the message does not start with \"" PL_INGEST_MAGIC "\"");
    r->p += 4;
    if ((rc = get_varint(r, "flags", &v)))
        return rc;
    if (v & ~(uint64_t)(PL_INGEST_ENDED | PL_INGEST_NEW_SPACE | PL_INGEST_STATS | PL_INGEST_MEMORY |
                               PL_INGEST_ROUTES))
        return bad(r, "unknown flags 0x%llx", (unsigned long long)v);
    m->flags = (unsigned)v;
    if ((rc = get_string(r, "host", 1, PL_INGEST_HOST_MAX, &s, &len)) ||
        (rc = copy_text(r, "host", s, len, m->host, 0)))
        return rc;
    if ((rc = get_range(r, "pid", 1, UINT32_MAX, &v)))
        return rc;
    m->pid = (uint32_t)v;
    if ((rc = get_varint(r, "start", &m->start)))
        return rc;
    if ((rc = get_range(r, "interval_ms", 1, 86400000, &v)))
        return rc;
    m->interval_ms = (uint32_t)v;
    if ((rc = get_varint(r, "rss", &m->rss)))
        return rc;
    if ((rc = get_string(r, "argv", 0, PL_INGEST_ARGV_MAX, &s, &len)) ||
        (rc = copy_text(r, "argv", s, len, m->argv, 1)))
        return rc;
    /* Optional (bit2), so that a message of an older worker still decodes. */
    if (m->flags & PL_INGEST_STATS) {
        if ((rc = get_range(r, "collection_us", 0, PL_INGEST_COLLECTION_MAX_US, &m->collection_us)) ||
            (rc = get_varint(r, "gil_held_us", &m->gil_held_us)))
            return rc;
    }
    return 0;
}

static int decode_types(struct reader *r, pl_ingest_msg *m)
{
    uint64_t v = 0;
    const uint8_t *s = NULL;
    size_t len = 0;
    int rc;

    /* An announcement is at least a 1-byte id, a 1-byte length and a 1-byte name. */
    if ((rc = get_count(r, "n_types", 3, &m->n_types)))
        return rc;
    if (m->n_types && !(m->types = calloc(m->n_types, sizeof *m->types)))
        return ENOMEM;
    for (size_t i = 0; i < m->n_types; i++) {
        if ((rc = get_range(r, "a type's local id", 0, UINT32_MAX, &v)) ||
            (rc = get_string(r, "a type name", 1, PL_TYPE_NAME_MAX, &s, &len)))
            return rc;
        if (memchr(s, '\0', len))
            return bad(r, "type name %llu contains a NUL byte", (unsigned long long)v);
        m->types[i].local_id = (uint32_t)v;
        m->types[i].name = (const char *)s;
        m->types[i].len = len;
    }
    return 0;
}

/* One sample's requests by route (bit4): a count, then per route its name
 * and requests, each within its documented bound. */
static int decode_routes(struct reader *r, pl_ingest_msg *m, pl_ingest_sample *smp, size_t *cap)
{
    const uint8_t *s = NULL;
    size_t n = 0, len = 0;
    uint64_t v = 0;
    int rc;

    /* A route is at least a 1-byte length, a 1-byte name and 1-byte requests. */
    if ((rc = get_count(r, "a sample's route count", 3, &n)))
        return rc;
    if (n > PL_INGEST_ROUTES_MAX)
        return bad(r, "a sample names %zu routes, more than %u", n, PL_INGEST_ROUTES_MAX);
    if (m->n_routes + n > *cap) {
        size_t want = *cap ? *cap : 64;
        while (want < m->n_routes + n)
            want *= 2;
        pl_route_count *e = realloc(m->routes, want * sizeof *e);
        if (!e)
            return ENOMEM;
        m->routes = e;
        *cap = want;
    }
    smp->first_route = m->n_routes;
    smp->n_routes = n;
    for (size_t j = 0; j < n; j++) {
        if ((rc = get_string(r, "a route name", 1, PL_ROUTE_NAME_MAX, &s, &len)))
            return rc;
        if (!pl_route_name_valid((const char *)s, len))
            return bad(r, "a route name is not UTF-8 text without control characters");
        if ((rc = get_range(r, "a route's requests", 0, PL_INGEST_REQUESTS_MAX, &v)))
            return rc;
        m->routes[m->n_routes++] = (pl_route_count){(const char *)s, len, v};
    }
    return 0;
}

static int decode_samples(struct reader *r, pl_ingest_msg *m, int64_t now_ms)
{
    uint64_t v = 0;
    size_t cap = 0, cap_routes = 0;
    int rc;

    /* A sample is at least a 1-byte time... in practice 6; 1 keeps the bound simple. */
    if ((rc = get_count(r, "n_samples", 2, &m->n_samples)))
        return rc;
    if (m->n_samples && !(m->samples = calloc(m->n_samples, sizeof *m->samples)))
        return ENOMEM;
    for (size_t i = 0; i < m->n_samples; i++) {
        pl_ingest_sample *smp = &m->samples[i];
        size_t n = 0;
        if ((rc = get_varint(r, "a sample time", &v)))
            return rc;
        if (v < (uint64_t)PL_INGEST_MIN_TIME_MS)
            return bad(r, "sample time %llu ms is before 2020", (unsigned long long)v);
        if (now_ms < 0 || v > (uint64_t)now_ms + PL_INGEST_FUTURE_MS)
            return bad(r, "sample time %llu ms is more than 10 minutes after the server's clock (%lld)",
                       (unsigned long long)v, (long long)now_ms);
        smp->time_ms = (int64_t)v;
        /* An entry is at least three 1-byte varints. */
        if ((rc = get_count(r, "a sample's entry count", 3, &n)))
            return rc;
        if (m->n_entries + n > cap) {
            size_t want = cap ? cap : 64;
            while (want < m->n_entries + n)
                want *= 2;
            pl_ingest_entry *e = realloc(m->entries, want * sizeof *e);
            if (!e)
                return ENOMEM;
            m->entries = e;
            cap = want;
        }
        smp->first = m->n_entries;
        smp->n = n;
        uint64_t id = 0;
        for (size_t j = 0; j < n; j++) {
            pl_ingest_entry *e = &m->entries[m->n_entries + j];
            if ((rc = get_varint(r, "a type id delta", &v)))
                return rc;
            if (j && v == 0)
                return bad(r, "type id %llu appears twice in the sample at %lld", (unsigned long long)id,
                           (long long)smp->time_ms);
            if (v > UINT32_MAX - id)
                return bad(r, "a type id exceeds 2^32-1");
            id += v;
            e->local_id = (uint32_t)id;
            if ((rc = get_varint(r, "a count", &e->count)) || (rc = get_varint(r, "a byte size", &e->bytes)))
                return rc;
        }
        m->n_entries += n;
        /* Optional (bit3), so that a message of an older worker still decodes. */
        if ((m->flags & PL_INGEST_MEMORY) &&
            ((rc = get_range(r, "rss", 0, PL_INGEST_MEMORY_MAX, &smp->memory.rss)) ||
             (rc = get_range(r, "python_bytes", 0, PL_INGEST_MEMORY_MAX, &smp->memory.python_bytes)) ||
             (rc = get_range(r, "allocator_free_bytes", 0, PL_INGEST_MEMORY_MAX,
                             &smp->memory.allocator_free_bytes))))
            return rc;
        /* Optional (bit4) likewise. */
        if ((m->flags & PL_INGEST_ROUTES) && (rc = decode_routes(r, m, smp, &cap_routes)))
            return rc;
    }
    return 0;
}

int pl_ingest_decode(const void *data, size_t len, int64_t now_ms, pl_ingest_msg *out, char *why,
                     size_t whylen)
{
    struct reader r = {data, (const uint8_t *)data + len, why, whylen};
    int rc;

    memset(out, 0, sizeof *out);
    if (whylen)
        why[0] = '\0';
    if (!data && len)
        return bad(&r, "no message");
    if ((rc = decode_header(&r, out)) || (rc = decode_types(&r, out)) || (rc = decode_samples(&r, out, now_ms)))
        goto fail;
    if (r.p != r.end) {
        rc = bad(&r, "%zu bytes follow the last sample", (size_t)(r.end - r.p));
        goto fail;
    }
    return 0;
fail:
    if (rc == ENOMEM && whylen)
        snprintf(why, whylen, "out of memory");
    pl_ingest_msg_free(out);
    memset(out, 0, sizeof *out);
    return rc;
}

void pl_ingest_msg_free(pl_ingest_msg *m)
{
    if (!m)
        return;
    free(m->types);
    free(m->samples);
    free(m->entries);
    free(m->routes);
    m->routes = NULL;
    m->types = NULL;
    m->samples = NULL;
    m->entries = NULL;
}
