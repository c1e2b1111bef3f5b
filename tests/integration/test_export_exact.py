"""What the app reads is what the module decided: the exact rendering of
claim values in variables and headers (arrays, strings that need quoting,
null / "" / []), control characters in the environment, which claim names
are exported under the prefixes, the module's own variable names and the
REMOTE_USER hygiene. The renderings are those of docs/claims.md."""
import json
import re
import urllib.parse

import pytest

import harness as H
from conftest import (AUTHZ_FAILURE, REJECTED, assert_invalid_token,
                      env_of, get, module_httpd)

ISS = "https://issuer.test"
ISS_B = "https://b.example"


def loc(name, body="", require="Require valid-user", issuers=(ISS,)):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
%s    AuthJWKSAudience api
    AuthJWKSStartupWait 10
%s
    %s
</Location>
""" % (name, "".join("    AuthJWKSIssuer %s\n" % i for i in issuers), body, require)


MAPS = """    AuthJWKSPassClaims both
    AuthJWKSClaimEnv roles APP_ROLES
    AuthJWKSClaimHeader roles X-App-Roles
    AuthJWKSClaimEnv name APP_NAME
    AuthJWKSClaimHeader name X-App-Name"""


LOCS = [
    ("x", MAPS),
    ("adm", "", "Require claim roles:admin"),
    ("atiss", "    AuthJWKSUserClaim sub@iss", "Require valid-user", (ISS, ISS_B)),
]


@pytest.fixture(scope="module")
def srv(jwks_server, echo_backend):
    extra = "".join(loc(*l) for l in LOCS)
    extra = extra.replace("{jwks}", jwks_server.url())
    h = module_httpd(extra, allowed=[REJECTED % ".*", AUTHZ_FAILURE],
                     raw_backend_port=echo_backend.port)
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def tok(keys, **claims):
    return H.mint(H.std_claims(**claims), keys.rsa, "RS256")


def hget(pairs, name):
    return [v for k, v in pairs if k.lower() == name.lower()]


def raw_headers(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    return json.loads(resp.text)["headers"]


def parse_export(text):
    """An app's reading of an exported value, exactly as docs/claims.md says:
    a value starting with [ { or " is JSON; anything else is a list of
    elements separated by ','. Returns the list of elements (a JSON scalar
    or object counts as a one-element list)."""
    if text[:1] in ('[', '{', '"'):
        v = json.loads(text)
        return v if isinstance(v, list) else [v]
    return text.split(",")


# ------------------------------------------------------------- arrays

CASES = [
    # claim value, exact rendering
    (["user", "admin"], "user,admin"),
    (["user,admin"], '["user,admin"]'),
    ("user,admin", '"user,admin"'),
    ([["user", "admin"]], '[["user","admin"]]'),
    (["user", ["admin"]], '["user",["admin"]]'),
    ("", '""'),
    ([], "[]"),
    ([None, "admin"], '[null,"admin"]'),
    (["a\"b", "c"], '["a\\"b","c"]'),
    (["a\\b"], '["a\\\\b"]'),
    ([" admin"], '[" admin"]'),
    (["[admin]"], '["[admin]"]'),
    ([1, 2.5, True, "x"], "1,2.5,true,x"),
    ({"a": [1, "b,c"]}, '{"a":[1,"b,c"]}'),
    ("admin", "admin"),
]


@pytest.mark.parametrize("value,text", CASES)
def test_rendering_is_unambiguous(srv, keys, expect_log, value, text):
    expect_log(AUTHZ_FAILURE)
    t = tok(keys, roles=value)
    env = env_of(get(srv, "/x/env", t))
    assert env["JWT_CLAIM_ROLES"] == text, env.get("JWT_CLAIM_ROLES")
    assert env["APP_ROLES"] == text
    hd = raw_headers(get(srv, "/x/raw", t))
    assert [urllib.parse.unquote(v) for v in hget(hd, "X-JWT-Claim-roles")] == [text], hd
    assert [urllib.parse.unquote(v) for v in hget(hd, "X-App-Roles")] == [text], hd
    # the documented split never yields an element the claim did not hold
    elements = value if isinstance(value, list) else [value]
    if text[:1] in ('[', '{', '"'):
        assert parse_export(text) == elements
    else:   # a plain list: numbers and booleans read as their JSON text
        assert parse_export(text) == [e if isinstance(e, str) else json.dumps(e)
                                      for e in elements]
    # and the module's own decision agrees with what the app reads
    granted = get(srv, "/adm/env", t).status_code == 200
    assert granted == ("admin" in elements)


def test_null_claim_not_exported(srv, keys):
    t = H.mint(dict(H.std_claims(), roles=None), keys.rsa, "RS256")
    env = env_of(get(srv, "/x/env", t))
    assert "JWT_CLAIM_ROLES" not in env and "APP_ROLES" not in env
    assert json.loads(env["JWT_CLAIMS"])["roles"] is None
    hd = raw_headers(get(srv, "/x/raw", t))
    assert not hget(hd, "X-JWT-Claim-roles") and not hget(hd, "X-App-Roles"), hd


# ------------------------------------------------------------- control characters in env

EVIL = "bob\nJWT_CLAIM_ROLES=admin\nREMOTE_USER=root"


@pytest.mark.parametrize("value,text", [
    (EVIL, json.dumps(EVIL)),
    ("a\r\nb", '"a\\r\\nb"'),
    ("del\x7f", '"del\\u007f"'),
    ("nel\u0085x", '"nel\\u0085x"'),
    ("ls\u2028ps\u2029", '"ls\\u2028ps\\u2029"'),
    ("rlo\u202ex", '"rlo\\u202ex"'),
    ("Jos\u00e9", "Jos\u00e9"),
])
def test_env_values_never_hold_controls(srv, keys, value, text):
    t = tok(keys, name=value, roles=["a", value])
    env = env_of(get(srv, "/x/env", t))
    assert env["JWT_CLAIM_NAME"] == text
    assert env["APP_NAME"] == text
    assert env["REMOTE_USER"] == "alice" and "JWT_CLAIM_ROLES" in env
    assert json.loads(env["JWT_CLAIM_ROLES"]) == ["a", value] if text[0] == '"' else True
    bad = re.compile("[\x00-\x1f\x7f\x80-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
    for k, v in env.items():
        if k.startswith(("JWT_", "APP_")):
            assert not bad.search(v), (k, v)
    # the header carries the same text, percent-encoded
    hd = raw_headers(get(srv, "/x/raw", t))
    assert [urllib.parse.unquote(v) for v in hget(hd, "X-App-Name")] == [text]
    assert [urllib.parse.unquote(v) for v in hget(hd, "X-JWT-Claim-name")] == [text]


# ------------------------------------------------------------- one-to-one names

def test_look_alike_names_withheld(srv, keys, expect_log):
    claims = H.std_claims(**{"email-verified": True, "Email.Verified": True, "Role": "admin",
                             "realm_access": {"roles": ["user"]}, "realm_access.roles": "admin",
                             "https://ex.com/roles": ["admin"], "email_ok": True})
    t = H.mint(claims, keys.rsa, "RS256")
    expect_log(r"\[auth_jwks:debug\].*claim email-verified not exported under the prefix",
               required=True)
    env = env_of(get(srv, "/x/env", t))
    for name in ("JWT_CLAIM_EMAIL_VERIFIED", "JWT_CLAIM_REALM_ACCESS_ROLES", "JWT_CLAIM_ROLE",
                 "JWT_CLAIM_HTTPS___EX_COM_ROLES"):
        assert name not in env, (name, env.get(name))
    assert env["JWT_CLAIM_EMAIL_OK"] == "true"
    assert env["JWT_CLAIM_REALM_ACCESS"] == '{"roles":["user"]}'
    assert json.loads(env["JWT_CLAIMS"]) == claims
    hd = raw_headers(get(srv, "/x/raw", t))
    names = [k.lower() for k, _ in hd]
    for name in ("x-jwt-claim-email-verified", "x-jwt-claim-realm-access-roles",
                 "x-jwt-claim-role", "x-jwt-claim-https---ex-com-roles"):
        assert name not in names, (name, hd)
    assert hget(hd, "X-JWT-Claim-email-ok") == ["true"]
    assert json.loads(H.b64u_decode(hget(hd, "X-JWT-Claims")[0])) == claims


# ------------------------------------------------------------- the module's own names

@pytest.mark.parametrize("directive,shadowed", [
    ("AuthJWKSClaimPrefix JWT_", "JWT_"),
    ("AuthJWKSHeaderPrefix X-JWT-", "X-JWT-Claims"),
])
def test_prefix_shadowing_module_names_refused(jwks_server, directive, shadowed):
    r = H.configtest(loc("p", "    " + directive).replace("{jwks}", jwks_server.url()))
    assert r.returncode != 0, r.stderr
    assert directive.split()[0] in r.stderr, r.stderr


def test_module_names_come_from_the_module(srv, keys):
    t = H.mint(H.std_claims(kid="evil", alg="none"), keys.rsa, "RS256")
    env = env_of(get(srv, "/x/env", t))
    assert env["JWT_ALG"] == "RS256"
    assert env["JWT_KID"] != "evil"
    assert env["JWT_CLAIM_KID"] == "evil"


# ------------------------------------------------------------- REMOTE_USER

@pytest.mark.parametrize("sub,why", [
    (" alice", "leading or trailing whitespace"),
    ("alice ", "leading or trailing whitespace"),
    ("alice\u00a0", "leading or trailing whitespace"),
    ("ali\u0085ce", "U\\+0085"),
    ("ali\u2028ce", "U\\+2028"),
    ("ali\u2029ce", "U\\+2029"),
    ("\u202eadmin", "U\\+202E"),
    ("ad\u200emin", "U\\+200E"),
    ("ad\u2066min", "U\\+2066"),
    ("ad\x7fmin", "U\\+007F"),
])
def test_user_refused(srv, keys, expect_log, sub, why):
    expect_log(REJECTED % ("bad_claim: user claim sub .*" + why), required=True)
    assert_invalid_token(get(srv, "/x/env", tok(keys, sub=sub)))


def test_user_at_iss_cannot_pose_as_another_issuer(srv, keys, expect_log):
    env = env_of(get(srv, "/atiss/env", tok(keys, sub="alice", iss=ISS_B)))
    assert env["REMOTE_USER"] == "alice@" + ISS_B
    # a subject that is an e-mail address is fine: split at the last '@'
    env = env_of(get(srv, "/atiss/env", tok(keys, sub="alice@example.com", iss=ISS_B)))
    assert env["REMOTE_USER"] == "alice@example.com@" + ISS_B
    expect_log(REJECTED % "bad_claim: user claim sub .*names an issuer", required=True)
    # an accepted issuer, the token's own, or any http(s) URL after an '@'
    for sub in ("alice@" + ISS, "alice@" + ISS_B, "x@" + ISS + "/more",
                "bob@https://c.example", "bob@HTTP://c.example"):
        assert_invalid_token(get(srv, "/atiss/env", tok(keys, sub=sub, iss=ISS_B)))
