/* Live objects of this process: list by type, detail, parents, children,
 * why-alive path (docs/http-api.md, docs/live-objects.md).
 *
 * Every query follows the same order, because a borrowed pointer is only
 * valid while no Python code runs:
 *   1. (path only) take the frames of running threads and their locals:
 *      this may drop references, so it comes first;
 *   2. with automatic gc collections disabled, walk the gc-tracked objects
 *      (objects_gc.c) doing pure C work: type match, tp_traverse scans; the
 *      path search first copies them into a libc array (the "snapshot") to
 *      make several passes;
 *   3. take strong references to the few objects the answer describes, drop
 *      every borrowed pointer, re-enable gc;
 *   4. describe them (repr, attributes): user code may run from here on.
 * An id from a request is only ever compared with addresses met in step 2
 * (tracked objects and what they refer to): it is never dereferenced. */
#include "pyext.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "objects_gc.h"
#include "pyloot/json.h"

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h> /* T_OBJECT_EX before 3.12 */
#define PL_T_OBJECT_EX T_OBJECT_EX
#define PL_READONLY READONLY
#else
#define PL_T_OBJECT_EX Py_T_OBJECT_EX
#define PL_READONLY Py_READONLY
#endif

/* Documented limits (docs/http-api.md, docs/live-objects.md). */
#define REPR_LIST_CHARS 1024    /* repr in summaries (lists, parents, children, path) */
#define REPR_DETAIL_CHARS 65536 /* repr of the object of /api/objects/<id> */
#define ATTR_REPR_CHARS 1024    /* repr of each attribute value */
#define KEY_REPR_CHARS 200      /* repr of a dict key in a path label */
#define MAX_ATTRS 1000          /* attributes listed per object */
#define MAX_LIMIT 10000
#define MAX_OFFSET 1000000000ULL
#define REPR_DEPTH 6            /* nesting of the bounded container repr */
#define REPR_ONE_S 0.25         /* one user repr() may run this long */
#define REPR_BUDGET_S 1.0       /* all user repr() calls of one answer */

/* ------------------------------------------------------------------ */
/* small libc containers                                               */

typedef struct objvec {
    PyObject **v; /* borrowed or owned: said where used */
    size_t n, cap;
} objvec;

static int objvec_push(objvec *a, PyObject *o)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        PyObject **v = realloc(a->v, cap * sizeof(*v));
        if (!v)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = o;
    return 0;
}

static void objvec_free(objvec *a)
{
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* Open-addressing map from an address to a 32-bit value; key 0 is "empty". */
typedef struct ptrmap {
    uintptr_t *keys;
    uint32_t *vals;
    size_t cap, n; /* cap is a power of two */
} ptrmap;

static size_t ptr_hash(uintptr_t p)
{
    uint64_t x = (uint64_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static int ptrmap_init(ptrmap *m, size_t expected)
{
    size_t cap = 64;
    while (cap < expected * 2)
        cap <<= 1;
    m->keys = calloc(cap, sizeof(*m->keys));
    m->vals = malloc(cap * sizeof(*m->vals));
    m->cap = cap;
    m->n = 0;
    if (!m->keys || !m->vals) {
        free(m->keys);
        free(m->vals);
        m->keys = NULL;
        m->vals = NULL;
        return -1;
    }
    return 0;
}

static void ptrmap_free(ptrmap *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
}

static int ptrmap_grow(ptrmap *m)
{
    ptrmap bigger;
    if (ptrmap_init(&bigger, m->cap) < 0)
        return -1;
    size_t mask = bigger.cap - 1;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->keys[j])
            continue;
        size_t i = ptr_hash(m->keys[j]) & mask;
        while (bigger.keys[i])
            i = (i + 1) & mask;
        bigger.keys[i] = m->keys[j];
        bigger.vals[i] = m->vals[j];
    }
    bigger.n = m->n;
    ptrmap_free(m);
    *m = bigger;
    return 0;
}

/* Inserts k -> v unless k is present. Returns 1 if inserted, 0 if present, -1 on ENOMEM. */
static int ptrmap_add(ptrmap *m, uintptr_t k, uint32_t v)
{
    if ((m->n + 1) * 2 > m->cap && ptrmap_grow(m) < 0)
        return -1;
    size_t mask = m->cap - 1;
    size_t i = ptr_hash(k) & mask;
    for (; m->keys[i]; i = (i + 1) & mask)
        if (m->keys[i] == k)
            return 0;
    m->keys[i] = k;
    m->vals[i] = v;
    m->n++;
    return 1;
}

static int cmp_addr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(PyObject *const *)a, y = (uintptr_t)*(PyObject *const *)b;
    return x < y ? -1 : x > y;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ */
/* the heap snapshot                                                    */


static int snap_add(PyObject *o, void *arg)
{
    return objvec_push(arg, o) < 0 ? 2 : 0;
}

/* Fills `snap` with borrowed pointers to every gc-tracked object. They stay
 * valid only until Python code runs or a collection happens. Returns 0, or
 * -1 with an exception set. */
static int snapshot(objvec *snap)
{
    int rc = pl_live_walk(snap_add, snap);
    if (rc == 2) {
        PyErr_NoMemory();
        return -1;
    }
    return rc < 0 ? -1 : 0;
}

static int has_traverse(PyObject *o)
{
    return PyObject_IS_GC(o) && Py_TYPE(o)->tp_traverse != NULL;
}

/* ------------------------------------------------------------------ */
/* own attributes: __dict__ (without materialising a managed one) and slots */

typedef int (*attr_fn)(PyObject *name, PyObject *value, void *arg);


/* The instance's own dict when it exists as an object (borrowed), or NULL.
 * Never creates one. */
static PyObject *own_dict(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
#ifdef PL_HAVE_INLINE_VALUES
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        PyObject *d;
        pl_managed_attrs(o, &d, NULL, NULL);
        return d && PyDict_Check(d) ? d : NULL;
    }
#elif PY_VERSION_HEX >= 0x030C0000
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT)
        return NULL; /* see own_attrs_each */
#endif
    if (tp->tp_dictoffset == 0)
        return NULL;
    PyObject **dp = _PyObject_GetDictPtr(o); /* plain offset arithmetic without MANAGED_DICT */
    if (!dp) {
        PyErr_Clear();
        return NULL;
    }
    return *dp && PyDict_Check(*dp) ? *dp : NULL;
}

/* Calls fn(name, value) for the object's own attributes: its __dict__ and
 * the __slots__ of its heap types. Runs no property, descriptor or
 * __getattr__; name and value are borrowed (fn must not run Python code
 * that could drop them, or take references first). */
static int own_attrs_each(PyObject *o, attr_fn fn, void *arg)
{
    int rc = 0;
    PyTypeObject *tp = Py_TYPE(o);
    PyObject *d = own_dict(o);
    if (d) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(d, &pos, &k, &v))
            if ((rc = fn(k, v, arg)))
                return rc;
    }
#ifdef PL_HAVE_INLINE_VALUES
    else if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        PyObject *unused;
        if ((rc = pl_managed_attrs(o, &unused, fn, arg)))
            return rc;
    }
#elif PY_VERSION_HEX >= 0x030C0000
    else if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) {
        /* 3.14+ and free-threaded builds: no mirror of the inline values
         * here; asking for the dict materialises it (a documented side
         * effect). */
        PyObject *md = PyObject_GenericGetDict(o, NULL);
        if (!md) {
            PyErr_Clear();
        } else {
            Py_ssize_t pos = 0;
            PyObject *k, *v;
            while (PyDict_Next(md, &pos, &k, &v))
                if ((rc = fn(k, v, arg)))
                    break;
            Py_DECREF(md);
            if (rc)
                return rc;
        }
    }
#endif
    PyObject *mro = tp->tp_mro;
    if (!mro || !PyTuple_Check(mro))
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!PyType_Check(t) || !(t->tp_flags & Py_TPFLAGS_HEAPTYPE) || !t->tp_members)
            continue;
        /* A heap type's members are its __slots__ (plus read-only
         * __weakref__/__dictoffset__ style entries, skipped). */
        for (PyMemberDef *m = t->tp_members; m->name; m++) {
            if (m->type != PL_T_OBJECT_EX || (m->flags & PL_READONLY))
                continue;
            PyObject *v = *(PyObject **)((char *)o + m->offset);
            if (!v)
                continue;
            PyObject *name = PyUnicode_FromString(m->name);
            if (!name) {
                PyErr_Clear();
                continue;
            }
            rc = fn(name, v, arg);
            Py_DECREF(name);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* bounded, guarded repr                                                */

typedef struct reprer {
    double deadline; /* end of the repr budget of this answer */
    PyObject *stack[REPR_DEPTH];
    int depth;
} reprer;

/* Deadline of the user repr() running on this thread; read by repr_trace. */
static _Thread_local double repr_call_deadline;

/* A C trace function: stops Python code of a repr() that runs too long by
 * raising in it. Installed only around user repr() calls, the previous
 * tracer (debugger, coverage) restored right after. */
static int repr_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    if (now_s() > repr_call_deadline) {
        PyErr_SetString(PyExc_TimeoutError, "repr() took too long");
        return -1;
    }
    return 0;
}

static void put_utf8(pl_buf *out, PyObject *s, size_t cap)
{
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    PyObject *enc = NULL;
    if (!u) {
        PyErr_Clear();
        enc = PyUnicode_AsEncodedString(s, "utf-8", "backslashreplace");
        if (!enc) {
            PyErr_Clear();
            pl_buf_puts(out, "<repr not encodable>");
            return;
        }
        u = PyBytes_AS_STRING(enc);
        n = PyBytes_GET_SIZE(enc);
    }
    size_t room = cap > out->len ? cap - out->len : 0;
    pl_buf_append(out, u, (size_t)n < room + 4 ? (size_t)n : room + 4);
    Py_XDECREF(enc);
}

