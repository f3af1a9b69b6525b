/* libFuzzer target for the remote-mode sample decoder (src/core/ingest.c)
 * and pl_gunzip. Built only with -DPYLOOT_FUZZ=ON (clang); CI runs it for a
 * short bounded time over tests/fuzz/corpus/ingest/ (tools/bootstrap.sh,
 * run_fuzz); `bench/fuzz.sh ingest` runs it for long.
 *
 * Input: one flags byte, then the body. Flag bit 0: the body is gzip data,
 * inflated with a 1 MiB cap before decoding (as POST /api/samples does with
 * 16 MiB); else the body is the decompressed message. The body is copied
 * into a buffer of its exact size, so that AddressSanitizer sees a read past
 * its end. A decoded message is checked against the invariants callers
 * rely on. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/buf.h"
#include "pyloot/error.h"
#include "pyloot/gzip.h"
#include "pyloot/ingest.h"
#include "pyloot/store.h"

#define NOW 1790000000000LL

static void check(int cond)
{
    if (!cond)
        abort();
}

static void check_message(const pl_ingest_msg *m)
{
    check(strlen(m->host) >= 1 && strlen(m->host) <= PL_INGEST_HOST_MAX);
    check(m->pid >= 1 && m->interval_ms >= 1);
    /* The flags the wire format defines (pyloot/ingest.h, src/core/push.c). */
    check((m->flags & ~(PL_INGEST_ENDED | PL_INGEST_NEW_SPACE | PL_INGEST_STATS | PL_INGEST_MEMORY |
                        PL_INGEST_ROUTES)) == 0);
    if (m->flags & PL_INGEST_STATS)
        check(m->collection_us <= PL_INGEST_COLLECTION_MAX_US);
    else
        check(m->collection_us == 0 && m->gil_held_us == 0);
    check(strlen(m->argv) <= PL_INGEST_ARGV_MAX);
    for (size_t i = 0; i < m->n_types; i++)
        check(m->types[i].len >= 1 && m->types[i].len <= PL_TYPE_NAME_MAX);
    size_t next = 0, next_route = 0;
    for (size_t i = 0; i < m->n_samples; i++) {
        const pl_ingest_sample *s = &m->samples[i];
        check(s->first == next && s->first + s->n <= m->n_entries);
        check(s->time_ms >= PL_INGEST_MIN_TIME_MS && s->time_ms <= NOW + PL_INGEST_FUTURE_MS);
        for (size_t j = 1; j < s->n; j++)
            check(m->entries[s->first + j].local_id > m->entries[s->first + j - 1].local_id);
        /* Memory figures: bounded with bit3, absent without. */
        if (m->flags & PL_INGEST_MEMORY)
            check(s->memory.rss <= PL_INGEST_MEMORY_MAX && s->memory.python_bytes <= PL_INGEST_MEMORY_MAX &&
                  s->memory.allocator_free_bytes <= PL_INGEST_MEMORY_MAX);
        else
            check(s->memory.rss == 0 && s->memory.python_bytes == 0 && s->memory.allocator_free_bytes == 0);
        next += s->n;
        /* Requests by route: bounded, valid names, with bit4; absent without. */
        if (m->flags & PL_INGEST_ROUTES) {
            check(s->first_route == next_route && s->n_routes <= PL_INGEST_ROUTES_MAX &&
                  s->first_route + s->n_routes <= m->n_routes);
            for (size_t j = s->first_route; j < s->first_route + s->n_routes; j++)
                check(pl_route_name_valid(m->routes[j].name, m->routes[j].len) &&
                      m->routes[j].requests <= PL_INGEST_REQUESTS_MAX);
            next_route += s->n_routes;
        } else {
            check(s->first_route == 0 && s->n_routes == 0);
        }
    }
    check(next == m->n_entries);
    check(next_route == m->n_routes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    size_t len = size - 1;
    uint8_t *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, data + 1, len);
    pl_buf plain = PL_BUF_INIT;
    const void *msg = body;
    size_t msg_len = len;
    if (flags & 1) {
        int rc = pl_gunzip(body, len, 1u << 20, &plain);
        check(rc == 0 || rc == PL_EBADARG || rc == PL_ETOOBIG || rc == ENOMEM);
        check(rc != 0 || plain.len <= (1u << 20));
        if (rc) {
            check(plain.len == 0);
            goto out;
        }
        msg = plain.data ? plain.data : "";
        msg_len = plain.len;
    }
    pl_ingest_msg m;
    char why[256];
    int rc = pl_ingest_decode(msg, msg_len, NOW, &m, why, sizeof why);
    check(rc == 0 || rc == PL_EBADARG || rc == ENOMEM);
    if (rc == 0)
        check_message(&m);
    else
        check(why[0] != '\0' && m.types == NULL && m.samples == NULL && m.entries == NULL);
    pl_ingest_msg_free(&m);
out:
    pl_buf_free(&plain);
    free(body);
    return 0;
}
