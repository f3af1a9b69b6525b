/* The access rule (see pyloot/access.h and docs/http-api.md, "Access"). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "pyloot/access.h"

pl_route_class pl_access_classify(const char *path)
{
    if (!path || !*path || strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 ||
        strncmp(path, "/static/", 8) == 0 || strcmp(path, "/api/login") == 0 ||
        strcmp(path, "/api/logout") == 0)
        return PL_ROUTE_OPEN;
    if (strcmp(path, "/api/procs") == 0 || strcmp(path, "/api/history") == 0 || strcmp(path, "/metrics") == 0 ||
        strcmp(path, "/api/memory") == 0)
        return PL_ROUTE_SUMMARY;
    /* Remote mode: workers' pushes, long polls and replies come from other
     * hosts. They show no value to the sender (a push and a reply bring
     * data in; a poll gets the queries addressed to the polling worker), so
     * without a token they pass like the summary routes; with one they need it. */
    if (strcmp(path, "/api/samples") == 0 || strcmp(path, "/api/remote/poll") == 0 ||
        strcmp(path, "/api/remote/reply") == 0)
        return PL_ROUTE_SUMMARY;
    /* Default deny: a route not listed above may show values. */
    return PL_ROUTE_VALUES;
}

int pl_token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Loops over the presented value `a` whatever b holds, so the time
     * tells nothing about the configured token but (at most) its length. */
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < alen; i++) {
        unsigned char y = blen ? (unsigned char)b[i % blen] : 0;
        diff |= (unsigned char)((unsigned char)a[i] ^ y);
    }
    return diff == 0;
}

static int cookie_octet(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

int pl_token_valid(const char *token)
{
    if (!token)
        return 0;
    size_t n = strlen(token);
    if (n == 0 || n > PL_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!cookie_octet((unsigned char)token[i]))
            return 0;
    return 1;
}

int pl_peer_is_loopback(const char *peer)
{
    if (!peer || !*peer)
        return 0;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, peer, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, peer, &a6) == 1) {
        static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a6.s6_addr, loop6, 16) == 0)
            return 1;
        return memcmp(a6.s6_addr, mapped, 12) == 0 && a6.s6_addr[12] == 127;
    }
    return 0;
}

#define HOST_NAME_MAX_LEN 253

/* Splits a Host header value into its name (brackets of an IPv6 literal
 * removed, one trailing dot dropped) copied into name, and checks the
 * port. 1 for a well-formed value (*v6 set for a bracketed one), else 0. */
static int host_split(const char *host, char *name, size_t cap, int *v6)
{
    const char *start = host, *end, *rest;
    *v6 = host[0] == '[';
    if (*v6) {
        start = host + 1;
        end = strchr(start, ']');
        if (!end)
            return 0;
        rest = end + 1;
    } else {
        end = strchr(host, ':');
        if (!end)
            end = host + strlen(host);
        rest = end;
    }
    if (*rest) {
        size_t digits = strspn(rest + 1, "0123456789");
        if (rest[0] != ':' || digits < 1 || digits > 5 || rest[1 + digits])
            return 0;
    }
    size_t n = (size_t)(end - start);
    if (!*v6 && n && start[n - 1] == '.')
        n--;
    if (n == 0 || n >= cap)
        return 0;
    memcpy(name, start, n);
    name[n] = '\0';
    return 1;
}

/* 1 when the allowed-hosts entry [e, e+n) admits `name` (case-insensitive). */
static int entry_admits(const char *e, size_t n, const char *name, int v6)
{
    size_t len = strlen(name);
    if (n >= 2 && e[0] == '[' && e[n - 1] == ']') {
        e++;
        n -= 2;
    }
    if (n && e[n - 1] == '.' && !v6)
        n--;
    if (n == 0)
        return 0;
    if (e[0] == '.' && !v6) {
        /* ".example.com": example.com itself and every name under it. */
        if (len == n - 1 && strncasecmp(name, e + 1, n - 1) == 0)
            return 1;
        return len > n && strncasecmp(name + len - n, e, n) == 0;
    }
    return len == n && strncasecmp(name, e, n) == 0;
}

int pl_host_allowed(const char *host, const char *allowed)
{
    char name[HOST_NAME_MAX_LEN + 2];
    int v6 = 0;
    if (!host || !*host)
        return 1;
    if (!host_split(host, name, sizeof name, &v6))
        return 0;
    size_t len = strlen(name);
    if (v6) {
        if (pl_peer_is_loopback(name))
            return 1;
    } else {
        struct in_addr a4;
        if (strcasecmp(name, "localhost") == 0 ||
            (len > 10 && strcasecmp(name + len - 10, ".localhost") == 0))
            return 1;
        if (inet_pton(AF_INET, name, &a4) == 1 && pl_peer_is_loopback(name))
            return 1;
    }
    for (const char *p = allowed; p && *p;) {
        const char *end = strchr(p, '\n');
        if (!end)
            end = p + strlen(p);
        if (entry_admits(p, (size_t)(end - p), name, v6))
            return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

int pl_cookie_find(const char *header, const char *name, const char **val, size_t *len)
{
    if (!header)
        return 0;
    size_t nlen = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq + 1, *e = end;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (e - v >= 2 && *v == '"' && e[-1] == '"') {
                v++;
                e--;
            }
            *val = v;
            *len = (size_t)(e - v);
            return 1;
        }
        p = end;
    }
    return 0;
}