/* Appends "<repr failed: Type: message>" for the pending exception and clears it. */
static void put_repr_error(pl_buf *out, size_t cap)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    pl_buf_puts(out, "<repr failed: ");
    const char *tn = et && PyType_Check(et) ? ((PyTypeObject *)et)->tp_name : "error";
    const char *dot = strrchr(tn, '.');
    pl_buf_puts(out, dot ? dot + 1 : tn);
    if (ev && PyExceptionInstance_Check(ev) && !PyErr_GivenExceptionMatches(et, PyExc_TimeoutError)) {
        /* str() of a user exception is user code too: same deadline. */
        PyObject *msg = NULL;
        if (now_s() < repr_call_deadline)
            msg = PyObject_Str(ev);
        if (msg) {
            if (PyUnicode_GET_LENGTH(msg)) {
                pl_buf_puts(out, ": ");
                put_utf8(out, msg, out->len + 200);
            }
            Py_DECREF(msg);
        } else {
            PyErr_Clear();
        }
    } else if (PyErr_GivenExceptionMatches(et, PyExc_TimeoutError)) {
        pl_buf_puts(out, ": repr() took too long");
    }
    pl_buf_putc(out, '>');
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(tb);
    (void)cap;
}

/* repr() of anything that is not one of the builtin containers, guarded:
 * heap types get a deadline (a C tracer) and the answer's total budget. */
static void repr_leaf(reprer *r, pl_buf *out, PyObject *o, size_t cap)
{
    PyTypeObject *tp = Py_TYPE(o);
    int user = (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) != 0;
    if (PyBytes_CheckExact(o) && PyBytes_GET_SIZE(o) > (Py_ssize_t)cap) {
        PyObject *head = PyBytes_FromStringAndSize(PyBytes_AS_STRING(o), (Py_ssize_t)cap);
        PyObject *s = head ? PyObject_Repr(head) : NULL;
        Py_XDECREF(head);
        if (s) {
            put_utf8(out, s, cap);
            Py_DECREF(s);
        } else {
            PyErr_Clear();
            pl_buf_puts(out, "<bytes>");
        }
        return;
    }
    if (PyUnicode_CheckExact(o) && PyUnicode_GET_LENGTH(o) > (Py_ssize_t)cap) {
        /* A 10 MB str: the repr of its head is all we can show anyway. */
        PyObject *head = PyUnicode_Substring(o, 0, (Py_ssize_t)cap);
        if (head) {
            PyObject *s = PyObject_Repr(head);
            Py_DECREF(head);
            if (s) {
                put_utf8(out, s, cap);
                Py_DECREF(s);
                return;
            }
        }
        PyErr_Clear();
        pl_buf_puts(out, "<str>");
        return;
    }
    double t0 = now_s();
    if (user && t0 > r->deadline) {
        pl_buf_puts(out, "<repr skipped: time budget exhausted>");
        return;
    }
    PyObject *s;
    if (user) {
        PyThreadState *ts = PyThreadState_Get();
        Py_tracefunc old_fn = ts->c_tracefunc;
        PyObject *old_obj = ts->c_traceobj;
        Py_XINCREF(old_obj);
        double saved = repr_call_deadline;
        repr_call_deadline = t0 + REPR_ONE_S < r->deadline ? t0 + REPR_ONE_S : r->deadline;
        PyEval_SetTrace(repr_trace, NULL);
        s = PyObject_Repr(o);
        if (!s)
            put_repr_error(out, cap); /* str() of the exception under the same deadline */
        PyEval_SetTrace(old_fn, old_obj);
        PyErr_Clear(); /* an audit hook refusing sys.settrace: nothing we can do */
        Py_XDECREF(old_obj);
        repr_call_deadline = saved;
    } else {
        s = PyObject_Repr(o);
        if (!s) {
            repr_call_deadline = now_s() + REPR_ONE_S;
            put_repr_error(out, cap);
        }
    }
    if (s) {
        if (PyUnicode_Check(s))
            put_utf8(out, s, cap);
        else
            pl_buf_puts(out, "<repr returned a non-str>");
        Py_DECREF(s);
    }
}

static void repr_into(reprer *r, pl_buf *out, PyObject *o, size_t cap);

static int repr_enter(reprer *r, PyObject *o)
{
    for (int i = 0; i < r->depth; i++)
        if (r->stack[i] == o)
            return 0;
    if (r->depth == REPR_DEPTH)
        return 0;
    r->stack[r->depth++] = o;
    return 1;
}

/* Appends repr(o), stopping once out holds `cap` bytes. The builtin
 * containers (exact list, tuple, dict, set, frozenset) are written here,
 * item by item, so a million-item list costs only what is shown and a
 * self-referencing one prints "[...]". */
static void repr_into(reprer *r, pl_buf *out, PyObject *o, size_t cap)
{
    if (out->err)
        return;
    int is_list = PyList_CheckExact(o), is_tuple = PyTuple_CheckExact(o);
    int is_dict = PyDict_CheckExact(o);
    int is_set = PySet_CheckExact(o), is_fset = PyFrozenSet_CheckExact(o);
    if (!is_list && !is_tuple && !is_dict && !is_set && !is_fset) {
        repr_leaf(r, out, o, cap);
        return;
    }
    const char *open = is_list ? "[" : is_tuple ? "(" : is_fset ? "frozenset({" : "{";
    const char *close = is_list ? "]" : is_tuple ? ")" : is_fset ? "})" : "}";
    if (is_set && PySet_GET_SIZE(o) == 0) {
        pl_buf_puts(out, "set()");
        return;
    }
    if (is_fset && PySet_GET_SIZE(o) == 0) {
        pl_buf_puts(out, "frozenset()");
        return;
    }
    if (!repr_enter(r, o)) {
        pl_buf_puts(out, open);
        pl_buf_puts(out, "...");
        pl_buf_puts(out, close);
        return;
    }
    pl_buf_puts(out, open);
    Py_ssize_t i = 0;
    if (is_list || is_tuple) {
        for (;; i++) {
            Py_ssize_t n = is_list ? PyList_GET_SIZE(o) : PyTuple_GET_SIZE(o);
            if (i >= n)
                break;
            if (i)
                pl_buf_puts(out, ", ");
            if (out->len >= cap) {
                pl_buf_puts(out, "...");
                break;
            }
            PyObject *item = is_list ? PyList_GET_ITEM(o, i) : PyTuple_GET_ITEM(o, i);
            Py_INCREF(item); /* a user repr may shrink the list */
            repr_into(r, out, item, cap);
            Py_DECREF(item);
        }
        if (is_tuple && i == 1)
            pl_buf_putc(out, ',');
    } else if (is_dict) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(o, &pos, &k, &v)) {
            if (i++)
                pl_buf_puts(out, ", ");
            if (out->len >= cap) {
                pl_buf_puts(out, "...");
                break;
            }
            Py_INCREF(k);
            Py_INCREF(v);
            repr_into(r, out, k, cap);
            pl_buf_puts(out, ": ");
            repr_into(r, out, v, cap);
            Py_DECREF(k);
            Py_DECREF(v);
        }
    } else {
        PyObject *it = PyObject_GetIter(o);
        PyObject *item;
        while (it && (item = PyIter_Next(it))) {
            if (i++)
                pl_buf_puts(out, ", ");
            if (out->len >= cap) {
                Py_DECREF(item);
                pl_buf_puts(out, "...");
                break;
            }
            repr_into(r, out, item, cap);
            Py_DECREF(item);
        }
        Py_XDECREF(it);
        PyErr_Clear(); /* "Set changed size during iteration": show what we have */
    }
    pl_buf_puts(out, close);
    r->depth--;
}

/* Byte length of the first `max_chars` code points of UTF-8 text. */
static size_t utf8_prefix(const char *s, size_t len, size_t max_chars)
{
    size_t chars = 0, i = 0;
    while (i < len) {
        if (chars == max_chars)
            return i;
        unsigned char c = (unsigned char)s[i];
        size_t step = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        i += step;
        chars++;
    }
    return len;
}

/* Writes repr(o) as a JSON string, cut to max_chars characters ("…" marks the cut). */
static void json_repr(reprer *r, pl_buf *body, PyObject *o, size_t max_chars)
{
    pl_buf text = PL_BUF_INIT;
    repr_into(r, &text, o, max_chars * 4 + 16);
    if (text.err) {
        pl_buf_free(&text);
        pl_json_cstr(body, "<repr failed: out of memory>");
        return;
    }
    size_t cut = utf8_prefix(text.data ? text.data : "", text.len, max_chars);
    if (cut < text.len) {
        text.len = cut;
        pl_buf_puts(&text, "\xE2\x80\xA6");
    }
    pl_json_str(body, text.data ? text.data : "", text.len);
    pl_buf_free(&text);
}

/* ------------------------------------------------------------------ */
/* summaries                                                            */

static void json_pystr(pl_buf *b, PyObject *s, const char *fallback)
{
    Py_ssize_t n;
    const char *u = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (!u) {
        PyErr_Clear();
        pl_json_cstr(b, fallback);
        return;
    }
    pl_json_str(b, u, (size_t)n);
}

