"""Token verification against one httpd with many differently configured
locations: answers, algorithms, every rejection reason, token sources."""
import http.client
import json
import re
import time

import pytest
import requests

import harness as H
from conftest import (REJECTED, TIMEOUT, assert_invalid_request, assert_invalid_token, bearer, env_of,
                      get, module_httpd)

ISS = "https://issuer.test"
BADREQ_LOG = (r"\[auth_jwks:(error|warn)\].*(bad bearer request|invalid_request|malformed|"
              r"bad request|twice|multiple|more than once|empty)")


def loc(name, body, require="Require valid-user"):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSMinRefreshInterval 1
    AuthJWKSStartupWait 10
%s
    %s
</Location>
""" % (name, ISS, body, require)


LOCATIONS = [
    ("api", ""),
    ("typ", "    AuthJWKSTokenType at+jwt"),
    ("reqclaim", "    AuthJWKSRequireClaim tenant"),
    ("maxage", "    AuthJWKSMaxTokenAge 60"),
    ("onlyrs", "    AuthJWKSAlgorithms RS256"),
    ("cookie", "    AuthJWKSTokenFrom cookie=at"),
    ("query", "    AuthJWKSTokenFrom query=access_token"),
    ("multi", "    AuthJWKSTokenFrom header query=access_token cookie=at"),
    ("leeway0", "    AuthJWKSLeeway 0"),
    ("small", "    AuthJWKSMaxTokenSize 4096"),
]


@pytest.fixture(scope="module")
def srv(jwks_server):
    extra = "".join(loc(n, b) for n, b in LOCATIONS).replace("{jwks}", jwks_server.url())
    h = module_httpd(extra, allowed=[REJECTED % ".*"])
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def ok(keys, alg="RS256", **over):
    return H.mint(H.std_claims(**over), keys.for_alg(alg), alg)


# ------------------------------------------------------------- basic answers

def test_no_token_401_plain_challenge(srv):
    r = get(srv, "/api/env")
    assert r.status_code == 401
    wa = r.headers.get("WWW-Authenticate")
    assert wa is not None
    b = bearer(r)
    assert b == {"realm": "api"}, wa
    assert "error" not in wa


@pytest.mark.parametrize("alg", H.ALL_ALGS)
def test_valid_token_each_alg(srv, keys, alg):
    claims = H.std_claims(email="alice@example.com", roles=["a", "b"], n=3, flag=True,
                          obj={"x": 1})
    key = keys.for_alg(alg)
    tok = H.mint(claims, key, alg)
    env = env_of(get(srv, "/api/env", tok))
    assert env["REMOTE_USER"] == "alice"
    assert env["JWT_ALG"] == alg
    assert env["JWT_KID"] == key.get("kid")
    assert env["JWT_CLAIM_SUB"] == "alice"
    assert env["JWT_CLAIM_ISS"] == ISS
    assert env["JWT_CLAIM_EMAIL"] == "alice@example.com"
    assert env["JWT_CLAIM_ROLES"] == "a,b"
    assert env["JWT_CLAIM_N"] == "3"
    assert env["JWT_CLAIM_FLAG"] == "true"
    assert json.loads(env["JWT_CLAIM_OBJ"]) == {"x": 1}
    assert " " not in env["JWT_CLAIM_OBJ"]
    assert json.loads(env["JWT_CLAIMS"]) == claims


def test_cgi_auth_type(srv, keys):
    """AUTH_TYPE reaches CGI only when the module sets r->ap_auth_type."""
    env = env_of(get(srv, "/api/env", ok(keys)))
    assert env.get("AUTH_TYPE") == "jwks", "AUTH_TYPE missing/wrong in CGI env: %r" % env.get("AUTH_TYPE")


def test_valid_token_cached_second_request(srv, keys):
    tok = ok(keys)
    for _ in range(3):
        assert env_of(get(srv, "/api/env", tok))["REMOTE_USER"] == "alice"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_cache_hit_exports_what_the_miss_did(srv, keys, alg):
    """The second request is a token-cache hit: JWT_CLAIMS comes from the
    entry's stored JSON and JWT_ALG / JWT_KID from its fields, so every
    exported variable must equal the first (verified) request's."""
    claims = H.std_claims(email="bob@example.com", roles=["r1", "r2"], n=7, f=1.5,
                          obj={"k": [1, "x"]}, uni="caf\u00e9 \u2603")
    key = keys.for_alg(alg)
    tok = H.mint(claims, key, alg)
    exported = lambda env: {k: v for k, v in env.items() if k.startswith("JWT_")}
    first = exported(env_of(get(srv, "/api/env", tok)))
    second = exported(env_of(get(srv, "/api/env", tok)))
    assert first and first == second
    assert json.loads(second["JWT_CLAIMS"]) == claims
    assert second["JWT_ALG"] == alg and second["JWT_KID"] == key.get("kid")
    assert second["JWT_CLAIM_UNI"] == "caf\u00e9 \u2603"


