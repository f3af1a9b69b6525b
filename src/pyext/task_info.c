/* task_info.c: what an asyncio Task or Future is doing (task_info.h). */
#include "task_info.h"

#include <string.h>

#include "alloc_sites.h"
#include "describe.h"
#include "heap.h"
#include "pyloot/json.h"

/* A type's own dict (borrowed): the type keeps it alive. */
static PyObject *type_dict(PyTypeObject *t)
{
#if PY_VERSION_HEX >= 0x030C0000
    /* 3.12+: a static builtin type's dict is kept per interpreter and
     * tp_dict may be NULL; the type keeps what this returns alive. */
    PyObject *d = PyType_GetDict(t);
    Py_XDECREF(d);
    return d;
#else
    return t->tp_dict;
#endif
}

/* The C descriptor `name` that type t defines itself (borrowed), of the
 * descriptor type `kind` (getset or method); NULL when t has no such C
 * descriptor (then nothing is called: a replaced type is not read). */
static PyObject *c_descr(PyTypeObject *t, const char *name, PyTypeObject *kind)
{
    PyObject *d = type_dict(t);
    PyObject *x = d && PyDict_Check(d) ? PyDict_GetItemString(d, name) : NULL;
    if (!x || !Py_IS_TYPE(x, kind) || PyDescr_TYPE(x) != t)
        return NULL;
    return x;
}

/* Calls a C getter on o: a new reference, or NULL with an exception set.
 * The getset descriptor checks o's type itself. */
static PyObject *c_get(PyObject *getset, PyObject *o)
{
    if (!getset) {
        PyErr_SetString(PyExc_TypeError, "no C getter");
        return NULL;
    }
    return Py_TYPE(getset)->tp_descr_get(getset, o, (PyObject *)Py_TYPE(o));
}

/* 0 coroutine, 1 generator, 2 async generator (the index of pl_aio's
 * getters of the three), -1 anything else. */
static int gen_kind(PyObject *o)
{
    return PyCoro_CheckExact(o) ? 0 : PyGen_CheckExact(o) ? 1 : PyAsyncGen_CheckExact(o) ? 2 : -1;
}

static void gen_getsets(pl_aio *aio)
{
    static const char *const awaited[3] = {"cr_await", "gi_yieldfrom", "ag_await"};
    PyTypeObject *const types[3] = {&PyCoro_Type, &PyGen_Type, &PyAsyncGen_Type};
    for (int k = 0; k < 3; k++) {
        aio->awaited_getset[k] = c_descr(types[k], awaited[k], &PyGetSetDescr_Type);
        aio->qualname_getset[k] = c_descr(types[k], "__qualname__", &PyGetSetDescr_Type);
    }
}

int pl_aio_find(pl_aio *aio)
{
    memset(aio, 0, sizeof *aio);
    PyObject *mod = PyDict_GetItemString(PyImport_GetModuleDict(), "_asyncio");
    PyObject *md = mod && PyModule_Check(mod) ? PyModule_GetDict(mod) : NULL;
    PyObject *fut = md ? PyDict_GetItemString(md, "Future") : NULL;
    PyObject *task = md ? PyDict_GetItemString(md, "Task") : NULL;
    if (!fut || !task || !PyType_Check(fut) || !PyType_Check(task) ||
        strcmp(((PyTypeObject *)fut)->tp_name, "_asyncio.Future") != 0 ||
        strcmp(((PyTypeObject *)task)->tp_name, "_asyncio.Task") != 0 ||
        !PyType_IsSubtype((PyTypeObject *)task, (PyTypeObject *)fut))
        return 0;
    aio->future = (PyTypeObject *)fut;
    aio->task = (PyTypeObject *)task;
    aio->state = c_descr(aio->future, "_state", &PyGetSetDescr_Type);
    aio->coro = c_descr(aio->task, "_coro", &PyGetSetDescr_Type);
    aio->fut_waiter = c_descr(aio->task, "_fut_waiter", &PyGetSetDescr_Type);
    aio->get_name = c_descr(aio->task, "get_name", &PyMethodDescr_Type);
    gen_getsets(aio);
    return 1;
}

int pl_aio_kind(const pl_aio *aio, PyObject *o)
{
    if (!aio->future)
        return 0;
    if (PyObject_TypeCheck(o, aio->task))
        return 2;
    return PyObject_TypeCheck(o, aio->future) ? 1 : 0;
}

