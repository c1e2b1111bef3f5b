"""AuthJWKSCacheSocache: the last-good JWKS copies in httpd's socache
(memcache, redis, shmcb), shared by a fleet of servers; whatever the cache
returns is untrusted. memcache and redis need AuthJWKSFleetKey: every record
is MAC'd with a key derived from it (see test_fleet.py for forged records)."""
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import types

import pytest

import harness as H
from conftest import get

ISS = "https://issuer.test"
MEMCACHED = shutil.which("memcached")
REDIS = shutil.which("redis-server")
HAVE_MC = MEMCACHED and os.path.exists(os.path.join(H.MODDIR, "mod_socache_memcache.so"))
HAVE_RD = REDIS and os.path.exists(os.path.join(H.MODDIR, "mod_socache_redis.so"))
FETCH_FAIL = r"\[auth_jwks:(warn|error)\].*(refresh of|no keys from) http://127\.0\.0\.1:%d/"
REFUSED = r"\[auth_jwks:warn\].*shared copy of %s refused: socache %s, key auth_jwks:[0-9a-f]{64}: %s"


# ---------------------------------------------------------------- cache servers

class CacheServer:
    """A private memcached or redis on 127.0.0.1 and a random port, for one
    test; speaks just enough of the protocol to plant and read values."""

    def __init__(self, kind):
        self.kind = kind
        self.port = H.free_port()
        if kind == "memcache":
            argv = [MEMCACHED, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16",
                    "-I", "2m", "-u", "memcache" if os.geteuid() == 0 else str(os.geteuid())]
        else:
            argv = [REDIS, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                    "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            H.wait_until(self._up, 10, 0.05, "%s to listen" % kind)
        except TimeoutError:
            self.close()
            raise

    def _up(self):
        if self.proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (self.kind, self.proc.returncode))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def spec(self):
        return "%s:127.0.0.1:%d" % (self.kind, self.port)

    def _talk(self, payload, until):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(payload)
            buf = b""
            deadline = time.time() + 5
            while not until(buf) and time.time() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return buf

    def set(self, key, value):
        if self.kind == "memcache":
            out = self._talk(b"set %s 0 3600 %d\r\n%s\r\n" % (key.encode(), len(value), value),
                             lambda b: b.endswith(b"\r\n"))
            assert out.startswith(b"STORED"), out
        else:
            cmd = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                len(key), key.encode(), len(value), value)
            out = self._talk(cmd, lambda b: b.endswith(b"\r\n"))
            assert out.startswith(b"+OK"), out

    def get(self, key):
        if self.kind == "memcache":
            out = self._talk(b"get %s\r\n" % key.encode(), lambda b: b.endswith(b"END\r\n"))
            if not out.startswith(b"VALUE"):
                return None
            head, _, rest = out.partition(b"\r\n")
            n = int(head.split()[3])
            return rest[:n]
        out = self._talk(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key.encode()),
                         lambda b: b.startswith(b"$-1\r\n") or (
                             b"\r\n" in b and len(b) >= b.index(b"\r\n") + 2 + int(
                                 b[1:b.index(b"\r\n")]) + 2))
        if out.startswith(b"$-1"):
            return None
        head, _, rest = out.partition(b"\r\n")
        return rest[:int(head[1:])]

    def command(self, *args):
        """One redis command (RESP); the reply parsed: bytes, int, None, a
        list, or RuntimeError for an error reply."""
        assert self.kind == "redis"
        cmd = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in
            (x if isinstance(x, bytes) else str(x).encode() for x in args))

        def parse(buf, i):
            """(value, next index) or raise IndexError when incomplete."""
            end = buf.index(b"\r\n", i)
            t, line = buf[i:i + 1], buf[i + 1:end]
            i = end + 2
            if t == b"+":
                return line, i
            if t == b"-":
                return RuntimeError(line.decode()), i
            if t == b":":
                return int(line), i
            if t == b"$":
                n = int(line)
                if n < 0:
                    return None, i
                if len(buf) < i + n + 2:
                    raise IndexError
                return buf[i:i + n], i + n + 2
            if t == b"*":
                n = int(line)
                out = []
                for _ in range(max(n, 0)):
                    v, i = parse(buf, i)
                    out.append(v)
                return (out if n >= 0 else None), i
            raise AssertionError(buf[:80])

        def complete(buf):
            try:
                parse(buf, 0)
                return True
            except (IndexError, ValueError):
                return False
        v, _ = parse(self._talk(cmd, complete), 0)
        if isinstance(v, RuntimeError):
            raise v
        return v

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def cache_key(url, ca_file=None):
    ident = url if ca_file is None else url + "\n" + ca_file
    return "auth_jwks:" + hashlib.sha256(ident.encode()).hexdigest()