def test_scheme_case_insensitive(srv, keys):
    tok = ok(keys)
    assert get(srv, "/api/env", tok, scheme="bearer").status_code == 200
    assert get(srv, "/api/env", tok, scheme="BEARER").status_code == 200


def test_token_without_kid_accepted_if_single_candidate(srv, keys):
    # EdDSA: exactly one OKP key in the set; kid-less tokens are common.
    tok = H.mint(H.std_claims(), keys.ed, "EdDSA", kid=None)
    r = get(srv, "/api/env", tok)
    assert r.status_code in (200, 401)  # policy choice; must not be 5xx
    if r.status_code == 401:
        assert_invalid_token(r)


# ------------------------------------------------------------- rejections

def rejected(srv, expect_log, path, tok, reason, **kw):
    expect_log(REJECTED % reason, required=True)
    r = get(srv, path, tok, **kw)
    assert_invalid_token(r)
    return r


def test_expired(srv, keys, expect_log):
    rejected(srv, expect_log, "/api/env", ok(keys, exp=H.now() - 3600, iat=H.now() - 7200), "expired")


def test_expired_within_leeway_accepted(srv, keys):
    assert get(srv, "/api/env", ok(keys, exp=H.now() - 20)).status_code == 200


def test_nbf_in_future(srv, keys, expect_log):
    rejected(srv, expect_log, "/api/env", ok(keys, nbf=H.now() + 3600), "not_yet_valid")


def test_iat_in_future(srv, keys, expect_log):
    rejected(srv, expect_log, "/api/env", ok(keys, iat=H.now() + 3600), "issued_in_future")


def test_bad_signature_tampered_payload(srv, keys, expect_log):
    tok = H.tamper_payload(ok(keys), sub="mallory")
    rejected(srv, expect_log, "/api/env", tok, "bad_signature")


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "PS256"])
def test_bad_signature_other_algs(srv, keys, expect_log, alg):
    tok = H.tamper_payload(ok(keys, alg), sub="mallory")
    rejected(srv, expect_log, "/api/env", tok, "bad_signature")


def test_signed_by_unpublished_key_same_kid(srv, keys, other_keys, expect_log):
    tok = H.mint(H.std_claims(), other_keys.rsa, "RS256", kid=keys.rsa.get("kid"))
    rejected(srv, expect_log, "/api/env", tok, "bad_signature")


def test_wrong_issuer(srv, keys, expect_log):
    rejected(srv, expect_log, "/api/env", ok(keys, iss="https://evil.test"), "bad_issuer")


def test_missing_issuer(srv, keys, expect_log):
    rejected(srv, expect_log, "/api/env", ok(keys, iss=None), "bad_issuer")


def test_wrong_audience(srv, keys, expect_log):
    rejected(srv, expect_log, "/api/env", ok(keys, aud="other"), "bad_audience")


def test_audience_array_containing_ours_ok(srv, keys):
    assert get(srv, "/api/env", ok(keys, aud=["x", "api"])).status_code == 200


def test_unknown_kid(srv, keys, other_keys, expect_log):
    tok = H.mint(H.std_claims(), other_keys.rsa, "RS256")
    rejected(srv, expect_log, "/api/env", tok, "no_matching_key")


def test_alg_none(srv, expect_log):
    tok = H.mint_none(H.std_claims(), {"kid": "k1-rsa"})
    expect_log(REJECTED % "(unsupported|alg_not_allowed|malformed)", required=True)
    assert_invalid_token(get(srv, "/api/env", tok))


def test_hs256_alg_confusion_with_rsa_public_key(srv, keys, expect_log):
    pem = keys.rsa.export_to_pem(private_key=False)
    tok = H.mint_hs256_with_bytes(H.std_claims(), pem, kid=keys.rsa.get("kid"))
    expect_log(REJECTED % "(unsupported|alg_not_allowed)", required=True)
    assert_invalid_token(get(srv, "/api/env", tok))
    # and the JWK's modulus bytes as secret, another confusion variant
    tok2 = H.mint_hs256_with_bytes(H.std_claims(), json.dumps(keys.rsa.export_public(as_dict=True)).encode(),
                                   kid=keys.rsa.get("kid"))
    assert_invalid_token(get(srv, "/api/env", tok2))


