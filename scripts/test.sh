#!/usr/bin/env bash
# test.sh — build reprobox and run every test: Check unit suites and integration tests that drive
# the real binary on fixture images (built on the way). Run as root: the integration tests also
# create an unprivileged user to test the rootless path.
#   BUILD_DIR=build-asan REPROBOX_SANITIZE=ON scripts/test.sh   # the same under ASan+UBSan
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD_DIR:-build}
sanitize=${REPROBOX_SANITIZE:-OFF}
fixtures=${RBX_FIXTURES_DIR:-$PWD/build/fixtures}
jobs=$(nproc)

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPROBOX_SANITIZE="$sanitize" \
      -DRBX_FIXTURES_DIR="$fixtures" >/dev/null
cmake --build "$build" -j"$jobs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The host must come out of the tests as it went in (users for the rootless tests aside).
scripts/host-guard.sh prepare
guard=$(mktemp)
scripts/host-guard.sh snapshot "$guard"
status=0
ctest --test-dir "$build" --output-on-failure -j"$jobs" "$@" || status=$?
scripts/host-guard.sh check "$guard" || status=1
rm -f "$guard"
exit $status
