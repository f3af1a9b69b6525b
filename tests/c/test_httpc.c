/* The remote-mode HTTP client (src/core/httpc.c): a request built from parts
 * that would not stay one request on the wire (CR, LF or another control
 * byte, a space in the request target, a header the client writes itself)
 * is refused with PL_EBADARG before any connection is made, so nothing
 * reaches the server; a valid one arrives exactly as built. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pyloot/buf.h"
#include "pyloot/httpc.h"
#include "test.h"

/* A non-blocking listening socket on a free loopback port. */
static int listener(int family, uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0) {
        close(fd);
        return -1;
    }
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* The number of connections waiting on fd (each read and closed). */
static int drain(int fd)
{
    int n = 0;
    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            break;
        close(c);
        n++;
    }
    return n;
}

/* The bytes the next waiting connection on fd sent (up to its close), in out. */
static int received(int fd, pl_buf *out)
{
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return -1;
    char tmp[4096];
    for (;;) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t n = recv(c, tmp, sizeof tmp, 0);
        if (n <= 0)
            break;
        pl_buf_append(out, tmp, (size_t)n);
    }
    close(c);
    return 0;
}

static pl_http_request base(uint16_t port)
{
    pl_http_request req;
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.host = "127.0.0.1";
    req.port = port;
    req.target = "/api/objects?pid=1&group=app.Secret";
    req.timeout_ms = 300; /* never reached by a refused request; bounds a sent one (no answer comes) */
    req.cancel_fd = -1;
    return req;
}

/* Sends req; checks that it is refused with PL_EBADARG and that no
 * connection reached the listener. */
static void check_refused(int fd, const pl_http_request *req, const char *what)
{
    pl_http_response r = PL_HTTP_RESPONSE_INIT;
    int rc = pl_http_do(req, &r);
    int arrived = drain(fd);
    if (rc != PL_EBADARG || arrived != 0) {
        fprintf(stderr, "  %s: pl_http_do returned %d (%s), %d connection(s) arrived\n", what, rc, pl_strerror(rc),
                arrived);
        test_failures++;
    }
    CHECK(r.status == 0 && r.body.len == 0);
    pl_http_response_free(&r);
}

static void test_refused_parts(void)
{
    uint16_t port = 0;
    int fd = listener(AF_INET, &port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    static const char *const methods[] = {
        "GET /x HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET", "GET\r\n", "G\nET", "GE T", "GET\t", "", "G\x01T", "G\x7fT",
        "GET(", "G\xc3\xa9T",
    };
    static const char *const targets[] = {
        "/api/objects?pid=1 HTTP/1.1\r\nHost: x\r\n\r\n", /* the smuggled request */
        "/a\r\nX: y", "/a\nX: y", "/a\rb", "/a b", "/a\tb", "/a\x01", "/a\x1f", "/a\x7f", "/a\x80", "/a\xff",
        "/a%", "/a%2", "/a%zz", "/a%0", "/a#frag", "/a\"", "/a<b>", "/a\\b", "/a{b}", "/a|b", "/a^b", "/a`b",
        "a", "", "*", "http://evil/",
    };
    static const char *const headers[] = {
        "X-A: b\r\nX-B: c", "X-A: b\r\n", "X-A: b\n", "X-A: b\rc", "X-A\r\n: b", "X-A: \x01", "X-A: b\x7f",
        "X-A: b\x1b[0m", "X-A b", ": b", "X A: b", "X-A", "X(A): b", "\r\nX-A: b",
        /* the client writes these itself: a second one would make two readings of one request */
        "Host: evil", "host: evil", "Content-Length: 5", "Transfer-Encoding: chunked", "Connection: keep-alive",
    };
    static const char *const hosts[] = {
        "127.0.0.1\r\nX-A: b", "127.0.0.1\n", "127.0.0.1 x", "127.0.0.1/x", "127.0.0.1\t", "", "127.0.0.1@evil",
        "a\x01", "a\x7f",
    };
    char what[64];
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        pl_http_request req = base(port);
        req.method = methods[i];
        snprintf(what, sizeof what, "method %zu", i);
        check_refused(fd, &req, what);
    }
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        pl_http_request req = base(port);
        req.target = targets[i];
        snprintf(what, sizeof what, "target %zu", i);
        check_refused(fd, &req, what);
    }
    for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) {
        pl_http_request req = base(port);
        req.headers[req.n_headers++] = "Accept: application/json";
        req.headers[req.n_headers++] = headers[i];
        snprintf(what, sizeof what, "header %zu", i);
        check_refused(fd, &req, what);
    }
    for (size_t i = 0; i < sizeof hosts / sizeof *hosts; i++) {
        pl_http_request req = base(port);
        req.host = hosts[i];
        snprintf(what, sizeof what, "host %zu", i);
        check_refused(fd, &req, what);
    }
    /* A header line past the array, and missing parts. */
    pl_http_request req = base(port);
    req.n_headers = PL_HTTP_MAX_HEADERS + 1;
    check_refused(fd, &req, "too many headers");
    req = base(port);
    req.method = NULL;
    check_refused(fd, &req, "no method");
    req = base(port);
    req.target = NULL;
    check_refused(fd, &req, "no target");
    req = base(port);
    req.host = NULL;
    check_refused(fd, &req, "no host");
    req = base(port);
    req.headers[0] = NULL;
    req.n_headers = 1;
    check_refused(fd, &req, "a NULL header line");
    /* A NUL cannot be inside a C string: the extension refuses a Python
     * string holding one before it calls the client
     * (tests/python/test_remote_forward.py). */
    close(fd);
}

