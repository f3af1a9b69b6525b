/* Live objects through the central server (src/core/remote.c and the
 * mailbox, src/core/store/mailbox.c): tickets cannot be guessed (random,
 * not a counter) while requests are still taken oldest first; a server
 * without a token forwards no query to a pushing worker and takes no poll
 * or reply (a worker cannot be told from a forger), but still forwards to
 * the local workers of its own store; with a token, only the token's holder
 * polls and replies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/buf.h"
#include "pyloot/remote.h"
#include "pyloot/store.h"
#include "test.h"

static pl_store *open_store(const char *dir)
{
    pl_store_options opt;
    pl_store *s = NULL;
    memset(&opt, 0, sizeof opt);
    opt.path = dir;
    CHECK_OK(pl_store_open(&s, &opt));
    return s;
}

/* A pushing worker "h", pid 5, its own start 6, as the central server
 * registers it; its stored incarnation in *inc. */
static int register_pusher(pl_store *s, pl_incarnation *inc)
{
    pl_proc_info p;
    memset(&p, 0, sizeof p);
    snprintf(p.host, sizeof p.host, "h");
    p.inc.pid = 5;
    p.inc.start = 6;
    p.interval_ms = 1000;
    return pl_store_remote_register(s, &p, pl_now_ms(), inc);
}

static void test_tickets_are_random(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir);
    if (!s)
        return;
    pl_incarnation inc;
    CHECK_OK(register_pusher(s, &inc));
    uint64_t tickets[PL_MAILBOX_MAX_PENDING];
    int64_t now = pl_now_ms();
    for (int i = 0; i < PL_MAILBOX_MAX_PENDING; i++) {
        char q[8];
        snprintf(q, sizeof q, "q%d", i);
        tickets[i] = 0;
        CHECK_OK(pl_store_mailbox_post(s, &inc, q, strlen(q), now + i, &tickets[i]));
        CHECK(tickets[i] != 0);
    }
    /* Each ticket is 64 random bits: two in a row are never neighbours
     * (2^20 apart by chance: about 1 in 10^11 for these 31 pairs), and
     * none repeats. A counter (1, 2, 3...) fails both. */
    int near = 0, repeated = 0;
    for (int i = 1; i < PL_MAILBOX_MAX_PENDING; i++) {
        uint64_t d = tickets[i] > tickets[i - 1] ? tickets[i] - tickets[i - 1] : tickets[i - 1] - tickets[i];
        near += d < (1u << 20);
        for (int j = 0; j < i; j++)
            repeated += tickets[i] == tickets[j];
    }
    CHECK_EQ_INT(near, 0);
    CHECK_EQ_INT(repeated, 0);
    /* Still taken in the order they were posted, whatever the tickets' order. */
    for (int i = 0; i < PL_MAILBOX_MAX_PENDING; i++) {
        pl_buf req = PL_BUF_INIT;
        uint64_t t = 0;
        char q[8];
        snprintf(q, sizeof q, "q%d", i);
        CHECK_OK(pl_store_mailbox_take(s, &inc, now + 100, 60000, &t, &req));
        CHECK_EQ_INT(t, tickets[i]);
        CHECK(req.len == strlen(q) && memcmp(req.data, q, req.len) == 0);
        pl_buf_free(&req);
    }
    pl_buf none = PL_BUF_INIT;
    uint64_t t = 0;
    CHECK_EQ_INT(pl_store_mailbox_take(s, &inc, now + 100, 60000, &t, &none), PL_ENOTFOUND);
    pl_buf_free(&none);
    /* Every ticket answers; one never handed out does not. */
    for (int i = 0; i < PL_MAILBOX_MAX_PENDING; i++)
        CHECK_OK(pl_store_mailbox_reply(s, tickets[i], 200, "{}", 2, now + 200));
    CHECK_EQ_INT(pl_store_mailbox_reply(s, tickets[0] ^ 1, 200, "{}", 2, now + 200), PL_ENOTFOUND);
    pl_store_close(s);
    remove_dir(dir);
}

