/* pyloot: the command-line program.
 *
 *   pyloot [-h HOST] [-p PORT] [--db DIR] [--token T] [--read-only]
 *                                           the central server: takes workers' pushes into a
 *                                           store and serves its UI and API (libmicrohttpd)
 *   pyloot procs --db DIR [--json|--csv]    the incarnations of a store
 *   pyloot history --db DIR [...]           object counts by type
 *
 * The only file that includes microhttpd.h; never links libpython. Every
 * failure prints "pyloot: <what> failed: <why>" and exits non-zero. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <microhttpd.h>

#include "pyloot/access.h"
#include "central.h"
#include "pyloot/error.h"
#include "pyloot/handler.h"
#include "pyloot/ingest.h"
#include "pyloot/json.h"
#include "pyloot/store.h"

/* Limits of the HTTP server; docs/cli.md ("Limits of the server") says why
 * each value. */
#define HTTP_MAX_CONNECTIONS 4096u   /* ~3,000 pushing workers + the UI + headroom */
#define HTTP_MAX_PER_IP 256u         /* 128 workers behind one address, push + long poll each */
#define HTTP_IDLE_TIMEOUT_S 60u      /* > the default 30 s interval: keep-alive survives between pushes */
#define HTTP_CONNECTION_MEMORY (32u << 10) /* request line + headers (URL, cookies) per connection */
#define HTTP_THREADS 4u              /* epoll threads; requests are short, I/O never blocks them */
#define MAX_BODY (1u << 20)          /* a request body of the shared handler's routes */
#define FDS_RESERVED 64u             /* the store, the listening socket, stdio, epoll */

static const char usage[] =
    "usage: pyloot [-h HOST] [-p PORT] [--db DIR] [--token TOKEN] [--read-only] [--no-gzip] [--help]\n"
    "              [--version]\n"
    "       pyloot procs --db DIR [--json | --csv]\n"
    "       pyloot history --db DIR [-q TEXT] [--sort growth|count|name] [--limit N] [--offset N]\n"
    "                      [--pid PID] [--json | --csv]\n"
    "\n"
    "Collect the samples of pyloot workers on many hosts (PyLoot(host=..., port=...)) into a store\n"
    "and serve its UI and HTTP API; or serve, or print, what a store holds.\n"
    "\n"
    "optional arguments:\n"
    "-h HOST, --host HOST  Host to listen on. (Default: 0.0.0.0)\n"
    "-p PORT, --port PORT  Port to listen on. (Default: 8000)\n"
    "--db DIR              The store directory (created if missing). Default: $PYLOOT_DB, else\n"
    "                      $XDG_DATA_HOME/pyloot, else ~/.local/share/pyloot\n"
    "--token TOKEN         Require this token (Authorization: Bearer, or the UI's login) from workers\n"
    "                      and readers, for every route but the UI files. Default: $PYLOOT_TOKEN.\n"
    "                      Without one, live-object routes answer only local requests that came\n"
    "                      through no proxy\n"
    "--read-only           Serve an existing store (a server's PyLoot(path=...)); take no pushes\n"
    "--no-gzip             Never gzip responses\n"
    "--help                show this help message and exit\n"
    "--version             show the version and exit\n"
    "\n"
    "history options:\n"
    "-q TEXT               only types whose name contains TEXT (case-insensitive)\n"
    "--sort KEY            growth (default), count or name\n"
    "--limit N             types to print (default 50, at most 1000)\n"
    "--offset N            skip the first N types\n"
    "--pid PID             one process instead of the merged live processes\n"
    "--json, --csv         machine-readable output instead of a table\n";

static void fail(const char *what, const char *why)
{
    fprintf(stderr, "pyloot: %s failed: %s\n", what, why);
}

/* Strict decimal within [lo, hi]. */
static int parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 18)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int is_valued_option(const char *a)
{
    static const char *const names[] = {"-h", "--host", "-p", "--port", "--db", "-q",
                                        "--sort", "--limit", "--offset", "--pid", "--token", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(a, names[i]) == 0)
            return 1;
    return 0;
}

