/* The Store and Handler types: thin bindings of pl_store and pl_handler. */
#include "pyext.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyloot/access.h"
#include "pyloot/error.h"
#include "pyloot/redact.h"
#include "pyloot/service.h"
#include "pyloot/store.h"
#include "pyloot/verify.h"
#include "util.h"

typedef struct {
    PyObject_HEAD
    pl_store *store; /* NULL once closed */
    pid_t pid;       /* process that opened `store`; another pid means we are a fork child */
    pl_store_options opt;
    char *path;      /* owned copy of opt.path */
    int busy;        /* calls in flight without the GIL; protected by the GIL */
    uint64_t serial; /* unique per opened handle in this process (pointers get reused) */
    /* A guarded store (guard=True) is checked before it is trusted and never
     * raises for a store that cannot be used: it is then "unavailable", says
     * why in `error`, and each use retries the open once `retry_at` has
     * passed (backoff 1 s doubling to 60 s). Protected by the GIL. */
    int guard;
    int err_rc;      /* the last open's error; 0 while open or never tried */
    char *error;     /* malloc'ed: what is wrong and how to fix it; NULL when open */
    int opening;     /* an attempt runs (with the GIL released) */
    double retry_at; /* pl_now_s() of the next attempt */
    double delay;    /* the current backoff */
    /* A handle found damaged while in use (pl_store_damaged), waiting to be
     * replaced (pl_store_replace). Never closed nor freed: other threads (the
     * collector, a request) may still hold it, and each of their calls on it
     * returns PL_EDAMAGED at once. Protected by the GIL. */
    pl_store *damaged;
} PlStoreObject;

static uint64_t next_serial = 1; /* protected by the GIL */

typedef struct {
    PyObject_HEAD
    PlStoreObject *store; /* strong reference */
    pl_handler *handler;
    pid_t pid;
    pl_handler_options opt;
    char *token;         /* owned; opt.token points here */
    char *metrics_types; /* owned; opt.metrics_types points here */
    char *allowed_hosts; /* owned; opt.allowed_hosts points here */
} PlHandlerObject;

/* The type objects, for pl_store_of (called from parts without the module). */
static PyTypeObject *store_type_static;

#define RETRY_FIRST_S 1.0
#define RETRY_MAX_S 60.0
/* Handles given up after damage in this process, each one an abandoned env
 * (its map and descriptors): past this many the store stays unavailable
 * rather than leak more. Protected by the GIL. */
#define MAX_ABANDONED 16
static unsigned abandoned;

/* What a Handler answers live-object routes with (handed in by module.c). */
static pl_live_fn live_answer;

/* ---- Store ---- */

/* One guarded open of self->opt (GIL held; released during the open).
 * Success: the handle is set and a recovery from a damaged store logged.
 * Failure: the store stays unavailable, the error is logged when it
 * differs from the last one, and the next attempt is backed off. */
