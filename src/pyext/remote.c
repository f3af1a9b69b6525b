/* Remote mode in the extension (docs/http-api.md, "Remote mode"): the
 * live-object poll thread of a pushing worker, the forwarding of the worker's
 * own /_pyloot to the central server, and the message encoder exposed for
 * tests and the wire benchmark. The sample push itself runs on the collector
 * thread (collector.c, through the pusher of src/core/push.c).
 *
 * The poll thread (`pyloot-poll`) keeps one GET /api/remote/poll open to the
 * central server; each query it receives is answered by the same function
 * the mailbox responder uses (it takes the GIL itself) and POSTed to
 * /api/remote/reply. Its waits are bounded, and a stop wakes it at once
 * through an eventfd, so joining it never waits for the network. */
#include "pyext.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "pyloot/access.h"
#include "pyloot/error.h"
#include "pyloot/gzip.h"
#include "pyloot/httpc.h"
#include "pyloot/push.h"
#include "pyloot/remote.h" /* PL_REMOTE_REPLY_MAX */
#include "util.h"

#if PY_VERSION_HEX >= 0x030D0000
#define pl_is_finalizing() Py_IsFinalizing()
#else
#define pl_is_finalizing() _Py_IsFinalizing()
#endif

/* Set once at module exec, before any thread starts. */
static pl_live_fn live_answer;

/* Poll thread state, protected by poll_lock. */
static pthread_mutex_t poll_lock = PTHREAD_MUTEX_INITIALIZER;
typedef struct poll_state {
    int running;         /* a thread exists and has not been joined */
    pthread_t thread;
    int wake_fd;         /* eventfd: readable once a stop was asked */
    char server_host[256];
    uint16_t server_port;
    char auth[PL_TOKEN_MAX + 40];
    char host_name[PL_PUSH_HOST_MAX + 1];
    pl_incarnation self;
    uint64_t answered, polls, failures;
} poll_state;
static poll_state P = {.wake_fd = -1};

#define POLL_WAIT_MS 35000   /* the server holds a poll up to 25 s */
#define REPLY_TIMEOUT_MS 10000
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 10000

/* Appends s percent-encoded for a query string. */
static void put_query_value(pl_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~')
            pl_buf_putc(b, (char)c);
        else
            pl_buf_printf(b, "%%%02X", c);
    }
}

/* Sleeps ms, or less when a stop is asked. Returns 1 when asked to stop. */
static int nap(int wake_fd, int ms)
{
    struct pollfd p = {wake_fd, POLLIN, 0};
    return poll(&p, 1, ms) > 0;
}

