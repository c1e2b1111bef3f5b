"""Boundary regressions: dotted vs bracketed claim paths, query tokens kept out
of the logs even when refused, AuthJWKSForwardToken Off when authentication is
skipped (Require ip) or the proxied URL was built before it ran (nocanon,
mod_rewrite [P]), Connection:-listed claim headers, several issuers and the
user claim, internal redirects, prefix rules, spoofed claim headers seen by
SetEnvIf / <If>, and the secure-by-default issuer/audience warnings."""
import http.client
import json
import os

import pytest

import harness as H
from conftest import (AUTHZ_FAILURE, REJECTED, TIMEOUT, _module_teardown_check, assert_insufficient,
                      assert_invalid_token, env_of, get)

ISS = "https://issuer.test"
BAD_REQUEST = r"\[auth_jwks:error\].*bad bearer request: %s"
STILL_HOLDS = r"the proxied URL still holds the token"
ISS_A, ISS_B = "https://a.example", "https://b.example"
LOAD = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, H.MODDIR, m)
                 for m in ("rewrite", "setenvif", "authz_host")) + "\n"


def jloc(name, body="", require="Require valid-user", realm="api", url="{jwks}"):
    """A jwks <Location> with issuer and audience (no secure-by-default warning)."""
    return """<Location /%s>
    AuthType jwks
    AuthName "%s"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
%s
    %s
</Location>
""" % (name, realm, url, ISS, body, require)


QOFF = "    AuthJWKSTokenFrom query=access_token\n    AuthJWKSForwardToken Off\n"


def main_conf(h, jwks, echo_port):
    hta = os.path.join(h.root, "htdocs", "hta")
    return LOAD + """
# 8. server-level header looks that must never see a spoofed claim header
SetEnvIf X-JWT-Claim-roles ^admin$ ADMIN=1
SetEnvIf x_jwt_claim_roles ^admin$ ADMIN=1
<If "-n req('X-JWT-Claim-roles') || -n req('x_jwt_claim_roles')">
    SetEnv SAWSPOOF 1
</If>

# 3b/3c/3d. proxied URLs built before authentication
ProxyPass /pq/ http://127.0.0.1:{echo}/ nocanon
RewriteEngine On
RewriteRule ^/rw/(.*)$ http://127.0.0.1:{echo}/$1 [P,NE]
RewriteRule ^/rwx/(.*)$ http://127.0.0.1:{echo}/$1/%{{QUERY_STRING}} [P,NE]

# 6b. /same2/front and /same2/env share one merged config: httpd skips authn
# on the internal redirect and copies only r->user
ScriptAlias /same2/front "{root}/cgi-bin/env.py"

# 7. prefix directives refused in .htaccess
<Directory "{hta}">
    AllowOverride AuthConfig
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer {iss}
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    Require valid-user
</Directory>
""".format(echo=echo_port, hta=hta, jwks=jwks, iss=ISS, root=h.root) + "".join([
        # 1.
        jloc("nested", require="Require claim realm_access.roles:admin"),
        jloc("lit", require="Require claim [realm_access.roles]:admin"),
        # 2.
        jloc("ql", QOFF),
        # 2b. refused by the access check before authentication runs
        jloc("qip", QOFF, require="<RequireAll>\n        Require ip 10.0.0.0/8\n"
                                  "        Require valid-user\n    </RequireAll>"),
        # 3a.
        jloc("anyip", "    AuthJWKSTokenFrom header query=access_token\n"
                      "    AuthJWKSForwardToken Off\n",
             require="<RequireAny>\n        Require ip 127.0.0.1\n"
                     "        Require claim roles:admin\n    </RequireAny>"),
        # 3b, 3c, 3d (trailing slash: /pq/ as the ProxyPass)
        jloc("pq/", QOFF),
        jloc("rw/", QOFF),
        jloc("rwx/", QOFF),
        # 4.
        jloc("conn", "    AuthJWKSPassClaims headers\n"),
        # 5.
        """<Location /multi>
    AuthType jwks
    AuthName "api"
    AuthJWKSIssuer {a} {ua}
    AuthJWKSIssuer {b} {ub}
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    AuthJWKSUserClaim sub@iss
    Require user alice@{a}
</Location>
""".format(a=ISS_A, b=ISS_B, ua=jwks.replace("/jwks", "/jwks-a"), ub=jwks.replace("/jwks", "/jwks-b")),
        # 6a. front controller redirecting into another jwks section
        jloc("fc1", "    AuthJWKSForwardToken Off\n    RewriteEngine On\n"
                    "    RewriteRule ^ /fc2/env [PT]\n", realm="fc1"),
        jloc("fc2", "    AuthJWKSForwardToken Off\n", realm="fc2"),
        # 6b. redirect within the same jwks section
        jloc("same", "    AuthJWKSForwardToken Off\n    AuthJWKSPassClaims both\n"
                     "    RewriteEngine On\n    RewriteCond %{REQUEST_URI} ^/same/front$\n"
                     "    RewriteRule ^ /same/env [PT]\n"),
        jloc("same2", "    AuthJWKSForwardToken Off\n    AuthJWKSPassClaims both\n"
                      "    RewriteEngine On\n    RewriteCond %{REQUEST_URI} ^/same2/front$\n"
                      "    RewriteRule ^ /same2/env [PT]\n"),
        # 8.
        jloc("spoof"),
    ]).replace("{jwks}", jwks)