static pl_store *store_attempt(PlStoreObject *self)
{
    pl_store_report *rep = calloc(1, sizeof *rep);
    pl_store *s = NULL;
    int rc;
    if (!rep)
        return NULL;
    pl_store *damaged = self->damaged;
    self->opening = 1;
    Py_BEGIN_ALLOW_THREADS
    if (damaged)
        rc = pl_store_replace(damaged, &s, &self->opt, 0, rep);
    else
        rc = pl_store_open_guarded(&s, &self->opt, 0, rep);
    Py_END_ALLOW_THREADS
    self->opening = 0;
    if (rep->moved_to[0] && damaged)
        pl_log("pyloot: pid %d: the store %s was found damaged while running (%s); moved to %s; started a "
               "new one", (int)getpid(), self->path, rep->reason, rep->moved_to);
    else if (rep->moved_to[0])
        pl_log("pyloot: store %s was damaged (%s); moved to %s; started a new one", self->path, rep->reason,
               rep->moved_to);
    else if (!rc && damaged)
        pl_log("pyloot: pid %d: the store %s was found damaged while running; another process moved it "
               "aside; using the new one", (int)getpid(), self->path);
    if (!rc)
        self->damaged = NULL; /* leaked on purpose: see the field */
    if (!rc) {
        if (self->error && !damaged)
            pl_log("pyloot: pid %d: the store %s is usable again", (int)getpid(), self->path);
        free(self->error);
        self->error = NULL;
        self->err_rc = 0;
        self->delay = 0;
        self->store = s;
        self->pid = getpid();
        self->serial = next_serial++;
    } else {
        if (!rep->message[0])
            pl_store_explain(rc, "opening", self->path, rep->message, sizeof rep->message);
        if (!self->error || strcmp(self->error, rep->message) != 0)
            pl_log("pyloot: pid %d: %s (collection paused; retrying every %g s to %g s)", (int)getpid(),
                   rep->message, RETRY_FIRST_S, RETRY_MAX_S);
        free(self->error);
        self->error = strdup(rep->message);
        self->err_rc = rc;
        self->delay = self->delay ? self->delay * 2 : RETRY_FIRST_S;
        if (self->delay > RETRY_MAX_S)
            self->delay = RETRY_MAX_S;
        self->retry_at = pl_now_s() + self->delay;
    }
    free(rep);
    return s;
}

/* A guarded store that is not simply open in this process: unavailable,
 * being opened by another thread, inherited through fork, or found damaged.
 * GIL held. */
static int guarded_unsettled(const PlStoreObject *self)
{
    return self->guard && (self->error || self->opening || (self->store && self->pid != getpid()) ||
                           pl_store_damaged(self->store, NULL, 0));
}

/* The handle was found damaged while in use (GIL held): it is given up
 * (collection pauses, /_pyloot answers 503 with the reason) and replaced
 * at once by store_attempt. */
static void give_up_damaged(PlStoreObject *self)
{
    char why[256], msg[1024];
    pl_store_damaged(self->store, why, sizeof why);
    self->damaged = self->store;
    self->store = NULL;
    abandoned++;
    snprintf(msg, sizeof msg,
             "the store %.400s was found damaged while running (%.256s); it is moved aside and a new one "
             "started%s", self->path, why,
             abandoned > MAX_ABANDONED ? ". Given up: damaged too often in this process; restart it" : "");
    free(self->error);
    self->error = strdup(msg);
    if (abandoned > MAX_ABANDONED) {
        pl_log("pyloot: pid %d: %s", (int)getpid(), msg);
        self->retry_at = 1e300;
    } else {
        self->retry_at = 0;
        self->delay = 0;
    }
}

/* See pyext.h. */
pl_store *pl_store_try(PyObject *obj, const char **why)
{
    *why = NULL;
    if (!store_type_static || !PyObject_TypeCheck(obj, store_type_static)) {
        PyErr_SetString(PyExc_TypeError, "expected a pyloot._pyloot.Store");
        return NULL;
    }
    PlStoreObject *self = (PlStoreObject *)obj;
    if (guarded_unsettled(self)) {
        if (self->store && self->pid == getpid() && pl_store_damaged(self->store, NULL, 0))
            give_up_damaged(self);
        if (self->store && self->pid != getpid()) {
            /* A fork child: see pl_store_of. */
            pl_store_forget(self->store);
            self->store = NULL;
            self->retry_at = 0;
        }
        if (!self->store && !self->opening && pl_now_s() >= self->retry_at)
            store_attempt(self);
        if (!self->store) {
            *why = self->error ? self->error : "the store is being opened";
            return NULL;
        }
    }
    return pl_store_of(obj);
}

