/* Deadlines and the pending-connection cap of the `pyloot` server (see
 * slots.h for the rules and why the shutdown is safe). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "slots.h"

#define CHECK_MS 200 /* deadlines are met within this */

enum {
    S_HEADERS = 1, /* pending: request line and headers */
    S_BODY,        /* pending: the body */
    S_ANSWER,      /* received whole: answered or parked, no deadline here */
    S_IDLE,        /* kept alive between two requests */
    S_SHUT         /* shut down by the guard, waiting for MHD to close it */
};

/* One connection. Every field is protected by slots.lock. */
struct slot {
    struct slot *prev, *next;
    int fd;
    int state;
    int64_t since_ms;    /* when it became pending (the oldest is ended first) */
    int64_t deadline_ms; /* 0: none */
};

struct slots {
    struct slots_options opt;
    pthread_mutex_t lock;     /* protects everything below and every slot */
    pthread_cond_t cond;
    struct slot *head;        /* every open connection */
    unsigned pending;         /* slots in S_HEADERS or S_BODY */
    int stopping;
    pthread_t timer;
    int timer_started;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_pending(const struct slot *sl)
{
    return sl->state == S_HEADERS || sl->state == S_BODY;
}

/* Ends a connection: its socket is shut down (the read side too, so MHD's
 * next read sees the end). Called under the lock while sl is listed, so
 * its descriptor is still MHD's open socket. */
static void shut(struct slots *s, struct slot *sl)
{
    if (is_pending(sl))
        s->pending--;
    sl->state = S_SHUT;
    sl->deadline_ms = 0;
    shutdown(sl->fd, SHUT_RDWR);
}

/* Makes sl pending from `now` with a deadline; over max_pending, the
 * connection pending longest (not sl) is ended. Under the lock. */
static void make_pending(struct slots *s, struct slot *sl, int state, int64_t now, int64_t deadline)
{
    if (!is_pending(sl))
        s->pending++;
    sl->state = state;
    sl->since_ms = now;
    sl->deadline_ms = deadline;
    while (s->pending > s->opt.max_pending) {
        struct slot *oldest = NULL;
        for (struct slot *o = s->head; o; o = o->next)
            if (o != sl && is_pending(o) && (!oldest || o->since_ms < oldest->since_ms))
                oldest = o;
        if (!oldest)
            break;
        shut(s, oldest);
    }
}

static void *check(void *arg)
{
    struct slots *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += CHECK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        int64_t now = now_ms();
        for (struct slot *sl = s->head; sl && !s->stopping; sl = sl->next)
            if (sl->deadline_ms && now >= sl->deadline_ms)
                shut(s, sl);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int slots_new(struct slots **out, const struct slots_options *opt)
{
    *out = NULL;
    struct slots *s = calloc(1, sizeof *s);
    if (!s)
        return ENOMEM;
    s->opt = *opt;
    if (!s->opt.max_pending)
        s->opt.max_pending = 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    int rc = pthread_create(&s->timer, NULL, check, s);
    if (rc) {
        slots_free(s);
        return rc;
    }
    s->timer_started = 1;
    *out = s;
    return 0;
}

void slots_free(struct slots *s)
{
    if (!s)
        return;
    if (s->timer_started) {
        pthread_mutex_lock(&s->lock);
        s->stopping = 1;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->timer, NULL);
    }
    /* MHD_stop_daemon closed every connection (each unlisted itself). */
    while (s->head) {
        struct slot *next = s->head->next;
        free(s->head);
        s->head = next;
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void slots_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
    struct slots *s = cls;
    struct slot *sl = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        sl = ci ? calloc(1, sizeof *sl) : NULL;
        *socket_context = sl;
        if (!sl)
            return; /* unguarded: MHD's idle timeout still applies */
        sl->fd = ci->connect_fd;
        int64_t now = now_ms();
        pthread_mutex_lock(&s->lock);
        sl->next = s->head;
        if (s->head)
            s->head->prev = sl;
        s->head = sl;
        make_pending(s, sl, S_HEADERS, now, now + (int64_t)s->opt.header_timeout_s * 1000);
        pthread_mutex_unlock(&s->lock);
        return;
    }
    /* Closed: unlisted before MHD closes the descriptor (see slots.h). */
    if (!sl)
        return;
    pthread_mutex_lock(&s->lock);
    if (is_pending(sl))
        s->pending--;
    if (sl->prev)
        sl->prev->next = sl->next;
    else
        s->head = sl->next;
    if (sl->next)
        sl->next->prev = sl->prev;
    pthread_mutex_unlock(&s->lock);
    free(sl);
    *socket_context = NULL;
}

static struct slot *slot_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void slots_request_line(struct slots *s, struct MHD_Connection *c)
{
    struct slot *sl = slot_of(c);
    if (!s || !sl)
        return;
    int64_t now = now_ms();
    pthread_mutex_lock(&s->lock);
    /* A new connection's header deadline runs from its start. */
    if (sl->state == S_IDLE || sl->state == S_ANSWER)
        make_pending(s, sl, S_HEADERS, now, now + (int64_t)s->opt.header_timeout_s * 1000);
    pthread_mutex_unlock(&s->lock);
}

void slots_headers_done(struct slots *s, struct MHD_Connection *c)
{
    struct slot *sl = slot_of(c);
    if (!s || !sl)
        return;
    int64_t now = now_ms();
    pthread_mutex_lock(&s->lock);
    if (sl->state == S_HEADERS) {
        sl->state = S_BODY;
        sl->deadline_ms = now + (int64_t)s->opt.request_timeout_s * 1000;
    }
    pthread_mutex_unlock(&s->lock);
}

void slots_body_done(struct slots *s, struct MHD_Connection *c)
{
    struct slot *sl = slot_of(c);
    if (!s || !sl)
        return;
    pthread_mutex_lock(&s->lock);
    if (is_pending(sl)) {
        s->pending--;
        sl->state = S_ANSWER;
        sl->deadline_ms = 0;
    }
    pthread_mutex_unlock(&s->lock);
}

void slots_request_done(struct slots *s, struct MHD_Connection *c)
{
    struct slot *sl = slot_of(c);
    if (!s || !sl)
        return;
    int64_t now = now_ms();
    pthread_mutex_lock(&s->lock);
    if (sl->state != S_SHUT) {
        if (is_pending(sl))
            s->pending--;
        sl->state = S_IDLE;
        sl->deadline_ms = now + (int64_t)s->opt.idle_timeout_s * 1000;
    }
    pthread_mutex_unlock(&s->lock);
}

unsigned slots_pending(struct slots *s)
{
    pthread_mutex_lock(&s->lock);
    unsigned n = s->pending;
    pthread_mutex_unlock(&s->lock);
    return n;
}