static void json_type_fields(pl_buf *b, PyTypeObject *tp)
{
    pl_json_key(b, "type_name");
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        PyHeapTypeObject *ht = (PyHeapTypeObject *)tp;
        json_pystr(b, ht->ht_qualname, tp->tp_name);
        pl_buf_putc(b, ',');
        pl_json_key(b, "type_module");
        PyObject *mod = tp->tp_dict ? PyDict_GetItemString(tp->tp_dict, "__module__") : NULL;
        json_pystr(b, mod, "builtins");
    } else {
        const char *dot = strrchr(tp->tp_name, '.');
        pl_json_cstr(b, dot ? dot + 1 : tp->tp_name);
        pl_buf_putc(b, ',');
        pl_json_key(b, "type_module");
        if (dot)
            pl_json_str(b, tp->tp_name, (size_t)(dot - tp->tp_name));
        else
            pl_json_cstr(b, "builtins");
    }
}

/* A name the object itself carries (module, class, function, code), read
 * from its C fields; otherwise its type's short name. */
static void json_obj_name(pl_buf *b, PyObject *o)
{
    if (PyModule_Check(o)) {
        PyObject *d = PyModule_GetDict(o);
        PyObject *n = d ? PyDict_GetItemString(d, "__name__") : NULL;
        if (n && PyUnicode_Check(n)) {
            json_pystr(b, n, "module");
            return;
        }
    } else if (PyType_Check(o)) {
        PyTypeObject *t = (PyTypeObject *)o;
        if (t->tp_flags & Py_TPFLAGS_HEAPTYPE)
            json_pystr(b, ((PyHeapTypeObject *)t)->ht_qualname, t->tp_name);
        else
            pl_json_cstr(b, t->tp_name);
        return;
    } else if (PyFunction_Check(o)) {
        json_pystr(b, ((PyFunctionObject *)o)->func_qualname, "function");
        return;
    } else if (PyCFunction_Check(o)) {
        pl_json_cstr(b, ((PyCFunctionObject *)o)->m_ml->ml_name);
        return;
    } else if (PyCode_Check(o)) {
        json_pystr(b, ((PyCodeObject *)o)->co_name, "code");
        return;
    }
    PyTypeObject *tp = Py_TYPE(o);
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        json_pystr(b, ((PyHeapTypeObject *)tp)->ht_qualname, tp->tp_name);
    } else {
        const char *dot = strrchr(tp->tp_name, '.');
        pl_json_cstr(b, dot ? dot + 1 : tp->tp_name);
    }
}

/* Shallow size as sys.getsizeof reports it, except that a __sizeof__
 * written in Python is never called (the instance layout is used instead). */
static uint64_t shallow_size(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    uint64_t size = 0;
    int done = 0;
    PyObject *mro = tp->tp_mro;
    if (mro && PyTuple_Check(mro)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro) && !done; i++) {
            PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
            PyObject *f = PyType_Check(t) && t->tp_dict ? PyDict_GetItemString(t->tp_dict, "__sizeof__") : NULL;
            if (!f)
                continue;
            done = 1;
            if (Py_IS_TYPE(f, &PyMethodDescr_Type)) {
                PyObject *r = PyObject_CallOneArg(f, o);
                if (r && PyLong_Check(r)) {
                    long long v = PyLong_AsLongLong(r);
                    if (v >= 0)
                        size = (uint64_t)v;
                    else
                        done = 0;
                } else {
                    done = 0;
                }
                Py_XDECREF(r);
                PyErr_Clear();
            } else {
                done = 0;
                break;
            }
        }
    }
    if (!done) {
        size = (uint64_t)tp->tp_basicsize;
        if (tp->tp_itemsize)
            size += (uint64_t)tp->tp_itemsize * (uint64_t)Py_ABS(Py_SIZE(o));
    }
    if (PyObject_IS_GC(o))
        size += 2 * sizeof(void *); /* PyGC_Head */
    /* The pre-header before the object (dict/values or weakref pointers),
     * as _PyType_PreHeaderSize counts it. */
#if PY_VERSION_HEX >= 0x030C0000
    if (tp->tp_flags & (Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF))
        size += 2 * sizeof(void *);
#elif PY_VERSION_HEX >= 0x030B0000
    if (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT)
        size += 2 * sizeof(void *);
#endif
    return size;
}

static void json_summary(reprer *r, pl_buf *b, PyObject *o, size_t repr_chars)
{
    pl_buf_putc(b, '{');
    pl_json_key(b, "id");
    pl_json_u64(b, (uint64_t)(uintptr_t)o);
    pl_buf_putc(b, ',');
    pl_json_key(b, "obj_name");
    json_obj_name(b, o);
    pl_buf_putc(b, ',');
    json_type_fields(b, Py_TYPE(o));
    pl_buf_putc(b, ',');
    pl_json_key(b, "repr");
    json_repr(r, b, o, repr_chars);
    pl_buf_putc(b, ',');
    pl_json_key(b, "size");
    pl_json_u64(b, shallow_size(o));
    pl_buf_putc(b, '}');
}

/* ------------------------------------------------------------------ */
/* answers                                                              */

typedef struct answer {
    const pl_live_query *q;
    pl_buf *body;
    int status;
    reprer repr;
    objvec snap; /* borrowed, valid until step 4 (see top of file) */
    int gc_was_enabled;
} answer;

static void begin_doc(answer *a)
{
    pl_buf_putc(a->body, '{');
    pl_json_key(a->body, "pid");
    pl_json_i64(a->body, (int64_t)getpid());
}

static void error_doc(answer *a, int status, const char *msg)
{
    a->body->len = 0;
    a->status = status;
    begin_doc(a);
    pl_buf_putc(a->body, ',');
    pl_json_key(a->body, "error");
    pl_json_cstr(a->body, msg);
    pl_buf_putc(a->body, '}');
}

static void gone_doc(answer *a)
{
    char msg[80];
    snprintf(msg, sizeof msg, "object %llu is no longer available", (unsigned long long)a->q->id);
    error_doc(a, 404, msg);
}

/* Ends the snapshot phase: drops the array and lets gc run again. */
static void end_snapshot(answer *a)
{
    objvec_free(&a->snap);
    if (a->gc_was_enabled) {
        PyGC_Enable();
        a->gc_was_enabled = 0;
    }
}

static int begin_snapshot(answer *a)
{
    a->gc_was_enabled |= PyGC_Disable(); /* |=: answer_path may have disabled it already */
    if (snapshot(&a->snap) < 0) {
        end_snapshot(a);
        return -1;
    }
    return 0;
}

struct match_ctx {
    uintptr_t id;
    PyObject *found;
};

static int visit_match(PyObject *child, void *arg)
{
    struct match_ctx *m = arg;
    if ((uintptr_t)child == m->id) {
        m->found = child;
        return 1;
    }
    return 0;
}

/* Finds the object with address q->id among the snapshot, then among the
 * referents of the snapshot (untracked objects such as str or int).
 * Borrowed result or NULL. */
static PyObject *find_object(answer *a)
{
    uintptr_t id = (uintptr_t)a->q->id;
    if (id == 0 || a->q->id > UINTPTR_MAX)
        return NULL;
    for (size_t i = 0; i < a->snap.n; i++)
        if ((uintptr_t)a->snap.v[i] == id)
            return a->snap.v[i];
    struct match_ctx m = {id, NULL};
    for (size_t i = 0; i < a->snap.n && !m.found; i++) {
        PyObject *o = a->snap.v[i];
        if (has_traverse(o))
            Py_TYPE(o)->tp_traverse(o, visit_match, &m);
    }
    /* Found through a real reference, so it is an object; its type must be one too. */
    if (m.found && !PyType_Check((PyObject *)Py_TYPE(m.found)))
        return NULL;
    return m.found;
}

/* Finds the object q->id and, when `parents` is given, its parents, in one
 * walk over the tracked objects without a snapshot array: every object is
 * compared with the id, and its tp_traverse asked whether it visits that
 * address (which also finds an untracked object through its referrers).
 * gc must be disabled by the caller. Returns the object (borrowed) or NULL;
 * *err is set on ENOMEM. Parents come out in address order. */
struct id_scan {
    uintptr_t id;
    PyObject *found;
    objvec *parents;
    int referents; /* also look among referents (second pass, or with parents) */
    int err;
};

static int id_scan_visit(PyObject *o, void *arg)
{
    struct id_scan *s = arg;
    if ((uintptr_t)o == s->id)
        s->found = o;
    if (!s->referents || !has_traverse(o))
        return s->found && !s->parents ? 1 : 0;
    struct match_ctx m = {s->id, NULL};
    Py_TYPE(o)->tp_traverse(o, visit_match, &m);
    if (!m.found)
        return 0;
    if (!s->found)
        s->found = m.found;
    if (!s->parents)
        return 1;
    if (objvec_push(s->parents, o) < 0) {
        s->err = 1;
        return 1;
    }
    return 0;
}

static PyObject *scan_for_id(answer *a, objvec *parents, int *err)
{
    struct id_scan s = {(uintptr_t)a->q->id, NULL, parents, parents != NULL, 0};
    *err = 0;
    if (a->q->id == 0 || a->q->id > UINTPTR_MAX)
        return NULL;
    a->gc_was_enabled |= PyGC_Disable();
    if (pl_live_walk(id_scan_visit, &s) < 0 && !s.err) {
        PyErr_Clear();
        *err = 1;
        return NULL;
    }
    if (!s.found && !parents && !s.err) {
        s.referents = 1;
        if (pl_live_walk(id_scan_visit, &s) < 0 && !s.err) {
            PyErr_Clear();
            *err = 1;
            return NULL;
        }
    }
    if (s.err) {
        *err = 1;
        return NULL;
    }
    if (s.found && !PyType_Check((PyObject *)Py_TYPE(s.found)))
        s.found = NULL;
    if (s.found && parents)
        qsort(parents->v, parents->n, sizeof(*parents->v), cmp_addr);
    else if (parents)
        parents->n = 0;
    return s.found;
}

