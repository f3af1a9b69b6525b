#!/usr/bin/env bash
# pyloot's two set-up commands for a fresh Debian machine (see README.md):
#   tools/bootstrap.sh demo   install what is missing, run the demo
#   tools/bootstrap.sh test   install what is missing, run every test (the Python tests on every
#                             CPython >= 3.11 of the machine)
#   tools/bootstrap.sh python print the interpreter the two install into (below)
# System libraries come from Debian (apt-get), Python packages from PyPI (pip). Python
# packages go into $PYTHON (default python3) when pip may install there (pyenv's, an active
# venv); into a venv made from it otherwise (Debian's own python3, PEP 668): $PYLOOT_VENV,
# default .venv in the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
# Where the interpreter's venv goes when $PY cannot take pip installs (below).
VENV=${PYLOOT_VENV:-$ROOT/.venv}

SYSTEM_PACKAGES=(build-essential pkg-config liblmdb-dev libmicrohttpd-dev zlib1g-dev graphviz)
# libclang-rt-dev: the sanitizer and libFuzzer runtimes of Debian's default clang (14 on Debian 12,
# 19 on 13).
TEST_PACKAGES=(chromium chromium-driver clang libclang-rt-dev)

# Bold "pyloot:" on a terminal; plain text in a log (CI, the tests).
say() {
    if [ -t 1 ]; then printf '\033[1mpyloot:\033[0m %s\n' "$*"; else printf 'pyloot: %s\n' "$*"; fi
}

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
    local py=${2:-$PY} build=()
    # A venv made here builds in a directory of its own: its interpreter has
    # the same wheel tag as the one it was made from, but other headers.
    case "$py" in "$VENV/bin/python" | "$ROOT"/.venv-*/bin/python) build=(-C "build-dir=build/venv-{wheel_tag}") ;; esac
    say "building and installing pyloot into $py (pip install .$1)"
    "$py" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${build[@]}" "$ROOT$1"
}

# Whether pip may install into the interpreter $1: a venv, or one that is not
# "externally managed" (PEP 668: Debian's /usr/bin/python3 is) and has pip.
pip_writable() {
    "$1" - <<'PYEOF' 2>/dev/null
import importlib.util, os, sys, sysconfig
venv = sys.prefix != sys.base_prefix
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if (venv or not managed) and importlib.util.find_spec("pip") else 1)
PYEOF
}

# Sets USE_PY to an interpreter pip can install into for the python $1: $1
# itself when it can take pip installs (pyenv's, an active venv, PYTHON=...),
# else the venv $2 made from it (created on the first run, reused after;
# remade when it no longer runs or its version changed). On Debian, the
# interpreter's venv and header packages are installed first (pythonX.Y-venv,
# pythonX.Y-dev: ensurepip and Python.h, which the build needs).
use_python() {
    local py=$1 dir=$2 v real
    if [ "$py" = python3 ] && ! command -v python3 >/dev/null 2>&1; then
        apt_install python3 python3-venv python3-dev  # a minimal Debian has no python3 at all
    fi
    py=$(command -v "$py" || true)
    [ -n "$py" ] || { say "no $1 on this machine: set PYTHON=/path/to/python3" >&2; return 1; }
    if pip_writable "$py"; then
        USE_PY=$py
        return 0
    fi
    v=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    real=$(readlink -f "$py")
    if command -v dpkg >/dev/null 2>&1 && dpkg -S "$real" >/dev/null 2>&1; then
        apt_install "python$v-venv" "python$v-dev"
    fi
    if [ -x "$dir/bin/python" ] && [ "$(cpython_version "$dir/bin/python")" = "$v" ] && pip_writable "$dir/bin/python"; then
        say "$py takes no pip installs (externally managed); using the venv $dir"
    else
        say "$py takes no pip installs (externally managed); making the venv $dir from it"
        rm -rf "$dir"
        "$py" -m venv "$dir"
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    fi
    USE_PY=$dir/bin/python
}

demo() {
    apt_install "${SYSTEM_PACKAGES[@]}"
    use_python "$PY" "$VENV"
    PY=$USE_PY
    pip_install "[demo]"
    local port=${PYLOOT_DEMO_PORT:-8000}
    local bind=${PYLOOT_DEMO_BIND:-127.0.0.1}
    # No PYLOOT_DB: the demo uses the zero-config store of this gunicorn server.
    say "starting gunicorn with 4 workers on http://$bind:$port"
    "$PY" -m gunicorn -w 4 -b "$bind:$port" --chdir "$ROOT/examples" --log-level warning demo_app:app &
    DEMO_PIDS=($!)
    DEMO_URL=http://127.0.0.1:$port/_pyloot
    # Global, not local: the trap runs after demo() returns too (on EXIT).
    trap stop_demo INT TERM EXIT
    DEMO_STORE=$(demo_store 30)
    "$PY" "$ROOT/examples/traffic.py" "http://127.0.0.1:$port" &
    DEMO_PIDS+=($!)
    say "store: ${DEMO_STORE:-(not known yet)}"
    say "open http://$bind:$port/_pyloot/ in a browser (Ctrl-C stops the demo)"
    wait "${DEMO_PIDS[0]}"
}

