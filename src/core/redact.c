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
