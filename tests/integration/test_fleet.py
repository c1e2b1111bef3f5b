"""One fleet, one trust (issue 15): AuthJWKSFleetKey authenticates every
shared copy of a JWKS (socache memcache/redis and AuthJWKSCacheDir), a
per-server key does the same without it, and DPoP nonces and replay
protection span the servers of a fleet.

Two real httpd servers, a real memcached / redis on 127.0.0.1, tokens and
proofs minted with jwcrypto; records are built and MAC'd here from the
specification (HKDF-SHA256, salt "mod_auth_jwks"; record =
"AJW2 " + hex HMAC-SHA256 + "\\n" + compact JSON), so the positive controls
prove the test speaks the format the module checks."""
import hashlib
import hmac
import json
import os
import pwd
import re
import shutil
import stat
import tempfile
import threading
import time
import types
import uuid

import pytest
from jwcrypto import jwk

import harness as H
from conftest import REJECTED, get, assert_invalid_token
from test_dpop import PROOF_REJECTED, assert_dpop_refused, assert_use_nonce, dget, proof
from test_socache import CacheServer, HAVE_MC, HAVE_RD, cache_key

ISS = "https://issuer.test"
HTTPD_USER = "www-data"
FETCH_FAIL = r"\[auth_jwks:(warn|error)\].*(refresh of|no keys from) http://127\.0\.0\.1:%d/"
NO_MAC = r"record without a MAC"
BAD_MAC = r"record MAC does not verify"
# the refusal of a shared copy: where it came from, then why
REFUSED_SC = r"\[auth_jwks:warn\].*shared copy of %s refused: socache %s, key auth_jwks:%s: (%s)"
REFUSED_FILE = r"\[auth_jwks:warn\].*shared copy of %s refused: %s/%s\.json: (%s)"
SOCACHE_ERR = r"socache_(memcache|redis):(error|crit)"
# a proof another server of the fleet accepted (the local table says "replay" alone)
FLEET_REPLAY = PROOF_REJECTED % r"replay\b.*\bfleet\b"
BASE = "https://api.fleet.test"          # AuthJWKSDPoPBaseURL of every fleet server


# ---------------------------------------------------------------- material

@pytest.fixture(scope="module")
def attacker():
    """The key an attacker adds to a shared copy."""
    return jwk.JWK.generate(kty="EC", crv="P-256", kid="attacker-ec256")


def private_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)        # traversable by the httpd user (cache dirs live below)
    return d


