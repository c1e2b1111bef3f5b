"""Security-review hardening: .htaccess limits, claim-name collisions, prefix
and URL validation, AuthJWKSForwardToken Off for query/cookie tokens, strict
query/cookie token syntax, user-claim hygiene, AuthJWKSMaxTokenSize, the
jwks-status handler and Require claim on non-jwks locations."""
import http.client
import json
import os
import re
import subprocess
import time

import pytest
import requests

import harness as H
from conftest import (AUTHZ_FAILURE, REJECTED, TIMEOUT, assert_insufficient, assert_invalid_request,
                      assert_invalid_token, env_of, get, module_httpd)

ISS = "https://issuer.test"
BAD_REQUEST = r"\[auth_jwks:error\].*bad bearer request: %s"
NOT_EXPORTED = r"\[auth_jwks:debug\].*claim %s not exported under the prefix"


def loc(name, body="", require="Require valid-user", iss=True):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
%s    AuthJWKSStartupWait 10
%s
    %s
</Location>
""" % (name, ("    AuthJWKSIssuer %s\n    AuthJWKSAudience api\n" % ISS) if iss
        else "    AuthJWKSIssuer *\n    AuthJWKSAudience *\n", body, require)


LOCS = [
    ("coll", "    AuthJWKSPassClaims both"),
    ("qon", "    AuthJWKSTokenFrom query=access_token"),
    ("qoff", "    AuthJWKSTokenFrom query=access_token\n    AuthJWKSForwardToken Off"),
    ("con", "    AuthJWKSTokenFrom cookie=at"),
    ("coff", "    AuthJWKSTokenFrom cookie=at\n    AuthJWKSForwardToken Off"),
    ("user", ""),
]


@pytest.fixture(scope="module")
def srv(jwks_server, echo_backend):
    extra = "".join(loc(*l) for l in LOCS)
    extra += loc("small", "    AuthJWKSMaxTokenSize 300", iss=False)
    extra = extra.replace("{jwks}", jwks_server.url())
    h = module_httpd(extra, allowed=[REJECTED % ".*", AUTHZ_FAILURE, BAD_REQUEST % ".*"],
                     raw_backend_port=echo_backend.port)
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def tok(keys, alg="RS256", **claims):
    return H.mint(H.std_claims(**claims), keys.for_alg(alg), alg)


def raw_of(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    return json.loads(resp.text)


def hget(pairs, name):
    return [v for k, v in pairs if k.lower() == name.lower()]


def raw_get(h, target, headers=None):
    """GET with the request target sent byte for byte (requests would
    normalise %2E to '.')."""
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


def assert_raw_invalid_request(ans):
    status, hdrs, body = ans
    assert status == 400, (status, body[:300])
    b = H.parse_bearer(hdrs.get("www-authenticate"))
    assert b is not None and b.get("error") == "invalid_request", hdrs


configtest = H.configtest


def conf(body, url="http://127.0.0.1:9/jwks"):
    return """<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
%s
    Require valid-user
