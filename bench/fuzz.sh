#!/usr/bin/env bash
# Fuzzes one of pyloot's C input parsers with libFuzzer for a given time.
# For long runs; CI runs each target only briefly (tools/bootstrap.sh,
# run_fuzz, 30 s from the committed corpus). See bench/README.md.
#
#   bench/fuzz.sh TARGET [SECONDS] [--merge]
#
# TARGET is one of
#   handler  the C request handler (tests/fuzz/fuzz_handler.c); seeds: every
#            route of docs/http-api.md; a crash becomes a case of tests/c/test_handler.c
#   ingest   the remote-mode sample decoder and pl_gunzip (tests/fuzz/fuzz_ingest.c);
#            seeds: valid messages from the tests' protocol encoder; a crash
#            becomes a case of tests/c/test_ingest.c
#   heapdump the heap dump reader and its analysis (tests/fuzz/fuzz_heapdump.c);
#            seeds: small dumps written by pyloot.dump_heap, whole and as bare
#            payloads; a crash becomes a case of tests/c/test_heapdump.c
# SECONDS (default 600) of fuzzing, on one core at the lowest priority, from the
# committed corpus tests/fuzz/corpus/TARGET/ (seeded by
# tests/fuzz/make_TARGET_seeds.py when empty) plus the inputs found in earlier
# runs (build-fuzz/corpus-TARGET/). A crash leaves its input in
# build-fuzz/artifacts-TARGET/ and the script exits non-zero. --merge then
# replaces the committed corpus with the smallest set of inputs that keeps all
# the coverage reached (-merge=1).
# Needs clang and libFuzzer: apt-get install clang libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
usage() { echo "usage: bench/fuzz.sh handler|ingest|heapdump [SECONDS] [--merge]" >&2; exit 2; }
TARGET=${1:-}
case "$TARGET" in
    handler) MAX_LEN=4096 ;;
    ingest) MAX_LEN=65536 ;;
    heapdump) MAX_LEN=65536 ;;
    *) usage ;;
esac
shift
SECONDS_TO_RUN=600
MERGE=0
for a in "$@"; do
    case "$a" in
        --merge) MERGE=1 ;;
        ''|*[!0-9]*) usage ;;
        *) SECONDS_TO_RUN=$a ;;
    esac
done
NAME=fuzz_$TARGET
BUILD=$ROOT/build-fuzz
CORPUS=$ROOT/tests/fuzz/corpus/$TARGET
WORK=$BUILD/corpus-$TARGET
ARTIFACTS=$BUILD/artifacts-$TARGET
LOG=$BUILD/$NAME.log

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPYLOOT_FUZZ=ON -DPYLOOT_PYTHON=OFF -DPYLOOT_TESTS=OFF >/dev/null
cmake --build "$BUILD" --target "$NAME" -j 2
mkdir -p "$CORPUS" "$WORK" "$ARTIFACTS"
if [ -z "$(ls -A "$CORPUS")" ]; then
    python3 "$ROOT/tests/fuzz/make_${TARGET}_seeds.py" "$CORPUS"
fi

echo "$NAME: $SECONDS_TO_RUN s from $(ls "$CORPUS" | wc -l) committed + $(ls "$WORK" | wc -l) earlier inputs"
status=0
# New inputs go to $WORK (the first directory); the committed corpus is only read.
nice -n 19 "$BUILD/$NAME" -max_total_time="$SECONDS_TO_RUN" -max_len="$MAX_LEN" -timeout=10 \
    -rss_limit_mb=2048 -dict="$ROOT/tests/fuzz/$TARGET.dict" -artifact_prefix="$ARTIFACTS/" \
    -print_final_stats=1 "$WORK" "$CORPUS" >"$LOG" 2>&1 || status=$?

last=$(grep -E '^#[0-9]+' "$LOG" | tail -1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG")
per_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOG")
echo "$NAME: ${execs:-?} inputs in $SECONDS_TO_RUN s (${per_s:-?} exec/s)"
echo "$NAME: last status: ${last:-none}"
echo "$NAME: log in $LOG"
if [ "$status" -ne 0 ]; then
    echo "$NAME: FAILED (status $status): the input is in $ARTIFACTS/" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' "$LOG" >&2 || true
    exit "$status"
fi
if [ "$MERGE" -eq 1 ]; then
    merged=$BUILD/corpus-$TARGET-merged
    rm -rf "$merged"
    mkdir -p "$merged"
    "$BUILD/$NAME" -merge=1 -max_len="$MAX_LEN" "$merged" "$CORPUS" "$WORK" >>"$LOG" 2>&1
    rm -rf "$CORPUS"
    mv "$merged" "$CORPUS"
    echo "$NAME: committed corpus minimized to $(ls "$CORPUS" | wc -l) inputs ($(du -sk "$CORPUS" | cut -f1) KiB)"
fi
