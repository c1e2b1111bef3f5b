"""Responses on AuthType jwks locations and httpd's own caches (mod_cache).

The flaw: with mod_cache's defaults (CacheQuickHandler On) in front of a
proxied API, a response fetched with alice's token was stored and then served
by the cache's quick handler -- which runs before authentication -- to a
request with no token at all.

The fixed module keeps every response on a jwks location out of httpd's
caches (r->no_cache), marks it `Cache-Control: private` (and `Vary` on where
the token came from) for caches outside httpd, and lets an operator opt in
with `AuthJWKSCacheable On` only where caching happens after authentication
(CacheQuickHandler Off).

A tiny Python backend counts the requests that reach it, so "served from the
cache" and "not served from the cache" are both observable; the unprotected
/pub/ locations prove that the very same cache setup does cache (so a 401
below is never an accident of a broken cache config).
"""
import http.server
import os
import pwd
import re
import threading
import time
import uuid

import pytest
import requests

import harness as H
from conftest import REJECTED, TIMEOUT

ISS = "https://issuer.test"
CACHE_MODULES = """LoadModule cache_module {m}/mod_cache.so
LoadModule cache_disk_module {m}/mod_cache_disk.so
LoadModule cache_socache_module {m}/mod_cache_socache.so
LoadModule socache_shmcb_module {m}/mod_socache_shmcb.so
""".format(m=H.MODDIR)

# Cache-Control the backend sends, chosen by the first path segment it sees.
BACKEND_CC = {
    "max": "max-age=300",
    "pub": "public, max-age=300",
    "nostore": "no-store",
}

# Where each token source puts the token.
SOURCES = {
    "cookie": "    AuthJWKSTokenFrom cookie=at\n",
    "query": "    AuthJWKSTokenFrom query=access_token\n",
    "header": "    AuthJWKSTokenFrom header\n",
    "both": "    AuthJWKSTokenFrom header cookie=at\n",
}

# mod_cache refuses to store an answer to a request carrying Authorization
# unless the backend says public / s-maxage / must-revalidate, so header
# tokens are tested against a backend that says `public`. (Its quick handler
# goes further and ignores such requests altogether, see
# test_control_quick_handler_ignores_authorization_requests: header tokens are
# exposed only when the cache runs late, test_late_cache_no_cross_user_replay.)
SEQ_MODE = {"cookie": "max", "query": "max", "header": "pub"}

# A cache entry is committed when the end of the response passes mod_cache's
# filter, which can be a moment after the client has the whole body.
SETTLE = 0.1

QUICK_HANDLER_WARNING = r"\[auth_jwks:warn\].*CacheQuickHandler"


# ---------------------------------------------------------------- backend

class CountingBackend:
    """Answers GET /<mode>/... with the Cache-Control of BACKEND_CC[mode] and
    a body naming the user (X-JWT-Claim-sub, set by AuthJWKSPassClaims
    headers) and how many requests reached this path."""

    def __init__(self):
        self.counts = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                with outer.lock:
                    n = outer.counts[path] = outer.counts.get(path, 0) + 1
                mode = path.strip("/").split("/", 1)[0]
                user = self.headers.get("X-JWT-Claim-sub")
                body = ("secret for %s #%d\n" % (user, n) if user
                        else "public #%d\n" % n).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                if mode in BACKEND_CC:
                    self.send_header("Cache-Control", BACKEND_CC[mode])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def backend():
    b = CountingBackend()
    yield b
    b.close()


# ---------------------------------------------------------------- config

def jwks_loc(path, jwks_url, source, extra=""):
    return """<Location %s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    AuthJWKSPassClaims headers
%s%s    Require valid-user
</Location>
""" % (path, jwks_url, ISS, SOURCES[source], extra)


def cache_dir(h):
    """A CacheRoot under h.root the httpd children (www-data) can write."""
    d = os.path.join(h.root, "cache")
    os.makedirs(d, exist_ok=True)
    pw = pwd.getpwnam("www-data")
    os.chown(d, pw.pw_uid, pw.pw_gid)
    os.chmod(d, 0o755)
    return d


def cache_conf(h, quick=True, store_private=False):
    """mod_cache with /d/ on disk and /s/ in shmcb (and, with the quick
    handler, /x/ on disk told to store even private and no-store answers)."""
    return CACHE_MODULES + """CacheRoot "%s"
CacheSocache shmcb
CacheEnable disk /d/
CacheEnable socache /s/
CacheEnable disk /x/
<Location /x/>
    CacheStorePrivate On
    CacheStoreNoStore On
</Location>
CacheQuickHandler %s
CacheStorePrivate %s
# one cache key for /p?access_token=A and /p: what makes a cached answer to a
# query-token request reachable without the token
CacheIgnoreQueryString On
CacheHeader On
CacheDetailHeader On
""" % (cache_dir(h), "On" if quick else "Off", "On" if store_private else "Off")


