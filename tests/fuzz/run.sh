#!/bin/sh
# Build the libFuzzer targets (clang, ASan + UBSan) and run each for
# FUZZ_SECONDS (default 30). Seeds come from the checked-in fixtures.
set -eu
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-30}
command -v clang >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq clang >/dev/null; }
B=build/fuzz
make --no-print-directory BUILD=$B CC=clang OPT="-O1 -g" WARN="-Wall -Werror" \
     SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" $B/libajw.a >/dev/null
CFL="$(pkg-config --cflags apr-1 jansson openssl) -Ilib"
LIBS="$(pkg-config --libs apr-1 apr-util-1 openssl jansson libcurl) -lpthread"
for t in jws jwks b64 claims; do
    clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $CFL \
          tests/fuzz/fuzz_$t.c $B/libajw.a $LIBS -o $B/fuzz_$t
    corpus=$B/corpus_$t
    mkdir -p "$corpus"
    /usr/bin/python3 tests/fuzz/seeds.py "$t" "$corpus"
    echo "== fuzz_$t for ${secs}s"
    $B/fuzz_$t -max_total_time="$secs" -max_len=20000 -timeout=10 -rss_limit_mb=2048 \
               -print_final_stats=1 "$corpus" 2>&1 | grep -E "^(stat::number_of_executed_units|Done|==.*ERROR|SUMMARY)" || true
    [ -z "$(ls $B/crash-* $B/leak-* 2>/dev/null; ls crash-* leak-* timeout-* 2>/dev/null)" ] || { echo "fuzz_$t found a crash"; exit 1; }
done
echo "fuzz: no crashes"