static int open_store(const char *db, pl_store **store)
{
    struct stat st;
    if (!db || !*db) {
        fail("opening the store", "no store given: use --db DIR (or set PYLOOT_DB)");
        return -1;
    }
    if (stat(db, &st) != 0 || !S_ISDIR(st.st_mode)) {
        char why[512];
        snprintf(why, sizeof why, "%s is not a directory", db);
        fail("opening the store", why);
        return -1;
    }
    pl_store_options opt;
    memset(&opt, 0, sizeof opt);
    opt.path = db;
    opt.read_only = 1;
    int rc = pl_store_open(store, &opt);
    if (rc) {
        char why[512];
        snprintf(why, sizeof why, "%s: %s", db, pl_strerror(rc));
        fail("opening the store", why);
        return -1;
    }
    return 0;
}

/* Creates every missing directory of path (mode 0700). */
static int make_dirs(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return errno;
    return 0;
}

/* The central server's store, writable: --db, else $PYLOOT_DB (already in
 * db), else $XDG_DATA_HOME/pyloot, else ~/.local/share/pyloot; created if
 * missing. A store of an older schema is migrated by the open. */
static int open_central_store(const char *db, char *buf, size_t len, pl_store **store)
{
    char why[4200];
    if (!db || !*db) {
        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        if (xdg && *xdg == '/')
            snprintf(buf, len, "%s/pyloot", xdg);
        else if (home && *home)
            snprintf(buf, len, "%s/.local/share/pyloot", home);
        else {
            fail("opening the store", "no store given and no home directory: use --db DIR");
            return -1;
        }
        db = buf;
    }
    int rc = make_dirs(db);
    if (rc) {
        snprintf(why, sizeof why, "creating %s: %s", db, strerror(rc));
        fail("opening the store", why);
        return -1;
    }
    pl_store_options opt;
    memset(&opt, 0, sizeof opt);
    opt.path = db;
    rc = pl_store_open(store, &opt);
    if (rc) {
        snprintf(why, sizeof why, "%s: %s%s", db, pl_strerror(rc),
                 rc == PL_ESCHEMA ? " (a newer pyloot wrote it: use that version, or another --db)" : "");
        fail("opening the store", why);
        return -1;
    }
    fprintf(stderr, "pyloot: store %s\n", db);
    return 0;
}

/* ---- terminal output ---- */