struct children_ctx {
    objvec *out;
    ptrmap seen;
    int err;
};

static int visit_child(PyObject *child, void *arg)
{
    struct children_ctx *c = arg;
    if (!child)
        return 0;
    int added = ptrmap_add(&c->seen, (uintptr_t)child, 0);
    if (added < 0 || (added == 1 && objvec_push(c->out, child) < 0)) {
        c->err = 1;
        return 1;
    }
    return 0;
}

/* Children: what tp_traverse visits, each once, in traversal order (a
 * list's items in index order). */
static int collect_children(PyObject *target, objvec *out)
{
    if (!has_traverse(target))
        return 0;
    struct children_ctx c = {out, {0}, 0};
    if (ptrmap_init(&c.seen, 64) < 0)
        return -1;
    /* list_traverse visits items last to first: show them in index order. */
    if (PyList_Check(target))
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(target) && !c.err; i++)
            visit_child(PyList_GET_ITEM(target, i), &c);
    if (!c.err)
        Py_TYPE(target)->tp_traverse(target, visit_child, &c);
    ptrmap_free(&c.seen);
    return c.err ? -1 : 0;
}

static void json_page_fields(answer *a, uint64_t total)
{
    pl_buf *b = a->body;
    pl_buf_putc(b, ',');
    pl_json_key(b, "total");
    pl_json_u64(b, total);
    pl_buf_putc(b, ',');
    pl_json_key(b, "offset");
    pl_json_u64(b, a->q->offset);
    pl_buf_putc(b, ',');
    pl_json_key(b, "limit");
    pl_json_u64(b, a->q->limit);
}

/* Writes `"objects": [summaries of v[offset..offset+limit)]`; v owns references. */
/* ,"objects":[summary, ...]. With via (called for each object, may be
 * NULL), each summary also gets "via": whatever via(i, arg) appends. */
typedef void (*via_fn)(answer *a, size_t i, void *arg);

static void json_objects(answer *a, PyObject **v, size_t n, via_fn via, void *arg)
{
    pl_buf *b = a->body;
    pl_buf_putc(b, ',');
    pl_json_key(b, "objects");
    pl_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            pl_buf_putc(b, ',');
        json_summary(&a->repr, b, v[i], REPR_LIST_CHARS);
        if (via && b->len && b->data[b->len - 1] == '}') {
            b->len--; /* reopen the summary for one more field */
            pl_buf_putc(b, ',');
            pl_json_key(b, "via");
            via(a, i, arg);
            pl_buf_putc(b, '}');
        }
    }
    pl_buf_putc(b, ']');
}

/* ---- PL_LIVE_LIST ---- */

/* One pass over the tracked objects for a listing (no snapshot array): the
 * types met are named once each (pl_typename) and remembered in `types`
 * (value 1: the name equals the group's base name); objects of such a type
 * are kept in `matched` (borrowed, valid until Python code runs), and the
 * types themselves in `cands`. */
struct list_scan {
    ptrmap types;
    PyTypeObject *last_t;
    int last_match;
    objvec cands, matched;
    pl_buf name;
    const char *base;
    size_t blen;
    int err;
};

static int classify_type(struct list_scan *s, PyTypeObject *t)
{
    int added = ptrmap_add(&s->types, (uintptr_t)t, 0);
    if (added < 0)
        return -1;
    if (added == 0) {
        size_t mask = s->types.cap - 1;
        for (size_t i = ptr_hash((uintptr_t)t) & mask;; i = (i + 1) & mask)
            if (s->types.keys[i] == (uintptr_t)t)
                return (int)s->types.vals[i];
    }
    pl_buf_reset(&s->name);
    if (pl_typename(t, &s->name) < 0)
        return -1;
    int match = s->name.len == s->blen && memcmp(s->name.data, s->base, s->blen) == 0;
    if (match) {
        size_t mask = s->types.cap - 1;
        for (size_t i = ptr_hash((uintptr_t)t) & mask;; i = (i + 1) & mask) {
            if (s->types.keys[i] == (uintptr_t)t) {
                s->types.vals[i] = 1;
                break;
            }
        }
        if (objvec_push(&s->cands, (PyObject *)t) < 0)
            return -1;
    }
    return match;
}

static int list_visit(PyObject *o, void *arg)
{
    struct list_scan *s = arg;
    PyTypeObject *t = Py_TYPE(o);
    if (t != s->last_t) {
        int m = classify_type(s, t);
        if (m < 0) {
            s->err = 1;
            return 1;
        }
        s->last_t = t;
        s->last_match = m;
    }
    if (s->last_match && objvec_push(&s->matched, o) < 0) {
        s->err = 1;
        return 1;
    }
    /* A type with no instance still takes its number among same-named types. */
    if (PyType_Check(o) && classify_type(s, (PyTypeObject *)o) < 0) {
        s->err = 1;
        return 1;
    }
    return 0;
}

/* Splits "name#n" into the base name and n (1 when there is no suffix).
 * Types sharing a name are numbered by ascending address: the bare name is
 * the first, "#2" the second. */
static unsigned long group_suffix(const char *group, size_t *base_len)
{
    *base_len = strlen(group);
    const char *hash = strrchr(group, '#');
    if (hash && hash[1] >= '1' && hash[1] <= '9') {
        char *end;
        errno = 0;
        unsigned long v = strtoul(hash + 1, &end, 10);
        if (*end == '\0' && errno == 0) {
            *base_len = (size_t)(hash - group);
            return v;
        }
    }
    return 1;
}

