"""Integration harness for mod_auth_jwks: keys and tokens, a JWKS server
(HTTP and HTTPS with a throw-away CA), a real httpd per test module or test,
CGI / proxied backends and an error-log checker.

Everything runs on 127.0.0.1; every wait has a deadline.
"""
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid

from jwcrypto import jwk, jws

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULE_SO = os.environ.get("AJW_MODULE") or os.path.join(REPO, "build", "mod_auth_jwks.so")
APACHE = "/usr/sbin/apache2"
MODDIR = "/usr/lib/apache2/modules"
PY = "/usr/bin/python3"


def _httpd_env():
    """Environment for every apache2 invocation. AJW_HTTPD_ENV (optional) holds
    extra KEY=VALUE words (shell-quoted, e.g. "LD_PRELOAD=/x/libasan.so
    ASAN_OPTIONS=log_path=/tmp/asan/asan:halt_on_error=1") added only to httpd's
    environment, never to the test process itself (see run_asan.sh). Unset:
    None, i.e. httpd inherits the test's environment exactly as before."""
    extra = os.environ.get("AJW_HTTPD_ENV")
    if not extra:
        return None
    import shlex
    env = dict(os.environ)
    for word in shlex.split(extra):
        k, sep, v = word.partition("=")
        if not sep or not k:
            raise ValueError("AJW_HTTPD_ENV: %r is not KEY=VALUE" % word)
        env[k] = v
    return env


HTTPD_ENV = _httpd_env()

ALL_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "ES512", "EdDSA"]

