"""Refusals under a flood: the refusal cache (a bad signature sent again
costs no signature check, and never outlives the key set that refused it)
and the per-client summaries of the error log (AuthJWKSLogRefusals)."""
import http.client
import re
import time

import pytest
import requests

import harness as H
from conftest import REJECTED, TIMEOUT, assert_invalid_token, get

ISS = "https://issuer.test"
CACHE_HIT = r"\[auth_jwks:debug\].*refusal cache: the signature of this token was found bad"
SUMMARY = r"\[auth_jwks:error\].*token refusals from %s: "
PFX = "mod_auth_jwks_"


def loc(name, urls, extra=""):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
%s    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSRefreshInterval 3600
    AuthJWKSMinRefreshInterval 1
    AuthJWKSStartupWait 10
%s    Require valid-user
</Location>
""" % (name, "".join("    AuthJWKSURL %s\n" % u for u in urls), ISS, extra)


METRICS = """<Location /metrics>
    SetHandler jwks-metrics
    Require all granted
</Location>
"""


def refused(h, reason):
    r = requests.get(h.url("/metrics"), timeout=TIMEOUT, headers={"Connection": "close"})
    assert r.status_code == 200, r.status_code
    m = re.search(r'^%srequests_refused_total\{reason="%s"\} (\d+)' % (PFX, reason), r.text, re.M)
    return int(m.group(1)) if m else 0


def kid_of(key):
    return key.export_public(as_dict=True)["kid"]


def as_kid(key, kid):
    """key's public JWK published under another kid."""
    d = key.export_public(as_dict=True)
    d["kid"] = kid
    d["use"] = "sig"
    return d


def forged(keys, other_keys, **over):
    """Signed with other_keys.rsa but naming keys.rsa's kid: a bad signature."""
    return H.mint(H.std_claims(**over), other_keys.rsa, "RS256", kid=kid_of(keys.rsa))


