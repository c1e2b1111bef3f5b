"""Bounded concurrent stress under the event MPM: valid tokens signed with
keys the IdP keeps rotating (every ~0.5 s), invalid and unknown-kid tokens,
jwks-status requests, small refresh intervals, several child processes that
come and go, and graceful restarts in the middle.

Asserts: no 5xx except 503 + Retry-After (keys not loaded yet), every valid
token accepted eventually, and no crash / sanitizer line in the error log
(the logcheck fixture flags "exit signal", "AddressSanitizer",
"runtime error:" ...). Run with AJW_MODULE pointing at an ASan build and
AJW_HTTPD_ENV preloading the runtime (tests/integration/run_asan.sh) to
hunt memory errors.

Only static files are requested: mod_cgid answers 503 ("failed reading PID
from cgi daemon") while its daemon restarts in a graceful restart, which is
httpd's behaviour, not the module's. AuthJWKSPassClaims both still exports
every claim to the environment and the request headers.

Duration: AJW_STRESS_SECONDS (default 12 s of load; ~20 s in all)."""
import collections
import os
import random
import threading
import time
import uuid

import requests
from jwcrypto import jwk

import harness as H
from conftest import AUTHZ_FAILURE, REJECTED

ISS = "https://issuer.test"
LOAD_SECONDS = float(os.environ.get("AJW_STRESS_SECONDS") or 12)
ROTATE_EVERY = 0.5
WINDOW = 16                # rotating keys published at once (WINDOW * ROTATE_EVERY s)
VALID_DEADLINE = 6.0       # a valid token must be accepted within this (< window life)
WORKERS = 12

# More, smaller child processes than the harness default, so that children
# start and stop (MaxSpareThreads) while keys rotate. Later directives win.
MPM_OVERRIDE = """StartServers 2
ThreadsPerChild 8
MaxRequestWorkers 32
MinSpareThreads 4
MaxSpareThreads 16
"""


def conf(url):
    return (MPM_OVERRIDE
            + H.api_admin_locations(url, ISS, "    AuthJWKSPassClaims both\n")
            + "<Location /jwks-status>\n    SetHandler jwks-status\n"
              "    Require all granted\n</Location>\n")


def kid_of(k):
    return k.get("kid") if hasattr(k, "get") else k.key_id


class Rotator:
    """Publishes a stable key plus the WINDOW newest rotating keys, adding a
    new one every ROTATE_EVERY seconds (EC P-256, Ed25519, EC P-384, and an
    RSA key re-published under a fresh kid)."""

    KINDS = ("ES256", "EdDSA", "ES384", "RS256")

    def __init__(self, idp, stable, rsa):
        self.idp, self.stable, self.rsa = idp, stable, rsa
        self.lock = threading.Lock()
        self.window = collections.deque(maxlen=WINDOW)
        self.n = 0
        self.stop = threading.Event()
        self.rotate()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _new_key(self):
        alg = self.KINDS[self.n % len(self.KINDS)]
        kid = "rot-%d-%s" % (self.n, uuid.uuid4().hex[:6])
        if alg == "ES256":
            k = jwk.JWK.generate(kty="EC", crv="P-256", kid=kid)
        elif alg == "ES384":
            k = jwk.JWK.generate(kty="EC", crv="P-384", kid=kid)
        elif alg == "EdDSA":
            k = jwk.JWK.generate(kty="OKP", crv="Ed25519", kid=kid)
        else:
            d = self.rsa.export(as_dict=True)
            d["kid"] = kid
            k = jwk.JWK(**d)
        self.n += 1
        return k, alg

    def rotate(self):
        k, alg = self._new_key()
        with self.lock:
            keys = [self.stable] + [w[0] for w in self.window] + [k]
        # publish first, hand the key to signers after: a signer never uses
        # a key the IdP has not published
        self.idp.set(H.jwks_doc(keys))
        with self.lock:
            self.window.append((k, alg))

    def newest(self):
        with self.lock:
            return self.window[-1]

    def _run(self):
        while not self.stop.wait(ROTATE_EVERY):
            self.rotate()

    def start(self):
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join(5)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.codes = collections.Counter()
        self.kinds = collections.Counter()
        self.failures = []
        self.conn_errors = 0
        self.retries = 0
        self.n503 = 0

    def fail(self, msg):
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(msg)


