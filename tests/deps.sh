#!/bin/sh
# Install what building and testing mod_auth_jwks needs on a Debian machine.
# Runs apt-get only when something is missing and we are root; otherwise says what to install.
set -eu
PKGS="apache2 apache2-dev libapr1-dev libaprutil1-dev libssl-dev libjansson-dev
libcurl4-openssl-dev libcmocka-dev pkg-config gcc make openssl curl clang libclang-rt-14-dev
python3-pytest python3-jwcrypto python3-requests python3-cryptography apache2-utils"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages:$missing — run: sudo apt-get install$missing" >&2
    exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
