/* The worker side of remote mode: the HTTP client (deadlines, chunked
 * bodies, cancel, refused connections) and the pusher against a scripted
 * server thread on 127.0.0.1; every message it sends is decoded with the
 * central server's own decoder (ingest.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pyloot/gzip.h"
#include "pyloot/httpc.h"
#include "pyloot/ingest.h"
#include "pyloot/proc.h"
#include "pyloot/push.h"
#include "test.h"

/* ---- a scripted server: answers the next requests with replies[i] ---- */

#define MAX_REQ 16
typedef struct server {
    int fd;
    uint16_t port;
    const char *replies[MAX_REQ]; /* full responses; NULL: hold the connection without answering */
    int n_replies;
    /* Requests read so far. Counted before the reply goes out, so that a
     * client that has its answer always sees its request counted. */
    _Atomic int served;
    pl_buf bodies[MAX_REQ];       /* request bodies received */
    pl_buf heads[MAX_REQ];
    pthread_t thread;
} server;

static void read_request(int c, pl_buf *head, pl_buf *body)
{
    pl_buf raw = PL_BUF_INIT;
    char tmp[4096];
    for (;;) {
        ssize_t n = recv(c, tmp, sizeof tmp, 0);
        if (n <= 0)
            break;
        pl_buf_append(&raw, tmp, (size_t)n);
        char *end = strstr(pl_buf_cstr(&raw), "\r\n\r\n");
        if (!end)
            continue;
        size_t hlen = (size_t)(end - raw.data) + 4;
        const char *cl = strcasestr(raw.data, "Content-Length:");
        size_t want = cl && cl < end ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
        if (raw.len >= hlen + want) {
            pl_buf_append(head, raw.data, hlen);
            pl_buf_append(body, raw.data + hlen, want);
            break;
        }
    }
    pl_buf_free(&raw);
}

static void *serve(void *arg)
{
    server *s = arg;
    while (s->served < s->n_replies) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        int i = s->served;
        read_request(c, &s->heads[i], &s->bodies[i]);
        s->served++;
        if (s->replies[i]) {
            send(c, s->replies[i], strlen(s->replies[i]), MSG_NOSIGNAL);
        } else {
            char tmp[16];
            while (recv(c, tmp, sizeof tmp, 0) > 0) /* until the client gives up */
                ;
        }
        close(c);
    }
    return NULL;
}

