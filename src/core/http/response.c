/* Responses of every route: status reasons, the JSON content type, the one
 * error shape, and the JSON forms of times, incarnations and series. */
#include <stdarg.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"

void pl_response_free(pl_response *resp)
{
    pl_buf_free(&resp->body);
}

const char *pl_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

/* See http_int.h. */
void pl_http_json(pl_response *resp, int status)
{
    resp->status = status;
    resp->content_type = "application/json";
    resp->cache_control = "no-store";
}

/* See http_int.h. */
void pl_http_error(pl_response *resp, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pl_buf_reset(&resp->body);
    pl_http_json(resp, status);
    pl_json_error(&resp->body, msg);
}

/* See http_int.h. */
void pl_http_json_time(pl_buf *b, int64_t ms)
{
    pl_buf_printf(b, "%" PRId64 ".%03d", ms / 1000, (int)(ms % 1000 < 0 ? -(ms % 1000) : ms % 1000));
}

/* See http_int.h. */
void pl_http_json_time_or_null(pl_buf *b, int64_t ms)
{
    if (ms)
        pl_http_json_time(b, ms);
    else
        pl_buf_puts(b, "null");
}

/* See http_int.h. */
void pl_http_json_pid_or_null(pl_buf *b, uint64_t pid)
{
    if (pid)
        pl_json_u64(b, pid);
    else
        pl_buf_puts(b, "null");
}

/* See http_int.h. */
void pl_http_json_host_or_null(pl_buf *b, const char *host)
{
    if (host)
        pl_json_cstr(b, host);
    else
        pl_buf_puts(b, "null");
}

/* See http_int.h. */
void pl_http_json_incarnation(pl_buf *b, const pl_incarnation *inc)
{
    pl_buf_puts(b, "{\"pid\":");
    pl_json_u64(b, inc->pid);
    pl_buf_puts(b, ",\"start\":");
    pl_json_u64_str(b, inc->start);
    pl_buf_putc(b, '}');
}

/* See http_int.h. */
void pl_http_json_series(pl_buf *b, const int64_t *v, size_t n)
{
    pl_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            pl_buf_putc(b, ',');
        if (v[i] < 0)
            pl_buf_puts(b, "null");
        else
            pl_json_i64(b, v[i]);
    }
    pl_buf_putc(b, ']');
}
