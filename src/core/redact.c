/* Secret-looking names (see pyloot/redact.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pyloot/error.h"
#include "pyloot/redact.h"

#define WORD_MAX 256

struct pl_redact {
    size_t n;
    char **words; /* lower-case, NUL-terminated */
    size_t *lens;
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

void pl_redact_free(pl_redact *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->words[i]);
    free(r->words);
    free(r->lens);
    free(r);
}

int pl_redact_new(pl_redact **out, const char *words)
{
    *out = NULL;
    if (!words)
        words = PL_REDACT_DEFAULT;
    size_t max = 1;
    for (const char *p = words; *p; p++)
        max += *p == '\n';
    pl_redact *r = calloc(1, sizeof *r);
    if (!r)
        return ENOMEM;
    r->words = calloc(max, sizeof *r->words);
    r->lens = calloc(max, sizeof *r->lens);
    if (!r->words || !r->lens) {
        pl_redact_free(r);
        return ENOMEM;
    }
    const char *p = words;
    while (*p) {
        const char *end = strchr(p, '\n');
        if (!end)
            end = p + strlen(p);
        size_t n = (size_t)(end - p);
        if (n > WORD_MAX) {
            pl_redact_free(r);
            return PL_EBADARG;
        }
        if (n) {
            char *w = malloc(n + 1);
            if (!w) {
                pl_redact_free(r);
                return ENOMEM;
            }
            for (size_t i = 0; i < n; i++)
                w[i] = lower(p[i]);
            w[n] = '\0';
            r->words[r->n] = w;
            r->lens[r->n] = n;
            r->n++;
        }
        p = *end ? end + 1 : end;
    }
    *out = r;
    return 0;
}

static int contains(const char *name, size_t len, const char *word, size_t wlen)
{
    if (wlen > len)
        return 0;
    for (size_t i = 0; i + wlen <= len; i++) {
        size_t j = 0;
        while (j < wlen && lower(name[i + j]) == word[j])
            j++;
        if (j == wlen)
            return 1;
    }
    return 0;
}

int pl_redact_name(const pl_redact *r, const char *name, size_t len)
{
    if (!name)
        return 0;
    if (!r) {
        /* The default list without allocating: walk the literal. */
        const char *p = PL_REDACT_DEFAULT;
        while (*p) {
            const char *end = strchr(p, '\n');
            if (!end)
                end = p + strlen(p);
            if (contains(name, len, p, (size_t)(end - p)))
                return 1;
            p = *end ? end + 1 : end;
        }
        return 0;
    }
    for (size_t i = 0; i < r->n; i++)
        if (contains(name, len, r->words[i], r->lens[i]))
            return 1;
    return 0;
}

/* ---- command lines ---- */

/* The name of an option or assignment [s, s+n): leading dashes dropped,
 * '-' read as '_'. */
static int secret_name(const pl_redact *r, const char *s, size_t n)
{
    char name[WORD_MAX + 1];
    while (n && *s == '-') {
        s++;
        n--;
    }
    if (n == 0)
        return 0;
    if (n > WORD_MAX)
        return pl_redact_name(r, s, n);
    for (size_t i = 0; i < n; i++)
        name[i] = s[i] == '-' ? '_' : s[i];
    return pl_redact_name(r, name, n);
}

/* Appends [s, s+n) with the password of every URL in it redacted. */
static void put_urls(pl_buf *out, const char *s, size_t n)
{
    size_t done = 0;
    for (size_t i = 0; i + 3 <= n; i++) {
        if (memcmp(s + i, "://", 3) != 0)
            continue;
        size_t a = i + 3, end = a;
        while (end < n && s[end] != '/' && s[end] != '?' && s[end] != '#' && s[end] != ' ')
            end++;
        size_t at = end;
        for (size_t k = a; k < end; k++)
            if (s[k] == '@')
                at = k; /* the last '@': a password may hold one */
        size_t colon = a;
        while (colon < at && s[colon] != ':')
            colon++;
        int redact = colon < at;
        if (redact && at == end) {
            /* No '@': "host:port" is not a secret; anything else after the
             * colon is a userinfo cut off (a truncated command line). */
            size_t k = colon + 1;
            while (k < end && s[k] >= '0' && s[k] <= '9')
                k++;
            redact = k < end;
        }
        if (redact) {
            pl_buf_append(out, s + done, colon + 1 - done);
            pl_buf_puts(out, PL_REDACTED);
            done = at;
        }
        i = redact ? at : i + 2; /* the next URL may start inside this authority ("a://u:p@h,b://...") */
    }
    pl_buf_append(out, s + done, n - done);
}

int pl_redact_cmdline(const pl_redact *r, const char *cmdline, pl_buf *out)
{
    int value_next = 0;
    const char *p = cmdline ? cmdline : "";
    while (*p) {
        if (*p == ' ') {
            pl_buf_putc(out, ' ');
            p++;
            continue;
        }
        size_t n = strcspn(p, " ");
        const char *eq = memchr(p, '=', n);
        if (value_next) {
            pl_buf_puts(out, PL_REDACTED);
            value_next = 0;
        } else if (eq && secret_name(r, p, (size_t)(eq - p))) {
            pl_buf_append(out, p, (size_t)(eq - p) + 1);
            pl_buf_puts(out, PL_REDACTED);
        } else {
            if (!eq && p[0] == '-' && secret_name(r, p, n))
                value_next = 1;
            put_urls(out, p, n);
        }
        p += n;
    }
    return out->err ? ENOMEM : 0;
}