# The store path the demo's workers write to, from its /_pyloot/api/procs
# (waits up to $1 seconds for the server to answer); nothing if it never does.
demo_store() {
    "$PY" - "$DEMO_URL/api/procs" "$1" <<'PYEOF' 2>/dev/null || true
import json, sys, time, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
            print(json.load(r)["store"]["path"])
            break
    except Exception:
        time.sleep(0.3)
PYEOF
}

# Stops gunicorn and the traffic (background jobs of a script ignore Ctrl-C's
# SIGINT, so they are stopped here), then says where the store stays.
stop_demo() {
    trap - INT TERM EXIT
    kill "${DEMO_PIDS[@]}" 2>/dev/null || true
    wait "${DEMO_PIDS[@]}" 2>/dev/null || true
    if [ -n "${DEMO_STORE:-}" ]; then
        say "demo stopped; its store stays in $DEMO_STORE"
        say "read it with: pyloot report --db $DEMO_STORE   (or pyloot --db $DEMO_STORE --read-only: the UI on http://127.0.0.1:8000/)"
        if [ "$PY" = "$VENV/bin/python" ]; then
            say "(pyloot is installed in the venv $VENV: run $VENV/bin/pyloot, or source $VENV/bin/activate first)"
        fi
    else
        say "demo stopped; its store stays in the directory the workers printed at start"
    fi
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

# The totals of every pytest run of python_tests (run_pytest adds to them).
PASSED=0 FAILED=0 SKIPPED=0 ERRORS=0 RUNS=() BAD=()

# run_pytest LABEL COMMAND...: runs COMMAND (pytest, or a script whose last
# test summary is pytest's) in tests/ (not the repository root: the tests
# import the installed package), shows its output and adds its summary to the
# totals; a run that fails without a failed test (pytest itself broke) counts
# as one failure. A run that outlives RUN_LIMIT_S (25 minutes; the longest
# takes about 8) is aborted with SIGABRT, on which pytest's faulthandler
# prints every thread's stack, so that a hang ends CI with its place.
# pytest runs without CI and BUILD_NUMBER in its environment: where they are
# set, it explains a failed comparison of two long lists with a full ndiff,
# which took over a minute for two lists of 20,000 numbers that differ
# everywhere, and grows as the square of their length.
RUN_LIMIT_S=${PYLOOT_RUN_LIMIT_S:-1500}
run_pytest() {
    local label=$1 log rc=0 line n word
    shift
    RUNS+=("$label")
    log=$(mktemp)
    (cd "$ROOT/tests" && timeout -s ABRT -k 30 "$RUN_LIMIT_S" env -u CI -u BUILD_NUMBER "$@") 2>&1 | tee "$log" \
        || rc=$?  # pipefail: the command's status
    [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || say "$label: stopped after ${RUN_LIMIT_S}s (see the stacks above)"
    line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|errors|skipped|deselected|xfailed|xpassed|warnings?)\b' "$log" | tail -1 || true)
    rm -f "$log"
    for word in passed failed skipped error errors; do
        n=$(grep -oE "[0-9]+ $word\b" <<<"$line" | grep -oE '^[0-9]+' || true)
        n=${n:-0}
        case "$word" in
            passed) PASSED=$((PASSED + n)) ;;
            failed) FAILED=$((FAILED + n)) ;;
            skipped) SKIPPED=$((SKIPPED + n)) ;;
            error|errors) ERRORS=$((ERRORS + n)) ;;
        esac
    done
    if [ "$rc" -ne 0 ]; then
        BAD+=("$label")
        grep -qE '[0-9]+ (failed|errors?)\b' <<<"$line" || FAILED=$((FAILED + 1))
    fi
}