@pytest.fixture
def keydir():
    """A directory for key files. Ask for it (or fleet_key) before make_httpd:
    httpd -k stop reads the configuration, key file included."""
    d = private_dir("ajw-fleetkey-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def new_key(keydir, name="fleet.key", **kw):
    path = os.path.join(keydir, name)
    return types.SimpleNamespace(path=path, secret=H.write_fleet_key(path, **kw))


@pytest.fixture
def fleet_key(keydir):
    return new_key(keydir)


@pytest.fixture
def idp(keys):
    s = H.JWKSServer()
    s.set(keys.jwks())
    yield s
    s.close()


@pytest.fixture
def remote_cache(request):
    """memcached or redis (request.param); ask for it before make_httpd so
    that httpd stops before the cache."""
    kind = request.param
    if kind == "memcache" and not HAVE_MC:
        pytest.skip("memcached or mod_socache_memcache.so not installed")
    if kind == "redis" and not HAVE_RD:
        pytest.skip("redis-server or mod_socache_redis.so not installed")
    c = CacheServer(kind)
    yield c
    c.close()


def fleet_conf(url, key_file=None, socache=None, cache_dir="off", wait=10, dpop=False):
    """Server config: optional AuthJWKSFleetKey, AuthJWKSCacheDir (None: the
    default under DefaultRuntimeDir) and AuthJWKSCacheSocache (a CacheServer),
    /api (any valid token) and, with dpop, /dp (DPoP required) and /dpn
    (DPoP with nonces), both with the fleet's external URL as base."""
    out = ""
    if socache is not None:
        out += "LoadModule socache_%s_module %s/mod_socache_%s.so\n" % (
            socache.kind, H.MODDIR, socache.kind)
    if key_file:
        out += 'AuthJWKSFleetKey "%s"\n' % key_file
    if cache_dir:
        out += 'AuthJWKSCacheDir "%s"\n' % cache_dir
    if socache is not None:
        out += "AuthJWKSCacheSocache %s\n" % socache.spec()
    common = """    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSRefreshInterval 5
    AuthJWKSMinRefreshInterval 1
    AuthJWKSFetchTimeout 2
    AuthJWKSStartupWait %d
""" % (url, ISS, wait)
    out += "<Location /api>\n%s    Require valid-user\n</Location>\n" % common
    if dpop:
        for name, extra in (("dp", ""), ("dpn", "    AuthJWKSDPoPNonce 300\n")):
            out += ("<Location /%s>\n%s    AuthJWKSDPoP require\n    AuthJWKSDPoPBaseURL %s\n"
                    "%s    Require valid-user\n</Location>\n") % (name, common, BASE, extra)
    return out


def tok(key, alg="RS256", **over):
    return H.mint(H.std_claims(iss=ISS, **over), key, alg)


def rx_url(url):
    return re.escape(url)


def record_hex(url, ca_file=None):
    return cache_key(url, ca_file).split(":", 1)[1]


def assert_v2_record(value, secret, url, keys):
    """value is the v2 record of url holding keys' JWKS, MAC'd under secret."""
    assert value is not None, "no record"
    assert value.startswith(H.RECORD_MAGIC), value[:100]
    mac, body = H.split_record(value)
    assert H.record_verifies(secret, value), (
        "record MAC %s is not HMAC-SHA256(HKDF(secret, 'shared record v2'), J)" % mac[:16])
    rec = json.loads(body)
    assert rec["v"] == 2 and rec["url"] == url, rec.keys()
    assert isinstance(rec["fetched"], int) and abs(rec["fetched"] / 1e6 - time.time()) < 600, rec
    assert json.loads(rec["body"]) == keys.jwks()
    return rec


def forged_records(real_value, fleet_secret, attacker_key):
    """The variants of a forged record, from the real (v2) record: the
    attacker's key added, fetched now. name -> (bytes, refusal reason regex
    or None when the record must be accepted)."""
    mac, body = H.split_record(real_value)
    rec = json.loads(body)
    doc = json.loads(rec["body"])
    pub = attacker_key.export_public(as_dict=True)
    pub["use"] = "sig"
    doc["keys"].append(pub)
    rec["body"] = json.dumps(doc)
    rec["fetched"] = int(time.time() * 1e6)
    j2 = json.dumps(rec, separators=(",", ":")).encode()
    v1 = dict(rec, v=1)
    j1 = json.dumps(v1, separators=(",", ":")).encode()
    return {
        # (a) as the previous version (or an attacker) writes it: JSON, no MAC
        "v1_no_mac": (j1, NO_MAC),
        # (b) the MAC of another key
        "other_key_mac": (H.seal_record(os.urandom(32).hex().encode(), j2), BAD_MAC),
        # (c) the v2 JSON with the MAC line removed
        "mac_line_removed": (j2, NO_MAC),
        # the real record's MAC line kept, the JSON behind it altered
        "real_mac_altered_json": (mac.join([H.RECORD_MAGIC, b"\n"]) + j2, BAD_MAC),
        # a MAC line with no MAC in it
        "empty_mac": (H.RECORD_MAGIC + b"\n" + j2, NO_MAC + "|" + BAD_MAC),
        # (d) positive control: the MAC of the real fleet key is accepted
        "valid_mac": (H.seal_record(fleet_secret, j2), None),
    }


VARIANTS = ["v1_no_mac", "other_key_mac", "mac_line_removed", "real_mac_altered_json",
            "empty_mac", "valid_mac"]


def poke_until_refused(h, evil, rx, timeout=20):
    """Send the attacker's token to h (each one kicks a refresh, which reads
    the shared copy) until h logs the refusal rx; every answer must be 401."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        r = get(h, "/api/env", evil)
        n += 1
        assert r.status_code == 401, ("a token of the planted key was accepted", n,
                                      r.status_code, h.log_tail(10))
        if re.search(rx, h.log_text()):
            return n
        if time.monotonic() > deadline:
            raise AssertionError("no refusal matching %r in %s after %d requests:\n%s" % (
                rx, h.error_log, n, h.log_tail(15)))
        time.sleep(0.3)


def assert_refuses_evil_serves_real(h, evil, real):
    for _ in range(3):
        assert_invalid_token(get(h, "/api/env", evil))
    r = get(h, "/api/env", real)
    assert r.status_code == 200, (r.status_code, h.log_tail(10))


def assert_no_secret_in_log(h, *secrets):
    text = h.log_text()
    for s in secrets:
        for form in {s.decode("latin-1"), s.hex()}:
            assert form not in text, "key material in %s" % h.error_log
        for info in (H.INFO_RECORD, H.INFO_NONCE, H.INFO_JTI):
            d = H.derive_key(s, info)
            assert d.hex() not in text and d.hex().upper() not in text, (
                "a derived key in %s" % h.error_log)


# ---------------------------------------------------------------- forged records in the socache

@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("remote_cache", ["memcache", "redis"], indirect=True)
def test_forged_socache_record_refused_by_both_servers(fleet_key, remote_cache, idp, make_httpd,
                                                       keys, attacker, variant, expect_log):
    """Two servers share a fleet key and a memcache/redis. The IdP fails; the
    cache's record of the URL is replaced by the real one with the
    attacker's key added and a fresh fetch time, without a MAC, with another
    key's MAC, with the MAC line removed, with the real MAC over altered
    JSON, with an empty MAC: both servers log the refusal (where and why) and
    answer 401 to tokens of the attacker's key, 200 to real tokens; once the
    IdP is back, a refused record is replaced by a fetch. Positive control:
    the same record MAC'd under the fleet key is adopted by both servers."""
    url = idp.url()
    hexid = record_hex(url)
    expect_log(FETCH_FAIL % idp.port)
    expect_log(REJECTED % "no_matching_key")
    conf = fleet_conf(url, fleet_key.path, socache=remote_cache)
    a = make_httpd(conf, name="fleet-a")
    b = make_httpd(conf, name="fleet-b")
    real = tok(keys.rsa)
    for h in (a, b):
        assert get(h, "/api/env", real).status_code == 200, h.log_tail(10)
    value = H.wait_until(lambda: remote_cache.get(cache_key(url)), 10, 0.1, "the record in the cache")
    assert_v2_record(value, fleet_key.secret, url, keys)

    idp.mode = "500"          # nobody rewrites the cache while the forged record is read
    forged, why = forged_records(value, fleet_key.secret, attacker)[variant]
    remote_cache.set(cache_key(url), forged)
    evil = tok(attacker, "ES256", sub="mallory")
    if why is None:
        for h in (a, b):
            H.wait_until(lambda: get(h, "/api/env", evil).status_code == 200, 15, 0.3,
                         "the validly MAC'd record to be adopted by %s" % h.error_log)
            assert get(h, "/api/env", real).status_code == 200
            assert not re.search(r"shared copy of %s refused" % rx_url(url), h.log_text()), \
                h.log_tail(10)
        return
    rx = REFUSED_SC % (rx_url(url), remote_cache.kind, hexid, why)
    expect_log(rx, required=True)
    for h in (a, b):
        poke_until_refused(h, evil, rx)
        assert_refuses_evil_serves_real(h, evil, real)

    # The IdP back: a refused record is not adopted but replaced by a fetch.
    idp.mode = "ok"
    c0 = idp.count()
    remote_cache.set(cache_key(url), forged)

    def restored():
        r = get(a, "/api/env", evil)
        assert r.status_code == 401, (r.status_code, a.log_tail(10))
        v = remote_cache.get(cache_key(url))
        return idp.count() > c0 and v != forged and H.record_verifies(fleet_key.secret, v)
    H.wait_until(restored, 30, 0.5, "a fetch from the IdP to replace the forged record")
    assert_v2_record(remote_cache.get(cache_key(url)), fleet_key.secret, url, keys)
    for h in (a, b):
        assert_refuses_evil_serves_real(h, evil, real)
        assert_no_secret_in_log(h, fleet_key.secret)


@pytest.mark.parametrize("remote_cache", ["redis"], indirect=True)
def test_record_with_ca_file_named_and_bound_to_it(fleet_key, remote_cache, make_httpd, keys, ca,
                                                    attacker, expect_log):
    """An https IdP checked against AuthJWKSCAFile: the record is kept under
    auth_jwks:sha256(url "\\n" ca_file), its JSON names the CA file, and the
    MAC covers it. A record MAC'd under the fleet key but made for the system
    trust store (no ca_file), planted under that name, is refused."""
    idp = H.JWKSServer(tls=ca)
    idp.set(keys.jwks())
    h = None
    try:
        url = idp.url()
        conf = fleet_conf(url, fleet_key.path, socache=remote_cache).replace(
            "    AuthJWKSAudience api\n", "    AuthJWKSAudience api\n    AuthJWKSCAFile %s\n"
            % ca.ca_file)
        h = make_httpd(conf, name="fleet-ca")
        real = tok(keys.rsa)
        assert get(h, "/api/env", real).status_code == 200, h.log_tail(10)
        name = cache_key(url, ca.ca_file)
        value = H.wait_until(lambda: remote_cache.get(name), 10, 0.1, "the record")
        assert remote_cache.get(cache_key(url)) is None
        assert H.record_verifies(fleet_key.secret, value), value[:80]
        rec = json.loads(H.split_record(value)[1])
        assert (rec["v"], rec["url"], rec["ca_file"]) == (2, url, ca.ca_file), rec
        assert json.loads(rec["body"]) == keys.jwks()

        idp.mode = "500"
        expect_log(FETCH_FAIL.replace("http", "https") % idp.port)
        expect_log(REJECTED % "no_matching_key")
        rx = REFUSED_SC % (rx_url(url), "redis", record_hex(url, ca.ca_file),
                           "record of another CA file")
        expect_log(rx, required=True)
        doc = json.loads(rec["body"])
        pub = attacker.export_public(as_dict=True)
        pub["use"] = "sig"
        doc["keys"].append(pub)
        j = H.record_json(url, json.dumps(doc), max_age=rec["max_age"])     # no ca_file
        remote_cache.set(name, H.seal_record(fleet_key.secret, j))
        poke_until_refused(h, tok(attacker, "ES256"), rx)
        assert_refuses_evil_serves_real(h, tok(attacker, "ES256"), real)
    finally:
        if h:
            h.stop()                  # before the IdP goes: no refresh meets a closed port
        idp.close()


# ---------------------------------------------------------------- forged files in the cache dir

def plant_file(path, data):
    """Write data to path as a same-uid process would (a CGI running as the
    httpd user): owned by that user, mode 0600, renamed into place."""
    user = pwd.getpwnam(HTTPD_USER)
    tmp = path + ".planted-%d" % os.getpid()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chown(tmp, user.pw_uid, user.pw_gid)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("keying", ["fleet_key", "per_server_key"])
def test_forged_file_record_refused(keydir, idp, make_httpd, keys, attacker, keying, variant,
                                    expect_log):
    """A record file planted in AuthJWKSCacheDir by the httpd user (owner
    www-data, mode 0600, as a CGI without suEXEC would): with a fleet key
    (two servers sharing the directory) and without one (the per-server key
    <cache dir>.key), every forged variant is refused with its file named,
    tokens of the planted key get 401 and real tokens 200; the same record
    MAC'd under the right key (read from the key file) is adopted."""
    url = idp.url()
    expect_log(FETCH_FAIL % idp.port)
    expect_log(REJECTED % "no_matching_key")
    if keying == "fleet_key":
        key = new_key(keydir)
        shared = private_dir("ajw-fleetdir-")
        cdir = os.path.join(shared, "cache")
        conf = fleet_conf(url, key.path, cache_dir=cdir)
        servers = [make_httpd(conf, name="fdir-a"), make_httpd(conf, name="fdir-b")]
    else:
        shared = None
        h = make_httpd(fleet_conf(url, cache_dir=None), name="fdir")
        cdir = os.path.join(h.root, "run", "auth_jwks")
        servers = [h]
    try:
        real = tok(keys.rsa)
        for h in servers:
            assert get(h, "/api/env", real).status_code == 200, h.log_tail(10)
        path = os.path.join(cdir, record_hex(url) + ".json")
        value = H.wait_until(lambda: read_file(path), 10, 0.1, "the record file %s" % path)
        secret = key.secret if keying == "fleet_key" else H.read_secret(cdir + ".key")
        assert_v2_record(value, secret, url, keys)

        idp.mode = "500"
        forged, why = forged_records(value, secret, attacker)[variant]
        plant_file(path, forged)
        evil = tok(attacker, "ES256", sub="mallory")
        if why is None:
            for h in servers:
                H.wait_until(lambda: get(h, "/api/env", evil).status_code == 200, 15, 0.3,
                             "the validly MAC'd record to be adopted by %s" % h.error_log)
                assert get(h, "/api/env", real).status_code == 200
            return
        rx = REFUSED_FILE % (rx_url(url), re.escape(cdir), record_hex(url), why)
        expect_log(rx, required=True)
        for h in servers:
            poke_until_refused(h, evil, rx)
            assert_refuses_evil_serves_real(h, evil, real)
        idp.mode = "ok"
        H.wait_until(lambda: H.record_verifies(secret, read_file(path) or b""), 30, 0.3,
                     "the record file to be rewritten by a fetch")
        for h in servers:
            assert_refuses_evil_serves_real(h, evil, real)
            assert_no_secret_in_log(h, secret)
    finally:
        if shared:
            for h in servers:
                h.stop()
            shutil.rmtree(shared, ignore_errors=True)


# ---------------------------------------------------------------- the per-server key

@pytest.mark.parametrize("where", ["default", "custom"])
def test_per_server_key_made_private_and_kept(idp, make_httpd, keys, where, expect_log):
    """Without AuthJWKSFleetKey the parent makes <cache dir>.key (root, 0600,
    a regular file), MACs the records with the key derived from it, and keeps
    it across a full stop/start: started again while the IdP fails, the
    server serves from its own last good copy at once."""
    expect_log(FETCH_FAIL % idp.port)
    h = make_httpd("", start=False, name="perkey")
    cdir = os.path.join(h.root, "run", "auth_jwks") if where == "default" else \
        os.path.join(h.root, "data", "jwks-cache")
    h.write_conf(fleet_conf(idp.url(), cache_dir=None if where == "default" else cdir))
    h.start()
    kfile = cdir + ".key"
    assert get(h, "/api/env", tok(keys.rsa)).status_code == 200
    path = os.path.join(cdir, record_hex(idp.url()) + ".json")
    H.wait_until(lambda: read_file(path), 10, 0.1, "the record file")
    st = os.lstat(kfile)
    assert stat.S_ISREG(st.st_mode), oct(st.st_mode)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600), (st.st_uid, oct(st.st_mode))
    secret = H.read_secret(kfile)
    assert len(secret) >= 32, len(secret)
    assert_v2_record(read_file(path), secret, idp.url(), keys)
    raw = open(kfile, "rb").read()
    assert h.stop()
    idp.mode = "500"
    mark = h.log_size()
    h.start()
    t0 = time.monotonic()
    r = get(h, "/api/env", tok(keys.ec256, "ES256"))
    assert r.status_code == 200, (r.status_code, h.log_tail(10))
    assert time.monotonic() - t0 < 2.0
    assert open(kfile, "rb").read() == raw, "the per-server key changed across stop/start"
    assert re.search(r"loaded \d+ keys from %s \(shared copy" % rx_url(idp.url()),
                     h.log_since(mark)), h.log_tail(10)
    assert_no_secret_in_log(h, secret)


