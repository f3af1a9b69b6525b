/* pyloot core: does a name look secret? One rule for every place that shows
 * a value under a name: attributes, dict items in reprs built by pyloot,
 * witnesses and the labels of children (docs/live-objects.md, "Redaction").
 *
 * A name is secret when it contains one of the list's words, compared
 * case-insensitively as a substring ("DB_PASSWORD", "api_key_v2",
 * "csrftoken" all match). The default list is PL_REDACT_DEFAULT;
 * PyLoot(redact=[...]) replaces it (an empty list redacts nothing). */
#ifndef PYLOOT_REDACT_H
#define PYLOOT_REDACT_H

#include <stddef.h>

#include "pyloot/buf.h"

/* The default words, newline-separated. */
#define PL_REDACT_DEFAULT \
    "password\npasswd\nsecret\ntoken\napi_key\napikey\nauthorization\ncookie\nsession_key\nprivate_key"

/* What a redacted value is shown as. */
#define PL_REDACTED "<redacted>"

typedef struct pl_redact pl_redact;

/* Builds a word list from `words` (newline-separated; empty lines are
 * skipped; NULL means PL_REDACT_DEFAULT). *out is owned by the caller; free
 * it with pl_redact_free. Returns 0, ENOMEM, or PL_EBADARG for a word longer
 * than 256 bytes. A built list is immutable: thread-safe to share. */
int pl_redact_new(pl_redact **out, const char *words);
void pl_redact_free(pl_redact *r);

/* 1 when name[0..len) contains a word of `r` (r NULL: the default list),
 * case-insensitively (ASCII), else 0. Thread-safe; no allocation. */
int pl_redact_name(const pl_redact *r, const char *name, size_t len);

/* Appends a command line (arguments separated by spaces, as the store keeps
 * it) to `out` with its secrets replaced by PL_REDACTED:
 *   - a URL's password: scheme://user:PASS@host -> scheme://user:<redacted>@host
 *     (and what follows "user:" in an authority cut off before its '@',
 *     unless it is a port);
 *   - the value of --name=value, -name=value and NAME=value (so -e NAME=value
 *     and --env NAME=value too) whose name looks secret;
 *   - the argument after --name or -name (no '=') whose name looks secret
 *     (--password hunter2).
 * A name looks secret by pl_redact_name(r, ...), '-' read as '_'
 * (--api-key matches api_key); r NULL is the default list. The one rule
 * for every place that shows a command line (/api/procs, the UI, `pyloot
 * report`). Returns 0 or ENOMEM. Thread-safe. */
int pl_redact_cmdline(const pl_redact *r, const char *cmdline, pl_buf *out);

#endif
