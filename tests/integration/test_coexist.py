"""mod_auth_jwks next to mod_auth_openidc in one httpd.

Both modules register the authz provider `claim`, and httpd keeps whichever
registers last (LoadModule order). Each order is tested (`before`:
mod_auth_openidc's LoadModule line precedes ours, `after`: it follows ours):
`Require claim` must be evaluated by mod_auth_jwks on `AuthType jwks`
locations and by mod_auth_openidc on its own (`AuthType oauth20`,
resource-server mode, JWKS over https with a throwaway CA, as
bench/bench.py configures it), each exactly as when loaded alone; the
unambiguous names `Require jwt-claim` / `Require jwt-scope` work in both
orders. mod_auth_openidc alone (no mod_auth_jwks at all) is measured by a
third httpd, and its answers are the reference for its location.

The `Require claim`/`Require scope` servers use only directives the module
has always had, and the `jwt-*` names are on separate servers, so the
version before the fix fails here on the bug itself (wrong answers and
`Require claim needs AuthType jwks` lines), not on a config error; for the
same reason the configs leave out the harness's backend-vhost
`AuthJWKSStripClaimHeaders Off` block (no test here proxies to it).
Skipped when mod_auth_openidc is not installed.
"""
import os
import re
import secrets

import pytest

import harness as H
from conftest import AUTHZ_FAILURE, _module_teardown_check, assert_insufficient, get

OPENIDC_SO = os.path.join(H.MODDIR, "mod_auth_openidc.so")
ISS = "https://issuer.test"
ORDERS = ["before", "after"]

pytestmark = pytest.mark.skipif(not os.path.exists(OPENIDC_SO),
                                reason="mod_auth_openidc not installed "
                                       "(Debian package libapache2-mod-auth-openidc)")

OURS_RX = re.compile(r"^LoadModule auth_jwks_module .*$", re.M)
OIDC_LOAD = "LoadModule auth_openidc_module %s" % OPENIDC_SO
# the backend vhost's block naming a directive of ours (see the docstring)
STRIP_BLOCK_RX = re.compile(r"\n[ \t]*# the backend of this[^\n]*\n[ \t]*<IfModule auth_jwks_module>"
                            r".*?</IfModule>[ \t]*\n", re.S)

# error-level lines expected when a rule refuses a valid token
BOB_REFUSED = r'authz_core:error.*AH01631: user bob: authorization failure for "/oidc/'


class CoHttpd(H.Httpd):
    """A harness httpd with mod_auth_openidc loaded before or after ours, or
    alone (our LoadModule line removed)."""

    def __init__(self, extra, order, **kw):
        self.order = order
        if order == "alone":
            kw.setdefault("loglevel", "warn")  # no auth_jwks:debug without the module
        super().__init__(extra, name="coexist-" + order, **kw)

    def conf_text(self, extra):
        text = super().conf_text(extra)
        text, n = STRIP_BLOCK_RX.subn("\n", text)
        assert n == 1, "harness config changed: backend-vhost IfModule block not found"
        m = OURS_RX.search(text)
        assert m, "harness config has no LoadModule auth_jwks_module line"
        ours = m.group(0)
        lines = {"alone": [OIDC_LOAD], "before": [OIDC_LOAD, ours],
                 "after": [ours, OIDC_LOAD]}[self.order]
        return text[:m.start()] + "\n".join(lines) + text[m.end():]


def load_order(h):
    """The auth modules' LoadModule lines, in config order."""
    with open(h.conf_path) as f:
        text = f.read()
    return re.findall(r"^LoadModule (auth_jwks_module|auth_openidc_module) ", text, re.M)


EXPECTED_ORDER = {"before": ["auth_openidc_module", "auth_jwks_module"],
                  "after": ["auth_jwks_module", "auth_openidc_module"],
                  "alone": ["auth_openidc_module"]}


# ---------------------------------------------------------------- configs

def oidc_conf(jwks_url, ca_file):
    """mod_auth_openidc as an OAuth 2.0 resource server (bench.py's
    conf_openidc, minus its LoadModule): /oidc needs `Require claim
    sub:alice` in its own syntax (claim:value)."""
    return """OIDCCryptoPassphrase %s
OIDCCacheType shm
OIDCCABundlePath %s
OIDCOAuthVerifyJwksUri %s
OIDCOAuthRemoteUserClaim sub
<Location /oidc>
    AuthType oauth20
    AuthName "oidc"
    Require claim sub:alice
</Location>
""" % (secrets.token_hex(16), ca_file, jwks_url)


