#!/bin/sh
# mod_auth_jwks demo: one real httpd on 127.0.0.1 that
#   - serves its own JWKS, unprotected, at /.well-known/jwks.json
#   - protects a CGI at /cgi/whoami, a proxied app at /app, and /admin
#     (which needs the claim roles:admin)
# then shows what clients and apps see. Run from the repo root after `make`.
# Builds nothing. Needs: apache2, curl, /usr/bin/python3 with jwcrypto.
set -eu

PY=/usr/bin/python3
APACHE=/usr/sbin/apache2
MODDIR=/usr/lib/apache2/modules
TOP=$(pwd)
MODULE=$TOP/build/mod_auth_jwks.so
RUN=$TOP/demo/run

[ -f "$MODULE" ] || { echo "demo: $MODULE missing — run make first" >&2; exit 1; }
[ -x "$APACHE" ] || { echo "demo: $APACHE missing — run make deps" >&2; exit 1; }
command -v curl >/dev/null || { echo "demo: curl missing — run make deps" >&2; exit 1; }

# ---- a fresh run directory (httpd children run as www-data: world-readable)
if [ -f "$RUN/run/httpd.pid" ]; then
    "$APACHE" -f "$RUN/conf/httpd.conf" -k stop >/dev/null 2>&1 || true
    sleep 1
fi
rm -rf "$RUN"
mkdir -p "$RUN/conf" "$RUN/logs" "$RUN/run" "$RUN/htdocs/.well-known" "$RUN/cgi-bin" "$RUN/private"
chmod 755 "$RUN" "$RUN/conf" "$RUN/logs" "$RUN/run" "$RUN/htdocs" "$RUN/htdocs/.well-known" "$RUN/cgi-bin"
chmod 700 "$RUN/private"