def test_alg_not_in_allowlist(srv, keys, expect_log):
    assert get(srv, "/onlyrs/env", ok(keys, "RS256")).status_code == 200
    rejected(srv, expect_log, "/onlyrs/env", ok(keys, "ES256"), "alg_not_allowed")
    rejected(srv, expect_log, "/onlyrs/env", ok(keys, "PS256"), "alg_not_allowed")


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "eyJ.eyJ.", "x" * 100, "a..b", "....."])
def test_garbage_token(srv, expect_log, garbage):
    expect_log(REJECTED % "malformed", required=True)
    assert_invalid_token(get(srv, "/api/env", garbage))


def test_token_outside_b64token_grammar(srv, expect_log):
    """RFC 6750 b64token: '%' is not allowed; 400 invalid_request or 401."""
    expect_log(BADREQ_LOG)
    expect_log(REJECTED % "malformed")
    r = get(srv, "/api/env", "eyJhbGciOiJSUzI1NiJ9.%%%.abc")
    assert r.status_code in (400, 401)
    assert bearer(r).get("error") == ("invalid_request" if r.status_code == 400 else "invalid_token")


B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def test_b64token_grammar_every_byte(srv, keys, expect_log):
    """Every visible byte and obs-text byte inserted into a valid token, at the
    start, in the middle and near the end: outside RFC 6750's b64token it is a
    400 invalid_request; inside it, the token is just no longer valid (401).
    (DEL, like other controls, httpd refuses itself before any module.)"""
    expect_log(BADREQ_LOG, required=True)
    expect_log(REJECTED % ".*", required=True)
    t = H.mint(H.std_claims(), keys.rsa, "RS256")
    seen = set()
    for i, b in enumerate(list(range(0x21, 0x7f)) + list(range(0x80, 0x100))):
        ch = chr(b)
        pos = (0, 1, 2, 3, len(t) // 2, len(t) - 3, len(t) - 1, len(t))[i % 8]
        bad = t[:pos] + ch + t[pos:]
        want = 401 if B64TOKEN.fullmatch(bad) else 400
        r = requests.get(srv.url("/api/env"), headers={"Authorization": "Bearer " + bad},
                         timeout=TIMEOUT)
        assert r.status_code == want, (hex(b), pos, r.status_code)
        assert (bearer(r) or {}).get("error") == (
            "invalid_token" if want == 401 else "invalid_request"), (hex(b), pos)
        seen.add(want)
    assert seen == {400, 401}
    assert get(srv, "/api/env", t).status_code == 200


def test_jwe_shaped_token(srv, expect_log):
    hdr = H.b64u(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": "k1-rsa"}))
    tok = H.remember(".".join([hdr, H.b64u(b"k" * 32), H.b64u(b"iv" * 6), H.b64u(b"c" * 40),
                               H.b64u(b"t" * 16)]))
    expect_log(REJECTED % "(malformed|unsupported)", required=True)
    assert_invalid_token(get(srv, "/api/env", tok))


def test_typ_mismatch(srv, keys, expect_log):
    good = H.mint(H.std_claims(), keys.rsa, "RS256", header_extra={"typ": "at+jwt"})
    assert get(srv, "/typ/env", good).status_code == 200
    good2 = H.mint(H.std_claims(), keys.rsa, "RS256", header_extra={"typ": "application/at+jwt"})
    assert get(srv, "/typ/env", good2).status_code == 200, "RFC 8725: application/ prefix is optional"
    rejected(srv, expect_log, "/typ/env", ok(keys), "bad_type")
    notyp = H.mint(H.std_claims(), keys.rsa, "RS256", header_extra={"typ": None})
    rejected(srv, expect_log, "/typ/env", notyp, "bad_type")


def test_missing_required_claim(srv, keys, expect_log):
    assert get(srv, "/reqclaim/env", ok(keys, tenant="t1")).status_code == 200
    rejected(srv, expect_log, "/reqclaim/env", ok(keys), "missing_claim")


def test_too_old(srv, keys, expect_log):
    assert get(srv, "/maxage/env", ok(keys, iat=H.now() - 10)).status_code == 200
    rejected(srv, expect_log, "/maxage/env", ok(keys, iat=H.now() - 3600), "too_old")


def test_too_old_without_iat(srv, keys, expect_log):
    expect_log(REJECTED % "(too_old|missing_claim)", required=True)
    assert_invalid_token(get(srv, "/maxage/env", ok(keys, iat=None)))


def test_token_over_16k(srv, keys, expect_log):
    tok = ok(keys, pad="p" * 17000)
    assert len(tok) > 16384
    rejected(srv, expect_log, "/api/env", tok, "too_large")


def test_token_under_16k_ok(srv, keys):
    tok = ok(keys, pad="p" * 9000)
    assert 12000 < len(tok) < 16384
    assert get(srv, "/api/env", tok).status_code == 200


def test_max_token_size_directive(srv, keys, expect_log):
    tok = ok(keys, pad="p" * 4000)
    assert len(tok) > 4096
    rejected(srv, expect_log, "/small/env", tok, "too_large")


def test_cache_does_not_outlive_exp(srv, keys, expect_log):
    """A cached token must be re-checked for exp (leeway 0 location)."""
    tok = ok(keys, exp=H.now() + 2)
    assert get(srv, "/leeway0/env", tok).status_code == 200
    expect_log(REJECTED % "expired", required=True)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        time.sleep(0.5)
        r = get(srv, "/leeway0/env", tok)
        if r.status_code == 401:
            assert_invalid_token(r)
            return
        assert r.status_code == 200
    pytest.fail("cached token still accepted 5s after exp with leeway 0")


def test_rejection_log_line_format(srv, keys, expect_log):
    tok = ok(keys, exp=H.now() - 3600)
    expect_log(r"\[auth_jwks:error\].*token rejected: expired.*kid=k1-rsa", required=True)
    expect_log(r"\[auth_jwks:error\].*token rejected: expired.*alg=RS256", required=True)
    expect_log(r"\[auth_jwks:error\].*token rejected: expired.*iss=https://issuer.test", required=True)
    mark = srv.log_size()
    assert_invalid_token(get(srv, "/api/env", tok))
    lines = [l for l in srv.log_since(mark).splitlines() if "token rejected" in l]
    assert len(lines) == 1, lines


def test_no_error_line_for_missing_token(srv):
    mark = srv.log_size()
    assert get(srv, "/api/env").status_code == 401
    text = srv.log_since(mark)
    assert not [l for l in text.splitlines() if "[auth_jwks:error]" in l or "[auth_jwks:warn]" in l], text


# ------------------------------------------------------------- bad requests

_BADREQ_LOG_UNUSED = r"\[auth_jwks:(error|warn)\].*(bad bearer request|invalid_request|malformed|bad request|twice|multiple|more than one|empty)"


def test_empty_bearer(srv, expect_log):
    expect_log(BADREQ_LOG)
    assert_invalid_request(get(srv, "/api/env", "", scheme="Bearer"))
    assert_invalid_request(get(srv, "/api/env", "Bearer", scheme=None))


def test_header_and_query_at_once(srv, keys, expect_log):
    expect_log(BADREQ_LOG)
    tok = ok(keys)
    assert get(srv, "/multi/env?access_token=" + tok).status_code == 200
    assert get(srv, "/multi/env", tok).status_code == 200
    assert_invalid_request(get(srv, "/multi/env?access_token=" + tok, tok))
    assert_invalid_request(get(srv, "/multi/env", tok, headers={"Cookie": "at=" + tok}))


def test_two_authorization_headers(srv, keys, expect_log):
    expect_log(BADREQ_LOG)
    tok = ok(keys)
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=15)
    try:
        c.putrequest("GET", "/api/env")
        c.putheader("Authorization", "Bearer " + tok)
        c.putheader("Authorization", "Bearer " + tok)
        c.endheaders()
        r = c.getresponse()
        body = r.read()
        assert r.status == 400, (r.status, body[:200])
        b = H.parse_bearer(r.getheader("WWW-Authenticate"))
        assert b and b.get("error") == "invalid_request", b
    finally:
        c.close()


def test_two_query_params(srv, keys, expect_log):
    expect_log(BADREQ_LOG)
    tok = ok(keys)
    assert_invalid_request(get(srv, "/query/env?access_token=%s&access_token=%s" % (tok, tok)))


def test_other_scheme_is_no_token(srv):
    r = get(srv, "/api/env", "dXNlcjpwYXNz", scheme="Basic")
    assert r.status_code in (400, 401)
    if r.status_code == 401:
        assert bearer(r) is not None


# ------------------------------------------------------------- token sources

def test_cookie_source(srv, keys):
    tok = ok(keys)
    assert get(srv, "/cookie/env", headers={"Cookie": "x=1; at=%s; y=2" % tok}).status_code == 200
    # header ignored when only cookie is configured
    r = get(srv, "/cookie/env", tok)
    assert r.status_code == 401 and "error" not in (bearer(r) or {}), r.headers


def test_query_source(srv, keys):
    tok = ok(keys)
    assert get(srv, "/query/env?a=1&access_token=%s" % tok).status_code == 200
    r = get(srv, "/query/env", tok)
    assert r.status_code == 401


def test_env_has_no_token(srv, keys):
    tok = ok(keys)
    env = env_of(get(srv, "/api/env", tok))
    sig = tok.split(".")[2]
    assert not [k for k, v in env.items() if sig in v], "signature visible to the CGI"