def test_stress_rotation_graceful(make_httpd, keys, expect_log):
    for reason in ("no_matching_key", "bad_signature", "expired", "malformed",
                   "alg_not_allowed", "unsupported", "no_keys_loaded"):
        expect_log(REJECTED % reason)
    expect_log(AUTHZ_FAILURE)

    idp = H.JWKSServer()
    stable = jwk.JWK.generate(kty="EC", crv="P-256", kid="stable-ec")
    rot = Rotator(idp, stable, keys.rsa)
    stats = Stats()
    h = make_httpd(conf(idp.url()), mpm="event")
    stop = threading.Event()

    stable_toks = [H.mint(H.std_claims(sub="s%d" % i), stable, "ES256") for i in range(20)]
    bad_sig = H.tamper_payload(stable_toks[0], sub="mallory")
    expired = H.mint(H.std_claims(exp=H.now() - 3600, iat=H.now() - 7200), stable, "ES256")
    no_admin = stable_toks[1]
    admin = H.mint(H.std_claims(roles=["admin"], sub="root"), stable, "ES256")

    def request(sess, path, token=None):
        hdrs = {"Authorization": "Bearer " + token} if token else {}
        for attempt in range(5):
            try:
                r = sess.get(h.url(path), headers=hdrs, timeout=30, allow_redirects=False)
            except requests.exceptions.ConnectionError:
                # keep-alive connection closed by a child that is going away
                # (graceful restart, MaxSpareThreads); a crash shows in the log
                with stats.lock:
                    stats.conn_errors += 1
                sess.close()
                time.sleep(0.05)
                continue
            with stats.lock:
                stats.codes[r.status_code] += 1
            if r.status_code >= 500:
                if r.status_code == 503 and r.headers.get("Retry-After"):
                    with stats.lock:
                        stats.n503 += 1
                else:
                    stats.fail("%s -> %d %r" % (path, r.status_code, r.text[:200]))
            return r
        stats.fail("%s: connection failed 5 times in a row" % path)
        return None

    def expect(kind, r, codes):
        with stats.lock:
            stats.kinds[kind] += 1
        if r is not None and r.status_code not in codes and r.status_code != 503:
            stats.fail("%s: got %d, want %s (%r)" % (kind, r.status_code, codes, r.text[:200]))

    def valid_rotating(sess):
        k, alg = rot.newest()
        tok = H.mint(H.std_claims(sub="r-" + kid_of(k)), k, alg)
        deadline = time.monotonic() + VALID_DEADLINE
        while True:
            r = request(sess, "/api/static.txt", tok)
            if r is not None and r.status_code == 200:
                with stats.lock:
                    stats.kinds["valid_rotating"] += 1
                return
            if r is not None and r.status_code not in (401, 503):
                stats.fail("valid token (kid %s): %d" % (kid_of(k), r.status_code))
                return
            if time.monotonic() >= deadline:
                stats.fail("valid token with kid %s never accepted within %.0fs (last %s)" % (
                    kid_of(k), VALID_DEADLINE, r.status_code if r is not None else "conn error"))
                return
            with stats.lock:
                stats.retries += 1
            time.sleep(0.1)

    def worker(seed):
        rnd = random.Random(seed)
        sess = requests.Session()
        try:
            while not stop.is_set():
                x = rnd.random()
                if x < 0.35:
                    valid_rotating(sess)
                elif x < 0.55:
                    expect("valid_stable", request(sess, "/api/static.txt",
                                                   rnd.choice(stable_toks)), (200,))
                elif x < 0.62:
                    expect("bad_signature", request(sess, "/api/static.txt", bad_sig), (401,))
                elif x < 0.66:
                    expect("expired", request(sess, "/api/static.txt", expired), (401,))
                elif x < 0.76:
                    k, alg = rot.newest()
                    t = H.mint(H.std_claims(), k, alg, kid="unknown-" + uuid.uuid4().hex)
                    expect("unknown_kid", request(sess, "/api/static.txt", t), (401,))
                elif x < 0.79:
                    expect("garbage", request(sess, "/api/static.txt",
                                              "eyJh.%s.x" % uuid.uuid4().hex), (400, 401))
                elif x < 0.82:
                    expect("no_token", request(sess, "/api/static.txt"), (401,))
                elif x < 0.86:
                    expect("forbidden", request(sess, "/admin/static.txt", no_admin), (403,))
                elif x < 0.90:
                    expect("admin", request(sess, "/admin/static.txt", admin), (200,))
                else:
                    r = request(sess, rnd.choice(["/jwks-status", "/jwks-status?json"]))
                    expect("status", r, (200,))
                    if r is not None and r.status_code == 200 and "json" in r.url:
                        try:
                            r.json()
                        except ValueError:
                            stats.fail("jwks-status?json is not JSON: %r" % r.text[:200])
        finally:
            sess.close()

    rot.start()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(WORKERS)]
    t0 = time.monotonic()
    try:
        for t in threads:
            t.start()
        # graceful restarts in the middle: two in the default run, one every
        # ~8 s in a longer one
        n_graceful = max(2, int(LOAD_SECONDS // 8))
        marks = [LOAD_SECONDS * (i + 1) / (n_graceful + 1) for i in range(n_graceful)]
        done_graceful = 0
        for m in marks:
            delay = t0 + m - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            h.graceful(timeout=30)
            done_graceful += 1
        delay = t0 + LOAD_SECONDS - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    finally:
        stop.set()
        for t in threads:
            t.join(VALID_DEADLINE + 40)
        rot.close()
    alive = [t for t in threads if t.is_alive()]
    # still serving after all that, and the log shows no crash
    last = requests.get(h.url("/api/static.txt"), timeout=30,
                        headers={"Authorization": "Bearer " + stable_toks[0]})
    elapsed = time.monotonic() - t0
    summary = ("stress: %.1fs, %d graceful, %d key rotations, codes %s, kinds %s, "
               "valid retries %d, 503s %d, connection errors %d, jwks fetches %d" % (
                   elapsed, done_graceful, rot.n, dict(stats.codes), dict(stats.kinds),
                   stats.retries, stats.n503, stats.conn_errors, idp.total()))
    print(summary)
    idp.close()
    log = h.log_text()
    assert not alive, "worker threads still running"
    assert last.status_code == 200, (last.status_code, summary)
    assert not stats.failures, "\n".join(stats.failures[:20]) + "\n" + summary
    assert stats.kinds["valid_rotating"] > 0 and stats.kinds["status"] > 0, summary
    for sign in ("exit signal", "Segmentation fault", "AddressSanitizer", "runtime error:"):
        assert sign not in log, "%s in the error log:\n%s" % (sign, log[-3000:])
    # connection errors only come from children going away; bounded
    total = sum(stats.codes.values())
    assert stats.conn_errors <= max(20, total // 20), summary