# ---------------------------------------------------------------- a server started during an outage

@pytest.mark.parametrize("remote_cache", ["redis"], indirect=True)
def test_server_started_during_outage_comes_up_from_fleet_copy(keydir, remote_cache, idp,
                                                               make_httpd, keys, expect_log):
    """A loads the keys and writes the fleet copy to redis; the IdP fails; B
    (same fleet key, nothing of its own on disk) starts and serves valid
    tokens from A's copy at once. C, started the same way with another fleet
    key, refuses that copy (MAC does not verify) and has no keys: 503."""
    url = idp.url()
    k1 = new_key(keydir, "k1.key")
    k2 = new_key(keydir, "k2.key")
    expect_log(FETCH_FAIL % idp.port)
    a = make_httpd(fleet_conf(url, k1.path, socache=remote_cache), name="out-a")
    real = tok(keys.rsa)
    assert get(a, "/api/env", real).status_code == 200
    value = H.wait_until(lambda: remote_cache.get(cache_key(url)), 10, 0.1, "the fleet copy")
    assert_v2_record(value, k1.secret, url, keys)
    idp.mode = "500"
    c0 = idp.count()
    b = make_httpd(fleet_conf(url, k1.path, socache=remote_cache, cache_dir=None, wait=5),
                   name="out-b")
    t0 = time.monotonic()
    r = get(b, "/api/env", tok(keys.ed, "EdDSA"))
    assert r.status_code == 200, (r.status_code, b.log_tail(10))
    assert time.monotonic() - t0 < 3.0
    assert re.search(r"loaded \d+ keys from %s \(shared copy" % rx_url(url), b.log_text()), \
        b.log_tail(10)

    rx = REFUSED_SC % (rx_url(url), "redis", record_hex(url), BAD_MAC)
    expect_log(rx, required=True)
    expect_log(REJECTED % "no_keys_loaded")
    c = make_httpd(fleet_conf(url, k2.path, socache=remote_cache, cache_dir=None, wait=2),
                   name="out-c")
    r = get(c, "/api/env", real)
    assert r.status_code == 503, (r.status_code, c.log_tail(10))
    H.wait_until(lambda: re.search(rx, c.log_text()), 10, 0.1, "C's refusal of the copy")
    assert idp.count() > c0            # B or C tried the IdP, and failed
    assert remote_cache.get(cache_key(url)) == value     # nobody rewrote the copy