int pl_aio_state(const pl_aio *aio, PyObject *fut)
{
    PyObject *s = c_get(aio->state, fut);
    int state = PL_AIO_UNKNOWN;
    if (!s) {
        PyErr_Clear();
        return state;
    }
    if (PyUnicode_Check(s)) {
        if (PyUnicode_CompareWithASCIIString(s, "PENDING") == 0)
            state = PL_AIO_PENDING;
        else if (PyUnicode_CompareWithASCIIString(s, "FINISHED") == 0)
            state = PL_AIO_DONE;
        else if (PyUnicode_CompareWithASCIIString(s, "CANCELLED") == 0)
            state = PL_AIO_CANCELLED;
    }
    Py_DECREF(s);
    return state;
}

const char *pl_aio_state_name(int state)
{
    return state == PL_AIO_PENDING ? "pending" : state == PL_AIO_DONE ? "done"
                                             : state == PL_AIO_CANCELLED ? "cancelled" : "unknown";
}

/* ---- the await chain ---- */

/* 1 for the objects whose frame pl_gen_where reads. */
static int is_gen(PyObject *o)
{
    return gen_kind(o) >= 0;
}

/* The C objects that only pass an await on (a future's __await__
 * iterator, an async generator's __anext__ awaitable, a coroutine's
 * __await__ wrapper): the chain goes through them to what they hold. */
static int is_passthrough(PyObject *o)
{
    const char *n = Py_TYPE(o)->tp_name;
    return strcmp(n, "_asyncio.FutureIter") == 0 || strcmp(n, "async_generator_asend") == 0 ||
           strcmp(n, "async_generator_athrow") == 0 || strcmp(n, "coroutine_wrapper") == 0;
}

struct first_awaitable {
    const pl_aio *aio;
    PyObject *found;
};

static int visit_awaitable(PyObject *child, void *arg)
{
    struct first_awaitable *f = arg;
    if (child && (is_gen(child) || pl_aio_kind(f->aio, child))) {
        f->found = child;
        return 1;
    }
    return 0;
}

/* What o awaits (a new reference), or NULL at the end of the chain (never
 * with an exception set). */
static PyObject *awaited(const pl_aio *aio, PyObject *o)
{
    PyObject *getset = NULL;
    int k = gen_kind(o);
    if (k < 0)
        return NULL;
    getset = aio->awaited_getset[k];
    PyObject *next = getset ? c_get(getset, o) : NULL;
    if (!next) {
        PyErr_Clear();
        return NULL;
    }
    /* Through the pass-through iterators to what they hold: their
     * tp_traverse names it (C code only). */
    for (int hops = 0; hops < 4 && is_passthrough(next); hops++) {
        struct first_awaitable f = {aio, NULL};
        traverseproc tr = Py_TYPE(next)->tp_traverse;
        if (tr)
            tr(next, visit_awaitable, &f);
        Py_DECREF(next);
        if (!f.found)
            return NULL;
        next = Py_NewRef(f.found);
    }
    if (next == Py_None) {
        Py_DECREF(next);
        return NULL;
    }
    return next;
}

/* The chain below `start` (included): owned references into chain[], at
 * most PL_AWAIT_CHAIN_MAX; *truncated set when it went deeper. A future or
 * task, or an object that is not a coroutine or generator, ends it. */
static size_t await_chain(const pl_aio *aio, PyObject *start, PyObject **chain, int *truncated)
{
    size_t n = 0;
    PyObject *cur = Py_NewRef(start);
    *truncated = 0;
    while (cur) {
        if (n == PL_AWAIT_CHAIN_MAX) {
            *truncated = 1;
            Py_DECREF(cur);
            break;
        }
        chain[n++] = cur;
        cur = is_gen(cur) ? awaited(aio, cur) : NULL;
    }
    return n;
}

static void chain_free(PyObject **chain, size_t n)
{
    for (size_t i = 0; i < n; i++)
        Py_DECREF(chain[i]);
}

/* Appends the UTF-8 of a str (nothing for anything else). */
static void put_str(pl_buf *b, PyObject *s)
{
    Py_ssize_t n;
    const char *u = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (!u) {
        PyErr_Clear();
        return;
    }
    pl_buf_append(b, u, (size_t)n);
}

/* A coroutine's or generator's own names and place. */
struct gen_where {
    PyObject *qualname; /* owned, or NULL */
    PyObject *module;   /* borrowed from its globals, or NULL */
    PyObject *file;     /* borrowed from its code, or NULL */
    int line;           /* -1: unknown or ended */
    int alive;          /* its frame is still there */
};