static void answer(const poll_state *ps, const pl_http_response *r, int wake_fd)
{
    char ticket[32];
    if (!pl_http_header(r, "X-Pyloot-Ticket", ticket, sizeof ticket) || !ticket[0])
        return;
    for (const char *c = ticket; *c; c++)
        if (*c < '0' || *c > '9')
            return;
    pl_live_query q;
    pl_buf body = PL_BUF_INIT, gz = PL_BUF_INIT, target = PL_BUF_INIT;
    int status = 400;
    if (pl_live_query_decode(r->body.data ? r->body.data : "", r->body.len, &q) != 0) {
        pl_buf_puts(&body, "{\"error\":\"malformed forwarded request\"}");
    } else if (pl_is_finalizing() || !live_answer || live_answer(NULL, &q, &body, &status) != 0) {
        pl_buf_reset(&body);
        status = 503;
        pl_buf_puts(&body, "{\"error\":\"the worker could not answer\"}");
    } else if (status == 200 && body.len > PL_REMOTE_REPLY_MAX) {
        /* The central server takes no larger reply (docs/security.md): say
         * so rather than send what it refuses (in practice a heap dump). */
        pl_buf_reset(&body);
        status = 413;
        pl_buf_printf(&body, "{\"error\":\"the answer is more than the %u MiB a worker replies through the central server%s\"}",
                      PL_REMOTE_REPLY_MAX >> 20,
                      q.kind == PL_LIVE_HEAPDUMP ? "; write the heap dump to a file with PyLoot.dump_heap(path)" : "");
    }
    int binary = status == 200 && q.kind == PL_LIVE_HEAPDUMP;
    char status_h[40];
    snprintf(status_h, sizeof status_h, "X-Pyloot-Status: %d", status);
    pl_buf_printf(&target, "/api/remote/reply?ticket=%s", ticket);
    pl_http_request req;
    memset(&req, 0, sizeof req);
    req.method = "POST";
    req.host = ps->server_host;
    req.port = ps->server_port;
    req.target = pl_buf_cstr(&target);
    req.headers[req.n_headers++] = status_h;
    req.headers[req.n_headers++] = binary ? "Content-Type: application/octet-stream" : "Content-Type: application/json";
    if (ps->auth[0])
        req.headers[req.n_headers++] = ps->auth;
    req.body = body.data;
    req.body_len = body.len;
    if (!binary && body.len > 1024 && pl_gzip(body.data, body.len, &gz) == 0) { /* a dump is compressed */
        req.headers[req.n_headers++] = "Content-Encoding: gzip";
        req.body = gz.data;
        req.body_len = gz.len;
    }
    req.timeout_ms = REPLY_TIMEOUT_MS;
    req.max_body = 64 * 1024;
    req.cancel_fd = wake_fd;
    pl_http_response rr = PL_HTTP_RESPONSE_INIT;
    pl_http_do(&req, &rr); /* a 404 means the asker gave up: nothing to do */
    pl_http_response_free(&rr);
    pthread_mutex_lock(&poll_lock);
    P.answered++;
    pthread_mutex_unlock(&poll_lock);
    pl_buf_free(&body);
    pl_buf_free(&gz);
    pl_buf_free(&target);
}

static void *poll_main(void *arg)
{
    pthread_setname_np(pthread_self(), "pyloot-poll");
    pl_gil_account_thread(); /* its answers' GIL time is pyloot's own */
    pthread_mutex_lock(&poll_lock);
    poll_state ps = P;
    pthread_mutex_unlock(&poll_lock);
    pl_buf target = PL_BUF_INIT;
    pl_buf_puts(&target, "/api/remote/poll?host=");
    put_query_value(&target, ps.host_name);
    pl_buf_printf(&target, "&pid=%" PRIu32 "&start=%" PRIu64, ps.self.pid, ps.self.start);
    pl_http_response r = PL_HTTP_RESPONSE_INIT;
    int retry_ms = 0;
    while (!pl_is_finalizing()) {
        pl_http_request req;
        memset(&req, 0, sizeof req);
        req.method = "GET";
        req.host = ps.server_host;
        req.port = ps.server_port;
        req.target = pl_buf_cstr(&target);
        if (ps.auth[0])
            req.headers[req.n_headers++] = ps.auth;
        req.timeout_ms = POLL_WAIT_MS;
        req.max_body = 4096;
        req.cancel_fd = ps.wake_fd;
        int rc = pl_http_do(&req, &r);
        if (rc == ECANCELED)
            break;
        pthread_mutex_lock(&poll_lock);
        P.polls++;
        if (rc || (r.status != 200 && r.status != 204))
            P.failures++;
        pthread_mutex_unlock(&poll_lock);
        if (rc == 0 && r.status == 200) {
            retry_ms = 0;
            answer(&ps, &r, ps.wake_fd);
            continue;
        }
        if (rc == 0 && r.status == 204) {
            retry_ms = 0;
            continue;
        }
        /* 404 (the first push has not arrived yet), or the server is away:
         * try again later, sooner than the push backoff so that live objects
         * come back soon after the server does. */
        retry_ms = retry_ms ? retry_ms * 2 : RETRY_MIN_MS;
        if (retry_ms > RETRY_MAX_MS)
            retry_ms = RETRY_MAX_MS;
        if (nap(ps.wake_fd, retry_ms))
            break;
    }
    pl_http_response_free(&r);
    pl_buf_free(&target);
    return NULL;
}

