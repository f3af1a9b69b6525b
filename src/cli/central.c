/* The remote-mode routes on libmicrohttpd (see central.h). A request that
 * must wait (a worker's long poll, an object query waiting for the worker's
 * answer) is suspended and listed; it is resumed when pl_remote says
 * something arrived for it (notify), or by the ticker at its deadline, and
 * then looks again with pl_remote_continue. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "central.h"

#define RING 64u          /* recent events, for requests that parked just after one */
#define TICK_MS 50        /* deadlines are met within this */
#define ANSWER_RECHECK 4  /* ticks between looks for answers stored by another process */

struct event {
    uint64_t seq;
    int any_answer;       /* a reply was stored */
    uint64_t committed;   /* else, when nonzero: pushes up to this commit ticket are stored */
    pl_incarnation inc;   /* else: a query was posted for inc */
};

struct central {
    pl_remote *remote;
    pl_store *store;
    const char *token;
    pthread_mutex_t lock;            /* protects everything below */
    pthread_cond_t cond;
    struct central_conn *parked;     /* list of parked requests */
    struct event ring[RING];
    uint64_t seq;                    /* events so far */
    int stopping;
    pthread_t ticker;
    int ticker_started;
};

static void unlist(struct central *c, struct central_conn *cc)
{
    if (!cc->listed)
        return;
    if (cc->prev)
        cc->prev->next = cc->next;
    else
        c->parked = cc->next;
    if (cc->next)
        cc->next->prev = cc->prev;
    cc->prev = cc->next = NULL;
    cc->listed = 0;
}

static int event_matches(const struct event *e, const pl_remote_wait *w)
{
    if (e->any_answer)
        return w->kind == PL_WAIT_ANSWER;
    if (e->committed)
        return w->kind == PL_WAIT_COMMIT && w->ticket <= e->committed;
    return w->kind == PL_WAIT_QUERY && e->inc.pid == w->inc.pid && e->inc.start == w->inc.start;
}