/* Max-heap on addresses, used to keep the k lowest addresses in one pass. */
static void heap_sift_down(PyObject **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && (uintptr_t)h[l] > (uintptr_t)h[m])
            m = l;
        if (r < n && (uintptr_t)h[r] > (uintptr_t)h[m])
            m = r;
        if (m == i)
            return;
        PyObject *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_sift_up(PyObject **h, size_t i)
{
    while (i) {
        size_t p = (i - 1) / 2;
        if ((uintptr_t)h[p] >= (uintptr_t)h[i])
            return;
        PyObject *t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static int answer_list(answer *a)
{
    struct list_scan sc;
    memset(&sc, 0, sizeof sc);
    sc.base = a->q->group;
    unsigned long nth = group_suffix(a->q->group, &sc.blen);
    objvec heap = {0};
    int rc = -1;
    if (ptrmap_init(&sc.types, 4096) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    a->gc_was_enabled = PyGC_Disable();
    int vr = pl_live_walk(list_visit, &sc);
    if (vr < 0 && !sc.err)
        goto out;
    PyErr_Clear();
    if (sc.err)
        goto nomem;
    qsort(sc.cands.v, sc.cands.n, sizeof(*sc.cands.v), cmp_addr);
    PyTypeObject *tp = nth <= sc.cands.n ? (PyTypeObject *)sc.cands.v[nth - 1] : NULL;
    if (sc.cands.n > 1) {
        /* Same-named types: use the collector's numbering, so the history's
         * "mod.T#2" lists the same type; by address when it has none. */
        const PyTypeObject *named;
        if (pl_collector_type_named(a->q->group, &named)) {
            for (size_t i = 0; i < sc.cands.n; i++)
                if ((const PyTypeObject *)sc.cands.v[i] == named)
                    tp = (PyTypeObject *)sc.cands.v[i];
        }
    }

    /* Keep the offset+limit lowest addresses (a stable order across calls)
     * in a bounded max-heap: one pass, no sort of every instance. */
    uint64_t want = a->q->offset + a->q->limit;
    uint64_t total = 0;
    for (size_t i = 0; tp && i < sc.matched.n; i++) {
        PyObject *o = sc.matched.v[i];
        if (Py_TYPE(o) != tp)
            continue;
        total++;
        if (heap.n < want) {
            if (objvec_push(&heap, o) < 0)
                goto nomem;
            heap_sift_up(heap.v, heap.n - 1);
        } else if ((uintptr_t)o < (uintptr_t)heap.v[0]) {
            heap.v[0] = o;
            heap_sift_down(heap.v, heap.n, 0);
        }
    }
    qsort(heap.v, heap.n, sizeof(*heap.v), cmp_addr);
    size_t first = a->q->offset < heap.n ? (size_t)a->q->offset : heap.n;
    PyObject **page = heap.v + first;
    size_t npage = heap.n - first;
    for (size_t i = 0; i < npage; i++)
        Py_INCREF(page[i]);
    end_snapshot(a);

    begin_doc(a);
    pl_buf_putc(a->body, ',');
    pl_json_key(a->body, "group");
    pl_json_cstr(a->body, a->q->group);
    json_page_fields(a, total);
    json_objects(a, page, npage, NULL, NULL);
    pl_buf_putc(a->body, '}');
    for (size_t i = 0; i < npage; i++)
        Py_DECREF(page[i]);
    a->status = 200;
    rc = 0;
    goto out;
nomem:
    PyErr_NoMemory();
out:
    end_snapshot(a);
    objvec_free(&heap);
    objvec_free(&sc.cands);
    objvec_free(&sc.matched);
    pl_buf_free(&sc.name);
    ptrmap_free(&sc.types);
    return rc;
}

/* ---- PL_LIVE_DETAIL ---- */

struct attr_item {
    PyObject *name;
    PyObject *value;
};

struct attrs_ctx {
    struct attr_item *items;
    size_t n;
};

static int collect_attr(PyObject *name, PyObject *value, void *arg)
{
    struct attrs_ctx *c = arg;
    if (c->n == MAX_ATTRS)
        return 1;
    Py_INCREF(name);
    Py_INCREF(value);
    c->items[c->n].name = name;
    c->items[c->n].value = value;
    c->n++;
    return 0;
}

static int answer_detail(answer *a)
{
    objvec parents = {0}, children = {0};
    int err;
    PyObject *o = scan_for_id(a, &parents, &err);
    if (!err && o && collect_children(o, &children) < 0)
        err = 1;
    if (err || !o) {
        objvec_free(&parents);
        objvec_free(&children);
        end_snapshot(a);
        if (err) {
            PyErr_NoMemory();
            return -1;
        }
        gone_doc(a);
        return 0;
    }
    Py_INCREF(o);
    end_snapshot(a);
    size_t nparents = parents.n, nchildren = children.n;
    objvec_free(&parents);
    objvec_free(&children);

    struct attrs_ctx attrs = {malloc(MAX_ATTRS * sizeof(struct attr_item)), 0};
    if (!attrs.items) {
        Py_DECREF(o);
        PyErr_NoMemory();
        return -1;
    }
    own_attrs_each(o, collect_attr, &attrs); /* references taken before any repr runs */

    pl_buf *b = a->body;
    begin_doc(a);
    pl_buf_putc(b, ',');
    /* the summary's fields, flattened into this document */
    size_t mark = b->len;
    json_summary(&a->repr, b, o, REPR_DETAIL_CHARS);
    if (!b->err) {
        memmove(b->data + mark, b->data + mark + 1, b->len - mark - 1); /* drop its '{' ... */
        b->len -= 2;                                                    /* ... and its '}' */
    }
    pl_buf_putc(b, ',');
    pl_json_key(b, "attrs");
    pl_buf_putc(b, '{');
    for (size_t i = 0; i < attrs.n; i++) {
        if (i)
            pl_buf_putc(b, ',');
        if (PyUnicode_Check(attrs.items[i].name)) {
            json_pystr(b, attrs.items[i].name, "?");
        } else {
            json_repr(&a->repr, b, attrs.items[i].name, KEY_REPR_CHARS);
        }
        pl_buf_putc(b, ':');
        json_repr(&a->repr, b, attrs.items[i].value, ATTR_REPR_CHARS);
    }
    pl_buf_putc(b, '}');
    pl_buf_putc(b, ',');
    pl_json_key(b, "parents_count");
    pl_json_u64(b, nparents);
    pl_buf_putc(b, ',');
    pl_json_key(b, "children_count");
    pl_json_u64(b, nchildren);
    pl_buf_putc(b, '}');
    for (size_t i = 0; i < attrs.n; i++) {
        Py_DECREF(attrs.items[i].name);
        Py_DECREF(attrs.items[i].value);
    }
    free(attrs.items);
    Py_DECREF(o);
    a->status = 200;
    return 0;
}

/* ---- PL_LIVE_PARENTS / PL_LIVE_CHILDREN ---- */

/* ---- PL_LIVE_PATH ---- */

/* Breadth-first search forward from every root at once, over tp_traverse
 * edges, until the target is met: the first meeting is a shortest chain.
 * Iterative, libc arrays; node i's parent index is parent[i]. */
typedef struct bfs {
    PyObject **obj; /* borrowed (snapshot phase) */
    uint32_t *parent;
    size_t n, cap;
    ptrmap seen;
    uintptr_t target;
    uint32_t cur;
    int found, err;
    uint32_t found_parent;
} bfs;

#define NO_PARENT UINT32_MAX

static int bfs_push(bfs *b, PyObject *o, uint32_t parent)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        PyObject **obj = realloc(b->obj, cap * sizeof(*obj));
        if (!obj)
            return -1;
        b->obj = obj;
        uint32_t *par = realloc(b->parent, cap * sizeof(*par));
        if (!par)
            return -1;
        b->parent = par;
        b->cap = cap;
    }
    if (b->n >= NO_PARENT)
        return -1;
    b->obj[b->n] = o;
    b->parent[b->n] = parent;
    b->n++;
    return 0;
}

static int bfs_visit(PyObject *child, void *arg)
{
    bfs *b = arg;
    if (!child)
        return 0;
    if ((uintptr_t)child == b->target) {
        b->found = 1;
        b->found_parent = b->cur;
        return 1;
    }
    /* Objects without tp_traverse refer to nothing we could follow. */
    if (!has_traverse(child))
        return 0;
    int added = ptrmap_add(&b->seen, (uintptr_t)child, 0);
    if (added < 0 || (added == 1 && bfs_push(b, child, b->cur) < 0)) {
        b->err = 1;
        return 1;
    }
    return 0;
}

/* The frames of every thread of this interpreter, with their local
 * variables (owned references). */
typedef struct frame_roots {
    PyObject **frame;
    size_t *first; /* locals of frame i: [first[i], first[i + 1]) */
    size_t n, cap;
    PyObject **name, **value;
    size_t nloc, loccap;
} frame_roots;

static void frame_roots_free(frame_roots *fr)
{
    for (size_t i = 0; i < fr->n; i++)
        Py_XDECREF(fr->frame[i]);
    for (size_t i = 0; i < fr->nloc; i++) {
        Py_DECREF(fr->name[i]);
        Py_DECREF(fr->value[i]);
    }
    free(fr->frame);
    free(fr->first);
    free(fr->name);
    free(fr->value);
    memset(fr, 0, sizeof(*fr));
}

static int add_local(PyObject *name, PyObject *value, void *arg)
{
    frame_roots *fr = arg;
    if (fr->nloc == fr->loccap) {
        size_t cap = fr->loccap ? fr->loccap * 2 : 256;
        PyObject **n = realloc(fr->name, cap * sizeof(*n));
        if (!n)
            return -1;
        fr->name = n;
        PyObject **v = realloc(fr->value, cap * sizeof(*v));
        if (!v)
            return -1;
        fr->value = v;
        fr->loccap = cap;
    }
    fr->name[fr->nloc] = Py_NewRef(name);
    fr->value[fr->nloc] = Py_NewRef(value);
    fr->nloc++;
    return 0;
}

/* Called with gc disabled: materialising a frame object allocates, and a
 * collection could run finalizers (user code) while we hold a thread-state
 * pointer. The frame objects are what sys._current_frames() would create;
 * their locals are read without building f_locals (objects_gc.c). */
static int collect_frames(frame_roots *fr)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts; ts = PyThreadState_Next(ts)) {
        PyFrameObject *f = PyThreadState_GetFrame(ts);
        while (f) {
            if (fr->n + 1 >= fr->cap) {
                size_t cap = fr->cap ? fr->cap * 2 : 64;
                PyObject **a = realloc(fr->frame, cap * sizeof(*a));
                if (!a) {
                    Py_DECREF(f);
                    return -1;
                }
                fr->frame = a;
                size_t *first = realloc(fr->first, (cap + 1) * sizeof(*first));
                if (!first) {
                    Py_DECREF(f);
                    return -1;
                }
                fr->first = first;
                fr->cap = cap;
            }
            fr->frame[fr->n++] = (PyObject *)f;
            f = PyFrame_GetBack(f);
        }
        PyErr_Clear(); /* a frame object that could not be made: the chain stops there */
    }
    for (size_t i = 0; i < fr->n; i++) {
        fr->first[i] = fr->nloc;
        if (pl_live_frame_locals(fr->frame[i], add_local, fr) < 0)
            return -1;
    }
    if (fr->first)
        fr->first[fr->n] = fr->nloc;
    return 0;
}

enum edge_kind { E_ROOT, E_ATTR, E_KEY, E_VALUE, E_ITEM, E_LOCAL, E_NAMED, E_OWNDICT, E_SETITEM, E_REFERENT };

typedef struct edge {
    enum edge_kind kind;
    PyObject *key; /* owned: attribute name, dict key, local name */
    Py_ssize_t index;
    const char *name; /* E_NAMED */
} edge;

struct find_attr {
    PyObject *value;
    PyObject *name; /* owned once found */
};

static int match_attr(PyObject *name, PyObject *value, void *arg)
{
    struct find_attr *f = arg;
    if (value != f->value)
        return 0;
    Py_INCREF(name);
    f->name = name;
    return 1;
}

/* How `p` refers to `c`. When p is frame root number fi of fr (else fi is
 * SIZE_MAX), through one of its locals. Runs no Python code (identity
 * comparisons only). */