</Location>
""" % (url, body)


# ------------------------------------------------------------- 1. .htaccess

HTACCESS_FORBIDDEN = [
    ("AuthJWKSURL", "http://127.0.0.1:{port}/jwks"),
    ("AuthJWKSIssuer", "https://other.test http://127.0.0.1:{port}/jwks"),
    ("AuthJWKSCAFile", "{ca}"),
    ("AuthJWKSRefreshInterval", "60"),
    ("AuthJWKSMinRefreshInterval", "10"),
    ("AuthJWKSFetchTimeout", "5"),
]


def test_htaccess_fetch_directives_refused_others_work(make_httpd, jwks_server, keys, ca,
                                                       expect_log):
    h = make_httpd("", start=False)
    base = os.path.join(h.root, "htdocs", "hta")
    H.make_world_readable_dir(base)

    def put(sub, htaccess):
        d = H.make_world_readable_dir(os.path.join(base, sub))
        for name, text in (("file.txt", "hta %s\n" % sub), (".htaccess", htaccess)):
            if text is None:
                continue
            p = os.path.join(d, name)
            with open(p, "w") as f:
                f.write(text)
            os.chmod(p, 0o644)

    for name, val in HTACCESS_FORBIDDEN:
        put(name.lower(), "%s %s\n" % (name, val.format(port=jwks_server.port, ca=ca.ca_file)))
    put("aud", "AuthJWKSAudience other\nRequire claim roles:admin\n")
    put("plain", None)
    h.write_conf("""<Directory "%s">
    AllowOverride AuthConfig
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    Require valid-user
</Directory>
""" % (base, jwks_server.url(), ISS))
    h.start()

    # control: the <Directory> itself works (token needed, accepted)
    assert get(h, "/hta/plain/file.txt").status_code == 401
    r = get(h, "/hta/plain/file.txt", tok(keys))
    assert r.status_code == 200 and r.text == "hta plain\n", (r.status_code, r.text[:200])

    for name, _ in HTACCESS_FORBIDDEN:
        expect_log(r"%s not allowed here" % name, required=True)
        for t in (None, tok(keys)):
            r = get(h, "/hta/%s/file.txt" % name.lower(), t)
            assert r.status_code == 500, (name, r.status_code, r.text[:200])
            assert "hta " not in r.text
    log = h.log_text()
    for name, _ in HTACCESS_FORBIDDEN:
        assert re.search(r"\.htaccess: %s not allowed here" % name, log), (name, h.log_tail())

    # AuthJWKSAudience and Require claim from .htaccess do apply
    expect_log(REJECTED % "bad_audience", required=True)
    expect_log(AUTHZ_FAILURE, required=True)
    r = get(h, "/hta/aud/file.txt", tok(keys, aud="other", roles=["admin"]))
    assert r.status_code == 200 and r.text == "hta aud\n", (r.status_code, r.text[:200])
    # the <Directory>'s audience is replaced by the .htaccess one
    assert_invalid_token(get(h, "/hta/aud/file.txt", tok(keys, aud="api", roles=["admin"])))
    # Require claim from .htaccess: valid token without the role is refused (403)
    assert_insufficient(get(h, "/hta/aud/file.txt", tok(keys, aud="other", roles=["user"])))
    assert get(h, "/hta/aud/file.txt").status_code == 401


# ------------------------------------------------------------- 2. claim-name collisions

def test_claim_name_look_alikes_withheld(srv, keys, expect_log):
    """Only names of a-z, 0-9 and _ are exported under the prefixes: they map
    one to one, so a look-alike (Email-Verified, ROLE) can neither take the
    real claim's variable nor make the module withhold it."""
    claims = H.std_claims(email_verified=True, **{"Email-Verified": False, "role": "user",
                                                  "ROLE": "admin", "email": "a@example.com"})
    t = H.mint(claims, keys.rsa, "RS256")
    expect_log(NOT_EXPORTED % "Email-Verified", required=True)
    expect_log(NOT_EXPORTED % "ROLE", required=True)
    for _ in range(2):  # second round: token cache hit, same result
        env = env_of(get(srv, "/coll/env", t))
        assert env["JWT_CLAIM_EMAIL_VERIFIED"] == "true"
        assert env["JWT_CLAIM_ROLE"] == "user"
        assert env["JWT_CLAIM_EMAIL"] == "a@example.com"
        assert env["JWT_CLAIM_SUB"] == "alice"
        assert env["REMOTE_USER"] == "alice"
        assert json.loads(env["JWT_CLAIMS"]) == claims
        # PassClaims both: the header copies CGI turns into HTTP_* agree
        assert env["HTTP_X_JWT_CLAIM_EMAIL_VERIFIED"] == "true"
        assert env["HTTP_X_JWT_CLAIM_ROLE"] == "user"
        assert env.get("HTTP_X_JWT_CLAIM_EMAIL") == "a@example.com"

        hd = raw_of(get(srv, "/coll/raw", t))["headers"]
        assert hget(hd, "X-JWT-Claim-email-verified") == ["true"], hd
        assert hget(hd, "X-JWT-Claim-role") == ["user"], hd
        assert hget(hd, "X-JWT-Claim-email") == ["a@example.com"]
        assert hget(hd, "X-JWT-Claim-sub") == ["alice"]
        xc = hget(hd, "X-JWT-Claims")
        assert len(xc) == 1 and json.loads(H.b64u_decode(xc[0])) == claims


