#include <string.h>

#include <lmdb.h>

#include "pyloot/error.h"

const char *pl_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case PL_ESCHEMA: return "the store was written by an incompatible pyloot version";
    case PL_ECORRUPT: return "a stored record does not decode";
    case PL_ENOTFOUND: return "not found";
    case PL_ETIMEOUT: return "no answer in time";
    case PL_EBUSY: return "too many requests pending";
    case PL_EBADARG: return "invalid argument";
    case PL_ETOOBIG: return "value too large";
    case PL_EDAMAGED: return "the store file is damaged";
    default: break;
    }
    if (err >= MDB_KEYEXIST && err <= MDB_LAST_ERRCODE)
        return mdb_strerror(err);
    if (err > 0)
        return strerror(err); /* glibc returns a static string for known codes */
    return "unknown error";
}