def locations(jwks_url, backend_port, stores, sources, cacheable=False):
    """/<store>/<source>/<mode>/<id> -> backend /<mode>/<id>; every source but
    pub is a jwks location taking the token from there. With cacheable,
    /<store>/ok/ is a cookie location with AuthJWKSCacheable On."""
    out = []
    srcs = list(sources) + ["pub"] + (["ok"] if cacheable else [])
    for store in stores:
        for src in srcs:
            out.append('ProxyPass "/%s/%s/" "http://127.0.0.1:%d/"\n' % (store, src, backend_port))
            if src == "ok":
                out.append(jwks_loc("/%s/ok" % store, jwks_url, "cookie",
                                    "    AuthJWKSCacheable On\n"))
            elif src != "pub":
                out.append(jwks_loc("/%s/%s" % (store, src), jwks_url, src))
    return "".join(out)


def cache_server(jwks_server, backend, quick, store_private, stores, sources, cacheable=False):
    h = H.Httpd("", name="cache")
    h.covered = []
    h.allowed = [REJECTED % ".*"]
    try:
        h.write_conf(cache_conf(h, quick, store_private)
                     + locations(jwks_server.url(), backend.port, stores, sources, cacheable))
        h.start()
    except Exception:
        h.cleanup()
        raise
    return h


@pytest.fixture(scope="module")
def srv(jwks_server, backend):
    """mod_cache's defaults: CacheQuickHandler On. /h/... is not cached at all."""
    h = cache_server(jwks_server, backend, True, False, ("d", "s", "x", "h"),
                     ("cookie", "query", "header", "both"))
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


@pytest.fixture(scope="module")
def srv_late(jwks_server, backend):
    """CacheQuickHandler Off (the cache runs as a handler, after
    authentication) and CacheStorePrivate On."""
    h = cache_server(jwks_server, backend, False, True, ("d", "s"),
                     ("cookie", "query", "header"))
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


@pytest.fixture(scope="module")
def srv_optin(jwks_server, backend):
    """As srv_late, with /<store>/ok/: cookie tokens, AuthJWKSCacheable On."""
    h = cache_server(jwks_server, backend, False, True, ("d", "s"), (), cacheable=True)
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


# ---------------------------------------------------------------- requests

def tok(keys, sub="alice"):
    return H.mint(H.std_claims(sub=sub), keys.rsa, "RS256")


def send(h, path, source, token):
    """GET path with the token where `source` expects it (None: no token)."""
    headers, params = {}, None
    if token is not None:
        if source == "cookie":
            headers["Cookie"] = "at=" + token
        elif source == "query":
            params = {"access_token": token}
        elif source in ("header", "both"):
            headers["Authorization"] = "Bearer " + token
        else:
            raise ValueError(source)
    return requests.get(h.url(path), headers=headers, params=params, timeout=TIMEOUT,
                        allow_redirects=False)


def why(r):
    """What mod_cache said about a response (for assertion messages)."""
    return (r.status_code, r.text[:120], r.headers.get("X-Cache"),
            r.headers.get("X-Cache-Detail"), r.headers.get("Cache-Control"),
            r.headers.get("Vary"))


def directives(value):
    return [d.strip().lower() for d in (value or "").split(",") if d.strip()]


def names(value):
    return {d.strip().lower() for d in (value or "").split(",") if d.strip()}


def new_id():
    return uuid.uuid4().hex


# ---------------------------------------------------------------- the cache works

def replayed_without_token(h, backend, keys, store, source):
    """Unprotected /<store>/pub/: the answer to a request shaped like the
    protected ones (token in the cookie/query/header) is stored and replayed
    to a request without the token."""
    mode = SEQ_MODE[source]
    i = new_id()
    path = "/%s/pub/%s/%s" % (store, mode, i)
    bpath = "/%s/%s" % (mode, i)
    r = send(h, path, source, tok(keys))
    assert r.status_code == 200 and r.text == "public #1\n", why(r)
    assert backend.count(bpath) == 1
    time.sleep(SETTLE)
    # the module does not touch Cache-Control outside jwks locations
    assert directives(r.headers.get("Cache-Control")) == directives(BACKEND_CC[mode]), why(r)
    r = send(h, path, source, None)
    assert r.status_code == 200 and r.text == "public #1\n", why(r)
    assert backend.count(bpath) == 1, ("served by the backend, not the cache", why(r))
    assert (r.headers.get("X-Cache") or "").startswith("HIT"), why(r)
    assert "Age" in r.headers, why(r)