def jwks_loc(name, jwks_url, require):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    %s
</Location>
""" % (name, jwks_url, ISS, require)


def shared_conf(jwks_url):
    """Only the short names every version of the module has."""
    return (jwks_loc("admin", jwks_url, "Require claim roles:admin")
            + jwks_loc("scope", jwks_url, "Require scope read"))


def names_conf(jwks_url):
    return (jwks_loc("jwtclaim", jwks_url, "Require jwt-claim roles:admin")
            + jwks_loc("jwtscope", jwks_url, "Require jwt-scope read"))


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def idp(jwks_server, keys, ca):
    """The same JWKS (RSA + P-256: what mod_auth_openidc's cjose imports) for
    both modules: over http for ours, over https (throwaway CA) for
    mod_auth_openidc, which takes only https:// JWKS URLs."""
    doc = keys.jwks([keys.rsa, keys.ec256])
    jwks_server.set(doc)
    tls = H.JWKSServer(tls=ca)
    tls.set(doc)
    yield {"http": jwks_server.url(), "https": tls.url(), "ca": ca.ca_file}
    tls.close()


def start(extra, order, allowed=()):
    h = CoHttpd(extra, order)
    h.covered = []
    h.allowed = list(allowed)
    assert load_order(h) == EXPECTED_ORDER[order], load_order(h)
    try:
        h.start()
    except Exception:
        h.cleanup()
        raise
    return h


@pytest.fixture(scope="module")
def alone(idp, keys):
    """mod_auth_openidc without mod_auth_jwks: its answers on /oidc are the
    reference (status, WWW-Authenticate)."""
    h = start(oidc_conf(idp["https"], idp["ca"]), "alone", allowed=[BOB_REFUSED])
    ref = {}
    try:
        for who, tok in (("alice", token(keys, sub="alice")), ("bob", token(keys, sub="bob")),
                         ("none", None)):
            r = get(h, "/oidc/static.txt", tok)
            ref[who] = (r.status_code, r.headers.get("WWW-Authenticate"))
    except Exception:
        _module_teardown_check(h)
        raise
    # sanity of the reference itself: alice in, bob and no token out
    assert ref["alice"][0] == 200, ref
    assert ref["bob"][0] in (401, 403), ref
    assert ref["none"][0] == 401, ref
    yield ref
    _module_teardown_check(h)


@pytest.fixture(scope="module", params=ORDERS)
def shared(request, idp):
    """Both modules, `Require claim` on each one's locations."""
    h = start(oidc_conf(idp["https"], idp["ca"]) + shared_conf(idp["http"]), request.param)
    yield h
    _module_teardown_check(h)


@pytest.fixture(scope="module", params=ORDERS)
def names(request, idp):
    """Both modules, `Require jwt-claim` / `jwt-scope` on jwks locations."""
    h = start(oidc_conf(idp["https"], idp["ca"]) + names_conf(idp["http"]), request.param)
    yield h
    _module_teardown_check(h)


def token(keys, **claims):
    return H.mint(H.std_claims(**claims), keys.rsa, "RS256")


def answer(r):
    return (r.status_code, r.headers.get("WWW-Authenticate"))


# ---------------------------------------------------------------- tests

def check_config(h):
    r = h.configtest()
    assert r.returncode == 0, (h.order, r.stdout, r.stderr)
    assert "Syntax OK" in r.stderr, r.stderr
    assert load_order(h) == EXPECTED_ORDER[h.order]


def test_configtest_claim(shared):
    check_config(shared)


def test_configtest_jwt_names(names):
    check_config(names)


def test_jwks_require_claim(shared, keys, expect_log):
    expect_log(AUTHZ_FAILURE)
    r = get(shared, "/admin/static.txt", token(keys, roles=["admin"]))
    assert r.status_code == 200, (shared.order, answer(r), shared.log_tail(8))
    assert r.text == "static ok\n"
    for claims in ({}, {"roles": ["user"]}, {"roles": "administrator"}):
        r = get(shared, "/admin/static.txt", token(keys, **claims))
        assert_insufficient(r)
    # the refusal is ours (a claim rule not met), not another module's
    assert re.search(r"\[auth_jwks:info\].*Require claim roles:admin: not met by user alice",
                     shared.log_text())


def test_jwks_require_scope(shared, keys, expect_log):
    expect_log(AUTHZ_FAILURE)
    r = get(shared, "/scope/static.txt", token(keys, scope="openid read"))
    assert r.status_code == 200, (shared.order, answer(r), shared.log_tail(8))
    assert_insufficient(get(shared, "/scope/static.txt", token(keys, scope="write")), scope="read")


def test_openidc_require_claim_as_alone(shared, alone, keys, expect_log):
    expect_log(BOB_REFUSED)
    r = get(shared, "/oidc/static.txt", token(keys, sub="alice"))
    assert r.status_code == 200, (shared.order, answer(r), shared.log_tail(8))
    assert r.text == "static ok\n"
    assert answer(r) == alone["alice"]
    r = get(shared, "/oidc/static.txt", token(keys, sub="bob"))
    assert answer(r) == alone["bob"], (shared.order, answer(r), alone["bob"])
    r = get(shared, "/oidc/static.txt")
    assert answer(r) == alone["none"], (shared.order, answer(r), alone["none"])
    # a token mod_auth_jwks would accept with roles:admin is still judged by
    # mod_auth_openidc's rule there (sub:alice), not ours
    r = get(shared, "/oidc/static.txt", token(keys, sub="bob", roles=["admin"]))
    assert answer(r) == alone["bob"], (shared.order, answer(r))


def test_jwt_claim_and_scope_names(names, alone, keys, expect_log):
    expect_log(AUTHZ_FAILURE)
    expect_log(BOB_REFUSED)
    r = get(names, "/jwtclaim/static.txt", token(keys, roles=["admin"]))
    assert r.status_code == 200, (names.order, answer(r), names.log_tail(8))
    assert_insufficient(get(names, "/jwtclaim/static.txt", token(keys, roles=["user"])))
    r = get(names, "/jwtscope/static.txt", token(keys, scope="read"))
    assert r.status_code == 200, (names.order, answer(r), names.log_tail(8))
    assert_insufficient(get(names, "/jwtscope/static.txt", token(keys, scope="write")),
                        scope="read")
    # mod_auth_openidc's location on the same server is untouched
    r = get(names, "/oidc/static.txt", token(keys, sub="alice"))
    assert answer(r) == alone["alice"], (names.order, answer(r))
    r = get(names, "/oidc/static.txt", token(keys, sub="bob"))
    assert answer(r) == alone["bob"], (names.order, answer(r))
