"""Require claim / Require scope, and what the backends see: CGI env,
proxied request headers, spoofing protection, token forwarding."""
import json

import pytest

import harness as H
from conftest import (AUTHZ_FAILURE, REJECTED, assert_insufficient, env_of, get, module_httpd)

ISS = "https://issuer.test"


def loc(name, body="", require="Require valid-user"):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
%s
    %s
</Location>
""" % (name, ISS, body, require)


LOCS = [
    ("admin", "", "Require claim roles:admin"),
    ("scope", "", "Require scope read write"),
    ("nested", "", "Require claim realm_access.roles:admin"),
    ("regex", "", r"Require claim email~@example\.com$"),
    ("num", "", "Require claim level:3"),
    ("bool", "", "Require claim verified:true"),
    ("alts", "", "Require claim role:admin role:ops"),
    ("prefixm", "", "Require claim role:adm"),
    ("allof", "", "<RequireAll>\n Require claim roles:admin\n Require scope read\n</RequireAll>"),
    ("envp", "    AuthJWKSPassClaims env", "Require valid-user"),
    ("both", "    AuthJWKSPassClaims both", "Require valid-user"),
    ("hdrs", "    AuthJWKSPassClaims headers\n    AuthJWKSHeaderPrefix X-Token-", "Require valid-user"),
    ("hdrdef", "    AuthJWKSPassClaims headers", "Require valid-user"),
    ("none", "    AuthJWKSPassClaims none", "Require valid-user"),
    ("prefix", "    AuthJWKSClaimPrefix TOKEN_APP_", "Require valid-user"),
    ("email", "    AuthJWKSUserClaim email", "Require valid-user"),
    ("nofwd", "    AuthJWKSForwardToken Off\n    AuthJWKSPassClaims both", "Require valid-user"),
    ("fwd", "    AuthJWKSForwardToken On", "Require valid-user"),
]


@pytest.fixture(scope="module")
def srv(jwks_server, echo_backend):
    extra = "".join(loc(*l) for l in LOCS).replace("{jwks}", jwks_server.url())
    h = module_httpd(extra, allowed=[REJECTED % ".*", AUTHZ_FAILURE],
                     raw_backend_port=echo_backend.port)
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def tok(keys, alg="RS256", **claims):
    return H.mint(H.std_claims(**claims), keys.for_alg(alg), alg)


def raw_headers(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    return json.loads(resp.text)["headers"]


def hget(pairs, name):
    return [v for k, v in pairs if k.lower() == name.lower()]


# ------------------------------------------------------------- Require claim / scope

def test_require_claim_array_element(srv, keys):
    assert env_of(get(srv, "/admin/env", tok(keys, roles=["user", "admin"])))["REMOTE_USER"] == "alice"
    assert get(srv, "/admin/env", tok(keys, roles="admin")).status_code == 200


def test_require_claim_unmet_403(srv, keys, expect_log):
    expect_log(AUTHZ_FAILURE, required=True)
    assert_insufficient(get(srv, "/admin/env", tok(keys, roles=["user"])))
    assert_insufficient(get(srv, "/admin/env", tok(keys)))  # claim absent


def test_require_claim_no_token_is_401(srv):
    r = get(srv, "/admin/env")
    assert r.status_code == 401
    assert "error" not in r.headers.get("WWW-Authenticate", "")


def test_require_scope(srv, keys, expect_log):
    assert get(srv, "/scope/env", tok(keys, scope="openid read")).status_code == 200
    assert get(srv, "/scope/env", tok(keys, scope="write")).status_code == 200
    assert get(srv, "/scope/env", tok(keys, scp=["x", "read"])).status_code == 200
    expect_log(AUTHZ_FAILURE, required=True)
    assert_insufficient(get(srv, "/scope/env", tok(keys, scope="openid readonly")), scope="read write")
    assert_insufficient(get(srv, "/scope/env", tok(keys)), scope="read write")


def test_require_nested(srv, keys, expect_log):
    assert get(srv, "/nested/env", tok(keys, realm_access={"roles": ["x", "admin"]})).status_code == 200
    expect_log(AUTHZ_FAILURE, required=True)
    assert_insufficient(get(srv, "/nested/env", tok(keys, realm_access={"roles": ["x"]})))
    assert_insufficient(get(srv, "/nested/env", tok(keys, roles=["admin"])))


def test_require_regex(srv, keys, expect_log):
    assert get(srv, "/regex/env", tok(keys, email="bob@example.com")).status_code == 200
    expect_log(AUTHZ_FAILURE, required=True)
    assert_insufficient(get(srv, "/regex/env", tok(keys, email="bob@example.com.evil")))
    assert_insufficient(get(srv, "/regex/env", tok(keys, email="bob@exampleXcom")))


def test_require_number_and_bool(srv, keys, expect_log):
    assert get(srv, "/num/env", tok(keys, level=3)).status_code == 200
    assert get(srv, "/bool/env", tok(keys, verified=True)).status_code == 200
    expect_log(AUTHZ_FAILURE, required=True)
    assert_insufficient(get(srv, "/num/env", tok(keys, level=4)))
    assert_insufficient(get(srv, "/num/env", tok(keys, level=33)))
    assert_insufficient(get(srv, "/bool/env", tok(keys, verified=False)))


def test_require_alternatives_any(srv, keys, expect_log):
    assert get(srv, "/alts/env", tok(keys, role="admin")).status_code == 200
    assert get(srv, "/alts/env", tok(keys, role="ops")).status_code == 200
    expect_log(AUTHZ_FAILURE, required=True)
    assert_insufficient(get(srv, "/alts/env", tok(keys, role="dev")))


def test_require_prefix_does_not_match(srv, keys, expect_log):
    expect_log(AUTHZ_FAILURE, required=True)
    assert_insufficient(get(srv, "/prefixm/env", tok(keys, role="admin")))
    assert get(srv, "/prefixm/env", tok(keys, role="adm")).status_code == 200


def test_require_all(srv, keys, expect_log):
    assert get(srv, "/allof/env", tok(keys, roles=["admin"], scope="read")).status_code == 200
    expect_log(AUTHZ_FAILURE, required=True)
    r = get(srv, "/allof/env", tok(keys, roles=["admin"]))
    assert r.status_code == 403


def test_invalid_token_on_authz_location_is_401(srv, keys, expect_log):
    expect_log(REJECTED % "expired", required=True)
    r = get(srv, "/admin/env", tok(keys, roles=["admin"], exp=H.now() - 3600))
    assert r.status_code == 401


# ------------------------------------------------------------- claims to CGI

def test_env_default_and_no_headers(srv, keys):
    t = tok(keys, email="a@example.com")
    env = env_of(get(srv, "/envp/env", t))
    assert env["JWT_CLAIM_EMAIL"] == "a@example.com"
    hd = raw_headers(get(srv, "/envp/raw", t))
    assert not [k for k, _ in hd if k.lower().startswith("x-jwt-claim")], hd


def test_env_name_mangling(srv, keys):
    """Only names of a-z, 0-9 and _ are exported under the prefix (they map
    one to one); the others are in JWT_CLAIMS."""
    t = tok(keys, **{"https://ex.com/tenant": "t1", "a-b.c": "v", "tenant_id": "t2"})
    env = env_of(get(srv, "/envp/env", t))
    assert "JWT_CLAIM_HTTPS___EX_COM_TENANT" not in env
    assert "JWT_CLAIM_A_B_C" not in env
    assert env["JWT_CLAIM_TENANT_ID"] == "t2"
    assert json.loads(env["JWT_CLAIMS"])["https://ex.com/tenant"] == "t1"


def test_pass_claims_none(srv, keys):
    t = tok(keys, email="a@example.com")
    env = env_of(get(srv, "/none/env", t))
    assert env["REMOTE_USER"] == "alice"
    assert not [k for k in env if k.startswith("JWT_")], sorted(env)
    hd = raw_headers(get(srv, "/none/raw", t))
    assert not [k for k, _ in hd if k.lower().startswith("x-jwt-claim")], hd


def test_claim_prefix(srv, keys):
    env = env_of(get(srv, "/prefix/env", tok(keys, email="a@example.com")))
    assert env["TOKEN_APP_EMAIL"] == "a@example.com"
    assert env["TOKEN_APP_SUB"] == "alice"
    assert "JWT_CLAIM_SUB" not in env


def test_user_claim(srv, keys):
    env = env_of(get(srv, "/email/env", tok(keys, email="carol@example.com")))
    assert env["REMOTE_USER"] == "carol@example.com"


def test_user_claim_missing_rejected(srv, keys, expect_log):
    expect_log(REJECTED % "(missing_claim|bad_claim)", required=True)
    r = get(srv, "/email/env", tok(keys))
    assert r.status_code == 401


# ------------------------------------------------------------- claims to proxied apps

def test_headers_to_backend_vhost(srv, keys):
    claims = H.std_claims(email="a@example.com", roles=["r1", "r2"])
    t = H.mint(claims, keys.rsa, "RS256")
    r = get(srv, "/hdrdef/app", t)
    assert r.status_code == 200, r.text[:300]
    h = json.loads(r.text)["headers"]
    assert h["X-Jwt-Claim-Sub"] == "alice"
    assert h["X-Jwt-Claim-Email"] == "a@example.com"
    assert h["X-Jwt-Claim-Roles"] == "r1,r2"
    assert json.loads(H.b64u_decode(h["X-Jwt-Claims"])) == claims
    assert "=" not in h["X-Jwt-Claims"]


def test_header_prefix_and_exact_names(srv, keys):
    claims = H.std_claims(email="a@example.com", **{"https://ex.com/t": "t1"})
    t = H.mint(claims, keys.rsa, "RS256")
    hd = raw_headers(get(srv, "/hdrs/raw", t))
    assert hget(hd, "X-Token-sub") == ["alice"]
    assert hget(hd, "X-Token-email") == ["a@example.com"]
    assert not [k for k, _ in hd if k.lower().startswith("x-token-https")], hd
    xc = hget(hd, "X-JWT-Claims")
    assert len(xc) == 1 and json.loads(H.b64u_decode(xc[0])) == claims


def test_header_value_percent_encoding(srv, keys):
    t = tok(keys, name="Jos\u00e9 100%", bad="a\r\nX-Evil: 1", tab="a\tb")
    hd = raw_headers(get(srv, "/hdrs/raw", t))
    assert hget(hd, "X-Token-name") == ["Jos%C3%A9 100%25"]
    assert hget(hd, "X-Token-bad") == ['"a\\r\\nX-Evil: 1"']
    assert hget(hd, "X-Token-tab") == ['"a\\tb"']
    assert not hget(hd, "X-Evil"), hd
    for k, v in hd:
        assert all(0x20 <= ord(ch) <= 0x7E for ch in v), (k, v)


def test_crlf_in_claim_name_no_injection(srv, keys):
    t = tok(keys, **{"x\r\nX-Evil": "1"})
    r = get(srv, "/hdrs/raw", t)
    assert r.status_code == 200
    hd = raw_headers(r)
    assert not hget(hd, "X-Evil"), hd


def test_spoofed_headers_removed_claims_off(srv, keys):
    spoof = {"X-JWT-Claim-sub": "admin", "X-JWT-Claim_sub": "x", "x-jwt-claim-ROLES": "admin",
             "X-JWT-Claims": H.b64u('{"sub":"admin"}')}
    hd = raw_headers(get(srv, "/envp/raw", tok(keys), headers=spoof))
    bad = [(k, v) for k, v in hd if k.lower().replace("_", "-").startswith("x-jwt-claim")]
    assert not bad, bad


def test_spoofed_headers_replaced_claims_on(srv, keys):
    claims = H.std_claims()
    t = H.mint(claims, keys.rsa, "RS256")
    spoof = {"X-Token-sub": "admin", "X-Token_sub": "x", "x-token-SUB": "y",
             "X-JWT-Claims": H.b64u('{"sub":"admin"}')}
    hd = raw_headers(get(srv, "/hdrs/raw", t, headers=spoof))
    assert hget(hd, "X-Token-sub") == ["alice"], hd
    assert not [k for k, _ in hd if k.lower() == "x-token_sub"], hd
    xc = hget(hd, "X-JWT-Claims")
    assert len(xc) == 1 and json.loads(H.b64u_decode(xc[0])) == claims


def test_spoofed_default_prefix_vhost(srv, keys):
    spoof = {"X-JWT-Claim-sub": "admin", "X-JWT-Claim-Role": "root", "X-JWT-Claims": "e30"}
    r = get(srv, "/hdrdef/app", tok(keys), headers=spoof)
    h = json.loads(r.text)["headers"]
    assert h["X-Jwt-Claim-Sub"] == "alice"
    assert "X-Jwt-Claim-Role" not in h
    assert h["X-Jwt-Claims"] != "e30"


def test_spoofed_headers_not_in_cgi_env(srv, keys):
    spoof = {"X-JWT-Claim-sub": "admin", "X-JWT-Claims": "e30", "X-Token-x": "1"}
    env = env_of(get(srv, "/both/env", tok(keys), headers=spoof))
    # PassClaims both: the module's own headers may reach the CGI, never the client's
    assert env["JWT_CLAIM_SUB"] == "alice"
    assert env.get("HTTP_X_JWT_CLAIM_SUB", "alice") == "alice", env.get("HTTP_X_JWT_CLAIM_SUB")
    assert env.get("HTTP_X_JWT_CLAIMS", "") != "e30"
    env = env_of(get(srv, "/envp/env", tok(keys), headers=spoof))
    assert not [k for k in env if k.startswith("HTTP_X_JWT_CLAIM")], sorted(env)


def test_spoofed_headers_removed_even_without_token_passing_authz(srv, keys):
    """Spoofed headers are stripped on a protected location even when the
    backend is reached (here via valid token, PassClaims none)."""
    hd = raw_headers(get(srv, "/none/raw", tok(keys), headers={"X-JWT-Claim-sub": "admin"}))
    assert not hget(hd, "X-JWT-Claim-sub"), hd


def test_both_env_and_headers(srv, keys):
    t = tok(keys, email="a@example.com")
    assert env_of(get(srv, "/both/env", t))["JWT_CLAIM_EMAIL"] == "a@example.com"
    assert hget(raw_headers(get(srv, "/both/raw", t)), "X-JWT-Claim-email") == ["a@example.com"]


def test_forward_token(srv, keys):
    t = tok(keys)
    assert hget(raw_headers(get(srv, "/fwd/raw", t)), "Authorization") == ["Bearer " + t]
    hd = raw_headers(get(srv, "/nofwd/raw", t))
    assert not hget(hd, "Authorization"), hd
    assert hget(hd, "X-JWT-Claim-sub") == ["alice"]
    h = json.loads(get(srv, "/nofwd/app", t).text)["headers"]
    assert "Authorization" not in h
