"""make check-deb: the Debian package, installed with dpkg, serving through
the system apache2 and its Debian layout (mods-available, a2enmod,
conf-enabled, apache2ctl).

Root only. It needs the .deb built by `make deb` (AJW_DEB_DIR names its
directory). It leaves the machine as it found it: the package purged,
its conf file removed, apache2 stopped, files that were there before
(a `make install` copy of the module) put back. It refuses to run when the
system apache2 is already running, rather than stop someone's server.

The apache2 it starts listens only on 127.0.0.1 (a free port): it reads the
system /etc/apache2 tree through a copy of apache2.conf that leaves out
ports.conf (Listen 80/443 on every address) and logs to a temporary directory.
"""
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import requests
from jwcrypto import jwk, jws

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PKG = "libapache2-mod-auth-jwks"
MODULE = "/usr/lib/apache2/modules/mod_auth_jwks.so"
MODS_AVAIL = ["/etc/apache2/mods-available/auth_jwks.load",
              "/etc/apache2/mods-available/auth_jwks.conf"]
MODS_ENABLED = ["/etc/apache2/mods-enabled/auth_jwks.load",
                "/etc/apache2/mods-enabled/auth_jwks.conf"]
TOOL = "/usr/bin/jwks-tool"
CONF = "/etc/apache2/conf-enabled/zz-ajw-check-deb.conf"
PIDFILE = "/var/run/apache2/apache2.pid"
ISS = "https://issuer.deb.test"

DEB_DIR = os.environ.get("AJW_DEB_DIR", "")
DEBS = sorted(p for p in glob.glob(os.path.join(DEB_DIR, PKG + "_*.deb"))) if DEB_DIR else []

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (dpkg -i, apache2ctl)"),
    pytest.mark.skipif(not DEBS, reason="no %s_*.deb in AJW_DEB_DIR (run make deb)" % PKG),
    pytest.mark.skipif(not shutil.which("apache2ctl"), reason="apache2 not installed"),
]


def sh(*cmd, check=True, env=None, timeout=120):
    r = subprocess.run(list(cmd), capture_output=True, text=True, env=env, timeout=timeout)
    if check and r.returncode != 0:
        pytest.fail("%s exited %d\nstdout: %s\nstderr: %s" % (" ".join(cmd), r.returncode,
                                                              r.stdout[-2000:], r.stderr[-2000:]))
    return r


