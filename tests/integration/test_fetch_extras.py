"""The key fetch's credentials and proxy, against a real httpd:
AuthJWKSFetchHeader (a JWKS server that answers 401 without the header, the
value read from a root-only file by httpd's parent and re-read when it
rotates, never sent after a redirect, never to the proxy, never logged) and
AuthJWKSFetchProxy (a real CONNECT proxy on loopback that records what it
is asked, with Basic credentials from a root-only file; http:// loopback
fetches never go through it)."""
import base64
import http.server
import json
import os
import select
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import time

import pytest

import harness as H
from conftest import REJECTED, TIMEOUT, assert_invalid_token, env_of, get

ISS = "https://issuer.test"
FETCH_FAILED = r"\[auth_jwks:(error|warn)\].*(HTTP status|fetch failed)"
NO_KEYS = REJECTED % "no_keys_loaded"


class AuthJWKSServer:
    """Serves one JWKS at /jwks (and /jwks2) only to requests whose header
    `name` equals one of `accept`; 401 otherwise. /moved redirects to
    `redirect_to`. Records (path, headers) of every request."""

    def __init__(self, doc, accept, name="Authorization", tls=None, redirect_to=None):
        self.doc = json.dumps(doc).encode()
        self.accept = set(accept)
        self.name = name
        self.redirect_to = redirect_to
        self.log = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def reply(self, code, body=b"", extra=()):
                self.send_response(code)
                for k, v in extra:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                with outer.lock:
                    outer.log.append((self.path, dict(self.headers)))
                    accept = set(outer.accept)
                if self.path == "/moved" and outer.redirect_to:
                    return self.reply(302, b"", [("Location", outer.redirect_to)])
                if self.headers.get(outer.name) not in accept:
                    return self.reply(401, b"no", [("WWW-Authenticate", 'Bearer realm="k8s"')])
                self.reply(200, outer.doc, [("Content-Type", "application/json")])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def url(self, path="/jwks"):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def set_accept(self, values):
        with self.lock:
            self.accept = set(values)

    def seen(self, path="/jwks"):
        with self.lock:
            return [h for p, h in self.log if p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class ConnectProxy:
    """A forward proxy for CONNECT to 127.0.0.1 only; records (method,
    target, headers) of each request; with `creds` ("user:password") it
    answers 407 unless Proxy-Authorization carries them."""

    def __init__(self, creds=None):
        self.log = []
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                s = self.request
                s.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = s.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                hdrs = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                with outer.lock:
                    outer.log.append((method, target, hdrs))
                want = creds and "Basic " + base64.b64encode(creds.encode()).decode()
                if want and hdrs.get("proxy-authorization") != want:
                    s.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                              b"Proxy-Authenticate: Basic realm=\"p\"\r\n"
                              b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                host, _, port = target.rpartition(":")
                if method != "CONNECT" or host != "127.0.0.1":
                    s.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
                    return
                up = socket.create_connection((host, int(port)), timeout=10)
                s.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    up.sendall(rest)
                deadline = time.monotonic() + 20
                try:
                    while time.monotonic() < deadline:
                        r, _, _ = select.select([s, up], [], [], 1)
                        done = False
                        for src in r:
                            d = src.recv(65536)
                            if not d:
                                done = True
                                break
                            (up if src is s else s).sendall(d)
                        if done:
                            break
                finally:
                    up.close()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def entries(self):
        with self.lock:
            return list(self.log)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


CRED_DIRS = []


@pytest.fixture(scope="module", autouse=True)
def _remove_cred_dirs():
    yield
    for d in CRED_DIRS:
        shutil.rmtree(d, ignore_errors=True)


def root_file(content, mode=0o600):
    """A credential file as root keeps it: owned by root, mode 0600, in a
    directory anyone may traverse (the httpd user still cannot read it)."""
    d = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-cred-", dir="/tmp"))
    CRED_DIRS.append(d)
    p = os.path.join(d, "token")
    write_root(p, content, mode)
    return p


def write_root(path, content, mode=0o600):
    """Replace path atomically (as kubelet swaps a projected token)."""
    tmp = path + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content.encode())
    finally:
        os.close(fd)
    os.chown(tmp, 0, 0)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def section(name, url, extra=""):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    AuthJWKSRefreshInterval 5
    AuthJWKSMinRefreshInterval 1
