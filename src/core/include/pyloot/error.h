/* pyloot core: error codes.
 *
 * Every core function returns int: 0 is success, positive values are errno
 * codes passed through from libc, negative values are either LMDB's own codes
 * (MDB_* in lmdb.h, -30800..-30780) or the project's PL_E* codes below.
 * There is no global or thread-local error state. */
#ifndef PYLOOT_ERROR_H
#define PYLOOT_ERROR_H

#define PL_EBASE (-31000)
#define PL_ESCHEMA (PL_EBASE - 1)    /* store was written by an incompatible schema version */
#define PL_ECORRUPT (PL_EBASE - 2)   /* a stored record does not decode */
#define PL_ENOTFOUND (PL_EBASE - 3)  /* no such incarnation, type, request or object */
#define PL_ETIMEOUT (PL_EBASE - 4)   /* a peer did not answer in time */
#define PL_EBUSY (PL_EBASE - 5)      /* too much work already pending for a peer */
#define PL_EBADARG (PL_EBASE - 6)    /* an argument is out of range or malformed */
#define PL_ETOOBIG (PL_EBASE - 7)    /* a value exceeds a documented limit */
#define PL_EDAMAGED (PL_EBASE - 8)   /* a store's file is damaged: its check crashed or found bad pages */
#define PL_ELAST (PL_EBASE - 9)

/* A static, human-readable description of `err` (any code above, an LMDB
 * code or an errno value). Never NULL; thread-safe. */
const char *pl_strerror(int err);

#endif