def test_look_alike_alone_not_exported(srv, keys, expect_log):
    """A look-alike alone does not fill the real claim's variable either."""
    expect_log(NOT_EXPORTED % "Email-Verified", required=True)
    t = tok(keys, **{"Email-Verified": True, "ROLE": "admin"})
    env = env_of(get(srv, "/coll/env", t))
    assert "JWT_CLAIM_EMAIL_VERIFIED" not in env and "JWT_CLAIM_ROLE" not in env
    hd = raw_of(get(srv, "/coll/raw", t))["headers"]
    names = [k.lower() for k, _ in hd]
    assert "x-jwt-claim-email-verified" not in names and "x-jwt-claim-role" not in names, hd


# ------------------------------------------------------------- 3. prefixes

@pytest.mark.parametrize("prefix", ["LD_", "PYTHON_X_", "AB", "1ABC_", "JWTX", "ld_preload_",
                                    "PATH_", "MY-APP_", "HTTP_X_", "MYAPP_", "JWTX_", "JWT-X_"])
def test_claim_prefix_rejected(prefix):
    r = configtest(conf("    AuthJWKSClaimPrefix %s" % prefix))
    assert r.returncode != 0, "apache2 -t accepted AuthJWKSClaimPrefix " + prefix
    assert "AuthJWKSClaimPrefix" in r.stderr, r.stderr


@pytest.mark.parametrize("prefix", ["X-", "Co", "X-Forwarded-", "Content-", "X-User", "X-Real-",
                                    "Accept-", "X_User-", "1X-User-", "X-User-", "X-JWTs-",
                                    "X-X-JWT-"])
def test_header_prefix_rejected(prefix):
    r = configtest(conf("    AuthJWKSHeaderPrefix %s" % prefix))
    assert r.returncode != 0, "apache2 -t accepted AuthJWKSHeaderPrefix " + prefix
    assert "AuthJWKSHeaderPrefix" in r.stderr, r.stderr


@pytest.mark.parametrize("env,hdr", [("TOKEN_APP_", "X-Token-"), ("OIDC_CLAIM_", "OIDC-Claim-"),
                                     ("jwt_", "x-jwt-claim-"), ("CLAIMS_", "Claims-")])
def test_good_prefixes_accepted(env, hdr):
    r = configtest(conf("    AuthJWKSClaimPrefix %s\n    AuthJWKSHeaderPrefix %s" % (env, hdr)))
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------- 4. ForwardToken Off, query/cookie

def test_forward_token_off_query_cgi(srv, keys):
    t = tok(keys)
    env = env_of(get(srv, "/qoff/env?a=1&access_token=%s&b=2" % t))
    assert env["QUERY_STRING"] == "a=1&b=2", env["QUERY_STRING"]
    assert env["REMOTE_USER"] == "alice"
    env = env_of(get(srv, "/qoff/env?access_token=%s" % t))
    assert "access_token" not in env.get("QUERY_STRING", ""), env.get("QUERY_STRING")
    assert t not in env.get("QUERY_STRING", "")
    # control: with ForwardToken On the parameter stays
    env = env_of(get(srv, "/qon/env?a=1&access_token=%s&b=2" % t))
    assert env["QUERY_STRING"] == "a=1&access_token=%s&b=2" % t