static int store_init(PyObject *op, PyObject *args, PyObject *kw)
{
    PlStoreObject *self = (PlStoreObject *)op;
    static char *kwlist[] = {"path", "map_size", "max_samples", "max_age", "max_bytes", "read_only", "guard",
                             NULL};
    const char *path;
    unsigned long long map_size = 0, max_age = 0, max_bytes = 0;
    unsigned int max_samples = 0;
    int read_only = 0, guard = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|KIKKpp:Store", kwlist, &path, &map_size, &max_samples,
                                     &max_age, &max_bytes, &read_only, &guard))
        return -1;
    if (self->store) {
        PyErr_SetString(PyExc_RuntimeError, "Store is already open");
        return -1;
    }
    self->path = strdup(path);
    if (!self->path) {
        PyErr_NoMemory();
        return -1;
    }
    memset(&self->opt, 0, sizeof self->opt);
    self->opt.path = self->path;
    self->opt.map_size = map_size;
    self->opt.max_samples = max_samples;
    self->opt.max_age_s = max_age;
    self->opt.max_bytes = max_bytes;
    self->opt.read_only = read_only;
    self->guard = guard;
    if (guard) {
        store_attempt(self);
        return 0; /* never raises: `error` says why the store is unavailable */
    }
    int rc;
    pl_store *s = NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pl_store_open(&s, &self->opt);
    Py_END_ALLOW_THREADS
    if (rc) {
        if (rc > 0) {
            errno = rc;
            PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        } else {
            char what[64 + 256];
            snprintf(what, sizeof what, "opening the store %.256s", path);
            pl_raise(NULL, rc, what);
        }
        return -1;
    }
    self->store = s;
    self->pid = getpid();
    self->serial = next_serial++;
    return 0;
}

/* See pyext.h. */
pl_store *pl_store_of(PyObject *obj)
{
    if (!store_type_static || !PyObject_TypeCheck(obj, store_type_static)) {
        PyErr_SetString(PyExc_TypeError, "expected a pyloot._pyloot.Store");
        return NULL;
    }
    PlStoreObject *self = (PlStoreObject *)obj;
    if (guarded_unsettled(self)) {
        const char *why;
        pl_store *s = pl_store_try(obj, &why);
        if (!s && why)
            pl_raise_message(self->err_rc, why);
        return s;
    }
    if (!self->store) {
        PyErr_SetString(PyExc_ValueError, "the store is closed");
        return NULL;
    }
    if (self->pid == getpid())
        return self->store;
    /* A fork child: LMDB forbids using (or closing) an env opened before the
     * fork, so the inherited handle is dropped on purpose and reopened. */
    pl_store_forget(self->store);
    self->store = NULL;
    pl_store *s = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pl_store_open(&s, &self->opt);
    Py_END_ALLOW_THREADS
    if (self->store && self->pid == getpid()) {
        /* another thread reopened it while we waited */
        if (!rc)
            pl_store_close(s);
        return self->store;
    }
    if (rc) {
        char what[64 + 256];
        snprintf(what, sizeof what, "reopening the store %.256s after fork", self->path);
        pl_raise(NULL, rc, what);
        return NULL;
    }
    self->store = s;
    self->pid = getpid();
    self->serial = next_serial++;
    return s;
}

/* See pyext.h. */
uint64_t pl_store_serial(PyObject *obj)
{
    return ((PlStoreObject *)obj)->serial;
}

static void store_dealloc(PyObject *op)
{
    PlStoreObject *self = (PlStoreObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->store) {
        if (self->pid == getpid())
            pl_store_close(self->store);
        else
            pl_store_forget(self->store);
    }
    free(self->path);
    free(self->error);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *store_close(PyObject *op, PyObject *unused)
{
    PlStoreObject *self = (PlStoreObject *)op;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the store is in use by a request");
        return NULL;
    }
    if (self->store) {
        if (self->pid == getpid())
            pl_store_close(self->store);
        else
            pl_store_forget(self->store);
        self->store = NULL;
    }
    free(self->error);
    self->error = NULL; /* closed, not unavailable */
    Py_RETURN_NONE;
}