%s
    Require valid-user
</Location>
""" % (name, url, ISS, extra)


def tok(keys, **over):
    return H.mint(H.std_claims(**over), keys.rsa, "RS256")


# ------------------------------------------------------------- credentials

def test_fetch_header_from_root_file(make_httpd, keys, expect_log):
    t1 = "eyJhbGciOiJSUzI1NiJ9.sa-token-one.sig1"
    cred = root_file(t1 + "\n")
    srv = AuthJWKSServer(keys.jwks(), accept=["Bearer " + t1])
    try:
        h = make_httpd("AuthJWKSFetchHeader %s Authorization Bearer %s\n%s" % (
            srv.url(), cred, section("k8s", srv.url())))
        env = env_of(get(h, "/k8s/env", tok(keys)))
        assert env["REMOTE_USER"] == "alice"
        seen = srv.seen()
        assert seen and all(s.get("Authorization") == "Bearer " + t1 for s in seen), seen
        assert t1 not in h.log_text() and "sa-token-one" not in h.log_text()
        # the httpd user cannot read the file: the parent read it
        st = os.stat(cred)
        assert st.st_uid == 0 and st.st_mode & 0o077 == 0
    finally:
        srv.close()


def test_fetch_header_prefork(make_httpd, keys):
    cred = root_file("prefork-token")
    srv = AuthJWKSServer(keys.jwks(), accept=["Token prefork-token"], name="X-Auth")
    try:
        h = make_httpd("AuthJWKSFetchHeader %s X-Auth Token %s\n%s" % (
            srv.url(), cred, section("k8s", srv.url())), mpm="prefork")
        assert env_of(get(h, "/k8s/env", tok(keys)))["REMOTE_USER"] == "alice"
        assert all(s.get("X-Auth") == "Token prefork-token" for s in srv.seen())
    finally:
        srv.close()


def test_without_the_header_the_server_refuses(make_httpd, keys, expect_log):
    expect_log(FETCH_FAILED, required=True)
    expect_log(NO_KEYS, required=True)
    srv = AuthJWKSServer(keys.jwks(), accept=["Bearer x"])
    try:
        h = make_httpd(section("k8s", srv.url()).replace("AuthJWKSStartupWait 10",
                                                         "AuthJWKSStartupWait 3"))
        r = get(h, "/k8s/env", tok(keys))
        assert r.status_code == 503
        assert "HTTP status 401" in h.log_text()
    finally:
        srv.close()


def test_rotated_file_is_used_without_restart(make_httpd, keys, expect_log):
    t1, t2 = "rotating-token-one", "rotating-token-two"
    cred = root_file(t1)
    srv = AuthJWKSServer(keys.jwks(), accept=["Bearer " + t1, "Bearer " + t2])
    try:
        h = make_httpd("AuthJWKSFetchHeader %s Authorization Bearer %s\n%s" % (
            srv.url(), cred, section("k8s", srv.url())))
        assert get(h, "/k8s/env", tok(keys)).status_code == 200
        write_root(cred, t2 + "\n")
        # the parent re-reads about every 10 s; the refresh runs every 5 s
        H.wait_until(lambda: any(s.get("Authorization") == "Bearer " + t2 for s in srv.seen()),
                     40, 0.5, "a fetch with the rotated token")
        n = len(srv.seen())
        H.wait_until(lambda: len(srv.seen()) > n + 1, 20, 0.5, "two more fetches")
        assert all(s.get("Authorization") == "Bearer " + t2 for s in srv.seen()[n:])
        assert get(h, "/k8s/env", tok(keys)).status_code == 200
        assert "rotating-token" not in h.log_text()
    finally:
        srv.close()


def test_fetch_header_after_graceful_restart(make_httpd, keys):
    cred = root_file("graceful-token")
    srv = AuthJWKSServer(keys.jwks(), accept=["Bearer graceful-token"])
    try:
        h = make_httpd("AuthJWKSFetchHeader %s Authorization Bearer %s\n%s" % (
            srv.url(), cred, section("k8s", srv.url())))
        assert get(h, "/k8s/env", tok(keys)).status_code == 200
        h.graceful()
        n = len(srv.seen())
        H.wait_until(lambda: len(srv.seen()) > n, 20, 0.5, "a fetch after the restart")
        assert all(s.get("Authorization") == "Bearer graceful-token" for s in srv.seen())
        assert get(h, "/k8s/env", tok(keys)).status_code == 200
    finally:
        srv.close()


def test_never_sent_after_a_redirect(make_httpd, keys, expect_log):
    expect_log(FETCH_FAILED, required=True)
    expect_log(NO_KEYS, required=True)
    other = AuthJWKSServer(keys.jwks(), accept=["Bearer secret-for-k8s-only"])
    srv = AuthJWKSServer(keys.jwks(), accept=["Bearer secret-for-k8s-only"],
                         redirect_to=other.url())
    cred = root_file("secret-for-k8s-only")
    try:
        h = make_httpd("AuthJWKSFetchHeader %s Authorization Bearer %s\n%s" % (
            srv.url("/moved"), cred,
            section("k8s", srv.url("/moved")).replace("AuthJWKSStartupWait 10",
                                                      "AuthJWKSStartupWait 3")))
        assert get(h, "/k8s/env", tok(keys)).status_code == 503
        assert srv.seen("/moved"), "the fetch never ran"
        assert srv.seen("/moved")[0].get("Authorization") == "Bearer secret-for-k8s-only"
        time.sleep(1)
        assert other.log == [], other.log        # the other port received nothing at all
        assert "HTTP status 302" in h.log_text()
        assert "secret-for-k8s-only" not in h.log_text()
    finally:
        srv.close()
        other.close()


@pytest.mark.parametrize("case", ["group_readable", "other_readable", "missing", "empty",
                                  "newline_inside", "unknown_url", "host_header", "in_location",
                                  "twice", "file_url"])
def test_fetch_header_config_errors(case):
    url = "http://127.0.0.1:9/jwks"
    good = root_file("tok")
    line = "AuthJWKSFetchHeader %s Authorization Bearer %s\n" % (url, good)
    body = section("api", url)
    if case == "group_readable":
        line = line.replace(good, root_file("tok", 0o640))
    elif case == "other_readable":
        line = line.replace(good, root_file("tok", 0o604))
    elif case == "missing":
        line = line.replace(good, good + ".nope")
    elif case == "empty":
        line = line.replace(good, root_file("\n"))
    elif case == "newline_inside":
        line = line.replace(good, root_file("a\nb"))
    elif case == "unknown_url":
        line = line.replace(url, "http://127.0.0.1:9/other")
    elif case == "host_header":
        line = line.replace("Authorization Bearer", "Host")
    elif case == "in_location":
        body = body.replace("    Require valid-user", "    " + line + "    Require valid-user")
        line = ""
    elif case == "twice":
        line = line + line
    else:
        line = line.replace(url, "file:///etc/hostname")
    r = H.configtest(line + body)
    assert r.returncode != 0, case
    assert "AuthJWKSFetchHeader" in r.stderr + r.stdout, r.stderr
    assert "tok" not in (r.stderr + r.stdout).replace(good, "").replace("token", "")


# ------------------------------------------------------------- proxy

@pytest.fixture
def tls_world(ca, keys):
    srv = AuthJWKSServer(keys.jwks(), accept=["Bearer fetch-cred"], tls=ca)
    proxy = ConnectProxy(creds="puser:p@ss:word")
    yield srv, proxy
    srv.close()
    proxy.close()


def test_fetch_through_proxy_with_credentials(make_httpd, keys, ca, tls_world, expect_log):
    srv, proxy = tls_world
    pcred = root_file("puser:p@ss:word\n")
    hcred = root_file("fetch-cred")
    plain = H.JWKSServer()
    plain.set(keys.jwks())
    try:
        h = make_httpd("AuthJWKSFetchProxy * %s %s\n"
                       "AuthJWKSFetchHeader %s Authorization Bearer %s\n%s%s" % (
                           proxy.url(), pcred, srv.url(), hcred,
                           section("tls", srv.url(), "    AuthJWKSCAFile %s" % ca.ca_file),
                           section("plain", plain.url())))
        assert env_of(get(h, "/tls/env", tok(keys)))["REMOTE_USER"] == "alice"
        assert env_of(get(h, "/plain/env", tok(keys)))["REMOTE_USER"] == "alice"
        ent = proxy.entries()
        connects = [e for e in ent if e[0] == "CONNECT" and e[1] == "127.0.0.1:%d" % srv.port]
        assert connects, ent
        want = "Basic " + base64.b64encode(b"puser:p@ss:word").decode()
        assert any(e[2].get("proxy-authorization") == want for e in connects), connects
        # the fetch header goes to the JWKS server only, never in the CONNECT
        assert not any("authorization" in e[2] for e in ent), ent
        seen = srv.seen()
        assert seen and all(s.get("Authorization") == "Bearer fetch-cred" for s in seen)
        assert not any("Proxy-Authorization" in s for s in seen), seen
        # http:// loopback never through the proxy
        assert not any(str(plain.port) in e[1] for e in ent), ent
        assert plain.count() >= 1
        text = h.log_text()
        assert "p@ss" not in text and "fetch-cred" not in text
    finally:
        plain.close()


def test_proxy_without_credentials_is_refused(make_httpd, keys, ca, tls_world, expect_log):
    expect_log(FETCH_FAILED, required=True)
    expect_log(NO_KEYS, required=True)
    srv, proxy = tls_world
    hcred = root_file("fetch-cred")
    h = make_httpd("AuthJWKSFetchProxy * %s\nAuthJWKSFetchHeader %s Authorization Bearer %s\n%s"
                   % (proxy.url(), srv.url(), hcred,
                      section("tls", srv.url(), "    AuthJWKSCAFile %s" % ca.ca_file)
                      .replace("AuthJWKSStartupWait 10", "AuthJWKSStartupWait 3")))
    assert get(h, "/tls/env", tok(keys)).status_code == 503
    assert proxy.entries() and srv.seen() == []


def test_per_url_proxy_wins_over_star_and_none(make_httpd, keys, ca, tls_world, expect_log):
    srv, proxy = tls_world
    pcred = root_file("puser:p@ss:word")
    hcred = root_file("fetch-cred")
    dead = "http://127.0.0.1:%d" % H.free_port()
    h = make_httpd("AuthJWKSFetchProxy * %s\nAuthJWKSFetchProxy %s %s %s\n"
                   "AuthJWKSFetchHeader %s Authorization Bearer %s\n%s" % (
                       dead, srv.url(), proxy.url(), pcred, srv.url(), hcred,
                       section("tls", srv.url(), "    AuthJWKSCAFile %s" % ca.ca_file)))
    assert get(h, "/tls/env", tok(keys)).status_code == 200
    assert proxy.entries()
    n = len(proxy.entries())
    h.restart_with(h.extra.replace("AuthJWKSFetchProxy %s %s %s" % (srv.url(), proxy.url(), pcred),
                                   "AuthJWKSFetchProxy %s none" % srv.url()))
    assert get(h, "/tls/env", tok(keys)).status_code == 200
    assert len(proxy.entries()) == n                # direct: the proxy saw nothing new


@pytest.mark.parametrize("args", ["* ftp://127.0.0.1:3128", "* http://u:p@127.0.0.1:3128",
                                  "* http://127.0.0.1:3128/path", "* notaurl",
                                  "http://127.0.0.1:9/jwks http://127.0.0.1:3128",
                                  "* none {cred}", "* http://127.0.0.1:3128 {nocolon}",
                                  "* http://127.0.0.1:3128 {loose}",
                                  "https://127.0.0.1:9/other http://127.0.0.1:3128"])
def test_fetch_proxy_config_errors(args):
    args = args.format(cred=root_file("a:b"), nocolon=root_file("nocolon"),
                       loose=root_file("a:b", 0o644))
    r = H.configtest("AuthJWKSFetchProxy %s\n%s%s" % (
        args, section("api", "http://127.0.0.1:9/jwks"),
        section("api2", "https://127.0.0.1:9/jwks")))
    assert r.returncode != 0, args
    assert "AuthJWKSFetchProxy" in r.stderr + r.stdout, r.stderr


def test_good_config_passes():
    r = H.configtest("AuthJWKSFetchProxy * http://127.0.0.1:3128 %s\n"
                     "AuthJWKSFetchHeader https://127.0.0.1:9/jwks X-Token %s\n%s" % (
                         root_file("a:b"), root_file("t"),
                         section("api", "https://127.0.0.1:9/jwks")))
    assert r.returncode == 0, r.stderr