# ---------------------------------------------------------------- DPoP across the fleet

def bound(keys, pkey):
    return H.mint(H.std_claims(iss=ISS, cnf={"jkt": pkey.thumbprint()}), keys.rsa, "RS256")


@pytest.fixture(scope="module")
def pkey():
    return jwk.JWK.generate(kty="EC", crv="P-256")


def test_dpop_nonce_from_one_server_accepted_by_another(keydir, idp, make_httpd, keys, pkey):
    """AuthJWKSDPoPNonce on A and B with the same fleet key: a nonce A issued
    is accepted by B and the other way round; C with another fleet key asks
    for a nonce of its own."""
    k1 = new_key(keydir, "k1.key")
    k2 = new_key(keydir, "k2.key")
    a = make_httpd(fleet_conf(idp.url(), k1.path, dpop=True), name="nonce-a")
    b = make_httpd(fleet_conf(idp.url(), k1.path, dpop=True), name="nonce-b")
    c = make_httpd(fleet_conf(idp.url(), k2.path, dpop=True), name="nonce-c")
    t = bound(keys, pkey)
    u = BASE + "/dpn/env"
    n_a = assert_use_nonce(dget(a, "/dpn/env", t, proof(pkey, "GET", u, t)))
    n_b = assert_use_nonce(dget(b, "/dpn/env", t, proof(pkey, "GET", u, t)))
    n_c = assert_use_nonce(dget(c, "/dpn/env", t, proof(pkey, "GET", u, t)))
    r = dget(b, "/dpn/env", t, proof(pkey, "GET", u, t, claims={"nonce": n_a}))
    assert r.status_code == 200, (r.status_code, r.headers, b.log_tail(10))
    r = dget(a, "/dpn/env", t, proof(pkey, "GET", u, t, claims={"nonce": n_b}))
    assert r.status_code == 200, (r.status_code, r.headers, a.log_tail(10))
    r = dget(a, "/dpn/env", t, proof(pkey, "GET", u, t, claims={"nonce": n_a}))
    assert r.status_code == 200
    # another fleet: neither direction
    assert_use_nonce(dget(c, "/dpn/env", t, proof(pkey, "GET", u, t, claims={"nonce": n_a})))
    assert_use_nonce(dget(a, "/dpn/env", t, proof(pkey, "GET", u, t, claims={"nonce": n_c})))
    for h in (a, b, c):
        assert_no_secret_in_log(h, k1.secret, k2.secret)


