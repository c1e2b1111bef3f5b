"""Operating through an IdP outage: quiet, bounded logs; the shared last-good copy
(AuthJWKSCacheDir), AuthJWKSMaxStale, one fetch per server, rotation wait."""
import concurrent.futures as cf
import glob
import json
import math
import os
import pwd
import re
import stat
import time
import uuid

import pytest

import harness as H
from conftest import REJECTED, env_of, get

ISS = "https://issuer.test"


def test_no_keys_refusals_logged_once_per_interval(make_httpd, keys, expect_log):
    """A URL that never loads: every request gets 503, but the error log
    holds one no_keys_loaded line per process per interval, not one per
    request (38,808 lines in 25 s before)."""
    conf = """<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL http://127.0.0.1:9/never
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 0
    Require valid-user
</Location>
""" % ISS
    expect_log(r"\[auth_jwks:error\].*token rejected: no_keys_loaded", required=True)
    expect_log(r"\[auth_jwks:error\].*no keys from http://127\.0\.0\.1:9/never")
    h = make_httpd(conf)
    tok = H.mint(H.std_claims(), keys.rsa, "RS256")
    for _ in range(200):
        r = get(h, "/api/env", tok)
        assert r.status_code == 503, r.status_code
        assert r.headers.get("Retry-After") == "10"
    lines = re.findall(r"token rejected: no_keys_loaded", h.log_text())
    assert 1 <= len(lines) <= len(h.children()) + 1, len(lines)


# ---------------------------------------------------------------------------
# The shared last-good copy (AuthJWKSCacheDir), AuthJWKSMaxStale, one fetch
# per server, rotation wait, and quiet logs through an outage (issue 7).

FETCH_FAIL = r"\[auth_jwks:(warn|error)\].*(refresh of|no keys from) http://127\.0\.0\.1:%d/"
STALE_LOG = r"\[auth_jwks:error\].*keys of http://127\.0\.0\.1:%d/\S* are stale"
SHARED_LOAD = r"loaded \d+ keys from %s \(shared copy"
HTTPD_USER = "www-data"


@pytest.fixture
def idp(keys):
    s = H.JWKSServer(hang_seconds=20)
    s.set(keys.jwks())
    yield s
    s.close()


def loc(url, body=""):
    return """<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
%s
    Require valid-user
</Location>
""" % (url, ISS, body)


def tok(key, alg="RS256", **over):
    return H.mint(H.std_claims(**over), key, alg)


def use_mpm_block(h, block):
    """Replace the harness's MPM block (MPM_CONF[h.mpm], formatted) in h's
    configuration by `block` ({moddir} is filled in) and rewrite the file."""
    default = H.MPM_CONF[h.mpm].format(moddir=H.MODDIR)
    plain = h.conf_text

    def conf_text(extra):
        text = plain(extra)
        assert default in text
        return text.replace(default, block.format(moddir=H.MODDIR))
    h.conf_text = conf_text
    h.write_conf(h.extra)
    return h


def timed_get(h, path, token):
    t0 = time.monotonic()
    r = get(h, path, token)
    return r, time.monotonic() - t0


def cache_dir(h):
    return os.path.join(h.root, "run", "auth_jwks")


def record_file(h, d=None):
    files = glob.glob(os.path.join(d or cache_dir(h), "*.json"))
    assert len(files) == 1, (d or cache_dir(h), os.listdir(d or cache_dir(h)))
    return files[0]


def soft_wait_for_copy(h, timeout=2.0):
    """The copy is written before the keys are published, so it normally
    exists already; a module that keeps none then fails on the outage itself."""
    try:
        H.wait_until(lambda: glob.glob(os.path.join(cache_dir(h), "*.json")), timeout, 0.1,
                     "the shared copy to be written")
    except TimeoutError:
        pass


def server_secret(path):
    """The per-server key behind the record file at path: <cache dir>.key."""
    return H.read_secret(os.path.dirname(path) + ".key")


def read_record(path):
    """The JSON of the (v2, MAC-checked) record file at path."""
    with open(path, "rb") as f:
        value = f.read()
    assert H.record_verifies(server_secret(path), value), value[:80]
    return json.loads(H.split_record(value)[1])