def put_htaccess(h, sub, text):
    d = H.make_world_readable_dir(os.path.join(h.root, "htdocs", "hta", sub))
    for name, content in (("file.txt", "hta %s\n" % sub), (".htaccess", text)):
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write(content)
        os.chmod(p, 0o644)


HTA = [("cp", "AuthJWKSClaimPrefix CLAIM_\n", "AuthJWKSClaimPrefix"),
       ("hp", "AuthJWKSHeaderPrefix X-Token-\n", "AuthJWKSHeaderPrefix")]


@pytest.fixture(scope="module")
def srv(jwks_server, echo_backend, keys, other_keys):
    jwks_server.set(keys.jwks(), path="/jwks-a")
    jwks_server.set(other_keys.jwks(), path="/jwks-b")
    h = H.Httpd("", name="boundary", raw_backend_port=echo_backend.port)
    h.covered = []
    h.allowed = [REJECTED % ".*", AUTHZ_FAILURE, BAD_REQUEST % ".*", STILL_HOLDS,
                 r"\.htaccess: AuthJWKS(Claim|Header)Prefix not allowed here"]
    for sub, text, _ in HTA:
        put_htaccess(h, sub, text)
    put_htaccess(h, "plain", "")
    h.write_conf(main_conf(h, jwks_server.url(), echo_backend.port))
    try:
        h.start()
    except Exception:
        h.cleanup()
        raise
    yield h
    _module_teardown_check(h)


def tok(keys, alg="RS256", **claims):
    return H.mint(H.std_claims(**claims), keys.for_alg(alg), alg)