static void edge_of(PyObject *p, PyObject *c, const frame_roots *fr, size_t fi, edge *e)
{
    memset(e, 0, sizeof(*e));
    e->kind = E_REFERENT;
    if (fi != SIZE_MAX) {
        for (size_t i = fr->first[fi]; i < fr->first[fi + 1]; i++) {
            if (fr->value[i] == c) {
                e->kind = E_LOCAL;
                e->key = Py_NewRef(fr->name[i]);
                return;
            }
        }
        return;
    }
    if (PyDict_Check(p)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(p, &pos, &k, &v)) {
            if (v == c || k == c) {
                e->kind = v == c ? E_VALUE : E_KEY;
                e->key = Py_NewRef(k);
                return;
            }
        }
        return;
    }
    if (PyList_Check(p) || PyTuple_Check(p)) {
        Py_ssize_t n = PyList_Check(p) ? PyList_GET_SIZE(p) : PyTuple_GET_SIZE(p);
        for (Py_ssize_t i = 0; i < n; i++) {
            if ((PyList_Check(p) ? PyList_GET_ITEM(p, i) : PyTuple_GET_ITEM(p, i)) == c) {
                e->kind = E_ITEM;
                e->index = i;
                return;
            }
        }
    }
    if (PyAnySet_Check(p)) {
        e->kind = E_SETITEM;
        return;
    }
    if (PyCell_Check(p)) {
        e->kind = E_NAMED;
        e->name = "cell";
        return;
    }
    if (own_dict(p) == c) {
        e->kind = E_OWNDICT;
        return;
    }
    struct find_attr fa = {c, NULL};
    own_attrs_each(p, match_attr, &fa);
    if (fa.name) {
        e->kind = E_ATTR;
        e->key = fa.name;
        return;
    }
    e->kind = E_NAMED;
    if (PyFunction_Check(p)) {
        PyFunctionObject *f = (PyFunctionObject *)p;
        if (f->func_globals == c) { e->name = "__globals__"; return; }
        if (f->func_builtins == c) { e->name = "__builtins__"; return; }
        if (f->func_closure == c) { e->name = "__closure__"; return; }
        if (f->func_defaults == c) { e->name = "__defaults__"; return; }
        if (f->func_kwdefaults == c) { e->name = "__kwdefaults__"; return; }
        if (f->func_code == c) { e->name = "__code__"; return; }
        if (f->func_module == c) { e->name = "__module__"; return; }
        if (f->func_annotations == c) { e->name = "__annotations__"; return; }
    } else if (PyMethod_Check(p)) {
        if (PyMethod_GET_SELF(p) == c) { e->name = "__self__"; return; }
        if (PyMethod_GET_FUNCTION(p) == c) { e->name = "__func__"; return; }
    } else if (PyType_Check(p)) {
        PyTypeObject *t = (PyTypeObject *)p;
        if (t->tp_mro == c) { e->name = "__mro__"; return; }
        if (t->tp_bases == c) { e->name = "__bases__"; return; }
        if ((PyObject *)t->tp_base == c) { e->name = "__base__"; return; }
    } else if (PyFrame_Check(p)) {
        PyFrameObject *back = PyFrame_GetBack((PyFrameObject *)p);
        Py_XDECREF(back);
        if ((PyObject *)back == c) { e->name = "f_back"; return; }
    }
    if ((PyObject *)Py_TYPE(p) == c) {
        e->name = "__class__";
        return;
    }
    e->kind = E_REFERENT;
}

static void json_edge(answer *a, const edge *e)
{
    pl_buf *b = a->body;
    pl_buf via = PL_BUF_INIT;
    switch (e->kind) {
    case E_ROOT:
        pl_buf_puts(b, "null");
        return;
    case E_ATTR:
    case E_KEY:
    case E_LOCAL:
        pl_buf_puts(&via, e->kind == E_ATTR ? "attribute " : e->kind == E_KEY ? "key " : "local ");
        repr_into(&a->repr, &via, e->key, KEY_REPR_CHARS);
        break;
    case E_VALUE:
        pl_buf_puts(&via, "value[");
        repr_into(&a->repr, &via, e->key, KEY_REPR_CHARS);
        pl_buf_putc(&via, ']');
        break;
    case E_ITEM:
        pl_buf_printf(&via, "item[%zd]", e->index);
        break;
    case E_NAMED:
        pl_buf_puts(&via, e->name);
        break;
    case E_OWNDICT:
        pl_buf_puts(&via, "__dict__");
        break;
    case E_SETITEM:
        pl_buf_puts(&via, "item");
        break;
    case E_REFERENT:
        pl_buf_puts(&via, "referent");
        break;
    }
    pl_json_str(b, via.data ? via.data : "", via.len);
    pl_buf_free(&via);
}

/* ---- PL_LIVE_PARENTS, PL_LIVE_CHILDREN ---- */

static void json_edge_at(answer *a, size_t i, void *edges)
{
    json_edge(a, &((const edge *)edges)[i]);
}

static int answer_related(answer *a)
{
    objvec rel = {0};
    int err;
    int want_parents = a->q->kind == PL_LIVE_PARENTS;
    PyObject *o = scan_for_id(a, want_parents ? &rel : NULL, &err);
    if (!err && o && !want_parents && collect_children(o, &rel) < 0)
        err = 1;
    if (err || !o) {
        objvec_free(&rel);
        end_snapshot(a);
        if (err) {
            PyErr_NoMemory();
            return -1;
        }
        gone_doc(a);
        return 0;
    }
    size_t first = a->q->offset < rel.n ? (size_t)a->q->offset : rel.n;
    size_t npage = rel.n - first < a->q->limit ? rel.n - first : (size_t)a->q->limit;
    for (size_t i = 0; i < npage; i++)
        Py_INCREF(rel.v[first + i]);
    Py_INCREF(o);
    end_snapshot(a);

    /* How each one refers to the object (parents) or is referred to by it
     * (children), labelled as the path is. */
    edge *edges = calloc(npage ? npage : 1, sizeof(*edges));
    if (edges) {
        for (size_t i = 0; i < npage; i++) {
            PyObject *r = rel.v[first + i];
            edge_of(want_parents ? r : o, want_parents ? o : r, NULL, SIZE_MAX, &edges[i]);
        }
        begin_doc(a);
        pl_buf_putc(a->body, ',');
        pl_json_key(a->body, "id");
        pl_json_u64(a->body, a->q->id);
        json_page_fields(a, rel.n);
        json_objects(a, rel.v + first, npage, json_edge_at, edges);
        pl_buf_putc(a->body, '}');
        for (size_t i = 0; i < npage; i++)
            Py_XDECREF(edges[i].key);
        free(edges);
    }
    for (size_t i = 0; i < npage; i++)
        Py_DECREF(rel.v[first + i]);
    Py_DECREF(o);
    objvec_free(&rel);
    if (!edges) {
        PyErr_NoMemory();
        return -1;
    }
    a->status = 200;
    return 0;
}

/* Forward search: breadth-first from every root at once over tp_traverse
 * edges (an object's own __dict__ counting as one hop), until the target is
 * met. Visits up to the whole heap; used when the backward search gives up.
 * Fills `path` (borrowed, root first) or leaves it empty. 0 or -1 (ENOMEM). */
static int path_forward(answer *a, const frame_roots *frs, PyObject *target, objvec *path)
{
    const frame_roots fr = *frs;
    bfs b = {0};
    int rc = -1;
    b.target = (uintptr_t)target;
    if (ptrmap_init(&b.seen, a->snap.n + fr.n) < 0)
        goto out;
    /* Roots: modules, then the frames of running threads. */
    for (size_t i = 0; i < a->snap.n && !b.found; i++) {
        PyObject *o = a->snap.v[i];
        if (!PyModule_Check(o))
            continue;
        if (o == target) {
            b.found = 1;
            b.found_parent = NO_PARENT;
            break;
        }
        if (ptrmap_add(&b.seen, (uintptr_t)o, 0) == 1 && bfs_push(&b, o, NO_PARENT) < 0)
            goto out;
    }
    size_t frames_at = b.n;
    for (size_t i = 0; i < fr.n && !b.found; i++) {
        if (fr.frame[i] == target) {
            b.found = 1;
            b.found_parent = NO_PARENT;
            break;
        }
        /* A frame already met as a module is impossible; push unconditionally
         * so that node frames_at + i is frame i. */
        ptrmap_add(&b.seen, (uintptr_t)fr.frame[i], 0);
        if (bfs_push(&b, fr.frame[i], NO_PARENT) < 0)
            goto out;
    }
    for (size_t head = 0; head < b.n && !b.found && !b.err; head++) {
        b.cur = (uint32_t)head;
        PyObject *o = b.obj[head];
        if (head >= frames_at && head < frames_at + fr.n) {
            size_t f = head - frames_at;
            for (size_t l = fr.first[f]; l < fr.first[f + 1]; l++)
                if (bfs_visit(fr.value[l], &b))
                    break;
        } else if (has_traverse(o)) {
            /* An object's own __dict__ is one hop, not two: its values
             * first, so that "module -> attribute -> value" competes
             * fairly with slots, managed values and frame locals. */
            PyObject *d = own_dict(o);
            Py_ssize_t pos = 0;
            PyObject *k, *v;
            while (d && !b.found && PyDict_Next(d, &pos, &k, &v))
                bfs_visit(v, &b);
            if (!b.found)
                Py_TYPE(o)->tp_traverse(o, bfs_visit, &b);
        }
    }
    if (b.err)
        goto out;
    if (b.found) {
        /* chain: target, its parent, ..., root; then reversed */
        if (objvec_push(path, target) < 0)
            goto out;
        for (uint32_t i = b.found_parent; i != NO_PARENT; i = b.parent[i])
            if (objvec_push(path, b.obj[i]) < 0)
                goto out;
        for (size_t i = 0, j = path->n - 1; i < j; i++, j--) {
            PyObject *t = path->v[i];
            path->v[i] = path->v[j];
            path->v[j] = t;
        }
    }
    rc = 0;
out:
    if (rc < 0)
        path->n = 0;
    free(b.obj);
    free(b.parent);
    ptrmap_free(&b.seen);
    return rc;
}

/* Backward search: level by level from the target, each level one pass over
 * the snapshot asking every object "do you refer to a node of the current
 * level?" (a probe in a small hash set per edge). A leak's chain is usually
 * a few levels deep, so this costs a few parents-queries, where a forward
 * search would walk the whole heap. Roots are met when a node is a module,
 * a module's __dict__ (the module counts, without an extra hop), or a value
 * in the locals of a function frame of a running thread.
 * Returns 1 found (path filled, borrowed, root first), 0 no root reaches it,
 * 2 gave up after BACK_LEVELS levels, -1 ENOMEM. */