static void gen_where(const pl_aio *aio, PyObject *gen, struct gen_where *w)
{
    PyObject *code, *globals;
    int k = gen_kind(gen);
    memset(w, 0, sizeof *w);
    w->qualname = k >= 0 ? c_get(aio->qualname_getset[k], gen) : NULL;
    if (!w->qualname)
        PyErr_Clear();
    w->alive = pl_gen_where(gen, &code, &globals, &w->line);
    if (code && PyCode_Check(code))
        w->file = ((PyCodeObject *)code)->co_filename;
    static PyObject *str_name; /* interned "__name__"; kept for the process, as sizeof.c's */
    if (!str_name) {
        str_name = PyUnicode_InternFromString("__name__");
        if (!str_name)
            PyErr_Clear();
    }
    if (str_name && globals && PyDict_CheckExact(globals)) {
        PyObject *name = PyDict_GetItemWithError(globals, str_name);
        if (!name)
            PyErr_Clear();
        w->module = name && PyUnicode_CheckExact(name) ? name : NULL;
    }
}

/* "module.qualname" of a coroutine or generator. */
static void put_gen_name(pl_buf *b, const struct gen_where *w)
{
    if (w->module) {
        put_str(b, w->module);
        pl_buf_putc(b, '.');
    }
    if (w->qualname && PyUnicode_Check(w->qualname))
        put_str(b, w->qualname);
    else
        pl_buf_puts(b, "?");
}

/* "file:line", or nothing when the line is unknown. */
static void put_where(pl_buf *b, const struct gen_where *w)
{
    if (w->line < 0 || !w->file)
        return;
    char digits[16], *d = digits + sizeof digits;
    unsigned v = (unsigned)w->line;
    do
        *--d = (char)('0' + v % 10);
    while (v /= 10);
    put_str(b, w->file);
    pl_buf_putc(b, ':');
    pl_buf_append(b, d, (size_t)(digits + sizeof digits - d)); /* no printf: once per task of /api/tasks */
}

/* The task's coroutine (a new reference), or NULL (never an exception). */
static PyObject *task_coro(const pl_aio *aio, PyObject *task)
{
    PyObject *coro = c_get(aio->coro, task);
    if (!coro)
        PyErr_Clear();
    if (coro == Py_None)
        Py_CLEAR(coro);
    return coro;
}

/* "module.qualname" of a task's coroutine, "<type>" for an awaitable that is
 * not a coroutine, "(no coroutine)" when it has none (left). */
static void put_coro_name(const pl_aio *aio, pl_buf *b, PyObject *coro)
{
    if (!coro) {
        pl_buf_puts(b, "(no coroutine)");
    } else if (is_gen(coro)) {
        struct gen_where w;
        gen_where(aio, coro, &w);
        put_gen_name(b, &w);
        Py_XDECREF(w.qualname);
    } else {
        pl_buf_putc(b, '<');
        pl_typename(Py_TYPE(coro), b);
        pl_buf_putc(b, '>');
    }
}

int pl_aio_task_where(const pl_aio *aio, PyObject *task, pl_buf *coroutine, pl_buf *where)
{
    PyObject *chain[PL_AWAIT_CHAIN_MAX];
    int truncated;
    PyObject *coro = task_coro(aio, task);
    put_coro_name(aio, coroutine, coro);
    if (coro) {
        size_t n = await_chain(aio, coro, chain, &truncated);
        for (size_t i = n; i-- > 0;) {
            if (!is_gen(chain[i]))
                continue;
            struct gen_where w;
            gen_where(aio, chain[i], &w);
            put_where(where, &w);
            Py_XDECREF(w.qualname);
            break;
        }
        chain_free(chain, n);
        Py_DECREF(coro);
    }
    return coroutine->err || where->err ? -1 : 0;
}

/* ---- JSON ---- */

static void json_buf(pl_buf *b, pl_buf *text)
{
    pl_json_str(b, text->data ? text->data : "", text->len);
}

static void json_type(pl_buf *b, PyTypeObject *t)
{
    pl_buf name = PL_BUF_INIT;
    pl_typename(t, &name);
    json_buf(b, &name);
    pl_buf_free(&name);
}

