#!/bin/sh
# make bench only: the peer modules compared against mod_auth_jwks.
# Installs them with apt-get when run as root and missing; otherwise says so and
# succeeds (bench.py then skips the peers it cannot find). Never fails the bench.
#
# The Debian packages run a2enmod for the system apache2 and may try to restart
# it; the bench never uses that service or /etc/apache2: every httpd it starts
# has its own generated config under /tmp.
PKGS="libapache2-mod-oauth2 libapache2-mod-auth-openidc"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "bench: peer modules missing:$missing (not root: those peers are skipped;" \
         "sudo apt-get install$missing to compare)" >&2
    exit 0
fi
echo "bench: installing peer modules:$missing"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && \
       apt-get install -y -qq --no-install-recommends $missing >/dev/null; }; then
    echo "bench: could not install$missing; those peers are skipped" >&2
fi
exit 0
