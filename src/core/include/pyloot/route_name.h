/* pyloot core: the name a request is counted under (docs/http-api.md,
 * "GET /api/routes"): its method, a space and the framework's route
 * template, or, when the framework gives none, the path with its id-like
 * segments collapsed to {id} ("GET /users/{id}").
 *
 * Thread-safe (no state); never allocates. */
#ifndef PYLOOT_ROUTE_NAME_H
#define PYLOOT_ROUTE_NAME_H

#include <stddef.h>

/* Bytes of a route name at most (longer names are cut at a UTF-8
 * boundary), and of its method (cut likewise). */
#define PL_ROUTE_NAME_MAX 200
#define PL_ROUTE_METHOD_MAX 16
/* The route of the requests past PL_ROUTES_PER_WORKER distinct routes in
 * one worker's interval. */
#define PL_ROUTE_OTHER "other"
/* Distinct routes one worker counts in one sample interval; the others
 * count under PL_ROUTE_OTHER. */
#define PL_ROUTES_PER_WORKER 256

/* Writes the route name of a request into out (PL_ROUTE_NAME_MAX + 1
 * bytes, NUL-terminated) and returns its length. method (mlen bytes) is
 * cut to PL_ROUTE_METHOD_MAX bytes; "?" when empty. route (rlen bytes) is
 * the framework's template when is_template, else the request path: a query
 * string is dropped and each segment of digits, a UUID, or 16 or more hex
 * digits becomes {id}. An empty route is "/". Every byte that is a control
 * character, a space in the method, or not part of well-formed UTF-8
 * becomes '?', so the name is always valid UTF-8 without control
 * characters. Either pointer may be NULL when its length is 0. */
size_t pl_route_name(const char *method, size_t mlen, const char *route, size_t rlen, int is_template, char *out);

/* 1 when name[0..len) could have been written by pl_route_name (1 to
 * PL_ROUTE_NAME_MAX bytes of UTF-8 without control characters): the check
 * of names that arrive from elsewhere (remote mode). */
int pl_route_name_valid(const char *name, size_t len);

#endif