# ---------------------------------------------------------------- helpers


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.1, what="condition"):
    """Poll pred() until truthy or the deadline passes; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def make_world_readable_dir(path):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    return path


# ---------------------------------------------------------------- keys & tokens

class Keys:
    """A set of signing keys with kids, one per family."""

    def __init__(self, tag="k"):
        self.rsa = jwk.JWK.generate(kty="RSA", size=2048, kid="%s-rsa" % tag)
        self.ec256 = jwk.JWK.generate(kty="EC", crv="P-256", kid="%s-ec256" % tag)
        self.ec384 = jwk.JWK.generate(kty="EC", crv="P-384", kid="%s-ec384" % tag)
        self.ec521 = jwk.JWK.generate(kty="EC", crv="P-521", kid="%s-ec521" % tag)
        self.ed = jwk.JWK.generate(kty="OKP", crv="Ed25519", kid="%s-ed25519" % tag)

    def all(self):
        return [self.rsa, self.ec256, self.ec384, self.ec521, self.ed]

    def for_alg(self, alg):
        if alg[:2] in ("RS", "PS"):
            return self.rsa
        return {"ES256": self.ec256, "ES384": self.ec384, "ES512": self.ec521,
                "EdDSA": self.ed}[alg]

    def jwks(self, keys=None):
        return jwks_doc(keys if keys is not None else self.all())


def jwks_doc(keys):
    out = []
    for k in keys:
        d = k.export_public(as_dict=True)
        d["use"] = "sig"
        out.append(d)
    return {"keys": out}


def now():
    return int(time.time())


def std_claims(**over):
    """Claims that pass the default test location (iss/aud/exp set)."""
    c = {"iss": "https://issuer.test", "aud": "api", "sub": "alice",
         "iat": now(), "exp": now() + 600, "jti": uuid.uuid4().hex}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


MINTED = []  # every token made here; the log checker looks for leaks


def mint(claims, key, alg="RS256", header_extra=None, kid=True):
    """Compact JWS. kid=True uses the key's kid, a string overrides it,
    None/False leaves it out. header_extra entries override/add; a value of
    None removes a header field."""
    hdr = {"alg": alg, "typ": "JWT"}
    if kid is True:
        hdr["kid"] = key.get("kid") if hasattr(key, "get") else key.key_id
    elif kid:
        hdr["kid"] = kid
    for k, v in (header_extra or {}).items():
        if v is None:
            hdr.pop(k, None)
        else:
            hdr[k] = v
    payload = claims if isinstance(claims, (bytes, str)) else json.dumps(claims, separators=(",", ":"))
    if isinstance(payload, str):
        payload = payload.encode()
    tok = jws.JWS(payload)
    tok.allowed_algs = ALL_ALGS + ["HS256"]
    tok.add_signature(key, alg=alg, protected=json.dumps(hdr))
    return remember(tok.serialize(compact=True))


def remember(token):
    MINTED.append(token)
    return token


def mint_none(claims, header_extra=None):
    hdr = {"alg": "none", "typ": "JWT"}
    hdr.update(header_extra or {})
    return remember("%s.%s." % (b64u(json.dumps(hdr)), b64u(json.dumps(claims))))


def mint_hs256_with_bytes(claims, secret, kid=None):
    hdr = {"alg": "HS256", "typ": "JWT"}
    if kid:
        hdr["kid"] = kid
    si = "%s.%s" % (b64u(json.dumps(hdr)), b64u(json.dumps(claims)))
    sig = hmac.new(secret, si.encode(), hashlib.sha256).digest()
    return remember(si + "." + b64u(sig))


def tamper_payload(token, **claim_changes):
    h, p, s = token.split(".")
    c = json.loads(b64u_decode(p))
    c.update(claim_changes)
    return remember("%s.%s.%s" % (h, b64u(json.dumps(c)), s))


# ---------------------------------------------------------------- TLS material

class TestCA:
    """A CA and a server cert for 127.0.0.1/localhost, written as PEM files."""

    def __init__(self, directory):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        import ipaddress

        make_world_readable_dir(directory)
        t0 = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
        t1 = t0 + datetime.timedelta(days=30)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mod_auth_jwks test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(t0).not_valid_after(t1)
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False,
                                           encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        srv_key = ec.generate_private_key(ec.SECP256R1())
        srv = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
               .issuer_name(ca_name).public_key(srv_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(t0).not_valid_after(t1)
               .add_extension(x509.SubjectAlternativeName([
                   x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                   critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
        self.ca_file = os.path.join(directory, "ca.pem")
        self.cert_file = os.path.join(directory, "server.pem")
        self.key_file = os.path.join(directory, "server.key")
        with open(self.ca_file, "wb") as f:
            f.write(ca.public_bytes(serialization.Encoding.PEM))
        with open(self.cert_file, "wb") as f:
            f.write(srv.public_bytes(serialization.Encoding.PEM))
        with open(self.key_file, "wb") as f:
            f.write(srv_key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        for p in (self.ca_file, self.cert_file):
            os.chmod(p, 0o644)
        os.chmod(self.key_file, 0o600)


# ---------------------------------------------------------------- JWKS server

class JWKSServer:
    """Serves JWKS documents by path; the test can swap documents, fail, hang.

    mode: "ok" | "500" | "hang"  (per server, applies to every path)."""

    def __init__(self, tls=None, hang_seconds=30):
        self.docs = {}
        self.counts = {}
        self.not_modified = 0
        self.mode = "ok"
        self.hang_seconds = hang_seconds
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.log = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                with outer.lock:
                    outer.counts[path] = outer.counts.get(path, 0) + 1
                    outer.log.append((time.monotonic(), path, dict(self.headers)))
                    mode = outer.mode
                    doc = outer.docs.get(path)
                if mode == "hang":
                    outer.stop_event.wait(outer.hang_seconds)
                    self.close_connection = True
                    return
                if mode == "500" or doc is None:
                    code = 500 if mode == "500" else 404
                    body = b"nope"
                    self.send_response(code)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                    self.close_connection = True
                    return
                body = doc
                etag = '"%s"' % hashlib.sha256(body).hexdigest()[:16]
                if self.headers.get("If-None-Match") == etag:
                    with outer.lock:
                        outer.not_modified += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("ETag", etag)
                self.send_header("Cache-Control", "max-age=300")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self, path="/jwks"):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def set(self, doc, path="/jwks"):
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        with self.lock:
            self.docs[path] = body

    def count(self, path="/jwks"):
        with self.lock:
            return self.counts.get(path, 0)

    def total(self):
        with self.lock:
            return sum(self.counts.values())

    def close(self):
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- raw echo backend

class EchoBackend:
    """A plain HTTP server that answers with the exact request headers
    (list of [name, value] in received order) as JSON."""

    def __init__(self):
        outer = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                hdrs = [[k, v] for k, v in self.headers.raw_items()] \
                    if hasattr(self.headers, "raw_items") else list(map(list, self.headers.items()))
                outer.requests.append(hdrs)
                body = json.dumps({"path": self.path, "headers": hdrs}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- httpd

ENV_CGI = """#!/usr/bin/python3
import json, os, sys
sys.stdout.write("Content-Type: application/json\\r\\n\\r\\n")
sys.stdout.write(json.dumps(dict(os.environ), sort_keys=True))
"""

# Echo CGI for the backend vhost: the request headers it received (as httpd
# hands them to CGI: HTTP_* variables; names rebuilt as Title-Case with '-').
HEADERS_CGI = """#!/usr/bin/python3
import json, os, sys
h = {}
for k, v in os.environ.items():
    if k.startswith("HTTP_"):
        h["-".join(p.capitalize() for p in k[5:].split("_"))] = v