def redis_dump(cache):
    """Every key and value of the private redis."""
    out = {}
    for k in cache.command("KEYS", "*") or []:
        out[k] = cache.command("GET", k)
    return out


@pytest.mark.parametrize("remote_cache", ["memcache", "redis"], indirect=True)
def test_dpop_proof_used_at_one_server_is_replay_at_another(fleet_key, remote_cache, idp,
                                                            make_httpd, keys, pkey, expect_log):
    """AuthJWKSFleetKey + a remote socache: a proof accepted by A is refused
    by B as a replay (and the other way round); the fleet entry is in the
    cache under a derived id (the jti is nowhere in clear). The cache down:
    DPoP requests fail closed with 503, bearer requests still work."""
    expect_log(PROOF_REJECTED % "replay", required=True)
    expect_log(FLEET_REPLAY, required=True)
    conf = fleet_conf(idp.url(), fleet_key.path, socache=remote_cache, dpop=True)
    a = make_httpd(conf, name="replay-a")
    b = make_httpd(conf, name="replay-b")
    t = bound(keys, pkey)
    u = BASE + "/dp/env"
    before = redis_dump(remote_cache) if remote_cache.kind == "redis" else None
    jti1 = uuid.uuid4().hex
    p1 = proof(pkey, "GET", u, t, claims={"jti": jti1})
    r = dget(a, "/dp/env", t, p1)
    assert r.status_code == 200, (r.status_code, r.headers, a.log_tail(10))
    mark_b = b.log_size()
    assert_dpop_refused(dget(b, "/dp/env", t, p1))
    assert re.search(FLEET_REPLAY, b.log_since(mark_b)), b.log_tail(10)
    assert_dpop_refused(dget(a, "/dp/env", t, p1))
    # the other direction, with a fresh proof
    jti2 = uuid.uuid4().hex
    p2 = proof(pkey, "GET", u, t, claims={"jti": jti2})
    r = dget(b, "/dp/env", t, p2)
    assert r.status_code == 200, (r.status_code, r.headers, b.log_tail(10))
    mark_a = a.log_size()
    assert_dpop_refused(dget(a, "/dp/env", t, p2))
    assert re.search(FLEET_REPLAY, a.log_since(mark_a)), a.log_tail(10)
    # the same jti under another token key is not a replay (hashed with the thumbprint)
    other = jwk.JWK.generate(kty="EC", crv="P-256")
    t_other = bound(keys, other)
    r = dget(b, "/dp/env", t_other, proof(other, "GET", u, t_other, claims={"jti": jti1}))
    assert r.status_code == 200, (r.status_code, r.headers, b.log_tail(10))
    if before is not None:
        after = redis_dump(remote_cache)
        new = set(after) - set(before)
        assert len(new) >= 3, (sorted(before), sorted(after))
        blob = b"".join(list(after) + [v or b"" for v in after.values()])
        for j in (jti1, jti2):
            assert j.encode() not in blob, "the proof's jti is stored in clear"
        # the ids are made with the fleet's "dpop jti v1" key (docs/dpop-mtls.md: an HMAC
        # of the proof key's thumbprint and jti): "J" + HMAC(key, SHA-256(jkt NUL jti))
        jkey = H.derive_key(fleet_key.secret, H.INFO_JTI)
        for k, j in ((pkey, jti1), (pkey, jti2), (other, jti1)):
            inner = hashlib.sha256(k.thumbprint().encode() + b"\0" + j.encode()).digest()
            want = b"auth_jwks:" + (b"J" + hmac.new(jkey, inner, hashlib.sha256).digest()).hex().encode()
            assert want in new, (want, sorted(new))

    # The cache goes away: DPoP fails closed; bearer tokens are not concerned.
    expect_log(SOCACHE_ERR)
    expect_log(r"\[auth_jwks:warn\].*shared copy of")
    fleet_rx = r"\[auth_jwks:error\].*DPoP fleet replay check: socache %s\b" % remote_cache.kind
    expect_log(fleet_rx, required=True)
    remote_cache.close()
    for h in (a, b):
        r = dget(h, "/dp/env", t, proof(pkey, "GET", u, t))
        assert r.status_code == 503, (r.status_code, r.headers, h.log_tail(10))
        assert r.headers.get("Retry-After", "").isdigit(), r.headers
        assert re.search(fleet_rx, h.log_text()), h.log_tail(10)
        assert get(h, "/api/env", tok(keys.rsa)).status_code == 200
    for h in (a, b):
        assert_no_secret_in_log(h, fleet_key.secret)


