"""AuthJWKSIssuer <iss> discover: keys from the issuer's OIDC Discovery or
RFC 8414 metadata, served over HTTPS by a test server with a throwaway CA."""
import time

import pytest

import harness as H
from conftest import REJECTED, get


@pytest.fixture
def idp(ca, keys):
    s = H.JWKSServer(tls=ca)
    yield s
    s.close()


def conf(issuer, ca, extra=""):
    return """<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSIssuer %s discover
    AuthJWKSCAFile %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    AuthJWKSRefreshInterval 5
    AuthJWKSMinRefreshInterval 1
%s
    Require valid-user
</Location>
""" % (issuer, ca.ca_file, extra)


def issuer_of(s, path=""):
    return "https://127.0.0.1:%d%s" % (s.port, path)


def tok(key, iss, alg="RS256"):
    return H.mint(H.std_claims(iss=iss), key, alg)


def test_oidc_discovery(make_httpd, idp, ca, keys, other_keys, expect_log):
    iss = issuer_of(idp)
    idp.set({"issuer": iss, "jwks_uri": iss + "/keys/v1"}, "/.well-known/openid-configuration")
    idp.set(keys.jwks(), "/keys/v1")
    h = make_httpd(conf(iss, ca))
    assert get(h, "/api/env", tok(keys.rsa, iss)).status_code == 200
    assert idp.count("/keys/v1") >= 1
    # a token naming another issuer is refused, whatever key signed it
    expect_log(REJECTED % "bad_issuer", required=True)
    assert get(h, "/api/env", tok(keys.rsa, "https://evil.test")).status_code == 401
    # the IdP moves its keys: the metadata is read again and the new jwks_uri followed
    idp.set(other_keys.jwks(), "/keys/v2")
    idp.set({"issuer": iss, "jwks_uri": iss + "/keys/v2"}, "/.well-known/openid-configuration")
    t2 = tok(other_keys.ec256, iss, "ES256")
    H.wait_until(lambda: get(h, "/api/env", t2).status_code == 200, 30, 0.5,
                 "the moved jwks_uri to be followed")
    expect_log(REJECTED % "no_matching_key")


def test_rfc8414_metadata_with_path(make_httpd, idp, ca, keys):
    iss = issuer_of(idp, "/tenant1")
    idp.set({"issuer": iss, "jwks_uri": issuer_of(idp, "/t1/jwks")},
            "/.well-known/oauth-authorization-server/tenant1")
    idp.set(keys.jwks(), "/t1/jwks")
    h = make_httpd(conf(iss, ca))
    assert get(h, "/api/env", tok(keys.rsa, iss)).status_code == 200
    assert idp.count("/tenant1/.well-known/openid-configuration") >= 1   # tried first (404)


def test_mix_up_metadata_refused(make_httpd, idp, ca, keys, expect_log):
    iss = issuer_of(idp)
    idp.set({"issuer": "https://attacker.test", "jwks_uri": iss + "/jwks"},
            "/.well-known/openid-configuration")
    idp.set(keys.jwks(), "/jwks")
    expect_log(r"\[auth_jwks:error\].*names another issuer", required=True)
    expect_log(REJECTED % "no_keys_loaded", required=True)
    h = make_httpd(conf(iss, ca, "    AuthJWKSStartupWait 2"))
    r = get(h, "/api/env", tok(keys.rsa, iss))
    assert r.status_code == 503, r.status_code
    assert idp.count("/jwks") == 0            # the JWKS it named is never fetched


def test_http_jwks_uri_refused(make_httpd, idp, ca, keys, expect_log):
    iss = issuer_of(idp)
    idp.set({"issuer": iss, "jwks_uri": "http://127.0.0.1:%d/jwks" % idp.port},
            "/.well-known/openid-configuration")
    expect_log(r"\[auth_jwks:error\].*jwks_uri is not a plain https", required=True)
    expect_log(REJECTED % "no_keys_loaded", required=True)
    h = make_httpd(conf(iss, ca, "    AuthJWKSStartupWait 2"))
    assert get(h, "/api/env", tok(keys.rsa, iss)).status_code == 503


@pytest.mark.parametrize("iss", ["http://idp.test", "https://idp.test/?x=1", "idp.test"])
def test_discover_needs_https_issuer(iss, ca):
    r = H.configtest(conf(iss, ca))
    assert r.returncode != 0
    assert "AuthJWKSIssuer" in r.stderr and "discover" in r.stderr, r.stderr