def raw_of(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    return json.loads(resp.text)


def hget(pairs, name):
    return [v for k, v in pairs if k.lower() == name.lower()]


def raw_get(h, target, headers=None):
    """GET with the request target and headers sent byte for byte."""
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=TIMEOUT)
    try:
        c.putrequest("GET", target, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def token_pieces(t):
    return [t] + [p for p in t.split(".")[1:] if len(p) >= 16]


# ------------------------------------------------------------- 1. dotted vs bracketed paths

def test_dotted_path_walks_nested_objects_only(srv, keys, expect_log):
    expect_log(AUTHZ_FAILURE, required=True)
    t1 = tok(keys, **{"realm_access": {"roles": ["user"]}, "realm_access.roles": "admin"})
    t2 = tok(keys, **{"realm_access": {"roles": ["admin"]}, "realm_access.roles": "user"})
    assert_insufficient(get(srv, "/nested/env", t1))
    assert env_of(get(srv, "/nested/env", t2))["REMOTE_USER"] == "alice"
    # [name] is the literal top-level member
    assert env_of(get(srv, "/lit/env", t1))["REMOTE_USER"] == "alice"
    assert_insufficient(get(srv, "/lit/env", t2))


# ------------------------------------------------------------- 2. query tokens out of the logs

def access_log(h):
    try:
        with open(os.path.join(h.root, "logs", "access_log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def logged_request(h, fn):
    """Run fn(); wait until the access log holds one more line; return the
    new access-log text."""
    before = access_log(h)
    n0 = before.count("\n")
    res = fn()
    H.wait_until(lambda: access_log(h).count("\n") > n0, 10, 0.05, "the access-log line")
    return res, access_log(h)[len(before):]


def assert_not_logged(h, t, new_access):
    for piece in token_pieces(t):
        assert piece not in new_access, ("token in access log", new_access)
        assert piece not in h.log_text(), "token in error log"


def test_refused_query_token_not_logged(srv, keys, expect_log):
    expect_log(REJECTED % "bad_audience", required=True)
    expect_log(REJECTED % "not_yet_valid", required=True)
    expect_log(BAD_REQUEST % "malformed token in query", required=True)
    t = tok(keys, aud="other")
    r, acc = logged_request(srv, lambda: get(srv, "/ql/env?a=1&access_token=%s&b=2" % t))
    assert_invalid_token(r)
    assert_not_logged(srv, t, acc)

    t = tok(keys, nbf=H.now() + 3600)
    r, acc = logged_request(srv, lambda: get(srv, "/ql/env?access_token=%s" % t))
    assert_invalid_token(r)
    assert_not_logged(srv, t, acc)

    t = tok(keys)   # valid, but with an escaped space after it: malformed
    ans, acc = logged_request(srv, lambda: raw_get(srv, "/ql/env?access_token=%s%%20&x=1" % t))
    assert ans[0] == 400, ans
    assert_not_logged(srv, t, acc)

    # accepted (control; already true before the fix)
    t = tok(keys)
    r, acc = logged_request(srv, lambda: get(srv, "/ql/env?a=1&access_token=%s" % t))
    assert env_of(r)["QUERY_STRING"] == "a=1"
    assert_not_logged(srv, t, acc)


def test_query_token_refused_before_authn_not_logged(srv, keys, expect_log):
    """Require ip refuses (403) in the access check: neither check_authn nor
    fixups runs, yet %r must not show the token."""
    expect_log(AUTHZ_FAILURE, required=True)
    for t in (tok(keys), tok(keys, aud="other"), "not-even-a.jwt"):
        r, acc = logged_request(srv, lambda: get(srv, "/qip/env?a=1&access_token=%s&b=2" % t))
        assert r.status_code == 403, (r.status_code, r.text[:200])
        assert "a=1&b=2" in acc, acc
        assert "access_token" not in acc, acc
        assert_not_logged(srv, t, acc)


def test_query_token_503_not_logged(make_httpd, keys, expect_log):
    expect_log(r"\[auth_jwks:(warn|error)\].*(127\.0\.0\.1:9/none|no_keys_loaded|no keys)")
    h = make_httpd(jloc("q503", QOFF + "    AuthJWKSStartupWait 0\n",
                        url="http://127.0.0.1:9/none"))
    t = tok(keys)
    r, acc = logged_request(h, lambda: get(h, "/q503/env?a=1&access_token=%s" % t))
    assert r.status_code == 503, (r.status_code, r.text[:200])
    assert_not_logged(h, t, acc)


# ------------------------------------------------------------- 3. ForwardToken Off without / before authn

def test_forward_off_when_authn_skipped_by_require_ip(srv, keys):
    t = tok(keys)
    for auth in ("Bearer " + t, "Bearer abc"):
        r = get(srv, "/anyip/raw", headers={"Authorization": auth})
        seen = raw_of(r)
        assert hget(seen["headers"], "Authorization") == [], (auth[:20], seen["headers"])
    seen = raw_of(get(srv, "/anyip/raw?x=1&access_token=%s" % t))
    assert "access_token" not in seen["path"] and t not in seen["path"], seen["path"]
    assert t not in json.dumps(seen)


def test_forward_off_proxypass_nocanon(srv, keys, echo_backend):
    t = tok(keys)
    seen = raw_of(get(srv, "/pq/a?x=1&access_token=%s" % t))
    assert seen["path"] == "/a?x=1", seen["path"]
    assert t not in json.dumps(seen)


def test_forward_off_rewrite_proxy(srv, keys):
    t = tok(keys)
    seen = raw_of(get(srv, "/rw/a?x=1&access_token=%s" % t))
    assert "access_token" not in seen["path"] and t not in seen["path"], seen["path"]
    assert t not in json.dumps(seen)


def test_forward_off_token_left_in_proxied_url_is_500(srv, keys, echo_backend, expect_log):
    expect_log(STILL_HOLDS, required=True)
    t = tok(keys)
    n0 = len(echo_backend.requests)
    r = get(srv, "/rwx/a?x=1&access_token=%s" % t)
    assert r.status_code == 500, (r.status_code, r.text[:300])
    assert t not in r.text
    assert len(echo_backend.requests) == n0, echo_backend.requests[n0:]


# ------------------------------------------------------------- 4. Connection: cannot drop claim headers

@pytest.mark.parametrize("connection", [
    "keep-alive, X-JWT-Claim-sub, X-JWT-Claims",
    # folded like a CGI backend would, odd spacing, empty items, claim names first and last
    "x_jwt_claims ,keep-alive,,\tX-JWT-CLAIM-SUB\t",
    "X-JWT-Claims",
    # mod_proxy splits at white space as well as commas: spaces, tabs, mixes
    "keep-alive X-JWT-Claims X-JWT-Claim-sub",
    "keep-alive\tX-JWT-Claims\tX-JWT-Claim-sub",
    "keep-alive, X-JWT-Claims \t X-JWT-Claim-sub",
    "X-JWT-Claims\t,keep-alive  x_jwt_claim_sub",
    "keep-alive;X-JWT-Claims",
])
def test_connection_header_cannot_drop_claim_headers(srv, keys, connection):
    claims = H.std_claims()
    t = H.mint(claims, keys.rsa, "RS256")
    status, _, body = raw_get(srv, "/conn/raw", {
        "Authorization": "Bearer " + t,
        "Connection": connection})
    assert status == 200, (status, body[:300])
    hd = json.loads(body)["headers"]
    assert hget(hd, "X-JWT-Claim-sub") == ["alice"], hd
    xc = hget(hd, "X-JWT-Claims")
    assert len(xc) == 1 and json.loads(H.b64u_decode(xc[0])) == claims, hd


# ------------------------------------------------------------- 5. several issuers

def test_user_claim_sub_at_iss(srv, keys, other_keys, expect_log):
    expect_log(AUTHZ_FAILURE)
    expect_log(REJECTED % ".*")
    ta = H.mint(H.std_claims(iss=ISS_A), keys.rsa, "RS256")
    tb = H.mint(H.std_claims(iss=ISS_B), other_keys.rsa, "RS256")
    env = env_of(get(srv, "/multi/env", ta))
    assert env["REMOTE_USER"] == "alice@https://a.example", env["REMOTE_USER"]
    r = get(srv, "/multi/env", tb)
    assert r.status_code != 200, (r.status_code, r.text[:300])
    assert "REMOTE_USER" not in r.text


def test_several_issuers_bare_user_claim_warns(make_httpd, jwks_server, expect_log):
    expect_log(r"\[auth_jwks:warn\].*several issuers.*AuthJWKSUserClaim"
               r"|\[auth_jwks:warn\].*AuthJWKSUserClaim.*several issuers", required=True)
    make_httpd("""<Location /two>
    AuthType jwks
    AuthName "api"
    AuthJWKSIssuer %s %s
    AuthJWKSIssuer %s %s
    AuthJWKSAudience api
    Require valid-user
</Location>
""" % (ISS_A, jwks_server.url("/jwks-a"), ISS_B, jwks_server.url("/jwks-b")))


# ------------------------------------------------------------- 6. internal redirects

def test_redirect_into_other_jwks_section(srv, keys):
    t = tok(keys)
    env = env_of(get(srv, "/fc1/front", t))
    assert env.get("REMOTE_USER") == "alice", env.get("REMOTE_USER")
    assert env.get("JWT_CLAIM_SUB") == "alice", sorted(env)
    assert "HTTP_AUTHORIZATION" not in env


def assert_same_section_env(srv, keys, path):
    claims = H.std_claims()
    t = H.mint(claims, keys.rsa, "RS256")
    env = env_of(get(srv, path, t))
    assert env.get("REMOTE_USER") == "alice", env.get("REMOTE_USER")
    assert env.get("JWT_CLAIM_SUB") == "alice", sorted(env)
    assert json.loads(env.get("JWT_CLAIMS", "null")) == claims, sorted(env)
    assert env.get("HTTP_X_JWT_CLAIM_SUB") == "alice", sorted(env)
    assert "HTTP_AUTHORIZATION" not in env


def test_redirect_within_same_jwks_section(srv, keys):
    """/same/front (htdocs) -> /same/env (cgi-bin): the jwks section runs again."""
    assert_same_section_env(srv, keys, "/same/front")


def test_redirect_same_merged_config(srv, keys):
    """/same2/front -> /same2/env, both the CGI: one merged config, httpd does
    not authenticate the redirect again (only r->user is carried over)."""
    assert_same_section_env(srv, keys, "/same2/front")


# ------------------------------------------------------------- 7. prefixes

def prefix_conf(line):
    return jloc("api", "    " + line).replace("{jwks}", "http://127.0.0.1:9/jwks")


@pytest.mark.parametrize("directive,bad,good", [
    ("AuthJWKSClaimPrefix", ["ALL_", "HTTPS_", "FTP_", "JDK_", "REQUESTS_"],
     ["JWT_CLAIM_", "OIDC_CLAIM_", "CLAIM_", "TOKEN_"]),
    ("AuthJWKSHeaderPrefix", ["X-User-", "X-Forwarded-", "Remote-"],
     ["X-JWT-Claim-", "X-OIDC-", "OIDC-Claim-", "X-Token-"]),
])
def test_prefix_first_word(directive, bad, good):
    refused = []
    for p in bad:
        r = H.configtest(prefix_conf("%s %s" % (directive, p)))
        if r.returncode == 0 or directive not in r.stderr:
            refused.append(p)
    assert not refused, "apache2 -t accepted (or did not name %s for): %s" % (directive, refused)
    for p in good:
        r = H.configtest(prefix_conf("%s %s" % (directive, p)))
        assert r.returncode == 0, (p, r.stderr)


def test_prefix_directives_refused_in_htaccess(srv, keys, expect_log):
    r = get(srv, "/hta/plain/file.txt", tok(keys))   # control
    assert r.status_code == 200 and r.text == "hta plain\n", (r.status_code, r.text[:200])
    for sub, _, directive in HTA:
        expect_log(r"\.htaccess: %s not allowed here" % directive, required=True)
        for t in (None, tok(keys)):
            r = get(srv, "/hta/%s/file.txt" % sub, t)
            assert r.status_code == 500, (directive, r.status_code, r.text[:200])
            assert "hta " not in r.text


# ------------------------------------------------------------- 8. spoofed headers vs other modules

def test_spoofed_claim_header_invisible_to_setenvif_and_if(srv, keys):
    t = tok(keys)
    for name in ("X-JWT-Claim-roles", "x_jwt_claim_roles"):
        env = env_of(get(srv, "/spoof/env", t, headers={name: "admin"}))
        assert env["REMOTE_USER"] == "alice"
        for k in ("ADMIN", "SAWSPOOF", "HTTP_X_JWT_CLAIM_ROLES", "JWT_CLAIM_ROLES"):
            assert k not in env, (name, k, env.get(k))


# ------------------------------------------------------------- 9. secure by default

def test_missing_issuer_audience_warn(make_httpd, jwks_server, expect_log):
    # the section as written in the config: "<Location /noiss>", not "<Location /noiss>>"
    expect_log(r"\[auth_jwks:warn\].*AuthJWKSIssuer.*<Location /noiss>(?!>)"
               r"|\[auth_jwks:warn\].*<Location /noiss>(?!>).*AuthJWKSIssuer", required=True)
    expect_log(r"\[auth_jwks:warn\].*AuthJWKSAudience.*<Location /noaud>(?!>)"
               r"|\[auth_jwks:warn\].*<Location /noaud>(?!>).*AuthJWKSAudience", required=True)
    make_httpd("""<Location /noiss>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {u}
    AuthJWKSAudience api
    Require valid-user
</Location>
<Location /noaud>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {u}
    AuthJWKSIssuer {iss}
    Require valid-user
</Location>
""".format(u=jwks_server.url(), iss=ISS))


def test_issuer_audience_star_opt_out(make_httpd, jwks_server, keys, expect_log):
    # "*" admits any issuer, so a bare user claim may still draw the
    # several-issuers warning; only the missing issuer/audience ones must go
    expect_log(r"\[auth_jwks:warn\].*several issuers")
    h = make_httpd("""<Location /star>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer *
    AuthJWKSAudience *
    AuthJWKSStartupWait 10
    Require valid-user
</Location>
""" % jwks_server.url())
    t = tok(keys, iss="https://whatever", aud="x")
    assert env_of(get(h, "/star/env", t))["REMOTE_USER"] == "alice"
    t = tok(keys, iss="https://other.example", aud=["y", "z"])
    assert env_of(get(h, "/star/env", t))["REMOTE_USER"] == "alice"
    warns = [ln for ln in h.log_text().splitlines() if "[auth_jwks:warn]" in ln
             and ("AuthJWKSIssuer" in ln or "AuthJWKSAudience" in ln)]
    assert not warns, warns