def set_record_age(path, seconds_ago):
    """Rewrite the record's fetch time to `seconds_ago` before now, in place
    (same inode: owner and mode kept), MAC'd again under the server's key
    as the server itself would. Returns the record as read."""
    st0 = os.stat(path)
    rec = read_record(path)
    fetched = rec.get("fetched")
    assert isinstance(fetched, int) and fetched > 0, rec.keys()
    # microseconds (apr_time_t), milliseconds or seconds: judge by magnitude
    unit = 1000000 if fetched > 10 ** 14 else 1000 if fetched > 10 ** 11 else 1
    assert abs(fetched / unit - time.time()) < 3600, (fetched, unit)
    rec["fetched"] = int((time.time() - seconds_ago) * unit)
    with open(path, "rb+") as f:
        f.write(H.seal_record(server_secret(path), json.dumps(rec, separators=(",", ":")).encode()))
        f.truncate()
    st1 = os.stat(path)
    assert (st1.st_uid, st1.st_gid, stat.S_IMODE(st1.st_mode)) == \
        (st0.st_uid, st0.st_gid, stat.S_IMODE(st0.st_mode))
    return rec


def auth_jwks_problems(text):
    return [ln for ln in text.splitlines() if re.search(r"\[auth_jwks:(error|warn|crit)\]", ln)]


# --- 1. IdP down + graceful restart ----------------------------------------

@pytest.mark.parametrize("mpm,outage", [("event", "hang"), ("prefork", "500")])
def test_graceful_restart_during_outage_keeps_serving(make_httpd, idp, keys, expect_log, mpm,
                                                      outage):
    """New children of a graceful restart start while the IdP is down
    (hanging or failing): they take the shared copy at once, so valid tokens
    get 200 without waiting, never 503 (before: the new generation had no
    keys at all and answered 503 after AuthJWKSStartupWait)."""
    expect_log(FETCH_FAIL % idp.port)
    h = make_httpd(loc(idp.url(), "    AuthJWKSRefreshInterval 5\n    AuthJWKSMinRefreshInterval 1\n"
                                  "    AuthJWKSFetchTimeout 2\n    AuthJWKSStartupWait 3"), mpm=mpm)
    assert env_of(get(h, "/api/env", tok(keys.rsa)))["REMOTE_USER"] == "alice"
    c0 = idp.count()
    idp.mode = outage
    # the copy is now older than the refresh period: the new children must try the IdP
    H.wait_until(lambda: idp.count() > c0, 25, 0.2, "a refresh attempt against the down IdP")
    mark = h.log_size()
    h.graceful()
    toks = [tok(keys.for_alg(a), a) for a in ("RS256", "ES256", "EdDSA", "PS256")]
    slow = []
    for i in range(24):
        r, dt = timed_get(h, "/api/static.txt" if i % 4 else "/api/env", toks[i % len(toks)])
        assert r.status_code == 200, (i, r.status_code, r.headers, h.log_tail(15))
        if dt >= 2.0:
            slow.append((i, round(dt, 2)))
    assert not slow, "requests slower than 2 s after the graceful restart: %r" % slow
    since = h.log_since(mark)
    assert re.search(SHARED_LOAD % re.escape(idp.url()), since), \
        "the new generation did not load the shared copy:\n" + since[-3000:]
    assert "token rejected" not in since, since[-3000:]


# --- 2. prefork child recycling during an outage ----------------------------

PREFORK_RECYCLE = """LoadModule mpm_prefork_module {moddir}/mod_mpm_prefork.so
StartServers 3
MinSpareServers 2
MaxSpareServers 4
MaxRequestWorkers 8
ServerLimit 8
MaxConnectionsPerChild 5
"""


