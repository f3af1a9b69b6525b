/* Requests by route: the table each worker counts its requests in (at most
 * PL_ROUTES_PER_WORKER routes per sample interval, the rest under
 * PL_ROUTE_OTHER), the module functions the thin wrappers of
 * pyloot.requests call per request, and the take-and-reset the collector
 * does at each sample (docs/http-api.md, "GET /api/routes").
 *
 * Locking: everything below is protected by table_lock. count_request takes
 * it with the GIL held, the collector thread without the GIL; neither waits
 * for anything while holding it, so there is no lock order to keep. */
#include "pyext.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/hash.h"
#include "pyloot/route_name.h"
#include "requests.h"

/* Twice the bound: probes stay short. */
#define SLOTS (2 * PL_ROUTES_PER_WORKER)

typedef struct route_slot {
    uint64_t hash;
    uint64_t requests;  /* 0: the slot is empty */
    uint16_t len;
    char name[PL_ROUTE_NAME_MAX + 1];
} route_slot;

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static route_slot slots[SLOTS];
static size_t used;           /* slots holding a route */
static uint64_t other;        /* requests past the bound */
static int tracking;          /* some app of this process counts its requests */

/* Counts one request under name (len bytes). table_lock held. */
static void count_locked(const char *name, size_t len, uint64_t hash)
{
    size_t i = hash & (SLOTS - 1);

    for (;;) {
        route_slot *s = &slots[i];
        if (!s->requests)
            break;
        if (s->hash == hash && s->len == len && memcmp(s->name, name, len) == 0) {
            s->requests++;
            return;
        }
        i = (i + 1) & (SLOTS - 1);
    }
    if (used >= PL_ROUTES_PER_WORKER) {
        other++;
        return;
    }
    slots[i].hash = hash;
    slots[i].len = (uint16_t)len;
    memcpy(slots[i].name, name, len);
    slots[i].name[len] = '\0';
    slots[i].requests = 1;
    used++;
}

/* The UTF-8 of a str (or the bytes of a bytes object) argument; "" for
 * anything else or a str that does not encode. Never leaves an exception. */
static const char *text_of(PyObject *o, Py_ssize_t *len)
{
    const char *s = NULL;

    if (PyUnicode_Check(o)) {
        s = PyUnicode_AsUTF8AndSize(o, len);
        if (!s)
            PyErr_Clear();
    } else if (PyBytes_Check(o)) {
        s = PyBytes_AS_STRING(o);
        *len = PyBytes_GET_SIZE(o);
    }
    if (!s) {
        s = "";
        *len = 0;
    }
    return s;
}

/* Writes the route name of (method, path, template) into out; the
 * template (a str, else None) takes the path's place when given. */
static size_t name_of(PyObject *const *args, Py_ssize_t nargs, char *out)
{
    Py_ssize_t mlen = 0, rlen = 0;
    const char *method = nargs > 0 ? text_of(args[0], &mlen) : "";
    int is_template = nargs > 2 && args[2] != Py_None && PyUnicode_Check(args[2]);
    const char *route = is_template ? text_of(args[2], &rlen) : nargs > 1 ? text_of(args[1], &rlen) : "";

    return pl_route_name(method, (size_t)mlen, route, (size_t)rlen, is_template, out);
}

/* count_request(method, path, template=None): counts one request. Never
 * raises, whatever the arguments (a wrapper calls it after the app). */
static PyObject *count_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    char name[PL_ROUTE_NAME_MAX + 1];
    size_t len = name_of(args, nargs, name);
    uint64_t hash = pl_fnv1a64_more(PL_FNV1A64_INIT, name, len);

    (void)module;
    pthread_mutex_lock(&table_lock);
    tracking = 1;
    count_locked(name, len, hash);
    pthread_mutex_unlock(&table_lock);
    Py_RETURN_NONE;
}

/* route_name(method, path, template=None) -> the name count_request counts under. */
static PyObject *route_name(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    char name[PL_ROUTE_NAME_MAX + 1];
    size_t len = name_of(args, nargs, name);

    (void)module;
    return PyUnicode_DecodeUTF8(name, (Py_ssize_t)len, "replace");
}

