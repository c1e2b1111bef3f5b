"""DPoP (RFC 9449) against a real httpd: proofs made with jwcrypto, every
refusal, the challenges, and the server-wide replay cache (prefork children
that never see the same connection, child recycling, graceful restart)."""
import http.client
import json
import re
import time
import uuid

import pytest
import requests
from jwcrypto import jwk, jws

import harness as H
from conftest import TIMEOUT, env_of, get, module_httpd

ISS = "https://issuer.test"
PROOF_REJECTED = r"\[auth_jwks:error\].*DPoP proof rejected: %s"
TOKEN_REJECTED = r"\[auth_jwks:error\].*token rejected: %s"


def loc(name, body):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    AuthJWKSLeeway 5
%s
    Require valid-user
</Location>
""" % (name, ISS, body)


LOCATIONS = [
    ("dp", "    AuthJWKSDPoP allow\n    AuthJWKSDPoPWindow 30"),
    ("dpr", "    AuthJWKSDPoP require"),
    ("dprs", "    AuthJWKSDPoP require\n    AuthJWKSAlgorithms RS256 EdDSA"),
    ("dpbase", "    AuthJWKSDPoP require\n    AuthJWKSDPoPBaseURL https://API.example.com:443/ext/"),
    ("plain", ""),
    ("dpn", "    AuthJWKSDPoP require\n    AuthJWKSDPoPNonce 300"),
    ("dpn2", "    AuthJWKSDPoP require\n    AuthJWKSDPoPNonce 2"),
]


def conf(jwks_url, extra_locs=()):
    return "".join(loc(n, b) for n, b in list(LOCATIONS) + list(extra_locs)).replace(
        "{jwks}", jwks_url)


ALLOWED = [PROOF_REJECTED % ".*", TOKEN_REJECTED % ".*"]


@pytest.fixture(scope="module")
def srv(jwks_server):
    h = module_httpd(conf(jwks_server.url()), allowed=ALLOWED)
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


@pytest.fixture(scope="module")
def pkey():
    return jwk.JWK.generate(kty="EC", crv="P-256")


# ---------------------------------------------------------------- proofs

def proof(key, htm, htu, token=None, alg="ES256", header=None, claims=None, jwk_dict=None):
    """A DPoP proof. header/claims entries override; a value of None removes one."""
    hdr = {"typ": "dpop+jwt", "alg": alg,
           "jwk": jwk_dict if jwk_dict is not None else key.export_public(as_dict=True)}
    c = {"jti": uuid.uuid4().hex, "htm": htm, "htu": htu, "iat": H.now()}
    if token is not None:
        c["ath"] = H.b64u(__import__("hashlib").sha256(token.encode()).digest())
    for d, over in ((hdr, header), (c, claims)):
        for k, v in (over or {}).items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
    t = jws.JWS(json.dumps(c).encode())
    t.allowed_algs = H.ALL_ALGS + ["HS256"]
    t.add_signature(key, alg=alg, protected=json.dumps(hdr))
    return H.remember(t.serialize(compact=True))


def bound_token(keys, pkey, **over):
    return H.mint(H.std_claims(cnf={"jkt": pkey.thumbprint()}, **over), keys.rsa, "RS256")


def dget(h, path, token, prf, scheme="DPoP", headers=None):
    hdrs = dict(headers or {})
    if prf is not None:
        hdrs["DPoP"] = prf
    return get(h, path, token, headers=hdrs, scheme=scheme)


def challenges(resp):
    """[(scheme, {param: value}), ...] from every WWW-Authenticate line."""
    out = []
    for v in resp.raw._original_response.msg.get_all("WWW-Authenticate") or []:
        scheme, _, rest = v.strip().partition(" ")
        out.append((scheme, dict(H.WWW_AUTH_PARAM.findall(rest))))
    return out


def assert_dpop_refused(resp, error="invalid_dpop_proof"):
    assert resp.status_code == 401, (resp.status_code, resp.text[:300])
    ch = dict(challenges(resp))
    assert "DPoP" in ch, challenges(resp)
    assert ch["DPoP"].get("error") == error, ch
    assert ch["DPoP"].get("algs"), ch
    if "Bearer" in ch:
        assert "error" not in ch["Bearer"], ch


def url(h, path):
    return h.url(path)


# ---------------------------------------------------------------- accepted

def test_valid_proof(srv, keys, pkey):
    t = bound_token(keys, pkey)
    r = dget(srv, "/dp/env", t, proof(pkey, "GET", url(srv, "/dp/env"), t))
    assert env_of(r)["REMOTE_USER"] == "alice"
    # the same token again (token cache) with a fresh proof
    r = dget(srv, "/dp/env", t, proof(pkey, "GET", url(srv, "/dp/env"), t))
    assert r.status_code == 200
    r = dget(srv, "/dpr/env", t, proof(pkey, "GET", url(srv, "/dpr/env"), t))
    assert r.status_code == 200


def test_known_proof_key_still_verifies_every_proof(srv, keys, pkey, expect_log):
    """The module imports a client's proof key once and keeps it, found by
    the proof's header bytes: a proof that repeats a known key's header
    exactly but was signed by another key is refused all the same (its
    signature is checked on every request), and the next genuine proof
    passes."""
    expect_log(PROOF_REJECTED % "bad_signature")
    t = bound_token(keys, pkey)
    good = proof(pkey, "GET", url(srv, "/dpr/env"), t)
    assert dget(srv, "/dpr/env", t, good).status_code == 200
    other = jwk.JWK.generate(kty="EC", crv="P-256")
    forged = proof(other, "GET", url(srv, "/dpr/env"), t,
                   jwk_dict=pkey.export_public(as_dict=True))
    assert forged.split(".")[0] == good.split(".")[0]      # the same header, byte for byte
    assert_dpop_refused(dget(srv, "/dpr/env", t, forged))
    assert dget(srv, "/dpr/env", t, proof(pkey, "GET", url(srv, "/dpr/env"), t)).status_code == 200


@pytest.mark.parametrize("variant", ["case", "default-port-less", "query", "fragment", "dots"])
def test_htu_normalisation_accepted(srv, keys, pkey, variant):
    t = bound_token(keys, pkey)
    port = srv.port
    htu = {"case": "HTTP://127.0.0.1:%d/dp/env" % port,
           "default-port-less": "http://127.0.0.1:%d/dp/env" % port,
           "query": "http://127.0.0.1:%d/dp/env?x=1" % port,
           "fragment": "http://127.0.0.1:%d/dp/env#frag" % port,
           "dots": "http://127.0.0.1:%d/dp/./x/../env" % port}[variant]
    path = "/dp/env?x=1" if variant == "query" else "/dp/env"
    r = dget(srv, path, t, proof(pkey, "GET", htu, t))
    assert r.status_code == 200, (r.status_code, r.headers)


def test_base_url(srv, keys, pkey, expect_log):
    """AuthJWKSDPoPBaseURL: the external URL replaces scheme, host and port,
    and its path is a prefix of the request path."""
    expect_log(PROOF_REJECTED % "bad_claim: proof htu differs", required=True)
    t = bound_token(keys, pkey)
    ok = proof(pkey, "GET", "https://api.example.com/ext/dpbase/env", t)
    assert dget(srv, "/dpbase/env", t, ok).status_code == 200
    local = proof(pkey, "GET", url(srv, "/dpbase/env"), t)
    assert_dpop_refused(dget(srv, "/dpbase/env", t, local))


def test_other_algs(srv, keys):
    ed = jwk.JWK.generate(kty="OKP", crv="Ed25519")
    rsa = jwk.JWK.generate(kty="RSA", size=2048)
    for k, alg in ((ed, "EdDSA"), (rsa, "RS256"), (rsa, "PS256")):
        t = bound_token(keys, k)
        r = dget(srv, "/dp/env", t, proof(k, "GET", url(srv, "/dp/env"), t, alg=alg))
        assert r.status_code == 200, (alg, r.headers)


def test_unbound_bearer_allowed_under_allow(srv, keys):
    t = H.mint(H.std_claims(), keys.rsa, "RS256")
    assert get(srv, "/dp/env", t).status_code == 200
    assert get(srv, "/plain/env", t).status_code == 200


def test_dpop_off_ignores_dpop_scheme(srv, keys, pkey):
    """Without AuthJWKSDPoP, Authorization: DPoP is not ours: no credentials."""
    t = bound_token(keys, pkey)
    r = dget(srv, "/plain/env", t, proof(pkey, "GET", url(srv, "/plain/env"), t))
    assert r.status_code == 401
    assert [s for s, _ in challenges(r)] == ["Bearer"]


# ---------------------------------------------------------------- refused proofs

def test_replay_refused(srv, keys, pkey, expect_log):
    expect_log(PROOF_REJECTED % "replay", required=True)
    t = bound_token(keys, pkey)
    p = proof(pkey, "GET", url(srv, "/dp/env"), t)
    assert dget(srv, "/dp/env", t, p).status_code == 200
    for _ in range(3):
        assert_dpop_refused(dget(srv, "/dp/env", t, p))
    # the same jti under a proof for another location of the server: still a replay
    jti = uuid.uuid4().hex
    p1 = proof(pkey, "GET", url(srv, "/dp/env"), t, claims={"jti": jti})
    p2 = proof(pkey, "GET", url(srv, "/dpr/env"), t, claims={"jti": jti})
    assert dget(srv, "/dp/env", t, p1).status_code == 200
    assert_dpop_refused(dget(srv, "/dpr/env", t, p2))


CASES = {
    # name: (proof builder, log regex)
    "wrong htm": (lambda s, k, t: proof(k, "POST", url(s, "/dp/env"), t),
                  "bad_claim: proof htm differs"),
    "wrong htu path": (lambda s, k, t: proof(k, "GET", url(s, "/dp/other"), t),
                       "bad_claim: proof htu differs"),
    "wrong htu port": (lambda s, k, t: proof(k, "GET", "http://127.0.0.1:1/dp/env", t),
                       "bad_claim: proof htu differs"),
    "wrong htu scheme": (lambda s, k, t: proof(k, "GET", "https://127.0.0.1:%d/dp/env" % s.port, t),
                         "bad_claim: proof htu differs"),
    "htu not http": (lambda s, k, t: proof(k, "GET", "ftp://127.0.0.1/dp/env", t),
                     "bad_claim: proof htu is not"),
    "stale iat": (lambda s, k, t: proof(k, "GET", url(s, "/dp/env"), t,
                                        claims={"iat": H.now() - 40}), "too_old"),
    "future iat": (lambda s, k, t: proof(k, "GET", url(s, "/dp/env"), t,
                                         claims={"iat": H.now() + 30}), "issued_in_future"),
    "no iat": (lambda s, k, t: proof(k, "GET", url(s, "/dp/env"), t, claims={"iat": None}),
               "missing_claim"),
    "no jti": (lambda s, k, t: proof(k, "GET", url(s, "/dp/env"), t, claims={"jti": None}),
               "missing_claim"),
    "wrong ath": (lambda s, k, t: proof(k, "GET", url(s, "/dp/env"), t + "x"),
                  "bad_claim: proof ath"),
    "no ath": (lambda s, k, t: proof(k, "GET", url(s, "/dp/env"), None), "missing_claim"),
    "typ JWT": (lambda s, k, t: proof(k, "GET", url(s, "/dp/env"), t, header={"typ": "JWT"}),
                "bad_type"),
    "no typ": (lambda s, k, t: proof(k, "GET", url(s, "/dp/env"), t, header={"typ": None}),
               "bad_type"),
    "no jwk": (lambda s, k, t: proof(k, "GET", url(s, "/dp/env"), t, header={"jwk": None}),
               "bad_key"),
    "private key in jwk": (lambda s, k, t: proof(k, "GET", url(s, "/dp/env"), t,
                                                 jwk_dict=json.loads(k.export_private())),
                           "bad_key: proof jwk holds the private key member d"),
    "signed by another key": (lambda s, k, t: proof(jwk.JWK.generate(kty="EC", crv="P-256"),
                                                    "GET", url(s, "/dp/env"), t,
                                                    jwk_dict=k.export_public(as_dict=True)),
                              "bad_signature"),
    "HS256": (lambda s, k, t: _hs256_proof(k, url(s, "/dp/env"), t), "alg_not_allowed"),
    "none": (lambda s, k, t: _none_proof(k, url(s, "/dp/env"), t), "alg_not_allowed"),
    "garbage": (lambda s, k, t: "not-a-jws", "malformed"),
}


def _hs256_proof(k, htu, t):
    secret = jwk.JWK.generate(kty="oct", size=256)
    return proof(secret, "GET", htu, t, alg="HS256", jwk_dict=secret.export(as_dict=True))


def _none_proof(k, htu, t):
    hdr = {"typ": "dpop+jwt", "alg": "none", "jwk": k.export_public(as_dict=True)}
    c = {"jti": uuid.uuid4().hex, "htm": "GET", "htu": htu, "iat": H.now(),
         "ath": H.b64u(__import__("hashlib").sha256(t.encode()).digest())}
    return H.remember("%s.%s." % (H.b64u(json.dumps(hdr)), H.b64u(json.dumps(c))))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_proof(srv, keys, pkey, expect_log, name):
    build, rx = CASES[name]
    expect_log(PROOF_REJECTED % rx, required=True)
    t = bound_token(keys, pkey)
    r = dget(srv, "/dp/env", t, build(srv, pkey, t))
    assert_dpop_refused(r)


def test_proof_alg_outside_allowlist(srv, keys, pkey, expect_log):
    expect_log(PROOF_REJECTED % "alg_not_allowed", required=True)
    t = bound_token(keys, pkey)
    r = dget(srv, "/dprs/env", t, proof(pkey, "GET", url(srv, "/dprs/env"), t))
    assert_dpop_refused(r)
    assert dict(challenges(r))["DPoP"]["algs"] == "RS256 EdDSA"


def test_proof_key_not_token_key(srv, keys, pkey, expect_log):
    expect_log(PROOF_REJECTED % "bad_key: proof key is not the key the token is bound",
               required=True)
    other = jwk.JWK.generate(kty="EC", crv="P-256")
    t = bound_token(keys, pkey)
    r = dget(srv, "/dp/env", t, proof(other, "GET", url(srv, "/dp/env"), t))
    assert_dpop_refused(r)


def test_two_proofs(srv, keys, pkey, expect_log):
    expect_log(PROOF_REJECTED % "more than one DPoP header", required=True)
    t = bound_token(keys, pkey)
    p1 = proof(pkey, "GET", url(srv, "/dp/env"), t)
    p2 = proof(pkey, "GET", url(srv, "/dp/env"), t)
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=TIMEOUT)
    try:
        c.putrequest("GET", "/dp/env")
        c.putheader("Authorization", "DPoP " + t)
        c.putheader("DPoP", p1)
        c.putheader("DPoP", p2)
        c.endheaders()
        r = c.getresponse()
        r.read()
        assert r.status == 401
        chs = r.msg.get_all("WWW-Authenticate")
        assert any(v.startswith("DPoP") and 'error="invalid_dpop_proof"' in v for v in chs), chs
    finally:
        c.close()


def test_no_proof(srv, keys, pkey, expect_log):
    expect_log(PROOF_REJECTED % "no DPoP header", required=True)
    t = bound_token(keys, pkey)
    assert_dpop_refused(dget(srv, "/dp/env", t, None))


# ---------------------------------------------------------------- refused tokens

def test_bound_token_as_bearer(srv, keys, pkey, expect_log):
    expect_log(TOKEN_REJECTED % r"DPoP: DPoP-bound token \(cnf.jkt\) presented as a bearer",
               required=True)
    t = bound_token(keys, pkey)
    r = get(srv, "/dp/env", t)
    assert r.status_code == 401
    ch = dict(challenges(r))
    assert ch["Bearer"]["error"] == "invalid_token", ch
    assert "error" not in ch["DPoP"], ch
    # a proof alongside changes nothing: the scheme says bearer
    r = dget(srv, "/dp/env", t, proof(pkey, "GET", url(srv, "/dp/env"), t), scheme="Bearer")
    assert r.status_code == 401


def test_unbound_token_with_dpop_scheme(srv, keys, pkey, expect_log):
    expect_log(TOKEN_REJECTED % "DPoP: token sent with the DPoP scheme has no cnf.jkt",
               required=True)
    t = H.mint(H.std_claims(), keys.rsa, "RS256")
    r = dget(srv, "/dp/env", t, proof(pkey, "GET", url(srv, "/dp/env"), t))
    assert_dpop_refused(r, error="invalid_token")


def test_require_refuses_bearer(srv, keys, expect_log):
    expect_log(TOKEN_REJECTED % "DPoP: AuthJWKSDPoP require", required=True)
    t = H.mint(H.std_claims(), keys.rsa, "RS256")
    r = get(srv, "/dpr/env", t)
    assert r.status_code == 401
    assert [s for s, _ in challenges(r)] == ["DPoP"]


def test_invalid_token_with_dpop_scheme(srv, keys, pkey, expect_log):
    expect_log(r"token rejected: expired", required=True)
    t = H.mint(H.std_claims(cnf={"jkt": pkey.thumbprint()}, exp=H.now() - 100), keys.rsa, "RS256")
    r = dget(srv, "/dp/env", t, proof(pkey, "GET", url(srv, "/dp/env"), t))
    assert_dpop_refused(r, error="invalid_token")


# ---------------------------------------------------------------- challenges

def test_challenges_without_credentials(srv):
    r = get(srv, "/dp/env")
    assert r.status_code == 401
    ch = challenges(r)
    assert [s for s, _ in ch] == ["Bearer", "DPoP"], ch
    d = dict(ch)
    assert d["DPoP"]["algs"] == " ".join(H.ALL_ALGS), d
    assert d["DPoP"]["realm"] == "api"
    assert "error" not in d["Bearer"] and "error" not in d["DPoP"]
    r = get(srv, "/dpr/env")
    assert [s for s, _ in challenges(r)] == ["DPoP"]
    r = get(srv, "/plain/env")
    assert [s for s, _ in challenges(r)] == ["Bearer"]


# ---------------------------------------------------------------- server nonces

def assert_use_nonce(r):
    assert r.status_code == 401, (r.status_code, r.headers)
    ch = dict(challenges(r))
    assert list(ch) == ["DPoP"], ch
    assert ch["DPoP"]["error"] == "use_dpop_nonce", ch
    n = r.headers.get("DPoP-Nonce")
    assert n and re.fullmatch(r"[A-Za-z0-9_-]{32}", n), r.headers
    return n


def test_nonce_flow(srv, keys, pkey):
    t = bound_token(keys, pkey)
    u = url(srv, "/dpn/env")
    n = assert_use_nonce(dget(srv, "/dpn/env", t, proof(pkey, "GET", u, t)))
    r = dget(srv, "/dpn/env", t, proof(pkey, "GET", u, t, claims={"nonce": n}))
    assert r.status_code == 200, r.headers
    assert "DPoP-Nonce" not in r.headers            # still young: no new one offered
    # the same nonce serves many proofs (replay protection is the jti's job)
    r = dget(srv, "/dpn/env", t, proof(pkey, "GET", u, t, claims={"nonce": n}))
    assert r.status_code == 200
    # nonces are server-wide: one issued here works on another location
    m = assert_use_nonce(dget(srv, "/dpn2/env", t, proof(pkey, "GET", url(srv, "/dpn2/env"), t)))
    assert dget(srv, "/dpn/env", t, proof(pkey, "GET", u, t, claims={"nonce": m})).status_code == 200


@pytest.mark.parametrize("bad", ["forged", "flipped", "number", "empty"])
def test_nonce_refused(srv, keys, pkey, bad, expect_log):
    t = bound_token(keys, pkey)
    u = url(srv, "/dpn/env")
    n = assert_use_nonce(dget(srv, "/dpn/env", t, proof(pkey, "GET", u, t)))
    value = {"forged": H.b64u(b"\0" * 24), "flipped": n[:-2] + ("AA" if n[-2:] != "AA" else "BB"),
             "number": 5, "empty": ""}[bad]
    r = dget(srv, "/dpn/env", t, proof(pkey, "GET", u, t, claims={"nonce": value}))
    if bad == "number":
        expect_log(PROOF_REJECTED % "bad_claim: proof nonce is not a string", required=True)
        assert_dpop_refused(r)
    else:
        assert_use_nonce(r)


def test_nonce_expires(srv, keys, pkey):
    t = bound_token(keys, pkey)
    u = url(srv, "/dpn2/env")
    n = assert_use_nonce(dget(srv, "/dpn2/env", t, proof(pkey, "GET", u, t)))
    time.sleep(1.2)
    r = dget(srv, "/dpn2/env", t, proof(pkey, "GET", u, t, claims={"nonce": n}))
    assert r.status_code == 200
    if "DPoP-Nonce" in r.headers:                  # past half its life: the next one comes along
        assert r.headers["DPoP-Nonce"] != n
    time.sleep(2.2)
    n2 = assert_use_nonce(dget(srv, "/dpn2/env", t, proof(pkey, "GET", u, t, claims={"nonce": n})))
    assert n2 != n
    assert dget(srv, "/dpn2/env", t, proof(pkey, "GET", u, t, claims={"nonce": n2})).status_code == 200


# ---------------------------------------------------------------- config

@pytest.mark.parametrize("line,msg", [
    ("AuthJWKSDPoP maybe", "not off, allow or require"),
    ("AuthJWKSDPoPWindow 0", "AuthJWKSDPoPWindow: '0' is not a whole number from 1 to 3600"),
    ("AuthJWKSDPoPNonce 1", "AuthJWKSDPoPNonce: '1' is not a whole number from 2 to 86400"),
    ("AuthJWKSDPoPNonce on", "whole number from 2 to 86400"),
    ("AuthJWKSDPoPBaseURL ftp://x", "absolute http"),
    ("AuthJWKSDPoPBaseURL https://x/a?b", "query or fragment"),
])
def test_bad_config(line, msg):
    r = H.configtest("<Location /x>\n    AuthType jwks\n    %s\n</Location>\n" % line)
    assert r.returncode != 0
    assert msg in r.stderr + r.stdout, r.stderr


# ---------------------------------------------------------------- replay across processes

PID_LOG = 'CustomLog "{root}/logs/pid_log" "%P %>s %U"\n'


def pid_log(h):
    try:
        with open(h.root + "/logs/pid_log") as f:
            return [l.split() for l in f.read().splitlines()]
    except OSError:
        return []


def test_replay_across_processes(make_httpd, jwks_server, keys, pkey, expect_log):
    """prefork, every child serves one connection and exits: the replay table
    is shared by all children and outlives each of them, and a graceful
    restart keeps it."""
    expect_log(PROOF_REJECTED % "replay", required=True)
    h = make_httpd("", mpm="prefork", start=False)
    extra = conf(jwks_server.url()) + PID_LOG.format(root=h.root) + \
        "MaxConnectionsPerChild 1\nStartServers 3\nMinSpareServers 3\nMaxSpareServers 6\n"
    h.write_conf(extra)
    h.start()
    t = bound_token(keys, pkey)
    proofs = [proof(pkey, "GET", url(h, "/dp/env"), t) for _ in range(3)]
    for p in proofs:
        s = requests.Session()
        try:
            r = s.get(h.url("/dp/env"), headers={"Authorization": "DPoP " + t, "DPoP": p},
                      timeout=TIMEOUT)
        finally:
            s.close()
        assert r.status_code == 200, r.headers
    for i in range(12):
        p = proofs[i % 3]
        with requests.Session() as s:
            r = s.get(h.url("/dp/env"), headers={"Authorization": "DPoP " + t, "DPoP": p,
                                                 "Connection": "close"}, timeout=TIMEOUT)
        assert r.status_code == 401, (i, r.status_code)
    H.wait_until(lambda: len(pid_log(h)) >= 15, 10, 0.1, "access log")
    pids = {l[0] for l in pid_log(h) if l[2] == "/dp/env"}
    assert len(pids) >= 4, pids              # many processes, one table
    # graceful restart: the table lives in the parent and survives it
    p = proof(pkey, "GET", url(h, "/dp/env"), t)
    assert dget(h, "/dp/env", t, p).status_code == 200
    h.graceful()
    assert_dpop_refused(dget(h, "/dp/env", t, p))
    assert dget(h, "/dp/env", t, proof(pkey, "GET", url(h, "/dp/env"), t)).status_code == 200


def test_concurrent_replay_only_one_wins(make_httpd, jwks_server, keys, pkey, expect_log):
    """The same proof sent at once on many connections to many children:
    exactly one is accepted."""
    import concurrent.futures as cf
    expect_log(PROOF_REJECTED % "replay", required=True)
    h = make_httpd("", mpm="prefork", start=False)
    h.write_conf(conf(jwks_server.url()) + "StartServers 6\nMinSpareServers 6\n"
                 "MaxSpareServers 8\n")
    h.start()
    t = bound_token(keys, pkey)
    # warm the token cache of every child is not needed: the replay check is after the token
    for _ in range(3):
        p = proof(pkey, "GET", url(h, "/dp/env"), t)

        def one(_):
            with requests.Session() as s:
                return s.get(h.url("/dp/env"), headers={"Authorization": "DPoP " + t, "DPoP": p,
                                                        "Connection": "close"},
                             timeout=TIMEOUT).status_code

        with cf.ThreadPoolExecutor(8) as ex:
            codes = list(ex.map(one, range(8)))
        assert sorted(codes) == [200] + [401] * 7, codes


def test_mutex_line_of_earlier_versions_still_parses(make_httpd, jwks_server, keys, pkey,
                                                     expect_log):
    """The replay table locks itself (process-shared locks in its shared
    memory, whatever the server's default Mutex mechanism): a `Mutex ...
    auth-jwks-dpop` line written for an earlier version is still accepted,
    and replays are still refused across children."""
    expect_log(PROOF_REJECTED % "replay", required=True)
    h = make_httpd("", mpm="prefork", start=False)
    h.write_conf(conf(jwks_server.url()) + "Mutex fcntl:%s/run auth-jwks-dpop\n" % h.root
                 + "StartServers 3\nMinSpareServers 3\nMaxSpareServers 4\n"
                 "MaxConnectionsPerChild 1\n")
    h.start()
    t = bound_token(keys, pkey)
    p = proof(pkey, "GET", url(h, "/dp/env"), t)
    assert dget(h, "/dp/env", t, p).status_code == 200
    for _ in range(4):           # each on a fresh connection, so a fresh child
        with requests.Session() as s:
            r = s.get(h.url("/dp/env"), headers={"Authorization": "DPoP " + t, "DPoP": p,
                                                 "Connection": "close"}, timeout=TIMEOUT)
        assert_dpop_refused(r)


def test_concurrent_threads_event_mpm(srv, keys, pkey, expect_log):
    """event MPM: many threads of one process share the table too."""
    import concurrent.futures as cf
    expect_log(PROOF_REJECTED % "replay", required=True)
    t = bound_token(keys, pkey)
    u = url(srv, "/dp/env")
    fresh = [proof(pkey, "GET", u, t) for _ in range(24)]
    same = proof(pkey, "GET", u, t)

    def one(p):
        with requests.Session() as s:
            return s.get(srv.url("/dp/env"), headers={"Authorization": "DPoP " + t, "DPoP": p},
                         timeout=TIMEOUT).status_code

    with cf.ThreadPoolExecutor(8) as ex:
        assert set(ex.map(one, fresh)) == {200}
        codes = list(ex.map(one, [same] * 16))
    assert sorted(codes) == [200] + [401] * 15, codes


def test_forward_token_off_removes_dpop_token(make_httpd, jwks_server, echo_backend, keys, pkey):
    h = make_httpd(loc("dp", "    AuthJWKSDPoP allow\n    AuthJWKSForwardToken Off").replace(
        "{jwks}", jwks_server.url()), raw_backend_port=echo_backend.port)
    t = bound_token(keys, pkey)
    r = dget(h, "/dp/raw", t, proof(pkey, "GET", url(h, "/dp/raw"), t))
    assert r.status_code == 200
    sent = {k.lower(): v for k, v in r.json()["headers"]}
    assert "authorization" not in sent, sent.get("authorization", "")[:12]


def test_one_key_cannot_fill_the_replay_table(make_httpd, jwks_server, keys, pkey, expect_log):
    """One client chooses its jti values and knows its own key: it holds only
    its share of the replay table, evicting its own entries past that, and
    another client is still served (one bucket of 8 here, so every proof of
    both lands in the same bucket)."""
    expect_log(PROOF_REJECTED % "replay", required=True)
    h = make_httpd("AuthJWKSDPoPReplayCache 8\n" + conf(jwks_server.url()))
    t = bound_token(keys, pkey)
    sent = []
    for i in range(20):
        p = proof(pkey, "GET", url(h, "/dp/env"), t)
        r = dget(h, "/dp/env", t, p)
        assert r.status_code == 200, (i, r.status_code, r.headers.get("Retry-After"))
        sent.append(p)
    other = jwk.JWK.generate(kty="EC", crv="P-256")
    t2 = bound_token(keys, other)
    for i in range(3):
        r = dget(h, "/dp/env", t2, proof(other, "GET", url(h, "/dp/env"), t2))
        assert r.status_code == 200, (i, r.status_code)
    # the flooding key's newest proof is still remembered
    assert_dpop_refused(dget(h, "/dp/env", t, sent[-1]))


def _fake_rsa_proof(htu, token, nbytes):
    """A proof carrying an RSA jwk of nbytes modulus bytes (no key pair behind
    it; the signature is garbage) and that jwk's RFC 7638 thumbprint."""
    import hashlib
    import os as _os
    n = H.b64u(b"\xc5" + _os.urandom(nbytes - 2) + b"\x01")
    jwk_d = {"kty": "RSA", "e": "AQAB", "n": n}
    jkt = H.b64u(hashlib.sha256(json.dumps(jwk_d, sort_keys=True, separators=(",", ":"))
                                .encode()).digest())
    hdr = {"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk_d}
    c = {"jti": uuid.uuid4().hex, "htm": "GET", "htu": htu, "iat": H.now(),
         "ath": H.b64u(hashlib.sha256(token.encode()).digest())}
    prf = "%s.%s.%s" % (H.b64u(json.dumps(hdr)), H.b64u(json.dumps(c)),
                        H.b64u(_os.urandom(nbytes)))
    return H.remember(prf), jkt


def test_proof_key_checked_against_cnf_jkt_before_signature(srv, keys, pkey, expect_log):
    """A 16384-bit RSA proof key that is not the token's: refused on its
    thumbprint, with no signature work (the log says so, not bad_signature)."""
    expect_log(PROOF_REJECTED % "bad_key: proof key is not the key the token is bound",
               required=True)
    t = bound_token(keys, pkey)
    prf, _ = _fake_rsa_proof(url(srv, "/dp/env"), t, 2048)
    start = srv.log_size()
    assert_dpop_refused(dget(srv, "/dp/env", t, prf))
    assert "bad_signature" not in srv.log_since(start)


def test_proof_key_size_capped(srv, keys, expect_log):
    """A token bound to a huge RSA key: the proof key is refused on its size
    before it is imported or any signature checked."""
    expect_log(PROOF_REJECTED % "bad_key: proof jwk is an RSA key of 16384 bits, over the cap",
               required=True)
    expect_log(PROOF_REJECTED % "bad_key: proof jwk is an RSA key of 8192 bits, over the cap",
               required=True)
    for nbytes in (2048, 1024):
        prf0, jkt = _fake_rsa_proof(url(srv, "/dp/env"), "x", nbytes)
        t = H.mint(H.std_claims(cnf={"jkt": jkt}), keys.rsa, "RS256")
        # the same key again, with this token's ath
        import hashlib
        hdr = json.loads(H.b64u_decode(prf0.split(".")[0]))
        c = {"jti": uuid.uuid4().hex, "htm": "GET", "htu": url(srv, "/dp/env"), "iat": H.now(),
             "ath": H.b64u(hashlib.sha256(t.encode()).digest())}
        prf = H.remember("%s.%s.%s" % (H.b64u(json.dumps(hdr)), H.b64u(json.dumps(c)),
                                       prf0.split(".")[2]))
        start = srv.log_size()
        assert_dpop_refused(dget(srv, "/dp/env", t, prf))
        assert "bad_signature" not in srv.log_since(start)


def test_forward_token_off_error_on_dpop_challenge(make_httpd, jwks_server, keys, pkey,
                                                    expect_log):
    """allow + ForwardToken Off: the header is gone when the challenge is made;
    the error still goes on the scheme the client used (RFC 9449 §7.1)."""
    expect_log(r"token rejected: expired", required=True)
    expect_log(r"bad bearer request: malformed Authorization", required=True)
    h = make_httpd(loc("dp", "    AuthJWKSDPoP allow\n    AuthJWKSForwardToken Off").replace(
        "{jwks}", jwks_server.url()))
    t = H.mint(H.std_claims(cnf={"jkt": pkey.thumbprint()}, exp=H.now() - 100), keys.rsa, "RS256")
    r = dget(h, "/dp/env", t, proof(pkey, "GET", url(h, "/dp/env"), t))
    assert_dpop_refused(r, error="invalid_token")
    # a malformed DPoP credential: invalid_request on the DPoP challenge too
    r = dget(h, "/dp/env", t + " x", proof(pkey, "GET", url(h, "/dp/env"), t))
    assert r.status_code == 400, r.status_code
    ch = dict(challenges(r))
    assert ch["DPoP"].get("error") == "invalid_request", ch
    assert "error" not in ch["Bearer"], ch
    # and a bearer token's error stays on Bearer
    t2 = H.mint(H.std_claims(exp=H.now() - 100), keys.rsa, "RS256")
    r = get(h, "/dp/env", t2)
    assert r.status_code == 401
    ch = dict(challenges(r))
    assert ch["Bearer"].get("error") == "invalid_token", ch
    assert "error" not in ch["DPoP"], ch