def test_forward_token_off_query_proxy(srv, keys):
    t = tok(keys)
    q = "?a=1&access_token=%s&b=2" % t
    # control first: the proxied request line carries the query when On
    on = raw_of(get(srv, "/qon/raw" + q))["path"]
    assert "access_token=" + t in on, on
    off = raw_of(get(srv, "/qoff/raw" + q))["path"]
    assert t not in off and "access_token" not in off, off
    assert off.endswith("/raw?a=1&b=2"), off
    # backend vhost CGI behind ProxyPassMatch
    h = raw_of(get(srv, "/qoff/app" + q))
    assert h["env"]["QUERY_STRING"] == "a=1&b=2", h["env"]["QUERY_STRING"]
    assert t not in json.dumps(h)


def test_forward_token_off_cookie(srv, keys):
    t = tok(keys)
    ck = {"Cookie": "x=1; at=%s; y=2" % t}
    on = raw_of(get(srv, "/con/raw", headers=ck))["headers"]
    assert any("at=" + t in v for v in hget(on, "Cookie")), on
    off = raw_of(get(srv, "/coff/raw", headers=ck))["headers"]
    cookies = hget(off, "Cookie")
    assert len(cookies) == 1, off
    items = [c.strip() for c in cookies[0].split(";")]
    assert "x=1" in items and "y=2" in items, cookies
    assert not [c for c in items if c.startswith("at=") or c == "at"], cookies
    assert t not in json.dumps(off)
    env = env_of(get(srv, "/coff/env", headers=ck))
    assert t not in env.get("HTTP_COOKIE", ""), env.get("HTTP_COOKIE")
    assert "x=1" in env.get("HTTP_COOKIE", "")
    # token the only cookie: no Cookie header left at all (or an empty one)
    off = raw_of(get(srv, "/coff/raw", headers={"Cookie": "at=%s" % t}))["headers"]
    assert not [v for v in hget(off, "Cookie") if v.strip()], off


def test_forward_token_off_query_not_in_request_uri(srv, keys):
    t = tok(keys)
    env = env_of(get(srv, "/qoff/env?a=1&access_token=%s&b=2" % t))
    assert t not in env.get("REQUEST_URI", ""), env.get("REQUEST_URI")


# ------------------------------------------------------------- 5. query/cookie token syntax

def test_query_token_with_escapes_or_junk_is_400(srv, keys, expect_log):
    t = tok(keys)
    expect_log(BAD_REQUEST % "malformed token in query", required=True)
    h, p, s = t.split(".")
    for q in ("access_token=%s%%2E%s.%s" % (h, p, s),          # '.' escaped
              "access_token=abc%2Edef%2Eghi",
              "access_token=%s%%00" % t,                        # NUL escape after the token
              "a=1&access_token=%s%%20&b=2" % t,                # escaped space
              "access_token=%s\"" % t):
        assert_raw_invalid_request(raw_get(srv, "/qoff/env?" + q))


def test_cookie_token_with_junk_is_400(srv, keys, expect_log):
    t = tok(keys)
    h, p, s = t.split(".")
    expect_log(BAD_REQUEST % "malformed token in cookie", required=True)
    for cookie in ('at="%s"' % t, "at=%s %s.%s" % (h, p, s), "at=%s%%2E%s.%s" % (h, p, s),
                   "x=1; at=%s,junk; y=2" % t):
        assert_raw_invalid_request(raw_get(srv, "/coff/env", {"Cookie": cookie}))


def test_query_cookie_plain_token_accepted(srv, keys):
    """Control for the two tests above."""
    t = tok(keys)
    assert raw_get(srv, "/qoff/env?x=%2E&access_token=" + t)[0] == 200
    assert raw_get(srv, "/coff/env", {"Cookie": "x=\"q u\"; at=" + t})[0] == 200


# ------------------------------------------------------------- 6. TokenFrom duplicates

