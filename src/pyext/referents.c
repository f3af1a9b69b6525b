/* referents.c: the one labeller of "how does p hold c" (referents.h). */
#include "referents.h"

#include <string.h>

#include "heap.h"

#define KEY_REPR_CHARS 200 /* a key in a label */

typedef struct each {
    pl_referent_fn fn;
    void *arg;
    pl_edge e;
} each;

static int emit(each *x, PyObject *child, pl_edge_kind kind, const char *field, PyObject *key, Py_ssize_t index)
{
    if (!child)
        return 0;
    x->e.kind = kind;
    x->e.field = field;
    x->e.key = key;
    x->e.index = index;
    return x->fn(child, &x->e, x->arg);
}

static int field(each *x, PyObject *child, const char *name)
{
    return emit(x, child, PL_EDGE_FIELD, name, NULL, 0);
}

static int on_local(PyObject *name, PyObject *value, void *arg)
{
    return emit(arg, value, PL_EDGE_LOCAL, NULL, name, 0);
}

static int on_frame_field(const char *name, PyObject *local, PyObject *value, void *arg)
{
    if (name)
        return emit(arg, value, PL_EDGE_FIELD, name, NULL, 0);
    return local ? emit(arg, value, PL_EDGE_LOCAL, NULL, local, 0) : 0;
}

static int on_attr(PyObject *name, PyObject *value, void *arg)
{
    return emit(arg, value, PL_EDGE_ATTRIBUTE, NULL, name, 0);
}

static int on_element(PyObject *elem, void *arg)
{
    return emit(arg, elem, PL_EDGE_ELEMENT, NULL, NULL, 0);
}

#define TRY(call)                                                                                          \
    do {                                                                                                   \
        int rc_ = (call);                                                                                  \
        if (rc_)                                                                                           \
            return rc_;                                                                                    \
    } while (0)

static int function_fields(each *x, PyFunctionObject *f)
{
    TRY(field(x, f->func_globals, "__globals__"));
    TRY(field(x, f->func_builtins, "__builtins__"));
    TRY(field(x, f->func_closure, "__closure__"));
    TRY(field(x, f->func_defaults, "__defaults__"));
    TRY(field(x, f->func_kwdefaults, "__kwdefaults__"));
    TRY(field(x, f->func_code, "__code__"));
    TRY(field(x, f->func_module, "__module__"));
    TRY(field(x, f->func_annotations, "__annotations__"));
    TRY(field(x, f->func_name, "__name__"));
    TRY(field(x, f->func_qualname, "__qualname__"));
    TRY(field(x, f->func_doc, "__doc__"));
#if PY_VERSION_HEX >= 0x030C0000
    TRY(field(x, f->func_typeparams, "__type_params__"));
#endif
    return 0;
}

static int frame_fields(each *x, PyObject *frame)
{
    int rc = pl_live_frame_locals(frame, on_local, x);
    if (rc && rc != PL_FRAME_MODULE_LEVEL)
        return rc;
    /* What the frame holds as stored (a cell variable's cell, f_locals,
     * f_func): the edges of an object graph. */
    TRY(pl_frame_fields(frame, 0, on_frame_field, x));
    TRY(field(x, pl_frame_back(frame), "f_back"));
    PyFrameObject *f = (PyFrameObject *)frame;
    PyCodeObject *code = PyFrame_GetCode(f);
    Py_XDECREF(code); /* the frame keeps it alive */
    TRY(field(x, (PyObject *)code, "f_code"));
    PyObject *globals = PyFrame_GetGlobals(f);
    Py_XDECREF(globals); /* idem */
    PyErr_Clear();
    TRY(field(x, globals, "f_globals"));
    return 0;
}