@pytest.fixture
def fleet_key():
    """An AuthJWKSFleetKey file (root, 0600, `openssl rand -hex 32` style).
    Ask for it before make_httpd: httpd -k stop reads the key file too."""
    d = tempfile.mkdtemp(prefix="ajw-fleetkey-", dir="/tmp")
    os.chmod(d, 0o755)
    path = os.path.join(d, "fleet.key")
    yield types.SimpleNamespace(path=path, secret=H.write_fleet_key(path))
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cache_server(request):
    """Ask for it before make_httpd, so that httpd stops before the cache."""
    kind = request.param
    if kind == "memcache" and not HAVE_MC:
        pytest.skip("memcached or mod_socache_memcache.so not installed")
    if kind == "redis" and not HAVE_RD:
        pytest.skip("redis-server or mod_socache_redis.so not installed")
    c = CacheServer(kind)
    yield c
    c.close()


def server_conf(kind, spec, url, cache_dir="off", wait=10, key_file=None):
    load = "LoadModule socache_%s_module %s/mod_socache_%s.so\n" % (kind, H.MODDIR, kind)
    dir_line = "AuthJWKSCacheDir %s\n" % cache_dir if cache_dir else ""
    if key_file:
        dir_line += 'AuthJWKSFleetKey "%s"\n' % key_file
    return load + dir_line + """AuthJWKSCacheSocache %s
<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSRefreshInterval 5
    AuthJWKSMinRefreshInterval 1
    AuthJWKSStartupWait %d
    Require valid-user
</Location>
""" % (spec, url, ISS, wait)


# ---------------------------------------------------------------- (1) and (3): a fleet

@pytest.mark.parametrize("cache_server", ["memcache", "redis"], indirect=True)
def test_fleet_shares_last_good_copy(fleet_key, cache_server, make_httpd, keys, expect_log):
    """Server A loads the keys while the IdP is up and puts them in the
    cache (MAC'd under the fleet key); the IdP goes down; server B (same
    fleet key) starts fresh (its own, empty AuthJWKSCacheDir) and serves
    valid tokens from the cache's copy."""
    idp = H.JWKSServer()
    idp.set(keys.jwks())
    url = idp.url()
    expect_log(FETCH_FAIL % idp.port)
    try:
        a = make_httpd(server_conf(cache_server.kind, cache_server.spec(), url, cache_dir="off",
                                   key_file=fleet_key.path), name="fleet-a")
        tok = H.mint(H.std_claims(iss=ISS), keys.rsa, "RS256")
        assert get(a, "/api/env", tok).status_code == 200
        H.wait_until(lambda: cache_server.get(cache_key(url)) is not None, 10, 0.1,
                     "the record in the cache")
        rec = cache_server.get(cache_key(url))
        assert b'"url":"%s"' % url.encode() in rec
        assert H.record_verifies(fleet_key.secret, rec), rec[:80]
    finally:
        idp.close()
    # B: separate dir (default under its own root), nothing on disk, IdP down.
    b = make_httpd(server_conf(cache_server.kind, cache_server.spec(), url, cache_dir=None, wait=5,
                               key_file=fleet_key.path), name="fleet-b")
    t0 = time.monotonic()
    r = get(b, "/api/env", tok)
    assert r.status_code == 200, (r.status_code, b.log_tail())
    assert time.monotonic() - t0 < 3          # the cache's copy, not a wait for the dead IdP
    assert any(k in b.log_text() for k in ("shared copy", "loaded")), b.log_tail()
    assert "(shared copy" in b.log_text(), b.log_tail()
    # Keys B never saw are still refused.
    stranger = H.Keys("stranger")
    bad = H.mint(H.std_claims(iss=ISS), stranger.rsa, "RS256")
    expect_log(r"\[auth_jwks:error\].*token rejected")
    assert get(b, "/api/env", bad).status_code in (401, 503)


