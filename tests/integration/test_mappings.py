"""AuthJWKSClaimHeader / AuthJWKSClaimEnv: one claim to a fixed header or
variable name, rendered and encoded like the prefixed export, and the mapped
header names stripped from clients like the prefixed ones."""
import http.client
import json

import pytest

import harness as H
from conftest import REJECTED, TIMEOUT, env_of, get, module_httpd

ISS = "https://issuer.test"

LOC = """<Location /{name}>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    AuthJWKSPassClaims {passclaims}
    AuthJWKSClaimHeader email X-User-Email
    AuthJWKSClaimHeader [https://ex.com/groups] X-Groups
    AuthJWKSClaimHeader realm_access.roles X-Roles
    AuthJWKSClaimEnv email REMOTE_EMAIL
    AuthJWKSClaimEnv [https://ex.com/groups] APP_GROUPS
    Require valid-user
</Location>
""" % ISS


@pytest.fixture(scope="module")
def srv(jwks_server, echo_backend):
    extra = (LOC.format(name="map", jwks=jwks_server.url(), passclaims="none")
             + LOC.format(name="mapboth", jwks=jwks_server.url(), passclaims="both"))
    h = module_httpd(extra, allowed=[REJECTED % ".*"], raw_backend_port=echo_backend.port)
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def tok(keys, **claims):
    return H.mint(H.std_claims(**claims), keys.rsa, "RS256")


def hget(pairs, name):
    return [v for k, v in pairs if k.lower() == name.lower()]


def raw_headers(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    return json.loads(resp.text)["headers"]


CLAIMS = {"email": "alice@example.com", "https://ex.com/groups": ["eng", "ops"],
          "realm_access": {"roles": ["user"]}, "realm_access.roles": "admin"}


def test_mapped_headers_reach_the_backend(srv, keys):
    hd = raw_headers(get(srv, "/map/raw", tok(keys, **CLAIMS)))
    assert hget(hd, "X-User-Email") == ["alice@example.com"], hd
    assert hget(hd, "X-Groups") == ["eng,ops"], hd
    # a dotted path walks nested objects only: never the literal "realm_access.roles"
    assert hget(hd, "X-Roles") == ["user"], hd
    # PassClaims none: nothing but the mappings
    assert not [k for k, _ in hd if k.lower().startswith("x-jwt-claim")], hd


def test_mapped_env_reaches_cgi(srv, keys):
    env = env_of(get(srv, "/map/env", tok(keys, **CLAIMS)))
    assert env["REMOTE_EMAIL"] == "alice@example.com"
    assert env["APP_GROUPS"] == "eng,ops"
    assert "JWT_CLAIM_EMAIL" not in env
    env = env_of(get(srv, "/mapboth/env", tok(keys, **CLAIMS)))
    assert env["REMOTE_EMAIL"] == "alice@example.com"
    assert env["JWT_CLAIM_EMAIL"] == "alice@example.com"


def test_mapped_header_values_encoded(srv, keys):
    # a control character makes the value a JSON string (escaped); the rest
    # of the header's text is percent-encoded as ever
    hd = raw_headers(get(srv, "/map/raw", tok(keys, email="a\r\nX-Evil: 1 Jos\u00e9 100%")))
    assert hget(hd, "X-User-Email") == ['"a\\r\\nX-Evil: 1 Jos%C3%A9 100%25"'], hd
    assert not hget(hd, "X-Evil"), hd
    hd = raw_headers(get(srv, "/map/raw", tok(keys, email="Jos\u00e9 100%")))
    assert hget(hd, "X-User-Email") == ["Jos%C3%A9 100%25"], hd


def test_spoofed_mapped_headers_removed(srv, keys):
    spoof = {"X-User-Email": "boss@example.com", "X-Groups": "admins", "X_Roles": "admin"}
    # the token has no email, groups or roles: the backend must see none of the client's
    hd = raw_headers(get(srv, "/map/raw", tok(keys), headers=spoof))
    for name in ("X-User-Email", "X-Groups", "X-Roles", "X_Roles"):
        assert not hget(hd, name), (name, hd)
    env = env_of(get(srv, "/map/env", tok(keys), headers=spoof))
    assert "HTTP_X_USER_EMAIL" not in env and "REMOTE_EMAIL" not in env, sorted(env)


def test_connection_cannot_drop_mapped_header(srv, keys):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=TIMEOUT)
    try:
        c.putrequest("GET", "/map/raw", skip_accept_encoding=True)
        c.putheader("Authorization", "Bearer " + tok(keys, **CLAIMS))
        c.putheader("Connection", "keep-alive, X-User-Email, x-groups")
        c.endheaders()
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    assert r.status == 200, body[:300]
    hd = json.loads(body)["headers"]
    assert hget(hd, "X-User-Email") == ["alice@example.com"], hd
    assert hget(hd, "X-Groups") == ["eng,ops"], hd


def conf(body):
    return """<Location /api>
    AuthType jwks
    AuthJWKSURL http://127.0.0.1:9/jwks
    AuthJWKSIssuer *
    AuthJWKSAudience *
%s
    Require valid-user
</Location>
""" % body


@pytest.mark.parametrize("line", [
    "AuthJWKSClaimHeader email Host",
    "AuthJWKSClaimHeader email Authorization",
    "AuthJWKSClaimHeader email x-forwarded-for",
    "AuthJWKSClaimHeader email X-JWT-Claims",
    "AuthJWKSClaimHeader email Bad_Name",
    "AuthJWKSClaimHeader a..b X-A",
    "AuthJWKSClaimHeader [x X-A",
    "AuthJWKSClaimEnv email LD_PRELOAD",
    "AuthJWKSClaimEnv email PATH",
    "AuthJWKSClaimEnv email HTTP_X",
    "AuthJWKSClaimEnv email REMOTE_USER",
    "AuthJWKSClaimEnv email JWT_CLAIM_X",
    "AuthJWKSClaimEnv email 1X",
])
def test_bad_mappings_refused_at_configtest(line):
    r = H.configtest(conf("    " + line))
    assert r.returncode != 0, line
    assert line.split()[0] in r.stderr, r.stderr


def test_good_mappings_accepted():
    r = H.configtest(conf("    AuthJWKSClaimHeader email X-Forwarded-Email\n"
                          "    AuthJWKSClaimHeader [https://x/y].z X-Z\n"
                          "    AuthJWKSClaimEnv email REMOTE_EMAIL"))
    assert r.returncode == 0, r.stderr