int pl_referents_each(PyObject *p, pl_referent_fn fn, void *arg)
{
    each x = {fn, arg, {0}};
    PyTypeObject *tp = Py_TYPE(p);
    if ((tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && tp->tp_base == &PyBaseObject_Type) {
        /* A class whose solid base is object (most of a heap): none of the
         * kinds below, its attributes alone, without asking each. */
        TRY(field(&x, pl_own_dict(p), "__dict__"));
        TRY(pl_own_attrs(p, on_attr, &x));
        return field(&x, (PyObject *)tp, "__class__");
    }
    if (PyFrame_Check(p)) {
        TRY(frame_fields(&x, p));
    } else if (PyList_Check(p)) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(p); i++)
            TRY(emit(&x, PyList_GET_ITEM(p, i), PL_EDGE_ITEM, NULL, NULL, i));
    } else if (PyTuple_Check(p)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(p); i++)
            TRY(emit(&x, PyTuple_GET_ITEM(p, i), PL_EDGE_ITEM, NULL, NULL, i));
    } else if (PyDict_Check(p)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(p, &pos, &k, &v)) {
            TRY(emit(&x, v, PL_EDGE_VALUE, NULL, k, 0));
            TRY(emit(&x, k, PL_EDGE_KEY, NULL, k, 0));
        }
    } else if (PyAnySet_Check(p)) {
        TRY(pl_set_elements(p, on_element, &x));
    } else if (PyCell_Check(p)) {
        TRY(field(&x, PyCell_GET(p), "cell_contents"));
    }

    if (PyType_Check(p)) {
        PyTypeObject *t = (PyTypeObject *)p;
        TRY(field(&x, t->tp_dict, "__dict__"));
        TRY(pl_own_attrs(p, on_attr, &x));
        TRY(field(&x, t->tp_mro, "__mro__"));
        TRY(field(&x, t->tp_bases, "__bases__"));
        TRY(field(&x, (PyObject *)t->tp_base, "__base__"));
        if (t->tp_flags & Py_TPFLAGS_HEAPTYPE)
            TRY(field(&x, ((PyHeapTypeObject *)t)->ht_module, "__module__"));
    } else if (!PyFrame_Check(p)) {
        TRY(field(&x, pl_own_dict(p), "__dict__"));
        TRY(pl_own_attrs(p, on_attr, &x));
    }

    if (PyFunction_Check(p)) {
        TRY(function_fields(&x, (PyFunctionObject *)p));
    } else if (PyMethod_Check(p)) {
        TRY(field(&x, PyMethod_GET_SELF(p), "__self__"));
        TRY(field(&x, PyMethod_GET_FUNCTION(p), "__func__"));
    } else if (PyCFunction_Check(p)) {
        TRY(field(&x, ((PyCFunctionObject *)p)->m_self, "__self__"));
        TRY(field(&x, ((PyCFunctionObject *)p)->m_module, "__module__"));
    } else if (tp == &_PyWeakref_RefType) {
        TRY(field(&x, ((PyWeakReference *)p)->wr_callback, "__callback__"));
    } else if (tp == &PyGetSetDescr_Type || tp == &PyMemberDescr_Type || tp == &PyMethodDescr_Type ||
               tp == &PyClassMethodDescr_Type || tp == &PyWrapperDescr_Type) {
        /* These types cannot be subclassed (no Py_TPFLAGS_BASETYPE): the
         * exact test, with no walk of every instance's MRO. */
        TRY(field(&x, (PyObject *)((PyDescrObject *)p)->d_type, "__objclass__"));
        TRY(field(&x, ((PyDescrObject *)p)->d_name, "__name__"));
    }
    return field(&x, (PyObject *)tp, "__class__");
}

struct find {
    PyObject *c;
    pl_edge *e;
};

static int find_one(PyObject *child, const pl_edge *e, void *arg)
{
    struct find *f = arg;
    if (child != f->c)
        return 0;
    *f->e = *e;
    Py_XINCREF(f->e->key);
    return 1;
}

int pl_edge_find(PyObject *p, PyObject *c, pl_edge *e)
{
    memset(e, 0, sizeof *e);
    struct find f = {c, e};
    if (pl_referents_each(p, find_one, &f) == 1)
        return 1;
    memset(e, 0, sizeof *e);
    return 0;
}

void pl_edge_clear(pl_edge *e)
{
    Py_CLEAR(e->key);
    memset(e, 0, sizeof *e);
}

