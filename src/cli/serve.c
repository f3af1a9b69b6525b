/* pyloot: the HTTP server (`pyloot [serve] [--db DIR] [--read-only]`), on
 * libmicrohttpd: the central server of remote mode.
 *
 * With central.c, the only files that include microhttpd.h. It serves a
 * store through the same C request handler as the WSGI app and, unless
 * --read-only, takes workers' pushes, long polls and replies (central.c,
 * whose waiting requests are parked with MHD's suspend/resume); the limits
 * below are explained in docs/cli.md ("Limits of the server"). */
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

#include "central.h"
#include "cli.h"
#include "pyloot/heapdump.h"
#include "pyloot/access.h"
#include "pyloot/buf.h"
#include "pyloot/error.h"
#include "pyloot/handler.h"
#include "pyloot/ingest.h"
#include "pyloot/verify.h"
#include "slots.h"

/* Limits of the HTTP server; docs/cli.md ("Limits of the server") says why
 * each value. */
#define HTTP_MAX_CONNECTIONS 4096u   /* ~3,000 pushing workers + the UI + headroom */
#define HTTP_MAX_PER_IP 256u         /* 128 workers behind one address, push + long poll each */
#define HTTP_IDLE_TIMEOUT_S 60u      /* > the default 30 s interval: keep-alive survives between pushes */
#define HTTP_HEADER_TIMEOUT_S 10u    /* request line + headers: a worker sends them in one packet */
#define HTTP_REQUEST_TIMEOUT_S 60u   /* a body of 4 MiB at ~70 KB/s */
#define HTTP_MAX_PENDING 1024u       /* a quarter of the slots for requests not received whole */
#define HTTP_CONNECTION_MEMORY (32u << 10) /* request line + headers (URL, cookies) per connection */
#define HTTP_THREADS 4u              /* epoll threads; requests are short, I/O never blocks them */
#define MAX_BODY (1u << 20)          /* a request body of the shared handler's routes */
#define FDS_RESERVED 64u             /* the store, the listening socket, stdio, epoll */

const char cli_serve_help[] =
    "usage: pyloot [serve] [-h HOST] [-p PORT] [--db DIR] [--token TOKEN] [--read-only] [--no-gzip]\n"
    "                      [--header-timeout S] [--request-timeout S] [--max-per-address N]\n"
    "                      [--max-pending N]\n"
    "\n"
    "Collect the samples pushed by pyloot workers on many hosts (PyLoot(host=..., port=...)) into\n"
    "a store and serve its UI and HTTP API until Ctrl-C or SIGTERM; with --read-only, serve an\n"
    "existing store and take no pushes.\n"
    "\n"
    "-h HOST, --host HOST  Host to listen on. (Default: 0.0.0.0; with --read-only, 127.0.0.1)\n"
    "-p PORT, --port PORT  Port to listen on. (Default: 8000)\n"
    "--db DIR              the store directory, created if missing. Default: $PYLOOT_DB, else\n"
    "                      $XDG_DATA_HOME/pyloot, else ~/.local/share/pyloot (--read-only: an\n"
    "                      existing store, opened read-only; default $PYLOOT_DB)\n"
    "--token TOKEN         require this token for every route but the UI files (workers send it\n"
    "                      too; without one, live objects of pushing workers are off). Default:\n"
    "                      $PYLOOT_TOKEN\n"
    "--read-only           serve an existing store (a server's PyLoot(path=...)); take no pushes\n"
    "--no-gzip             never gzip responses\n"
    "--header-timeout S    close a connection whose request line and headers are not complete\n"
    "                      S seconds after it opened (or after its request line). Default: 10\n"
    "--request-timeout S   close a connection whose request body is not complete S seconds\n"
    "                      after its headers. Default: 60\n"
    "--max-per-address N   connections from one address at most. Default: 256\n"
    "--max-pending N       connections whose request is not received whole (headers or body) at\n"
    "                      most; a new one over N ends the one that has waited longest.\n"
    "                      Default: 1024\n";

const struct cli_option cli_serve_options[] = {
    {"--header-timeout", NULL, 1}, {"--request-timeout", NULL, 1}, {"--max-per-address", NULL, 1},
    {"--max-pending", NULL, 1},    {NULL, NULL, 0},
};

/* The connection limits (the serve options). */
struct limits {
    unsigned header_timeout_s, request_timeout_s, max_per_address, max_pending;
};

/* ---- the HTTP server ---- */

struct conn {
    char *uri;       /* raw request URI, query string included */
    pl_buf body;
    int too_big;
    int started;     /* the first call (headers only) has been seen */
    struct central_conn central;
};

/* The remote-mode routes. Set before the daemon starts, cleared after it
 * stops. */
static struct central *g_central;
/* The deadlines and the pending cap (slots.h). Set before the daemon
 * starts, freed after it stops. */
