"""OAuth 2.0 protected-resource metadata (RFC 9728): the well-known
document, its path, and resource_metadata in every challenge."""
import pytest
import requests

import harness as H
from conftest import TIMEOUT, get, module_httpd

ISS = "https://issuer.test"
TOKEN_REJECTED = r"\[auth_jwks:error\].*token rejected: %s"


def loc(name, body):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
%s
    Require valid-user
</Location>
""" % (name, ISS, body)


@pytest.fixture(scope="module")
def srv(jwks_server):
    h = H.Httpd("", name="prm")
    rs = "http://127.0.0.1:%d" % h.port
    extra = (loc("api", "    AuthJWKSDPoP allow\n    AuthJWKSAlgorithms ES256 RS256\n"
                 "    AuthJWKSResourceMetadata %s/api %s https://as2.test scopes=read,write"
                 % (rs, ISS))
             + loc("api/sub", "")
             + loc("bearer", "    AuthJWKSTokenFrom header query=access_token\n"
                   "    AuthJWKSResourceMetadata https://rs.example.com/ %s" % ISS)
             + loc("dpr", "    AuthJWKSDPoP require\n"
                   "    AuthJWKSResourceMetadata https://rs.example.com/v1/dpr %s" % ISS)
             + loc("none", "")).replace("{jwks}", jwks_server.url())
    h.write_conf(extra)
    h.covered = []
    h.allowed = [TOKEN_REJECTED % ".*", r"AH0163\d"]
    h.start()
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


WK = "/.well-known/oauth-protected-resource"


def challenges(resp):
    out = []
    for v in resp.raw._original_response.msg.get_all("WWW-Authenticate") or []:
        scheme, _, rest = v.strip().partition(" ")
        out.append((scheme, dict(H.WWW_AUTH_PARAM.findall(rest))))
    return out


def test_document_with_path(srv):
    r = requests.get(srv.url(WK + "/api"), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    d = r.json()
    assert d == {
        "resource": "http://127.0.0.1:%d/api" % srv.port,
        "authorization_servers": [ISS, "https://as2.test"],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["read", "write"],
        "dpop_signing_alg_values_supported": ["RS256", "ES256"],
    }, d


def test_document_root_resource(srv):
    """A resource of just scheme://host/ has no path suffix (RFC 9728 §3.1)."""
    d = requests.get(srv.url(WK), timeout=TIMEOUT).json()
    assert d["resource"] == "https://rs.example.com/"
    assert d["bearer_methods_supported"] == ["header", "query"]
    assert "scopes_supported" not in d and "dpop_signing_alg_values_supported" not in d


def test_document_dpop_required(srv):
    d = requests.get(srv.url(WK + "/v1/dpr"), timeout=TIMEOUT).json()
    assert d["resource"] == "https://rs.example.com/v1/dpr"
    assert d["dpop_bound_access_tokens_required"] is True
    assert len(d["dpop_signing_alg_values_supported"]) == len(H.ALL_ALGS)


def test_paths_not_registered(srv):
    for p in (WK + "/none", WK + "/api/", WK + "/api/x", WK + "x", WK + "/API",
              "/.well-known/oauth-protected-resourc"):
        assert requests.get(srv.url(p), timeout=TIMEOUT).status_code == 404, p


def test_methods(srv):
    r = requests.head(srv.url(WK + "/api"), timeout=TIMEOUT)
    assert r.status_code == 200 and r.text == ""
    r = requests.post(srv.url(WK + "/api"), data="x", timeout=TIMEOUT)
    assert r.status_code == 405
    assert "GET" in r.headers.get("Allow", "")


def test_challenge_attribute(srv, keys, expect_log):
    expect_log(TOKEN_REJECTED % "expired", required=True)
    want = "http://127.0.0.1:%d%s/api" % (srv.port, WK)
    for path in ("/api/env", "/api/sub/env"):          # a sub-location inherits it
        ch = challenges(get(srv, path))
        assert [s for s, _ in ch] == ["Bearer", "DPoP"], ch
        assert all(p.get("resource_metadata") == want for _, p in ch), ch
    t = H.mint(H.std_claims(exp=H.now() - 100), keys.rsa, "RS256")
    ch = dict(challenges(get(srv, "/api/env", t)))
    assert ch["Bearer"]["error"] == "invalid_token"
    assert ch["Bearer"]["resource_metadata"] == want
    ch = dict(challenges(get(srv, "/bearer/env")))
    assert list(ch) == ["Bearer"]
    assert ch["Bearer"]["resource_metadata"] == "https://rs.example.com%s" % WK
    ch = dict(challenges(get(srv, "/dpr/env")))
    assert list(ch) == ["DPoP"]
    assert ch["DPoP"]["resource_metadata"] == "https://rs.example.com%s/v1/dpr" % WK
    ch = dict(challenges(get(srv, "/none/env")))
    assert "resource_metadata" not in ch["Bearer"]