/* A valid request arrives as built: one request line, the parts in place,
 * RFC 3986 characters and %XX escapes kept, header values with tabs and
 * bytes above 0x7f (obs-text) taken. */
static void test_valid_request_arrives_whole(void)
{
    uint16_t port = 0;
    int fd = listener(AF_INET, &port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    pl_http_request req = base(port);
    req.method = "POST";
    req.target = "/api/objects%3Fpid=1%0D%0A/x:@!$&'()*+,;=-._~?q=a%20b&r=/?:@";
    req.headers[req.n_headers++] = "X-Forwarded-For: 203.0.113.9";
    req.headers[req.n_headers++] = "Cookie: a=b;\tc=\xc3\xa9";
    req.headers[req.n_headers++] = ""; /* empty lines are skipped, as before */
    req.body = "{}";
    req.body_len = 2;
    pl_http_response r = PL_HTTP_RESPONSE_INIT;
    CHECK_EQ_INT(pl_http_do(&req, &r), ETIMEDOUT); /* nobody answers: the deadline */
    pl_http_response_free(&r);
    pl_buf got = PL_BUF_INIT, want = PL_BUF_INIT;
    CHECK_OK(received(fd, &got));
    pl_buf_printf(&want,
                  "POST /api/objects%%3Fpid=1%%0D%%0A/x:@!$&'()*+,;=-._~?q=a%%20b&r=/?:@ HTTP/1.1\r\n"
                  "Host: 127.0.0.1:%u\r\nConnection: close\r\nUser-Agent: pyloot/"
                  "X-Forwarded-For: 203.0.113.9\r\nCookie: a=b;\tc=\xc3\xa9\r\nContent-Length: 2\r\n\r\n{}",
                  (unsigned)port);
    /* The version after "pyloot/" is the build's: left out of the comparison. */
    char *ua = strstr(pl_buf_cstr(&got), "User-Agent: pyloot/"), *eol = ua ? strstr(ua, "\r\n") : NULL;
    CHECK(eol != NULL);
    if (eol)
        memmove(ua + 19, eol + 2, strlen(eol + 2) + 1);
    CHECK_EQ_STR(got.data, pl_buf_cstr(&want));
    CHECK_EQ_INT(drain(fd), 0);
    pl_buf_free(&got);
    pl_buf_free(&want);
    close(fd);

    /* An IPv6 literal goes into Host in brackets (when this machine has ::1). */
    fd = listener(AF_INET6, &port);
    if (fd < 0)
        return;
    req = base(port);
    req.host = "::1";
    CHECK_EQ_INT(pl_http_do(&req, &r), ETIMEDOUT);
    pl_http_response_free(&r);
    CHECK_OK(received(fd, &got));
    pl_buf_printf(&want, "GET /api/objects?pid=1&group=app.Secret HTTP/1.1\r\nHost: [::1]:%u\r\n", (unsigned)port);
    CHECK(got.data && strncmp(got.data, want.data, want.len) == 0);
    pl_buf_free(&got);
    pl_buf_free(&want);
    close(fd);
}

int main(void)
{
    RUN(test_refused_parts);
    RUN(test_valid_request_arrives_whole);
    return test_failures ? 1 : 0;
}
