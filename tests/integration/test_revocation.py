"""Revocation against a real httpd: Token Status Lists (draft-ietf-oauth-status-list)
served over HTTP as statuslist+jwt tokens minted by jwcrypto, and the AuthJWKSRevoked
deny-list file. One httpd per test."""
import json
import os
import tempfile
import shutil
import time
import zlib

import pytest
from jwcrypto import jws

import harness as H
from conftest import REJECTED, assert_invalid_token, get

ISS = "https://issuer.test"
STATUS_FAIL = r"\[auth_jwks:(warn|error)\].*(no status list from|refresh of) http://127\.0\.0\.1:%d%s"


def pack(statuses, bits=1):
    """The draft's bit array: entry i at bit i*bits, least significant first."""
    per = 8 // bits
    out = bytearray((len(statuses) + per - 1) // per)
    for i, s in enumerate(statuses):
        out[i // per] |= (s & ((1 << bits) - 1)) << ((i % per) * bits)
    return bytes(out)


def lst_of(raw):
    return H.b64u(zlib.compress(raw, 9))


def status_list_jwt(key, uri, statuses=None, bits=1, ttl=1, exp=None, typ="statuslist+jwt",
                    sub=None, iat=None, lst=None, alg="RS256", kid=None):
    claims = {"sub": uri if sub is None else sub, "iat": H.now() if iat is None else iat,
              "status_list": {"bits": bits,
                              "lst": lst if lst is not None else lst_of(pack(statuses, bits))}}
    if ttl is not None:
        claims["ttl"] = ttl
    if exp is not None:
        claims["exp"] = exp
    hdr = {"alg": alg, "kid": kid or key.get("kid"), "typ": typ}
    t = jws.JWS(json.dumps(claims).encode())
    t.add_signature(key, alg=alg, protected=json.dumps(hdr))
    return t.serialize(compact=True).encode()


def ref_token(key, uri, idx, **over):
    return H.mint(H.std_claims(status={"status_list": {"idx": idx, "uri": uri}}, **over), key)


def loc(idp, body):
    return """<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSRefreshInterval 5
    AuthJWKSMinRefreshInterval 1
%s
    Require valid-user
</Location>
""" % (idp.url(), ISS, body)


def status_conf(idp, extra=""):
    return loc(idp, "    AuthJWKSStatusList on\n    AuthJWKSStatusListURL %s\n%s" % (
        idp.url("/statuslists/"), extra))


@pytest.fixture
def idp(keys):
    s = H.JWKSServer()
    s.set(keys.jwks())
    yield s
    s.close()


def wait_status(h, path, token, want, timeout=20):
    deadline = time.monotonic() + timeout
    r = None
    while time.monotonic() < deadline:
        r = get(h, path, token)
        if r.status_code == want:
            return r
        time.sleep(0.2)
    raise AssertionError("never %d (last %s)" % (want, r.status_code if r else None))


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_revoked_index_refused_after_refresh_cached_too(make_httpd, idp, keys, expect_log, mpm):
    uri = idp.url("/statuslists/1")
    statuses = [0] * 64
    idp.set(status_list_jwt(keys.rsa, uri, statuses), "/statuslists/1")
    h = make_httpd(status_conf(idp), mpm=mpm)
    alice = ref_token(keys.rsa, uri, 3)
    bob = ref_token(keys.rsa, uri, 4, sub="bob")
    # valid, then valid again from the token cache
    assert get(h, "/api/env", alice).status_code == 200
    assert get(h, "/api/env", alice).status_code == 200
    assert get(h, "/api/env", bob).status_code == 200
    # no fetch on the request path: many requests, fetches only at the refresh pace
    c0, t0 = idp.count("/statuslists/1"), time.monotonic()
    for _ in range(40):
        assert get(h, "/api/env", bob).status_code == 200
    grew, elapsed = idp.count("/statuslists/1") - c0, time.monotonic() - t0
    nproc = max(1, len(h.children()) - 1)
    assert grew <= nproc * (int(elapsed) + 3), (grew, elapsed, nproc)
    # the list was fetched with the draft's media type
    accepts = [hd.get("Accept") for _, p, hd in idp.log if p == "/statuslists/1"]
    assert accepts and all(a == "application/statuslist+jwt" for a in accepts), accepts
    # revoke index 3: the cached token is refused once the list is refreshed
    statuses[3] = 1
    idp.set(status_list_jwt(keys.rsa, uri, statuses), "/statuslists/1")
    expect_log(REJECTED % r"revoked: token revoked \(status 1\)", required=True)
    r = wait_status(h, "/api/env", alice, 401)
    assert_invalid_token(r)
    assert H.parse_bearer(r.headers["WWW-Authenticate"])["error_description"] \
        == "The token was revoked"
    # every process has the new list within a refresh (ttl 1 s, AuthJWKSMinRefreshInterval 1)
    time.sleep(3)
    assert [get(h, "/api/env", alice).status_code for _ in range(12)] == [401] * 12
    assert get(h, "/api/env", bob).status_code == 200
    # suspended (2-bit list, status 2) is refused as well
    statuses2 = [0] * 64
    statuses2[4] = 2
    idp.set(status_list_jwt(keys.rsa, uri, statuses2, bits=2), "/statuslists/1")
    expect_log(REJECTED % r"revoked: token revoked \(status 2\)", required=True)
    wait_status(h, "/api/env", bob, 401)
    wait_status(h, "/api/env", alice, 200)                # reinstated


def test_uri_outside_allow_list_never_fetched(make_httpd, idp, keys, expect_log):
    expect_log(REJECTED % "bad_claim: status list uri .* is not under an AuthJWKSStatusListURL",
               required=True)
    idp.set(status_list_jwt(keys.rsa, idp.url("/other/1"), [0] * 8), "/other/1")
    h = make_httpd(status_conf(idp))
    for uri in (idp.url("/other/1"), idp.url("/statuslists/../other/1"),
                idp.url("/statuslists/%2e%2e/other/1"), "http://127.0.0.2:%d/statuslists/1" % idp.port,
                idp.url("/statuslists") + "@evil.test/statuslists/1"):
        r = get(h, "/api/env", ref_token(keys.rsa, uri, 0))
        assert_invalid_token(r)
    time.sleep(0.5)
    assert idp.count("/other/1") == 0
    assert not [p for _, p, _ in idp.log if p != "/jwks"], idp.log


def test_index_out_of_range_and_bad_reference(make_httpd, idp, keys, expect_log):
    uri = idp.url("/statuslists/1")
    idp.set(status_list_jwt(keys.rsa, uri, [0] * 8), "/statuslists/1")
    h = make_httpd(status_conf(idp))
    expect_log(REJECTED % "bad_claim: status index 8 is beyond the 8 entries", required=True)
    expect_log(REJECTED % "bad_claim: status.status_list.idx", required=True)
    assert get(h, "/api/env", ref_token(keys.rsa, uri, 7)).status_code == 200
    assert_invalid_token(get(h, "/api/env", ref_token(keys.rsa, uri, 8)))
    assert_invalid_token(get(h, "/api/env", ref_token(keys.rsa, uri, -1)))


def test_require_mode(make_httpd, idp, keys, expect_log):
    uri = idp.url("/statuslists/1")
    idp.set(status_list_jwt(keys.rsa, uri, [0] * 8), "/statuslists/1")
    plain = H.mint(H.std_claims(), keys.rsa)
    h = make_httpd(status_conf(idp))
    assert get(h, "/api/env", plain).status_code == 200       # on: no reference is fine
    h.stop()
    h2 = make_httpd(status_conf(idp).replace("AuthJWKSStatusList on", "AuthJWKSStatusList require"))
    expect_log(REJECTED % r"missing_claim: no status list reference", required=True)
    assert_invalid_token(get(h2, "/api/env", plain))
    assert get(h2, "/api/env", ref_token(keys.rsa, uri, 0)).status_code == 200


def test_unreachable_list_fail_closed_then_open(make_httpd, idp, keys, expect_log):
    uri = idp.url("/statuslists/missing")       # under the prefix, answers 404
    expect_log(STATUS_FAIL % (idp.port, "/statuslists/missing"))
    expect_log(REJECTED % "status_unavailable: status list .* unavailable", required=True)
    h = make_httpd(status_conf(idp, "    AuthJWKSRotationWait 1"))
    t0 = time.monotonic()
    r = get(h, "/api/env", ref_token(keys.rsa, uri, 0))
    assert r.status_code == 503, (r.status_code, r.text[:200])
    assert r.headers.get("Retry-After", "").isdigit()
    assert time.monotonic() - t0 < 8
    h.stop()
    expect_log(r"\[auth_jwks:warn\].*status list .* unavailable: .*token accepted "
               r"\(AuthJWKSStatusListFail open\)", required=True)
    h2 = make_httpd(status_conf(idp, "    AuthJWKSRotationWait 1\n    AuthJWKSStatusListFail open"))
    assert get(h2, "/api/env", ref_token(keys.rsa, uri, 0)).status_code == 200


@pytest.mark.parametrize("case", ["other_issuer_key", "forged_kid", "sub_differs", "expired", "wrong_typ",
                                  "bomb", "bad_bits", "bad_lst"])
def test_hostile_lists_unusable(make_httpd, idp, keys, other_keys, expect_log, case):
    path = "/statuslists/%s" % case
    uri = idp.url(path)
    zeros = lst_of(bytes(8 * 1024 * 1024))
    doc = {
        "other_issuer_key": lambda: status_list_jwt(other_keys.rsa, uri, [0] * 8),
        "forged_kid": lambda: status_list_jwt(other_keys.rsa, uri, [0] * 8,
                                              kid=keys.rsa.get("kid")),
        "sub_differs": lambda: status_list_jwt(keys.rsa, uri, [0] * 8, sub=uri + "x"),
        "expired": lambda: status_list_jwt(keys.rsa, uri, [0] * 8, iat=H.now() - 7200,
                                           exp=H.now() - 3600),
        "wrong_typ": lambda: status_list_jwt(keys.rsa, uri, [0] * 8, typ="JWT"),
        "bomb": lambda: status_list_jwt(keys.rsa, uri, lst=zeros),
        "bad_bits": lambda: status_list_jwt(keys.rsa, uri, [0] * 8, bits=3,
                                            lst=lst_of(bytes(3))),
        "bad_lst": lambda: status_list_jwt(keys.rsa, uri, lst="not-zlib"),
    }[case]()
    idp.set(doc, path)
    expect_log(r"\[auth_jwks:error\].*no status list from %s: invalid status list" % uri,
               required=True)
    expect_log(STATUS_FAIL % (idp.port, path))
    expect_log(REJECTED % "status_unavailable")
    h = make_httpd(status_conf(idp, "    AuthJWKSRotationWait 3"))
    r = get(h, "/api/env", ref_token(keys.rsa, uri, 0))
    assert r.status_code == 503, (case, r.status_code)


def test_shared_copy_not_a_jwks_record(make_httpd, idp, keys):
    """The status list's shared copy lives in its own name space."""
    uri = idp.url("/statuslists/1")
    idp.set(status_list_jwt(keys.rsa, uri, [0] * 8), "/statuslists/1")
    h = make_httpd(status_conf(idp))
    assert get(h, "/api/env", ref_token(keys.rsa, uri, 0)).status_code == 200
    import hashlib
    name = hashlib.sha256(("statuslist:" + uri).encode()).hexdigest() + ".json"
    plain = hashlib.sha256(uri.encode()).hexdigest() + ".json"
    cache = os.path.join(h.root, "run", "auth_jwks")
    found = []
    for d, _, files in os.walk(h.root):
        found += [f for f in files if f in (name, plain)]
    assert name in found, (cache, found)
    assert plain not in found


@pytest.fixture
def deny_dir():
    d = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-deny-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_deny_list(deny_dir, make_httpd, idp, keys, expect_log):
    path = os.path.join(deny_dir, "revoked.txt")
    with open(path, "w") as f:
        f.write("# incident 42\njti:revoked-jti\n")
    os.chmod(path, 0o644)
    h = make_httpd(loc(idp, "    AuthJWKSRevoked %s" % path))
    expect_log(REJECTED % r"revoked: token revoked \(its jti is on the deny-list", required=True)
    expect_log(REJECTED % r"revoked: token revoked \(its sub is on the deny-list", required=True)
    expect_log(REJECTED % r"revoked: token revoked \(its kid is on the deny-list", required=True)
    assert_invalid_token(get(h, "/api/env", H.mint(H.std_claims(jti="revoked-jti"), keys.rsa)))
    bob = H.mint(H.std_claims(sub="bob"), keys.rsa)
    ec = H.mint(H.std_claims(), keys.ec256, "ES256")
    assert get(h, "/api/env", bob).status_code == 200     # now cached
    assert get(h, "/api/env", ec).status_code == 200
    with open(path, "a") as f:
        f.write("sub:bob\nkid:%s\n" % keys.ec256.get("kid"))
    r = wait_status(h, "/api/env", bob, 401)
    assert_invalid_token(r)
    assert get(h, "/api/env", ec).status_code == 401
    assert get(h, "/api/env", H.mint(H.std_claims(), keys.rsa)).status_code == 200
    h.stop()


@pytest.mark.parametrize("line,needle", [
    ("AuthJWKSStatusList maybe", "AuthJWKSStatusList: 'maybe' is not off, on or require"),
    ("AuthJWKSStatusListFail shut", "AuthJWKSStatusListFail: 'shut' is not closed or open"),
    ("AuthJWKSStatusListMaxStale 5", "AuthJWKSStatusListMaxStale: '5' is not a whole number"),
    ("AuthJWKSStatusListURL https://idp.example", "AuthJWKSStatusListURL: 'https://idp.example'"),
    ("AuthJWKSStatusListURL http://example.com/x/", "AuthJWKSStatusListURL: 'http://example.com/x/'"),
    ("AuthJWKSStatusListURL file:///etc/", "AuthJWKSStatusListURL: 'file:///etc/'"),
    ("AuthJWKSRevoked /nonexistent/revoked.txt", "AuthJWKSRevoked: '/nonexistent/revoked.txt': no such file"),
])
def test_config_errors(line, needle):
    r = H.configtest("<Location /x>\n    AuthType jwks\n    AuthJWKSURL http://127.0.0.1:1/jwks\n"
                     "    %s\n    Require valid-user\n</Location>\n" % line)
    assert r.returncode != 0
    assert needle in (r.stderr + r.stdout), r.stderr


def test_config_error_bad_deny_file():
    d = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-deny-", dir="/tmp"))
    path = os.path.join(d, "revoked.txt")
    with open(path, "w") as f:
        f.write("jti:a\nuser:bob\n")
    try:
        r = H.configtest("<Location /x>\n    AuthType jwks\n    AuthJWKSURL http://127.0.0.1:1/jwks\n"
                         "    AuthJWKSRevoked %s\n    Require valid-user\n</Location>\n" % path)
        assert r.returncode != 0
        assert "AuthJWKSRevoked: '%s': line 2: not an entry" % path in r.stderr, r.stderr
    finally:
        os.unlink(path)
        os.rmdir(d)


# ---------------------------------------------------------------- jwks-tool status

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "build", "jwks-tool")


def tool(*args):
    import subprocess
    return subprocess.run([TOOL] + list(args), capture_output=True, text=True, timeout=30)


def test_tool_status(tmp_path, idp, keys, other_keys):
    uri = idp.url("/statuslists/1")
    statuses = [0] * 16
    statuses[5] = 1
    idp.set(status_list_jwt(keys.rsa, uri, statuses), "/statuslists/1")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(H.jwks_doc(keys.all())))
    good, revoked = ref_token(keys.rsa, uri, 4), ref_token(keys.rsa, uri, 5)

    r = tool("status", good)                              # reference only
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reference: idx=4 uri=%s" % uri in r.stdout
    assert "not checked" in r.stdout
    r = tool("status", "--jwks", str(jwks), good)         # fetched like the module does
    assert r.returncode == 0, r.stdout + r.stderr
    assert "status: VALID (0)" in r.stdout
    assert [hd.get("Accept") for _, p, hd in idp.log if p == "/statuslists/1"][-1] \
        == "application/statuslist+jwt"
    r = tool("status", "--jwks", str(jwks), revoked)
    assert r.returncode == 1 and "status: INVALID (1)" in r.stdout, r.stdout
    r = tool("status", "--jwks", str(jwks), ref_token(keys.rsa, uri, 16))
    assert r.returncode == 1 and "beyond the list" in r.stdout, r.stdout
    # a list from a file, signed by another issuer: refused
    lf = tmp_path / "list.jwt"
    lf.write_bytes(status_list_jwt(other_keys.rsa, uri, [0] * 16, kid=keys.rsa.get("kid")))
    r = tool("status", "--jwks", str(jwks), "--list", str(lf), good)
    assert r.returncode == 1 and "the status list is refused: bad_signature" in r.stdout, r.stdout
    lf.write_bytes(status_list_jwt(keys.rsa, uri, [0] * 16))
    r = tool("status", "--jwks", str(jwks), "--list", str(lf), revoked)
    assert r.returncode == 0 and "status: VALID (0)" in r.stdout, r.stdout
    # no reference, malformed reference
    r = tool("status", H.mint(H.std_claims(), keys.rsa))
    assert r.returncode == 1 and "reference: none" in r.stdout
    r = tool("status", H.mint(H.std_claims(status={"status_list": {"idx": "1", "uri": uri}}),
                              keys.rsa))
    assert r.returncode == 1 and "malformed" in r.stdout
    r = tool("status")
    assert r.returncode == 2


def test_config_warns_status_on_without_prefix():
    r = H.configtest("<Location /x>\n    AuthType jwks\n    AuthJWKSURL http://127.0.0.1:1/jwks\n"
                     "    AuthJWKSIssuer https://issuer.test\n    AuthJWKSAudience api\n"
                     "    AuthJWKSStatusList on\n    Require valid-user\n</Location>\n")
    assert r.returncode == 0, r.stderr
    assert "AuthJWKSStatusList on without AuthJWKSStatusListURL" in r.stderr, r.stderr
    r = H.configtest("<Location />\n    AuthJWKSStatusListURL https://idp.example/sl/\n</Location>\n"
                     "<Location /x>\n    AuthType jwks\n    AuthJWKSURL http://127.0.0.1:1/jwks\n"
                     "    AuthJWKSIssuer https://issuer.test\n    AuthJWKSAudience api\n"
                     "    AuthJWKSStatusList on\n    Require valid-user\n</Location>\n")
    assert r.returncode == 0, r.stderr
    assert "without AuthJWKSStatusListURL" not in r.stderr, r.stderr