for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
    if k in os.environ:
        h["-".join(p.capitalize() for p in k.split("_"))] = os.environ[k]
sys.stdout.write("Content-Type: application/json\\r\\n\\r\\n")
sys.stdout.write(json.dumps({"headers": h, "env": dict(os.environ)}, sort_keys=True))
"""

MPM_CONF = {
    "event": """LoadModule mpm_event_module {moddir}/mod_mpm_event.so
StartServers 1
ServerLimit 8
ThreadsPerChild 16
MinSpareThreads 1
MaxSpareThreads 32
MaxRequestWorkers 16
""",
    # worker only starts a child in the first MaxRequestWorkers/ThreadsPerChild
    # slots, and an old generation's child keeps its slot until its last
    # keep-alive connection ends: headroom for graceful restarts (else
    # "AH00288: scoreboard is full" while old children finish)
    "worker": """LoadModule mpm_worker_module {moddir}/mod_mpm_worker.so
StartServers 1
ServerLimit 8
ThreadsPerChild 16
MinSpareThreads 1
MaxSpareThreads 32
MaxRequestWorkers 128
""",
    "prefork": """LoadModule mpm_prefork_module {moddir}/mod_mpm_prefork.so
StartServers 2
MinSpareServers 1
MaxSpareServers 4
MaxRequestWorkers 8
ServerLimit 8
""",
}

BASE_CONF = """# generated by tests/integration/harness.py
ServerRoot "{root}"
ServerName 127.0.0.1
DefaultRuntimeDir "{root}/run"
PidFile "{root}/run/httpd.pid"
Mutex file:{root}/run default
Listen 127.0.0.1:{port}
Listen 127.0.0.1:{backend_port}
User www-data
Group www-data
ErrorLog "{root}/logs/error_log"
LogLevel {loglevel}
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog "{root}/logs/access_log" common
Timeout 20
LimitRequestFieldSize 65536
LimitRequestLine 65536
KeepAlive On
GracefulShutdownTimeout 10

{mpm}
LoadModule authn_core_module {moddir}/mod_authn_core.so
LoadModule authz_core_module {moddir}/mod_authz_core.so
LoadModule authz_user_module {moddir}/mod_authz_user.so
LoadModule mime_module {moddir}/mod_mime.so
LoadModule alias_module {moddir}/mod_alias.so
LoadModule dir_module {moddir}/mod_dir.so
LoadModule env_module {moddir}/mod_env.so
LoadModule headers_module {moddir}/mod_headers.so
LoadModule proxy_module {moddir}/mod_proxy.so
LoadModule proxy_http_module {moddir}/mod_proxy_http.so
{cgi}
{load_jwks}

TypesConfig /etc/mime.types
DocumentRoot "{root}/htdocs"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{root}/htdocs">
    Require all granted
</Directory>
<Directory "{root}/cgi-bin">
    Options +ExecCGI
    Require all granted
