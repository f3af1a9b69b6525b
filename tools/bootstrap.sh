#!/usr/bin/env bash
# pyloot's two set-up commands for a fresh Debian machine (see README.md):
#   tools/bootstrap.sh demo   install what is missing, run the demo
#   tools/bootstrap.sh test   install what is missing, run every test (the Python tests on every
#                             CPython >= 3.11 of the machine)
# System libraries come from Debian (apt-get), Python packages from PyPI (pip).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}

SYSTEM_PACKAGES=(build-essential pkg-config liblmdb-dev libmicrohttpd-dev zlib1g-dev graphviz)
TEST_PACKAGES=(chromium chromium-driver clang libclang-rt-14-dev)

say() { printf '\033[1mpyloot:\033[0m %s\n' "$*"; }

apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pip_install() {  # pip_install EXTRAS [PYTHON]
    local py=${2:-$PY}
    say "building and installing pyloot into $py (pip install .$1)"
    "$py" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$ROOT$1"
}

demo() {
    apt_install "${SYSTEM_PACKAGES[@]}"
    pip_install "[demo]"
    local port=${PYLOOT_DEMO_PORT:-8000}
    local bind=${PYLOOT_DEMO_BIND:-127.0.0.1}
    # No PYLOOT_DB: the demo uses the zero-config store of this gunicorn server
    # (each worker prints its path when its collector starts).
    say "starting gunicorn with 4 workers on http://$bind:$port"
    "$PY" -m gunicorn -w 4 -b "$bind:$port" --chdir "$ROOT/examples" --log-level warning demo_app:app &
    DEMO_PIDS=($!)
    # Global, not local: the trap runs after demo() returns too (on EXIT).
    trap stop_demo INT TERM EXIT
    "$PY" "$ROOT/examples/traffic.py" "http://127.0.0.1:$port" &
    DEMO_PIDS+=($!)
    say "open http://$bind:$port/_pyloot/ in a browser (Ctrl-C stops the demo)"
    wait "${DEMO_PIDS[0]}"
}

# Stops gunicorn and the traffic (background jobs of a script ignore Ctrl-C's
# SIGINT, so they are stopped here), then says where the store stays.
stop_demo() {
    trap - INT TERM EXIT
    kill "${DEMO_PIDS[@]}" 2>/dev/null || true
    wait "${DEMO_PIDS[@]}" 2>/dev/null || true
    say "demo stopped; its store stays readable: pyloot report --db <the directory the workers printed>"
    exit 0
}

run_tests() {
    apt_install "${SYSTEM_PACKAGES[@]}" "${TEST_PACKAGES[@]}" cmake ninja-build
    local jobs=${PYLOOT_JOBS:-2}
    say "C tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    cmake -S "$ROOT" -B "$ROOT/build/ci-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
        -DPYLOOT_SANITIZE=ON -DPYLOOT_PYTHON=OFF -DPYLOOT_WERROR=ON >/dev/null
    cmake --build "$ROOT/build/ci-asan" -j "$jobs"
    ctest --test-dir "$ROOT/build/ci-asan" --output-on-failure -j "$jobs"
    run_fuzz
    say "warnings-clean build of the extension and the CLI"
    cmake -S "$ROOT" -B "$ROOT/build/ci-werror" -G Ninja -DPYLOOT_WERROR=ON -DPYLOOT_TESTS=OFF >/dev/null
    cmake --build "$ROOT/build/ci-werror" -j "$jobs"
    python_tests "$@"
}

