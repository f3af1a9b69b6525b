/* pyloot command: what every subcommand shares (cli.h): opening the store,
 * the error line, arguments that are numbers or points in time (parsed by
 * the core's one parser, pyloot/parse.h, as the HTTP parameters are), and
 * byte counts in human units. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "pyloot/error.h"
#include "pyloot/parse.h"
#include "pyloot/verify.h"

void cli_fail(const char *what, const char *why)
{
    fprintf(stderr, "pyloot: %s failed: %s\n", what, why);
}

void cli_fmt_bytes(int64_t v, int sign, char *out, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = v < 0 ? -(double)v : (double)v;
    const char *s = v < 0 ? "-" : sign ? "+" : "";
    int u = 0;

    while (x >= 1024 && u < 4) {
        x /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, len, "%s%.0f B", s, x);
    else
        snprintf(out, len, "%s%.1f %s", s, x, units[u]);
}

int cli_open_store(const struct cli_globals *g, pl_store **store)
{
    const char *db = g->db;
    struct stat st;
    pl_store_options opt;
    char why[512];
    int rc;

    if (!db || !*db) {
        cli_fail("opening the store", "no store given: use --db DIR (or set PYLOOT_DB)");
        return -1;
    }
    if (stat(db, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, sizeof why, "%s is not a directory", db);
        cli_fail("opening the store", why);
        return -1;
    }
    memset(&opt, 0, sizeof opt);
    opt.path = db;
    opt.read_only = 1;
    /* Read-only: a damaged store is checked in a child process first (it
     * would crash this one) and reported, never moved. */
    pl_store_report rep;
    rc = pl_store_open_guarded(store, &opt, 0, &rep);
    if (rc) {
        if (rep.message[0]) {
            cli_fail("opening the store", rep.message);
            return -1;
        }
        snprintf(why, sizeof why, "%s: %s", db, pl_strerror(rc));
        cli_fail("opening the store", why);
        return -1;
    }
    return 0;
}

int cli_parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    return s && pl_parse_u64(s, strlen(s), lo, hi, out) == 0 ? 0 : -1;
}

int cli_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    static const struct {
        char unit;
        int64_t ms;
    } units[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 604800000}};
    size_t len = s ? strlen(s) : 0;
    uint64_t n;

    if (len == 0 || len > 40)
        return -1;
    if (s[0] == '-') { /* back from now: -90s, -30m, -2h, -1d, -1w */
        if (len < 3 || pl_parse_u64(s + 1, len - 2, 0, 100000000, &n))
            return -1;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (s[len - 1] == units[i].unit) {
                *out_ms = now_ms - (int64_t)n * units[i].ms;
                return *out_ms >= 0 ? 0 : -1;
            }
        }
        return -1;
    }
    if (strchr(s, '-'))
        return pl_parse_iso8601_ms(s, len, out_ms) == 0 ? 0 : -1;
    return pl_parse_unix_ms(s, len, out_ms) == 0 ? 0 : -1;
}