def test_prefork_recycled_children_start_from_shared_copy(make_httpd, idp, keys, expect_log):
    """MaxConnectionsPerChild 5 with the IdP down: 50 requests on fresh
    connections run through ~10 new children, each of which starts with the
    shared copy: no 503 (before: every new child 503'd)."""
    expect_log(FETCH_FAIL % idp.port)
    h = make_httpd(loc(idp.url(), "    AuthJWKSRefreshInterval 5\n    AuthJWKSMinRefreshInterval 1\n"
                                  "    AuthJWKSStartupWait 1"), mpm="prefork", start=False)
    use_mpm_block(h, PREFORK_RECYCLE)
    h.start()
    t = tok(keys.rsa)
    assert get(h, "/api/static.txt", t).status_code == 200
    soft_wait_for_copy(h)
    idp.mode = "500"
    mark = h.log_size()
    before = set(h.children())
    seen = set(before)
    codes = []
    for i in range(50):
        r = get(h, "/api/static.txt", tok(keys.ec256, "ES256") if i % 5 == 0 else t)
        codes.append(r.status_code)
        seen |= set(h.children())
    assert codes == [200] * 50, [(i, c) for i, c in enumerate(codes) if c != 200][:10]
    new = seen - before
    loads = len(re.findall(SHARED_LOAD % re.escape(idp.url()), h.log_since(mark)))
    assert len(new) >= 5 and loads >= 5, (
        "children did not recycle as configured: %d new pids, %d shared-copy loads"
        % (len(new), loads))


# --- 3. full stop / start during an outage ----------------------------------

def test_stop_start_during_outage_serves_kept_copy(make_httpd, idp, keys, expect_log):
    """httpd stopped and started again while the IdP fails: keys come from the
    copy kept in <DefaultRuntimeDir>/auth_jwks, 200 at once (before: 503)."""
    expect_log(FETCH_FAIL % idp.port)
    h = make_httpd(loc(idp.url(), "    AuthJWKSRefreshInterval 5\n    AuthJWKSMinRefreshInterval 1\n"
                                  "    AuthJWKSStartupWait 2"))
    assert get(h, "/api/static.txt", tok(keys.rsa)).status_code == 200
    soft_wait_for_copy(h)
    assert h.stop()
    idp.mode = "500"
    c0 = idp.count()
    mark = h.log_size()
    h.start()
    for alg in ("RS256", "ES384", "EdDSA"):
        r, dt = timed_get(h, "/api/env", tok(keys.for_alg(alg), alg))
        assert r.status_code == 200, (alg, r.status_code, h.log_tail(15))
        assert dt < 2.0, (alg, dt)
    assert re.search(SHARED_LOAD % re.escape(idp.url()), h.log_since(mark))
    H.wait_until(lambda: idp.count() > c0, 10, 0.1, "the restarted server to try the IdP")


# --- 4. AuthJWKSMaxStale -----------------------------------------------------

STALE_CONF = ("    AuthJWKSMaxStale 60\n    AuthJWKSRefreshInterval 5\n"
              "    AuthJWKSMinRefreshInterval 1\n    AuthJWKSFetchTimeout 2\n    AuthJWKSStartupWait 1")


def _load_stop_and_age(make_httpd, idp, keys, seconds_ago):
    h = make_httpd(loc(idp.url(), STALE_CONF))
    assert get(h, "/api/static.txt", tok(keys.rsa)).status_code == 200
    H.wait_until(lambda: glob.glob(os.path.join(cache_dir(h), "*.json")), 10, 0.1,
                 "the shared copy to be written")
    assert h.stop()
    idp.mode = "500"
    set_record_age(record_file(h), seconds_ago)
    return h


def _assert_503_retry(r):
    assert r.status_code == 503, (r.status_code, r.text[:200])
    ra = r.headers.get("Retry-After", "")
    assert ra.strip().isdigit() and int(ra) > 0, r.headers


def test_copy_older_than_max_stale_refused(make_httpd, idp, keys, expect_log):
    """A kept copy fetched 2 h ago, AuthJWKSMaxStale 60, IdP down: 503 with
    Retry-After (never a 200 on keys that old), reason keys_stale; the IdP
    back: 200 again within a bounded wait."""
    expect_log(FETCH_FAIL % idp.port)
    expect_log(STALE_LOG % idp.port)
    expect_log(REJECTED % "(keys_stale|no_keys_loaded)")
    h = _load_stop_and_age(make_httpd, idp, keys, 2 * 3600)
    mark = h.log_size()
    h.start()
    t = tok(keys.rsa)
    for _ in range(3):
        _assert_503_retry(get(h, "/api/static.txt", t))
    since = h.log_since(mark)
    assert re.search(REJECTED % "keys_stale", since), (
        "503 for the 2 h old copy, but not as keys_stale:\n"
        + "\n".join(auth_jwks_problems(since)[-8:]))
    idp.mode = "ok"
    H.wait_until(lambda: get(h, "/api/static.txt", t).status_code == 200, 30, 0.5,
                 "200 after the IdP came back")


