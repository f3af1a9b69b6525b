/* POST /api/login and /api/logout: the login cookie of the access rule
 * (pyloot/access.h), for browsers that cannot send a Bearer token. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "pyloot/error.h"
#include "pyloot/json.h"
#include "pyloot/access.h"

static void set_cookie(pl_response *resp, const char *token, const pl_request *req)
{
    pl_buf c = PL_BUF_INIT;
    if (pl_access_cookie(&c, token, req->mount, req->secure) == 0 && c.len < sizeof resp->set_cookie)
        memcpy(resp->set_cookie, c.data, c.len + 1);
    pl_buf_free(&c);
}

/* POST /api/login (body: the token) and POST /api/logout. */
static void login_or_out(pl_handler *h, const pl_request *req, int login, pl_response *resp)
{
    if (!login) {
        pl_http_json(resp, 200);
        pl_buf_puts(&resp->body, "{\"ok\":true}");
        set_cookie(resp, NULL, req);
        return;
    }
    if (!h->opt.token || !*h->opt.token) {
        pl_http_error(resp, 400, "this pyloot has no token to log in with (PyLoot(token=...) sets one)");
        return;
    }
    const char *b = req->body ? req->body : "";
    size_t n = req->body_len;
    while (n && (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
        n--;
    if (n > PL_TOKEN_MAX || !pl_token_equal(b, n, h->opt.token, strlen(h->opt.token))) {
        pl_http_error(resp, 401, "the token is not correct");
        resp->www_authenticate = "Bearer realm=\"pyloot\"";
        return;
    }
    pl_http_json(resp, 200);
    pl_buf_puts(&resp->body, "{\"ok\":true}");
    set_cookie(resp, h->opt.token, req);
}

/* See http_int.h. */
void pl_route_login(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    login_or_out(h, req, 1, resp);
}

/* See http_int.h. */
void pl_route_logout(pl_handler *h, const pl_request *req, const char *rest, pl_response *resp)
{
    login_or_out(h, req, 0, resp);
}
