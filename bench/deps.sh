#!/bin/sh
# make bench only: wrk (every timed row), valgrind (the goals part's
# instruction counts, and part 3's with BENCH_INSTR=1), perf (linux-perf: the
# goals part's profile rows) and the peer modules compared
# against mod_auth_jwks, installed
# like every other dependency (tests/deps.sh) but optional: when they cannot be
# installed, bench.py skips those peers. The bench never uses the system apache2
# service the Debian packages enable: every httpd it starts has its own config.
AJW_DEPS_OPTIONAL=1 exec sh "$(dirname "$0")/../tests/deps.sh" \
    libapache2-mod-oauth2 libapache2-mod-auth-openidc wrk valgrind linux-perf