static void server_start(server *s)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(bind(s->fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    CHECK(listen(s->fd, 8) == 0);
    pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(server *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
    for (int i = 0; i < MAX_REQ; i++) {
        pl_buf_free(&s->bodies[i]);
        pl_buf_free(&s->heads[i]);
    }
}

static uint16_t closed_port(void)
{
    server s;
    memset(&s, 0, sizeof s);
    server_start(&s);
    uint16_t port = s.port;
    server_stop(&s);
    return port;
}

/* ---- the client ---- */

static void test_client(void)
{
    server s;
    memset(&s, 0, sizeof s);
    s.replies[0] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Pyloot-Ticket: 77\r\n\r\nhello";
    s.replies[1] = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    s.replies[2] = "HTTP/1.0 200 OK\r\n\r\nto the end";
    s.replies[3] = NULL; /* never answers: the deadline */
    s.replies[4] = NULL; /* never answers: the cancel fd */
    s.n_replies = 5;
    server_start(&s);

    pl_http_response r = PL_HTTP_RESPONSE_INIT;
    pl_http_request req;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.host = "127.0.0.1";
    req.port = s.port;
    req.target = "/api/x?a=1";
    req.headers[req.n_headers++] = "X-Test: yes";
    req.body = "payload";
    req.body_len = 7;
    req.timeout_ms = 5000;
    req.cancel_fd = -1;
    CHECK_OK(pl_http_do(&req, &r));
    CHECK(r.status == 200 && r.body.len == 5 && memcmp(r.body.data, "hello", 5) == 0);
    char v[32];
    CHECK(pl_http_header(&r, "x-pyloot-ticket", v, sizeof v) && strcmp(v, "77") == 0);
    CHECK(!pl_http_header(&r, "X-Missing", v, sizeof v));
    CHECK(strstr(pl_buf_cstr(&s.heads[0]), "POST /api/x?a=1 HTTP/1.1\r\n") != NULL);
    CHECK(strstr(pl_buf_cstr(&s.heads[0]), "X-Test: yes\r\n") != NULL);
    CHECK(s.bodies[0].len == 7);

    req.method = "GET";
    req.body_len = 0;
    CHECK_OK(pl_http_do(&req, &r));
    CHECK(r.status == 404 && r.body.len == 5 && memcmp(r.body.data, "abcde", 5) == 0);
    CHECK_OK(pl_http_do(&req, &r));
    CHECK(r.status == 200 && r.body.len == 10);

    req.timeout_ms = 300;
    CHECK(pl_http_do(&req, &r) == ETIMEDOUT);

    int efd = eventfd(1, EFD_CLOEXEC); /* already readable */
    req.timeout_ms = 5000;
    req.cancel_fd = efd;
    CHECK(pl_http_do(&req, &r) == ECANCELED);
    close(efd);
    server_stop(&s);

    req.cancel_fd = -1;
    req.port = closed_port();
    CHECK(pl_http_do(&req, &r) == ECONNREFUSED);
    req.host = "no-such-host.invalid";
    CHECK(pl_http_do(&req, &r) != 0);
    pl_http_response_free(&r);
}

/* ---- the pusher ---- */

/* decode_body keeping the decompressed message in raw (names point into it). */
static int decode_kept(const pl_buf *body, pl_ingest_msg *m, pl_buf *raw)
{
    char why[200] = "";
    int rc = pl_gunzip(body->data, body->len, 16u << 20, raw);
    if (!rc)
        rc = pl_ingest_decode(raw->data, raw->len, pl_now_ms(), m, why, sizeof why);
    if (rc)
        fprintf(stderr, "decode: %s %s\n", pl_strerror(rc), why);
    return rc;
}

static int decode_body(const pl_buf *body, pl_ingest_msg *m)
{
    pl_buf raw = PL_BUF_INIT;
    char why[200] = "";
    int rc = pl_gunzip(body->data, body->len, 16u << 20, &raw);
    if (!rc)
        rc = pl_ingest_decode(raw.data, raw.len, pl_now_ms(), m, why, sizeof why);
    if (rc)
        fprintf(stderr, "decode: %s %s\n", pl_strerror(rc), why);
    /* names point into raw: keep it alive as long as the message (leaked to the test's end is not
     * acceptable under ASan, so the callers only look at counts and flags after this) */
    for (size_t i = 0; i < m->n_types; i++)
        m->types[i].name = NULL;
    pl_buf_free(&raw);
    return rc;
}

static pl_push *new_push(uint16_t port, size_t max_samples)
{
    pl_push_options o;
    memset(&o, 0, sizeof o);
    o.server_host = "127.0.0.1";
    o.server_port = port;
    o.token = "secret";
    o.host_name = "web-1";
    o.self.pid = 4242;
    o.self.start = 99;
    o.interval_ms = 500;
    o.argv = "worker";
    o.max_samples = max_samples;
    o.timeout_ms = 2000;
    pl_push *p = NULL;
    CHECK_OK(pl_push_new(&p, &o));
    return p;
}

static void add(pl_push *p, int64_t t, int k)
{
    const char *names[3] = {"a.B", "dict", "a.C"};
    size_t lens[3] = {3, 4, 3};
    uint32_t ids[3];
    CHECK_OK(pl_push_type_ids(p, names, lens, 3, ids));
    pl_type_count c[3] = {{ids[2], (uint64_t)k, 56}, {ids[0], 10, 100}, {ids[1], 1, 232}};
    CHECK_OK(pl_push_add(p, t, c, 3, 1 << 20));
}

#define OK200 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"accepted\":1}"

static void test_pusher(void)
{
    pl_push_options bad;
    memset(&bad, 0, sizeof bad);
    bad.server_host = "127.0.0.1";
    bad.server_port = 1;
    bad.host_name = "bad\nname";
    pl_push *p = NULL;
    CHECK(pl_push_new(&p, &bad) == PL_EBADARG);

    server s;
    memset(&s, 0, sizeof s);
    s.replies[0] = OK200;
    s.replies[1] = "HTTP/1.1 409 Conflict\r\nContent-Length: 18\r\n\r\n{\"reannounce\":true}";
    s.replies[2] = OK200;
    s.replies[3] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}";
    s.replies[4] = OK200;
    s.replies[5] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}";
    s.replies[6] = OK200;
    s.n_replies = 7;
    server_start(&s);
    p = new_push(s.port, 4);
    int64_t t = pl_now_ms() - 10000;
    pl_buf log = PL_BUF_INIT;
    pl_push_stats st;

    /* Three samples in one message, names announced, a new type-id space. */
    add(p, t, 1);
    add(p, t + 100, 2);
    add(p, t + 200, 3);
    CHECK(pl_push_due(p, pl_now_ms()));
    CHECK_OK(pl_push_send(p, pl_now_ms(), 0, 0, &log));
    pl_ingest_msg m;
    memset(&m, 0, sizeof m);
    CHECK_OK(decode_body(&s.bodies[0], &m));
    CHECK(m.flags == PL_INGEST_NEW_SPACE && m.n_types == 3 && m.n_samples == 3 && m.n_entries == 9);
    CHECK(m.pid == 4242 && m.start == 99 && strcmp(m.host, "web-1") == 0 && m.interval_ms == 500);
    /* The first sample, entry by entry: add() gave a.B 10 objects of 100
     * bytes, dict 1 of 232 and a.C k=1 of 56 (the ids looked up again). */
    {
        const char *names[3] = {"a.B", "dict", "a.C"};
        size_t lens[3] = {3, 4, 3};
        uint32_t ids[3];
        const uint64_t want[3][2] = {{10, 100}, {1, 232}, {1, 56}};
        CHECK_OK(pl_push_type_ids(p, names, lens, 3, ids));
        CHECK(m.samples[0].n == 3);
        for (size_t i = 0; i < 3; i++) {
            const pl_ingest_entry *e = &m.entries[m.samples[0].first + i];
            size_t k = 0;
            while (k < 3 && ids[k] != e->local_id)
                k++;
            CHECK(k < 3 && e->count == want[k][0] && e->bytes == want[k][1]);
        }
    }
    pl_ingest_msg_free(&m);
    CHECK(strstr(pl_buf_cstr(&s.heads[0]), "Authorization: Bearer secret\r\n") != NULL);
    CHECK(strstr(pl_buf_cstr(&s.heads[0]), "Content-Encoding: gzip\r\n") != NULL);
    pl_push_stats_get(p, &st);
    CHECK(st.delivered == 3 && st.queued == 0 && st.messages == 1 && !st.outage);

    /* A 409: the same sample again, in a new space, with its names. From
     * now on the messages carry the collector's stats (bit2). */
    pl_proc_stats ps = {41000, 2500000};
    pl_push_set_stats(p, &ps);
    add(p, t + 300, 4);
    CHECK_OK(pl_push_send(p, pl_now_ms(), 0, 0, &log));
    memset(&m, 0, sizeof m);
    CHECK_OK(decode_body(&s.bodies[1], &m));
    CHECK(m.flags == PL_INGEST_STATS && m.n_types == 0 && m.n_samples == 1);
    CHECK(m.collection_us == 41000 && m.gil_held_us == 2500000);
    pl_ingest_msg_free(&m);
    memset(&m, 0, sizeof m);
    CHECK_OK(decode_body(&s.bodies[2], &m));
    CHECK(m.flags == (PL_INGEST_NEW_SPACE | PL_INGEST_STATS) && m.n_types == 3 && m.n_samples == 1);
    pl_ingest_msg_free(&m);
    pl_push_stats_get(p, &st);
    CHECK(st.reannounces == 1 && st.delivered == 4);

    /* A 503: an outage, one log line, the backoff, and the bound drops the oldest. */
    add(p, t + 400, 5);
    CHECK(pl_push_send(p, pl_now_ms(), 0, 0, &log) != 0);
    CHECK(strstr(pl_buf_cstr(&log), "unreachable (HTTP 503); buffering samples") != NULL);
    CHECK(!pl_push_due(p, pl_now_ms()));
    CHECK(pl_push_due(p, pl_now_ms() + PL_PUSH_BACKOFF_MIN_MS));
    for (int i = 0; i < 5; i++)
        add(p, t + 500 + i, 6 + i);
    pl_push_stats_get(p, &st);
    CHECK(st.outage && st.queued == 4 && st.dropped == 2 && st.failures == 1);
    /* An exit during the outage does not wait for the server. */
    CHECK_OK(pl_push_send(p, pl_now_ms(), 1, 0, NULL));
    CHECK(s.served == 4);

    /* Back: everything queued in one message, and the end line. */
    pl_buf_reset(&log);
    CHECK_OK(pl_push_send(p, pl_now_ms() + PL_PUSH_BACKOFF_MIN_MS, 0, 0, &log));
    memset(&m, 0, sizeof m);
    CHECK_OK(decode_body(&s.bodies[4], &m));
    CHECK(m.n_samples == 4 && m.n_types == 0);
    CHECK(m.n_samples == 4 && m.samples[0].time_ms == t + 501 && m.samples[3].time_ms == t + 504);
    pl_ingest_msg_free(&m);
    CHECK(strstr(pl_buf_cstr(&log), "reachable again; 4 samples delivered, 2 dropped") != NULL);

    /* A 400: dropped, never retried; then the clean end with no sample. */
    add(p, t + 600, 7);
    CHECK(pl_push_send(p, pl_now_ms(), 0, 0, &log) == 0);
    pl_push_stats_get(p, &st);
    CHECK(st.dropped == 3 && st.queued == 0 && !st.outage);
    CHECK_OK(pl_push_send(p, pl_now_ms(), 1, 0, &log));
    memset(&m, 0, sizeof m);
    CHECK_OK(decode_body(&s.bodies[6], &m));
    CHECK(m.flags == (PL_INGEST_ENDED | PL_INGEST_STATS) && m.n_samples == 0);
    pl_ingest_msg_free(&m);

    pl_buf_free(&log);
    pl_push_free(p);
    server_stop(&s);

    /* Nobody listening: a refused connection is an outage, not a hang. */
    p = new_push(closed_port(), 0);
    add(p, t, 1);
    CHECK(pl_push_send(p, pl_now_ms(), 0, 0, NULL) == ECONNREFUSED);
    pl_push_stats_get(p, &st);
    CHECK(st.outage && st.queued == 1 && st.last_status == 0);
    pl_push_free(p);
}