/* Byte length of the first `max_chars` code points of UTF-8 text. */
static size_t utf8_prefix(const char *s, size_t len, size_t max_chars)
{
    size_t chars = 0, i = 0;
    while (i < len && chars < max_chars) {
        unsigned char c = (unsigned char)s[i];
        i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        chars++;
    }
    return i < len ? i : len;
}

/* repr() of a key whose repr runs no Python code; "<type object at 0x..>"
 * otherwise. Appends to out; depth bounds nested tuples. */
static void key_repr(PyObject *o, pl_buf *out, int depth)
{
    PyTypeObject *tp = Py_TYPE(o);
    if (tp == &PyTuple_Type && depth < 3) {
        Py_ssize_t n = PyTuple_GET_SIZE(o);
        pl_buf_putc(out, '(');
        for (Py_ssize_t i = 0; i < n && out->len < KEY_REPR_CHARS * 4; i++) {
            if (i)
                pl_buf_puts(out, ", ");
            key_repr(PyTuple_GET_ITEM(o, i), out, depth + 1);
        }
        pl_buf_puts(out, n == 1 ? ",)" : ")");
        return;
    }
    if (tp == &PyUnicode_Type || tp == &PyBytes_Type || tp == &PyLong_Type || tp == &PyFloat_Type ||
        tp == &PyComplex_Type || tp == &PyBool_Type || o == Py_None || o == Py_Ellipsis) {
        PyObject *head = NULL;
        if (tp == &PyUnicode_Type && PyUnicode_GET_LENGTH(o) > KEY_REPR_CHARS)
            head = PyUnicode_Substring(o, 0, KEY_REPR_CHARS); /* a 10 MB key: its head is all we show */
        else if (tp == &PyBytes_Type && PyBytes_GET_SIZE(o) > KEY_REPR_CHARS)
            head = PyBytes_FromStringAndSize(PyBytes_AS_STRING(o), KEY_REPR_CHARS);
        PyObject *r = PyObject_Repr(head ? head : o); /* a builtin repr: no user code */
        Py_XDECREF(head);
        Py_ssize_t n;
        const char *u = r ? PyUnicode_AsUTF8AndSize(r, &n) : NULL;
        if (u) {
            pl_buf_append(out, u, (size_t)n);
            Py_DECREF(r);
            return;
        }
        Py_XDECREF(r);
        PyErr_Clear(); /* e.g. an int too long to convert */
    }
    pl_buf_putc(out, '<');
    if (pl_typename(tp, out) < 0)
        PyErr_Clear();
    pl_buf_printf(out, " object at %p>", (void *)o);
}

int pl_edge_format(const pl_edge *e, pl_buf *out)
{
    const char *prefix = NULL;
    switch (e->kind) {
    case PL_EDGE_ITEM:
        return pl_buf_printf(out, "item[%zd]", e->index) ? -1 : 0;
    case PL_EDGE_ELEMENT:
        return pl_buf_puts(out, "element") ? -1 : 0;
    case PL_EDGE_FIELD:
        return pl_buf_puts(out, e->field ? e->field : "referent") ? -1 : 0;
    case PL_EDGE_KEY:
        prefix = "key ";
        break;
    case PL_EDGE_VALUE:
        prefix = "value of key ";
        break;
    case PL_EDGE_ATTRIBUTE:
        prefix = "attribute ";
        break;
    case PL_EDGE_LOCAL:
        prefix = "local ";
        break;
    default:
        return pl_buf_puts(out, "referent") ? -1 : 0;
    }
    pl_buf_puts(out, prefix);
    if (!e->key)
        return pl_buf_puts(out, "?") ? -1 : 0;
    pl_buf key = PL_BUF_INIT;
    key_repr(e->key, &key, 0);
    size_t cut = key.data ? utf8_prefix(key.data, key.len, KEY_REPR_CHARS) : 0;
    pl_buf_append(out, key.data ? key.data : "", cut);
    if (cut < key.len)
        pl_buf_puts(out, "\xE2\x80\xA6");
    int err = key.err;
    pl_buf_free(&key);
    return err || out->err ? -1 : 0;
}
