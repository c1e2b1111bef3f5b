#!/bin/sh
# Install Debian packages mod_auth_jwks needs (the build and test set, or the
# packages named as arguments). Runs apt-get only when something is missing and
# we are root; otherwise says what to install. With AJW_DEPS_OPTIONAL=1 a
# failure is only reported, never fatal (for optional extras such as the bench's peers).
set -u
PKGS=${*:-"apache2 apache2-dev libapr1-dev libaprutil1-dev libssl-dev libjansson-dev
libcurl4-openssl-dev zlib1g-dev libcmocka-dev pkg-config gcc make openssl curl clang libclang-rt-14-dev
python3-pytest python3-jwcrypto python3-requests python3-cryptography python3-prometheus-client
apache2-utils memcached redis-server chromium
libapache2-mod-auth-openidc"}
optional=${AJW_DEPS_OPTIONAL:-0}
fail() {
    echo "$1" >&2
    [ "$optional" = 1 ] && exit 0
    exit 1
}
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
[ "$(id -u)" -eq 0 ] || fail "missing Debian packages:$missing — run: sudo apt-get install$missing"
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null; } \
    || fail "apt-get could not install:$missing"
exit 0