#define BACK_LEVELS 6

#define BACK_FILTER_BITS (1 << 16)
#define BACK_FILTER_BIT(p) ((((uintptr_t)(p)) >> 4) & (BACK_FILTER_BITS - 1))

typedef struct back {
    ptrmap index; /* node address -> node index: every node met */
    PyObject **node;
    uint32_t *toward; /* index of the node it refers to, toward the target */
    size_t n, cap;
    size_t lo, hi; /* the current level: nodes [lo, hi) */
    uint32_t hit;
    /* One bit per address hash of every node met: most pointers of the heap
     * are rejected here, in L1, before a probe of `index`. */
    uint64_t filter[BACK_FILTER_BITS / 64];
} back;

static int back_push(back *b, PyObject *o, uint32_t toward)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        PyObject **node = realloc(b->node, cap * sizeof(*node));
        if (!node)
            return -1;
        b->node = node;
        uint32_t *tw = realloc(b->toward, cap * sizeof(*tw));
        if (!tw)
            return -1;
        b->toward = tw;
        b->cap = cap;
    }
    if (b->n >= NO_PARENT || ptrmap_add(&b->index, (uintptr_t)o, (uint32_t)b->n) < 0)
        return -1;
    b->node[b->n] = o;
    b->toward[b->n] = toward;
    b->n++;
    b->filter[BACK_FILTER_BIT(o) / 64] |= (uint64_t)1 << (BACK_FILTER_BIT(o) % 64);
    return 0;
}

static inline int back_lookup(const back *b, PyObject *o, uint32_t *idx)
{
    if (!(b->filter[BACK_FILTER_BIT(o) / 64] & ((uint64_t)1 << (BACK_FILTER_BIT(o) % 64))))
        return 0;
    size_t mask = b->index.cap - 1;
    for (size_t i = ptr_hash((uintptr_t)o) & mask;; i = (i + 1) & mask) {
        if (b->index.keys[i] == (uintptr_t)o) {
            *idx = b->index.vals[i];
            return 1;
        }
        if (b->index.keys[i] == 0)
            return 0;
    }
}

static int back_visit(PyObject *child, void *arg)
{
    back *b = arg;
    uint32_t idx;
    if (child && back_lookup(b, child, &idx) && idx >= b->lo && idx < b->hi) {
        b->hit = idx;
        return 1;
    }
    return 0;
}

static int map_value(const ptrmap *m, PyObject *o, uint32_t *val)
{
    if (!m->cap)
        return 0;
    size_t mask = m->cap - 1;
    for (size_t i = ptr_hash((uintptr_t)o) & mask;; i = (i + 1) & mask) {
        if (m->keys[i] == (uintptr_t)o) {
            *val = m->vals[i];
            return 1;
        }
        if (m->keys[i] == 0)
            return 0;
    }
}

/* Node `idx` was just met: is it, or does it make, a root? Pushes the root
 * (module of a module dict, frame of a local) and returns its index + 1, or 0. */
static size_t back_root(back *b, uint32_t idx, const ptrmap *moddicts, const ptrmap *locals_of,
                        const frame_roots *fr, const objvec *modules, int *err)
{
    PyObject *o = b->node[idx];
    uint32_t v;
    if (PyModule_Check(o))
        return (size_t)idx + 1;
    if (map_value(moddicts, o, &v)) {
        if (back_push(b, modules->v[v], idx) < 0)
            *err = 1;
        return b->n;
    }
    if (map_value(locals_of, o, &v)) {
        if (back_push(b, fr->frame[v], idx) < 0)
            *err = 1;
        return b->n;
    }
    return 0;
}

/* The first backward level records every object's referents (a CSR over
 * the snapshot), so that later levels scan flat arrays instead of calling
 * tp_traverse again: about four times faster per level. Past CSR_MAX_EDGES
 * (64 MB of pointers) recording stops and later levels traverse again. */
#define CSR_MAX_EDGES ((size_t)8 << 20)

typedef struct csr {
    PyObject **edge;
    size_t n, cap;
    size_t *start; /* referents of snapshot object i: edge[start[i] .. start[i + 1]) */
    int on;
} csr;

struct record_ctx {
    back *b;
    csr *c;
};

static int record_visit(PyObject *child, void *arg)
{
    struct record_ctx *r = arg;
    csr *c = r->c;
    if (c->on && c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1 << 16;
        PyObject **e = cap <= CSR_MAX_EDGES ? realloc(c->edge, cap * sizeof(*e)) : NULL;
        if (e) {
            c->edge = e;
            c->cap = cap;
        } else {
            c->on = 0;
        }
    }
    if (c->on)
        c->edge[c->n++] = child;
    if (r->b->hit == NO_PARENT)
        back_visit(child, r->b);
    return !c->on && r->b->hit != NO_PARENT; /* nothing left to record or find */
}

static int path_backward(answer *a, const frame_roots *fr, PyObject *target, objvec *path)
{
    back b;
    memset(&b, 0, sizeof b);
    csr c;
    memset(&c, 0, sizeof c);
    ptrmap moddicts = {0}, locals_of = {0};
    objvec modules = {0};
    int rc = -1, err = 0;
    size_t root = 0;
    if (ptrmap_init(&b.index, 256) < 0 || ptrmap_init(&moddicts, 1024) < 0 || ptrmap_init(&locals_of, 256) < 0)
        goto out;
    for (size_t i = 0; i < a->snap.n; i++) {
        PyObject *o = a->snap.v[i];
        if (!PyModule_Check(o))
            continue;
        PyObject *d = PyModule_GetDict(o);
        if (d && ptrmap_add(&moddicts, (uintptr_t)d, (uint32_t)modules.n) < 0)
            goto out;
        if (objvec_push(&modules, o) < 0)
            goto out;
    }
    /* A module-level frame lists no locals: its module is the root. */
    for (size_t f = 0; f < fr->n; f++)
        for (size_t l = fr->first[f]; l < fr->first[f + 1]; l++)
            if (ptrmap_add(&locals_of, (uintptr_t)fr->value[l], (uint32_t)f) < 0)
                goto out;
    if (back_push(&b, target, NO_PARENT) < 0)
        goto out;
    root = back_root(&b, 0, &moddicts, &locals_of, fr, &modules, &err);
    b.lo = 0;
    b.hi = b.n;
    c.start = malloc((a->snap.n + 1) * sizeof(*c.start));
    c.cap = a->snap.n * 3 < CSR_MAX_EDGES ? a->snap.n * 3 : CSR_MAX_EDGES;
    c.edge = c.cap ? malloc(c.cap * sizeof(*c.edge)) : NULL;
    c.on = c.start != NULL && c.edge != NULL;
    struct record_ctx rec = {&b, &c};
    for (int level = 0; !root && !err; level++) {
        if (level == BACK_LEVELS) {
            rc = 2;
            goto out;
        }
        int csr_ready = level > 0 && c.on;
        for (size_t i = 0; i < a->snap.n && !root && !err; i++) {
            PyObject *o = a->snap.v[i];
            uint32_t seen;
            if (level == 0 && c.on)
                c.start[i] = c.n;
            /* With the CSR, an object is not even touched (a cache miss
             * each, on a big heap) unless it refers to something. */
            if (csr_ready ? c.start[i] == c.start[i + 1] : !has_traverse(o))
                continue;
            if (back_lookup(&b, o, &seen))
                continue;
            b.hit = NO_PARENT;
            if (level == 0) {
                Py_TYPE(o)->tp_traverse(o, record_visit, &rec);
            } else if (csr_ready) {
                for (size_t e = c.start[i]; e < c.start[i + 1]; e++)
                    if (back_visit(c.edge[e], &b))
                        break;
            } else {
                Py_TYPE(o)->tp_traverse(o, back_visit, &b);
            }
            if (b.hit == NO_PARENT)
                continue;
            if (back_push(&b, o, b.hit) < 0) {
                err = 1;
                break;
            }
            root = back_root(&b, (uint32_t)(b.n - 1), &moddicts, &locals_of, fr, &modules, &err);
        }
        if (level == 0 && c.on)
            c.start[a->snap.n] = c.n;

        if (b.n == b.hi && !root) { /* nothing refers to the last level */
            rc = 0;
            goto out;
        }
        b.lo = b.hi;
        b.hi = b.n;
    }
    if (err)
        goto out;
    for (uint32_t i = (uint32_t)(root - 1); i != NO_PARENT; i = b.toward[i])
        if (objvec_push(path, b.node[i]) < 0)
            goto out;
    rc = 1;
out:
    if (rc < 0)
        path->n = 0;
    free(b.node);
    free(b.toward);
    ptrmap_free(&b.index);
    ptrmap_free(&moddicts);
    ptrmap_free(&locals_of);
    objvec_free(&modules);
    free(c.edge);
    free(c.start);
    return rc;
}