@pytest.mark.parametrize("line", ["header header", "cookie=at cookie=at", "query=q query=q",
                                  "header cookie=at\n    AuthJWKSTokenFrom header"])
def test_token_from_listed_twice(line):
    r = configtest(conf("    AuthJWKSTokenFrom " + line))
    assert r.returncode != 0, "apache2 -t accepted AuthJWKSTokenFrom " + line
    assert "AuthJWKSTokenFrom" in r.stderr and "listed twice" in r.stderr, r.stderr


def test_token_from_distinct_accepted():
    r = configtest(conf("    AuthJWKSTokenFrom header cookie=at query=at cookie=other"))
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------- 7. user claim hygiene

@pytest.mark.parametrize("sub", ["ali\nce", "ali\rce", "ali\tce", "ali\x01ce", "ali\x7fce",
                                 "alice\x00admin", "x" * 1025, "", True, None, ["alice"]],
                         ids=["lf", "cr", "tab", "ctl01", "del", "nul", "1025", "empty", "bool",
                              "absent", "array"])
def test_bad_user_claim_401(srv, keys, expect_log, sub):
    # a \u0000 is refused earlier, by the strict JSON parser (malformed)
    expect_log(REJECTED % ("malformed" if sub == "alice\x00admin" else
                           "(missing_claim|bad_claim): user claim sub"), required=True)
    claims = H.std_claims()
    if sub is None:
        del claims["sub"]
    else:
        claims["sub"] = sub
    t = H.mint(claims, keys.rsa, "RS256")
    r = get(srv, "/user/env", t)
    assert_invalid_token(r)
    # and again (token cache hit path)
    assert_invalid_token(get(srv, "/user/env", t))


def test_user_claim_limits_and_numbers(srv, keys):
    env = env_of(get(srv, "/user/env", tok(keys, sub="x" * 1024)))
    assert env["REMOTE_USER"] == "x" * 1024
    env = env_of(get(srv, "/user/env", tok(keys, sub="J\u00f6rg \u00e9")))
    assert env["REMOTE_USER"] == "J\u00f6rg \u00e9"
    for n in (12345, 0, -7, 2 ** 53 + 1):
        env = env_of(get(srv, "/user/env", tok(keys, sub=n)))
        assert env["REMOTE_USER"] == str(n), (n, env["REMOTE_USER"])


# ------------------------------------------------------------- 8. URL credentials

@pytest.mark.parametrize("body,url,needle", [
    ("", "https://user:pass@idp.example/jwks", "AuthJWKSURL"),
    ("", "https://user@idp.example/jwks", "AuthJWKSURL"),
    ("", "http://u:p@127.0.0.1:9/jwks", "AuthJWKSURL"),
    ("    AuthJWKSIssuer https://idp.example https://user:pass@idp.example/jwks",
     "http://127.0.0.1:9/jwks", "AuthJWKSIssuer"),
])
def test_url_with_credentials_rejected(body, url, needle):
    r = configtest(conf(body, url=url))
    assert r.returncode != 0, "apache2 -t accepted " + url + body
    assert needle in r.stderr, r.stderr


# ------------------------------------------------------------- 9. AuthJWKSMaxTokenSize

@pytest.mark.parametrize("v,ok", [("100", False), ("255", False), ("0", False), ("256", True),
                                  ("300", True)])
def test_max_token_size_minimum(v, ok):
    r = configtest(conf("    AuthJWKSMaxTokenSize " + v))
    if ok:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode != 0, "apache2 -t accepted AuthJWKSMaxTokenSize " + v
        assert "AuthJWKSMaxTokenSize" in r.stderr, r.stderr


