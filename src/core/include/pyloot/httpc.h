/* pyloot core: a minimal HTTP/1.1 client for remote mode (the worker's pushes,
 * long polls, replies and the forwarding of its /_pyloot to the central
 * server). Plain sockets, one connection per request ("Connection: close"),
 * non-blocking connect and poll() on every step, so that no call ever waits
 * longer than its deadline. Responses: Content-Length, chunked, or read to
 * EOF. No TLS: put a TLS-terminating proxy in front of the central server.
 *
 * Threads: every function is thread-safe; a request and its response belong
 * to the calling thread. Host names are resolved with getaddrinfo(), whose
 * own timeouts (resolv.conf) bound a DNS wait; numeric addresses never wait. */
#ifndef PYLOOT_HTTPC_H
#define PYLOOT_HTTPC_H

#include <stddef.h>
#include <stdint.h>

#include "pyloot/buf.h"

#define PL_HTTP_MAX_HEADERS 8

/* Every part is checked before anything is sent (pl_http_request_check):
 * none may hold CR, LF or another byte that could end it early and start a
 * request of its own on the connection. */
typedef struct pl_http_request {
    const char *method;      /* "GET", "POST": 1 to 32 RFC 9110 token characters */
    const char *host;        /* name or numeric address (IPv6 without brackets): letters, digits,
                              * '-', '.', '_', ':'; borrowed */
    uint16_t port;
    const char *target;      /* path + query: '/' then RFC 3986 path and query characters and %XX
                              * escapes only (encode anything else); borrowed */
    /* Extra header lines "Name: value": a token name, a value without control
     * characters but tab (bytes above 0x7f are taken), never Host,
     * Content-Length, Transfer-Encoding or Connection (the client writes
     * those); "" is skipped; borrowed. */
    const char *headers[PL_HTTP_MAX_HEADERS];
    size_t n_headers;
    const void *body;        /* borrowed; sent with Content-Length when method is POST */
    size_t body_len;
    int timeout_ms;          /* deadline of the whole exchange, connect included */
    size_t max_body;         /* response bodies over this are an error (PL_ETOOBIG); 0: 16 MiB */
    int cancel_fd;           /* readable fd that aborts the call (ECANCELED); -1 for none */
} pl_http_request;

typedef struct pl_http_response {
    int status;
    pl_buf headers;          /* the raw header block (status line excluded), CRLF-separated; owned */
    pl_buf body;             /* owned (de-chunked, never decompressed) */
} pl_http_response;

#define PL_HTTP_RESPONSE_INIT {0, PL_BUF_INIT, PL_BUF_INIT}

/* 0 when every part of req may go on the wire as it is (see pl_http_request),
 * else PL_EBADARG. */
int pl_http_request_check(const pl_http_request *req);

/* Sends req and reads the response into *resp (reset first). Returns 0 when a
 * complete response arrived (any status), else PL_EBADARG (a part of req is
 * refused by pl_http_request_check: no connection was made, nothing was
 * sent), ETIMEDOUT, ECONNREFUSED and other errno values, ECANCELED,
 * PL_ENOTFOUND (the host name does not resolve), PL_ECORRUPT (not HTTP),
 * PL_ETOOBIG. */
int pl_http_do(const pl_http_request *req, pl_http_response *resp);

/* Frees the buffers of *resp (not resp itself). */
void pl_http_response_free(pl_http_response *resp);

/* The value of header `name` (case-insensitive) in resp->headers, copied
 * NUL-terminated into out (truncated to outlen - 1). Returns 1 if present. */
int pl_http_header(const pl_http_response *resp, const char *name, char *out, size_t outlen);

#endif