# ---------------------------------------------------------------- upgrade: v1 records

@pytest.mark.parametrize("store", ["file", "redis"])
def test_v1_record_refused_once_then_rewritten_as_v2(keydir, idp, make_httpd, keys, store,
                                                     expect_log):
    """A record in the previous version's form (JSON, no MAC line), fresh, of
    the real keys: refused once with a warning (so the server fetches although
    the copy is fresh), then rewritten by that fetch as "AJW2 <MAC>\\n<JSON>",
    whose MAC verifies under the key derived from the server's key."""
    cache, made = None, []
    if store == "redis":
        if not HAVE_RD:
            pytest.skip("redis-server or mod_socache_redis.so not installed")
        cache = CacheServer("redis")
    try:
        _v1_upgrade(make_httpd, idp, keys, keydir, cache, expect_log, made)
    finally:
        if cache is not None:
            for h in made:
                h.stop()                 # httpd before its cache
            cache.close()


def _v1_upgrade(make_httpd, idp, keys, keydir, cache, expect_log, made):
    url = idp.url()
    if cache is not None:
        key = new_key(keydir)
        h = make_httpd(fleet_conf(url, key.path, socache=cache), name="upg")
        secret = key.secret
        read = lambda: cache.get(cache_key(url))          # noqa: E731
        write = lambda v: cache.set(cache_key(url), v)     # noqa: E731
        rx = REFUSED_SC % (rx_url(url), "redis", record_hex(url), NO_MAC)
    else:
        h = make_httpd(fleet_conf(url, cache_dir=None), name="upg")
        cdir = os.path.join(h.root, "run", "auth_jwks")
        path = os.path.join(cdir, record_hex(url) + ".json")
        secret = None
        read = lambda: read_file(path)                     # noqa: E731
        write = lambda v: plant_file(path, v)              # noqa: E731
        rx = REFUSED_FILE % (rx_url(url), re.escape(cdir), record_hex(url), NO_MAC)
    made.append(h)
    expect_log(rx, required=True)
    assert get(h, "/api/env", tok(keys.rsa)).status_code == 200
    H.wait_until(read, 10, 0.1, "the record")
    if secret is None:
        secret = H.read_secret(cdir + ".key")
    rec = assert_v2_record(read(), secret, url, keys)
    assert h.stop()
    v1 = json.dumps({"v": 1, "url": url, "fetched": int(time.time() * 1e6),
                     "max_age": rec["max_age"], "body": rec["body"]},
                    separators=(",", ":")).encode()
    write(v1)
    c0 = idp.count()
    mark = h.log_size()
    h.start()
    assert get(h, "/api/env", tok(keys.ec384, "ES384")).status_code == 200
    H.wait_until(lambda: H.record_verifies(secret, read() or b""), 15, 0.1,
                 "the v1 record to be rewritten as v2")
    rec2 = assert_v2_record(read(), secret, url, keys)
    assert rec2["fetched"] > rec["fetched"]
    assert idp.count() > c0, "the server did not fetch: the fresh v1 copy was adopted"
    since = h.log_since(mark)
    n = len(re.findall(rx, since))
    assert 1 <= n <= len(h.children()) + 1, (n, since[-2000:])
    time.sleep(6)                        # a periodic refresh later: no new refusal
    assert len(re.findall(rx, h.log_since(mark))) == n, h.log_tail(10)
    assert get(h, "/api/env", tok(keys.rsa)).status_code == 200