int pl_access_has_token(const char *token, const pl_access_request *req)
{
    if (!token || !*token)
        return 0;
    size_t tlen = strlen(token);
    int ok = 0;
    const char *auth = req->authorization;
    if (auth) {
        while (*auth == ' ')
            auth++;
        if (strncasecmp(auth, "Bearer ", 7) == 0) {
            const char *v = auth + 7;
            while (*v == ' ')
                v++;
            size_t n = strlen(v);
            while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            ok |= pl_token_equal(v, n, token, tlen);
        }
    }
    const char *cv;
    size_t cn;
    if (pl_cookie_find(req->cookie, PL_TOKEN_COOKIE, &cv, &cn))
        ok |= pl_token_equal(cv, cn, token, tlen);
    return ok;
}

static int presents_credentials(const pl_access_request *req)
{
    const char *cv;
    size_t cn;
    return (req->authorization && *req->authorization) || pl_cookie_find(req->cookie, PL_TOKEN_COOKIE, &cv, &cn);
}

static void say(char *why, size_t whylen, const char *msg)
{
    if (whylen) {
        strncpy(why, msg, whylen - 1);
        why[whylen - 1] = '\0';
    }
}

int pl_access_check(const char *token, pl_route_class cls, const pl_access_request *req, char *why,
                    size_t whylen)
{
    say(why, whylen, "");
    if (cls == PL_ROUTE_OPEN)
        return 0;
    if (token && *token) {
        if (pl_access_has_token(token, req) || req->allowed == PL_ALLOW_YES)
            return 0;
        say(why, whylen,
            presents_credentials(req)
                ? "the token is not correct: log in again, or send Authorization: Bearer <token>"
                : "this pyloot needs a token: log in (POST the token to api/login) or send "
                  "Authorization: Bearer <token>");
        return 401;
    }
    if (req->allowed != PL_ALLOW_UNSET) {
        if (req->allowed == PL_ALLOW_YES)
            return 0;
        say(why, whylen, "the allow callable of this pyloot (PyLoot(allow=...)) refused this request");
        return 403;
    }
    if (cls == PL_ROUTE_SUMMARY)
        return 0;
    if (pl_peer_is_loopback(req->peer) && !req->proxied) {
        if (pl_host_allowed(req->host, req->allowed_hosts))
            return 0;
        char shown[49]; /* the message with it fits the 400 bytes the handler gives */
        size_t i = 0;
        for (; req->host[i] && i < sizeof shown - 1; i++)
            shown[i] = req->host[i] >= 0x20 && req->host[i] < 0x7f ? req->host[i] : '?';
        shown[i] = '\0';
        if (whylen)
            snprintf(why, whylen,
                     "live objects are shown only to pages opened under a loopback name (localhost, "
                     "127.0.0.1, [::1]) or an allowed one, and this request's Host is '%s': a web page can "
                     "point its own name at this machine (DNS rebinding). To allow that name, add it to "
                     "PyLoot(allowed_hosts=[...]), or set a token (PyLoot(token=...), PYLOOT_TOKEN, "
                     "pyloot --token)", shown);
        return 403;
    }
    /* The rule named as it is checked: a peer address, proxy headers. "From
     * this machine" read as if a proxy on it, or this machine's own public
     * address, would do. */
    say(why, whylen,
        req->proxied
            ? "live objects (reprs and attributes) are shown without a token only to requests from a "
              "loopback address (127.0.0.0/8, ::1) that carry none of the headers X-Forwarded-For, "
              "Forwarded, X-Real-IP, and this request carries one (it came through a proxy); to allow "
              "others, set a token (PyLoot(token=...), PYLOOT_TOKEN, pyloot --token) or an allow "
              "callable (PyLoot(allow=...))"
            : "live objects (reprs and attributes) are shown without a token only to requests from a "
              "loopback address (127.0.0.0/8, ::1) that carry none of the headers X-Forwarded-For, "
              "Forwarded, X-Real-IP, and this request came from a non-loopback address; to allow "
              "others, set a token (PyLoot(token=...), PYLOOT_TOKEN, pyloot --token) or an allow "
              "callable (PyLoot(allow=...))");
    return 403;
}

/* A mount point is written into the Path attribute as it is only when it
 * is a plain absolute path. */
static int safe_path(const char *mount)
{
    if (!mount || mount[0] != '/' || strlen(mount) > 512)
        return 0;
    for (const unsigned char *p = (const unsigned char *)mount; *p; p++)
        if (*p < 0x21 || *p > 0x7e || *p == ';' || *p == ',' || *p == '"' || *p == '\\')
            return 0;
    return 1;
}

int pl_access_cookie(pl_buf *out, const char *token, const char *mount, int secure)
{
    const char *path = safe_path(mount) ? mount : "/";
    pl_buf_printf(out, "%s=%s; Path=%s; HttpOnly; SameSite=Strict%s%s", PL_TOKEN_COOKIE,
                  token ? token : "", path, token ? "" : "; Max-Age=0", secure ? "; Secure" : "");
    return out->err;
}
