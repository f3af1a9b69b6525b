/* pyloot core: the web UI files from web/, embedded at build time.
 * Ownership and threads: the table and its bytes are static, read-only data
 * owned by the library; any thread may read them. */
#ifndef PYLOOT_ASSETS_H
#define PYLOOT_ASSETS_H

#include <stddef.h>

typedef struct pl_asset {
    const char *name;          /* file name relative to web/, e.g. "app.js" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} pl_asset;

/* Finds an embedded file by name (exact match); NULL if there is none. */
const pl_asset *pl_asset_find(const char *name, size_t len);

#endif