/* Joins a running poll thread after waking it. GIL held on entry and exit. */
static void poll_stop(void)
{
    pthread_mutex_lock(&poll_lock);
    int joinable = P.running;
    pthread_t thread = P.thread;
    int fd = P.wake_fd;
    P.running = 0;
    pthread_mutex_unlock(&poll_lock);
    if (!joinable)
        return;
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) < 0) {
        /* an eventfd write fails only on overflow: it is readable then anyway */
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
    pthread_mutex_lock(&poll_lock);
    close(fd);
    if (P.wake_fd == fd)
        P.wake_fd = -1;
    pthread_mutex_unlock(&poll_lock);
}

/* remote_poll_start(server_host, port, token, host_name) -> bool */
static PyObject *py_remote_poll_start(PyObject *module, PyObject *args)
{
    const char *host, *token, *host_name;
    unsigned int port;
    if (!PyArg_ParseTuple(args, "sIzs:remote_poll_start", &host, &port, &token, &host_name))
        return NULL;
    if (port < 1 || port > 65535 || strlen(host) >= sizeof P.server_host || strlen(host_name) > PL_PUSH_HOST_MAX ||
        (token && strlen(token) > PL_TOKEN_MAX)) {
        PyErr_SetString(PyExc_ValueError, "remote_poll_start: bad server address, host name or token");
        return NULL;
    }
    pl_incarnation self;
    int rc = pl_proc_self(&self);
    if (rc)
        return pl_raise(module, rc, "reading /proc/self");
    poll_stop();
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    pthread_mutex_lock(&poll_lock);
    snprintf(P.server_host, sizeof P.server_host, "%s", host);
    P.server_port = (uint16_t)port;
    if (token && token[0])
        snprintf(P.auth, sizeof P.auth, "Authorization: Bearer %s", token);
    else
        P.auth[0] = '\0';
    snprintf(P.host_name, sizeof P.host_name, "%s", host_name);
    P.self = self;
    P.wake_fd = fd;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    rc = pthread_create(&P.thread, &attr, poll_main, NULL);
    pthread_attr_destroy(&attr);
    if (!rc)
        P.running = 1;
    else {
        close(fd);
        P.wake_fd = -1;
    }
    pthread_mutex_unlock(&poll_lock);
    if (rc) {
        errno = rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_TRUE;
}

static PyObject *py_remote_poll_stop(PyObject *module, PyObject *unused)
{
    poll_stop();
    Py_RETURN_NONE;
}

static PyObject *py_remote_poll_stats(PyObject *module, PyObject *unused)
{
    pthread_mutex_lock(&poll_lock);
    poll_state ps = P;
    pthread_mutex_unlock(&poll_lock);
    return Py_BuildValue("{s:O,s:K,s:K,s:K}", "running", ps.running ? Py_True : Py_False, "polls",
                         (unsigned long long)ps.polls, "answered", (unsigned long long)ps.answered, "failures",
                         (unsigned long long)ps.failures);
}

/* remote_forward(server_host, port, method, target, headers, body, timeout)
 * -> (status, [(name, value)...], body), or (None, why) when the server could
 * not be reached (then the caller answers 502). headers: a list of "Name:
 * value" lines (at most PL_HTTP_MAX_HEADERS). ValueError, with nothing sent,
 * when a part could not go on the wire as it is (pl_http_request_check: CR,
 * LF, NUL, a byte outside RFC 3986 in the target...). The exchange runs
 * without the GIL. */
static PyObject *py_remote_forward(PyObject *module, PyObject *args)
{
    const char *host, *method, *target;
    unsigned int port;
    PyObject *headers;
    Py_buffer body;
    double timeout;
    if (!PyArg_ParseTuple(args, "sIssOy*d:remote_forward", &host, &port, &method, &target, &headers, &body,
                          &timeout))
        return NULL;
    PyObject *result = NULL;
    pl_http_request req;
    memset(&req, 0, sizeof req);
    if (!PyList_Check(headers) || PyList_GET_SIZE(headers) > PL_HTTP_MAX_HEADERS || port < 1 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "remote_forward: bad headers or port");
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        Py_ssize_t len;
        const char *h = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(headers, i), &len);
        if (!h)
            goto done;
        if ((size_t)len != strlen(h)) {
            PyErr_SetString(PyExc_ValueError, "remote_forward: a header holds a NUL byte");
            goto done;
        }
        req.headers[req.n_headers++] = h;
    }
    req.method = method;
    req.host = host;
    req.port = (uint16_t)port;
    req.target = target;
    req.body = body.buf;
    req.body_len = (size_t)body.len;
    req.timeout_ms = (int)(timeout * 1000);
    req.max_body = 64u << 20;
    req.cancel_fd = -1;
    if (pl_http_request_check(&req) != 0) {
        PyErr_SetString(PyExc_ValueError, "remote_forward: the method, target, a header or the server host "
                                          "holds a byte that cannot be sent as it is (CR, LF, a control "
                                          "character, or in the target a byte outside RFC 3986)");
        goto done;
    }
    pl_http_response r = PL_HTTP_RESPONSE_INIT;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pl_http_do(&req, &r);
    Py_END_ALLOW_THREADS
    if (rc) {
        result = Py_BuildValue("(Os)", Py_None, pl_strerror(rc));
    } else {
        static const char *const pass[] = {"Content-Type", "Content-Encoding", "Vary", "Cache-Control",
                                           "WWW-Authenticate", "Set-Cookie", "Location"};
        PyObject *list = PyList_New(0);
        for (size_t i = 0; list && i < sizeof pass / sizeof *pass; i++) {
            char v[2048];
            if (pl_http_header(&r, pass[i], v, sizeof v)) {
                PyObject *t = Py_BuildValue("(ss)", pass[i], v);
                if (!t || PyList_Append(list, t) < 0)
                    Py_CLEAR(list);
                Py_XDECREF(t);
            }
        }
        if (list)
            result = Py_BuildValue("(iNy#)", r.status, list, r.body.data ? r.body.data : "", (Py_ssize_t)r.body.len);
    }
    pl_http_response_free(&r);