@pytest.mark.parametrize("source", ["cookie", "query"])
@pytest.mark.parametrize("store", ["d", "s", "x"], ids=["disk", "socache", "disk-private"])
def test_control_quick_handler_caches_unprotected(srv, backend, keys, store, source):
    replayed_without_token(srv, backend, keys, store, source)


def test_control_quick_handler_ignores_authorization_requests(srv, backend, keys):
    """mod_cache's quick handler neither serves nor stores a request that
    carries Authorization, even for a `public` answer: header tokens were
    never replayed by it (the cookie and query cases were)."""
    i = new_id()
    path = "/d/pub/pub/%s" % i
    for n in (1, 2):
        r = send(srv, path, "header", tok(keys))
        assert r.status_code == 200 and r.text == "public #%d\n" % n, why(r)
        assert r.headers.get("X-Cache") is None, why(r)
    r = send(srv, path, "header", None)
    assert r.text == "public #3\n", why(r)


@pytest.mark.parametrize("source", ["cookie", "query", "header"])
@pytest.mark.parametrize("store", ["d", "s"], ids=["disk", "socache"])
def test_control_late_cache_caches_unprotected(srv_late, backend, keys, store, source):
    replayed_without_token(srv_late, backend, keys, store, source)


# ---------------------------------------------------------------- the flaw

@pytest.mark.parametrize("source", ["cookie", "query", "header"])
@pytest.mark.parametrize("store", ["d", "s", "x"], ids=["disk", "socache", "disk-private"])
def test_protected_answer_never_replayed_without_token(srv, backend, keys, store, source):
    """The issue's sequence under CacheQuickHandler On. /x/ stores private
    and no-store answers too, so only r->no_cache keeps it out there."""
    mode = SEQ_MODE[source]
    i = new_id()
    path = "/%s/%s/%s/%s" % (store, source, mode, i)
    bpath = "/%s/%s" % (mode, i)
    alice = tok(keys, "alice")

    r = send(srv, path, source, alice)
    assert r.status_code == 200 and r.text == "secret for alice #1\n", why(r)
    assert backend.count(bpath) == 1
    time.sleep(SETTLE)

    # the issue: no token -> alice's secret from the quick handler
    r = send(srv, path, source, None)
    assert r.status_code == 401, why(r)
    assert "secret" not in r.text, why(r)
    assert H.parse_bearer(r.headers.get("WWW-Authenticate")) is not None, why(r)
    assert backend.count(bpath) == 1

    # another user gets their own answer, not alice's
    r = send(srv, path, source, tok(keys, "bob"))
    assert r.status_code == 200 and r.text == "secret for bob #2\n", why(r)

    # and nothing was stored: alice again goes to the backend
    r = send(srv, path, source, alice)
    assert r.status_code == 200 and r.text == "secret for alice #3\n", why(r)
    assert backend.count(bpath) == 3, why(r)
    assert not (r.headers.get("X-Cache") or "").startswith("HIT"), why(r)


@pytest.mark.parametrize("source", ["cookie", "query", "header"])
@pytest.mark.parametrize("store", ["d", "s"], ids=["disk", "socache"])
def test_late_cache_no_cross_user_replay(srv_late, backend, keys, store, source):
    """CacheQuickHandler Off + CacheStorePrivate On, no AuthJWKSCacheable:
    authentication runs first, but a stored answer would still go to the
    next authorised user. Nothing is stored."""
    mode = SEQ_MODE[source]
    i = new_id()
    path = "/%s/%s/%s/%s" % (store, source, mode, i)
    bpath = "/%s/%s" % (mode, i)
    r = send(srv_late, path, source, tok(keys, "alice"))
    assert r.status_code == 200 and r.text == "secret for alice #1\n", why(r)
    time.sleep(SETTLE)
    r = send(srv_late, path, source, tok(keys, "bob"))
    assert r.status_code == 200 and r.text == "secret for bob #2\n", why(r)
    r = send(srv_late, path, source, None)
    assert r.status_code == 401 and "secret" not in r.text, why(r)
    r = send(srv_late, path, source, tok(keys, "alice"))
    assert r.status_code == 200 and r.text == "secret for alice #3\n", why(r)
    assert backend.count(bpath) == 3


