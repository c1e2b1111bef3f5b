"""Require claim says what it means: numbers compare as numbers, rules
with empty path segments are refused at -t (an empty expected value is
warned about), and the documented examples do what the docs say (a
whole-value regex, an exact-match `Require not claim`)."""
import os
import re

import pytest

import harness as H
from conftest import AUTHZ_FAILURE, REJECTED, assert_insufficient, env_of, get, module_httpd

ISS = "https://issuer.test"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


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


def doc_regex_rule():
    """The `Require claim email~...` example docs/claims.md gives for a domain."""
    with open(os.path.join(REPO, "docs", "claims.md"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"`(Require claim email~[^`]*)`", text)
    assert m, "docs/claims.md shows no Require claim email~ example"
    return m.group(1)


LOCS = [
    ("score", "", "Require claim score:0.1"),
    ("scorere", "", r"Require claim score~^0\.1$"),
    ("lvl", "", "Require claim level:3"),
    ("notbanned", "", "<RequireAll>\n Require valid-user\n Require not claim roles:banned\n"
                      "</RequireAll>"),
]


@pytest.fixture(scope="module")
def srv(jwks_server):
    extra = "".join(loc(*l) for l in LOCS)
    extra += loc("docre", "", doc_regex_rule())
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


# ------------------------------------------------------------- the documented examples

def test_documented_regex_is_whole_value(srv, keys, expect_log):
    expect_log(AUTHZ_FAILURE)
    assert get(srv, "/docre/env", tok(keys, email="bob@example.com")).status_code == 200
    for bad in ("attacker@evil.org x@example.com", "a@evil.org\na@example.com",
                "a@example.com\n", "@example.com"):
        assert_insufficient(get(srv, "/docre/env", tok(keys, email=bad)))


def test_require_not_claim_is_exact(srv, keys, expect_log):
    """As the docs say: an exact-match deny rule, not a filter."""
    expect_log(AUTHZ_FAILURE)
    assert get(srv, "/notbanned/env", tok(keys, roles=["user", "banned"])).status_code == 403
    for v in ("BANNED", "user,banned", [["banned"]]):
        assert get(srv, "/notbanned/env", tok(keys, roles=v)).status_code == 200, v