static PyObject *store_procs(PyObject *op, PyObject *unused)
{
    pl_store *s = pl_store_of(op);
    if (!s)
        return NULL;
    pl_proc_info *procs = NULL;
    size_t n = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pl_store_procs(s, &procs, &n);
    Py_END_ALLOW_THREADS
    if (rc) {
        return pl_raise(NULL, rc, "reading the store");
    }
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        pl_proc_info *p = &procs[i];
        char end[64];
        pl_proc_end_text(p, end, sizeof end);
        PyObject *d = Py_BuildValue(
            "{s:I,s:K,s:O,s:d,s:d,s:O,s:s,s:s,s:d,s:K,s:I,s:s}", "pid", p->inc.pid, "start",
            (unsigned long long)p->inc.start, "alive", p->alive ? Py_True : Py_False, "started",
            p->first_seen_ms / 1000.0, "last_seen", p->last_seen_ms / 1000.0, "ended",
            p->ended_ms ? Py_True : Py_False, "host", p->host, "argv", p->argv, "interval",
            p->interval_ms / 1000.0, "rss", (unsigned long long)p->rss, "samples", p->samples, "end", end);
        if (!d) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    free(procs);
    return list;
}

static PyObject *store_end(PyObject *op, PyObject *args)
{
    unsigned int pid = 0;
    unsigned long long start = 0;
    if (!PyArg_ParseTuple(args, "|IK:end", &pid, &start))
        return NULL;
    pl_store *s = pl_store_of(op);
    if (!s)
        return NULL;
    pl_incarnation self;
    int rc = 0;
    if (pid) {
        self.pid = pid;
        self.start = start;
    } else {
        rc = pl_proc_self(&self);
    }
    if (!rc) {
        Py_BEGIN_ALLOW_THREADS
        rc = pl_store_end(s, &self, pl_now_ms());
        Py_END_ALLOW_THREADS
    }
    if (rc) {
        return pl_raise(NULL, rc, "marking the end in the store");
    }
    Py_RETURN_NONE;
}

static PyObject *store_get_path(PyObject *op, void *closure)
{
    PlStoreObject *self = (PlStoreObject *)op;
    return PyUnicode_DecodeFSDefault(self->path ? self->path : "");
}

static PyObject *store_get_closed(PyObject *op, void *closure)
{
    PlStoreObject *self = (PlStoreObject *)op;
    return PyBool_FromLong(self->store == NULL && self->error == NULL);
}

static PyObject *store_get_error(PyObject *op, void *closure)
{
    PlStoreObject *self = (PlStoreObject *)op;
    if (self->guard && self->error && !self->opening && pl_now_s() >= self->retry_at)
        store_attempt(self);
    if (!self->error)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(self->error, (Py_ssize_t)strlen(self->error), "replace");
}