</Directory>
# /<name>/env        -> CGI printing its environment (JSON)
# /<name>/app[...]   -> proxied to the backend vhost's header-echo CGI
# /<name>/raw[...]   -> proxied to the raw Python echo backend (exact header names)
# /<name>/static.txt -> a static file
ScriptAliasMatch "^/[A-Za-z0-9_.-]+/env$" "{root}/cgi-bin/env.py"
AliasMatch "^/[A-Za-z0-9_.-]+/static.txt$" "{root}/htdocs/static.txt"
ProxyPassMatch "^/[A-Za-z0-9_.-]+/app$" "http://127.0.0.1:{backend_port}/echo"
{raw_proxy}
ProxyTimeout 20

<VirtualHost 127.0.0.1:{backend_port}>
    ServerName backend
    # mod_proxy keeps its connections to this vhost (in the same httpd) open:
    # a short keep-alive lets an old generation exit soon after a graceful
    KeepAliveTimeout 1
    # the backend of this httpd's own jwks sections: keep the claim headers they set
    <IfModule auth_jwks_module>
        AuthJWKSStripClaimHeaders Off
    </IfModule>
    ScriptAlias /echo "{root}/cgi-bin/headers.py"
</VirtualHost>

# Tests read one "token rejected" line per refusal: the per-client
# summaries (AuthJWKSLogRefusals, default 5 a minute) start late here, and a
# test that means to see them sets its own.
<IfModule auth_jwks_module>
    AuthJWKSLogRefusals 100000 60
</IfModule>

{extra}
"""

CGI_CONF = {
    "threaded": """LoadModule cgid_module {moddir}/mod_cgid.so