def test_max_token_size_enforced(srv, keys, expect_log):
    expect_log(REJECTED % "too_large", required=True)
    by_len = {}
    for pad in range(0, 120):
        c = {"sub": "a" + "b" * pad, "exp": H.now() + 600}
        t = H.mint(c, keys.ec256, "ES256")
        by_len.setdefault(len(t), t)
    fits = max(n for n in by_len if n <= 300)
    over = min(n for n in by_len if n > 300)
    assert fits >= 297 and over <= 303, sorted(by_len)
    env = env_of(get(srv, "/small/env", by_len[fits]))
    assert env["REMOTE_USER"].startswith("a")
    r = get(srv, "/small/env", by_len[over])
    assert_invalid_token(r)
    assert "too large" in r.headers["WWW-Authenticate"], r.headers["WWW-Authenticate"]
    # a normal RS256 token (well over 300 bytes) too
    assert_invalid_token(get(srv, "/small/env", tok(keys)))


# ------------------------------------------------------------- 10. jwks-status

def _status_json(h):
    r = requests.get(h.url("/jwks-status?json"), timeout=TIMEOUT)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    return {e["url"]: e for e in json.loads(r.text)}


def test_jwks_status_handler(make_httpd, keys, expect_log):
    idp = H.JWKSServer()
    try:
        idp.set(keys.jwks())
        idp.set(keys.jwks([keys.rsa, keys.ec256]), path="/jwks2")
        u1, u2, u3 = idp.url(), idp.url("/jwks2"), idp.url("/missing")
        body = "    AuthJWKSRefreshInterval 5\n    AuthJWKSMinRefreshInterval 1\n" \
               "    AuthJWKSStartupWait 10\n"
        extra = loc("st", body).replace("{jwks}", u1) \
            + loc("st2", body).replace("{jwks}", u2) \
            + loc("st3", body + "    AuthJWKSFetchTimeout 2").replace("{jwks}", u3) \
            + "<Location /jwks-status>\n    SetHandler jwks-status\n    Require all granted\n" \
              "</Location>\n"
        # /missing never loads; the IdP later fails for every URL
        expect_log(r"\[auth_jwks:(warn|error)\].*(no keys from|refresh of) http://127\.0\.0\.1:%d/"
                   % idp.port)
        h = make_httpd(extra)
        assert get(h, "/st/env", tok(keys)).status_code == 200
        assert get(h, "/st2/env", tok(keys)).status_code == 200

        def ready():
            s = _status_json(h)
            return s if (s.get(u1, {}).get("loaded") and s.get(u2, {}).get("loaded")
                         and s.get(u3, {}).get("failures", 0) > 0) else None
        st = H.wait_until(ready, 20, 0.25, "jwks-status to show the loads")
        assert set(st) == {u1, u2, u3}, st
        for e in st.values():
            assert {"url", "loaded", "keys", "generation", "failures", "last_error"} <= set(e), e
        assert st[u1]["loaded"] is True and st[u1]["keys"] == 5, st[u1]
        assert st[u2]["loaded"] is True and st[u2]["keys"] == 2, st[u2]
        for u in (u1, u2):
            assert isinstance(st[u]["generation"], int) and st[u]["generation"] >= 1, st[u]
            assert st[u]["failures"] == 0 and st[u]["last_error"] == "", st[u]
        assert st[u3]["loaded"] is False and st[u3]["keys"] == 0, st[u3]
        assert st[u3]["last_error"], st[u3]

        r = requests.get(h.url("/jwks-status"), timeout=TIMEOUT)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain"), r.headers
        for u in (u1, u2, u3):
            assert u in r.text, r.text
        assert re.search(r"%s\n\s+state:\s+loaded, 5 key" % re.escape(u1), r.text), r.text
        assert re.search(r"%s\n\s+state:\s+NOT LOADED" % re.escape(u3), r.text), r.text

        # methods: only GET (and HEAD); Allow is checked in the test below
        for m in ("POST", "PUT", "DELETE"):
            r = requests.request(m, h.url("/jwks-status"), data=b"x", timeout=TIMEOUT)
            assert r.status_code == 405, (m, r.status_code)
        assert requests.head(h.url("/jwks-status"), timeout=TIMEOUT).status_code == 200

        # the IdP starts failing: failures climb, keys stay loaded and in use
        idp.mode = "500"
        st = H.wait_until(lambda: (lambda s: s if s[u1]["failures"] > 0 and s[u2]["failures"] > 0
                                   else None)(_status_json(h)),
                          30, 0.5, "jwks-status to count refresh failures")
        for u, n in ((u1, 5), (u2, 2)):
            assert st[u]["loaded"] is True and st[u]["keys"] == n, st[u]
            assert st[u]["last_error"], st[u]
        assert get(h, "/st/env", tok(keys)).status_code == 200
        r = requests.get(h.url("/jwks-status"), timeout=TIMEOUT)
        assert re.search(r"%s\n\s+state:\s+loaded, 5 key" % re.escape(u1), r.text), r.text
        assert re.search(r"failures:\s+[1-9]\d* in a row", r.text), r.text
    finally:
        idp.close()


