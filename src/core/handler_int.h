/* Internal header of the HTTP handler: what handler.c lends to the files
 * that answer one route each (handler_witness.c). Same threads and
 * ownership rules as handler.h: no state, any thread. */
#ifndef PYLOOT_HANDLER_INT_H
#define PYLOOT_HANDLER_INT_H

#include "pyloot/handler.h"
#include "pyloot/parse.h"

/* ---- parameters (handler_param.c): the one parser of every route ----
 *
 * Every integer is read with overflow checks into its documented range,
 * every text parameter is checked as UTF-8 without control characters
 * before any work is done, and anything else is a 400 naming the
 * parameter (docs/http-api.md, "Conventions"). */

/* The documented ranges. */
#define PL_PARAM_PID_MAX 4194304ULL           /* the largest pid_max Linux allows */
#define PL_PARAM_OFFSET_MAX 1000000000ULL     /* offset= of the paged routes */
#define PL_PARAM_ID_MAX 999999999999999999ULL /* an object id: 18 digits */
#define PL_PARAM_TIME_MAX_S (PL_PARSE_TIME_MAX_MS / 1000) /* since=/until=: 9999-12-31T23:59:59Z */
#define PL_PARAM_QUERY_MAX 256                /* q= of /api/history, bytes */
#define PL_PARAM_HOST_MAX 63                  /* host=, bytes */

/* Finds the first `name=value` of a raw query string (NULL: none) and
 * URL-decodes the value into out (NUL-terminated). 1 found, 0 absent,
 * PL_EBADARG for a malformed escape, ENOMEM. */
int pl_query_param(const char *query, const char *name, pl_buf *out);
/* 1 when s[0..len) is well-formed UTF-8 with no control byte (0x00-0x1f, 0x7f). */
int pl_text_valid(const char *s, size_t len);
/* Integer parameter `name` within [lo, hi]; absent: def. 0, or a 400 naming
 * the parameter and its range in resp and -1. */
int pl_param_uint(const char *query, const char *name, uint64_t lo, uint64_t hi, uint64_t def, uint64_t *out,
                  pl_response *resp);
/* Text parameter `name` into out (NUL-terminated): 1 found, with min..max
 * bytes of pl_text_valid text; 0 absent; -1 with a 400 in resp otherwise. */
int pl_param_text(const char *query, const char *name, size_t min, size_t max, pl_buf *out, pl_response *resp);
/* A time in unix seconds with up to 3 decimals, 0.001 to
 * PL_PARAM_TIME_MAX_S and at most PL_HISTORY_FUTURE_MS after now_ms, into
 * *out_ms. Absent or empty: 0 and *out_ms 0. Else -1 with a 400 in resp. */
int pl_param_time(const char *query, const char *name, int64_t now_ms, int64_t *out_ms, pl_response *resp);

/* Sets a JSON content type, `status` and no caching on resp. */
void pl_response_json(pl_response *resp, int status);
/* Replaces resp's body with {"error": msg} and sets status. */
void pl_response_error(pl_response *resp, int status, const char *msg);

/* GET /api/witnesses?group=&pid=&host=&limit= (handler_witness.c). */
void pl_handle_witnesses(pl_store *store, const char *query, pl_response *resp);

#endif