done:
    PyBuffer_Release(&body);
    return result;
}

/* encode_samples(samples, host_name="h", pid=1, start=1, interval=30.0,
 * rss=0, argv="", end=False, announced=False) -> bytes: the gzip'ed message
 * carrying `samples` ([(time_ms, {name: (count, bytes)})...]); with
 * `announced`, as a steady-state message whose names were announced before.
 * For tests and the wire benchmark. */
static PyObject *py_encode_samples(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"samples", "host_name", "pid", "start", "interval", "rss", "argv", "end",
                             "announced", NULL};
    PyObject *samples;
    const char *host_name = "h", *argv = "";
    unsigned int pid = 1;
    unsigned long long start = 1, rss = 0;
    double interval = 30.0;
    int end = 0, announced = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|sIKdKspp:encode_samples", kwlist, &samples, &host_name, &pid,
                                     &start, &interval, &rss, &argv, &end, &announced))
        return NULL;
    pl_push_options opt = {.server_host = "-", .server_port = 1, .host_name = host_name,
                           .self = {pid, start}, .interval_ms = (uint32_t)(interval * 1000), .argv = argv,
                           .max_samples = 1 << 20, .max_bytes = (size_t)1 << 40};
    pl_push *push = NULL;
    int rc = pl_push_new(&push, &opt);
    if (rc)
        return rc == PL_EBADARG ? (PyErr_SetString(PyExc_ValueError, "bad host_name"), NULL)
                                : pl_raise(module, rc, "encoding");
    PyObject *seq = PySequence_Fast(samples, "samples must be a sequence"), *result = NULL;
    pl_type_count *counts = NULL;
    pl_buf out = PL_BUF_INIT;
    if (!seq)
        goto done;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        long long t;
        PyObject *d;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "LO!", &t, &PyDict_Type, &d))
            goto done;
        free(counts);
        counts = malloc(((size_t)PyDict_GET_SIZE(d) + 1) * sizeof *counts);
        if (!counts) {
            PyErr_NoMemory();
            goto done;
        }
        Py_ssize_t pos = 0, n = 0;
        PyObject *k, *v;
        while (PyDict_Next(d, &pos, &k, &v)) {
            Py_ssize_t len;
            const char *name = PyUnicode_AsUTF8AndSize(k, &len);
            unsigned long long c, b;
            if (!name || !PyArg_ParseTuple(v, "KK", &c, &b))
                goto done;
            size_t slen = (size_t)len;
            if ((rc = pl_push_type_ids(push, &name, &slen, 1, &counts[n].type_id)) != 0)
                goto fail;
            counts[n].count = c;
            counts[n].bytes = b;
            n++;
        }
        if ((rc = pl_push_add(push, t, counts, (size_t)n, rss)) != 0)
            goto fail;
    }
    if (announced)
        pl_push_mark_announced(push);
    size_t n_samples;
    if ((rc = pl_push_encode(push, end, &out, &n_samples)) != 0)
        goto fail;
    result = PyBytes_FromStringAndSize(out.data ? out.data : "", (Py_ssize_t)out.len);
    goto done;