def test_keys_go_stale_while_serving(make_httpd, idp, keys, expect_log):
    """A kept copy 55 s old, AuthJWKSMaxStale 60, IdP down: served at first,
    then, once the last successful fetch is over 60 s ago, 503 keys_stale with
    Retry-After, "keys of URL are stale" logged once; the IdP back: 200."""
    expect_log(FETCH_FAIL % idp.port)
    expect_log(STALE_LOG % idp.port, required=True)
    expect_log(REJECTED % "keys_stale", required=True)
    h = _load_stop_and_age(make_httpd, idp, keys, 55)
    mark = h.log_size()
    h.start()
    t = tok(keys.rsa)
    r = get(h, "/api/static.txt", t)
    assert r.status_code == 200, (r.status_code, h.log_tail(10))
    t_fresh = time.monotonic()
    H.wait_until(lambda: get(h, "/api/static.txt", t).status_code == 503, 20, 0.25,
                 "keys to go stale")
    assert time.monotonic() - t_fresh > 2.0   # not refused before 60 s had passed
    for _ in range(20):
        _assert_503_retry(get(h, "/api/static.txt", t))
    since = h.log_since(mark)
    assert len(re.findall(r"\] keys of \S+ are stale", since)) == 1, auth_jwks_problems(since)
    assert 1 <= len(re.findall(r"token rejected: keys_stale", since)) <= 2, \
        auth_jwks_problems(since)
    idp.mode = "ok"
    H.wait_until(lambda: get(h, "/api/static.txt", t).status_code == 200, 30, 0.5,
                 "200 after the IdP came back")


# --- 5. one fetch per server --------------------------------------------------

PREFORK_8 = """LoadModule mpm_prefork_module {moddir}/mod_mpm_prefork.so
StartServers 8
MinSpareServers 8
MaxSpareServers 8
MaxRequestWorkers 8
ServerLimit 8
"""


def test_one_fetch_per_server_prefork_8(make_httpd, idp, keys, expect_log):
    """8 prefork children, AuthJWKSRefreshInterval 5: at most 2 fetches at
    startup and one per interval after (before: every child fetched, 8 per
    interval); a flood of random kids adds at most one fetch per
    AuthJWKSMinRefreshInterval for the whole server."""
    expect_log(REJECTED % "no_matching_key", required=True)
    h = make_httpd(loc(idp.url(), "    AuthJWKSRefreshInterval 5\n    AuthJWKSMinRefreshInterval 2\n"
                                  "    AuthJWKSStartupWait 10"), mpm="prefork", start=False)
    use_mpm_block(h, PREFORK_8)
    h.start()
    H.wait_until(lambda: len(h.children()) == 8, 15, 0.1, "8 prefork children")
    t = tok(keys.rsa)
    assert get(h, "/api/static.txt", t).status_code == 200
    time.sleep(1.0)                                # every child's first load is over
    startup = idp.count()
    assert 1 <= startup <= 2, "%d fetches at startup by 8 children" % startup
    t0 = time.monotonic()
    time.sleep(16)
    steady = idp.count() - startup
    span = time.monotonic() - t0
    bound = math.floor(span / 5) + 1
    assert steady <= bound, "%d fetches in %.1f s (bound %d, 1 per 5 s interval)" % (
        steady, span, bound)
    assert steady >= 2, "no periodic refresh in %.1f s (%d fetches)" % (span, steady)

    # a flood of unknown kids on fresh connections, spread over the 8 children
    # and over ~5 s (10 bursts of 20), so that several MinRefreshIntervals pass
    expect_log(r"AH00161")       # MaxRequestWorkers 8 reached: deliberate here
    flood = [H.mint(H.std_claims(), keys.rsa, "RS256", kid=uuid.uuid4().hex) for _ in range(200)]
    c1 = idp.count()
    t1 = time.monotonic()
    res = []
    with cf.ThreadPoolExecutor(6) as ex:
        for burst in range(10):
            res += list(ex.map(lambda x: timed_get(h, "/api/static.txt", x),
                               flood[burst * 20:(burst + 1) * 20]))
            time.sleep(max(0.0, t1 + 0.5 * (burst + 1) - time.monotonic()))
    span = time.monotonic() - t1
    time.sleep(0.5)
    grew = idp.count() - c1
    codes = {r.status_code for r, _ in res}
    assert codes == {401}, codes
    bound = (math.floor(span / 2) + 1) + (math.floor(span / 5) + 1)   # kicks + periodic
    assert grew <= bound, "%d fetches during a %.1f s flood of 200 random kids (bound %d)" % (
        grew, span, bound)
    slow = sorted(dt for _, dt in res if dt > 1.0)
    assert max(dt for _, dt in res) < 2.0 + 1.5, slow[-5:]
    assert len(slow) <= 8, "%d of 200 random-kid requests waited over 1 s: %r" % (
        len(slow), [round(x, 2) for x in slow[-10:]])