/* Memory figures travel with their sample (bit3); a message never mixes
 * samples with and without them. */
static void test_memory(void)
{
    pl_push *p = new_push(closed_port(), 16);
    const char *names[1] = {"a.B"};
    size_t lens[1] = {3}, n = 0;
    uint32_t id;
    pl_buf body = PL_BUF_INIT;
    pl_ingest_msg m;
    int64_t t = pl_now_ms() - 5000;

    CHECK_OK(pl_push_type_ids(p, names, lens, 1, &id));
    pl_type_count c = {id, 3, 96};
    pl_memory_sample mem = {1u << 26, 96, 4096};
    CHECK_OK(pl_push_add(p, t, &c, 1, 1 << 20));
    CHECK_OK(pl_push_add_memory(p, t + 1, &c, 1, &mem));
    mem.rss = UINT64_MAX; /* beyond the decoder's bound: sent at the bound */
    CHECK_OK(pl_push_add_memory(p, t + 2, &c, 1, &mem));
    CHECK_OK(pl_push_encode(p, 0, &body, &n));
    CHECK_EQ_INT(n, 1);
    memset(&m, 0, sizeof m);
    CHECK_OK(decode_body(&body, &m));
    CHECK(!(m.flags & PL_INGEST_MEMORY));
    pl_ingest_msg_free(&m);
    pl_push_mark_announced(p);
    /* Drop the first sample as a 200 would, then the two with figures. */
    pl_push_clear(p);
    mem.rss = 1u << 26;
    CHECK_OK(pl_push_add_memory(p, t + 1, &c, 1, &mem));
    mem.rss = UINT64_MAX;
    CHECK_OK(pl_push_add_memory(p, t + 2, &c, 1, &mem));
    pl_buf_reset(&body);
    CHECK_OK(pl_push_encode(p, 0, &body, &n));
    CHECK_EQ_INT(n, 2);
    memset(&m, 0, sizeof m);
    CHECK_OK(decode_body(&body, &m));
    CHECK(m.flags & PL_INGEST_MEMORY);
    if (m.n_samples == 2) {
        CHECK_EQ_INT(m.samples[0].memory.rss, 1u << 26);
        CHECK_EQ_INT(m.samples[0].memory.python_bytes, 96);
        CHECK_EQ_INT(m.samples[0].memory.allocator_free_bytes, 4096);
        CHECK(m.samples[1].memory.rss == PL_INGEST_MEMORY_MAX);
    }
    pl_ingest_msg_free(&m);
    pl_buf_free(&body);
    pl_push_free(p);
}

