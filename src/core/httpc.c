/* The minimal HTTP/1.1 client of remote mode (pyloot/httpc.h). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pyloot/error.h"
#include "pyloot/httpc.h"

#define HEAD_MAX (64 * 1024)

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events` or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline, int cancel_fd)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return ETIMEDOUT;
        struct pollfd p[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
        int n = poll(p, cancel_fd >= 0 ? 2 : 1, (int)(left > 1000 ? 1000 : left));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (cancel_fd >= 0 && p[1].revents)
            return ECANCELED;
        if (n > 0 && p[0].revents)
            return 0;
    }
}

static int connect_to(const pl_http_request *req, int64_t deadline, int *out)
{
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)req->port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(req->host, port, &hints, &res) != 0 || !res)
        return PL_ENOTFOUND;
    int rc = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            rc = 0;
        } else if (errno != EINPROGRESS) {
            rc = errno;
        } else if ((rc = wait_fd(fd, POLLOUT, deadline, req->cancel_fd)) == 0) {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
            rc = err;
        }
        if (rc == 0) {
            *out = fd;
            break;
        }
        close(fd);
        if (rc == ETIMEDOUT || rc == ECANCELED)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

static int send_all(int fd, const char *p, size_t len, int64_t deadline, int cancel_fd)
{
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return errno;
        int rc = wait_fd(fd, POLLOUT, deadline, cancel_fd);
        if (rc)
            return rc;
    }
    return 0;
}

/* Reads more bytes into b. Returns 0 (and *eof on end of stream) or an error. */
static int recv_some(int fd, pl_buf *b, int64_t deadline, int cancel_fd, int *eof)
{
    for (;;) {
        if (pl_buf_reserve(b, 16384))
            return ENOMEM;
        ssize_t n = recv(fd, b->data + b->len, 16384, 0);
        if (n > 0) {
            b->len += (size_t)n;
            b->data[b->len] = '\0';
            return 0;
        }
        if (n == 0) {
            *eof = 1;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return errno;
        int rc = wait_fd(fd, POLLIN, deadline, cancel_fd);
        if (rc)
            return rc;
    }
}

static const char *find_crlf2(const char *s, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n')
            return s + i;
    return NULL;
}

/* De-chunks raw[0..len) into out. Returns 0, EAGAIN when incomplete, PL_ECORRUPT. */
static int dechunk(const char *raw, size_t len, pl_buf *out, size_t max)
{
    size_t i = 0;
    pl_buf_reset(out);
    for (;;) {
        const char *eol = memchr(raw + i, '\n', len - i);
        if (!eol)
            return EAGAIN;
        char *end;
        unsigned long long n = strtoull(raw + i, &end, 16);
        if (end == raw + i)
            return PL_ECORRUPT;
        i = (size_t)(eol - raw) + 1;
        if (n == 0)
            return 0; /* trailers are ignored */
        if (n > max || out->len + n > max)
            return PL_ETOOBIG;
        if (len - i < n + 2)
            return EAGAIN;
        if (pl_buf_append(out, raw + i, (size_t)n))
            return ENOMEM;
        i += (size_t)n + 2;
    }
}

int pl_http_header(const pl_http_response *resp, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = resp->headers.data, *end = p ? p + resp->headers.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t n = (size_t)(ve - v);
            if (outlen) {
                if (n >= outlen)
                    n = outlen - 1;
                memcpy(out, v, n);
                out[n] = '\0';
            }
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}

/* Parses the response in raw; returns 0 when complete, EAGAIN when more is needed. */
static int parse(pl_buf *raw, int eof, size_t max, pl_http_response *resp)
{
    const char *hend = find_crlf2(raw->data ? raw->data : "", raw->len);
    if (!hend)
        return raw->len > HEAD_MAX ? PL_ECORRUPT : (eof ? PL_ECORRUPT : EAGAIN);
    int status = 0;
    if (sscanf(raw->data, "HTTP/1.%*d %3d", &status) != 1 || status < 100 || status > 599)
        return PL_ECORRUPT;
    const char *first_eol = memchr(raw->data, '\n', (size_t)(hend - raw->data) + 2);
    pl_buf_reset(&resp->headers);
    if (pl_buf_append(&resp->headers, first_eol + 1, (size_t)(hend + 2 - (first_eol + 1))))
        return ENOMEM;
    resp->status = status;
    const char *body = hend + 4;
    size_t have = raw->len - (size_t)(body - raw->data);
    char v[64];
    if (status == 204 || status == 304 || (status >= 100 && status < 200)) {
        pl_buf_reset(&resp->body);
        return 0;
    }
    if (pl_http_header(resp, "Transfer-Encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0) {
        int rc = dechunk(body, have, &resp->body, max);
        return rc == EAGAIN && eof ? PL_ECORRUPT : rc;
    }
    if (pl_http_header(resp, "Content-Length", v, sizeof v)) {
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        if (end == v || *end)
            return PL_ECORRUPT;
        if (n > max)
            return PL_ETOOBIG;
        if (have < n)
            return eof ? PL_ECORRUPT : EAGAIN;
        pl_buf_reset(&resp->body);
        return pl_buf_append(&resp->body, body, (size_t)n) ? ENOMEM : 0;
    }
    if (have > max)
        return PL_ETOOBIG;
    if (!eof)
        return EAGAIN;
    pl_buf_reset(&resp->body);
    return pl_buf_append(&resp->body, body, have) ? ENOMEM : 0;
}

/* ---- what a request may hold ----
 *
 * Every part of a request is checked here, the one place every outgoing
 * request goes through, so that no byte a caller took from elsewhere (a
 * browser's path, a header) can end the request line or a header early and
 * start a request of its own on the connection. */

/* RFC 9110 tchar: the characters of a method and a header name. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986 path and query characters, '%' excepted: unreserved, sub-delims,
 * ':', '@', '/' and '?'. */
static int is_target_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$&'()*+,;=:@/?", c) != NULL);
}

static int method_ok(const char *m)
{
    if (!m || !*m || strlen(m) > 32)
        return 0;
    for (const unsigned char *p = (const unsigned char *)m; *p; p++)
        if (!is_tchar(*p))
            return 0;
    return 1;
}

/* An origin-form target: '/', then RFC 3986 characters and %XX escapes. */
static int target_ok(const char *t)
{
    if (!t || t[0] != '/')
        return 0;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        if (*p == '%') {
            if (!is_hex(p[1]) || !is_hex(p[2]))
                return 0;
            p += 2;
        } else if (!is_target_char(*p)) {
            return 0;
        }
    }
    return 1;
}