static struct slots *g_slots;

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct conn *cc = calloc(1, sizeof *cc);
    if (cc)
        cc->uri = strdup(uri ? uri : "/");
    slots_request_line(g_slots, c);
    return cc;
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn *cc = *con_cls;
    slots_request_done(g_slots, c);
    if (cc) {
        central_conn_done(g_central, &cc->central);
        free(cc->uri);
        pl_buf_free(&cc->body);
        free(cc);
    }
    *con_cls = NULL;
}

/* The request's access fields (pyloot/access.h): credentials, the peer's
 * numeric address (written into peer), proxy headers, Host, the Accept header. */
static void add_access_fields(struct MHD_Connection *c, pl_request *req, char *peer, size_t peer_len)
{
    req->authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    req->cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE);
    req->accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    req->proxied = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For") != NULL ||
                   MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Forwarded") != NULL ||
                   MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Real-IP") != NULL;
    req->host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
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
    if (url && strcmp(url, "/api/heap") == 0)
        return PL_HEAPDUMP_UPLOAD_MAX;
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
        slots_headers_done(g_slots, c);
        const char *announced =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t n;
        if (announced && cli_parse_num(announced, 0, body_limit(url), &n) != 0)
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
    slots_body_done(g_slots, c);
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
    enum MHD_Result ret = central_send(c, &resp, 0);
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
 * total and a per-address connection limit, an idle timeout, the deadlines
 * and the pending cap of g_slots, and a memory bound per connection.
 * Returns NULL when it cannot listen. */
static struct MHD_Daemon *start_daemon(pl_handler *h, const struct addrinfo *addr, const struct limits *lim)
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
                            MHD_OPTION_NOTIFY_CONNECTION, slots_notify, g_slots,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, lim->max_per_address,
                            MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
                            MHD_OPTION_END);
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
 * missing. A store of an older schema is migrated by the open. An existing
 * store is checked first by a read-only guarded open (pl_store_open_guarded
 * walks it in a child process): a damaged one is refused and left where it
 * is, never moved, since --db may name a server's own store. */
static int open_central_store(const char *db, pl_store **store)
{
    char buf[4096], why[4200];
    if (!db || !*db) {
        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        if (xdg && *xdg == '/')
            snprintf(buf, sizeof buf, "%s/pyloot", xdg);
        else if (home && *home)
            snprintf(buf, sizeof buf, "%s/.local/share/pyloot", home);
        else {
            cli_fail("opening the store", "no store given and no home directory: use --db DIR");
            return -1;
        }
        db = buf;
    }
    int rc = make_dirs(db);
    if (rc) {
        snprintf(why, sizeof why, "creating %s: %s", db, strerror(rc));
        cli_fail("opening the store", why);
        return -1;
    }
    pl_store_options opt;
    memset(&opt, 0, sizeof opt);
    opt.path = db;
    pl_store_report rep;
    memset(&rep, 0, sizeof rep);
    char mdb[4200];
    snprintf(mdb, sizeof mdb, "%s/data.mdb", db);
    struct stat st;
    rc = 0;
    if (stat(mdb, &st) == 0) {
        opt.read_only = 1;
        rc = pl_store_open_guarded(store, &opt, 0, &rep);
        if (!rc) {
            pl_store_close(*store);
            *store = NULL;
        }
        /* Readable past its bad records, but not a store to write into. */
        if (!rc && rep.records_damaged) {
            snprintf(rep.message, sizeof rep.message, "the store %.400s is damaged (%.500s); it was not opened",
                     db, rep.reason);
            rc = PL_ECORRUPT;
        }
        opt.read_only = 0;
    }
    if (!rc)
        rc = pl_store_open(store, &opt);
    if (rc) {
        if (rep.message[0] && rc != PL_ESCHEMA)
            snprintf(why, sizeof why, "%s", rep.message);
        else
            snprintf(why, sizeof why, "%s: %s%s", db, pl_strerror(rc),
                     rc == PL_ESCHEMA ? " (a newer pyloot wrote it: use that version, or another --db)" : "");
        cli_fail("opening the store", why);
        return -1;
    }
    fprintf(stderr, "pyloot: store %s\n", db);
    return 0;
}

/* Reads the serve options (pairs of name and value) into *lim, which holds
 * the defaults. 0, or 2 after printing what is wrong. */
static int parse_limits(int argc, char **argv, struct limits *lim)
{
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *name = argv[i], *val = argv[i + 1];
        uint64_t v = 0;
        unsigned *field = strcmp(name, "--header-timeout") == 0    ? &lim->header_timeout_s
                          : strcmp(name, "--request-timeout") == 0 ? &lim->request_timeout_s
                          : strcmp(name, "--max-per-address") == 0 ? &lim->max_per_address
                                                                   : &lim->max_pending;
        uint64_t hi = field == &lim->max_per_address || field == &lim->max_pending ? HTTP_MAX_CONNECTIONS : 86400;
        if (cli_parse_num(val, 1, hi, &v)) {
            char why[160];
            snprintf(why, sizeof why, "%s must be a number from 1 to %" PRIu64, name, hi);
            cli_fail("reading the arguments", why);
            return 2;
        }
        *field = (unsigned)v;
    }
    return 0;
}