# Each libFuzzer target of tests/fuzz for a short bounded time from its committed corpus
# (PYLOOT_FUZZ_SECONDS, default 30 each); a crash fails the run and leaves its input in
# build/ci-fuzz/artifacts-TARGET/. Long runs: bench/fuzz.sh.
run_fuzz() {
    local seconds=${PYLOOT_FUZZ_SECONDS:-30} target max_len work failed=()
    say "fuzzing each parser for ${seconds} s (libFuzzer, ASan + UBSan)"
    cmake -S "$ROOT" -B "$ROOT/build/ci-fuzz" -G Ninja -DCMAKE_C_COMPILER=clang \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPYLOOT_FUZZ=ON -DPYLOOT_PYTHON=OFF -DPYLOOT_TESTS=OFF \
        -DPYLOOT_WERROR=ON >/dev/null
    cmake --build "$ROOT/build/ci-fuzz" -j "${PYLOOT_JOBS:-2}" --target fuzz_handler fuzz_ingest fuzz_heapdump
    for target in handler ingest heapdump; do
        case $target in handler) max_len=4096 ;; ingest|heapdump) max_len=65536 ;; esac
        # New inputs go to a scratch directory: the committed corpus is only read.
        work=$ROOT/build/ci-fuzz/corpus-$target
        rm -rf "$work" && mkdir -p "$work" "$ROOT/build/ci-fuzz/artifacts-$target"
        if ! "$ROOT/build/ci-fuzz/fuzz_$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
            -rss_limit_mb=2048 -dict="$ROOT/tests/fuzz/$target.dict" \
            -artifact_prefix="$ROOT/build/ci-fuzz/artifacts-$target/" -print_final_stats=1 \
            "$work" "$ROOT/tests/fuzz/corpus/$target" >"$ROOT/build/ci-fuzz/fuzz_$target.log" 2>&1; then
            tail -n 40 "$ROOT/build/ci-fuzz/fuzz_$target.log" >&2
            say "fuzz_$target found a crash: its input is in build/ci-fuzz/artifacts-$target/" >&2
            failed+=("$target")
            continue
        fi
        say "fuzz_$target: $(grep -E '^#[0-9]+' "$ROOT/build/ci-fuzz/fuzz_$target.log" | tail -n 1)"
    done
    [ ${#failed[@]} -eq 0 ] || { say "fuzzing failed: ${failed[*]}" >&2; return 1; }
}

# The CPython versions pyloot supports; a newer one found on the machine is tested too.
SUPPORTED_PYTHONS=(3.11 3.12 3.13)

# "X.Y" of a CPython (with the GIL) at $1 that runs, else nothing.
cpython_version() {
    "$1" -c 'import platform, sys, sysconfig
if platform.python_implementation() == "CPython" and not sysconfig.get_config_var("Py_GIL_DISABLED"):
    print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true
}

# Prints "X.Y PATH" for one interpreter per CPython version >= 3.11 on this
# machine: $PY first (it keeps its version), then pyenv's versions (the
# newest patch release of each), then pythonX.Y on the PATH.
find_pythons() {
    local candidates=("$(command -v "$PY" || true)") seen=" " py v minor root
    if command -v pyenv >/dev/null 2>&1 && root=$(pyenv root 2>/dev/null); then
        while read -r v; do
            candidates+=("$root/versions/$v/bin/python3")
        done < <(pyenv versions --bare --skip-aliases 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -rV)
    fi
    for minor in $(seq 11 30); do
        candidates+=("$(command -v "python3.$minor" || true)")
    done
    for py in "${candidates[@]}"; do
        [ -n "$py" ] && [ -x "$py" ] || continue
        v=$(cpython_version "$py")
        [ -n "$v" ] || continue
        minor=${v#3.}
        [ "${v%%.*}" = 3 ] && [ "$minor" -ge 11 ] || continue
        case "$seen" in *" $v "*) continue ;; esac
        seen="$seen$v "
        echo "$v $py"
    done | sort -V
}

# Installs pyloot with its test extras into every CPython >= 3.11 of the
# machine and runs the Python tests with each. Every interpreter runs even if
# one fails; the last line adds up every run, and the status is non-zero if
# any run failed.
python_tests() {
    local found default_v passed=0 failed=0 skipped=0 errors=0 runs=() bad=() v py log rc line n word
    found=$(find_pythons)
    default_v=$(cpython_version "$PY")
    for v in "${SUPPORTED_PYTHONS[@]}"; do
        grep -q "^$v " <<<"$found" || say "CPython $v: not on this machine, skipped"
    done
    [ -n "$found" ] || { say "no CPython >= 3.11 found"; echo "0 passed, 1 failed"; return 1; }
    while read -r v py; do
        runs+=("$v")
        if ! pip_install "[test]" "$py"; then
            say "CPython $v: installing pyloot failed"
            failed=$((failed + 1))
            bad+=("$v")
            continue
        fi
        # The browser tests drive the UI (JavaScript) in Chromium; the extension
        # code under them is the same the other tests run on every
        # interpreter, so they run on the default interpreter only (saves ~2
        # minutes per other version).
        local only_default=() kinds="unit, gunicorn integration, browser"
        if [ "$v" != "$default_v" ]; then
            only_default=(--ignore="$ROOT/tests/python/test_browser.py")
            kinds="unit, gunicorn integration"
        fi
        say "Python tests on CPython $v ($py): $kinds"
        log=$(mktemp)
        rc=0
        (cd "$ROOT/tests" &&  # not the repository root: import the installed package
            "$py" -m pytest "$ROOT/tests/python" -q -p no:cacheprovider "${only_default[@]}" "$@") \
            2>&1 | tee "$log" || rc=$?  # pipefail: pytest's status
        line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|errors|skipped|deselected|xfailed|xpassed|warnings?)\b' "$log" | tail -1 || true)
        rm -f "$log"
        for word in passed failed skipped error errors; do
            n=$(grep -oE "[0-9]+ $word\b" <<<"$line" | grep -oE '^[0-9]+' || true)
            n=${n:-0}
            case "$word" in
                passed) passed=$((passed + n)) ;;
                failed) failed=$((failed + n)) ;;
                skipped) skipped=$((skipped + n)) ;;
                error|errors) errors=$((errors + n)) ;;
            esac
        done
        if [ "$rc" -ne 0 ]; then
            bad+=("$v")
            # A run that failed without a failed test (pytest itself broke) still counts.
            if ! grep -qE '[0-9]+ (failed|errors?)\b' <<<"$line"; then
                failed=$((failed + 1))
            fi
        fi
    done <<<"$found"
    say "Python tests ran on CPython ${runs[*]}${bad[*]:+; failed on ${bad[*]}}"
    # The closing line for CI's reader: every run added up (errors count as failures).
    echo "$passed passed, $((failed + errors)) failed, $skipped skipped in ${#runs[@]} runs (CPython ${runs[*]})"
    [ ${#bad[@]} -eq 0 ]
}

case "${1:-}" in
    demo) demo ;;
    test) shift; run_tests "$@" ;;
    *) echo "usage: tools/bootstrap.sh demo|test [pytest args]" >&2; exit 2 ;;
esac