def b64u(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def apache_pid():
    try:
        pid = int(open(PIDFILE).read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    pytest.fail("timed out waiting for " + what)


def pkg_installed():
    r = sh("dpkg-query", "-W", "-f=${Status}", PKG, check=False)
    return "install ok installed" in r.stdout


class Steps:
    """Prints how long each step took (shown with pytest -s or on failure)."""

    def __init__(self):
        self.t0 = self.t = time.monotonic()

    def __call__(self, what):
        now = time.monotonic()
        print("  %-44s %6.1fs" % (what, now - self.t))
        self.t = now


def top_conf(tmp, port):
    """apache2.conf as shipped, minus ports.conf, with the error log in tmp."""
    out = []
    for line in open("/etc/apache2/apache2.conf"):
        s = line.strip()
        if s == "Include ports.conf":
            line = "# ports.conf left out by tests/deb: Listen 127.0.0.1:%d only\n" % port
        elif s.startswith("ErrorLog "):
            line = "ErrorLog %s/error.log\n" % tmp
        out.append(line)
    p = os.path.join(tmp, "apache2.conf")
    with open(p, "w") as f:
        f.writelines(out)
    return p


def site_conf(tmp, port):
    return """# written by mod_auth_jwks tests/deb/test_deb.py; removed when it ends
Listen 127.0.0.1:{port}
<VirtualHost 127.0.0.1:{port}>
    ServerName 127.0.0.1
    DocumentRoot {tmp}/www
    CustomLog {tmp}/access.log combined
    <Directory {tmp}/www>
        Require all granted
    </Directory>
    <Location /api>
        AuthType jwks
        AuthName "api"
        AuthJWKSURL file://{tmp}/jwks.json
        AuthJWKSIssuer {iss}
        AuthJWKSAudience api
        Require valid-user
    </Location>
</VirtualHost>
""".format(port=port, tmp=tmp, iss=ISS)


def test_deb_install_serve_purge():
    if apache_pid():
        pytest.skip("the system apache2 is running (pid file %s): not touching it" % PIDFILE)
    step = Steps()
    deb = DEBS[-1]
    tmp = tempfile.mkdtemp(prefix="ajw-deb-", dir="/tmp")
    os.chmod(tmp, 0o755)
    before = {p: os.path.exists(p) for p in [MODULE, TOOL] + MODS_AVAIL + MODS_ENABLED}
    saved = os.path.join(tmp, "saved")
    os.makedirs(saved)
    # A `make install` copy (no package owns it) would be overwritten by dpkg
    # and then deleted by the purge: keep it to put back.
    for p, there in before.items():
        if there and not os.path.islink(p):
            shutil.copy2(p, os.path.join(saved, p.strip("/").replace("/", "_")))
    had_run_dir = os.path.isdir("/var/run/apache2")
    had_lock_dir = os.path.isdir("/var/lock/apache2")
    port = free_port()
    env = dict(os.environ, APACHE_ARGUMENTS="-f " + top_conf(tmp, port))
    started = False
    try:
        # -- install
        sh("dpkg", "-i", deb)
        step("dpkg -i " + os.path.basename(deb))
        for p in [MODULE, TOOL] + MODS_AVAIL:
            assert os.path.isfile(p), p
        assert os.path.exists("/usr/share/man/man1/jwks-tool.1.gz")
        # dh_apache2's default for a module package: its postinst enables the
        # module on first install (apache2_invoke enmod, which respects an admin's a2dismod).
        assert os.path.islink(MODS_ENABLED[0]), "postinst did not enable auth_jwks"
        # `make uninstall` must not delete files dpkg owns.
        r = sh("make", "-s", "-C", REPO, "uninstall", check=False)
        assert r.returncode != 0 and "belongs to the Debian package " + PKG in r.stderr, r.stderr
        assert os.path.isfile(MODULE)
        r = sh("a2enmod", "auth_jwks")
        assert os.path.islink(MODS_ENABLED[0]) and os.path.islink(MODS_ENABLED[1])
        r = sh("apache2ctl", "-t")
        assert "Syntax OK" in r.stdout + r.stderr
        step("a2enmod auth_jwks; apache2ctl -t")

        # -- keys, token, the protected location
        key = jwk.JWK.generate(kty="EC", crv="P-256", kid="deb-es256")
        pub = key.export_public(as_dict=True)
        pub["use"] = "sig"
        with open(os.path.join(tmp, "jwks.json"), "w") as f:
            json.dump({"keys": [pub]}, f)
        os.chmod(os.path.join(tmp, "jwks.json"), 0o644)
        os.makedirs(os.path.join(tmp, "www", "api"))
        with open(os.path.join(tmp, "www", "api", "index.html"), "w") as f:
            f.write("protected via the Debian package\n")
        os.chmod(os.path.join(tmp, "www"), 0o755)
        os.chmod(os.path.join(tmp, "www", "api"), 0o755)
        now = int(time.time())
        claims = {"iss": ISS, "aud": "api", "sub": "debian", "iat": now, "exp": now + 600}
        t = jws.JWS(json.dumps(claims).encode())
        t.add_signature(key, alg="ES256",
                        protected=json.dumps({"alg": "ES256", "kid": "deb-es256", "typ": "JWT"}))
        token = t.serialize(compact=True)
        # The installed jwks-tool agrees before httpd is asked.
        r = sh(TOOL, "verify", "--iss", ISS, "--aud", "api", os.path.join(tmp, "jwks.json"), token)
        assert r.stdout.startswith("valid: alg=ES256 kid=deb-es256"), r.stdout
        with open(CONF, "w") as f:
            f.write(site_conf(tmp, port))
        r = sh("apache2ctl", "-t", env=env)

        # -- serve
        sh("apache2ctl", "start", env=env)
        started = True
        wait_for(apache_pid, 20, "apache2's pid file")

        def port_open():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_for(port_open, 20, "apache2 on 127.0.0.1:%d" % port)
        step("apache2ctl start (127.0.0.1:%d)" % port)
        url = "http://127.0.0.1:%d/api/" % port
        r = requests.get(url, timeout=15)
        assert r.status_code == 401, (r.status_code, r.text[:300])
        assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), r.headers
        r = requests.get(url, headers={"Authorization": "Bearer " + token}, timeout=15)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        assert r.text == "protected via the Debian package\n"
        bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        r = requests.get(url, headers={"Authorization": "Bearer " + bad}, timeout=15)
        assert r.status_code == 401, r.status_code
        step("401 without a token, 200 with one")
    finally:
        problems = []
        if started or apache_pid():
            pid = apache_pid()
            sh("apache2ctl", "stop", env=env, check=False)
            if pid:
                end = time.monotonic() + 20
                while time.monotonic() < end:
                    try:
                        os.kill(pid, 0)
                    except OSError:
                        break
                    time.sleep(0.1)
                else:
                    problems.append("apache2 (pid %d) did not stop" % pid)
            step("apache2ctl stop")
        if os.path.exists(CONF):
            os.unlink(CONF)
        if pkg_installed() or sh("dpkg-query", "-W", PKG, check=False).returncode == 0:
            r = sh("dpkg", "--purge", PKG, check=False)
            if r.returncode != 0:
                problems.append("dpkg --purge failed: " + r.stderr[-500:])
            step("dpkg --purge " + PKG)
        left = [p for p in [MODULE, TOOL] + MODS_AVAIL + MODS_ENABLED if os.path.lexists(p)]
        # put back what was there before (a `make install` copy)
        for p, there in before.items():
            copy = os.path.join(saved, p.strip("/").replace("/", "_"))
            if there and os.path.exists(copy):
                shutil.copy2(copy, p)
        if before.get(MODS_ENABLED[0]) and not os.path.lexists(MODS_ENABLED[0]):
            sh("a2enmod", "-q", "auth_jwks", check=False)
        for d, had in (("/var/run/apache2", had_run_dir), ("/var/lock/apache2", had_lock_dir)):
            if not had and os.path.isdir(d):
                shutil.rmtree(d, ignore_errors=True)
        errlog = os.path.join(tmp, "error.log")
        log = open(errlog).read() if os.path.exists(errlog) else ""
        shutil.rmtree(tmp, ignore_errors=True)
        if problems:
            pytest.fail("; ".join(problems))
    assert not left, "files left after dpkg --purge: %s" % left
    assert not pkg_installed()
    for bad in ("exit signal", "Segmentation fault", "emerg]", "crit]"):
        assert bad not in log, log[-2000:]
    print("  total %.1fs" % (time.monotonic() - step.t0))
