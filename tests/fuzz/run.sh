#!/bin/sh
# Build the libFuzzer targets (clang, ASan + UBSan) and run each for
# FUZZ_SECONDS (default 30). Seeds come from the checked-in fixtures.
# Artifacts (crash-*, leak-*, timeout-*, oom-*) land in build/fuzz/, the full
# log of each target in build/fuzz/fuzz_<target>.log. Every target runs even
# after one fails; the exit status is non-zero when any of them found something.
# FUZZ_TARGETS="jws b64" limits the run.
set -eu
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-30}
targets=${FUZZ_TARGETS:-"jws jwks b64 json claims dpop record statuslist"}
case $secs in ''|*[!0-9]*) echo "FUZZ_SECONDS must be a whole number" >&2; exit 2;; esac
command -v clang >/dev/null || { echo "fuzz: clang missing — run make deps" >&2; exit 2; }
B=build/fuzz
mkdir -p $B
make --no-print-directory BUILD=$B CC=clang OPT="-O1 -g -fno-omit-frame-pointer" WARN="-Wall -Werror" \
     SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" $B/libajw.a >/dev/null
CFL="$(pkg-config --cflags apr-1 jansson openssl) -Ilib"
LIBS="$(pkg-config --libs apr-1 apr-util-1 openssl jansson libcurl zlib) -lpthread"
# Stack traces for UBSan too; leaks are errors (libFuzzer -detect_leaks=1 is the default).
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS
failed=""
for t in $targets; do
    [ -f tests/fuzz/fuzz_$t.c ] || { echo "no such target: $t" >&2; exit 2; }
    clang -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
          -fno-sanitize-recover=all $CFL tests/fuzz/fuzz_$t.c $B/libajw.a $LIBS -o $B/fuzz_$t
    corpus=$B/corpus_$t
    mkdir -p "$corpus"
    /usr/bin/python3 tests/fuzz/seeds.py "$t" "$corpus"
    log=$B/fuzz_$t.log
    stamp=$B/.stamp_$t
    : > "$stamp"
    echo "== fuzz_$t for ${secs}s (log: $log)"
    rc=0
    # -max_total_time bounds the run; -timeout bounds one input (a hang is a
    # timeout-* artifact); the outer timeout is a last resort if libFuzzer wedges.
    if command -v timeout >/dev/null; then to="timeout -k 10 $((secs + 120))"; else to=""; fi
    $to $B/fuzz_$t -max_total_time="$secs" -max_len=20000 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix=$B/ "$corpus" > "$log" 2>&1 || rc=$?
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done|==[0-9]+==ERROR|SUMMARY)" "$log" || true
    new=$(find $B -maxdepth 1 -newer "$stamp" \( -name 'crash-*' -o -name 'leak-*' \
            -o -name 'timeout-*' -o -name 'oom-*' \) -print)
    rm -f "$stamp"
    if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
        echo "fuzz_$t FAILED (exit $rc); artifacts: ${new:-none}"
        grep -A40 -E "==[0-9]+==ERROR|runtime error|deadly signal|Test unit written" "$log" | head -80
        failed="$failed $t"
    fi
done
[ -z "$failed" ] || { echo "fuzz: findings in:$failed"; exit 1; }
echo "fuzz: no crashes"