static int call(pl_remote *r, const char *method, const char *path, const char *query, const char *auth,
                const char *status, pl_response *resp, uint64_t *ticket, pl_remote_wait *w)
{
    /* A local peer through no proxy: without a token the access rule itself
     * lets every route through. */
    pl_request http = {.method = method, .path = path, .query = query, .body = "{}", .body_len = 2,
                       .peer = "127.0.0.1"};
    pl_remote_request rr = {&http, auth, NULL, NULL, status};
    memset(resp, 0, sizeof *resp);
    return pl_remote_handle(r, &rr, resp, ticket, w);
}

static int body_has(const pl_response *resp, const char *text)
{
    return resp->body.data && strstr(resp->body.data, text) != NULL;
}

static void test_tokenless_server_forwards_no_query_to_a_pusher(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir);
    pl_remote *r = NULL;
    pl_remote_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = s;
    opt.poll_ms = 100;
    if (!s || pl_remote_new(&r, &opt) != 0) {
        CHECK(0);
        return;
    }
    pl_incarnation inc;
    CHECK_OK(register_pusher(s, &inc));
    pl_response resp;
    pl_remote_wait w;
    uint64_t ticket = 0;

    /* The object routes: 403 saying why and how to enable them, nothing posted. */
    static const char *const paths[] = {"/api/objects", "/api/objects/77", "/api/objects/77/path",
                                        "/api/retainers", "/api/suspects"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        CHECK_EQ_INT(call(r, "GET", paths[i], "pid=5&host=h&group=app.Session", NULL, NULL, &resp, &ticket, &w),
                     PL_REMOTE_DONE);
        CHECK_EQ_INT(resp.status, 403);
        CHECK(body_has(&resp, "no token") && body_has(&resp, "forged") && body_has(&resp, "--token"));
        pl_response_free(&resp);
    }
    pl_buf req = PL_BUF_INIT;
    CHECK_EQ_INT(pl_store_mailbox_take(s, &inc, pl_now_ms(), 60000, &ticket, &req), PL_ENOTFOUND);
    pl_buf_free(&req);

    /* A poll or a reply, from anyone: 403, and no query is handed out. */
    CHECK_OK(pl_store_mailbox_post(s, &inc, "2 77 0 1 ", 9, pl_now_ms(), &ticket));
    uint64_t handed = 0;
    CHECK_EQ_INT(call(r, "GET", "/api/remote/poll", "host=h&pid=5&start=6", NULL, NULL, &resp, &handed, &w),
                 PL_REMOTE_DONE);
    CHECK_EQ_INT(resp.status, 403);
    CHECK(handed == 0 && body_has(&resp, "--token"));
    pl_response_free(&resp);
    char q[48];
    snprintf(q, sizeof q, "ticket=%llu", (unsigned long long)ticket);
    call(r, "POST", "/api/remote/reply", q, NULL, "200", &resp, &handed, &w);
    CHECK_EQ_INT(resp.status, 403);
    pl_response_free(&resp);
    int status = 0;
    pl_buf answer = PL_BUF_INIT;
    CHECK_EQ_INT(pl_store_mailbox_result(s, ticket, &status, &answer), PL_ENOTFOUND);
    pl_buf_free(&answer);
    pl_store_mailbox_cancel(s, ticket);

    /* A local worker of this store (this process) is still asked: its
     * answer goes through the store, which no HTTP client can write. */
    pl_proc_info self;
    memset(&self, 0, sizeof self);
    CHECK_OK(pl_proc_self(&self.inc));
    snprintf(self.host, sizeof self.host, "here");
    self.interval_ms = 1000;
    self.first_seen_ms = self.last_seen_ms = pl_now_ms();
    CHECK_OK(pl_store_register(s, &self));
    snprintf(q, sizeof q, "pid=%u", (unsigned)self.inc.pid);
    CHECK_EQ_INT(call(r, "GET", "/api/objects/77", q, NULL, NULL, &resp, &ticket, &w), PL_REMOTE_WAIT);
    pl_response_free(&resp);
    pl_remote_abandon(r, &w);

    pl_remote_free(r);
    pl_store_close(s);
    remove_dir(dir);
}