# --- 6. rotation: the first request with a new kid -----------------------------

def test_rotation_first_request_with_new_kid_accepted(make_httpd, idp, keys, other_keys):
    """The IdP publishes a new key: the very first token signed with it gets
    200 within AuthJWKSRotationWait (default 2 s), not 401 (before: 401 until
    the kicked refresh had run). RefreshInterval 3600: only the unknown-kid
    refresh can explain it."""
    h = make_httpd(loc(idp.url(), "    AuthJWKSRefreshInterval 3600\n"
                                  "    AuthJWKSMinRefreshInterval 1\n    AuthJWKSStartupWait 10"))
    assert get(h, "/api/static.txt", tok(keys.rsa)).status_code == 200
    time.sleep(1.5)                                 # past MinRefreshInterval since the load
    c0 = idp.count()
    idp.set(H.jwks_doc(keys.all() + [other_keys.rsa, other_keys.ec256]))
    new = tok(other_keys.rsa, sub="bob")
    r, dt = timed_get(h, "/api/env", new)
    assert r.status_code == 200, (r.status_code, r.headers.get("WWW-Authenticate"),
                                  h.log_tail(10))
    assert env_of(r)["REMOTE_USER"] == "bob"
    assert dt < 2.0 + 1.5, "the first request with the new kid took %.2f s" % dt
    assert idp.count() - c0 >= 1
    # the other new key too (same refresh), and the old keys still work
    assert get(h, "/api/static.txt", tok(other_keys.ec256, "ES256")).status_code == 200
    assert get(h, "/api/static.txt", tok(keys.rsa)).status_code == 200
    assert idp.count() - c0 <= 2


# --- 7. cache directory hygiene ------------------------------------------------

@pytest.mark.parametrize("bad", ["mode0777", "other_owner"])
def test_cache_dir_unsafe_refused(make_httpd, idp, expect_log, bad):
    """A cache directory writable by group/other, or owned by another user:
    httpd refuses to start, naming AuthJWKSCacheDir (whoever can write there
    chooses our keys)."""
    expect_log(r"AuthJWKSCacheDir")
    h = make_httpd("", start=False)
    d = os.path.join(h.root, "data", "jwks-cache")
    os.mkdir(d)
    if bad == "mode0777":
        os.chmod(d, 0o777)
    else:
        os.chmod(d, 0o700)
        os.chown(d, pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid)
    h.write_conf('AuthJWKSCacheDir "%s"\n' % d + loc(idp.url()))
    with pytest.raises(RuntimeError) as ei:
        h.start(timeout=8)
    msg = str(ei.value) + h.log_text()
    assert "AuthJWKSCacheDir" in msg and d in msg, msg[-2000:]
    assert not h._port_open()
    assert idp.count() == 0


