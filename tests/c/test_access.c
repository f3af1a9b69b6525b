/* The access rule, the token comparison, cookies, loopback peers, the
 * handler's 401/403/login answers, and secret-looking names. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyloot/access.h"
#include "pyloot/handler.h"
#include "pyloot/redact.h"
#include "pyloot/store.h"
#include "test.h"

static void test_classify(void)
{
    CHECK_EQ_INT(pl_access_classify("/"), PL_ROUTE_OPEN);
    CHECK_EQ_INT(pl_access_classify(""), PL_ROUTE_OPEN);
    CHECK_EQ_INT(pl_access_classify("/static/app.js"), PL_ROUTE_OPEN);
    CHECK_EQ_INT(pl_access_classify("/api/login"), PL_ROUTE_OPEN);
    CHECK_EQ_INT(pl_access_classify("/api/history"), PL_ROUTE_SUMMARY);
    CHECK_EQ_INT(pl_access_classify("/api/memory"), PL_ROUTE_SUMMARY); /* numbers only */
    /* Remote mode: pushes, polls and replies of workers on other hosts. */
    CHECK_EQ_INT(pl_access_classify("/api/samples"), PL_ROUTE_SUMMARY);
    CHECK_EQ_INT(pl_access_classify("/api/remote/poll"), PL_ROUTE_SUMMARY);
    CHECK_EQ_INT(pl_access_classify("/api/remote/reply"), PL_ROUTE_SUMMARY);
    CHECK_EQ_INT(pl_access_classify("/api/remote/other"), PL_ROUTE_VALUES);
    /* The dominator-tree routes show reprs: live objects, loopback only by default. */
    CHECK_EQ_INT(pl_access_classify("/api/retainers"), PL_ROUTE_VALUES);
    CHECK_EQ_INT(pl_access_classify("/api/suspects"), PL_ROUTE_VALUES);
    CHECK_EQ_INT(pl_access_classify("/api/procs"), PL_ROUTE_SUMMARY);
    CHECK_EQ_INT(pl_access_classify("/metrics"), PL_ROUTE_SUMMARY);
    CHECK_EQ_INT(pl_access_classify("/api/objects"), PL_ROUTE_VALUES);
    CHECK_EQ_INT(pl_access_classify("/api/objects/12/path"), PL_ROUTE_VALUES);
    CHECK_EQ_INT(pl_access_classify("/api/witnesses"), PL_ROUTE_VALUES);
    CHECK_EQ_INT(pl_access_classify("/api/history/x"), PL_ROUTE_VALUES);
    CHECK_EQ_INT(pl_access_classify("/metrics/"), PL_ROUTE_VALUES);
}