fail:
    pl_raise(module, rc, "encoding");
done:
    Py_XDECREF(seq);
    free(counts);
    pl_buf_free(&out);
    pl_push_free(push);
    return result;
}

static PyObject *py_host_name(PyObject *module, PyObject *unused)
{
    pl_proc_info info;
    memset(&info, 0, sizeof info);
    pl_proc_describe(&info);
    return PyUnicode_DecodeUTF8(info.host, (Py_ssize_t)strlen(info.host), "replace");
}

/* See pyext.h. */
void pl_remote_atfork_child(void)
{
    /* The poll thread does not exist in the child; its eventfd is the
     * parent's too, so it is left open (the child's own start makes a new
     * one) and never written to from here. */
    pthread_mutex_init(&poll_lock, NULL);
    P.running = 0;
    P.wake_fd = -1;
}

static PyMethodDef remote_methods[] = {
    {"remote_poll_start", py_remote_poll_start, METH_VARARGS,
     "remote_poll_start(server_host, port, token, host_name) -> True\n"
     "Starts the thread answering the central server's live-object queries for this process."},
    {"remote_poll_stop", py_remote_poll_stop, METH_NOARGS, "Stops and joins the poll thread (at once)."},
    {"remote_poll_stats", py_remote_poll_stats, METH_NOARGS, "Counters of the poll thread."},
    {"remote_forward", py_remote_forward, METH_VARARGS,
     "remote_forward(server_host, port, method, target, headers, body, timeout)\n"
     "-> (status, headers, body), or (None, why) when the server could not be reached."},
    {"encode_samples", (PyCFunction)(void (*)(void))py_encode_samples, METH_VARARGS | METH_KEYWORDS,
     "encode_samples(samples, ...) -> bytes: a gzip'ed push message (tests, benchmarks)."},
    {"host_name", py_host_name, METH_NOARGS, "This machine's host name, as remote mode sends it."},
    {NULL, NULL, 0, NULL},
};

int pl_remote_module_exec(PyObject *module, pl_live_fn live)
{
    live_answer = live;
    return PyModule_AddFunctions(module, remote_methods);
}