def test_cache_dir_created_private(make_httpd, idp, keys):
    """A fresh AuthJWKSCacheDir path: created owned by the httpd user, mode
    0700; after the first fetch its files are 0600 and owned by that user."""
    h = make_httpd("", start=False)
    d = os.path.join(h.root, "data", "fresh-cache")
    h.write_conf('AuthJWKSCacheDir "%s"\n' % d + loc(idp.url(), "    AuthJWKSStartupWait 10"))
    h.start()
    assert get(h, "/api/static.txt", tok(keys.rsa)).status_code == 200
    H.wait_until(lambda: glob.glob(os.path.join(d, "*.json")), 10, 0.1, "the record file")
    user = pwd.getpwnam(HTTPD_USER)
    st = os.lstat(d)
    assert stat.S_ISDIR(st.st_mode)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (user.pw_uid, 0o700), \
        (st.st_uid, oct(st.st_mode))
    files = os.listdir(d)
    assert files
    for name in files:
        fst = os.lstat(os.path.join(d, name))
        assert stat.S_ISREG(fst.st_mode), name
        assert (fst.st_uid, stat.S_IMODE(fst.st_mode)) == (user.pw_uid, 0o600), \
            (name, fst.st_uid, oct(fst.st_mode))
    rec = read_record(record_file(h, d))
    assert rec.get("url") == idp.url(), rec.keys()
    assert json.loads(rec["body"]) == keys.jwks()
    assert not os.path.exists(cache_dir(h)), "the default directory was used as well"


# --- 8. apachectl -t: a jwks section no key source can reach -------------------

@pytest.mark.parametrize("where", ["nowhere", "other_vhost"])
def test_configtest_refuses_section_without_key_source(make_httpd, idp, where):
    h = make_httpd("", start=False)
    section = """    <Location /nosrc>
        AuthType jwks
        AuthName "api"
        AuthJWKSIssuer %s
        AuthJWKSAudience api
        Require valid-user
    </Location>
""" % ISS
    other = ""
    if where == "other_vhost":
        other = """<VirtualHost 127.0.0.1:%d>
    ServerName other
    AuthJWKSURL %s
</VirtualHost>
""" % (h.port, idp.url())
    h.write_conf(other + """<VirtualHost 127.0.0.1:%d>
    ServerName v
%s</VirtualHost>
""" % (h.port, section))
    r = h.configtest()
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "<Location /nosrc>" in out and "key source" in out, out


def test_configtest_accepts_url_in_enclosing_vhost(make_httpd, idp):
    h = make_httpd("", start=False)
    h.write_conf("""<VirtualHost 127.0.0.1:%d>
    ServerName v
    AuthJWKSURL %s
    <Location /inner>
        AuthType jwks
        AuthName "api"
        AuthJWKSIssuer %s
        AuthJWKSAudience api
        Require valid-user
    </Location>
</VirtualHost>
""" % (h.port, idp.url(), ISS))
    r = h.configtest()
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Syntax OK" in out, out
    assert not re.search(r"\b(error|crit|emerg)\b", out, re.I), out


# --- 9. bounded logs through an outage under load ------------------------------

def test_outage_under_load_logs_bounded(make_httpd, idp, keys, expect_log):
    """Keys loaded, the IdP fails, graceful restart, 10 s of valid requests
    from 4 clients: all 200, and the auth_jwks warn/error lines of the window
    stay a small constant (refresh failures with backoff, nothing per request)."""
    expect_log(FETCH_FAIL % idp.port)
    h = make_httpd(loc(idp.url(), "    AuthJWKSRefreshInterval 5\n    AuthJWKSMinRefreshInterval 1\n"
                                  "    AuthJWKSStartupWait 3"))
    assert get(h, "/api/static.txt", tok(keys.rsa)).status_code == 200
    toks = [tok(keys.for_alg(a), a, sub="u%d" % i) for i, a in enumerate(H.ALL_ALGS * 2)]
    idp.mode = "500"
    mark = h.log_size()
    h.graceful()
    stop_at = time.monotonic() + 10

    def client(n):
        codes, i = {}, n
        while time.monotonic() < stop_at:
            r = get(h, "/api/static.txt", toks[i % len(toks)])
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            i += 1
        return codes

    with cf.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(client, range(4)))
    total = {}
    for c in results:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    assert set(total) == {200}, total
    assert sum(total.values()) >= 40, total
    lines = auth_jwks_problems(h.log_since(mark))
    assert len(lines) <= 12, "%d auth_jwks warn/error lines in a 10 s outage (%d requests):\n%s" % (
        len(lines), sum(total.values()), "\n".join(lines[:30]))


