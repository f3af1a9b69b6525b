/* Internal header of the HTTP handler: what handler.c lends to the files
 * that answer one route each (handler_witness.c). Same threads and
 * ownership rules as handler.h: no state, any thread. */
#ifndef PYLOOT_HANDLER_INT_H
#define PYLOOT_HANDLER_INT_H

#include "pyloot/error.h"
#include "pyloot/handler.h"

/* The status of a store error: 503 for a store found damaged while in use
 * (it is being replaced: docs/store.md, "Damage at run time"), else 500. */
static inline int pl_store_error_status(int rc)
{
    return rc == PL_EDAMAGED ? 503 : 500;
}

/* Finds the first `name=value` of a raw query string (NULL: none) and
 * URL-decodes the value into out (NUL-terminated). 1 found, 0 absent,
 * nonzero otherwise on a malformed escape. */
int pl_query_param(const char *query, const char *name, pl_buf *out);
/* Sets a JSON content type, `status` and no caching on resp. */
void pl_response_json(pl_response *resp, int status);
/* Replaces resp's body with {"error": msg} and sets status. */
void pl_response_error(pl_response *resp, int status, const char *msg);

/* GET /api/witnesses?group=&pid=&host=&limit= (handler_witness.c). */
void pl_handle_witnesses(pl_store *store, const char *query, pl_response *resp);

#endif