static void fmt_time(int64_t ms, char *out, size_t len)
{
    if (!ms) {
        snprintf(out, len, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Writes s as one CSV field (quoted when it needs to be). */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Runs one GET through the shared handler and prints its JSON body. */
static int print_json(pl_store *store, const char *path, const char *query)
{
    pl_handler *h = NULL;
    pl_handler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = store;
    opt.disable_gzip = 1;
    if (pl_handler_new(&h, &opt)) {
        fail("answering", "out of memory");
        return 1;
    }
    pl_request req = {.method = "GET", .path = path, .query = query};
    pl_response resp;
    pl_handler_handle(h, &req, &resp);
    fwrite(resp.body.data ? resp.body.data : "", 1, resp.body.len, stdout);
    fputc('\n', stdout);
    int status = resp.status;
    pl_response_free(&resp);
    pl_handler_free(h);
    return status == 200 ? 0 : 1;
}

static int cmd_procs(pl_store *store, int format)
{
    if (format == 'j')
        return print_json(store, "/api/procs", NULL);
    pl_proc_info *procs = NULL;
    size_t n = 0;
    int rc = pl_store_procs(store, &procs, &n);
    if (rc) {
        fail("reading the store", pl_strerror(rc));
        return 1;
    }
    if (format == 'c')
        printf("pid,start,alive,started,last_seen,ended,samples,rss,host,argv\n");
    else
        printf("%-8s %-6s %-19s  %-19s  %-19s  %8s %10s  %s\n", "PID", "ALIVE", "STARTED (UTC)",
               "LAST SEEN", "ENDED", "SAMPLES", "RSS", "COMMAND");
    for (size_t i = 0; i < n; i++) {
        const pl_proc_info *p = &procs[i];
        char started[32], seen[32], ended[32];
        fmt_time(p->first_seen_ms, started, sizeof started);
        fmt_time(p->last_seen_ms, seen, sizeof seen);
        fmt_time(p->ended_ms, ended, sizeof ended);
        if (format == 'c') {
            printf("%u,%" PRIu64 ",%s,%s,%s,%s,%u,%" PRIu64 ",", p->inc.pid, p->inc.start,
                   p->alive ? "true" : "false", started, seen, p->ended_ms ? ended : "", p->samples, p->rss);
            csv_field(stdout, p->host);
            fputc(',', stdout);
            csv_field(stdout, p->argv);
            fputc('\n', stdout);
        } else {
            printf("%-8u %-6s %-19s  %-19s  %-19s  %8u %9.1fM  %.60s\n", p->inc.pid, p->alive ? "yes" : "no",
                   started, seen, ended, p->samples, p->rss / 1048576.0, p->argv);
        }
    }
    free(procs);
    return 0;
}

static int cmd_history(pl_store *store, const pl_history_query *q, int format, const char *raw_query)
{
    if (format == 'j')
        return print_json(store, "/api/history", raw_query);
    pl_history *h = NULL;
    int rc = pl_store_history(store, q, &h);
    if (rc == PL_ENOTFOUND && q->pid) {
        char why[64];
        snprintf(why, sizeof why, "no incarnation with pid %u in this store", q->pid);
        fail("reading the history", why);
        return 1;
    }
    if (rc) {
        fail("reading the history", pl_strerror(rc));
        return 1;
    }
    if (format == 'c')
        printf("name,count,bytes,growth\n");
    else
        printf("%12s %12s %14s  %s\n", "COUNT", "GROWTH", "BYTES", "TYPE");
    for (size_t i = 0; i < h->n_types; i++) {
        const pl_history_type *t = &h->types[i];
        if (format == 'c') {
            csv_field(stdout, t->name);
            printf(",%" PRIu64 ",%" PRIu64 ",%" PRId64 "\n", t->count, t->bytes, t->growth);
        } else {
            printf("%12" PRIu64 " %+12" PRId64 " %14" PRIu64 "  %s\n", t->count, t->growth, t->bytes, t->name);
        }
    }
    if (format != 'c')
        printf("(%zu of %" PRIu64 " types)\n", h->n_types, h->total);
    pl_history_free(h);
    return 0;
}

/* ---- the HTTP server ---- */

struct conn {
    char *uri;       /* raw request URI, query string included */
    pl_buf body;
    int too_big;
    int started;     /* the first call (headers only) has been seen */
    struct central_conn central;
};

/* The remote-mode routes; NULL when the command prints instead of serving.
 * Set before the daemon starts, cleared after it stops. */
static struct central *g_central;

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct conn *cc = calloc(1, sizeof *cc);
    if (cc)
        cc->uri = strdup(uri ? uri : "/");
    return cc;
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn *cc = *con_cls;
    if (cc) {
        central_conn_done(g_central, &cc->central);
        free(cc->uri);
        pl_buf_free(&cc->body);
        free(cc);
    }
    *con_cls = NULL;
}

/* The request's access fields (pyloot/access.h): credentials, the peer's
 * numeric address (written into peer), proxy headers, the Accept header. */
static void add_access_fields(struct MHD_Connection *c, pl_request *req, char *peer, size_t peer_len)
{
    req->authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    req->cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
    req->accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    req->proxied = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For") != NULL ||
                   MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Forwarded") != NULL ||
                   MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Real-IP") != NULL;
    req->mount = "";
    peer[0] = '\0';
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, peer, (socklen_t)peer_len);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, peer, (socklen_t)peer_len);
    req->peer = peer;
}

