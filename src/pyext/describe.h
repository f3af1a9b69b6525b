/* pyloot extension: what an object looks like in an answer (describe.c):
 * its bounded and guarded repr, its type and name fields, its JSON summary.
 *
 * Describing runs user code (repr() of heap types): call these only after
 * the borrowed pointers of a walk are dropped, on objects the caller holds
 * references to. All functions need the GIL. */
#ifndef PYLOOT_PYEXT_DESCRIBE_H
#define PYLOOT_PYEXT_DESCRIBE_H

#include "pyext.h"
#include "pyloot/redact.h" /* PL_REDACTED */

/* Documented limits (docs/http-api.md, docs/live-objects.md). */
#define PL_REPR_LIST_CHARS 1024    /* repr in summaries (lists, parents, children, path) */
#define PL_REPR_DETAIL_CHARS 65536 /* repr of the object of /api/objects/<id> */
#define PL_ATTR_REPR_CHARS 1024    /* repr of each attribute value */
#define PL_KEY_REPR_CHARS 200      /* repr of an attribute name that is not a str */
#define PL_REPR_DEPTH 6            /* nesting of the bounded container repr */
#define PL_REPR_ONE_S 0.25         /* one user repr() may run this long */
#define PL_REPR_BUDGET_S 1.0       /* all user repr() calls of one answer, nested answers included */
#define PL_LIVE_MAX_NESTING 4      /* answers on one thread, a repr() asking pyloot in turn */

struct pl_held_secrets;

/* The repr state of one answer. */
typedef struct pl_reprer {
    double deadline; /* end of the repr budget of this answer */
    /* The values held under a secret-looking name (held_secrets.h), shown
     * as "<redacted>" wherever they appear, by themselves or inside a
     * container's repr; NULL: only the names rule applies. */
    struct pl_held_secrets *held;
    PyObject *stack[PL_REPR_DEPTH];
    int depth;
} pl_reprer;

/* Starts an answer on this thread and gives it its repr deadline: the
 * budget from now, or the enclosing answer's deadline when a repr() of that
 * answer asked this one (a re-entrant query), whichever comes first.
 * Returns 0, or -1 when answers are already nested PL_LIVE_MAX_NESTING deep:
 * the query must then be refused, and every enclosing repr() that is
 * waiting on it reports a failure (so that a repr() asking pyloot about
 * itself ends with "<repr failed: RecursionError: ...>" at every level,
 * whatever the timing). Every call is paired with pl_answer_leave. */
int pl_answer_enter(double *deadline);
void pl_answer_leave(void);

/* Writes repr(o) as a JSON string, cut to max_chars characters ("…" marks
 * the cut). The builtin containers are written item by item (a million-item
 * list costs what is shown); a heap type's repr() runs under a deadline. */
void pl_json_repr(pl_reprer *r, pl_buf *body, PyObject *o, size_t max_chars);

/* The same text as pl_json_repr, appended to out as UTF-8 (not JSON). */
void pl_repr_text(pl_reprer *r, pl_buf *out, PyObject *o, size_t max_chars);

/* Writes a str as a JSON string, or `fallback` when s is not a str. */
void pl_json_pystr(pl_buf *b, PyObject *s, const char *fallback);

/* Writes {"id", "obj_name", "type_name", "type_module", "repr", "size"}. */
void pl_json_summary(pl_reprer *r, pl_buf *b, PyObject *o, size_t repr_chars);
/* The same, with "repr" written as "<redacted>" (no repr() runs) when
 * `redacted` is nonzero (an object reached under a secret-looking name) or
 * when r->held says the object is held under one elsewhere. */
void pl_json_summary_as(pl_reprer *r, pl_buf *b, PyObject *o, size_t repr_chars, int redacted);

/* 1 when `name` is a str that looks secret under this process's redaction
 * list (pyloot/redact.h, PyLoot(redact=...)): the value held under it is
 * shown as "<redacted>" in attributes, dict reprs, children and paths. */
int pl_secret_name(PyObject *name);

#endif