/* `pyloot [serve]`: takes workers' pushes (unless --read-only) and serves
 * the UI and the HTTP API of the store until SIGINT or SIGTERM. */
int cli_serve(const struct cli_globals *g, int argc, char **argv)
{
    pl_store *store = NULL;
    const char *host = g->host, *port = g->port, *token = g->token;
    int no_gzip = g->no_gzip;
    int code = 1;
    struct limits lim = {HTTP_HEADER_TIMEOUT_S, HTTP_REQUEST_TIMEOUT_S, HTTP_MAX_PER_IP, HTTP_MAX_PENDING};
    pl_handler *h = NULL;
    struct addrinfo hints, *ai = NULL;
    struct MHD_Daemon *d = NULL;
    pl_handler_options opt;
    /* Signals are handled by sigwait below; MHD's threads inherit the mask.
     * Blocked before anything else, so that a SIGINT or SIGTERM that comes
     * while the store is being opened (it is created on disk before this
     * process has said so) stops the server cleanly once it is up, instead
     * of killing it half-started. */
    sigset_t set;
    if (parse_limits(argc, argv, &lim))
        return 2;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* --heap: the UI over heap dumps (docs/heapdump.md), read-only, loopback unless -h says otherwise;
     * a store only when --db names one. */
    pl_buf heap_json = PL_BUF_INIT;
    /* The central server listens on every address, as the original pyloot
     * did: workers of other hosts push to it. --read-only and --heap show
     * what is already there (a server's store after the fact, a dump) to
     * whoever reads it on this machine: loopback unless -h says otherwise. */
    if ((g->nheap || g->read_only) && !g->host_given)
        host = "127.0.0.1";
    if (g->nheap && cli_heap_json(g->heap, g->nheap, &heap_json))
        return 1;
    if (g->nheap ? g->db && cli_open_store(g, &store)
                 : g->read_only ? cli_open_store(g, &store) : open_central_store(g->db, &store)) {
        pl_buf_free(&heap_json);
        return 1;
    }
    memset(&opt, 0, sizeof opt);
    opt.store = store;
    opt.disable_gzip = no_gzip;
    opt.token = token;
    opt.heap_json = heap_json.data;
    opt.heap_upload = g->nheap > 0;
    if (g->nheap && !store)
        opt.unavailable = "this server shows heap dumps only (pyloot --heap; add --db DIR for a store)";
    if (pl_handler_new(&h, &opt) ||
        (!g->nheap && central_new(&g_central, store, token, g->read_only))) {
        cli_fail("starting", "out of memory");
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
        cli_fail("resolving the address", why);
        goto out;
    }
    struct slots_options so = {lim.header_timeout_s, lim.request_timeout_s, HTTP_IDLE_TIMEOUT_S, lim.max_pending};
    if (slots_new(&g_slots, &so)) {
        cli_fail("starting", "cannot start the connection timer thread");
        goto out;
    }
    d = start_daemon(h, ai, &lim);
    if (!d) {
        char why[256];
        snprintf(why, sizeof why, "could not listen on %s:%s (in use, or not an address of this host)", host,
                 port);
        cli_fail("starting the server", why);
        goto out;
    }
    if (g->nheap)
        fprintf(stderr, "pyloot: serving %s%s%s on http://%s:%s/#/heap (Ctrl-C stops)\n", g->heap[0],
                g->nheap == 2 ? " and " : "", g->nheap == 2 ? g->heap[1] : "", host, port);
    else
        fprintf(stderr, "pyloot: %s %s on http://%s:%s/%s (Ctrl-C stops)\n",
                g->read_only ? "serving" : "collecting into", pl_store_path(store), host, port,
                token && *token ? " with a token" : "");
    if (!g->nheap && !g->read_only && !(token && *token))
        fprintf(stderr, "pyloot: no token: live objects of pushing workers are off (without a token a worker "
                        "cannot be told from anyone else, and answers could be forged); start with --token "
                        "TOKEN or PYLOOT_TOKEN, and give the workers the same token, to enable them\n");
    int sig;
    sigwait(&set, &sig);
    fprintf(stderr, "pyloot: stopping\n");
    code = 0;
out:
    central_stop(g_central);
    if (d)
        MHD_stop_daemon(d);
    slots_free(g_slots);
    g_slots = NULL;
    central_free(g_central);
    g_central = NULL;
    if (ai)
        freeaddrinfo(ai);
    pl_handler_free(h);
    pl_store_close(store);
    pl_buf_free(&heap_json);
    return code;
}
