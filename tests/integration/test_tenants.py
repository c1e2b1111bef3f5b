"""Multi-tenant issuers against a real httpd: AuthJWKSIssuer with {tenantid}
accepts exactly the issuer the template makes with the token's own tid (a
GUID), AuthJWKSTenant limits the tenants, a template's keys sign for the
template only, and REMOTE_USER keeps the tenant's own issuer."""
import pytest

import harness as H
from conftest import REJECTED, assert_invalid_token, env_of, get, module_httpd

T1 = "72f988bf-86f1-41af-91ab-2d7cd011db47"
T2 = "9188040d-6c67-4c5b-b112-36a304b66dad"
T3 = "00000000-0000-0000-0000-00000000abcd"
TPL = "https://login.microsoftonline.com/{tenantid}/v2.0"
OTHER = "https://other.test"


def iss_of(tid):
    return TPL.replace("{tenantid}", tid)


def loc(name, body):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    AuthJWKSUserClaim oid@iss
%s
    Require valid-user
</Location>
""" % (name, body)


@pytest.fixture(scope="module")
def srv(jwks_server, other_keys):
    jwks_server.set(other_keys.jwks(), path="/jwks2")
    a, b = jwks_server.url(), jwks_server.url("/jwks2")
    extra = (loc("mt", '    AuthJWKSIssuer "%s" %s' % (TPL, a))
             + loc("mtlim", '    AuthJWKSIssuer "%s" %s\n    AuthJWKSTenant %s %s'
                   % (TPL, a, T1, T2))
             + loc("bind", '    AuthJWKSIssuer "%s" %s\n    AuthJWKSIssuer %s %s'
                   % (TPL, a, OTHER, b))
             + loc("lit", '    AuthJWKSIssuer %s %s\n    AuthJWKSTenant %s' % (OTHER, b, T1)))
    h = module_httpd(extra, allowed=[REJECTED % ".*"])
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def tok(key, tid=T1, iss=None, **claims):
    claims.setdefault("oid", "0b5d3a8e-oid")
    c = H.std_claims(iss=iss or iss_of(tid), tid=tid, **claims)
    return H.mint(c, key, "RS256")


def test_each_tenant_accepted(srv, keys):
    for tid in (T1, T2, T3):
        t = tok(keys.rsa, tid)
        for _ in range(2):                      # the second from the token cache
            env = env_of(get(srv, "/mt/env", t))
            assert env["REMOTE_USER"] == "0b5d3a8e-oid@" + iss_of(tid)
            assert env["JWT_CLAIM_TID"] == tid


@pytest.mark.parametrize("tid,iss,why", [
    (None, iss_of(T1), "tid claim absent"),
    ("common", TPL.replace("{tenantid}", "common"), "not a tenant id"),
    (T1.upper(), iss_of(T1.upper()), "not a tenant id"),
    (T1 + "/x", iss_of(T1 + "/x"), "not a tenant id"),
    (T1[:-1] + "@", iss_of(T1[:-1] + "@"), "not a tenant id"),
    ("%s/v2.0/../%s" % (T1, T1), iss_of("%s/v2.0/../%s" % (T1, T1)), "not a tenant id"),
    (12345, iss_of(T1), "not a tenant id"),
    ([T1], iss_of(T1), "not a tenant id"),
])
def test_bad_tid_refused(srv, keys, expect_log, tid, iss, why):
    expect_log(REJECTED % ("bad_issuer: .*%s" % why), required=True)
    c = H.std_claims(iss=iss, tid=tid, oid="o")
    assert_invalid_token(get(srv, "/mt/env", H.mint(c, keys.rsa, "RS256")))


@pytest.mark.parametrize("iss", [
    iss_of(T2),                                  # another tenant than tid
    TPL,                                         # the template itself
    iss_of(T1) + "/",
    iss_of(T1).replace("https://login.", "https://LOGIN."),
    "https://evil.example/%s/v2.0" % T1,
    "https://login.microsoftonline.com/%s/%s/v2.0" % (T1, T1),
])
def test_iss_not_the_tenants_refused(srv, keys, expect_log, iss):
    expect_log(REJECTED % "bad_issuer: iss is not an accepted issuer", required=True)
    assert_invalid_token(get(srv, "/mt/env", tok(keys.rsa, T1, iss=iss)))


def test_tenant_list(srv, keys, other_keys, expect_log):
    expect_log(REJECTED % ("bad_issuer: tenant %s is not an accepted tenant" % T3), required=True)
    expect_log(REJECTED % "bad_issuer: tid claim absent .AuthJWKSTenant is set.", required=True)
    for tid in (T1, T2):
        assert get(srv, "/mtlim/env", tok(keys.rsa, tid)).status_code == 200
    t3 = tok(keys.rsa, T3)
    assert get(srv, "/mt/env", t3).status_code == 200          # cached as valid there
    for _ in range(2):
        assert_invalid_token(get(srv, "/mtlim/env", t3))       # yet refused here
    # AuthJWKSTenant with a literal issuer: the token's tid must be listed too
    ok = H.mint(H.std_claims(iss=OTHER, tid=T1, oid="o"), other_keys.rsa, "RS256")
    assert get(srv, "/lit/env", ok).status_code == 200
    no_tid = H.mint(H.std_claims(iss=OTHER, oid="o"), other_keys.rsa, "RS256")
    assert_invalid_token(get(srv, "/lit/env", no_tid))


def test_template_keys_sign_for_the_template_only(srv, keys, other_keys, expect_log):
    """The binding holds: the template's URL never vouches for OTHER, and
    OTHER's URL never vouches for a tenant."""
    expect_log(REJECTED % "(no_matching_key|bad_signature)", required=True)
    assert get(srv, "/bind/env", tok(keys.rsa, T1)).status_code == 200
    assert get(srv, "/bind/env", H.mint(H.std_claims(iss=OTHER, oid="o"), other_keys.rsa,
                                        "RS256")).status_code == 200
    assert_invalid_token(get(srv, "/bind/env", tok(other_keys.rsa, T1)))
    assert_invalid_token(get(srv, "/bind/env", H.mint(H.std_claims(iss=OTHER, oid="o"),
                                                      keys.rsa, "RS256")))


