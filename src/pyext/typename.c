/* Type names as pyloot shows them: "module.qualname", builtins bare. */
#include "pyext.h"

#include <string.h>

static PyObject *str_module; /* interned "__module__"; immortal for the process (never freed on purpose) */

static int put_str(PyObject *s, pl_buf *out)
{
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (!u) {
        PyErr_Clear();
        return -1;
    }
    return pl_buf_append(out, u, (size_t)n) ? -1 : 0;
}

int pl_typename(PyTypeObject *tp, pl_buf *out)
{
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE))
        return pl_buf_puts(out, tp->tp_name) ? -1 : 0;

    PyHeapTypeObject *ht = (PyHeapTypeObject *)tp;
    if (!str_module) {
        str_module = PyUnicode_InternFromString("__module__");
        if (!str_module) {
            PyErr_Clear();
            return pl_buf_puts(out, tp->tp_name) ? -1 : 0;
        }
    }
    /* The type's own dict, not attribute lookup: no descriptor or metaclass
     * code runs, and nothing is created. */
    PyObject *mod = tp->tp_dict ? PyDict_GetItemWithError(tp->tp_dict, str_module) : NULL;
    if (!mod && PyErr_Occurred())
        PyErr_Clear();
    size_t mark = out->len;
    if (mod && PyUnicode_Check(mod) && PyUnicode_CompareWithASCIIString(mod, "builtins") != 0) {
        if (put_str(mod, out) < 0 || pl_buf_putc(out, '.'))
            goto fallback;
    }
    if (ht->ht_qualname && PyUnicode_Check(ht->ht_qualname)) {
        if (put_str(ht->ht_qualname, out) < 0)
            goto fallback;
        return 0;
    }
fallback:
    out->len = mark;
    out->err = 0;
    return pl_buf_puts(out, tp->tp_name) ? -1 : 0;
}
