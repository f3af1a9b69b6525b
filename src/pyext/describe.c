/* describe.c: bounded, guarded repr and JSON summaries (describe.h). */
#include "describe.h"

#include <string.h>

#include "held_secrets.h"
#include "pyloot/json.h"
#include "pyloot/redact.h"
#include "sizeof.h"
#include "task_info.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* bounded, guarded repr                                                */


/* Deadline of the user repr() running on this thread; read by repr_trace. */
static _Thread_local double repr_call_deadline;

/* Answers running on this thread: an answer's user repr() may ask pyloot a
 * live query in turn (PyLoot's own objects, a debugging __repr__).
 * `unwinding` is set when such a chain had to be cut (too deep, or out of
 * time): every repr() of the chain then reports the failure as it returns,
 * up to the repr() of the outermost answer that started it. */
static _Thread_local struct {
    int depth;         /* answers entered and not left */
    double deadline;   /* of the outermost answer */
    int unwinding;
} nesting;

int pl_answer_enter(double *deadline)
{
    double d = pl_now_s() + PL_REPR_BUDGET_S;
    if (nesting.depth == 0) {
        nesting.deadline = d;
        nesting.unwinding = 0;
    } else if (nesting.deadline < d) {
        d = nesting.deadline;
    }
    if (nesting.depth >= PL_LIVE_MAX_NESTING) {
        nesting.unwinding = 1;
        return -1;
    }
    nesting.depth++;
    *deadline = d;
    return 0;
}

void pl_answer_leave(void)
{
    if (nesting.depth > 0)
        nesting.depth--;
}

/* A C trace function: stops Python code of a repr() that runs too long by
 * raising in it. Installed only around user repr() calls, the previous
 * tracer (debugger, coverage) restored right after. */
