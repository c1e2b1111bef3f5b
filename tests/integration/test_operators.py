"""What operators ask for, against a real httpd: optional authentication
(AuthJWKSOptional) and how it composes with Require; tokens from any header
or scheme (AuthJWKSTokenFrom header=<Name>[:<scheme>]) with the same
scrubbing and "given twice" rules; JSON refusals (AuthJWKSJSONErrors); and
verified claims in the access log (LogFormat %{JWT_CLAIM_sub}e)."""
import http.client
import http.server
import json
import os
import threading

import pytest
import requests

import harness as H
from conftest import (REJECTED, TIMEOUT, _module_teardown_check, assert_insufficient,
                      assert_invalid_request, assert_invalid_token, env_of, get)

ISS = "https://issuer.test"
BAD_REQUEST = r"\[auth_jwks:error\].*bad bearer request: .*"
AUTHZ = r"authz_core:error.*AH0163\d"


def loc(name, body="", require="Require valid-user"):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    AuthJWKSMinRefreshInterval 1
%s
    %s
</Location>
""" % (name, ISS, body, require)


class Backend401:
    """A backend that answers every request 401 with its own body."""

    BODY = b"backend says: log in with Basic"

    def __init__(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                self.send_response(401)
                self.send_header("Content-Type", "text/plain")
                self.send_header("WWW-Authenticate", 'Basic realm="backend"')
                self.send_header("Content-Length", str(len(outer.BODY)))
                self.end_headers()
                self.wfile.write(outer.BODY)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


SECTIONS = [
    # 1. optional authentication
    ("opt", "    AuthJWKSOptional On", "Require all granted"),
    ("optv", "    AuthJWKSOptional On", "Require valid-user"),
    ("optpost", "    AuthJWKSOptional On",
     "<LimitExcept POST>\n        Require all granted\n    </LimitExcept>\n"
     "    <Limit POST>\n        Require claim roles:admin\n    </Limit>"),
    ("optq", "    AuthJWKSOptional On\n    AuthJWKSTokenFrom header query=access_token",
     "Require all granted"),
    ("plain", "", "Require all granted"),
    # 2. any header, any scheme
    ("xapi", "    AuthJWKSTokenFrom header=X-Api-Token\n    AuthJWKSForwardToken Off\n"
             "    AuthJWKSPassClaims both", "Require valid-user"),
    ("xsch", "    AuthJWKSTokenFrom header=Authorization:JWT\n    AuthJWKSForwardToken Off",
     "Require valid-user"),
    ("xtok", "    AuthJWKSTokenFrom header=X-Api-Token:Token", "Require valid-user"),
    ("xboth", "    AuthJWKSTokenFrom header header=X-Api-Token", "Require valid-user"),
    ("xip", "    AuthJWKSTokenFrom header=X-Api-Token\n    AuthJWKSForwardToken Off",
     "Require ip 127.0.0.1"),
    ("xopt", "    AuthJWKSTokenFrom header=X-Api-Token\n    AuthJWKSOptional On\n"
             "    AuthJWKSForwardToken Off", "Require all granted"),
    # 5. JSON refusals
    ("json", "    AuthJWKSJSONErrors On\n    ErrorDocument 401 \"custom text\"",
     "Require claim roles:admin"),
    ("jsonb", "    AuthJWKSJSONErrors On", "Require valid-user"),
    ("jsonany", "    AuthJWKSJSONErrors On",
     "<RequireAny>\n        Require claim roles:admin\n        Require valid-user\n"
     "    </RequireAny>"),
]


@pytest.fixture(scope="module")
def b401():
    b = Backend401()
    yield b
    b.close()


@pytest.fixture(scope="module")
def srv(jwks_server, b401):
    extra = "".join("LoadModule %s_module %s/mod_%s.so\n" % (m, H.MODDIR, m)
                    for m in ("rewrite", "authz_host"))
    extra += "".join(loc(n, b, r) for n, b, r in SECTIONS)
    extra += 'ProxyPass /jsonb/backend http://127.0.0.1:%d/\n' % b401.port
    extra += ('LogFormat "%u|%{JWT_CLAIM_sub}e|%{JWT_CLAIM_roles}e|%{APP_EMAIL}e|%>s|%U" jwtlog\n'
              'CustomLog "{root}/logs/jwt_log" jwtlog\n')
    extra += ('<Location /jsonany/forbidden>\n    RewriteEngine On\n    RewriteRule .* - [F]\n'
              '</Location>\n')
    extra += loc("logged", "    AuthJWKSClaimEnv email APP_EMAIL\n    AuthJWKSOptional On",
                 "Require all granted")
    extra += """<Directory "{root}/htdocs/hta">
    AllowOverride AuthConfig
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    Require valid-user
</Directory>
""" % ISS
    extra = extra.replace("{jwks}", jwks_server.url())
    h = H.Httpd(extra)
    h.write_conf(extra.replace("{root}", h.root))
    d = H.make_world_readable_dir(os.path.join(h.root, "htdocs", "hta"))
    for name, content in (("file.txt", "hta file\n"),
                          (".htaccess", "AuthJWKSOptional On\nAuthJWKSTokenFrom header=X-Api-Token\n"
                                        "AuthJWKSJSONErrors On\nRequire all granted\n")):
        with open(os.path.join(d, name), "w") as f:
            f.write(content)
        os.chmod(os.path.join(d, name), 0o644)
    h.covered = []
    h.allowed = [REJECTED % ".*", BAD_REQUEST, AUTHZ]
    try:
        h.start()
    except Exception:
        h.cleanup()
        raise
    yield h
    _module_teardown_check(h)


def tok(keys, **over):
    return H.mint(H.std_claims(**over), keys.rsa, "RS256")


def expect_rejected(expect_log, what=".*"):
    expect_log(REJECTED % what, required=True)


# ------------------------------------------------------------- 1. optional

def test_optional_no_token_is_anonymous(srv):
    r = get(srv, "/opt/env", headers={"X-JWT-Claim-sub": "mallory", "X-JWT-Claims": "e30",
                                      "X-JWT-Claim-roles": "admin"})
    env = env_of(r)
    assert "REMOTE_USER" not in env and "AUTH_TYPE" not in env
    assert not [k for k in env if k.startswith("JWT_")], env
    assert not [k for k in env if k.startswith("HTTP_X_JWT")], env
    assert "WWW-Authenticate" not in r.headers


def test_optional_valid_token_sets_user_and_claims(srv, keys):
    env = env_of(get(srv, "/opt/env", tok(keys, sub="alice", roles="admin")))
    assert env["REMOTE_USER"] == "alice"
    assert env["JWT_CLAIM_SUB"] == "alice" and env["JWT_CLAIM_ROLES"] == "admin"


def test_optional_other_scheme_is_no_token(srv):
    env = env_of(get(srv, "/opt/env", "dXNlcjpwdw==", scheme="Basic"))
    assert "REMOTE_USER" not in env


@pytest.mark.parametrize("case", ["bad_signature", "unknown_issuer", "unknown_kid", "expired",
                                  "wrong_audience", "alg_none", "not_a_jwt"])
def test_optional_present_invalid_token_refused(srv, keys, other_keys, expect_log, case):
    expect_rejected(expect_log)
    if case == "bad_signature":
        t = H.tamper_payload(tok(keys), sub="admin")
    elif case == "unknown_issuer":
        t = tok(keys, iss="https://evil.test")
    elif case == "unknown_kid":
        t = H.mint(H.std_claims(), other_keys.rsa, "RS256")
    elif case == "expired":
        t = tok(keys, exp=H.now() - 3600, iat=H.now() - 7200)
    elif case == "wrong_audience":
        t = tok(keys, aud="other")
    elif case == "alg_none":
        t = H.mint_none(H.std_claims())
    else:
        t = H.remember("abc.def.ghi")
    assert_invalid_token(get(srv, "/opt/env", t))


@pytest.mark.parametrize("how", ["twice_header_query", "two_headers", "empty", "stray"])
def test_optional_malformed_or_twice_is_400(srv, keys, expect_log, how):
    expect_log(BAD_REQUEST, required=True)
    t = tok(keys)
    if how == "twice_header_query":
        r = get(srv, "/optq/env?access_token=" + t, t)
    elif how == "two_headers":
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=TIMEOUT)
        c.putrequest("GET", "/opt/env")
        c.putheader("Authorization", "Bearer " + t)
        c.putheader("Authorization", "Bearer " + t)
        c.endheaders()
        resp = c.getresponse()
        assert resp.status == 400, resp.status
        c.close()
        return
    elif how == "empty":
        r = get(srv, "/opt/env", headers={"Authorization": "Bearer "})
    else:
        r = get(srv, "/opt/env", t + " x")
    assert_invalid_request(r)


def test_optional_with_valid_user_still_needs_a_token(srv, keys):
    r = get(srv, "/optv/env")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert env_of(get(srv, "/optv/env", tok(keys)))["REMOTE_USER"] == "alice"


def test_optional_composes_with_limit_post(srv, keys, expect_log):
    expect_log(AUTHZ)
    # GET: anonymous allowed; POST: a token with roles:admin
    assert "REMOTE_USER" not in env_of(get(srv, "/optpost/env"))
    r = requests.post(srv.url("/optpost/env"), timeout=TIMEOUT)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    r = requests.post(srv.url("/optpost/env"), timeout=TIMEOUT,
                      headers={"Authorization": "Bearer " + tok(keys, roles="user")})
    assert_insufficient(r)
    r = requests.post(srv.url("/optpost/env"), timeout=TIMEOUT,
                      headers={"Authorization": "Bearer " + tok(keys, roles="admin")})
    assert env_of(r)["REMOTE_USER"] == "alice"
    # a bad token on GET is refused, not taken as "no token"
    expect_rejected(expect_log, "bad_signature")
    assert_invalid_token(get(srv, "/optpost/env", H.tamper_payload(tok(keys), sub="x")))


def test_without_optional_granted_sections_ignore_tokens(srv, keys):
    # unchanged behaviour: Require all granted without AuthJWKSOptional never authenticates
    env = env_of(get(srv, "/plain/env", H.tamper_payload(tok(keys), sub="x")))
    assert "REMOTE_USER" not in env


# ------------------------------------------------------------- 2. any header

def app_headers(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    return {k.lower(): v for k, v in json.loads(resp.text)["headers"].items()}


def test_named_header_whole_value(srv, keys):
    t = tok(keys, sub="bob")
    env = env_of(get(srv, "/xapi/env", headers={"X-Api-Token": t}))
    assert env["REMOTE_USER"] == "bob"
    assert "HTTP_X_API_TOKEN" not in env           # ForwardToken Off
    # Authorization: Bearer is not a source of this section
    r = get(srv, "/xapi/env", t)
    assert r.status_code == 401


def test_named_header_scrubbed_before_backend(srv, keys):
    t = tok(keys, sub="bob")
    r = get(srv, "/xapi/app", headers={"X-Api-Token": t, "Connection": "X-JWT-Claim-sub",
                                       "X-JWT-Claim-sub": "mallory"})
    h = app_headers(r)
    assert "x-api-token" not in h, h
    assert h.get("x-jwt-claim-sub") == "bob", h
    assert "X-Api-Token" in r.headers.get("Vary", ""), r.headers


def test_named_header_scrubbed_when_authn_skipped(srv, keys):
    # Require ip grants before any authentication: ForwardToken Off still
    # takes the token header out on its way to the backend
    h = app_headers(get(srv, "/xip/app", headers={"X-Api-Token": tok(keys)}))
    assert "x-api-token" not in h, h
    h = app_headers(get(srv, "/xip/app", headers={"X-Api-Token": "not-even-a-token"}))
    assert "x-api-token" not in h, h


def test_named_header_twice_is_400(srv, keys, expect_log):
    expect_log(BAD_REQUEST, required=True)
    t = tok(keys)
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=TIMEOUT)
    c.putrequest("GET", "/xapi/env")
    c.putheader("X-Api-Token", t)
    c.putheader("X-Api-Token", t)
    c.endheaders()
    resp = c.getresponse()
    body = resp.read()
    c.close()
    assert resp.status == 400, (resp.status, body[:200])
    assert assert_invalid_request(get(srv, "/xboth/env", t, headers={"X-Api-Token": t})) is None


def test_named_header_bad_token_refused_and_scrubbed(srv, keys, expect_log):
    expect_rejected(expect_log, "bad_signature")
    bad = H.tamper_payload(tok(keys), sub="admin")
    assert_invalid_token(get(srv, "/xapi/app", headers={"X-Api-Token": bad}))


def test_other_scheme_in_authorization(srv, keys):
    t = tok(keys, sub="carol")
    env = env_of(get(srv, "/xsch/env", t, scheme="JWT"))
    assert env["REMOTE_USER"] == "carol"
    # Bearer (or Basic) is not this section's scheme: no token
    r = get(srv, "/xsch/env", t)
    assert r.status_code == 401 and "error=" not in r.headers["WWW-Authenticate"]
    h = app_headers(get(srv, "/xsch/app", t, scheme="jwt"))
    assert "authorization" not in h, h


def test_scheme_in_named_header(srv, keys):
    t = tok(keys, sub="dave")
    env = env_of(get(srv, "/xtok/env", headers={"X-Api-Token": "Token " + t}))
    assert env["REMOTE_USER"] == "dave"
    assert get(srv, "/xtok/env", headers={"X-Api-Token": t}).status_code == 401


def test_named_header_optional(srv, keys, expect_log):
    assert "REMOTE_USER" not in env_of(get(srv, "/xopt/env"))
    env = env_of(get(srv, "/xopt/env", headers={"X-Api-Token": tok(keys)}))
    assert env["REMOTE_USER"] == "alice" and "HTTP_X_API_TOKEN" not in env
    expect_rejected(expect_log, "bad_signature")
    assert_invalid_token(get(srv, "/xopt/env",
                             headers={"X-Api-Token": H.tamper_payload(tok(keys), sub="x")}))


@pytest.mark.parametrize("arg", ["header=Connection", "header=Host", "header=Cookie",
                                 "header=X-JWT-Claim-token", "header=X Y", "header=",
                                 "header=X-Api:", "header=X-Api:a b", "header=Proxy-Authorization",
                                 "header=Transfer-Encoding", "header=X-Api header=x-api",
                                 "header header=Authorization:bearer",
                                 "header=Authorization header",
                                 "header=X-Api:Token header=X-Api"])
def test_token_from_header_errors(arg):
    r = H.configtest(loc("api", "    AuthJWKSTokenFrom %s" % arg).replace(
        "{jwks}", "http://127.0.0.1:9/jwks"))
    assert r.returncode != 0, arg
    assert "AuthJWKSTokenFrom" in r.stderr, r.stderr


def test_token_from_header_good():
    for arg in ("header header=Authorization:JWT", "header=X-Api:Token header=X-Api:Bearer",
                "header=X-Api-Token query=t cookie=c"):
        r = H.configtest(loc("api", "    AuthJWKSTokenFrom %s" % arg).replace(
            "{jwks}", "http://127.0.0.1:9/jwks"))
        assert r.returncode == 0, (arg, r.stderr)


def test_new_flags_errors():
    for d in ("AuthJWKSOptional maybe", "AuthJWKSJSONErrors yes please"):
        r = H.configtest(loc("api", "    " + d).replace("{jwks}", "http://127.0.0.1:9/jwks"))
        assert r.returncode != 0 and d.split()[0] in r.stderr, r.stderr


def test_new_directives_in_htaccess(srv, keys, expect_log):
    # AuthJWKSOptional, AuthJWKSTokenFrom header=..., AuthJWKSJSONErrors: AuthConfig
    r = get(srv, "/hta/file.txt")
    assert r.status_code == 200 and r.text == "hta file\n"
    assert get(srv, "/hta/file.txt", headers={"X-Api-Token": tok(keys)}).status_code == 200
    expect_rejected(expect_log, "bad_signature")
    r = get(srv, "/hta/file.txt", headers={"X-Api-Token": H.tamper_payload(tok(keys), sub="x")})
    assert r.status_code == 401 and r.headers["Content-Type"] == "application/json"


# ------------------------------------------------------------- 5. JSON refusals

def json_body(r, status):
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == "application/json", r.headers
    return json.loads(r.text)


def test_json_no_token(srv):
    r = get(srv, "/jsonb/env")
    assert json_body(r, 401) == {"error": "unauthorized",
                                 "error_description": "A token is required"}
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_json_invalid_token_same_text_as_challenge(srv, keys, expect_log):
    expect_rejected(expect_log, "expired")
    t = tok(keys, exp=H.now() - 3600, iat=H.now() - 7200)
    r = get(srv, "/json/env", t)
    b = json_body(r, 401)
    ch = H.parse_bearer(r.headers["WWW-Authenticate"])
    assert b == {"error": ch["error"], "error_description": ch["error_description"]}
    assert b["error"] == "invalid_token"
    for piece in t.split("."):
        assert piece not in r.text
    # the ErrorDocument text of the section is replaced too
    assert "custom text" not in r.text


def test_json_bad_request(srv, keys, expect_log):
    expect_log(BAD_REQUEST, required=True)
    r = get(srv, "/jsonb/env", headers={"Authorization": "Bearer "})
    b = json_body(r, 400)
    assert b["error"] == "invalid_request" and b["error_description"] == "empty bearer token"


def test_json_insufficient_scope(srv, keys, expect_log):
    expect_log(AUTHZ)
    r = get(srv, "/json/env", tok(keys, roles="user"))
    b = json_body(r, 403)
    assert b["error"] == "insufficient_scope"
    assert env_of(get(srv, "/json/env", tok(keys, roles="admin")))["REMOTE_USER"] == "alice"


def test_json_head(srv, keys, expect_log):
    expect_rejected(expect_log, "bad_signature")
    r = requests.head(srv.url("/jsonb/env"), timeout=TIMEOUT, headers={
        "Authorization": "Bearer " + H.tamper_payload(tok(keys), sub="x")})
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b""


def test_json_backend_401_untouched(srv, keys, b401):
    r = get(srv, "/jsonb/backend", tok(keys))
    assert r.status_code == 401
    assert r.content == Backend401.BODY
    assert r.headers["Content-Type"] == "text/plain"


def test_json_not_left_by_a_granted_alternative(srv, keys, expect_log):
    # roles:admin fails, valid-user grants: the insufficient_scope challenge the
    # first alternative made is taken back, and so is its JSON body, so that a
    # later 403 of another cause (mod_rewrite [F] in fixups) is httpd's own
    expect_log(AUTHZ)
    assert env_of(get(srv, "/jsonany/env", tok(keys, roles="user")))["REMOTE_USER"] == "alice"
    r = get(srv, "/jsonany/forbidden", tok(keys, roles="user"))
    assert r.status_code == 403
    assert r.headers["Content-Type"].startswith("text/html"), r.headers
    assert "WWW-Authenticate" not in r.headers


def test_json_off_keeps_html(srv):
    r = get(srv, "/optv/env")
    assert r.status_code == 401 and r.headers["Content-Type"].startswith("text/html")


# ------------------------------------------------------------- 6. access log

def test_claims_in_access_log(srv, keys, expect_log):
    path = os.path.join(srv.root, "logs", "jwt_log")
    t = tok(keys, sub="erin", roles=["ops", "dev"], email="erin@example.com")
    assert get(srv, "/logged/env", t).status_code == 200
    assert get(srv, "/logged/env").status_code == 200
    expect_rejected(expect_log, "bad_signature")
    assert get(srv, "/jsonb/env", H.tamper_payload(tok(keys, sub="mallory"),
                                                     roles="admin")).status_code == 401

    def lines():
        with open(path) as f:
            return [l.rstrip("\n") for l in f if "/logged/" in l or "/jsonb/env" in l]
    got = H.wait_until(lambda: len(lines()) >= 3 and lines(), 10, what="access log lines")
    assert "erin|erin|ops,dev|erin@example.com|200|/logged/env" in got, got
    assert "-|-|-|-|200|/logged/env" in got, got
    refused = [l for l in got if l.endswith("|401|/jsonb/env")]
    assert refused and refused[-1] == "-|-|-|-|401|/jsonb/env", got
    assert not any("mallory" in l or "admin" in l for l in got), got