static void test_token_equal_and_valid(void)
{
    CHECK(pl_token_equal("abc", 3, "abc", 3));
    CHECK(!pl_token_equal("abd", 3, "abc", 3));
    CHECK(!pl_token_equal("ab", 2, "abc", 3));
    CHECK(!pl_token_equal("abcabc", 6, "abc", 3));
    CHECK(!pl_token_equal("", 0, "abc", 3));
    CHECK(!pl_token_equal("x", 1, "", 0));
    CHECK(pl_token_valid("s3cr3t-_.~!#$%&'()*+/:<=>?@[]^`{|}"));
    CHECK(!pl_token_valid(""));
    CHECK(!pl_token_valid(NULL));
    CHECK(!pl_token_valid("a b"));
    CHECK(!pl_token_valid("a;b"));
    CHECK(!pl_token_valid("a\"b"));
    CHECK(!pl_token_valid("caf\xc3\xa9"));
    char big[PL_TOKEN_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(!pl_token_valid(big));
    big[PL_TOKEN_MAX] = '\0';
    CHECK(pl_token_valid(big));
}

static void test_loopback(void)
{
    CHECK(pl_peer_is_loopback("127.0.0.1"));
    CHECK(pl_peer_is_loopback("127.1.2.3"));
    CHECK(pl_peer_is_loopback("::1"));
    CHECK(pl_peer_is_loopback("::ffff:127.0.0.1"));
    CHECK(!pl_peer_is_loopback("::ffff:10.0.0.1"));
    CHECK(!pl_peer_is_loopback("10.0.0.1"));
    CHECK(!pl_peer_is_loopback("203.0.113.7"));
    CHECK(!pl_peer_is_loopback("128.0.0.1"));
    CHECK(!pl_peer_is_loopback("localhost"));
    CHECK(!pl_peer_is_loopback(""));
    CHECK(!pl_peer_is_loopback(NULL));
    CHECK(!pl_peer_is_loopback("127.0.0.1 "));
}

static void test_cookie_find(void)
{
    const char *v;
    size_t n;
    CHECK(pl_cookie_find("a=1; pyloot_token=xyz; b=2", "pyloot_token", &v, &n));
    CHECK(n == 3 && memcmp(v, "xyz", 3) == 0);
    CHECK(pl_cookie_find("pyloot_token=\"q\"", "pyloot_token", &v, &n));
    CHECK(n == 1 && *v == 'q');
    CHECK(!pl_cookie_find("xpyloot_token=1; pyloot_tokenx=2", "pyloot_token", &v, &n));
    CHECK(!pl_cookie_find(NULL, "pyloot_token", &v, &n));
    CHECK(!pl_cookie_find("", "pyloot_token", &v, &n));
}

static int check_host(const char *token, const char *path, const char *auth, const char *cookie,
                      const char *peer, int proxied, int allowed, const char *host, const char *allowed_hosts,
                      char *why, size_t whylen)
{
    pl_access_request r = {auth, cookie, peer, proxied, allowed, host, allowed_hosts};
    int status = pl_access_check(token, pl_access_classify(path), &r, why, whylen);
    CHECK(status == 0 ? why[0] == '\0' : why[0] != '\0');
    return status;
}

static int check(const char *token, const char *path, const char *auth, const char *cookie, const char *peer,
                 int proxied, int allowed)
{
    char why[400];
    return check_host(token, path, auth, cookie, peer, proxied, allowed, NULL, NULL, why, sizeof why);
}

/* DNS rebinding: a page of another site re-points its name at 127.0.0.1;
 * the peer is loopback, the Host is the page's own name. */
static void test_host_rule(void)
{
    const char *local[] = {"localhost", "LOCALHOST:8101", "localhost.", "app.localhost:9000", "127.0.0.1",
                           "127.0.0.1:8101", "127.9.8.7", "[::1]", "[::1]:8101", "[::ffff:127.0.0.1]:80",
                           "", NULL};
    const char *other[] = {"attacker.example", "attacker.example:8101", "localhost.attacker.example",
                           "xlocalhost", "evil-localhost:80", "10.0.0.1:8101", "[::2]:80", "[::1", "::1",
                           "localhost:", "localhost:abc", "localhost:123456", "localhost:80:80", "127.0.0.1 ",
                           "[::1]x", "0.0.0.0", ".localhost", NULL};
    for (int i = 0; local[i]; i++) {
        CHECK(pl_host_allowed(local[i], NULL));
        if (!pl_host_allowed(local[i], NULL))
            fprintf(stderr, "  local: '%s'\n", local[i]);
    }
    CHECK(pl_host_allowed(NULL, NULL));
    for (int i = 0; other[i]; i++) {
        CHECK(!pl_host_allowed(other[i], NULL));
        if (pl_host_allowed(other[i], NULL))
            fprintf(stderr, "  other: '%s'\n", other[i]);
    }
    const char *allowed = "devbox\n.corp.example\n[fd00::7]\n10.0.0.1";
    CHECK(pl_host_allowed("devbox:8000", allowed));
    CHECK(pl_host_allowed("DEVBOX.", allowed));
    CHECK(pl_host_allowed("corp.example", allowed));
    CHECK(pl_host_allowed("a.b.corp.example:443", allowed));
    CHECK(pl_host_allowed("[fd00::7]:80", allowed));
    CHECK(pl_host_allowed("10.0.0.1:8101", allowed));
    CHECK(!pl_host_allowed("devbox2", allowed));
    CHECK(!pl_host_allowed("xcorp.example", allowed));
    CHECK(!pl_host_allowed("attacker.example", allowed));
    CHECK(!pl_host_allowed("[fd00::8]", allowed));

    /* The rule: the default one only; a token or an allow callable decides alone. */
    char why[400];
    CHECK_EQ_INT(check_host(NULL, "/api/objects", NULL, NULL, "127.0.0.1", 0, 0, "attacker.example:8101", NULL,
                            why, sizeof why), 403);
    CHECK(strstr(why, "'attacker.example:8101'") != NULL);
    CHECK(strstr(why, "DNS rebinding") != NULL);
    CHECK(strstr(why, "PyLoot(allowed_hosts=[...])") != NULL);
    /* The whole message fits the handler's buffer. */
    CHECK(strstr(why, "pyloot --token)") != NULL);
    CHECK_EQ_INT(check_host(NULL, "/api/objects", NULL, NULL, "127.0.0.1", 0, 0, "localhost:8101", NULL, why,
                            sizeof why), 0);
    CHECK_EQ_INT(check_host(NULL, "/api/objects", NULL, NULL, "127.0.0.1", 0, 0, "devbox", "devbox", why,
                            sizeof why), 0);
    CHECK_EQ_INT(check_host(NULL, "/api/procs", NULL, NULL, "127.0.0.1", 0, 0, "attacker.example", NULL, why,
                            sizeof why), 0);
    CHECK_EQ_INT(check_host(NULL, "/api/objects", NULL, NULL, "127.0.0.1", 0, PL_ALLOW_YES, "attacker.example",
                            NULL, why, sizeof why), 0);
    CHECK_EQ_INT(check_host("tok", "/api/objects", "Bearer tok", NULL, "127.0.0.1", 0, 0, "attacker.example",
                            NULL, why, sizeof why), 0);
    /* The longest Host shown still leaves the whole message in 400 bytes. */
    char long_host[300];
    memset(long_host, 'a', sizeof long_host - 1);
    long_host[sizeof long_host - 1] = '\0';
    CHECK_EQ_INT(check_host(NULL, "/api/objects", NULL, NULL, "127.0.0.1", 0, 0, long_host, NULL, why, sizeof why),
                 403);
    CHECK(strstr(why, "pyloot --token)") != NULL);
    /* A host of control characters is not echoed as it is. */
    CHECK_EQ_INT(check_host(NULL, "/api/objects", NULL, NULL, "::1", 0, 0, "a\r\nb", NULL, why, sizeof why), 403);
    CHECK(strstr(why, "'a??b'") != NULL);
    /* A short buffer still gets a terminated message. */
    char small[16];
    CHECK_EQ_INT(check_host(NULL, "/api/objects", NULL, NULL, "127.0.0.1", 0, 0, "attacker.example", NULL, small,
                            sizeof small), 403);
    CHECK(strlen(small) == sizeof small - 1);
}

static void test_rule(void)
{
    /* With a token. */
    CHECK_EQ_INT(check("tok", "/static/app.js", NULL, NULL, "203.0.113.7", 1, 0), 0);
    CHECK_EQ_INT(check("tok", "/api/history", NULL, NULL, "127.0.0.1", 0, 0), 401);
    CHECK_EQ_INT(check("tok", "/api/history", "Bearer tok", NULL, "203.0.113.7", 1, 0), 0);
    CHECK_EQ_INT(check("tok", "/api/objects/1", "bearer  tok ", NULL, "203.0.113.7", 1, 0), 0);
    CHECK_EQ_INT(check("tok", "/api/history", "Bearer tok2", NULL, "127.0.0.1", 0, 0), 401);
    CHECK_EQ_INT(check("tok", "/api/history", "Basic dG9r", NULL, "127.0.0.1", 0, 0), 401);
    CHECK_EQ_INT(check("tok", "/metrics", NULL, "pyloot_token=tok", "10.0.0.1", 0, 0), 0);
    CHECK_EQ_INT(check("tok", "/metrics", NULL, "pyloot_token=to", "10.0.0.1", 0, 0), 401);
    CHECK_EQ_INT(check("tok", "/api/objects", NULL, NULL, "10.0.0.1", 0, PL_ALLOW_YES), 0);
    CHECK_EQ_INT(check("tok", "/api/objects", NULL, NULL, "10.0.0.1", 0, PL_ALLOW_NO), 401);
    /* An allow callable alone. */
    CHECK_EQ_INT(check(NULL, "/api/history", NULL, NULL, "127.0.0.1", 0, PL_ALLOW_NO), 403);
    CHECK_EQ_INT(check(NULL, "/api/objects", NULL, NULL, "203.0.113.7", 1, PL_ALLOW_YES), 0);
    CHECK_EQ_INT(check(NULL, "/", NULL, NULL, "203.0.113.7", 1, PL_ALLOW_NO), 0);
    /* Neither: the default rule. */
    CHECK_EQ_INT(check(NULL, "/api/history", NULL, NULL, "203.0.113.7", 1, 0), 0);
    CHECK_EQ_INT(check("", "/metrics", NULL, NULL, "203.0.113.7", 0, 0), 0);
    CHECK_EQ_INT(check(NULL, "/api/objects", NULL, NULL, "127.0.0.1", 0, 0), 0);
    CHECK_EQ_INT(check(NULL, "/api/objects", NULL, NULL, "::1", 0, 0), 0);
    CHECK_EQ_INT(check(NULL, "/api/objects", NULL, NULL, "127.0.0.1", 1, 0), 403);
    CHECK_EQ_INT(check(NULL, "/api/objects/5/children", NULL, NULL, "203.0.113.7", 0, 0), 403);
    CHECK_EQ_INT(check(NULL, "/api/objects", NULL, NULL, NULL, 0, 0), 403);
    CHECK_EQ_INT(check(NULL, "/api/objects", "Bearer x", NULL, "10.0.0.1", 0, 0), 403);
}

static void test_cookie_value(void)
{
    pl_buf b = PL_BUF_INIT;
    CHECK_OK(pl_access_cookie(&b, "tok", "/_pyloot", 0));
    CHECK_EQ_STR(pl_buf_cstr(&b), "pyloot_token=tok; Path=/_pyloot; HttpOnly; SameSite=Strict");
    pl_buf_reset(&b);
    CHECK_OK(pl_access_cookie(&b, NULL, "", 1));
    CHECK_EQ_STR(pl_buf_cstr(&b), "pyloot_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure");
    pl_buf_reset(&b);
    CHECK_OK(pl_access_cookie(&b, "tok", "/a;Domain=evil", 0));
    CHECK_EQ_STR(pl_buf_cstr(&b), "pyloot_token=tok; Path=/; HttpOnly; SameSite=Strict");
    pl_buf_free(&b);
}

/* The handler applies the rule before routing and answers /api/login. */
static void test_handler(void)
{
    char dir[] = "/tmp/pyloot-test-access-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    pl_store *store = NULL;
    pl_store_options so;
    memset(&so, 0, sizeof so);
    so.path = dir;
    so.map_size = 16u << 20;
    CHECK_OK(pl_store_open(&store, &so));
    pl_handler *h = NULL;
    pl_handler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = store;
    opt.disable_gzip = 1;
    opt.token = "s3cret";
    CHECK_OK(pl_handler_new(&h, &opt));
    pl_response r;

    pl_request req = {.method = "GET", .path = "/api/history"};
    req.peer = "127.0.0.1";
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK_EQ_INT(r.status, 401);
    CHECK(r.www_authenticate != NULL);
    CHECK(strstr(pl_buf_cstr(&r.body), "\"error\":\"this pyloot needs a token") != NULL);
    pl_response_free(&r);

    req.authorization = "Bearer s3cret";
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK_EQ_INT(r.status, 200);
    pl_response_free(&r);

    req.authorization = NULL;
    req.path = "/static/app.js";
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK_EQ_INT(r.status, 200);
    pl_response_free(&r);

    pl_request login = {.method = "POST", .path = "/api/login", .body = "wrong", .body_len = 5};
    login.mount = "/_pyloot";
    CHECK_OK(pl_handler_handle(h, &login, &r));
    CHECK_EQ_INT(r.status, 401);
    CHECK_EQ_STR(r.set_cookie, "");
    pl_response_free(&r);
    login.body = "s3cret\n";
    login.body_len = 7;
    CHECK_OK(pl_handler_handle(h, &login, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.set_cookie, "pyloot_token=s3cret; Path=/_pyloot; HttpOnly; SameSite=Strict");
    pl_response_free(&r);
    login.method = "GET";
    CHECK_OK(pl_handler_handle(h, &login, &r));
    CHECK_EQ_INT(r.status, 405);
    pl_response_free(&r);
    pl_request logout = {.method = "POST", .path = "/api/logout"};
    CHECK_OK(pl_handler_handle(h, &logout, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.set_cookie, "Max-Age=0") != NULL);
    pl_response_free(&r);

    req.path = "/metrics";
    req.cookie = "pyloot_token=s3cret";
    CHECK_OK(pl_handler_handle(h, &req, &r));
    CHECK_EQ_INT(r.status, 200);
    pl_response_free(&r);
    pl_handler_free(h);

    /* No token: the default rule; login has nothing to check against. */
    opt.token = NULL;
    CHECK_OK(pl_handler_new(&h, &opt));
    pl_request live = {.method = "GET", .path = "/api/objects", .query = "group=x"};
    live.peer = "203.0.113.7";
    CHECK_OK(pl_handler_handle(h, &live, &r));
    CHECK_EQ_INT(r.status, 403);
    CHECK(strstr(pl_buf_cstr(&r.body), "PyLoot(token=...)") != NULL);
    pl_response_free(&r);
    live.peer = "127.0.0.1";
    CHECK_OK(pl_handler_handle(h, &live, &r));
    CHECK_EQ_INT(r.status, 501); /* passed the rule; no live objects in this handler */
    pl_response_free(&r);
    live.host = "attacker.example:8101"; /* DNS rebinding */
    CHECK_OK(pl_handler_handle(h, &live, &r));
    CHECK_EQ_INT(r.status, 403);
    CHECK(strstr(pl_buf_cstr(&r.body), "allowed_hosts") != NULL);
    pl_response_free(&r);
    live.host = "localhost:8101";
    CHECK_OK(pl_handler_handle(h, &live, &r));
    CHECK_EQ_INT(r.status, 501);
    pl_response_free(&r);
    live.proxied = 1;
    CHECK_OK(pl_handler_handle(h, &live, &r));
    CHECK_EQ_INT(r.status, 403);
    pl_response_free(&r);
    login.method = "POST";
    CHECK_OK(pl_handler_handle(h, &login, &r));
    CHECK_EQ_INT(r.status, 400);
    pl_response_free(&r);
    pl_handler_free(h);

    pl_store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void test_redact(void)
{
    const char *yes[] = {"password", "DB_PASSWORD", "passwd", "client_secret", "csrftoken", "api_key", "API_KEY_2",
                         "apikey", "Authorization", "cookie", "session_key", "ssh_private_key", NULL};
    const char *no[] = {"name", "pass", "key", "session", "auth", "index", "", NULL};
    for (int i = 0; yes[i]; i++)
        CHECK(pl_redact_name(NULL, yes[i], strlen(yes[i])));
    for (int i = 0; no[i]; i++)
        CHECK(!pl_redact_name(NULL, no[i], strlen(no[i])));
    /* len is respected: no NUL needed, nothing read past it. */
    CHECK(!pl_redact_name(NULL, "passwordX", 7));
    CHECK(pl_redact_name(NULL, "passwordX", 8));

    pl_redact *r = NULL;
    CHECK_OK(pl_redact_new(&r, NULL));
    for (int i = 0; yes[i]; i++)
        CHECK(pl_redact_name(r, yes[i], strlen(yes[i])));
    pl_redact_free(r);
    CHECK_OK(pl_redact_new(&r, "SSN\n\ncard_number"));
    CHECK(pl_redact_name(r, "user_ssn", 8));
    CHECK(pl_redact_name(r, "Card_Number", 11));
    CHECK(!pl_redact_name(r, "password", 8)); /* the list replaces the default */
    pl_redact_free(r);
    CHECK_OK(pl_redact_new(&r, ""));
    CHECK(!pl_redact_name(r, "password", 8));
    pl_redact_free(r);
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_EQ_INT(pl_redact_new(&r, big), PL_EBADARG);
    CHECK(r == NULL);
    pl_redact_free(NULL);
}

static void expect_cmdline(const char *in, const char *want)
{
    pl_buf b = PL_BUF_INIT;
    CHECK_OK(pl_redact_cmdline(NULL, in, &b));
    CHECK_EQ_STR(pl_buf_cstr(&b), want);
    pl_buf_free(&b);
}

/* Command lines in /api/procs, the UI and `pyloot report`. */
static void test_redact_cmdline(void)
{
    expect_cmdline("gunicorn -e DATABASE_URL=postgres://app:S3cretPass@db/prod -w 4 app:app",
                   "gunicorn -e DATABASE_URL=postgres://app:<redacted>@db/prod -w 4 app:app");
    expect_cmdline("app --db=mysql://root:p@ss@db:3306/x?a=b", "app --db=mysql://root:<redacted>@db:3306/x?a=b");
    expect_cmdline("app redis://:hunter2@cache:6379/0 http://user@host/ http://host:8080/x",
                   "app redis://:<redacted>@cache:6379/0 http://user@host/ http://host:8080/x");
    expect_cmdline("a amqp://u:p1@h1,amqp://u:p2@h2", "a amqp://u:<redacted>@h1,amqp://u:<redacted>@h2");
    /* Cut off before the '@' (the store keeps 255 bytes of a command line). */
    expect_cmdline("a postgres://app:S3cr", "a postgres://app:<redacted>");
    expect_cmdline("a http://host:80", "a http://host:80");
    expect_cmdline("gunicorn --password=hunter2 --api-key abc --workers 4 --token=t -e API_TOKEN=x",
                   "gunicorn --password=<redacted> --api-key <redacted> --workers 4 --token=<redacted> -e "
                   "API_TOKEN=<redacted>");
    expect_cmdline("env DB_PASSWORD=x SECRET_KEY=y HOME=/root python app.py --session-key k",
                   "env DB_PASSWORD=<redacted> SECRET_KEY=<redacted> HOME=/root python app.py --session-key "
                   "<redacted>");
    expect_cmdline("python -m gunicorn -w 4 -b 127.0.0.1:8000 leaky:app",
                   "python -m gunicorn -w 4 -b 127.0.0.1:8000 leaky:app");
    expect_cmdline("app --password", "app --password");
    expect_cmdline("", "");
    expect_cmdline(NULL, "");
    expect_cmdline("  a  b ", "  a  b ");
    expect_cmdline("a ://x:y@z", "a ://x:<redacted>@z");

    pl_redact *r = NULL;
    CHECK_OK(pl_redact_new(&r, "pin"));
    pl_buf b = PL_BUF_INIT;
    CHECK_OK(pl_redact_cmdline(r, "app --pin 1234 --password=p", &b));
    CHECK_EQ_STR(pl_buf_cstr(&b), "app --pin <redacted> --password=p");
    pl_buf_free(&b);
    pl_redact_free(r);
}

int main(void)
{
    RUN(test_classify);
    RUN(test_token_equal_and_valid);
    RUN(test_loopback);
    RUN(test_cookie_find);
    RUN(test_rule);
    RUN(test_cookie_value);
    RUN(test_handler);
    RUN(test_redact);
    RUN(test_redact_cmdline);
    RUN(test_host_rule);
    return TEST_EXIT();
}