# ---------------------------------------------------------------- headers for outside caches

@pytest.mark.parametrize("mode", ["max", "pub", "nostore"])
@pytest.mark.parametrize("source", ["cookie", "query", "header", "both"])
def test_cache_control_private_and_vary(srv, backend, keys, source, mode):
    path = "/h/%s/%s/%s" % (source, mode, new_id())
    r = send(srv, path, source, tok(keys))
    assert r.status_code == 200 and r.text.startswith("secret for alice"), why(r)
    cc = directives(r.headers.get("Cache-Control"))
    assert "public" not in cc, why(r)
    if mode == "nostore":
        assert "no-store" in cc, why(r)
    else:
        assert "private" in cc, why(r)
        assert "max-age=300" in cc, why(r)
    vary = names(r.headers.get("Vary"))
    if source in ("cookie", "both"):
        assert "cookie" in vary, why(r)
    if source in ("header", "both"):
        assert "authorization" in vary, why(r)


@pytest.mark.parametrize("store", ["d", "s"], ids=["disk", "socache"])
def test_cache_control_private_on_cached_location(srv, backend, keys, store):
    """The same on locations under CacheEnable (cache filters in the chain)."""
    r = send(srv, "/%s/cookie/max/%s" % (store, new_id()), "cookie", tok(keys))
    assert r.status_code == 200, why(r)
    cc = directives(r.headers.get("Cache-Control"))
    assert "private" in cc and "max-age=300" in cc and "public" not in cc, why(r)
    assert "cookie" in names(r.headers.get("Vary")), why(r)
    r = send(srv, "/%s/header/pub/%s" % (store, new_id()), "header", tok(keys))
    assert r.status_code == 200, why(r)
    cc = directives(r.headers.get("Cache-Control"))
    assert "private" in cc and "max-age=300" in cc and "public" not in cc, why(r)
    assert "authorization" in names(r.headers.get("Vary")), why(r)


# ---------------------------------------------------------------- AuthJWKSCacheable

@pytest.mark.parametrize("store", ["d", "s"], ids=["disk", "socache"])
def test_cacheable_with_quick_handler_off(srv_optin, backend, keys, store, expect_log):
    alice = tok(keys)
    i = new_id()
    path, bpath = "/%s/ok/max/%s" % (store, i), "/max/%s" % i
    r = send(srv_optin, path, "cookie", alice)
    assert r.status_code == 200 and r.text == "secret for alice #1\n", why(r)
    time.sleep(SETTLE)
    r = send(srv_optin, path, "cookie", alice)
    assert r.status_code == 200 and r.text == "secret for alice #1\n", why(r)
    assert backend.count(bpath) == 1, ("AuthJWKSCacheable On: not served from the cache", why(r))
    assert (r.headers.get("X-Cache") or "").startswith("HIT"), why(r)
    # still authenticated before the cache answers
    r = send(srv_optin, path, "cookie", None)
    assert r.status_code == 401 and "secret" not in r.text, why(r)
    expect_log(REJECTED % "bad_signature", required=True)
    r = send(srv_optin, path, "cookie", H.tamper_payload(tok(keys), sub="mallory"))
    assert r.status_code == 401 and "secret" not in r.text, why(r)
    assert backend.count(bpath) == 1


def test_cacheable_with_quick_handler_on_refused_and_warned(make_httpd, jwks_server, backend,
                                                            keys, expect_log):
    expect_log(QUICK_HANDLER_WARNING, required=True)
    h = make_httpd("", start=False)
    h.write_conf(cache_conf(h, quick=True, store_private=True)
                 + locations(jwks_server.url(), backend.port, ("d", "s"), (), cacheable=True))
    h.start()
    alice = tok(keys)
    rounds = 0
    for store in ("d", "s"):
        i = new_id()
        path, bpath = "/%s/ok/max/%s" % (store, i), "/max/%s" % i
        for n in (1, 2, 3):
            r = send(h, path, "cookie", alice)
            rounds += 1
            assert r.status_code == 200 and r.text == "secret for alice #%d\n" % n, why(r)
            time.sleep(SETTLE)
            r = send(h, path, "cookie", None)
            rounds += 1
            assert r.status_code == 401 and "secret" not in r.text, why(r)
        assert backend.count(bpath) == 3
    warnings = [l for l in h.log_text().splitlines() if re.search(QUICK_HANDLER_WARNING, l)]
    assert warnings, h.log_tail()
    # once (per process at most), not once per request
    assert len(warnings) <= max(1, len(h.children())) and len(warnings) < rounds, warnings
