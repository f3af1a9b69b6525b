#!/usr/bin/env bash
# pyloot's two set-up commands for a fresh Debian machine (see README.md):
#   tools/bootstrap.sh demo   install what is missing, run the demo
#   tools/bootstrap.sh test   install what is missing, run every test
# System libraries come from Debian (apt-get), Python packages from PyPI (pip).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}

SYSTEM_PACKAGES=(build-essential pkg-config liblmdb-dev libmicrohttpd-dev zlib1g-dev graphviz)
TEST_PACKAGES=(chromium chromium-driver)

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

pip_install() {
    say "building and installing pyloot (pip install .$1)"
    "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$ROOT$1"
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
    local gunicorn=$!
    trap 'kill $gunicorn 2>/dev/null; wait $gunicorn 2>/dev/null; exit 0' INT TERM EXIT
    "$PY" "$ROOT/examples/traffic.py" "http://127.0.0.1:$port" &
    say "open http://$bind:$port/_pyloot/ in a browser (Ctrl-C stops the demo)"
    wait $gunicorn
}

run_tests() {
    apt_install "${SYSTEM_PACKAGES[@]}" "${TEST_PACKAGES[@]}" cmake ninja-build
    local jobs=${PYLOOT_JOBS:-2}
    say "C tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    cmake -S "$ROOT" -B "$ROOT/build/ci-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
        -DPYLOOT_SANITIZE=ON -DPYLOOT_PYTHON=OFF -DPYLOOT_WERROR=ON >/dev/null
    cmake --build "$ROOT/build/ci-asan" -j "$jobs"
    ctest --test-dir "$ROOT/build/ci-asan" --output-on-failure -j "$jobs"
    say "warnings-clean build of the extension and the CLI"
    cmake -S "$ROOT" -B "$ROOT/build/ci-werror" -G Ninja -DPYLOOT_WERROR=ON -DPYLOOT_TESTS=OFF >/dev/null
    cmake --build "$ROOT/build/ci-werror" -j "$jobs"
    pip_install "[test]"
    say "Python tests (unit, gunicorn integration, browser)"
    cd "$ROOT/tests"  # not the repository root: import the installed package
    "$PY" -m pytest "$ROOT/tests/python" -q -p no:cacheprovider "$@"
}

case "${1:-}" in
    demo) demo ;;
    test) shift; run_tests "$@" ;;
    *) echo "usage: tools/bootstrap.sh demo|test [pytest args]" >&2; exit 2 ;;
esac