@pytest.mark.skipif(not HAVE_MC, reason="memcached or mod_socache_memcache.so not installed")
def test_cache_down_costs_only_warnings(fleet_key, make_httpd, keys, expect_log):
    """Nothing listens where the cache should be: keys come from the IdP and
    go to AuthJWKSCacheDir as before; the failed reads and writes are logged."""
    port = H.free_port()
    idp = H.JWKSServer()
    idp.set(keys.jwks())
    url = idp.url()
    expect_log(r"socache_memcache:(error|crit).*(AH00791|AH00790)")
    expect_log(r"\[auth_jwks:warn\].*(shared copy of|cannot write the shared copy of) %s"
               % re.escape(url), required=True)
    try:
        conf = server_conf("memcache", "memcache:127.0.0.1:%d" % port, url, cache_dir=None,
                           key_file=fleet_key.path)
        h = make_httpd(conf, name="cache-down")
        tok = H.mint(H.std_claims(iss=ISS), keys.rsa, "RS256")
        assert get(h, "/api/env", tok).status_code == 200
    finally:
        idp.close()


# ---------------------------------------------------------------- (2) a poisoned cache

def planted_record(url, body, fetched=None, secret=None):
    """A record of url holding body; MAC'd under secret's record key (v2)
    when given, else the bare JSON of the previous version (v1)."""
    j = H.record_json(url, body, fetched=fetched or int(time.time() * 1e6),
                      v=2 if secret else 1)
    return H.seal_record(secret, j) if secret else j


@pytest.mark.parametrize("cache_server", ["memcache"], indirect=True)
@pytest.mark.parametrize("poison", ["other_url", "garbage", "garbage_unsealed", "oversized"])
def test_poisoned_value_refused(fleet_key, cache_server, make_httpd, other_keys, poison,
                                expect_log):
    """The IdP is down and the cache holds, under this URL's key, another
    URL's record (with the attacker's keys), garbage, or a value over the
    cap: each is refused with a log line and tokens are never accepted. The
    values carry a valid fleet MAC (as if written by a server of the fleet),
    so the checks behind the MAC are the ones tested; garbage without a MAC
    is refused for that."""
    url = "http://127.0.0.1:9/jwks-%s" % poison
    evil = other_keys.jwks()
    evil_text = json.dumps(evil)
    if poison == "other_url":
        value = planted_record("http://127.0.0.1:9/attacker", evil_text, secret=fleet_key.secret)
        why = "record of another URL"
    elif poison == "garbage":
        value = H.seal_record(fleet_key.secret, b"\x00\xffnot a record{{")
        why = "malformed record"
    elif poison == "garbage_unsealed":
        value = b"\x00\xffnot a record{{"
        why = "record without a MAC"
    else:
        value = planted_record(url, evil_text + " " * (300 * 1024), secret=fleet_key.secret)
        why = "value over the cap"
        expect_log(r"socache_memcache:error.*'retrieve' OVERFLOW", required=True)
    cache_server.set(cache_key(url), value)
    expect_log(REFUSED % (url.replace(".", r"\."), "memcache", why), required=True)
    expect_log(r"\[auth_jwks:error\].*(no keys from|token rejected: no_keys_loaded)")
    h = make_httpd(server_conf(cache_server.kind, cache_server.spec(), url, cache_dir="off", wait=0,
                               key_file=fleet_key.path), name="poison")
    H.wait_until(lambda: "shared copy of %s refused" % url in h.log_text(), 10, 0.1,
                 "the refusal in the log")
    tok = H.mint(H.std_claims(iss=ISS), other_keys.rsa, "RS256")
    for _ in range(5):
        r = get(h, "/api/env", tok)
        assert r.status_code == 503, (r.status_code, h.log_tail())
    assert not re.search(r"loaded \d+ keys", h.log_text()), h.log_tail()


