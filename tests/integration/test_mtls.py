"""Certificate-bound access tokens (RFC 8705 §3) against a real httpd with
mod_ssl: a test CA, a server certificate and client certificates."""
import datetime
import hashlib
import os
import shutil
import tempfile

import pytest
import requests

import harness as H
from conftest import TIMEOUT, module_httpd

ISS = "https://issuer.test"
TOKEN_REJECTED = r"\[auth_jwks:error\].*token rejected: %s"


class ClientCA:
    """A client-certificate CA and certificates it signs (PEM files)."""

    def __init__(self, directory):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        self._x509, self._hashes, self._ser, self._ec, self._oid = x509, hashes, serialization, ec, NameOID
        self.dir = directory
        self.t0 = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mod_auth_jwks client CA")])
        ca = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
              .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(self.t0).not_valid_after(self.t0 + datetime.timedelta(days=30))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(self.key, hashes.SHA256()))
        self.ca_file = os.path.join(directory, "client-ca.pem")
        with open(self.ca_file, "wb") as f:
            f.write(ca.public_bytes(serialization.Encoding.PEM))
        os.chmod(self.ca_file, 0o644)

    def issue(self, cn):
        x509, ser = self._x509, self._ser
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(self._oid.COMMON_NAME, cn)]))
                .issuer_name(self.name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(self.t0)
                .not_valid_after(self.t0 + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(self.key, self._hashes.SHA256()))
        cf = os.path.join(self.dir, cn + ".pem")
        kf = os.path.join(self.dir, cn + ".key")
        with open(cf, "wb") as f:
            f.write(cert.public_bytes(ser.Encoding.PEM))
        with open(kf, "wb") as f:
            f.write(key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                      ser.NoEncryption()))
        x5t = H.b64u(hashlib.sha256(cert.public_bytes(ser.Encoding.DER)).digest())
        return (cf, kf), x5t


@pytest.fixture(scope="module")
def clients():
    d = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-mtls-", dir="/tmp"))
    ca = ClientCA(d)
    alice = ca.issue("alice")
    mallory = ca.issue("mallory")
    yield ca, alice, mallory
    shutil.rmtree(d, ignore_errors=True)


def loc(name, body):
    return """    <Location /%s>
        AuthType jwks
        AuthName "api"
        AuthJWKSURL {jwks}
        AuthJWKSIssuer %s
        AuthJWKSAudience api
        AuthJWKSStartupWait 10
%s
        Require valid-user
    </Location>
""" % (name, ISS, body)


TLS_CONF = """LoadModule socache_shmcb_module {moddir}/mod_socache_shmcb.so
LoadModule ssl_module {moddir}/mod_ssl.so
SSLSessionCache "shmcb:{root}/run/ssl_scache(512000)"
Listen 127.0.0.1:{tls_port}
<VirtualHost 127.0.0.1:{tls_port}>
    ServerName 127.0.0.1
    SSLEngine on
    SSLCertificateFile {cert}
    SSLCertificateKeyFile {key}
    SSLCACertificateFile {client_ca}
    SSLVerifyClient optional
    SSLVerifyDepth 2
{locs}
</VirtualHost>
# the same over plain http: never a client certificate
{plain}
"""


@pytest.fixture(scope="module")
def srv(jwks_server, ca, clients):
    client_ca = clients[0]
    h = H.Httpd("", name="mtls")
    h.tls_port = H.free_port()
    locs = (loc("opt", "        AuthJWKSCertBound optional")
            + loc("req", "        AuthJWKSCertBound require")
            + loc("off", ""))
    extra = TLS_CONF.format(moddir=H.MODDIR, root=h.root, tls_port=h.tls_port,
                            cert=ca.cert_file, key=ca.key_file, client_ca=client_ca.ca_file,
                            locs=locs, plain=loc("plainopt", "        AuthJWKSCertBound optional"))
    h.write_conf(extra.replace("{jwks}", jwks_server.url()))
    h.covered = []
    h.allowed = [TOKEN_REJECTED % ".*"]
    h.start()
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def tget(h, path, token, cert=None, ca=None):
    return requests.get("https://127.0.0.1:%d%s" % (h.tls_port, path),
                        headers={"Authorization": "Bearer " + token}, cert=cert,
                        verify=ca.ca_file, timeout=TIMEOUT)


def bound(keys, x5t, **over):
    return H.mint(H.std_claims(cnf={"x5t#S256": x5t}, **over), keys.rsa, "RS256")


def assert_refused(r):
    assert r.status_code == 401, (r.status_code, r.text[:200])
    b = H.parse_bearer(r.headers.get("WWW-Authenticate"))
    assert b and b.get("error") == "invalid_token", r.headers


def test_matching_cert(srv, keys, ca, clients):
    _, (alice_files, alice_x5t), _ = clients
    t = bound(keys, alice_x5t)
    for path in ("/opt/env", "/req/env"):
        r = tget(srv, path, t, alice_files, ca)
        assert r.status_code == 200, (path, r.status_code, r.headers)
        assert r.json()["REMOTE_USER"] == "alice"


def test_other_cert(srv, keys, ca, clients, expect_log):
    expect_log(TOKEN_REJECTED % "cert binding: cnf.x5t#S256 does not match", required=True)
    _, (alice_files, alice_x5t), (mallory_files, _) = clients
    t = bound(keys, alice_x5t)
    for path in ("/opt/env", "/req/env"):
        assert_refused(tget(srv, path, t, mallory_files, ca))


def test_no_cert(srv, keys, ca, clients, expect_log):
    expect_log(TOKEN_REJECTED % "cert binding: the token has cnf.x5t#S256 and the connection "
               "presented no client certificate", required=True)
    _, (_, alice_x5t), _ = clients
    t = bound(keys, alice_x5t)
    for path in ("/opt/env", "/req/env"):
        assert_refused(tget(srv, path, t, None, ca))
    # plain http: no TLS at all
    r = requests.get(srv.url("/plainopt/env"), headers={"Authorization": "Bearer " + t},
                     timeout=TIMEOUT)
    assert_refused(r)


def test_unbound_token(srv, keys, ca, clients, expect_log):
    expect_log(TOKEN_REJECTED % "cert binding: AuthJWKSCertBound require and the token has no",
               required=True)
    _, (alice_files, _), _ = clients
    t = H.mint(H.std_claims(), keys.rsa, "RS256")
    assert tget(srv, "/opt/env", t, alice_files, ca).status_code == 200
    assert tget(srv, "/opt/env", t, None, ca).status_code == 200
    assert_refused(tget(srv, "/req/env", t, alice_files, ca))


def test_off_ignores_binding(srv, keys, ca, clients):
    _, (_, alice_x5t), _ = clients
    t = bound(keys, alice_x5t)
    assert tget(srv, "/off/env", t, None, ca).status_code == 200


def test_bad_cnf(srv, keys, ca, clients, expect_log):
    expect_log(TOKEN_REJECTED % "binding: cnf", required=True)
    _, (alice_files, _), _ = clients
    for cnf in ("x", {"x5t#S256": 5}, {"x5t#S256": ""}):
        t = H.mint(H.std_claims(cnf=cnf), keys.rsa, "RS256")
        assert_refused(tget(srv, "/opt/env", t, alice_files, ca))


def test_bad_config():
    r = H.configtest("<Location /x>\n    AuthType jwks\n    AuthJWKSCertBound yes\n</Location>\n")
    assert r.returncode != 0
    assert "not off, optional or require" in r.stderr + r.stdout