def test_valid_token_still_works(srv, keys):
    t = H.mint(H.std_claims(), keys.rsa, "RS256")
    assert get(srv, "/api/env", t).status_code == 200
    assert get(srv, "/bearer/env", t).status_code == 200


def test_protected_parent(make_httpd, jwks_server, keys):
    """Under a protected <Location />, the document is public only when a
    Location for the well-known path says so (documented)."""
    body = loc("", "    AuthJWKSResourceMetadata https://rs.example.com/ %s" % ISS)
    body = body.replace("<Location />", "<Location />", 1)
    public = "<Location %s>\n    Require all granted\n</Location>\n" % WK
    h = make_httpd((body + public).replace("{jwks}", jwks_server.url()))
    assert requests.get(h.url(WK), timeout=TIMEOUT).json()["resource"] == "https://rs.example.com/"
    assert get(h, "/x/env").status_code == 401


@pytest.mark.parametrize("line,msg", [
    ("AuthJWKSResourceMetadata https://rs.test/", "at least one"),
    ("AuthJWKSResourceMetadata https://rs.test/ scopes=a", "at least one"),
    ("AuthJWKSResourceMetadata rs.test https://as.test", "absolute http(s) URL"),
    ("AuthJWKSResourceMetadata https://rs.test/a?q=1 https://as.test", "query or fragment"),
    ("AuthJWKSResourceMetadata https://rs.test/a#f https://as.test", "query or fragment"),
    ("AuthJWKSResourceMetadata https://rs.test/ as.test", "authorization server"),
    ("AuthJWKSResourceMetadata https://rs.test/ https://as.test scopes=", "lists no scope"),
])
def test_bad_config(line, msg):
    r = H.configtest("<Location /x>\n    AuthType jwks\n    %s\n</Location>\n" % line)
    assert r.returncode != 0
    assert msg in r.stderr + r.stdout, r.stderr


def test_duplicate_path():
    r = H.configtest("<Location /x>\n    AuthJWKSResourceMetadata https://a.test/r https://as.test\n"
                     "</Location>\n<Location /y>\n"
                     "    AuthJWKSResourceMetadata https://b.test/r https://as.test\n</Location>\n")
    assert r.returncode != 0
    assert "already publishes" in r.stderr + r.stdout


def test_virtual_host_metadata_wins_over_main_server(make_httpd, jwks_server):
    """The main server and a virtual host publish the same path: each answers
    with its own document, although the main server's was written first."""
    port = H.free_port()
    main = (loc("m", "    AuthJWKSResourceMetadata https://main.example/r %s" % ISS)
            + loc("m2", "    AuthJWKSResourceMetadata https://main.example/only %s" % ISS))
    vhost = ("Listen 127.0.0.1:%d\n<VirtualHost 127.0.0.1:%d>\n    ServerName vh.test\n%s"
             "</VirtualHost>\n" % (port, port, loc("v", "    AuthJWKSResourceMetadata "
                                                      "https://vhost.example/r %s" % ISS)))
    h = make_httpd((main + vhost).replace("{jwks}", jwks_server.url()))
    d = requests.get(h.url(WK + "/r"), timeout=TIMEOUT).json()
    assert d["resource"] == "https://main.example/r", d
    vh = "http://127.0.0.1:%d%s" % (port, WK)
    d = requests.get(vh + "/r", timeout=TIMEOUT).json()
    assert d["resource"] == "https://vhost.example/r", d
    # a path only the main server publishes is served in the virtual host too
    d = requests.get(vh + "/only", timeout=TIMEOUT).json()
    assert d["resource"] == "https://main.example/only", d