/* A host name or a numeric address (IPv6 without brackets): letters,
 * digits, '-', '.', '_' and ':'. */
static int host_ok(const char *h)
{
    if (!h || !*h || strlen(h) > 255)
        return 0;
    for (const unsigned char *p = (const unsigned char *)h; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_' || *p == ':'))
            return 0;
    return 1;
}

/* "Name: value": a tchar name, then a value of visible ASCII, spaces, tabs
 * and bytes above 0x7f (RFC 9110 field-value; obs-text). Never one of the
 * headers pl_http_do writes itself, which a second copy would make
 * ambiguous. An empty line is allowed (it is skipped). */
static int header_ok(const char *h)
{
    static const char *const own[] = {"Host", "Content-Length", "Transfer-Encoding", "Connection"};
    if (!h)
        return 0;
    if (!*h)
        return 1;
    const unsigned char *p = (const unsigned char *)h;
    while (is_tchar(*p))
        p++;
    size_t nlen = (size_t)(p - (const unsigned char *)h);
    if (nlen == 0 || *p != ':')
        return 0;
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        if (strlen(own[i]) == nlen && strncasecmp(h, own[i], nlen) == 0)
            return 0;
    for (p++; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 0;
    return 1;
}

int pl_http_request_check(const pl_http_request *req)
{
    if (!method_ok(req->method) || !target_ok(req->target) || !host_ok(req->host) ||
        req->n_headers > PL_HTTP_MAX_HEADERS || (req->body_len && !req->body))
        return PL_EBADARG;
    for (size_t i = 0; i < req->n_headers; i++)
        if (!header_ok(req->headers[i]))
            return PL_EBADARG;
    return 0;
}

int pl_http_do(const pl_http_request *req, pl_http_response *resp)
{
    int64_t deadline = mono_ms() + (req->timeout_ms > 0 ? req->timeout_ms : 1);
    size_t max = req->max_body ? req->max_body : 16u << 20;
    pl_buf head = PL_BUF_INIT, raw = PL_BUF_INIT;
    int fd = -1, rc;
    resp->status = 0;
    pl_buf_reset(&resp->headers);
    pl_buf_reset(&resp->body);

    rc = pl_http_request_check(req);
    if (rc)
        goto done; /* nothing was sent: no connection is made */
    /* An IPv6 address goes into Host in brackets (RFC 9110, 7.2). */
    int v6 = strchr(req->host, ':') != NULL;
    pl_buf_printf(&head, "%s %s HTTP/1.1\r\nHost: %s%s%s:%u\r\nConnection: close\r\nUser-Agent: pyloot/%s\r\n",
                  req->method, req->target, v6 ? "[" : "", req->host, v6 ? "]" : "", (unsigned)req->port,
                  PYLOOT_VERSION);
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->headers[i][0])
            pl_buf_printf(&head, "%s\r\n", req->headers[i]);
    if (req->body_len || strcmp(req->method, "POST") == 0)
        pl_buf_printf(&head, "Content-Length: %zu\r\n", req->body_len);
    pl_buf_puts(&head, "\r\n");
    if (head.err) {
        rc = ENOMEM;
        goto done;
    }
    rc = connect_to(req, deadline, &fd);
    if (rc)
        goto done;
    rc = send_all(fd, head.data, head.len, deadline, req->cancel_fd);
    if (!rc && req->body_len)
        rc = send_all(fd, req->body, req->body_len, deadline, req->cancel_fd);
    if (rc)
        goto done;
    for (;;) {
        int eof = 0;
        rc = recv_some(fd, &raw, deadline, req->cancel_fd, &eof);
        if (rc)
            goto done;
        rc = parse(&raw, eof, max, resp);
        if (rc != EAGAIN)
            goto done;
        if (raw.len > max + HEAD_MAX + 1024 * 1024) {
            rc = PL_ETOOBIG;
            goto done;
        }
    }
done:
    if (fd >= 0)
        close(fd);
    pl_buf_free(&head);
    pl_buf_free(&raw);
    return rc;
}

void pl_http_response_free(pl_http_response *resp)
{
    pl_buf_free(&resp->headers);
    pl_buf_free(&resp->body);
}
