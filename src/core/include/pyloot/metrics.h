/* pyloot core: GET /metrics, the store in the Prometheus text exposition
 * format (version 0.0.4) or OpenMetrics 1.0, built from the merged store
 * through the public store API only. See docs/http-api.md for the metric
 * families and the bound on their cardinality.
 *
 * Thread-safe as far as the store is (every read is its own transaction). */
#ifndef PYLOOT_METRICS_H
#define PYLOOT_METRICS_H

#include <stdint.h>

#include "pyloot/buf.h"
#include "pyloot/store.h"

#define PL_METRICS_TOP_DEFAULT 100
#define PL_METRICS_TOP_MAX 1000
#define PL_METRICS_PATTERN_MAX 1000 /* types added by patterns, at most */

#define PL_METRICS_TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define PL_METRICS_OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

typedef struct pl_metrics_query {
    uint32_t top;          /* top types by count and by growth; 0 = PL_METRICS_TOP_DEFAULT */
    int per_worker;        /* pyloot_objects per live incarnation (labels type, pid) */
    int openmetrics;       /* OpenMetrics 1.0 instead of the Prometheus text format */
    const char *types;     /* newline-separated names or fnmatch(3) patterns always exported; may be NULL */
    int64_t now_ms;
} pl_metrics_query;

/* Appends the exposition to `out`. Returns 0, or the store's error (out
 * then holds a partial body the caller must discard), ENOMEM, or
 * PL_EBADARG for a NULL store. */
int pl_metrics_render(pl_store *s, const pl_metrics_query *q, pl_buf *out);

/* 1 when an Accept header asks for OpenMetrics. NULL is 0. */
int pl_metrics_wants_openmetrics(const char *accept);

/* Appends `s` as the inside of a quoted label value: backslash, double
 * quote and newline escaped; invalid UTF-8 replaced by U+FFFD. */
int pl_metrics_label(pl_buf *out, const char *s);

#endif