def until_status(h, path, tok, want, nudge=None, timeout=20):
    """GET until the answer is `want` (each miss a 401); nudge() between tries."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = get(h, path, tok).status_code
        if status == want:
            return
        assert status == 401, status
        if nudge:
            nudge()
        time.sleep(0.2)
    assert status == want, "still %s after %s s" % (status, timeout)


@pytest.fixture
def idp():
    s = H.JWKSServer()
    yield s
    s.close()


def test_bad_signature_cached_until_rotation(make_httpd, idp, keys, other_keys, expect_log):
    idp.set(keys.jwks())
    h = make_httpd(loc("api", [idp.url()]) + METRICS)
    assert get(h, "/api/env", H.mint(H.std_claims(), keys.rsa)).status_code == 200
    expect_log(REJECTED % "bad_signature", required=True)
    expect_log(REJECTED % "no_matching_key")
    tok = forged(keys, other_keys)
    before = refused(h, "bad_signature")
    mark = h.log_size()
    for _ in range(20):
        assert_invalid_token(get(h, "/api/env", tok))
    assert refused(h, "bad_signature") - before == 20
    text = h.log_since(mark)
    assert len(re.findall(REJECTED % "bad_signature", text)) == 20
    # the first was checked in full, the 19 others came from the cache
    assert len(re.findall(CACHE_HIT, text)) == 19, text[-2000:]

    # rotation: the kid now names the key that did sign it. A token with an
    # unknown kid makes the source refetch; the cached refusal belongs to
    # the old key set and must not answer for the new one.
    idp.set({"keys": [as_kid(other_keys.rsa, kid_of(keys.rsa))]})
    unknown = H.mint(H.std_claims(), other_keys.ec256, "ES256")
    until_status(h, "/api/env", tok, 200, nudge=lambda: get(h, "/api/env", unknown))


def test_changeable_refusals_not_cached(make_httpd, idp, keys, other_keys, expect_log):
    idp.set(keys.jwks())
    h = make_httpd(loc("api", [idp.url()]) + METRICS)
    expect_log(REJECTED % "(no_matching_key|expired)", required=True)
    # unknown kid, then the JWKS gains it: accepted
    tok = H.mint(H.std_claims(), other_keys.ec256, "ES256")
    mark = h.log_size()
    for _ in range(3):
        assert_invalid_token(get(h, "/api/env", tok))
    idp.set({"keys": keys.jwks()["keys"] + other_keys.jwks([other_keys.ec256])["keys"]})
    until_status(h, "/api/env", tok, 200)
    # expired with a bad signature: "expired" every time (claims come first)
    old = forged(keys, other_keys, iat=H.now() - 7200, exp=H.now() - 3600)
    before = refused(h, "expired")
    for _ in range(3):
        assert_invalid_token(get(h, "/api/env", old))
    assert refused(h, "expired") - before == 3
    assert not re.search(CACHE_HIT, h.log_since(mark))


def test_two_sources_skip_the_cache(make_httpd, idp, keys, other_keys, expect_log):
    idp.set(keys.jwks([keys.rsa]))
    idp.set({"keys": [keys.ec256.export_public(as_dict=True)]}, path="/jwks2")
    h = make_httpd(loc("multi", [idp.url(), idp.url("/jwks2")]) + METRICS)
    expect_log(REJECTED % "bad_signature", required=True)
    expect_log(REJECTED % "no_matching_key")
    tok = forged(keys, other_keys)
    before = refused(h, "bad_signature")
    mark = h.log_size()
    for _ in range(5):
        assert_invalid_token(get(h, "/multi/env", tok))
    assert refused(h, "bad_signature") - before == 5
    assert not re.search(CACHE_HIT, h.log_since(mark))
    # the second URL now names that kid with the key that signed it
    idp.set({"keys": [keys.ec256.export_public(as_dict=True),
                      as_kid(other_keys.rsa, kid_of(keys.rsa))]}, path="/jwks2")
    idp.set({"keys": [keys.ec256.export_public(as_dict=True)]})
    unknown = H.mint(H.std_claims(), other_keys.ec384, "ES384")
    until_status(h, "/multi/env", tok, 200, nudge=lambda: get(h, "/multi/env", unknown))


def get_from(h, source_ip, path, token):
    """A GET sent from source_ip (any 127/8 address reaches 127.0.0.1)."""
    c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=TIMEOUT,
                                   source_address=(source_ip, 0))
    try:
        c.request("GET", path, headers={"Authorization": "Bearer " + token,
                                        "Connection": "close"})
        return c.getresponse().status
    finally:
        c.close()


def client_lines(text, ip):
    """Full lines (from ap_log_rerror: [client ip:port]) and summaries of ip."""
    full = [l for l in text.splitlines()
            if "token rejected:" in l and "[client %s:" % ip in l]
    sums = re.findall(r"token refusals from %s: (\d+) more in the last \d+ s not logged one by "
                      r"one \(([^)]*)\)" % re.escape(ip), text)
    return full, sums


def test_log_summaries_per_client(make_httpd, idp, keys, other_keys, expect_log):
    interval = 3
    idp.set(keys.jwks())
    h = make_httpd(loc("api", [idp.url()]) + METRICS
                   + "AuthJWKSLogRefusals 5 %d\n" % interval)
    expect_log(REJECTED % "(bad_signature|expired)", required=True)
    expect_log(SUMMARY % r"127\.0\.0\.1", required=True)
    expect_log(SUMMARY % r"127\.0\.0\.2", required=True)
    assert get(h, "/api/env", H.mint(H.std_claims(), keys.rsa)).status_code == 200
    bad = forged(keys, other_keys)
    old = H.mint(H.std_claims(iat=H.now() - 7200, exp=H.now() - 3600), keys.rsa)
    time.sleep(0.2)
    mark = h.log_size()
    t0 = time.monotonic()
    for i in range(50):
        assert get_from(h, "127.0.0.1", "/api/env", bad if i < 30 else old) == 401
    for i in range(10):
        assert get_from(h, "127.0.0.2", "/api/env", old) == 401
    quick = time.monotonic() - t0 < interval
    # the flusher writes each summary once the interval ended, with no
    # further request from that client
    deadline = time.monotonic() + interval + 10
    while time.monotonic() < deadline:
        text = h.log_since(mark)
        n1 = sum(int(n) + 0 for n, _ in client_lines(text, "127.0.0.1")[1])
        n2 = sum(int(n) for n, _ in client_lines(text, "127.0.0.2")[1])
        if len(client_lines(text, "127.0.0.1")[0]) + n1 == 50 \
                and len(client_lines(text, "127.0.0.2")[0]) + n2 == 10:
            break
        time.sleep(0.25)
    text = h.log_since(mark)
    full1, sums1 = client_lines(text, "127.0.0.1")
    full2, sums2 = client_lines(text, "127.0.0.2")
    assert len(full1) + sum(int(n) for n, _ in sums1) == 50, text[-3000:]
    assert len(full2) + sum(int(n) for n, _ in sums2) == 10, text[-3000:]
    if quick:                        # all within one interval: 5 lines and one summary each
        assert len(full1) == 5 and all("bad_signature" in l for l in full1), full1
        assert sums1 == [("45", "bad_signature 25, expired 20")], sums1
        assert len(full2) == 5
        assert sums2 == [("5", "expired 5")], sums2


def test_log_summaries_cover_malformed_requests(make_httpd, idp, keys, expect_log):
    """A flood of malformed Authorization headers (400, no token to refuse)
    is summarised per client like refused tokens: the first lines in full,
    then one summary with the count, never a line per request."""
    interval = 3
    idp.set(keys.jwks())
    h = make_httpd(loc("api", [idp.url()]) + "AuthJWKSLogRefusals 5 %d\n" % interval)
    expect_log(r"\[auth_jwks:error\].*bad bearer request: ", required=True)
    expect_log(SUMMARY % r"127\.0\.0\.1", required=True)
    mark = h.log_size()
    t0 = time.monotonic()
    for _ in range(30):
        c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=TIMEOUT)
        try:
            c.request("GET", "/api/env", headers={"Authorization": "Bearer two tokens",
                                                  "Connection": "close"})
            assert c.getresponse().status == 400
        finally:
            c.close()
    quick = time.monotonic() - t0 < interval
    deadline = time.monotonic() + interval + 10
    while time.monotonic() < deadline and not client_lines(h.log_since(mark), "127.0.0.1")[1]:
        time.sleep(0.25)
    text = h.log_since(mark)
    full = [l for l in text.splitlines() if "bad bearer request:" in l]
    sums = client_lines(text, "127.0.0.1")[1]
    assert len(full) + sum(int(n) for n, _ in sums) == 30, text[-3000:]
    if quick:
        assert len(full) == 5, full
        assert sums == [("25", "invalid_request 25")], sums


@pytest.mark.parametrize("line,ok", [
    ("AuthJWKSRefusalCache 0", True),
    ("AuthJWKSRefusalCache 100000", True),
    ("AuthJWKSRefusalCache -1", False),
    ("AuthJWKSLogRefusals all", True),
    ("AuthJWKSLogRefusals 0 10", True),
    ("AuthJWKSLogRefusals 5", True),
    ("AuthJWKSLogRefusals all 60", False),
    ("AuthJWKSLogRefusals 5 0", False),
    ("AuthJWKSLogRefusals x", False),
])
def test_directives(line, ok):
    r = H.configtest(line + "\n" + loc("api", ["http://127.0.0.1:1/jwks"]))
    assert (r.returncode == 0) == ok, r.stderr
    if not ok:
        assert line.split()[0] in r.stderr, r.stderr


def test_directives_server_only():
    r = H.configtest(loc("api", ["http://127.0.0.1:1/jwks"], "    AuthJWKSLogRefusals 5 60\n"))
    assert r.returncode != 0 and "AuthJWKSLogRefusals" in r.stderr, r.stderr


def test_issuer_bound_sources(make_httpd, idp, keys, other_keys, expect_log):
    """Two issuers bound to two URLs pick keys by the token's iss: such a
    section never answers from the cache (its full checks still record what
    the one source tried found), while a section with one bound issuer is
    one source and does."""
    idp.set(keys.jwks())
    idp.set(other_keys.jwks(), path="/jwks2")
    sec = """<Location /%s>
    AuthType jwks
    AuthName "api"
%s    AuthJWKSAudience api
    Require valid-user
</Location>
"""
    h = make_httpd(sec % ("one", "    AuthJWKSIssuer %s %s\n" % (ISS, idp.url()))
                   + sec % ("two", "    AuthJWKSIssuer %s %s\n    AuthJWKSIssuer %s %s\n"
                            "    AuthJWKSUserClaim sub@iss\n"
                            % (ISS, idp.url(), "https://other.test", idp.url("/jwks2"))))
    expect_log(REJECTED % "bad_signature", required=True)
    tok = forged(keys, other_keys)
    for path, hits in (("/two/env", 0), ("/one/env", 5)):
        mark = h.log_size()
        for _ in range(5):
            assert_invalid_token(get(h, path, tok))
        assert len(re.findall(CACHE_HIT, h.log_since(mark))) == hits, path