/* requests_enable(): this process counts its requests (its samples carry
 * requests by route from now on, even when none came). */
static PyObject *requests_enable(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    pthread_mutex_lock(&table_lock);
    tracking = 1;
    pthread_mutex_unlock(&table_lock);
    Py_RETURN_NONE;
}

/* requests_counted(reset=False) -> {route: requests} counted since the last
 * sample (taken, as a sample would, with reset). */
static PyObject *requests_counted(PyObject *module, PyObject *args)
{
    PyObject *d;
    pl_requests_taken t;
    int rc, reset = 0;

    (void)module;
    if (!PyArg_ParseTuple(args, "|p:requests_counted", &reset))
        return NULL;
    d = PyDict_New();
    if (!d)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pl_requests_copy(&t, reset);
    Py_END_ALLOW_THREADS
    if (rc) {
        Py_DECREF(d);
        return PyErr_NoMemory();
    }
    for (size_t i = 0; i < t.n; i++) {
        PyObject *k = PyUnicode_DecodeUTF8(t.routes[i].name, (Py_ssize_t)t.routes[i].len, "replace");
        PyObject *v = k ? PyLong_FromUnsignedLongLong(t.routes[i].requests) : NULL;
        if (!v || PyDict_SetItem(d, k, v) < 0) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_CLEAR(d);
            break;
        }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    pl_requests_taken_free(&t);
    return d;
}

/* See requests.h. */
int pl_requests_copy(pl_requests_taken *t, int reset)
{
    size_t n = 0;

    memset(t, 0, sizeof *t);
    pthread_mutex_lock(&table_lock);
    t->tracking = tracking;
    t->routes = calloc(used + 1, sizeof *t->routes);
    t->names = malloc((used + 1) * (PL_ROUTE_NAME_MAX + 1));
    if (!t->routes || !t->names) {
        pthread_mutex_unlock(&table_lock);
        pl_requests_taken_free(t);
        return ENOMEM;
    }
    for (size_t i = 0; i < SLOTS && n < used; i++) {
        if (!slots[i].requests)
            continue;
        char *name = t->names + n * (PL_ROUTE_NAME_MAX + 1);
        memcpy(name, slots[i].name, slots[i].len);
        t->routes[n++] = (pl_route_count){name, slots[i].len, slots[i].requests};
    }
    if (other)
        t->routes[n++] = (pl_route_count){PL_ROUTE_OTHER, strlen(PL_ROUTE_OTHER), other};
    t->n = n;
    if (reset) {
        memset(slots, 0, sizeof slots);
        used = 0;
        other = 0;
    }
    pthread_mutex_unlock(&table_lock);
    return 0;
}

/* See requests.h. */
void pl_requests_taken_free(pl_requests_taken *t)
{
    free(t->routes);
    free(t->names);
    t->routes = NULL;
    t->names = NULL;
    t->n = 0;
}

/* See requests.h. */
void pl_requests_atfork_child(void)
{
    /* The parent's requests are the parent's; its lock may have been held
     * by a thread that does not exist here. */
    pthread_mutex_init(&table_lock, NULL);
    memset(slots, 0, sizeof slots);
    used = 0;
    other = 0;
}

static PyMethodDef methods[] = {
    {"count_request", (PyCFunction)(void (*)(void))count_request, METH_FASTCALL,
     "count_request(method, path, template=None): count one request under its route"},
    {"route_name", (PyCFunction)(void (*)(void))route_name, METH_FASTCALL,
     "route_name(method, path, template=None) -> the route a request counts under"},
    {"requests_enable", requests_enable, METH_NOARGS, "requests_enable(): this process counts its requests"},
    {"requests_counted", requests_counted, METH_VARARGS,
     "requests_counted(reset=False) -> {route: requests} since the last sample"},
    {NULL, NULL, 0, NULL},
};

/* See requests.h. */
int pl_requests_module_exec(PyObject *module)
{
    if (PyModule_AddFunctions(module, methods) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "ROUTES_PER_WORKER", PL_ROUTES_PER_WORKER) < 0 ||
        PyModule_AddIntConstant(module, "ROUTE_NAME_MAX", PL_ROUTE_NAME_MAX) < 0)
        return -1;
    return 0;
}
