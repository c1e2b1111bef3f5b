"""Key sources and key lifecycle: rotation, refetch rate limit, IdP down,
https with a test CA, file://, issuer binding. One httpd per test."""
import math
import time
import uuid

import pytest

import harness as H
from conftest import REJECTED, assert_invalid_token, env_of, get

ISS = "https://issuer.test"
FETCH_FAIL = r"\[auth_jwks:(warn|error)\].*%s"


def loc(url, body="", name="api", issuer=ISS):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
%s
    Require valid-user
</Location>
""" % (name, url, issuer, body)


def tok(key, alg="RS256", **over):
    return H.mint(H.std_claims(**over), key, alg)


@pytest.fixture
def idp():
    s = H.JWKSServer()
    yield s
    s.close()


def test_rotation_and_unknown_kid_rate_limit(make_httpd, idp, keys, other_keys, expect_log):
    idp.set(keys.jwks())
    h = make_httpd(loc(idp.url(), "    AuthJWKSMinRefreshInterval 2\n    AuthJWKSRefreshInterval 3600"))
    assert get(h, "/api/env", tok(keys.rsa)).status_code == 200
    # rotate: the IdP now publishes only the new key
    idp.set(other_keys.jwks([other_keys.rsa]))
    new = tok(other_keys.rsa)
    expect_log(REJECTED % "no_matching_key")
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline:
        status = get(h, "/api/env", new).status_code
        if status == 200:
            break
        assert status == 401
        time.sleep(0.25)
    assert status == 200, "token with the rotated-in kid never accepted (unknown-kid refresh)"
    # flood of random unknown kids: fetches must stay rate limited
    c0 = idp.count()
    t0 = time.monotonic()
    for _ in range(50):
        r = get(h, "/api/env", H.mint(H.std_claims(), other_keys.rsa, "RS256", kid=uuid.uuid4().hex))
        assert r.status_code == 401
    elapsed = time.monotonic() - t0
    time.sleep(0.5)
    grew = idp.count() - c0
    nproc = max(1, len(h.children()) - 1)  # minus cgid daemon
    bound = nproc * (math.ceil(elapsed / 2.0) + 2)
    assert grew <= bound, "JWKS fetched %d times for 50 unknown kids in %.1fs (bound %d)" % (
        grew, elapsed, bound)


def test_etag_revalidation(make_httpd, idp, keys):
    idp.set(keys.jwks())
    h = make_httpd(loc(idp.url(), "    AuthJWKSRefreshInterval 5\n    AuthJWKSMinRefreshInterval 1"))
    assert get(h, "/api/env", tok(keys.rsa)).status_code == 200
    H.wait_until(lambda: idp.not_modified >= 1, 25, 0.2, "an If-None-Match revalidation (304)")
    assert get(h, "/api/env", tok(keys.rsa)).status_code == 200


def test_idp_down_at_start_503(make_httpd, idp, keys, expect_log):
    idp.mode = "500"
    expect_log(FETCH_FAIL % "127.0.0.1:%d" % idp.port, required=True)
    expect_log(REJECTED % "no_keys_loaded")
    h = make_httpd(loc(idp.url(), "    AuthJWKSStartupWait 1\n    AuthJWKSMinRefreshInterval 1"))
    for _ in range(3):
        t0 = time.monotonic()
        r = get(h, "/api/env", tok(keys.rsa))
        assert r.status_code == 503, (r.status_code, r.text[:200])
        assert r.headers.get("Retry-After", "").strip().isdigit(), r.headers
        assert time.monotonic() - t0 < 10
    # no token at all while keys are missing: still not a 200
    assert get(h, "/api/env").status_code in (401, 503)


def test_idp_hangs_at_start_503_bounded(make_httpd, idp, keys, expect_log):
    idp.mode = "hang"
    expect_log(FETCH_FAIL % "127.0.0.1:%d" % idp.port)
    expect_log(REJECTED % "no_keys_loaded")
    h = make_httpd(loc(idp.url(), "    AuthJWKSStartupWait 1\n    AuthJWKSFetchTimeout 2"))
    t0 = time.monotonic()
    r = get(h, "/api/env", tok(keys.rsa))
    assert r.status_code == 503
    assert "Retry-After" in r.headers
    assert time.monotonic() - t0 < 8
    idp.mode = "500"  # let the hung fetch end quickly at stop


def test_idp_recovers_after_down_start(make_httpd, idp, keys, expect_log):
    idp.mode = "500"
    expect_log(FETCH_FAIL % "127.0.0.1:%d" % idp.port)
    expect_log(REJECTED % "no_keys_loaded")
    h = make_httpd(loc(idp.url(), "    AuthJWKSStartupWait 1\n    AuthJWKSMinRefreshInterval 1\n"
                                  "    AuthJWKSRefreshInterval 5"))
    assert get(h, "/api/env", tok(keys.rsa)).status_code == 503
    idp.set(keys.jwks())
    idp.mode = "ok"
    H.wait_until(lambda: get(h, "/api/env", tok(keys.rsa)).status_code == 200, 40, 0.5,
                 "keys to load after the IdP recovered (backoff bounded)")


def test_idp_down_after_load_keeps_keys(make_httpd, idp, keys, expect_log):
    idp.set(keys.jwks())
    h = make_httpd(loc(idp.url(), "    AuthJWKSRefreshInterval 5\n    AuthJWKSMinRefreshInterval 1"))
    assert get(h, "/api/env", tok(keys.rsa)).status_code == 200
    expect_log(FETCH_FAIL % "127.0.0.1:%d" % idp.port)
    c0 = idp.count()
    idp.mode = "500"
    H.wait_until(lambda: idp.count() > c0, 25, 0.2, "a failed refresh attempt")
    for alg in ("RS256", "ES256", "EdDSA"):
        assert get(h, "/api/env", tok(keys.for_alg(alg), alg)).status_code == 200


def test_https_jwks_with_ca(make_httpd, keys, ca):
    s = H.JWKSServer(tls=ca)
    try:
        s.set(keys.jwks())
        h = make_httpd(loc(s.url(), "    AuthJWKSCAFile %s\n    AuthJWKSStartupWait 10" % ca.ca_file))
        env = env_of(get(h, "/api/env", tok(keys.ec256, "ES256")))
        assert env["REMOTE_USER"] == "alice"
        assert s.count() >= 1
    finally:
        s.close()


def test_https_jwks_without_ca_never_loads(make_httpd, keys, ca, expect_log):
    s = H.JWKSServer(tls=ca)
    try:
        s.set(keys.jwks())
        expect_log(FETCH_FAIL % "127.0.0.1:%d" % s.port, required=True)
        expect_log(REJECTED % "no_keys_loaded")
        h = make_httpd(loc(s.url(), "    AuthJWKSStartupWait 1"))
        r = get(h, "/api/env", tok(keys.rsa))
        assert r.status_code == 503
        assert "Retry-After" in r.headers
    finally:
        s.close()


def test_file_jwks(make_httpd, keys):
    h = make_httpd("", start=False)
    import json
    p = h.data_file("jwks.json", json.dumps(keys.jwks()))
    h.write_conf(loc("file://" + p, "    AuthJWKSStartupWait 10"))
    h.start()
    assert env_of(get(h, "/api/env", tok(keys.ec384, "ES384")))["JWT_ALG"] == "ES384"


def test_issuer_binding(make_httpd, keys, other_keys, expect_log):
    s = H.JWKSServer()
    try:
        s.set(keys.jwks(), "/a")
        s.set(other_keys.jwks(), "/b")
        conf = """<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSIssuer https://a %s
    AuthJWKSIssuer https://b %s
    AuthJWKSUserClaim sub@iss
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    AuthJWKSMinRefreshInterval 1
    Require valid-user
</Location>
""" % (s.url("/a"), s.url("/b"))
        h = make_httpd(conf)
        assert get(h, "/api/env", tok(keys.rsa, iss="https://a")).status_code == 200
        assert get(h, "/api/env", tok(other_keys.rsa, iss="https://b")).status_code == 200
        expect_log(REJECTED % "(no_matching_key|bad_signature|bad_issuer)", required=True)
        assert_invalid_token(get(h, "/api/env", tok(other_keys.rsa, iss="https://a")))
        assert_invalid_token(get(h, "/api/env", tok(keys.ec256, "ES256", iss="https://b")))
        assert_invalid_token(get(h, "/api/env", tok(keys.rsa, iss="https://c")))
    finally:
        s.close()