/* Sends a handler's response, with its access headers. */
static enum MHD_Result queue_response(struct MHD_Connection *c, const pl_response *resp)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        resp->body.len, (void *)(resp->body.data ? resp->body.data : ""), MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (resp->content_type)
        MHD_add_response_header(r, "Content-Type", resp->content_type);
    if (resp->content_encoding)
        MHD_add_response_header(r, "Content-Encoding", resp->content_encoding);
    if (resp->vary_accept_encoding)
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
    if (resp->cache_control)
        MHD_add_response_header(r, "Cache-Control", resp->cache_control);
    if (resp->www_authenticate)
        MHD_add_response_header(r, "WWW-Authenticate", resp->www_authenticate);
    if (resp->set_cookie[0])
        MHD_add_response_header(r, "Set-Cookie", resp->set_cookie);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned int)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result queue(struct MHD_Connection *c, int status, const char *type, const void *data,
                             size_t len, const char *encoding, int vary, const char *cache)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (type)
        MHD_add_response_header(r, "Content-Type", type);
    if (encoding)
        MHD_add_response_header(r, "Content-Encoding", encoding);
    if (vary)
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
    if (cache)
        MHD_add_response_header(r, "Cache-Control", cache);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned int)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The largest body a route takes: a push's compressed message, a worker's
 * reply, or MAX_BODY. */
static size_t body_limit(const char *url)
{
    if (url && strcmp(url, "/api/samples") == 0)
        return PL_INGEST_MAX_BODY;
    if (url && strcmp(url, "/api/remote/reply") == 0)
        return PL_REMOTE_REPLY_MAX;
    return MAX_BODY;
}

static enum MHD_Result body_too_large(struct MHD_Connection *c, size_t limit)
{
    char msg[80];
    int n = snprintf(msg, sizeof msg, "{\"error\":\"request body must be at most %zu MiB\"}", limit >> 20);
    return queue(c, 413, "application/json", msg, (size_t)n, NULL, 0, "no-store");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    pl_handler *h = cls;
    struct conn *cc = *con_cls;
    if (!cc || !cc->uri)
        return MHD_NO;
    if (!cc->started) {
        /* The first call has the headers only. A body announced too big is
         * refused before it is read; otherwise the body (of any method)
         * arrives in the next calls, then one more call with no data asks
         * for the answer. */
        cc->started = 1;
        const char *announced =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t n;
        if (announced && parse_num(announced, 0, body_limit(url), &n) != 0)
            return body_too_large(c, body_limit(url));
        return MHD_YES;
    }
    if (*upload_size) {
        /* A chunked body (no Content-Length) past the limit is read to its
         * end and dropped, then answered 413. */
        if (cc->too_big || cc->body.len + *upload_size > body_limit(url)) {
            cc->too_big = 1;
            pl_buf_free(&cc->body);
        } else {
            pl_buf_append(&cc->body, upload, *upload_size);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cc->too_big)
        return body_too_large(c, body_limit(url));
    char *q = strchr(cc->uri, '?');
    pl_request req = {.method = method, .path = url, .query = q ? q + 1 : NULL,
                      .accept_encoding =
                          MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING),
                      .body = cc->body.data, .body_len = cc->body.len};
    char peer[INET6_ADDRSTRLEN];
    add_access_fields(c, &req, peer, sizeof peer);
    if (g_central) {
        int handled = central_request(g_central, c, &cc->central, &req);
        if (handled >= 0)
            return (enum MHD_Result)handled;
    }
    pl_response resp;
    pl_handler_handle(h, &req, &resp);
    enum MHD_Result ret = queue_response(c, &resp);
    pl_response_free(&resp);
    return ret;
}

/* How many connections this process can hold: raises the soft limit on open
 * files as far as HTTP_MAX_CONNECTIONS needs (never above the hard limit) and
 * returns HTTP_MAX_CONNECTIONS, or fewer when the hard limit is lower. */
static unsigned int connection_limit(void)
{
    struct rlimit rl;
    rlim_t want = HTTP_MAX_CONNECTIONS + FDS_RESERVED;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return HTTP_MAX_CONNECTIONS;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t raised = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        struct rlimit set = {raised, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &set) == 0)
            rl.rlim_cur = raised;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return HTTP_MAX_CONNECTIONS;
    if (rl.rlim_cur < 2 * FDS_RESERVED)
        return FDS_RESERVED;
    return (unsigned int)(rl.rlim_cur - FDS_RESERVED);
}

/* MHD's messages (a refused connection, a malformed request ...) on stderr,
 * at most 10 a second so that a flood of bad clients cannot flood the log. */