/* "name": the task's name (get_name), or null. */
static void json_task_name(const pl_aio *aio, pl_buf *b, PyObject *task)
{
    PyObject *name = aio->get_name ? PyObject_CallOneArg(aio->get_name, task) : NULL;
    pl_json_key(b, "name");
    if (name && PyUnicode_Check(name)) {
        pl_json_pystr(b, name, "?");
    } else {
        PyErr_Clear();
        pl_buf_puts(b, "null");
    }
    Py_XDECREF(name);
}

/* One step of the chain: a coroutine or generator with its place, a
 * future or task with its state, or another object by its type. */
static void json_step(const pl_aio *aio, pl_buf *b, PyObject *o)
{
    pl_buf_putc(b, '{');
    pl_json_key(b, "id");
    pl_json_u64_str(b, (uint64_t)(uintptr_t)o);
    pl_buf_putc(b, ',');
    pl_json_key(b, "kind");
    int kind = pl_aio_kind(aio, o);
    if (is_gen(o)) {
        struct gen_where w;
        gen_where(aio, o, &w);
        pl_json_cstr(b, PyCoro_CheckExact(o) ? "coroutine" : PyGen_CheckExact(o) ? "generator" : "async_generator");
        pl_buf name = PL_BUF_INIT;
        put_gen_name(&name, &w);
        pl_buf_putc(b, ',');
        pl_json_key(b, "coroutine");
        json_buf(b, &name);
        pl_buf_free(&name);
        pl_buf_putc(b, ',');
        pl_json_key(b, "file");
        if (w.file)
            pl_json_pystr(b, w.file, "?");
        else
            pl_buf_puts(b, "null");
        pl_buf_putc(b, ',');
        pl_json_key(b, "line");
        if (w.line >= 0)
            pl_json_i64(b, w.line);
        else
            pl_buf_puts(b, "null");
        pl_buf_putc(b, ',');
        pl_json_key(b, "finished");
        pl_json_bool(b, !w.alive);
        Py_XDECREF(w.qualname);
    } else {
        pl_json_cstr(b, kind == 2 ? "task" : kind == 1 ? "future" : "object");
        pl_buf_putc(b, ',');
        pl_json_key(b, "type");
        json_type(b, Py_TYPE(o));
        if (kind) {
            pl_buf_putc(b, ',');
            pl_json_key(b, "state");
            pl_json_cstr(b, pl_aio_state_name(pl_aio_state(aio, o)));
        }
        if (kind == 2) {
            pl_buf_putc(b, ',');
            json_task_name(aio, b, o);
            pl_buf_putc(b, ',');
            pl_json_key(b, "coroutine");
            PyObject *coro = task_coro(aio, o);
            pl_buf name = PL_BUF_INIT;
            put_coro_name(aio, &name, coro);
            json_buf(b, &name);
            pl_buf_free(&name);
            Py_XDECREF(coro);
        }
    }
    pl_buf_putc(b, '}');
}

/* The fields of a task: state, name, coroutine, waiting_at, await_chain. */
static void json_task(const pl_aio *aio, pl_buf *b, PyObject *task, int state)
{
    PyObject *chain[PL_AWAIT_CHAIN_MAX];
    int truncated = 0;
    size_t n = 0;
    json_task_name(aio, b, task);
    PyObject *coro = task_coro(aio, task);
    pl_buf name = PL_BUF_INIT, where = PL_BUF_INIT;
    put_coro_name(aio, &name, coro);
    pl_buf_putc(b, ',');
    pl_json_key(b, "coroutine");
    json_buf(b, &name);
    if (coro && is_gen(coro)) {
        struct gen_where w;
        gen_where(aio, coro, &w);
        pl_buf_putc(b, ',');
        pl_json_key(b, "qualname");
        if (w.qualname && PyUnicode_Check(w.qualname))
            pl_json_pystr(b, w.qualname, "?");
        else
            pl_buf_puts(b, "null");
        pl_buf_putc(b, ',');
        pl_json_key(b, "module");
        if (w.module)
            pl_json_pystr(b, w.module, "?");
        else
            pl_buf_puts(b, "null");
        Py_XDECREF(w.qualname);
    }
    if (coro)
        n = await_chain(aio, coro, chain, &truncated);
    for (size_t i = n; i-- > 0;) {
        if (!is_gen(chain[i]))
            continue;
        struct gen_where w;
        gen_where(aio, chain[i], &w);
        put_where(&where, &w);
        Py_XDECREF(w.qualname);
        break;
    }
    pl_buf_putc(b, ',');
    pl_json_key(b, "waiting_at");
    if (state == PL_AIO_PENDING && where.len)
        json_buf(b, &where);
    else
        pl_buf_puts(b, "null");
    pl_buf_putc(b, ',');
    pl_json_key(b, "await_chain");
    pl_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            pl_buf_putc(b, ',');
        json_step(aio, b, chain[i]);
    }
    pl_buf_putc(b, ']');
    pl_buf_putc(b, ',');
    pl_json_key(b, "truncated");
    pl_json_bool(b, truncated);
    PyObject *waiter = c_get(aio->fut_waiter, task);
    if (!waiter)
        PyErr_Clear();
    pl_buf_putc(b, ',');
    pl_json_key(b, "fut_waiter");
    if (waiter && waiter != Py_None)
        pl_json_u64_str(b, (uint64_t)(uintptr_t)waiter);
    else
        pl_buf_puts(b, "null");
    Py_XDECREF(waiter);
    /* Where the task was created: its sampled allocation site when its
     * class is traced and this task was sampled (alloc_sites.h), else null. */
    unsigned weight;
    long site = pl_alloc_site_of(task, &weight);
    pl_buf_putc(b, ',');
    pl_json_key(b, "created_at");
    if (site >= 0)
        pl_alloc_site_json(site, b);
    else
        pl_buf_puts(b, "null");
    chain_free(chain, n);
    Py_XDECREF(coro);
    pl_buf_free(&name);
    pl_buf_free(&where);
}