# Installs pyloot with its test extras into every CPython >= 3.11 of the
# machine (into a venv made from it where it takes no pip installs: .venv for
# $PY, .venv-X.Y for the others) and runs the Python tests with each; then the
# stock-python subset (stock_python_tests). Every run goes on even if one
# fails; the last line adds up every run, and the status is non-zero if any
# run failed.
python_tests() {
    local found default_v v py dir
    found=$(find_pythons)
    default_v=$(cpython_version "$PY")
    for v in "${SUPPORTED_PYTHONS[@]}"; do
        grep -q "^$v " <<<"$found" || say "CPython $v: not on this machine, skipped"
    done
    [ -n "$found" ] || { say "no CPython >= 3.11 found"; echo "0 passed, 1 failed"; return 1; }
    while read -r v py; do
        dir=$ROOT/.venv-$v
        [ "$v" != "$default_v" ] || dir=$VENV
        if ! use_python "$py" "$dir" </dev/null || ! pip_install "[test]" "$USE_PY" </dev/null; then
            say "CPython $v: installing pyloot failed"
            RUNS+=("$v")
            FAILED=$((FAILED + 1))
            BAD+=("$v")
            continue
        fi
        # The browser tests drive the UI (JavaScript) in Chromium; the extension
        # code under them is the same the other tests run on every
        # interpreter, so they run on the default interpreter only (saves ~2
        # minutes per other version).
        local only_default=() kinds="unit, gunicorn integration, browser"
        if [ "$v" != "$default_v" ]; then
            only_default=(--ignore-glob="$ROOT/tests/python/test_browser*.py")
            kinds="unit, gunicorn integration"
        fi
        # Where the default python3 needed a venv (a stock Debian), the demo
        # smoke test (test_bootstrap.py) runs with it, as stock_python_tests
        # does elsewhere.
        local smoke=0
        [ "$v" != "$default_v" ] || [ "$USE_PY" = "$py" ] || smoke=1
        say "Python tests on CPython $v ($USE_PY): $kinds"
        run_pytest "$v" env PYLOOT_DEMO_SMOKE=$smoke "$USE_PY" -m pytest "$ROOT/tests/python" -q -p no:cacheprovider \
            "${only_default[@]}" "$@" </dev/null
    done <<<"$found"
    stock_python_tests
    say "Python tests ran on CPython ${RUNS[*]}${BAD[*]:+; failed on ${BAD[*]}}"
    # The closing line for CI's reader: every run added up (errors count as failures).
    echo "$PASSED passed, $((FAILED + ERRORS)) failed, $SKIPPED skipped in ${#RUNS[@]} runs (CPython ${RUNS[*]})"
    [ ${#BAD[@]} -eq 0 ]
}

# The README's commands as a new user on a stock Debian runs them: with the
# system's /usr/bin/python3 (externally managed, PEP 668) and no pyenv on the
# PATH, `stock_python` below makes its venv and runs the demo smoke test, the
# README's recipes and a few integration tests. Skipped where there is no
# /usr/bin/python3, or where it is $PY (python_tests ran it already).
stock_python_tests() {
    local stock=/usr/bin/python3 path="" d dirs
    if [ ! -x "$stock" ] || [ -z "$(cpython_version "$stock")" ]; then
        say "no /usr/bin/python3 (CPython): the stock-python run is skipped"
        return 0
    fi
    if [ "$(readlink -f "$(command -v "$PY")")" = "$(readlink -f "$stock")" ]; then
        return 0
    fi
    # The PATH without pyenv (its shims and versions).
    IFS=: read -ra dirs <<<"$PATH"
    for d in "${dirs[@]}"; do
        case "$d" in *pyenv*|"${VIRTUAL_ENV:-/nonexistent}"/bin|"") ;; *) path=${path:+$path:}$d ;; esac
    done
    say "Python tests on Debian's python3 ($stock, no pyenv on the PATH): demo smoke, recipes, integration"
    run_pytest "stock-$(cpython_version "$stock")" env -u VIRTUAL_ENV -u PYENV_VERSION -u PYTHONPATH PATH="$path" \
        PYTHON="$stock" bash "$ROOT/tools/bootstrap.sh" stock-python </dev/null
}

# The tests of stock_python_tests, run as `PYTHON=/usr/bin/python3 tools/bootstrap.sh
# stock-python` with no pyenv on the PATH: the venv, then the subset.
STOCK_TESTS=(test_bootstrap.py test_recipes.py test_module.py test_gunicorn.py)
stock_python() {
    use_python "$PY" "$VENV"
    pip_install "[test]" "$USE_PY"
    cd "$ROOT/tests"
    PYLOOT_DEMO_SMOKE=1 "$USE_PY" -m pytest "${STOCK_TESTS[@]/#/$ROOT/tests/python/}" -q -p no:cacheprovider "$@"
}

case "${1:-}" in
    demo) demo ;;
    test) shift; run_tests "$@" ;;
    stock-python) shift; stock_python "$@" ;;
    python) use_python "$PY" "$VENV" >&2; echo "$USE_PY" ;;
    *) echo "usage: tools/bootstrap.sh demo|test [pytest args]|python" >&2; exit 2 ;;
esac