ScriptSock "{root}/run/cgid.sock"
""",
    "prefork": "LoadModule cgi_module {moddir}/mod_cgi.so\n",
}

LOG_LINE = re.compile(r"^\[[^\]]*\] \[(?P<mod>[^:\]\s]*):(?P<lvl>[a-z0-9]+)\]")
BAD_ALWAYS = re.compile(r"exit signal|Segmentation fault|AddressSanitizer|double free|"
                        r"Aborted|core dumped|stack smashing|Assertion .*failed|"
                        r"runtime error:|LeakSanitizer", re.I)
BAD_LEVELS = {"emerg", "alert", "crit", "error"}

RUNNING = []  # every started Httpd, for the per-test log checker


class Httpd:
    def __init__(self, extra="", mpm="event", loglevel="warn auth_jwks:debug",
                 name="httpd", raw_backend_port=None):
        self.root = make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-%s-" % name, dir="/tmp"))
        for d in ("conf", "logs", "run", "htdocs", "cgi-bin", "data"):
            make_world_readable_dir(os.path.join(self.root, d))
        self.port = free_port()
        self.backend_port = free_port()
        while self.backend_port == self.port:
            self.backend_port = free_port()
        self.mpm = mpm
        self.loglevel = loglevel
        self.raw_backend_port = raw_backend_port
        self.conf_path = os.path.join(self.root, "conf", "httpd.conf")
        self.error_log = os.path.join(self.root, "logs", "error_log")
        self.pid_file = os.path.join(self.root, "run", "httpd.pid")
        self.started = False
        self._write_files()
        self.write_conf(extra)

    # -- files
    def _write_files(self):
        for name, text in (("env.py", ENV_CGI), ("headers.py", HEADERS_CGI)):
            p = os.path.join(self.root, "cgi-bin", name)
            with open(p, "w") as f:
                f.write(text)
            os.chmod(p, 0o755)
        for name, text in (("static.txt", "static ok\n"), ("index.html", "<p>index</p>\n")):
            p = os.path.join(self.root, "htdocs", name)
            with open(p, "w") as f:
                f.write(text)
            os.chmod(p, 0o644)

    def data_file(self, name, content):
        p = os.path.join(self.root, "data", name)
        with open(p, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        os.chmod(p, 0o644)
        return p

    def conf_text(self, extra):
        threaded = self.mpm != "prefork"
        fmt = dict(root=self.root, moddir=MODDIR, module=MODULE_SO, port=self.port,
                   backend_port=self.backend_port, loglevel=self.loglevel)
        raw = ""
        if self.raw_backend_port:
            raw = 'ProxyPassMatch "^/[A-Za-z0-9_.-]+/raw$" "http://127.0.0.1:%d/raw"' % self.raw_backend_port
        return BASE_CONF.format(
            mpm=MPM_CONF[self.mpm].format(**fmt),
            cgi=CGI_CONF["threaded" if threaded else "prefork"].format(**fmt),
            extra=extra, raw_proxy=raw,
            load_jwks="" if os.environ.get("AJW_NO_MODULE") else "LoadModule auth_jwks_module %s" % MODULE_SO,
            **fmt)

    def write_conf(self, extra):
        self.extra = extra
        with open(self.conf_path, "w") as f:
            f.write(self.conf_text(extra))

    # -- control
    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def configtest(self):
        return subprocess.run([APACHE, "-t", "-f", self.conf_path], capture_output=True,
                              text=True, timeout=30, env=HTTPD_ENV)

    def _port_open(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start(self, timeout=20):
        r = subprocess.run([APACHE, "-f", self.conf_path, "-k", "start"], capture_output=True,
                           text=True, timeout=30, env=HTTPD_ENV)
        if r.returncode != 0:
            raise RuntimeError("apache2 -k start failed (%d): %s%s\n--- error_log:\n%s" % (
                r.returncode, r.stdout, r.stderr, self.log_tail()))
        self.started = True
        RUNNING.append(self)
        try:
            wait_until(lambda: self.pid() and self._port_open(), timeout, 0.05, "httpd to listen")
        except TimeoutError:
            raise RuntimeError("httpd did not come up:\n" + self.log_tail())
        self.start_mark = 0
        return self

    def children(self):
        ppid = self.pid()
        if not ppid:
            return []
        out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(ppid)], capture_output=True,
                             text=True, timeout=10).stdout
        pids = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].startswith("apache2"):
                pids.append(int(parts[0]))
        return pids

    def graceful(self, timeout=20):
        gen0 = self.log_text().count("resuming normal operations")
        r = subprocess.run([APACHE, "-f", self.conf_path, "-k", "graceful"], capture_output=True,
                           text=True, timeout=30, env=HTTPD_ENV)
        if r.returncode != 0:
            raise RuntimeError("graceful failed: %s%s" % (r.stdout, r.stderr))
        wait_until(lambda: self.log_text().count("resuming normal operations") > gen0,
                   timeout, 0.1, "graceful restart to complete")

    def stop(self, timeout=25):
        if not self.started:
            return True
        pid = self.pid()
        subprocess.run([APACHE, "-f", self.conf_path, "-k", "stop"], capture_output=True,
                       text=True, timeout=30, env=HTTPD_ENV)
        clean = True
        if pid:
            try:
                wait_until(lambda: not _alive(pid), timeout, 0.1, "httpd %d to exit" % pid)
            except TimeoutError:
                clean = False
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        self.started = False
        if self in RUNNING:
            RUNNING.remove(self)
        return clean

    def restart_with(self, extra, timeout=20):
        self.stop()
        self.write_conf(extra)
        return self.start(timeout)

    def cleanup(self):
        self.stop()
        if os.environ.get("AJW_KEEP_TMP"):
            return
        shutil.rmtree(self.root, ignore_errors=True)

    # -- log
    def log_text(self):
        try:
            with open(self.error_log, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.error_log)
        except OSError:
            return 0

    def log_since(self, mark):
        try:
            with open(self.error_log, "rb") as f:
                f.seek(mark)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])


def api_admin_locations(url, iss, extra=""):
    """/api (any valid token) and /admin (Require claim roles:admin), both
    verified against url for iss, with short refresh intervals for tests."""
    base = """    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSRefreshInterval 5
    AuthJWKSMinRefreshInterval 1
    AuthJWKSStartupWait 10
