#!/usr/bin/env bash
# Fuzzes the remote-mode sample decoder and pl_gunzip (tests/fuzz/fuzz_ingest.c) with libFuzzer for a
# given time. Benchmark-style: never part of ctest or CI. See bench/README.md.
#
#   bench/fuzz_ingest.sh [SECONDS] [--merge]
#
# SECONDS (default 600) of fuzzing, on one core at the lowest priority, from the
# committed corpus tests/fuzz/corpus/ingest/ (seeded with valid messages from
# the tests' protocol encoder when empty) plus the inputs found in earlier runs
# (build-fuzz/corpus-ingest/). A crash leaves its input in
# build-fuzz/artifacts-ingest/ and the script exits non-zero; make it a case
# of tests/c/test_ingest.c. --merge then replaces the committed corpus with
# the smallest set of inputs that keeps all the coverage reached (-merge=1).
# Needs clang and libFuzzer: apt-get install clang libclang-rt-14-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECONDS_TO_RUN=600
MERGE=0
for a in "$@"; do
    case "$a" in
        --merge) MERGE=1 ;;
        ''|*[!0-9]*) echo "usage: bench/fuzz_ingest.sh [SECONDS] [--merge]" >&2; exit 2 ;;
        *) SECONDS_TO_RUN=$a ;;
    esac
done
BUILD=$ROOT/build-fuzz
CORPUS=$ROOT/tests/fuzz/corpus/ingest
WORK=$BUILD/corpus-ingest
ARTIFACTS=$BUILD/artifacts-ingest
LOG=$BUILD/fuzz_ingest.log

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPYLOOT_FUZZ=ON -DPYLOOT_PYTHON=OFF -DPYLOOT_TESTS=OFF >/dev/null
cmake --build "$BUILD" --target fuzz_ingest -j 2
mkdir -p "$CORPUS" "$WORK" "$ARTIFACTS"
if [ -z "$(ls -A "$CORPUS")" ]; then
    python3 "$ROOT/tests/fuzz/make_ingest_seeds.py" "$CORPUS"
fi

echo "fuzz_ingest: $SECONDS_TO_RUN s from $(ls "$CORPUS" | wc -l) committed + $(ls "$WORK" | wc -l) earlier inputs"
status=0
# New inputs go to $WORK (the first directory); the committed corpus is only read.
nice -n 19 "$BUILD/fuzz_ingest" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -dict="$ROOT/tests/fuzz/ingest.dict" -artifact_prefix="$ARTIFACTS/" \
    -print_final_stats=1 "$WORK" "$CORPUS" >"$LOG" 2>&1 || status=$?

last=$(grep -E '^#[0-9]+' "$LOG" | tail -1 || true)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG")
per_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOG")
echo "fuzz_ingest: ${execs:-?} inputs in $SECONDS_TO_RUN s (${per_s:-?} exec/s)"
echo "fuzz_ingest: last status: ${last:-none}"
echo "fuzz_ingest: log in $LOG"
if [ "$status" -ne 0 ]; then
    echo "fuzz_ingest: FAILED (status $status): the input is in $ARTIFACTS/" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' "$LOG" >&2 || true
    exit "$status"
fi
if [ "$MERGE" -eq 1 ]; then
    merged=$BUILD/corpus-ingest-merged
    rm -rf "$merged"
    mkdir -p "$merged"
    "$BUILD/fuzz_ingest" -merge=1 -max_len=65536 "$merged" "$CORPUS" "$WORK" >>"$LOG" 2>&1
    rm -rf "$CORPUS"
    mv "$merged" "$CORPUS"
    echo "fuzz_ingest: committed corpus minimized to $(ls "$CORPUS" | wc -l) inputs ($(du -sk "$CORPUS" | cut -f1) KiB)"
fi