static int answer_path(answer *a)
{
    frame_roots fr = {0};
    objvec path = {0}; /* borrowed during the search, owned after */
    edge *edges = NULL;
    int rc = -1;

    a->gc_was_enabled = PyGC_Disable();
    if (collect_frames(&fr) < 0) {
        PyErr_NoMemory();
        goto out;
    }
    if (begin_snapshot(a) < 0)
        goto out;
    PyObject *target = find_object(a);
    if (!target) {
        end_snapshot(a);
        gone_doc(a);
        rc = 0;
        goto out;
    }
    int found = path_backward(a, &fr, target, &path);
    /* An untracked target may sit in an untracked container that the
     * snapshot does not hold: only the forward search follows those. */
    if (found == 2 || (found == 0 && !PyObject_GC_IsTracked(target)))
        found = path_forward(a, &fr, target, &path) < 0 ? -1 : 1;
    if (found < 0) {
        end_snapshot(a);
        PyErr_NoMemory();
        path.n = 0;
        goto out;
    }
    for (size_t i = 0; i < path.n; i++)
        Py_INCREF(path.v[i]);
    end_snapshot(a);

    /* Labels, then "object's own __dict__" + "value['k']" folded into
     * "attribute 'k'", as a user reads it. */
    edges = calloc(path.n ? path.n : 1, sizeof(*edges));
    if (!edges) {
        PyErr_NoMemory();
        goto out;
    }
    for (size_t i = 1; i < path.n; i++) {
        size_t fi = SIZE_MAX;
        for (size_t f = 0; i == 1 && f < fr.n; f++)
            if (fr.frame[f] == path.v[0])
                fi = f;
        edge_of(path.v[i - 1], path.v[i], &fr, fi, &edges[i]);
    }
    size_t out_n = 0;
    for (size_t i = 0; i < path.n; i++) {
        if (i >= 1 && i + 1 < path.n && edges[i].kind == E_OWNDICT && edges[i + 1].kind == E_VALUE &&
            PyUnicode_Check(edges[i + 1].key)) {
            Py_DECREF(path.v[i]);
            edges[i + 1].kind = E_ATTR;
            continue;
        }
        path.v[out_n] = path.v[i];
        edges[out_n] = edges[i];
        out_n++;
    }
    path.n = out_n;

    pl_buf *body = a->body;
    begin_doc(a);
    pl_buf_putc(body, ',');
    pl_json_key(body, "id");
    pl_json_u64(body, a->q->id);
    pl_buf_putc(body, ',');
    pl_json_key(body, "found");
    pl_json_bool(body, path.n > 0);
    pl_buf_putc(body, ',');
    pl_json_key(body, "path");
    pl_buf_putc(body, '[');
    for (size_t i = 0; i < path.n; i++) {
        if (i)
            pl_buf_putc(body, ',');
        pl_buf_putc(body, '{');
        pl_json_key(body, "object");
        json_summary(&a->repr, body, path.v[i], REPR_LIST_CHARS);
        pl_buf_putc(body, ',');
        pl_json_key(body, "via");
        json_edge(a, &edges[i]);
        pl_buf_putc(body, '}');
    }
    pl_buf_puts(body, "]}");
    a->status = 200;
    rc = 0;
    goto out;

out:
    if (edges) {
        for (size_t i = 0; i < path.n; i++)
            Py_XDECREF(edges[i].key);
        free(edges);
    }
    for (size_t i = 0; i < path.n; i++)
        Py_DECREF(path.v[i]);
    objvec_free(&path);
    frame_roots_free(&fr);
    if (a->gc_was_enabled) {
        PyGC_Enable();
        a->gc_was_enabled = 0;
    }
    return rc;
}

/* ------------------------------------------------------------------ */

static int is_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* Answers q with the GIL held. Returns 0 with a body and a->status, or -1
 * with an exception set. */
static int answer_locked(answer *a)
{
    const pl_live_query *q = a->q;
    if (q->kind != PL_LIVE_LIST && q->kind != PL_LIVE_DETAIL && q->kind != PL_LIVE_PARENTS &&
        q->kind != PL_LIVE_CHILDREN && q->kind != PL_LIVE_PATH) {
        error_doc(a, 400, "unknown live-object query");
        return 0;
    }
    if (q->offset > MAX_OFFSET) {
        error_doc(a, 400, "offset must be 0..1000000000");
        return 0;
    }
    if (q->limit < 1 || q->limit > MAX_LIMIT) {
        error_doc(a, 400, "limit must be 1..10000");
        return 0;
    }
    if (q->kind == PL_LIVE_LIST) {
        size_t glen = strnlen(q->group, sizeof q->group);
        if (glen == 0 || glen == sizeof q->group) {
            error_doc(a, 400, "group must be 1..1024 bytes");
            return 0;
        }
        return answer_list(a);
    }
    if (q->kind == PL_LIVE_DETAIL)
        return answer_detail(a);
    if (q->kind == PL_LIVE_PATH)
        return answer_path(a);
    return answer_related(a);
}

/* See pyext.h / pl_live_fn in handler.h. ctx is unused (may be NULL).
 * Thread-safe: every call takes the GIL for its whole work; the body is the
 * caller's. Answers 503 once the interpreter is finalizing, because a
 * foreign thread must not wait for the GIL then. */
int pl_live_answer(void *ctx, const pl_live_query *q, pl_buf *body, int *status)
{
    answer a;
    memset(&a, 0, sizeof a);
    a.q = q;
    a.status = 500;
    size_t start = body->len;
    if (!Py_IsInitialized() || is_finalizing()) {
        *status = 503;
        pl_buf_printf(body, "{\"pid\":%ld,\"error\":\"the interpreter is shutting down\"}", (long)getpid());
        return body->err ? ENOMEM : 0;
    }
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb); /* keep whatever the thread had pending */
    a.repr.deadline = now_s() + REPR_BUDGET_S;
    /* error_doc rewrites from 0: answer into a fresh buffer, then append. */
    pl_buf doc = PL_BUF_INIT;
    a.body = &doc;
    int rc = answer_locked(&a);
    if (rc < 0) {
        int nomem = PyErr_ExceptionMatches(PyExc_MemoryError);
        PyErr_Clear();
        error_doc(&a, 500, nomem ? "out of memory" : "live-object query failed");
    }
    PyErr_Restore(et, ev, tb);
    PyGILState_Release(g);
    body->len = start;
    if (doc.err) {
        pl_buf_free(&doc);
        *status = 500;
        return ENOMEM;
    }
    pl_buf_append(body, doc.data, doc.len);
    pl_buf_free(&doc);
    *status = a.status;
    return body->err ? ENOMEM : 0;
}

/* _pyloot.live_query(kind, group, id, offset, limit) -> (status, body) */
static PyObject *py_live_query(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"kind", "group", "id", "offset", "limit", NULL};
    int kind;
    const char *group = "";
    Py_ssize_t glen = 0;
    PyObject *id_obj = NULL, *off_obj = NULL, *lim_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "i|z#OOO:live_query", kwlist, &kind, &group, &glen,
                                     &id_obj, &off_obj, &lim_obj))
        return NULL;
    pl_live_query *q = calloc(1, sizeof(*q));
    if (!q)
        return PyErr_NoMemory();
    q->kind = (pl_live_kind)kind;
    q->limit = 100;
    const char *bad = NULL;
    if (group) {
        if ((size_t)glen > PL_TYPE_NAME_MAX || memchr(group, 0, (size_t)glen))
            bad = "group must be 1..1024 bytes";
        else
            memcpy(q->group, group, (size_t)glen);
    }
    PyObject *nums[3] = {id_obj, off_obj, lim_obj};
    uint64_t *dst[3] = {&q->id, &q->offset, &q->limit};
    static const char *names[3] = {"id", "offset", "limit"};
    char msg[64];
    for (int i = 0; i < 3 && !bad; i++) {
        if (!nums[i] || nums[i] == Py_None)
            continue;
        if (!PyLong_Check(nums[i])) {
            free(q);
            return PyErr_Format(PyExc_TypeError, "%s must be an int", names[i]);
        }
        unsigned long long v = PyLong_AsUnsignedLongLong(nums[i]);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            snprintf(msg, sizeof msg, "%s must be 0..2**64-1", names[i]);
            bad = msg;
        }
        *dst[i] = v;
    }
    pl_buf body = PL_BUF_INIT;
    int status = 400;
    int rc = 0;
    if (bad) {
        pl_buf_printf(&body, "{\"pid\":%ld,\"error\":", (long)getpid());
        pl_json_cstr(&body, bad);
        rc = pl_buf_putc(&body, '}');
    } else {
        /* The same path as a request thread: the GIL is released here and
         * taken back with PyGILState_Ensure inside. */
        Py_BEGIN_ALLOW_THREADS
        rc = pl_live_answer(NULL, q, &body, &status);
        Py_END_ALLOW_THREADS
    }
    free(q);
    if (rc) {
        pl_buf_free(&body);
        return PyErr_NoMemory();
    }
    PyObject *res = Py_BuildValue("(iy#)", status, body.data ? body.data : "", (Py_ssize_t)body.len);
    pl_buf_free(&body);
    return res;
}

static PyMethodDef objects_methods[] = {
    {"live_query", (PyCFunction)(void (*)(void))py_live_query, METH_VARARGS | METH_KEYWORDS,
     "live_query(kind, group='', id=0, offset=0, limit=100) -> (status, body)\n\n"
     "Answers a live-object query about this process as the HTTP routes do\n"
     "(kind: 1 list, 2 detail, 3 parents, 4 children, 5 path). body is JSON."},
    {NULL, NULL, 0, NULL},
};

/* Adds live_query and the LIVE_* constants to the module. Returns 0 or -1. */
int pl_objects_module_exec(PyObject *module)
{
    if (PyModule_AddFunctions(module, objects_methods) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "LIVE_LIST", PL_LIVE_LIST) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_DETAIL", PL_LIVE_DETAIL) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_PARENTS", PL_LIVE_PARENTS) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_CHILDREN", PL_LIVE_CHILDREN) < 0 ||
        PyModule_AddIntConstant(module, "LIVE_PATH", PL_LIVE_PATH) < 0)
        return -1;
    return 0;
}