%s""" % (url, iss, extra)
    return ("<Location /api>\n%s    Require valid-user\n</Location>\n"
            "<Location /admin>\n%s    Require claim roles:admin\n</Location>\n") % (base, base)


def configtest(extra, name="cfg"):
    """`apache2 -t` on a throwaway config holding `extra`; never started."""
    h = Httpd(extra, name=name)
    try:
        return h.configtest()
    finally:
        h.cleanup()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombie check
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def bad_log_lines(text, expected):
    """Lines at error+ (any module), auth_jwks at warn+, or crash signs,
    that match none of the expected regexes."""
    bad = []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        flagged = bool(BAD_ALWAYS.search(line))
        if m:
            lvl, mod = m.group("lvl"), m.group("mod")
            if lvl in BAD_LEVELS:
                flagged = True
            if mod == "auth_jwks" and lvl == "warn":
                flagged = True
        if flagged and not any(re.search(rx, line) for rx in expected):
            bad.append(line)
    return bad


# ---------------------------------------------------------------- HTTP answers

WWW_AUTH_PARAM = re.compile(r'([A-Za-z_]+)="((?:[^"\\]|\\.)*)"')


def parse_bearer(value):
    """'Bearer realm="x", error="y"' -> {'realm': 'x', 'error': 'y'}; None if not Bearer."""
    if value is None:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return {k: v for k, v in WWW_AUTH_PARAM.findall(rest)}


# ---------------------------------------------------------------- fleet key and shared records
# AuthJWKSFleetKey (or the per-server <cache dir>.key): keys derived by
# HKDF-SHA256 (salt "mod_auth_jwks"); every shared record is
# b"AJW2 " + hex(HMAC-SHA256(record key, J)) + b"\n" + J.

FLEET_SALT = b"mod_auth_jwks"
INFO_RECORD = b"shared record v2"
INFO_NONCE = b"dpop nonce v1"
INFO_JTI = b"dpop jti v1"
RECORD_MAGIC = b"AJW2 "


def write_fleet_key(path, secret=None, mode=0o600, uid=0, gid=0):
    """A key file as an operator makes it (`openssl rand -hex 32 > path`):
    64 hex digits and a newline unless `secret` (bytes) is given. Returns
    the secret as the module sees it (trailing blanks and newlines stripped)."""
    data = secret if secret is not None else os.urandom(32).hex().encode() + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return data.rstrip(b" \t\r\n")


def read_secret(path):
    with open(path, "rb") as f:
        return f.read().rstrip(b" \t\r\n")


def derive_key(secret, info):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=FLEET_SALT, info=info).derive(secret)


def record_mac(secret, body):
    return hmac.new(derive_key(secret, INFO_RECORD), body, hashlib.sha256).hexdigest().encode()


def seal_record(secret, body):
    """The v2 record of the JSON bytes `body`, MAC'd under `secret`'s record key."""
    return RECORD_MAGIC + record_mac(secret, body) + b"\n" + body


def split_record(value):
    """(mac hex bytes, JSON bytes) of a v2 record; AssertionError otherwise."""
    assert value.startswith(RECORD_MAGIC), value[:80]
    head, nl, body = value.partition(b"\n")
    assert nl, value[:80]
    mac = head[len(RECORD_MAGIC):]
    assert re.fullmatch(rb"[0-9a-f]{64}", mac), head
    return mac, body


def record_verifies(secret, value):
    """True when value is a v2 record whose MAC verifies under secret."""
    try:
        mac, body = split_record(value)
    except AssertionError:
        return False
    return hmac.compare_digest(mac, record_mac(secret, body))


def record_json(url, body, fetched=None, max_age=-1, etag=None, ca_file=None, v=2):
    """The compact JSON J of a record (key order as the module writes it)."""
    o = {"v": v, "url": url}
    if ca_file is not None:
        o["ca_file"] = ca_file
    o["fetched"] = int(time.time() * 1e6) if fetched is None else fetched
    o["max_age"] = max_age
    if etag is not None:
        o["etag"] = etag
    o["body"] = body
    return json.dumps(o, separators=(",", ":")).encode()