# ---------------------------------------------------------------- apachectl -t

def socache_load(kind):
    return "LoadModule socache_%s_module %s/mod_socache_%s.so\n" % (kind, H.MODDIR, kind)


BAD_KEYS = {
    "missing": None,
    "short": b"0123456789abcdef0123456789abcde\n",             # 31 bytes
    "short_padded": b"0123456789abcdef0123456789abcde \t\r\n",  # 31 after stripping
    "empty": b"",
    "too_long": b"a" * 4097,
    "mode0640": "0640",
    "mode0604": "0604",
    "mode0644": "0644",
    "mode0660": "0660",
    "owner_nobody": "nobody",
    "directory": "dir",
}


@pytest.mark.parametrize("case", sorted(BAD_KEYS))
def test_configtest_refuses_bad_fleet_key(keydir, case):
    path = os.path.join(keydir, "fleet.key")
    what = BAD_KEYS[case]
    if isinstance(what, bytes):
        H.write_fleet_key(path, secret=what)
    elif case.startswith("mode"):
        H.write_fleet_key(path, mode=int(what, 8))
    elif case == "owner_nobody":
        u = pwd.getpwnam("nobody")
        H.write_fleet_key(path, uid=u.pw_uid, gid=u.pw_gid)
    elif case == "directory":
        os.mkdir(path, 0o700)
    r = H.configtest('AuthJWKSFleetKey "%s"\n' % path)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "AuthJWKSFleetKey" in out and path in out, out
    assert "Syntax OK" not in out, out