static PyMethodDef store_methods[] = {
    {"close", store_close, METH_NOARGS, "Closes the store (refused while a request uses it)."},
    {"procs", store_procs, METH_NOARGS, "Every incarnation in the store, as dicts."},
    {"end", store_end, METH_VARARGS,
     "end(pid=None, start=None): marks this process's incarnation (or the given one) as ended."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef store_getset[] = {
    {"path", store_get_path, NULL, "The environment directory.", NULL},
    {"closed", store_get_closed, NULL, "True once closed.", NULL},
    {"error", store_get_error, NULL,
     "Why a guarded store cannot be used (what is wrong and how to fix it), or None when it is open. "
     "Reading it retries the open when the backoff allows.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot store_slots[] = {
    {Py_tp_init, store_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, store_dealloc},
    {Py_tp_methods, store_methods},
    {Py_tp_getset, store_getset},
    {Py_tp_doc, "Store(path, map_size=0, max_samples=0, max_age=0, max_bytes=0, read_only=False, guard=False)\n"
                "An open pyloot LMDB store (0 means the documented default). With guard, the store is\n"
                "checked before it is trusted (a damaged one is moved aside and a new one started) and\n"
                "a store that cannot be used never raises here: `error` says why, and uses retry."},
    {0, NULL},
};

static PyType_Spec PlStore_spec = {
    .name = "pyloot._pyloot.Store",
    .basicsize = sizeof(PlStoreObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = store_slots,
};

/* ---- Handler ---- */

static int handler_build(PlHandlerObject *self)
{
    const char *why = NULL;
    pl_store *s = pl_store_try((PyObject *)self->store, &why);
    if (!s && !why)
        return -1;
    /* Requests in flight on other threads (GIL released) still use the old
     * handler: it is then leaked rather than freed under them (rare: a store
     * replaced or reopened). */
    if (!self->store->busy)
        pl_handler_free(self->handler);
    self->handler = NULL;
    self->opt.store = s;
    self->opt.unavailable = why; /* copied by pl_handler_new */
    if (self->opt.live) {
        int rc = pl_proc_self(&self->opt.self);
        if (rc) {
            pl_raise(NULL, rc, "reading /proc/self");
            return -1;
        }
    }
    if (pl_handler_new(&self->handler, &self->opt)) {
        PyErr_NoMemory();
        return -1;
    }
    self->pid = getpid();
    return 0;
}

static int handler_init(PyObject *op, PyObject *args, PyObject *kw)
{
    PlHandlerObject *self = (PlHandlerObject *)op;
    static char *kwlist[] = {"store", "disable_gzip", "live", "live_timeout", "refuse_multiprocess",
                             "token", "metrics_types", "allowed_hosts", NULL};
    PyObject *store;
    int disable_gzip = 0, live = 1, refuse = 0;
    double timeout = 5.0;
    const char *token = NULL, *metrics_types = NULL, *allowed_hosts = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|ppdpzzz:Handler", kwlist, store_type_static, &store,
                                     &disable_gzip, &live, &timeout, &refuse, &token, &metrics_types,
                                     &allowed_hosts))
        return -1;
    if (!(timeout > 0 && timeout <= 600)) {
        PyErr_SetString(PyExc_ValueError, "live_timeout must be in (0, 600] seconds");
        return -1;
    }
    if (token && *token && !pl_token_valid(token)) {
        PyErr_SetString(PyExc_ValueError, "token must be 1 to 1024 visible ASCII characters other than "
                                          "'\"', ',', ';' and '\\'");
        return -1;
    }
    free(self->token);
    free(self->metrics_types);
    free(self->allowed_hosts);
    self->token = token && *token ? strdup(token) : NULL;
    self->metrics_types = metrics_types && *metrics_types ? strdup(metrics_types) : NULL;
    self->allowed_hosts = allowed_hosts && *allowed_hosts ? strdup(allowed_hosts) : NULL;
    if ((token && *token && !self->token) || (metrics_types && *metrics_types && !self->metrics_types) ||
        (allowed_hosts && *allowed_hosts && !self->allowed_hosts)) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(store);
    Py_XSETREF(self->store, (PlStoreObject *)store);
    memset(&self->opt, 0, sizeof self->opt);
    self->opt.disable_gzip = disable_gzip;
    self->opt.live = live ? live_answer : NULL;
    self->opt.live_timeout_ms = (uint32_t)(timeout * 1000);
    self->opt.refuse_multiprocess = refuse;
    self->opt.token = self->token;
    self->opt.metrics_types = self->metrics_types;
    self->opt.allowed_hosts = self->allowed_hosts;
    return handler_build(self);
}

static void handler_dealloc(PyObject *op)
{
    PlHandlerObject *self = (PlHandlerObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    pl_handler_free(self->handler);
    Py_XDECREF(self->store);
    free(self->token);
    free(self->metrics_types);
    free(self->allowed_hosts);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static int add_header(PyObject *list, const char *name, const char *value)
{
    PyObject *t = Py_BuildValue("(ss)", name, value);
    int rc = t ? PyList_Append(list, t) : -1;
    Py_XDECREF(t);
    return rc;
}

/* handle(method, path, query, accept_encoding, multiprocess, body, *, authorization, cookie,
 *        peer, proxied, allowed, mount, secure, accept, host)
 *   -> (status, reason, [(header, value), ...], body_bytes) */
static PyObject *handler_handle(PyObject *op, PyObject *args, PyObject *kw)
{
    PlHandlerObject *self = (PlHandlerObject *)op;
    static char *kwlist[] = {"method", "path", "query", "accept_encoding", "multiprocess", "body",
                             "authorization", "cookie", "peer", "proxied", "allowed", "mount", "secure",
                             "accept", "host", NULL};
    const char *method, *path, *query, *accept_encoding = NULL;
    const char *authorization = NULL, *cookie = NULL, *peer = NULL, *mount = NULL, *accept = NULL;
    const char *host = NULL;
    int multiprocess = 0, proxied = 0, allowed = PL_ALLOW_UNSET, secure = 0;
    Py_buffer body = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "yyy|zpy*$zzzpizpzz:handle", kwlist, &method, &path, &query,
                                     &accept_encoding, &multiprocess, &body, &authorization, &cookie, &peer,
                                     &proxied, &allowed, &mount, &secure, &accept, &host))
        return NULL;
    if (allowed != PL_ALLOW_UNSET && allowed != PL_ALLOW_YES && allowed != PL_ALLOW_NO) {
        PyErr_SetString(PyExc_ValueError, "allowed must be 0 (no allow callable), 1 (yes) or -1 (no)");
        if (body.obj)
            PyBuffer_Release(&body);
        return NULL;
    }
    PyObject *result = NULL;
    if (!self->handler || self->pid != getpid() || self->opt.store != self->store->store ||
        !self->opt.store || pl_store_damaged(self->opt.store, NULL, 0)) {
        if (handler_build(self) < 0)
            goto done;
    }
    pl_request req = {.method = method, .path = path, .query = query, .accept_encoding = accept_encoding,
                      .multiprocess = multiprocess, .body = body.buf,
                      .body_len = body.buf ? (size_t)body.len : 0, .authorization = authorization,
                      .cookie = cookie, .peer = peer, .proxied = proxied, .allowed = allowed,
                      .mount = mount, .secure = secure, .accept = accept, .host = host};
    pl_response resp;
    self->store->busy++;
    Py_BEGIN_ALLOW_THREADS
    pl_handler_handle(self->handler, &req, &resp);
    Py_END_ALLOW_THREADS
    self->store->busy--;
    PyObject *headers = PyList_New(0);
    if (!headers)
        goto free_resp;
    if ((resp.content_type && add_header(headers, "Content-Type", resp.content_type) < 0) ||
        (resp.content_encoding && add_header(headers, "Content-Encoding", resp.content_encoding) < 0) ||
        (resp.vary_accept_encoding && add_header(headers, "Vary", "Accept-Encoding") < 0) ||
        (resp.cache_control && add_header(headers, "Cache-Control", resp.cache_control) < 0) ||
        (resp.www_authenticate && add_header(headers, "WWW-Authenticate", resp.www_authenticate) < 0) ||
        (resp.allow && add_header(headers, "Allow", resp.allow) < 0) ||
        (resp.set_cookie[0] && add_header(headers, "Set-Cookie", resp.set_cookie) < 0) ||
        (resp.content_disposition[0] && add_header(headers, "Content-Disposition", resp.content_disposition) < 0)) {
        Py_DECREF(headers);
        goto free_resp;
    }
    result = Py_BuildValue("(isNy#)", resp.status, pl_http_reason(resp.status), headers,
                           resp.body.data ? resp.body.data : "", (Py_ssize_t)resp.body.len);
free_resp:
    pl_response_free(&resp);
done:
    if (body.obj)
        PyBuffer_Release(&body);
    return result;
}

static PyMethodDef handler_methods[] = {
    {"handle", (PyCFunction)(void (*)(void))handler_handle, METH_VARARGS | METH_KEYWORDS,
     "handle(method, path, query, accept_encoding=None, multiprocess=False, body=b'', *,\n"
     "       authorization=None, cookie=None, peer=None, proxied=False, allowed=0, mount=None,\n"
     "       secure=False, accept=None, host=None)\n"
     "-> (status, reason, headers, body). Runs without the GIL. allowed: 0 no allow callable,\n"
     "1 it said yes, -1 it said no (pyloot/access.h)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot handler_slots[] = {
    {Py_tp_init, handler_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, handler_dealloc},
    {Py_tp_methods, handler_methods},
    {Py_tp_doc, "Handler(store, disable_gzip=False, live=True, live_timeout=5.0, refuse_multiprocess=False,\n"
                "        token=None, metrics_types=None, allowed_hosts=None)\n"
                "pyloot's HTTP request handler (the C core's), bound to a Store."},
    {0, NULL},
};

static PyType_Spec PlHandler_spec = {
    .name = "pyloot._pyloot.Handler",
    .basicsize = sizeof(PlHandlerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = handler_slots,
};

/* ---- functions ---- */

static PyObject *py_self_incarnation(PyObject *module, PyObject *unused)
{
    pl_incarnation inc;
    int rc = pl_proc_self(&inc);
    if (rc) {
        return pl_raise(module, rc, "reading /proc/self");
    }
    return Py_BuildValue("(IK)", inc.pid, (unsigned long long)inc.start);
}

static PyObject *py_incarnation_alive(PyObject *module, PyObject *args)
{
    pl_incarnation inc;
    unsigned int pid;
    unsigned long long start;
    if (!PyArg_ParseTuple(args, "IK:incarnation_alive", &pid, &start))
        return NULL;
    inc.pid = pid;
    inc.start = start;
    return PyBool_FromLong(pl_proc_alive(&inc));
}

static PyObject *py_server_root(PyObject *module, PyObject *unused)
{
    pl_incarnation inc;
    int rc = pl_proc_server_root(&inc);
    if (rc) {
        return pl_raise(module, rc, "finding the server's root process");
    }
    return Py_BuildValue("(IK)", inc.pid, (unsigned long long)inc.start);
}

/* store_end_isolated(path, pid, timeout=3.0, status=None) -> (marked, why):
 * pl_store_end_isolated with the GIL released; status is the wait status the
 * parent reaped (os.waitpid's), None when unknown; why is None unless
 * something went wrong. */
static PyObject *py_store_end_isolated(PyObject *module, PyObject *args)
{
    const char *path;
    unsigned int pid;
    double timeout = 3.0;
    PyObject *status_obj = Py_None;
    int how = PL_END_NONE, value = 0;
    if (!PyArg_ParseTuple(args, "sI|dO:store_end_isolated", &path, &pid, &timeout, &status_obj))
        return NULL;
    if (!(timeout > 0 && timeout <= 600)) {
        PyErr_SetString(PyExc_ValueError, "timeout must be in (0, 600] seconds");
        return NULL;
    }
    if (status_obj != Py_None) {
        long raw = PyLong_Check(status_obj) ? PyLong_AsLong(status_obj) : -1;
        if (raw == -1 && PyErr_Occurred())
            return NULL;
        int status = raw >= 0 && raw <= 0xffff ? (int)raw : 0x7f; /* 0x7f: neither exited nor signalled */
        if (WIFEXITED(status)) {
            value = WEXITSTATUS(status);
            how = value ? PL_END_EXITED : PL_END_CLEAN;
        } else if (WIFSIGNALED(status)) {
            how = PL_END_KILLED;
            value = WTERMSIG(status);
        } else {
            PyErr_SetString(PyExc_ValueError, "status must be the wait status of a process that ended "
                                              "(os.waitpid's second value)");
            return NULL;
        }
    }
    char why[512];
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pl_store_end_isolated(path, pid, pl_now_ms(), how, value, (unsigned)(timeout * 1000), why, sizeof why);
    Py_END_ALLOW_THREADS
    if (rc == 0 || rc == PL_ENOTFOUND)
        return Py_BuildValue("(OO)", rc == 0 ? Py_True : Py_False, Py_None);
    return Py_BuildValue("(Os)", Py_False, why[0] ? why : pl_strerror(rc));
}

/* service_store() -> (name, cwd, command) of this process's service (the
 * server root's working directory and command line: pyloot/service.h), or
 * (None, why) when they cannot be read. */
static PyObject *py_service_store(PyObject *module, PyObject *unused)
{
    pl_incarnation root;
    pl_service *svc = malloc(sizeof *svc);
    char name[128];
    int rc;
    if (!svc)
        return PyErr_NoMemory();
    rc = pl_proc_server_root(&root);
    if (rc == 0)
        rc = pl_service_describe(root.pid, svc);
    PyObject *result;
    if (rc) {
        result = Py_BuildValue("(Os)", Py_None, pl_strerror(rc));
    } else {
        pl_service_store_name(svc, name, sizeof name);
        result = Py_BuildValue("(sO&O&)", name, PyUnicode_DecodeFSDefault, svc->cwd, PyUnicode_DecodeFSDefault,
                               svc->command);
    }
    free(svc);
    return result;
}

/* service_note(dir, max_age_s=0): writes dir/service for this process's
 * service; returns None or why not (a string). Never raises for a run-time
 * problem. */
static PyObject *py_service_note(PyObject *module, PyObject *args)
{
    const char *dir;
    unsigned long long max_age = 0;
    pl_incarnation root;
    if (!PyArg_ParseTuple(args, "s|K:service_note", &dir, &max_age))
        return NULL;
    pl_service *svc = malloc(sizeof *svc);
    if (!svc)
        return PyErr_NoMemory();
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pl_proc_server_root(&root);
    if (rc == 0)
        rc = pl_service_describe(root.pid, svc);
    if (rc == 0)
        rc = pl_service_note(dir, svc, max_age);
    Py_END_ALLOW_THREADS
    free(svc);
    if (rc)
        return PyUnicode_FromString(pl_strerror(rc));
    Py_RETURN_NONE;
}

/* stores_sweep(root, keep) -> removed: pl_stores_sweep with the GIL released;
 * -1 when the root cannot be read. */
static PyObject *py_stores_sweep(PyObject *module, PyObject *args)
{
    const char *root, *keep;
    size_t removed = 0;
    int rc;
    if (!PyArg_ParseTuple(args, "ss:stores_sweep", &root, &keep))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pl_stores_sweep(root, keep, pl_now_ms(), &removed);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc ? -1 : (long)removed);
}

static PyMethodDef store_functions[] = {
    {"store_end_isolated", py_store_end_isolated, METH_VARARGS,
     "store_end_isolated(path, pid, timeout=3.0, status=None) -> (marked, why): marks the newest incarnation\n"
     "of pid that has not ended as ended, with how (status: the wait status of os.waitpid, None if unknown),\n"
     "in a child process (a damaged store cannot crash the caller)."},

    {"service_store", py_service_store, METH_NOARGS,
     "service_store() -> (name, cwd, command) of this process's service (its server root's working directory\n"
     "and command line), the name of its zero-config store; (None, why) when they cannot be read."},
    {"service_note", py_service_note, METH_VARARGS,
     "service_note(dir, max_age_s=0) -> None or why not: writes dir/service for this process's service."},
    {"stores_sweep", py_stores_sweep, METH_VARARGS,
     "stores_sweep(root, keep) -> removed: removes the stores under root idle longer than their retention\n"
     "that no process has open, other than keep (-1: root unreadable)."},
    {"server_root", py_server_root, METH_NOARGS,
     "(pid, start) of the topmost ancestor running the same interpreter binary: the key of the "
     "default store."},
    {"self_incarnation", py_self_incarnation, METH_NOARGS, "(pid, start ticks) of this process."},
    {"incarnation_alive", py_incarnation_alive, METH_VARARGS,
     "incarnation_alive(pid, start) -> bool: that process runs and started then."},
    {NULL, NULL, 0, NULL},
};

/* See pyext.h. */
int pl_store_module_exec(PyObject *module, pl_live_fn live)
{
    live_answer = live;
    pl_modstate *st = pl_modstate_get(module);
    st->store_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &PlStore_spec, NULL);
    if (!st->store_type || PyModule_AddType(module, st->store_type) < 0)
        return -1;
    st->handler_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &PlHandler_spec, NULL);
    if (!st->handler_type || PyModule_AddType(module, st->handler_type) < 0)
        return -1;
    /* One interpreter per process uses this module; the parts that have no
     * module at hand (the collector) find the Store type here. */
    store_type_static = st->store_type;
    return PyModule_AddFunctions(module, store_functions);
}