def test_user_naming_another_tenant_refused(srv, keys, expect_log):
    """oid@iss: an oid that names an issuer after '@' could pose as another
    tenant's user; refused."""
    expect_log(REJECTED % "bad_claim: user claim oid names an issuer", required=True)
    t = tok(keys.rsa, T1, oid="x@" + iss_of(T2))
    assert_invalid_token(get(srv, "/mt/env", t))


# ------------------------------------------------------------- configuration

@pytest.mark.parametrize("line,msg", [
    ('AuthJWKSIssuer "https://h.test/{tenantid}/{tenantid}" {jwks}', "one {tenantid} only"),
    ('AuthJWKSIssuer "https://{tenantid}.ciamlogin.com/v2.0" {jwks}', "whole path segment"),
    ('AuthJWKSIssuer "https://h.test/x{tenantid}/v2.0" {jwks}', "whole path segment"),
    ('AuthJWKSIssuer "https://h.test/{tenantid}.v2" {jwks}', "whole path segment"),
    ('AuthJWKSIssuer "https://h.test/{tenantid}?x" {jwks}', "no query or fragment"),
    ('AuthJWKSIssuer "https://h.test/{TenantId}/v2.0" {jwks}', "lower case"),
    ('AuthJWKSIssuer "https://h.test/{tenantid}/v2.0" discover', "cannot discover"),
    ("AuthJWKSTenant common", "AuthJWKSTenant: 'common' is not a tenant id"),
    ("AuthJWKSTenant %s" % T1.upper(), "is not a tenant id"),
    ("AuthJWKSTenant %s/x" % T1, "is not a tenant id"),
    ("AuthJWKSTenant {%s}" % T1, "is not a tenant id"),
])
def test_bad_config(jwks_server, line, msg):
    body = loc("x", "    AuthJWKSURL {jwks}\n    " + line).replace("{jwks}", jwks_server.url())
    r = H.configtest(body)
    assert r.returncode != 0, r.stderr
    assert msg in r.stderr + r.stdout, r.stderr
    if "Tenant" not in line:
        assert "AuthJWKSIssuer" in r.stderr + r.stdout


def test_bare_user_claim_warns(jwks_server):
    """A template is one issuer per tenant: a bare user claim would merge the
    users of every tenant."""
    body = loc("x", '    AuthJWKSIssuer "%s" %s' % (TPL, jwks_server.url()))
    r = H.configtest(body.replace("AuthJWKSUserClaim oid@iss", "AuthJWKSUserClaim oid"))
    assert r.returncode == 0, r.stderr
    assert "several issuers share a bare AuthJWKSUserClaim oid" in r.stderr, r.stderr
    r = H.configtest(body)
    assert r.returncode == 0 and "auth_jwks:warn" not in r.stderr, r.stderr