static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static time_t second;
    static unsigned int printed, dropped;
    time_t now = time(NULL);
    pthread_mutex_lock(&lock);
    if (now != second) {
        if (dropped)
            fprintf(stderr, "pyloot: http: %u more messages not shown\n", dropped);
        second = now;
        printed = dropped = 0;
    }
    if (printed < 10) {
        printed++;
        fputs("pyloot: http: ", stderr);
        vfprintf(stderr, fmt, ap);
        size_t n = strlen(fmt);
        if (!n || fmt[n - 1] != '\n')
            fputc('\n', stderr);
    } else {
        dropped++;
    }
    pthread_mutex_unlock(&lock);
}

/* Starts the HTTP server on addr with the limits above: a pool of epoll
 * threads (a slow or idle client holds a connection, never a thread), a
 * total and a per-address connection limit, an idle timeout and a memory
 * bound per connection. Returns NULL when it cannot listen. */
static struct MHD_Daemon *start_daemon(pl_handler *h, const struct addrinfo *addr)
{
    /* Suspend/resume: a worker's long poll is a parked connection, not a
     * blocked thread (src/cli/central.c). */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    /* epoll scales to thousands of connections; poll() is the fallback
     * (never select(), which stops at 1024 descriptors). */
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
    if (addr->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    unsigned int limit = connection_limit();
    if (limit < HTTP_MAX_CONNECTIONS)
        fprintf(stderr, "pyloot: at most %u connections (the limit on open files is too low for %u)\n", limit,
                HTTP_MAX_CONNECTIONS);
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
                            MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, /* first, or MHD complains */
                            MHD_OPTION_SOCK_ADDR, addr->ai_addr,
                            MHD_OPTION_URI_LOG_CALLBACK, uri_logger, NULL,
                            MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
                            MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS,
                            MHD_OPTION_CONNECTION_LIMIT, limit,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_MAX_PER_IP,
                            MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
                            MHD_OPTION_END);
}