ports=$($PY -c '
import socket
ss = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ss.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ss))')
PORT=${ports% *}
BPORT=${ports#* }
ISS="https://idp.demo.test"

# ---- key pair + JWKS (EC P-256, ES256), and a token minter
cat >"$RUN/private/mint.py" <<'EOF'
import json, sys, time, uuid
from jwcrypto import jwk, jws
run = sys.argv[1]
if sys.argv[2] == "init":
    k = jwk.JWK.generate(kty="EC", crv="P-256", kid="demo-es256-1")
    open(run + "/private/key.json", "w").write(k.export_private())
    pub = k.export_public(as_dict=True)
    pub.update(use="sig", alg="ES256")
    open(run + "/htdocs/.well-known/jwks.json", "w").write(json.dumps({"keys": [pub]}, indent=1))
    sys.exit(0)
k = jwk.JWK.from_json(open(run + "/private/key.json").read())
now = int(time.time())
claims = {"iss": sys.argv[3], "aud": "demo-api", "sub": "alice", "email": "alice@example.com",
          "name": "Alice Example", "scope": "openid profile", "roles": ["user"],
          "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex}
if sys.argv[2] == "admin":
    claims["roles"] = ["user", "admin"]
if sys.argv[2] == "expired":
    claims["iat"], claims["exp"] = now - 7200, now - 3600
t = jws.JWS(json.dumps(claims))
t.add_signature(k, alg="ES256", protected=json.dumps({"alg": "ES256", "typ": "JWT", "kid": k.get("kid")}))
print(t.serialize(compact=True))
EOF
$PY "$RUN/private/mint.py" "$RUN" init
chmod 644 "$RUN/htdocs/.well-known/jwks.json"

cat >"$RUN/cgi-bin/whoami" <<'EOF'
#!/usr/bin/python3
import json, os
print("Content-Type: application/json\r\n\r", end="\n")
keep = {k: v for k, v in os.environ.items()
        if k.startswith("JWT_") or k in ("REMOTE_USER", "AUTH_TYPE")}
print(json.dumps(keep, indent=2, sort_keys=True))
EOF
cat >"$RUN/cgi-bin/echo-headers" <<'EOF'
#!/usr/bin/python3
import json, os
print("Content-Type: application/json\r\n\r", end="\n")
h = {"-".join(p.capitalize() for p in k[5:].split("_")): v
     for k, v in os.environ.items() if k.startswith("HTTP_")}
print(json.dumps(h, indent=2, sort_keys=True))
EOF
chmod 755 "$RUN/cgi-bin/whoami" "$RUN/cgi-bin/echo-headers"

cat >"$RUN/conf/httpd.conf" <<EOF
ServerRoot "$RUN"
ServerName 127.0.0.1
DefaultRuntimeDir "$RUN/run"
PidFile "$RUN/run/httpd.pid"
Listen 127.0.0.1:$PORT
Listen 127.0.0.1:$BPORT
User www-data
Group www-data
ErrorLog "$RUN/logs/error_log"
LogLevel warn auth_jwks:info
LoadModule mpm_event_module $MODDIR/mod_mpm_event.so
LoadModule authn_core_module $MODDIR/mod_authn_core.so
LoadModule authz_core_module $MODDIR/mod_authz_core.so
LoadModule authz_user_module $MODDIR/mod_authz_user.so
LoadModule mime_module $MODDIR/mod_mime.so
LoadModule alias_module $MODDIR/mod_alias.so
LoadModule cgid_module $MODDIR/mod_cgid.so
LoadModule proxy_module $MODDIR/mod_proxy.so
LoadModule proxy_http_module $MODDIR/mod_proxy_http.so
LoadModule auth_jwks_module $MODULE
ScriptSock "$RUN/run/cgid.sock"
TypesConfig /etc/mime.types
DocumentRoot "$RUN/htdocs"
<Directory />
    Require all denied
</Directory>
<Directory "$RUN/htdocs">
    Require all granted
</Directory>
<Directory "$RUN/cgi-bin">
    Options +ExecCGI
    Require all granted
</Directory>

ScriptAlias /cgi/whoami "$RUN/cgi-bin/whoami"
ScriptAlias /admin "$RUN/cgi-bin/whoami"
ProxyPass /app http://127.0.0.1:$BPORT/echo

# Everything under these is protected by mod_auth_jwks. The JWKS itself
# (/.well-known/jwks.json) is not, and the module fetches it in the background.
<LocationMatch "^/(cgi|app|admin)">
    AuthType jwks
    AuthName "demo"
    AuthJWKSURL http://127.0.0.1:$PORT/.well-known/jwks.json
    AuthJWKSIssuer $ISS
    AuthJWKSAudience demo-api
    AuthJWKSPassClaims both
    AuthJWKSForwardToken Off
    Require valid-user
</LocationMatch>
<Location /admin>
    Require claim roles:admin
</Location>

<VirtualHost 127.0.0.1:$BPORT>
    ServerName backend
    ScriptAlias /echo "$RUN/cgi-bin/echo-headers"
</VirtualHost>
EOF

# ---- start, and always stop
stop_httpd() {
    if [ -f "$RUN/run/httpd.pid" ]; then
        pid=$(cat "$RUN/run/httpd.pid" 2>/dev/null || true)
        "$APACHE" -f "$RUN/conf/httpd.conf" -k stop >/dev/null 2>&1 || true
        i=0
        while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.1; i=$((i + 1))
        done
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            echo "demo: httpd $pid did not stop in 10s, killing" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
}
trap stop_httpd EXIT
trap 'exit 130' INT TERM

"$APACHE" -t -f "$RUN/conf/httpd.conf" >/dev/null
"$APACHE" -f "$RUN/conf/httpd.conf" -k start
i=0
until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/.well-known/jwks.json"; do
    i=$((i + 1))
    if [ $i -ge 50 ]; then echo "demo: httpd did not come up" >&2; tail -20 "$RUN/logs/error_log" >&2; exit 1; fi
    sleep 0.1
done

BASE="http://127.0.0.1:$PORT"
TOKEN=$($PY "$RUN/private/mint.py" "$RUN" user "$ISS")
ADMIN=$($PY "$RUN/private/mint.py" "$RUN" admin "$ISS")
EXPIRED=$($PY "$RUN/private/mint.py" "$RUN" expired "$ISS")

show() {  # title, then curl args: status line, auth headers, JSON body (HTML error pages skipped)
    title=$1; shift
    printf '\n=== %s\n' "$title"
    curl -s --max-time 15 -D "$RUN/run/h.txt" -o "$RUN/run/b.txt" "$@" || echo "(curl failed: $?)"
    tr -d '\r' <"$RUN/run/h.txt" | grep -i -E '^(HTTP/|www-authenticate:|retry-after:)' || true
    if head -c 1 "$RUN/run/b.txt" | grep -q '{'; then cat "$RUN/run/b.txt"; fi
}

printf 'httpd on %s (backend vhost on %s); JWKS served at %s/.well-known/jwks.json\n' "$BASE" "$BPORT" "$BASE"
printf 'token (ES256, kid demo-es256-1): %.40s...\n' "$TOKEN"

show "1. no token -> 401 with a Bearer challenge" "$BASE/cgi/whoami"
show "2. valid token -> 200; what the CGI saw" -H "Authorization: Bearer $TOKEN" "$BASE/cgi/whoami"
show "3. proxied app: the request headers it received (client also sent a spoofed X-JWT-Claim-sub: root)" \
    -H "Authorization: Bearer $TOKEN" -H "X-JWT-Claim-sub: root" "$BASE/app"
show "4. /admin needs roles:admin; alice has only [user] -> 403" -H "Authorization: Bearer $TOKEN" "$BASE/admin"
show "5. /admin with a token carrying roles [user, admin] -> 200" -H "Authorization: Bearer $ADMIN" "$BASE/admin"
show "6. expired token -> 401 invalid_token" -H "Authorization: Bearer $EXPIRED" "$BASE/cgi/whoami"

printf '\n=== the error log (one line per rejected token, never the token)\n'
grep -E 'auth_jwks|authz_core' "$RUN/logs/error_log" | sed 's/^\[[^]]*\] //' | tail -10 || true
printf '\ndemo done; files in demo/run/\n'