/* Records an event and wakes the parked requests it concerns. */
static void post_event(struct central *c, const pl_incarnation *inc, uint64_t committed)
{
    pthread_mutex_lock(&c->lock);
    /* Stored at its own sequence number, where park() looks for it. */
    c->seq++;
    struct event *e = &c->ring[c->seq % RING];
    e->seq = c->seq;
    e->any_answer = inc == NULL && !committed;
    e->committed = committed;
    if (inc)
        e->inc = *inc;
    for (struct central_conn *cc = c->parked, *next; cc; cc = next) {
        next = cc->next;
        if (event_matches(e, &cc->wait)) {
            unlist(c, cc);
            MHD_resume_connection(cc->mhd);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

/* pl_remote's notify: a query posted for inc, or (NULL) a reply stored. */
static void on_event(void *ctx, const pl_incarnation *inc)
{
    post_event(ctx, inc, 0);
}

/* The committer's: the pushes up to ticket `upto` are stored. */
static void on_committed(void *ctx, uint64_t upto)
{
    post_event(ctx, NULL, upto);
}

static void *tick(void *arg)
{
    struct central *c = arg;
    unsigned n = 0;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->cond, &c->lock, &ts);
        int64_t now = pl_now_ms();
        n++;
        for (struct central_conn *cc = c->parked, *next; cc; cc = next) {
            next = cc->next;
            if (c->stopping || now >= cc->wait.deadline_ms ||
                (cc->wait.kind == PL_WAIT_ANSWER && n % ANSWER_RECHECK == 0)) {
                unlist(c, cc);
                MHD_resume_connection(cc->mhd);
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int central_new(struct central **out, pl_store *store, const char *token, int read_only)
{
    *out = NULL;
    struct central *c = calloc(1, sizeof *c);
    if (!c)
        return ENOMEM;
    c->store = store;
    c->token = token;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    pl_remote_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = store;
    opt.token = token;
    opt.read_only = read_only;
    opt.notify = on_event;
    opt.notify_ctx = c;
    /* PYLOOT_GROUP_COMMIT=0: one transaction per push, stored on the HTTP
     * thread (the benchmark's baseline). */
    const char *group = getenv("PYLOOT_GROUP_COMMIT");
    opt.committed = read_only || (group && strcmp(group, "0") == 0) ? NULL : on_committed;
    opt.committed_ctx = c;
    const char *poll_ms = getenv("PYLOOT_POLL_MS"); /* tests: a shorter long poll */
    if (poll_ms && atoi(poll_ms) > 0 && atoi(poll_ms) <= (int)PL_REMOTE_POLL_MS)
        opt.poll_ms = (uint32_t)atoi(poll_ms);
    int rc = pl_remote_new(&c->remote, &opt);
    if (!rc) {
        rc = pthread_create(&c->ticker, NULL, tick, c);
        c->ticker_started = rc == 0;
    }
    if (rc) {
        central_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

enum MHD_Result central_send(struct MHD_Connection *conn, const pl_response *resp, uint64_t ticket)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        resp->body.len, (void *)(resp->body.data ? resp->body.data : ""), MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (resp->content_type)
        MHD_add_response_header(r, "Content-Type", resp->content_type);
    if (resp->content_encoding)
        MHD_add_response_header(r, "Content-Encoding", resp->content_encoding);
    if (resp->vary_accept_encoding)
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
    if (resp->cache_control)
        MHD_add_response_header(r, "Cache-Control", resp->cache_control);
    if (resp->www_authenticate)
        MHD_add_response_header(r, "WWW-Authenticate", resp->www_authenticate);
    if (resp->allow)
        MHD_add_response_header(r, "Allow", resp->allow);
    if (resp->set_cookie[0])
        MHD_add_response_header(r, "Set-Cookie", resp->set_cookie);
    if (resp->content_disposition[0])
        MHD_add_response_header(r, "Content-Disposition", resp->content_disposition);
    if (ticket) {
        char t[24];
        snprintf(t, sizeof t, "%" PRIu64, ticket);
        MHD_add_response_header(r, "X-Pyloot-Ticket", t);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Parks a request (suspended and listed, under the lock so no event can
 * slip between the look and the listing) unless an event it waits for came
 * since its last look. Returns 1 parked, 0 to look again now (not
 * suspended: resuming a connection inside its own handler call is avoided),
 * -1 when the server stops. */
static int park(struct central *c, struct MHD_Connection *conn, struct central_conn *cc)
{
    int ret = 1;
    pthread_mutex_lock(&c->lock);
    int missed = c->seq - cc->seq > RING;
    for (uint64_t s = cc->seq + 1; !missed && s <= c->seq; s++)
        missed = event_matches(&c->ring[s % RING], &cc->wait);
    cc->seq = c->seq;
    if (c->stopping) {
        ret = -1;
    } else if (missed) {
        ret = 0;
    } else {
        cc->mhd = conn;
        cc->parked = 1;
        MHD_suspend_connection(conn);
        cc->next = c->parked;
        cc->prev = NULL;
        if (c->parked)
            c->parked->prev = cc;
        c->parked = cc;
        cc->listed = 1;
    }
    pthread_mutex_unlock(&c->lock);
    return ret;
}

int central_request(struct central *c, struct MHD_Connection *conn, struct central_conn *cc, const pl_request *req)
{
    pl_response resp;
    uint64_t ticket = 0;
    int rc;
    memset(&resp, 0, sizeof resp);
    pthread_mutex_lock(&c->lock);
    cc->seq = c->seq;
    int stopping = c->stopping;
    pthread_mutex_unlock(&c->lock);
    if (cc->parked) {
        cc->parked = 0;
        if (stopping) {
            /* A queued push still gets its own answer (its commit is at
             * most one transaction away); other waits answer 503. */
            pl_remote_finish(c->remote, &cc->wait, &resp);
            rc = PL_REMOTE_DONE;
        } else {
            rc = pl_remote_continue(c->remote, &cc->wait, pl_now_ms(), &resp, &ticket);
        }
    } else {
        pl_remote_request rr;
        memset(&rr, 0, sizeof rr);
        rr.http = req;
        rr.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        rr.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        rr.content_encoding = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
        rr.pyloot_status = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Pyloot-Status");
        rc = pl_remote_handle(c->remote, &rr, &resp, &ticket, &cc->wait);
        if (rc == PL_REMOTE_PASS)
            return -1; /* the shared handler answers, applying the access rule (token, cookie, peer) itself */
    }
    while (rc == PL_REMOTE_WAIT) {
        pl_response_free(&resp);
        memset(&resp, 0, sizeof resp);
        int how = park(c, conn, cc);
        if (how > 0)
            return MHD_YES;
        if (how < 0) {
            pl_remote_finish(c->remote, &cc->wait, &resp);
            rc = PL_REMOTE_DONE;
        } else {
            rc = pl_remote_continue(c->remote, &cc->wait, pl_now_ms(), &resp, &ticket);
        }
    }
    enum MHD_Result ret = central_send(conn, &resp, ticket);
    pl_response_free(&resp);
    return ret;
}

void central_conn_done(struct central *c, struct central_conn *cc)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    unlist(c, cc);
    pthread_mutex_unlock(&c->lock);
    if (cc->parked) {
        pl_remote_abandon(c->remote, &cc->wait);
        cc->parked = 0;
    }
}

void central_stop(struct central *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    for (struct central_conn *cc = c->parked, *next; cc; cc = next) {
        next = cc->next;
        unlist(c, cc);
        MHD_resume_connection(cc->mhd);
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void central_free(struct central *c)
{
    if (!c)
        return;
    if (c->ticker_started) {
        pthread_mutex_lock(&c->lock);
        c->stopping = 1;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->ticker, NULL);
    }
    pl_remote_free(c->remote);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