static int serve(pl_store *store, const char *host, const char *port, int no_gzip, const char *token,
                 int read_only)
{
    int code = 1;
    pl_handler *h = NULL;
    struct addrinfo hints, *ai = NULL;
    struct MHD_Daemon *d = NULL;
    pl_handler_options opt;
    memset(&opt, 0, sizeof opt);
    opt.store = store;
    opt.disable_gzip = no_gzip;
    opt.token = token;
    if (pl_handler_new(&h, &opt) || central_new(&g_central, store, token, read_only)) {
        fail("starting", "out of memory");
        goto out;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai) {
        char why[256];
        snprintf(why, sizeof why, "%s:%s: %s", host, port, gai_strerror(gai));
        fail("resolving the address", why);
        goto out;
    }
    /* Signals are handled by sigwait below; MHD's threads inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    d = start_daemon(h, ai);
    if (!d) {
        char why[256];
        snprintf(why, sizeof why, "could not listen on %s:%s (in use, or not an address of this host)", host,
                 port);
        fail("starting the server", why);
        goto out;
    }
    fprintf(stderr, "pyloot: %s %s on http://%s:%s/%s (Ctrl-C stops)\n",
            read_only ? "serving" : "collecting into", pl_store_path(store), host, port,
            token && *token ? " with a token" : "");
    int sig;
    sigwait(&set, &sig);
    fprintf(stderr, "pyloot: stopping\n");
    code = 0;
out:
    central_stop(g_central);
    if (d)
        MHD_stop_daemon(d);
    central_free(g_central);
    g_central = NULL;
    if (ai)
        freeaddrinfo(ai);
    pl_handler_free(h);
    return code;
}

int main(int argc, char **argv)
{
    const char *host = "0.0.0.0", *port = "8000", *db = getenv("PYLOOT_DB");
    const char *cmd = NULL, *text = NULL, *token = getenv("PYLOOT_TOKEN");
    int format = 't', no_gzip = 0, read_only = 0;
    uint64_t v;
    pl_history_query hq;
    memset(&hq, 0, sizeof hq);
    hq.sort = PL_SORT_GROWTH;
    hq.limit = 50;
    pl_buf raw = PL_BUF_INIT; /* the same options as an HTTP query, for --json */

    int i = 1;
    if (argc > 1 && (strcmp(argv[1], "procs") == 0 || strcmp(argv[1], "history") == 0 ||
                     strcmp(argv[1], "serve") == 0))
        cmd = argv[i++];
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("pyloot %s\n", PYLOOT_VERSION);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            format = 'j';
            takes = 0;
        } else if (strcmp(a, "--csv") == 0) {
            format = 'c';
            takes = 0;
        } else if (strcmp(a, "--no-gzip") == 0) {
            no_gzip = 1;
            takes = 0;
        } else if (strcmp(a, "--read-only") == 0) {
            read_only = 1;
            takes = 0;
        } else if (!is_valued_option(a)) {
            fprintf(stderr, "pyloot: reading the arguments failed: unknown argument %s\n%s", a, usage);
            return 2;
        } else if (!val) {
            fprintf(stderr, "pyloot: reading the arguments failed: %s needs a value\n%s", a, usage);
            return 2;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--host") == 0) {
            host = val;
        } else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) {
            if (parse_num(val, 1, 65535, &v)) {
                fail("reading the arguments", "--port must be a number from 1 to 65535");
                return 2;
            }
            port = val;
        } else if (strcmp(a, "--db") == 0) {
            db = val;
        } else if (strcmp(a, "--token") == 0) {
            token = val;
        } else if (strcmp(a, "-q") == 0) {
            if (strlen(val) > 256) {
                fail("reading the arguments", "-q must be at most 256 bytes");
                return 2;
            }
            text = val;
        } else if (strcmp(a, "--sort") == 0) {
            if (strcmp(val, "growth") == 0)
                hq.sort = PL_SORT_GROWTH;
            else if (strcmp(val, "count") == 0)
                hq.sort = PL_SORT_COUNT;
            else if (strcmp(val, "name") == 0)
                hq.sort = PL_SORT_NAME;
            else {
                fail("reading the arguments", "--sort must be growth, count or name");
                return 2;
            }
            pl_buf_printf(&raw, "&sort=%s", val);
        } else if (strcmp(a, "--limit") == 0) {
            if (parse_num(val, 1, 1000, &hq.limit)) {
                fail("reading the arguments", "--limit must be a number from 1 to 1000");
                return 2;
            }
            pl_buf_printf(&raw, "&limit=%s", val);
        } else if (strcmp(a, "--offset") == 0) {
            if (parse_num(val, 0, 1000000000, &hq.offset)) {
                fail("reading the arguments", "--offset must be a number from 0 to 1000000000");
                return 2;
            }
            pl_buf_printf(&raw, "&offset=%s", val);
        } else if (strcmp(a, "--pid") == 0) {
            if (parse_num(val, 1, 4194304, &v)) {
                fail("reading the arguments", "--pid must be a number from 1 to 4194304");
                return 2;
            }
            hq.pid = (uint32_t)v;
            pl_buf_printf(&raw, "&pid=%s", val);
        }
        i += takes;
    }
    if (text) {
        hq.q = text;
        pl_buf_puts(&raw, "&q=");
        for (const unsigned char *p = (const unsigned char *)text; *p; p++)
            pl_buf_printf(&raw, "%%%02X", *p);
    }
    hq.now_ms = pl_now_ms();

    int serving = !cmd || strcmp(cmd, "serve") == 0;
    if (token && strlen(token) > 1024) {
        fail("reading the arguments", "the token must be at most 1024 bytes");
        return 2;
    }
    if (token && *token && !pl_token_valid(token)) {
        fail("reading the arguments", "the token (--token or PYLOOT_TOKEN) must be 1 to 1024 visible ASCII "
                                      "characters other than '\"', ',', ';' and '\\'");
        return 2;
    }
    pl_store *store = NULL;
    char default_db[4096];
    if (serving && !read_only) {
        if (open_central_store(db, default_db, sizeof default_db, &store))
            return 1;
    } else if (open_store(db, &store)) {
        return 1;
    }
    int code;
    if (serving)
        code = serve(store, host, port, no_gzip, token, read_only);
    else if (strcmp(cmd, "procs") == 0)
        code = cmd_procs(store, format);
    else
        code = cmd_history(store, &hq, format, raw.len ? raw.data + 1 : NULL);
    pl_store_close(store);
    pl_buf_free(&raw);
    return code;
}