void pl_aio_json(pl_buf *b, PyObject *o)
{
    pl_aio aio;
    int kind = pl_aio_find(&aio) ? pl_aio_kind(&aio, o) : 0;
    if (!kind)
        return;
    pl_buf_putc(b, ',');
    pl_json_key(b, kind == 2 ? "task" : "future");
    pl_buf_putc(b, '{');
    pl_json_key(b, "state");
    int state = pl_aio_state(&aio, o);
    pl_json_cstr(b, pl_aio_state_name(state));
    if (state == PL_AIO_UNKNOWN) {
        /* A subclass whose __init__ never called the base's: no loop, no state. */
        pl_buf_putc(b, ',');
        pl_json_key(b, "error");
        pl_json_cstr(b, kind == 2 ? "the task's state cannot be read (it was never initialised)"
                                  : "the future's state cannot be read (it was never initialised)");
    } else if (kind == 2) {
        pl_buf_putc(b, ',');
        json_task(&aio, b, o, state);
    }
    pl_buf_putc(b, '}');
}

/* ---- repr ---- */

int pl_aio_repr(pl_buf *out, PyObject *o)
{
    pl_aio aio;
    int kind = pl_aio_find(&aio) ? pl_aio_kind(&aio, o) : 0;
    if (!kind)
        return 0;
    PyTypeObject *t = Py_TYPE(o);
    const char *dot = strrchr(t->tp_name, '.');
    pl_buf_putc(out, '<');
    if (t->tp_flags & Py_TPFLAGS_HEAPTYPE)
        put_str(out, ((PyHeapTypeObject *)t)->ht_name);
    else
        pl_buf_puts(out, dot ? dot + 1 : t->tp_name);
    int state = pl_aio_state(&aio, o);
    pl_buf_putc(out, ' ');
    pl_buf_puts(out, state == PL_AIO_DONE ? "finished" : pl_aio_state_name(state));
    if (kind == 2 && state != PL_AIO_UNKNOWN) {
        PyObject *name = aio.get_name ? PyObject_CallOneArg(aio.get_name, o) : NULL;
        if (name && PyUnicode_Check(name)) {
            pl_buf_puts(out, " name='");
            put_str(out, name);
            pl_buf_putc(out, '\'');
        }
        if (!name)
            PyErr_Clear();
        Py_XDECREF(name);
        PyObject *coro = task_coro(&aio, o);
        if (coro && is_gen(coro)) {
            struct gen_where w;
            gen_where(&aio, coro, &w);
            pl_buf_puts(out, " coro=<");
            if (w.qualname)
                put_str(out, w.qualname);
            pl_buf_puts(out, "()");
            if (w.line >= 0 && w.file) {
                pl_buf_puts(out, w.alive ? " running at " : " done, defined at ");
                put_where(out, &w);
            } else if (w.file) {
                pl_buf_puts(out, " done, defined at ");
                put_str(out, w.file);
            } else {
                pl_buf_puts(out, " done");
            }
            pl_buf_putc(out, '>');
            Py_XDECREF(w.qualname);
        }
        Py_XDECREF(coro);
    }
    pl_buf_putc(out, '>');
    return 1;
}
