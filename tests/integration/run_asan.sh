#!/bin/sh
# Run the integration suite against an AddressSanitizer + UBSan build of the
# module, inside the (uninstrumented) system httpd with the sanitizer runtimes
# preloaded. Fails if pytest fails or if any sanitizer report / crash sign is
# found in the sanitizer log files or the kept httpd error logs.
#
#   sh tests/integration/run_asan.sh [pytest args / test paths...]
#   AJW_STRESS_SECONDS=60 sh tests/integration/run_asan.sh tests/integration/test_stress.py
#
# The suite's own log checker already fails a test whose httpd error log shows
# "AddressSanitizer", "runtime error:", "exit signal", "Segmentation fault"...
# Env: ASAN_BUILD (default build/asan-mod), ASAN_LOGDIR (default a fresh
# /tmp/ajw-asan.XXXXXX), CC (default gcc; must be the compiler whose runtime
# is preloaded).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CC=${CC:-gcc}
BUILD=${ASAN_BUILD:-build/asan-mod}
PY=/usr/bin/python3

make --no-print-directory BUILD="$BUILD" CC="$CC" OPT="-O1 -g -fno-omit-frame-pointer" \
    SAN="-fsanitize=address,undefined" "$BUILD/mod_auth_jwks.so"

LIBASAN=$($CC -print-file-name=libasan.so)
LIBUBSAN=$($CC -print-file-name=libubsan.so)
for f in "$LIBASAN" "$LIBUBSAN"; do
    [ -e "$f" ] || { echo "run_asan: sanitizer runtime $f not found" >&2; exit 2; }
done
# real paths: LD_PRELOAD must name the sonames the module links against
LIBASAN=$(readlink -f "$LIBASAN")
LIBUBSAN=$(readlink -f "$LIBUBSAN")

LOGDIR=${ASAN_LOGDIR:-$(mktemp -d /tmp/ajw-asan.XXXXXX)}
mkdir -p "$LOGDIR"
chmod 1777 "$LOGDIR"          # children run as www-data

# detect_leaks=0: httpd's pools and exit paths look like leaks to LSan.
# detect_odr_violation=0: the module and libs share some globals by design.
ASAN="log_path=$LOGDIR/asan:detect_leaks=0:abort_on_error=1:halt_on_error=1"
ASAN="$ASAN:detect_odr_violation=0:handle_segv=1:print_stacktrace=1"
UBSAN="log_path=$LOGDIR/ubsan:print_stacktrace=1:halt_on_error=1:abort_on_error=1"

export AJW_MODULE="$ROOT/$BUILD/mod_auth_jwks.so"
export AJW_HTTPD_ENV="LD_PRELOAD=$LIBASAN:$LIBUBSAN ASAN_OPTIONS=$ASAN UBSAN_OPTIONS=$UBSAN"
export AJW_STRESS_SECONDS=${AJW_STRESS_SECONDS:-}
[ -n "$AJW_STRESS_SECONDS" ] || unset AJW_STRESS_SECONDS

echo "run_asan: module $AJW_MODULE, sanitizer logs in $LOGDIR"
rc=0
# whole suite unless test paths are given
paths=tests/integration
for a in "$@"; do case $a in -*) ;; *) paths= ;; esac; done
$PY -m pytest -q -p no:cacheprovider $paths "$@" || rc=$?

reports=$(ls "$LOGDIR" 2>/dev/null | wc -l)
if [ "$reports" -ne 0 ]; then
    echo "run_asan: $reports sanitizer report file(s):" >&2
    for f in "$LOGDIR"/*; do echo "== $f" >&2; head -60 "$f" >&2; done
    rc=1
fi
if [ $rc -eq 0 ]; then
    echo "run_asan: clean (no sanitizer reports, suite passed)"
    rmdir "$LOGDIR" 2>/dev/null || true
fi
exit $rc
