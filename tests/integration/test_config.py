"""Configuration errors are caught by `apache2 -t` and name the directive."""
import os
import re

import pytest

import harness as H

GOOD = "http://127.0.0.1:9/jwks"


def conf(body, require="Require valid-user", url=GOOD):
    u = "    AuthJWKSURL %s\n" % url if url else ""
    return """<Location /api>
    AuthType jwks
    AuthName "api"
%s%s
    %s
</Location>
""" % (u, body, require)


configtest = H.configtest


def test_good_config_passes():
    r = configtest(conf("    AuthJWKSAudience api\n    AuthJWKSLeeway 30",
                        'Require claim roles:admin\n    Require scope read'))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("body,require,url,needle", [
    ("", "Require valid-user", "ftp://127.0.0.1/jwks", "AuthJWKSURL"),
    ("", "Require valid-user", "http://example.com/jwks", "AuthJWKSURL"),
    ("", "Require valid-user", "http://10.1.2.3/jwks", "AuthJWKSURL"),
    ("", "Require valid-user", "not a url", "AuthJWKSURL"),
    ("    AuthJWKSIssuer https://a http://example.com/jwks", "Require valid-user", None, "AuthJWKSIssuer"),
    ("    AuthJWKSAlgorithms RS256 HS256", "Require valid-user", GOOD, "AuthJWKSAlgorithms"),
    ("    AuthJWKSAlgorithms none", "Require valid-user", GOOD, "AuthJWKSAlgorithms"),
    ("    AuthJWKSAlgorithms FOO", "Require valid-user", GOOD, "AuthJWKSAlgorithms"),
    ("    AuthJWKSLeeway -5", "Require valid-user", GOOD, "AuthJWKSLeeway"),
    ("    AuthJWKSLeeway abc", "Require valid-user", GOOD, "AuthJWKSLeeway"),
    ("    AuthJWKSPassClaims maybe", "Require valid-user", GOOD, "AuthJWKSPassClaims"),
    ("    AuthJWKSTokenFrom body", "Require valid-user", GOOD, "AuthJWKSTokenFrom"),
    ("    AuthJWKSTokenFrom cookie=", "Require valid-user", GOOD, "AuthJWKSTokenFrom"),
    ("    AuthJWKSCAFile /nonexistent/ca.pem", "Require valid-user", GOOD, "AuthJWKSCAFile"),
    ("    AuthJWKSMaxTokenSize -1", "Require valid-user", GOOD, "AuthJWKSMaxTokenSize"),
    ("    AuthJWKSForwardToken maybe", "Require valid-user", GOOD, "AuthJWKSForwardToken"),
])
def test_directive_errors(body, require, url, needle):
    r = configtest(conf(body, require, url))
    assert r.returncode != 0, "apache2 -t accepted:\n" + body
    assert needle in r.stderr, r.stderr


@pytest.mark.parametrize("require", [
    "Require claim x~(",
    "Require claim roles",
    "Require claim :admin",
    "Require claim",
    "Require scope",
])
def test_require_errors(require):
    r = configtest(conf("", require))
    assert r.returncode != 0, "apache2 -t accepted: " + require
    assert "Require" in r.stderr or "claim" in r.stderr or "scope" in r.stderr, r.stderr


def test_token_cache_server_wide():
    assert configtest("AuthJWKSTokenCache 0\n" + conf("")).returncode == 0
    r = configtest("AuthJWKSTokenCache -3\n" + conf(""))
    assert r.returncode != 0 and "AuthJWKSTokenCache" in r.stderr, r.stderr


def test_localhost_http_allowed():
    for u in ("http://localhost:8080/jwks", "http://127.1.2.3/jwks", "http://[::1]:8080/jwks"):
        r = configtest(conf("", url=u))
        assert r.returncode == 0, (u, r.stderr)


def test_sample_config_token_cache_default_per_mpm():
    """conf.d/auth_jwks.conf states the token cache default as docs/directives.md does:
    per MPM, not one number; and the sample's directive line is accepted."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "conf.d", "auth_jwks.conf")) as f:
        sample = f.read()
    block = re.search(r"((?:#[^\n]*\n)*?)# (AuthJWKSTokenCache \d+)\n", sample)
    assert block, "no AuthJWKSTokenCache line in the sample"
    text = block.group(1)
    for needle in ("4096", "1024", "threaded", "prefork"):
        assert needle in text, (needle, text)
    assert configtest(block.group(2) + "\n" + conf("")).returncode == 0


def test_sample_config_example_section_is_valid():
    """The commented <Location> of conf.d/auth_jwks.conf, uncommented, passes
    -t without a warning (its default values are the module's own)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "conf.d", "auth_jwks.conf")) as f:
        sample = f.read()
    m = re.search(r"^# (<Location .*?^# </Location>)$", sample, re.M | re.S)
    assert m, "no commented <Location> in the sample"
    block = "\n".join(line[2:] for line in m.group(0).splitlines())
    r = configtest(block)
    assert r.returncode == 0, r.stderr
    assert "auth_jwks:warn" not in r.stderr and "auth_jwks:error" not in r.stderr, r.stderr
