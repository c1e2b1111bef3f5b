"""`Require claim path~regex` speaks httpd's own dialect (PCRE through
ap_regcomp, as <LocationMatch>, RewriteRule and SetEnvIf do), with fixed
options whatever RegexDefaultOptions says: '.' matches a newline, '$' only
the very end. Every case here means something else (or nothing) in POSIX
ERE, the dialect before."""
import pytest

import harness as H
from conftest import AUTHZ_FAILURE, REJECTED, assert_insufficient, get, module_httpd

ISS = "https://issuer.test"


def loc(name, require):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    %s
</Location>
""" % (name, ISS, require)


LOCS = [
    ("digits", r"Require claim code~^\d{3}$"),                 # ERE: \d is the letter d
    ("icase", r"Require claim role~(?i)^admin$"),              # ERE: no such syntax
    ("bracket", r"Require claim code~^[\d.]+$"),               # ERE: backslash, d or dot
    ("dotall", r"Require claim x~^a.b$"),
    ("endonly", r"Require claim email~^[^@[:space:][:cntrl:]]+@example\.com$"),
    ("look", r"Require claim email~^(?!admin@)[a-z]+@example\.com$"),
    ("word", r"Require claim x~\bok\b"),
    ("numtext", r"Require claim n~^\d+\.5$"),
    ("angle", r"Require claim x~\<ok\>"),                     # ERE (GNU): word boundaries
]

# Set before the rules are read: must change none of them.
PROLOGUE = "RegexDefaultOptions -DOTALL -DOLLAR_ENDONLY\n"


@pytest.fixture(scope="module")
def srv(jwks_server):
    extra = PROLOGUE + "".join(loc(*l) for l in LOCS).replace("{jwks}", jwks_server.url())
    h = module_httpd(extra, allowed=[REJECTED % ".*", AUTHZ_FAILURE])
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def tok(keys, **claims):
    return H.mint(H.std_claims(**claims), keys.rsa, "RS256")


@pytest.mark.parametrize("path,claims,granted", [
    ("digits", {"code": "123"}, True),
    ("digits", {"code": 123}, True),                 # a number, by its text
    ("digits", {"code": "ddd"}, False),
    ("digits", {"code": "12a"}, False),
    ("icase", {"role": "ADMIN"}, True),
    ("icase", {"role": "Admin"}, True),
    ("icase", {"role": "admins"}, False),
    ("bracket", {"code": "1.2"}, True),
    ("bracket", {"code": "d"}, False),
    ("bracket", {"code": "\\"}, False),
    ("dotall", {"x": "a\nb"}, True),
    ("dotall", {"x": "a\n\nb"}, False),
    ("endonly", {"email": "bob@example.com"}, True),
    ("endonly", {"email": "bob@example.com\n"}, False),
    ("endonly", {"email": "a@evil.org\na@example.com"}, False),
    ("look", {"email": "bob@example.com"}, True),
    ("look", {"email": "admin@example.com"}, False),
    ("word", {"x": "is ok."}, True),
    ("word", {"x": "okay"}, False),
    ("numtext", {"n": 2.5}, True),
    ("numtext", {"n": 2}, False),
    ("angle", {"x": "<ok>"}, True),
    ("angle", {"x": "is ok"}, False),
])
def test_pcre_semantics(srv, keys, expect_log, path, claims, granted):
    expect_log(AUTHZ_FAILURE)
    r = get(srv, "/%s/env" % path, tok(keys, **claims))
    if granted:
        assert r.status_code == 200, (r.status_code, claims)
    else:
        assert_insufficient(r)


@pytest.mark.parametrize("rule,why", [
    ("x~(", "at offset 1"),
    ("x~a{2,1}", ""),
    ("x~[[.hyphen.]]", ""),
    ("x~(?<n", ""),
    ("x~[z-a]", ""),
])
def test_bad_pattern_refused_at_configtest(jwks_server, rule, why):
    r = H.configtest(loc("p", "Require claim " + rule).replace("{jwks}", jwks_server.url()))
    assert r.returncode != 0, r.stderr
    out = r.stderr + r.stdout
    assert "Require claim '%s': bad regular expression (PCRE): " % rule in out, out
    assert why in out and " \n" not in out, out


def test_ere_only_syntax_now_refused(jwks_server):
    """A POSIX-only construct that PCRE cannot read fails loudly at -t rather
    than meaning something else at run time."""
    r = H.configtest(loc("p", "Require jwt-claim x~[[=a=]]").replace("{jwks}", jwks_server.url()))
    assert r.returncode != 0 and "bad regular expression (PCRE)" in r.stderr + r.stdout