# ---------------------------------------------------------------- shmcb (not MP-safe)

@pytest.mark.skipif(not os.path.exists(os.path.join(H.MODDIR, "mod_socache_shmcb.so")),
                    reason="mod_socache_shmcb.so not installed")
def test_shmcb_with_mutex(make_httpd, keys, expect_log):
    """shmcb is not safe across processes: a global mutex guards it (prefork,
    several children); keys load and are written without errors."""
    idp = H.JWKSServer()
    idp.set(keys.jwks())
    try:
        conf = """LoadModule socache_shmcb_module %s/mod_socache_shmcb.so
AuthJWKSCacheSocache shmcb
<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    Require valid-user
</Location>
""" % (H.MODDIR, idp.url(), ISS)
        h = make_httpd(conf, mpm="prefork", name="shmcb")
        tok = H.mint(H.std_claims(iss=ISS), keys.rsa, "RS256")
        for _ in range(10):
            assert get(h, "/api/env", tok).status_code == 200
        assert "cannot write the shared copy" not in h.log_text()
    finally:
        idp.close()


# ---------------------------------------------------------------- (4) configuration

def test_config_errors(fleet_key):
    r = H.configtest("AuthJWKSCacheSocache nosuch:127.0.0.1:1\n")
    assert r.returncode != 0
    assert "AuthJWKSCacheSocache" in r.stderr and "no socache provider 'nosuch'" in r.stderr, r.stderr
    assert "LoadModule socache_nosuch_module" in r.stderr, r.stderr
    # The provider exists in httpd but its module is not loaded.
    r = H.configtest("AuthJWKSCacheSocache memcache:127.0.0.1:11211\n")
    assert r.returncode != 0
    assert "LoadModule socache_memcache_module" in r.stderr, r.stderr
    r = H.configtest("AuthJWKSCacheSocache 'mem cache'\n")
    assert r.returncode != 0 and "AuthJWKSCacheSocache" in r.stderr, r.stderr
    if HAVE_MC:
        load = "LoadModule socache_memcache_module %s/mod_socache_memcache.so\n" % H.MODDIR
        fk = 'AuthJWKSFleetKey "%s"\n' % fleet_key.path
        # Arguments the provider refuses are config errors too.
        r = H.configtest(load + fk + "AuthJWKSCacheSocache memcache\n")
        assert r.returncode != 0 and "AuthJWKSCacheSocache memcache" in r.stderr, r.stderr
        # Server config only.
        r = H.configtest(load + fk + "<VirtualHost 127.0.0.1:1>\nAuthJWKSCacheSocache "
                         "memcache:127.0.0.1:1\n</VirtualHost>\n")
        assert r.returncode != 0 and "AuthJWKSCacheSocache" in r.stderr, r.stderr
        r = H.configtest(load + fk + "AuthJWKSCacheSocache memcache:127.0.0.1:11211\n")
        assert r.returncode == 0, r.stderr
        # memcache and redis are shared: not without a fleet key (naming both directives)
        r = H.configtest(load + "AuthJWKSCacheSocache memcache:127.0.0.1:11211\n")
        assert r.returncode != 0, r.stderr
        assert "AuthJWKSCacheSocache" in r.stderr and "AuthJWKSFleetKey" in r.stderr, r.stderr
    r = H.configtest("AuthJWKSCacheSocache none\n")
    assert r.returncode == 0, r.stderr