static void test_with_a_token_only_its_holder_polls_and_replies(void)
{
    char *dir = make_dir();
    pl_store *s = open_store(dir);
    pl_remote *r = NULL;
    pl_remote_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = s;
    opt.poll_ms = 100;
    opt.token = "s3cret";
    if (!s || pl_remote_new(&r, &opt) != 0) {
        CHECK(0);
        return;
    }
    const char *auth = "Bearer s3cret";
    pl_incarnation inc;
    CHECK_OK(register_pusher(s, &inc));
    pl_response resp;
    pl_remote_wait asker, w;
    uint64_t ticket = 0;
    CHECK_EQ_INT(call(r, "GET", "/api/objects/77", "pid=5", auth, NULL, &resp, &ticket, &asker), PL_REMOTE_WAIT);
    pl_response_free(&resp);
    /* A forger without the token: 401 for the poll and the reply. */
    call(r, "GET", "/api/remote/poll", "host=h&pid=5&start=6", NULL, NULL, &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 401);
    CHECK(ticket == 0);
    pl_response_free(&resp);
    char q[48];
    snprintf(q, sizeof q, "ticket=%llu", (unsigned long long)asker.ticket);
    call(r, "POST", "/api/remote/reply", q, "Bearer wrong", "200", &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 401);
    pl_response_free(&resp);
    /* The worker: takes the query, its 20-digit ticket is taken back. */
    CHECK_EQ_INT(call(r, "GET", "/api/remote/poll", "host=h&pid=5&start=6", auth, NULL, &resp, &ticket, &w),
                 PL_REMOTE_DONE);
    CHECK_EQ_INT(resp.status, 200);
    CHECK(ticket == asker.ticket);
    pl_response_free(&resp);
    /* A neighbouring ticket is no one's. */
    snprintf(q, sizeof q, "ticket=%llu", (unsigned long long)(asker.ticket + 1));
    call(r, "POST", "/api/remote/reply", q, auth, "200", &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, asker.ticket + 1 ? 404 : 400);
    pl_response_free(&resp);
    snprintf(q, sizeof q, "ticket=%llu", (unsigned long long)asker.ticket);
    call(r, "POST", "/api/remote/reply", q, auth, "200", &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 200);
    pl_response_free(&resp);
    CHECK_EQ_INT(pl_remote_continue(r, &asker, pl_now_ms(), &resp, &ticket), PL_REMOTE_DONE);
    CHECK_EQ_INT(resp.status, 200);
    CHECK(resp.body.data && strcmp(resp.body.data, "{}") == 0);
    pl_response_free(&resp);
    /* Tickets are decimal u64: 1 to 2^64 - 1, nothing else. */
    static const char *const bad[] = {"ticket=0", "ticket=18446744073709551616", "ticket=99999999999999999999",
                                      "ticket=-1", "ticket=1x", "ticket=", "ticket=+1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        call(r, "POST", "/api/remote/reply", bad[i], auth, "200", &resp, &ticket, &w);
        CHECK_EQ_INT(resp.status, 400);
        pl_response_free(&resp);
    }
    call(r, "POST", "/api/remote/reply", "ticket=18446744073709551615", auth, "200", &resp, &ticket, &w);
    CHECK_EQ_INT(resp.status, 404);
    pl_response_free(&resp);
    pl_remote_free(r);
    pl_store_close(s);
    remove_dir(dir);
}

int main(void)
{
    RUN(test_tickets_are_random);
    RUN(test_tokenless_server_forwards_no_query_to_a_pusher);
    RUN(test_with_a_token_only_its_holder_polls_and_replies);
    return test_failures ? 1 : 0;
}
