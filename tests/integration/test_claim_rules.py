"""Require claim says what it means: numbers compare as numbers, and rules
with empty path segments are refused at -t (an empty expected value is
warned about)."""
import re

import pytest

import harness as H
from conftest import AUTHZ_FAILURE, REJECTED, assert_insufficient, env_of, get, module_httpd

ISS = "https://issuer.test"


def loc(name, body="", require="Require valid-user"):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
%s
    %s
</Location>
""" % (name, ISS, body, require)


LOCS = [
    ("score", "", "Require claim score:0.1"),
    ("scorere", "", r"Require claim score~^0\.1$"),
    ("lvl", "", "Require claim level:3"),
]


@pytest.fixture(scope="module")
def srv(jwks_server):
    extra = "".join(loc(*l) for l in LOCS)
    extra = extra.replace("{jwks}", jwks_server.url())
    h = module_httpd(extra, allowed=[REJECTED % ".*", AUTHZ_FAILURE])
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def tok(keys, **claims):
    return H.mint(H.std_claims(**claims), keys.rsa, "RS256")


# ------------------------------------------------------------- numbers

def test_numbers_compare_as_numbers(srv, keys, expect_log):
    expect_log(AUTHZ_FAILURE)
    for v in (0.1, "0.1", [0.1], 1e-1):
        assert get(srv, "/score/env", tok(keys, score=v)).status_code == 200, v
        assert get(srv, "/scorere/env", tok(keys, score=v)).status_code == 200, v
    for v in (0.10000000000000002, "0.10", 1, "x"):
        assert_insufficient(get(srv, "/score/env", tok(keys, score=v)))
    for v in (3, 3.0, "3", [3], [1, 3]):
        assert get(srv, "/lvl/env", tok(keys, level=v)).status_code == 200, v
    for v in (3.5, "3.0", "03", True, [[3]], {"l": 3}):
        assert_insufficient(get(srv, "/lvl/env", tok(keys, level=v)))
    # the export shows the number as the rule reads it
    env = env_of(get(srv, "/score/env", tok(keys, score=0.1)))
    assert env["JWT_CLAIM_SCORE"] == "0.1"


# ------------------------------------------------------------- rules at -t

@pytest.mark.parametrize("rule", ["realm_access..roles:admin", "realm_access.:admin",
                                  ".roles:admin", "[ns]..roles:admin", "[ns].a..b~x"])
def test_empty_path_segment_refused(jwks_server, rule):
    r = H.configtest(loc("p", "", "Require claim " + rule).replace("{jwks}", jwks_server.url()))
    assert r.returncode != 0, r.stderr
    assert "Require claim" in r.stderr and "empty" in r.stderr, r.stderr


def test_empty_expected_value_warns(jwks_server):
    r = H.configtest(loc("p", "", "Require claim roles:").replace("{jwks}", jwks_server.url()))
    assert r.returncode == 0, r.stderr
    assert re.search(r"warn.*Require claim 'roles:'.*empty", r.stderr), r.stderr
