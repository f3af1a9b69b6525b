/* pyloot core: who may see what. One rule for every embedding (WSGI, ASGI,
 * Django) and for the `pyloot` command; the handler applies it to every
 * request before routing (docs/http-api.md, "Access").
 *
 * Routes fall in three classes:
 *   PL_ROUTE_OPEN     the UI files and /api/login, /api/logout: always answered.
 *   PL_ROUTE_SUMMARY  /api/procs, /api/history, /metrics: names and numbers only;
 *                     and remote mode's /api/samples, /api/remote/poll and
 *                     /api/remote/reply (workers of other hosts; no value shown).
 *   PL_ROUTE_VALUES   everything else (/api/objects..., and any route added
 *                     later): shows reprs, attributes and other values.
 *
 * The rule, for a route that is not OPEN:
 *   - a token is configured: the request passes with "Authorization: Bearer
 *     <token>" or the cookie PL_TOKEN_COOKIE holding it (compared in constant
 *     time), or when the embedding's allow callable said yes; else 401.
 *   - no token, an allow callable: its verdict decides; a no is a 403.
 *   - neither: SUMMARY passes; VALUES passes only for a loopback peer whose
 *     request carries none of X-Forwarded-For, Forwarded, X-Real-IP (a
 *     reverse proxy on the same host makes every request look local) and
 *     whose Host header, when it has one, names this machine: a loopback
 *     name or address, or one of the embedding's allowed hosts. A page of
 *     another site whose name was re-pointed at 127.0.0.1 (DNS rebinding)
 *     reaches a loopback peer, but with its own name in Host; else 403.
 *
 * Every function here is pure (no global state) and thread-safe. */
#ifndef PYLOOT_ACCESS_H
#define PYLOOT_ACCESS_H

#include <stddef.h>

#include "pyloot/buf.h"

#define PL_TOKEN_COOKIE "pyloot_token"
#define PL_TOKEN_MAX 1024

typedef enum pl_route_class {
    PL_ROUTE_OPEN = 0,
    PL_ROUTE_SUMMARY = 1,
    PL_ROUTE_VALUES = 2,
} pl_route_class;

/* The embedding's allow callable: not configured (0, so a zeroed request has none), said yes, said no. */
enum { PL_ALLOW_UNSET = 0, PL_ALLOW_YES = 1, PL_ALLOW_NO = -1 };

/* What the rule looks at in one request. Strings are borrowed, may be NULL. */
typedef struct pl_access_request {
    const char *authorization; /* the Authorization header */
    const char *cookie;        /* the Cookie header */
    const char *peer;          /* the peer's numeric address ("127.0.0.1", "::1"); NULL/"" unknown */
    int proxied;               /* X-Forwarded-For, Forwarded or X-Real-IP is present */
    int allowed;               /* PL_ALLOW_*: the allow callable's verdict */
    const char *host;          /* the Host header ("name[:port]"); NULL/"" when the request has none */
    const char *allowed_hosts; /* names allowed in Host besides the loopback ones, newline-separated
                                * (PyLoot(allowed_hosts=...)); NULL for none */
} pl_access_request;

/* The class of a route (path relative to the mount point). */
pl_route_class pl_access_classify(const char *path);

/* Applies the rule. `token` is the configured token (NULL or "" for none).
 * Returns 0 when the request may proceed, else 401 or 403 with a sentence
 * for the JSON error written into why (always NUL-terminated). */
int pl_access_check(const char *token, pl_route_class cls, const pl_access_request *req, char *why,
                    size_t whylen);

/* 1 when the request presents `token` (Bearer header or cookie), else 0.
 * Constant time in the length of the presented value. */
int pl_access_has_token(const char *token, const pl_access_request *req);

/* Constant-time equality of two byte strings: the time depends on the
 * lengths only, never on where they differ. */
int pl_token_equal(const char *a, size_t alen, const char *b, size_t blen);

/* 1 when `token` is usable: 1..PL_TOKEN_MAX bytes, each a visible ASCII
 * character allowed in a cookie value (no space, '"', ',', ';', '\\'). */
int pl_token_valid(const char *token);

/* 1 when `peer` is a numeric loopback address: 127.0.0.0/8, ::1, or
 * ::ffff:127.x.x.x. Anything else (a host name, a unix socket's empty
 * address, NULL) is 0. */
int pl_peer_is_loopback(const char *peer);

/* 1 when a Host header value ("name", "name:port", "[v6]", "[v6]:port")
 * names this machine: localhost or a name under .localhost, an address of
 * 127.0.0.0/8, [::1] or [::ffff:127.x.x.x] (case-insensitive, one trailing
 * dot allowed), or one of `allowed` (newline-separated names; an entry
 * ".example.com" also admits every name under it; an IPv6 entry with or
 * without brackets). NULL or "" (no Host header) is 1: only a browser page
 * can be re-pointed by DNS, and a browser always sends Host. A malformed
 * value is 0. */
int pl_host_allowed(const char *host, const char *allowed);

/* Finds cookie `name` in a Cookie header ("a=1; b=2"). Returns 1 and sets
 * *val and *len (pointing into header) if present, else 0. */
int pl_cookie_find(const char *header, const char *name, const char **val, size_t *len);

/* Appends a Set-Cookie value for the token cookie: HttpOnly, SameSite=Strict,
 * Path=<mount> ("/" when mount is empty or holds characters unsafe in a
 * cookie attribute), Secure when `secure`. token NULL clears the cookie
 * (Max-Age=0). Returns 0 or ENOMEM. */
int pl_access_cookie(pl_buf *out, const char *token, const char *mount, int secure);

#endif
