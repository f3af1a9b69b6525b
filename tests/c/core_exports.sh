#!/bin/sh
# The core library's visible names are exactly what its public headers
# declare: every global symbol of default visibility that the archive
# defines must be named in include/pyloot/*.h (internal headers mark their
# functions hidden). Names starting with __ are the toolchain's (sanitizers).
# Usage: core_exports.sh ARCHIVE INCLUDE_DIR
set -eu
archive=$1
include=$2
names=$(readelf -sW "$archive" | awk '$5 == "GLOBAL" && $6 == "DEFAULT" && $7 != "UND" && $8 !~ /^__/ {print $8}' | sort -u)
[ -n "$names" ] || { echo "no visible symbol in $archive"; exit 1; }
bad=0
for n in $names; do
    if ! grep -qw -- "$n" "$include"/*.h; then
        echo "visible but not declared in include/pyloot: $n"
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "$(echo "$names" | wc -l) visible names, all declared in include/pyloot"
exit $bad