@pytest.mark.parametrize("case", ["hex64", "exactly32", "max4096", "crlf", "mode0400"])
def test_configtest_accepts_good_fleet_key(keydir, case):
    path = os.path.join(keydir, "fleet.key")
    secret = {"hex64": None, "exactly32": os.urandom(16).hex().encode(),
              "max4096": b"k" * 4096, "crlf": os.urandom(16).hex().encode() + b"\r\n",
              "mode0400": None}[case]
    H.write_fleet_key(path, secret=secret, mode=0o400 if case == "mode0400" else 0o600)
    r = H.configtest('AuthJWKSFleetKey "%s"\n' % path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Syntax OK" in r.stdout + r.stderr


def test_configtest_fleet_key_server_config_only(fleet_key):
    r = H.configtest('<VirtualHost 127.0.0.1:1>\nAuthJWKSFleetKey "%s"\n</VirtualHost>\n'
                     % fleet_key.path)
    assert r.returncode != 0 and "AuthJWKSFleetKey" in r.stdout + r.stderr, r.stderr
    r = H.configtest('<Location /x>\nAuthJWKSFleetKey "%s"\n</Location>\n' % fleet_key.path)
    assert r.returncode != 0 and "AuthJWKSFleetKey" in r.stdout + r.stderr, r.stderr


@pytest.mark.parametrize("kind", ["memcache", "redis"])
def test_configtest_remote_socache_needs_fleet_key(kind, fleet_key):
    if not os.path.exists(os.path.join(H.MODDIR, "mod_socache_%s.so" % kind)):
        pytest.skip("mod_socache_%s.so not installed" % kind)
    line = "AuthJWKSCacheSocache %s:127.0.0.1:%d\n" % (kind, H.free_port())
    r = H.configtest(socache_load(kind) + line)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "AuthJWKSCacheSocache" in out and "AuthJWKSFleetKey" in out, out
    r = H.configtest(socache_load(kind) + 'AuthJWKSFleetKey "%s"\n' % fleet_key.path + line)
    assert r.returncode == 0, r.stdout + r.stderr
    # the order of the directives does not matter
    r = H.configtest(socache_load(kind) + line + 'AuthJWKSFleetKey "%s"\n' % fleet_key.path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_configtest_shmcb_without_fleet_key():
    if not os.path.exists(os.path.join(H.MODDIR, "mod_socache_shmcb.so")):
        pytest.skip("mod_socache_shmcb.so not installed")
    r = H.configtest(socache_load("shmcb") + "AuthJWKSCacheSocache shmcb\n")
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------- the replay window, measured

MARK_TIME = r"DPoP fleet replay check: (new|seen) in (\d+) us"


@pytest.mark.parametrize("remote_cache", ["redis"], indirect=True)
def test_fleet_replay_window_measured(fleet_key, remote_cache, idp, keys, pkey, make_httpd,
                                      expect_log):
    """The fleet replay mark is a look-up then a store (httpd's socache has no
    atomic add): two servers taking one proof within that time can both accept
    it. Sent one after the other, every copy of a proof is refused at the other
    server; sent to both at once, the test counts how often both accepted and
    prints the time the mark took (trace1 lines), which the README quotes.
    Nothing here asserts a timing. The cache and the IdP are requested before
    make_httpd, so they outlive the servers."""
    expect_log(PROOF_REJECTED % "replay")
    conf = fleet_conf(idp.url(), fleet_key.path, socache=remote_cache, dpop=True)
    a = make_httpd(conf, name="window-a", loglevel="warn auth_jwks:trace1")
    b = make_httpd(conf, name="window-b", loglevel="warn auth_jwks:trace1")
    t = bound(keys, pkey)
    u = BASE + "/dp/env"
    # one after the other: never both
    for i in range(20):
        p = proof(pkey, "GET", u, t)
        first, second = (a, b) if i % 2 else (b, a)
        assert dget(first, "/dp/env", t, p).status_code == 200
        assert_dpop_refused(dget(second, "/dp/env", t, p))
    # at once: count the proofs both servers took
    both = 0
    rounds = 40
    for _ in range(rounds):
        p = proof(pkey, "GET", u, t)
        out = {}
        th = [threading.Thread(target=lambda i=i, h=h: out.__setitem__(
                  i, dget(h, "/dp/env", t, p).status_code)) for i, h in enumerate((a, b))]
        for x in th:
            x.start()
        for x in th:
            x.join(10)
        assert sorted(out.values()) in ([200, 200], [200, 401]), out
        both += out.get(0) == 200 and out.get(1) == 200
    times = [int(m.group(2)) for h in (a, b) for m in re.finditer(MARK_TIME, h.log_text())]
    assert len(times) >= 2 * 20 + rounds, len(times)
    times.sort()
    print("\nfleet replay mark (redis, loopback): median %d us, p90 %d us, max %d us over %d "
          "marks; %d of %d simultaneous pairs accepted at both servers"
          % (times[len(times) // 2], times[int(len(times) * 0.9)], times[-1], len(times),
             both, rounds))