@pytest.mark.parametrize("how", ["compiled default", "not a directory"])
def test_default_cache_dir_unusable_warns_and_serves(make_httpd, idp, keys, expect_log, how):
    """No AuthJWKSCacheDir, and the default <DefaultRuntimeDir>/auth_jwks is
    unusable: httpd's compiled-in runtime directory when the configuration
    sets none (Debian's /var/run/apache2, absent until apache2ctl makes it),
    or a file in its place. httpd starts, says so once, and serves tokens
    without the shared copy."""
    warn = r"\[auth_jwks:warn\].*AuthJWKSCacheDir not set and the default \S+ is unusable"
    if how == "compiled default" and os.path.isdir("/var/run/apache2"):
        pytest.skip("/var/run/apache2 exists on this machine")
    expect_log(warn, required=True)
    h = make_httpd("", start=False)
    h.write_conf(loc(idp.url(), "    AuthJWKSStartupWait 10"))
    with open(h.conf_path) as f:
        text = f.read()
    if how == "compiled default":
        text = re.sub(r"(?m)^DefaultRuntimeDir .*$", "", text)
    else:
        with open(os.path.join(h.root, "run", "auth_jwks"), "w") as f:
            f.write("not a directory\n")
    with open(h.conf_path, "w") as f:
        f.write(text)
    h.start()
    assert get(h, "/api/static.txt", tok(keys.rsa)).status_code == 200
    assert len(re.findall(warn, h.log_text())) == 1, h.log_tail()
    # a graceful restart reads the configuration again: still serving
    h.graceful()
    assert get(h, "/api/static.txt", tok(keys.rsa)).status_code == 200


def test_explicit_cache_dir_unusable_refused(make_httpd, idp, expect_log):
    """The same directory named by AuthJWKSCacheDir: the operator chose it,
    so httpd refuses to start."""
    expect_log(r"AuthJWKSCacheDir .*cannot create", required=True)
    h = make_httpd("", start=False)
    d = os.path.join(h.root, "run", "absent", "apache2", "auth_jwks")
    h.write_conf('AuthJWKSCacheDir "%s"\n' % d + loc(idp.url()))
    with pytest.raises(RuntimeError):
        h.start(timeout=8)
    assert not h._port_open()


def test_unknown_kid_flood_during_hung_refresh_parks_no_workers(make_httpd, idp, keys,
                                                                expect_log):
    """The IdP accepts connections and never answers while an early refresh
    runs; a flood of tokens with random kids arrives. Only the request whose
    kick started the fetch and the first few after it wait (AuthJWKSRotationWait
    5 s here); the rest are answered at once, and valid tokens keep being
    served promptly (before: every forged token held a worker for the whole
    wait, and the 16 workers were all parked)."""
    expect_log(REJECTED % "no_matching_key", required=True)
    expect_log(FETCH_FAIL % idp.port)
    h = make_httpd(loc(idp.url(), "    AuthJWKSRefreshInterval 300\n"
                                  "    AuthJWKSMinRefreshInterval 1\n    AuthJWKSFetchTimeout 30\n"
                                  "    AuthJWKSRotationWait 5\n    AuthJWKSStartupWait 10"))
    good = tok(keys.rsa)
    assert get(h, "/api/static.txt", good).status_code == 200
    time.sleep(1.3)                                 # past MinRefreshInterval since the load
    idp.mode = "hang"
    forged = [H.mint(H.std_claims(), keys.rsa, "RS256", kid="rnd-" + uuid.uuid4().hex)
              for _ in range(48)]
    c0 = idp.count()

    def one(t):
        r, dt = timed_get(h, "/api/static.txt", t)
        return r.status_code, dt

    with cf.ThreadPoolExecutor(32) as ex:
        futs = [ex.submit(one, t) for t in forged]
        time.sleep(0.5)                             # the flood is in
        valid = [timed_get(h, "/api/static.txt", good) for _ in range(5)]
        flood = [f.result(timeout=60) for f in futs]
    assert idp.count() - c0 >= 1, "no refresh was started"
    assert all(code == 401 for code, _ in flood), flood
    waited = [dt for _, dt in flood if dt >= 4.0]
    assert len(waited) <= 4 * len(h.children()), (len(waited), sorted(dt for _, dt in flood))
    assert all(r.status_code == 200 for r, _ in valid), [r.status_code for r, _ in valid]
    assert max(dt for _, dt in valid) < 2.5, [round(dt, 2) for _, dt in valid]
    idp.mode = "ok"