/* Requests by route travel with their sample (flags bit4): a message holds
 * samples that all have them or none; an empty route sample stays one;
 * requests beyond the decoder's bound go at the bound, a name that is not
 * valid as `other`. */
static void test_routes(void)
{
    pl_push *p = new_push(closed_port(), 16);
    const char *names[1] = {"a.B"};
    size_t lens[1] = {3}, n = 0;
    uint32_t id;
    pl_buf body = PL_BUF_INIT;
    pl_ingest_msg m;
    int64_t t = pl_now_ms() - 5000;
    pl_memory_sample mem = {1u << 26, 96, 4096};
    pl_route_count r[] = {{"GET /login/<user>", 17, 7}, {"GET /\n", 6, 2}, {"GET /x", 6, UINT64_MAX}};
    pl_route_sample none = {NULL, 0}, some = {r, 3};

    CHECK_OK(pl_push_type_ids(p, names, lens, 1, &id));
    pl_type_count c = {id, 3, 96};
    CHECK_OK(pl_push_add_memory(p, t, &c, 1, &mem));
    CHECK_OK(pl_push_add_sample(p, t + 1, &c, 1, &mem, &none));
    CHECK_OK(pl_push_add_sample(p, t + 2, &c, 1, &mem, &some));
    CHECK_OK(pl_push_encode(p, 0, &body, &n));
    CHECK_EQ_INT(n, 1);
    memset(&m, 0, sizeof m);
    CHECK_OK(decode_body(&body, &m));
    CHECK(!(m.flags & PL_INGEST_ROUTES));
    pl_ingest_msg_free(&m);
    pl_push_mark_announced(p);
    pl_push_clear(p);
    CHECK_OK(pl_push_add_sample(p, t + 1, &c, 1, &mem, &none));
    CHECK_OK(pl_push_add_sample(p, t + 2, &c, 1, &mem, &some));
    pl_buf_reset(&body);
    CHECK_OK(pl_push_encode(p, 0, &body, &n));
    CHECK_EQ_INT(n, 2);
    memset(&m, 0, sizeof m);
    pl_buf raw = PL_BUF_INIT;
    CHECK_OK(decode_kept(&body, &m, &raw));
    CHECK((m.flags & PL_INGEST_ROUTES) && (m.flags & PL_INGEST_MEMORY));
    if (m.n_samples == 2 && m.n_routes == 3) {
        CHECK_EQ_INT(m.samples[0].n_routes, 0);
        CHECK_EQ_INT(m.samples[1].n_routes, 3);
        CHECK(m.routes[0].len == 17 && memcmp(m.routes[0].name, "GET /login/<user>", 17) == 0);
        CHECK_EQ_INT(m.routes[0].requests, 7);
        CHECK(m.routes[1].len == 5 && memcmp(m.routes[1].name, "other", 5) == 0);
        CHECK(m.routes[2].requests == PL_INGEST_REQUESTS_MAX);
    } else {
        CHECK(0);
    }
    pl_ingest_msg_free(&m);
    pl_buf_free(&raw);
    pl_buf_free(&body);
    pl_push_free(p);
}

int main(void)
{
    test_client();
    test_pusher();
    test_memory();
    test_routes();
    if (test_failures)
        fprintf(stderr, "%d check(s) failed\n", test_failures);
    return test_failures ? 1 : 0;
}