static int repr_trace(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    if (pl_now_s() > repr_call_deadline) {
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
        if (pl_now_s() < repr_call_deadline)
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
static void repr_leaf(pl_reprer *r, pl_buf *out, PyObject *o, size_t cap)
{
    PyTypeObject *tp = Py_TYPE(o);
    int user = (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) != 0;
    /* asyncio's own repr of a task runs Python code, and a subclass's
     * properties with it: pyloot writes it from the C getters instead. */
    if (pl_aio_repr(out, o))
        return;
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
    double t0 = pl_now_s();
    if (user && t0 > r->deadline) {
        pl_buf_puts(out, "<repr skipped: time budget exhausted>");
        nesting.unwinding = nesting.depth > 1;
        return;
    }
    PyObject *s;
    if (user) {
        PyThreadState *ts = PyThreadState_Get();
        Py_tracefunc old_fn = ts->c_tracefunc;
        PyObject *old_obj = ts->c_traceobj;
        Py_XINCREF(old_obj);
        double saved = repr_call_deadline;
        repr_call_deadline = t0 + PL_REPR_ONE_S < r->deadline ? t0 + PL_REPR_ONE_S : r->deadline;
        PyEval_SetTrace(repr_trace, NULL);
        s = PyObject_Repr(o);
        if (!s) {
            put_repr_error(out, cap); /* str() of the exception under the same deadline */
        } else if (nesting.unwinding) {
            /* This repr() asked pyloot, and the chain of queries it started
             * was cut: whatever it made of the answer, it failed. */
            Py_CLEAR(s);
            pl_buf_printf(out, "<repr failed: RecursionError: a repr() asked pyloot about objects more "
                               "than %d levels deep>", PL_LIVE_MAX_NESTING - 1);
        }
        if (!s) /* a failure in a nested answer fails its askers; the outermost ends the chain */
            nesting.unwinding = nesting.depth > 1;
        PyEval_SetTrace(old_fn, old_obj);
        PyErr_Clear(); /* an audit hook refusing sys.settrace: nothing we can do */
        Py_XDECREF(old_obj);
        repr_call_deadline = saved;
    } else {
        s = PyObject_Repr(o);
        if (!s) {
            repr_call_deadline = pl_now_s() + PL_REPR_ONE_S;
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

static void repr_into(pl_reprer *r, pl_buf *out, PyObject *o, size_t cap);

static int repr_enter(pl_reprer *r, PyObject *o)
{
    for (int i = 0; i < r->depth; i++)
        if (r->stack[i] == o)
            return 0;
    if (r->depth == PL_REPR_DEPTH)
        return 0;
    r->stack[r->depth++] = o;
    return 1;
}

/* Appends repr(o), stopping once out holds `cap` bytes. The builtin
 * containers (exact list, tuple, dict, set, frozenset) are written here,
 * item by item, so a million-item list costs only what is shown and a
 * self-referencing one prints "[...]". */
static void repr_into(pl_reprer *r, pl_buf *out, PyObject *o, size_t cap)
{
    if (out->err)
        return;
    if (pl_held_secret(r->held, o)) {
        pl_buf_puts(out, PL_REDACTED);
        return;
    }
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
            if (pl_secret_name(k))
                pl_buf_puts(out, PL_REDACTED);
            else
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

/* Appends repr(o) as UTF-8 text, cut to max_chars characters ("…" marks the cut). */
void pl_repr_text(pl_reprer *r, pl_buf *out, PyObject *o, size_t max_chars)
{
    pl_buf text = PL_BUF_INIT;
    repr_into(r, &text, o, max_chars * 4 + 16);
    if (text.err) {
        pl_buf_free(&text);
        pl_buf_puts(out, "<repr failed: out of memory>");
        return;
    }
    size_t cut = utf8_prefix(text.data ? text.data : "", text.len, max_chars);
    if (cut < text.len) {
        text.len = cut;
        pl_buf_puts(&text, "\xE2\x80\xA6");
    }
    pl_buf_append(out, text.data ? text.data : "", text.len);
    pl_buf_free(&text);
}

/* Writes repr(o) as a JSON string, cut to max_chars characters ("…" marks the cut). */
void pl_json_repr(pl_reprer *r, pl_buf *body, PyObject *o, size_t max_chars)
{
    pl_buf text = PL_BUF_INIT;
    pl_repr_text(r, &text, o, max_chars);
    if (text.err)
        pl_json_cstr(body, "<repr failed: out of memory>");
    else
        pl_json_str(body, text.data ? text.data : "", text.len);
    pl_buf_free(&text);
}

/* ------------------------------------------------------------------ */
/* summaries                                                            */

void pl_json_pystr(pl_buf *b, PyObject *s, const char *fallback)
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
        pl_json_pystr(b, ht->ht_qualname, tp->tp_name);
        pl_buf_putc(b, ',');
        pl_json_key(b, "type_module");
        PyObject *mod = tp->tp_dict ? PyDict_GetItemString(tp->tp_dict, "__module__") : NULL;
        pl_json_pystr(b, mod, "builtins");
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
            pl_json_pystr(b, n, "module");
            return;
        }
    } else if (PyType_Check(o)) {
        PyTypeObject *t = (PyTypeObject *)o;
        if (t->tp_flags & Py_TPFLAGS_HEAPTYPE)
            pl_json_pystr(b, ((PyHeapTypeObject *)t)->ht_qualname, t->tp_name);
        else
            pl_json_cstr(b, t->tp_name);
        return;
    } else if (PyFunction_Check(o)) {
        pl_json_pystr(b, ((PyFunctionObject *)o)->func_qualname, "function");
        return;
    } else if (PyCFunction_Check(o)) {
        pl_json_cstr(b, ((PyCFunctionObject *)o)->m_ml->ml_name);
        return;
    } else if (PyCode_Check(o)) {
        pl_json_pystr(b, ((PyCodeObject *)o)->co_name, "code");
        return;
    }
    PyTypeObject *tp = Py_TYPE(o);
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        pl_json_pystr(b, ((PyHeapTypeObject *)tp)->ht_qualname, tp->tp_name);
    } else {
        const char *dot = strrchr(tp->tp_name, '.');
        pl_json_cstr(b, dot ? dot + 1 : tp->tp_name);
    }
}

int pl_secret_name(PyObject *name)
{
    if (!name || !PyUnicode_Check(name))
        return 0;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(name, &n);
    if (!s) {
        PyErr_Clear();
        return 0;
    }
    return pl_redact_name(pl_redact_current(), s, (size_t)n);
}

void pl_json_summary(pl_reprer *r, pl_buf *b, PyObject *o, size_t repr_chars)
{
    pl_json_summary_as(r, b, o, repr_chars, 0);
}

void pl_json_summary_as(pl_reprer *r, pl_buf *b, PyObject *o, size_t repr_chars, int redacted)
{
    pl_buf_putc(b, '{');
    pl_json_key(b, "id");
    pl_json_u64_str(b, (uint64_t)(uintptr_t)o); /* 64-bit: a string, as starts are */
    pl_buf_putc(b, ',');
    pl_json_key(b, "obj_name");
    json_obj_name(b, o);
    pl_buf_putc(b, ',');
    json_type_fields(b, Py_TYPE(o));
    pl_buf_putc(b, ',');
    pl_json_key(b, "repr");
    if (redacted || pl_held_secret(r->held, o))
        pl_json_cstr(b, PL_REDACTED);
    else
        pl_json_repr(r, b, o, repr_chars);
    pl_buf_putc(b, ',');
    pl_json_key(b, "size");
    pl_json_u64(b, pl_sizeof(o));
    pl_buf_putc(b, '}');
}