# ------------------------------------------------------------- 11. Require claim without jwks

def test_require_claim_on_basic_auth_location_denies(make_httpd, expect_log):
    h = make_httpd("", start=False)
    pw = os.path.join(h.root, "data", "htpasswd")
    subprocess.run(["htpasswd", "-cbB", pw, "admin", "s3cret"], check=True, capture_output=True,
                   timeout=30)
    os.chmod(pw, 0o644)
    basic = """    AuthType Basic
    AuthName "basic"
    AuthBasicProvider file
    AuthUserFile "%s"
""" % pw
    h.write_conf("""LoadModule auth_basic_module %s/mod_auth_basic.so
LoadModule authn_file_module %s/mod_authn_file.so
<Location /basic>
%s    Require valid-user
</Location>
<Location /bclaim>
%s    Require claim roles:admin sub:admin
</Location>
<Location /bscope>
%s    Require scope admin
</Location>
<Location /bany>
%s    <RequireAny>
        Require claim roles:admin
        Require user nobody
    </RequireAny>
</Location>
""" % (H.MODDIR, H.MODDIR, basic, basic, basic, basic))
    h.start()
    auth = ("admin", "s3cret")
    # control: Basic auth itself works
    r = requests.get(h.url("/basic/env"), auth=auth, timeout=TIMEOUT)
    assert r.status_code == 200 and json.loads(r.text)["REMOTE_USER"] == "admin", r.text[:300]
    assert requests.get(h.url("/basic/env"), timeout=TIMEOUT).status_code == 401

    expect_log(r"\[auth_jwks:error\].*Require claim needs AuthType jwks", required=True)
    expect_log(r"\[auth_jwks:error\].*Require scope needs AuthType jwks", required=True)
    expect_log(AUTHZ_FAILURE, required=True)
    expect_log(r"\[auth_basic:error\].*AH01614: client used wrong authentication scheme",
               required=True)
    for path in ("/bclaim/env", "/bscope/env", "/bany/env", "/bclaim/static.txt"):
        r = requests.get(h.url(path), auth=auth, timeout=TIMEOUT)
        assert r.status_code in (401, 403), (path, r.status_code, r.text[:200])
        assert "REMOTE_USER" not in r.text and "static ok" not in r.text
        # a bearer-looking header changes nothing: it is not a jwks location
        r = requests.get(h.url(path), headers={"Authorization": "Bearer a.b.c"}, timeout=TIMEOUT)
        assert r.status_code == 401, (path, r.status_code)


def test_jwks_status_405_allow_header(make_httpd):
    h = make_httpd("<Location /jwks-status>\n    SetHandler jwks-status\n    Require all granted\n"
                   "</Location>\n")
    r = requests.post(h.url("/jwks-status"), data=b"x", timeout=TIMEOUT)
    assert r.status_code == 405, r.status_code
    assert "GET" in [a.strip() for a in r.headers.get("Allow", "").split(",")], r.headers
