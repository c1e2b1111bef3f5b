"""Step-up authentication (RFC 9470) against a real httpd: `Require jwt-acr`
and `AuthJWKSMaxAuthAge` answer a valid token that is not strong or fresh
enough with 401 insufficient_user_authentication and acr_values / max_age on
the challenge of the scheme the client used; an invalid token never learns
what the resource wants (RFC 9470 §9)."""
import pytest
from jwcrypto import jwk

import harness as H
from conftest import REJECTED, assert_insufficient, assert_invalid_token, get, module_httpd
from test_dpop import bound_token, challenges, dget, proof

ISS = "https://issuer.test"
NO_USER = r"authz_core:error.*AH01629"
FORBIDDEN = r"authz_core:error.*AH0163\d"
STEP_UP = r"\[auth_jwks:error\].*step-up required: %s"


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
    ("acr", "", "Require jwt-acr gold urn:mace:incommon:iap:silver"),
    ("age", "    AuthJWKSMaxAuthAge 300\n    AuthJWKSLeeway 0", "Require valid-user"),
    ("both", "    AuthJWKSMaxAuthAge 300\n    AuthJWKSLeeway 0", "Require jwt-acr gold"),
    ("leeway", "    AuthJWKSMaxAuthAge 300\n    AuthJWKSLeeway 30", "Require valid-user"),
    ("any", "", "<RequireAny>\n Require jwt-acr gold\n Require jwt-claim roles:admin\n"
                "</RequireAny>"),
    ("all", "", "<RequireAll>\n Require jwt-acr gold\n Require jwt-scope write\n</RequireAll>"),
    ("dp", "    AuthJWKSDPoP allow\n    AuthJWKSMaxAuthAge 300", "Require jwt-acr gold"),
    ("dpr", "    AuthJWKSDPoP require", "Require jwt-acr gold"),
    ("ageon", "", "Require valid-user"),
    ("ageoff", "", "Require valid-user"),
]
# An outer section sets the age, an inner one (merged after it) turns it off.
OUTER = """<LocationMatch "^/age(on|off)/">
    AuthJWKSMaxAuthAge 300
</LocationMatch>
<Location /ageoff>
    AuthJWKSMaxAuthAge off
</Location>
"""


@pytest.fixture(scope="module")
def srv(jwks_server):
    extra = ("".join(loc(*l) for l in LOCS) + OUTER).replace("{jwks}", jwks_server.url())
    h = module_httpd(extra, allowed=[REJECTED % ".*", NO_USER, FORBIDDEN, STEP_UP % ".*"])
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


@pytest.fixture(scope="module")
def pkey():
    return jwk.JWK.generate(kty="EC", crv="P-256")


def tok(keys, **claims):
    return H.mint(H.std_claims(**claims), keys.rsa, "RS256")


def assert_step_up(resp, acr_values=None, max_age=None):
    assert resp.status_code == 401, (resp.status_code, resp.text[:300])
    ch = challenges(resp)
    assert [s for s, _ in ch] == ["Bearer"], ch
    b = ch[0][1]
    assert b.get("realm") == "api", b
    assert b.get("error") == "insufficient_user_authentication", b
    assert b.get("error_description"), b
    assert b.get("acr_values") == acr_values, b
    assert b.get("max_age") == max_age, b
    assert "scope" not in b, b


# ------------------------------------------------------------- Require jwt-acr

def test_acr_met(srv, keys):
    for acr in ("gold", "urn:mace:incommon:iap:silver"):
        assert get(srv, "/acr/env", tok(keys, acr=acr)).status_code == 200, acr


def test_acr_unmet_is_401_step_up(srv, keys, expect_log):
    expect_log(NO_USER, required=True)
    for acr in ("bronze", "Gold", "gold ", ["gold"], 3, None):
        t = tok(keys, acr=acr)
        for _ in range(2):                          # the second from the token cache
            assert_step_up(get(srv, "/acr/env", t), "gold urn:mace:incommon:iap:silver")


def test_acr_exact_header(srv, keys, expect_log):
    expect_log(NO_USER)
    r = get(srv, "/acr/env", tok(keys, acr="bronze"))
    assert r.headers["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_user_authentication", '
        'error_description="A different authentication level is required", '
        'acr_values="gold urn:mace:incommon:iap:silver"')


def test_invalid_token_never_learns_the_acr(srv, keys, other_keys, expect_log):
    """RFC 9470 §9: the step-up answer only follows a token that validated."""
    expect_log(REJECTED % "(expired|bad_signature|no_matching_key)", required=True)
    for t in (tok(keys, acr="bronze", exp=H.now() - 300),
              H.mint(H.std_claims(acr="bronze"), other_keys.rsa, "RS256")):
        r = get(srv, "/acr/env", t)
        assert_invalid_token(r)
        assert "acr_values" not in r.headers["WWW-Authenticate"]
    r = get(srv, "/acr/env")
    assert r.status_code == 401 and "acr_values" not in r.headers["WWW-Authenticate"]


# ------------------------------------------------------------- AuthJWKSMaxAuthAge

def test_max_auth_age(srv, keys, expect_log):
    expect_log(STEP_UP % "the authentication .auth_time. is older", required=True)
    expect_log(STEP_UP % "auth_time is absent", required=True)
    expect_log(STEP_UP % "auth_time is not a NumericDate", required=True)
    assert get(srv, "/age/env", tok(keys, auth_time=H.now() - 10)).status_code == 200
    for at in (H.now() - 400, None, "x"):
        assert_step_up(get(srv, "/age/env", tok(keys, auth_time=at)), max_age="300")


def test_max_auth_age_exact_header(srv, keys, expect_log):
    expect_log(STEP_UP % ".*AuthJWKSMaxAuthAge 300", required=True)
    r = get(srv, "/age/env", tok(keys, auth_time=H.now() - 1000))
    assert r.headers["WWW-Authenticate"] == (
        'Bearer realm="api", error="insufficient_user_authentication", '
        'error_description="More recent authentication is required", max_age="300"')


def test_max_auth_age_leeway(srv, keys, expect_log):
    expect_log(STEP_UP % ".*older")
    assert get(srv, "/leeway/env", tok(keys, auth_time=H.now() - 320)).status_code == 200
    assert_step_up(get(srv, "/leeway/env", tok(keys, auth_time=H.now() - 400)), max_age="300")


def test_max_auth_age_off_inside(srv, keys, expect_log):
    expect_log(STEP_UP % ".*")
    assert get(srv, "/ageoff/env", tok(keys)).status_code == 200
    assert_step_up(get(srv, "/ageon/env", tok(keys)), max_age="300")


def test_invalid_token_never_learns_the_max_age(srv, keys, expect_log):
    expect_log(REJECTED % "expired", required=True)
    r = get(srv, "/age/env", tok(keys, auth_time=H.now() - 1000, exp=H.now() - 300))
    assert_invalid_token(r)
    assert "max_age" not in r.headers["WWW-Authenticate"]


def test_acr_and_max_age_together(srv, keys, expect_log):
    expect_log(NO_USER, required=True)
    expect_log(STEP_UP % ".*")
    assert get(srv, "/both/env", tok(keys, acr="gold", auth_time=H.now())).status_code == 200
    assert_step_up(get(srv, "/both/env", tok(keys, acr="bronze", auth_time=H.now())),
                   "gold", "300")
    assert_step_up(get(srv, "/both/env", tok(keys, acr="gold", auth_time=H.now() - 900)),
                   max_age="300")


# ------------------------------------------------------------- inside Require blocks

def test_require_any(srv, keys, expect_log):
    """Under <RequireAny>, "step up" wins over a plain denial of a sibling."""
    expect_log(NO_USER, required=True)
    assert get(srv, "/any/env", tok(keys, roles=["admin"])).status_code == 200
    assert get(srv, "/any/env", tok(keys, acr="gold")).status_code == 200
    assert_step_up(get(srv, "/any/env", tok(keys, acr="bronze", roles=["user"])), "gold")


def test_require_all(srv, keys, expect_log):
    """Under <RequireAll>, a denial that no step-up can cure stays a 403."""
    expect_log(NO_USER, required=True)
    expect_log(FORBIDDEN, required=True)
    assert get(srv, "/all/env", tok(keys, acr="gold", scope="write")).status_code == 200
    assert_step_up(get(srv, "/all/env", tok(keys, acr="bronze", scope="write")), "gold")
    assert_insufficient(get(srv, "/all/env", tok(keys, acr="gold", scope="read")),
                        scope="write")
    assert_insufficient(get(srv, "/all/env", tok(keys, acr="bronze", scope="read")),
                        scope="write")


# ------------------------------------------------------------- DPoP

def test_dpop_allow_bearer_client(srv, keys, expect_log):
    """A Bearer client gets the error on the Bearer challenge; the DPoP one
    only advertises the scheme."""
    expect_log(NO_USER, required=True)
    r = get(srv, "/dp/env", tok(keys, acr="bronze", auth_time=H.now()))
    assert r.status_code == 401
    ch = dict(challenges(r))
    assert list(ch) == ["Bearer", "DPoP"], ch
    assert ch["Bearer"]["error"] == "insufficient_user_authentication"
    assert ch["Bearer"]["acr_values"] == "gold" and ch["Bearer"]["max_age"] == "300"
    assert "error" not in ch["DPoP"] and "acr_values" not in ch["DPoP"], ch


def test_dpop_client(srv, keys, pkey, expect_log):
    """A DPoP client gets the error, acr_values and max_age on the DPoP challenge."""
    expect_log(NO_USER, required=True)
    expect_log(STEP_UP % ".*", required=True)
    for path, want in (("/dp/env", ["Bearer", "DPoP"]), ("/dpr/env", ["DPoP"])):
        t = bound_token(keys, pkey, acr="bronze", auth_time=H.now())
        r = dget(srv, path, t, proof(pkey, "GET", srv.url(path), t))
        assert r.status_code == 401, (path, r.status_code)
        ch = dict(challenges(r))
        assert list(ch) == want, ch
        assert ch["DPoP"]["error"] == "insufficient_user_authentication", ch
        assert ch["DPoP"]["acr_values"] == "gold", ch
        assert ch["DPoP"].get("algs"), ch
        assert "error" not in ch.get("Bearer", {}), ch
        t = bound_token(keys, pkey, acr="gold", auth_time=H.now())
        assert dget(srv, path, t, proof(pkey, "GET", srv.url(path), t)).status_code == 200
    t = bound_token(keys, pkey, acr="gold", auth_time=H.now() - 1000)
    r = dget(srv, "/dp/env", t, proof(pkey, "GET", srv.url("/dp/env"), t))
    ch = dict(challenges(r))
    assert r.status_code == 401 and ch["DPoP"]["max_age"] == "300", ch
    assert ch["DPoP"]["error"] == "insufficient_user_authentication", ch


# ------------------------------------------------------------- configuration

@pytest.mark.parametrize("body,require,msg", [
    ("", "<RequireAll>\n Require valid-user\n Require not jwt-acr gold\n</RequireAll>",
     "cannot be negated"),
    ("", "Require jwt-acr", "at least one acr value"),
    ("", 'Require jwt-acr "gold silver"', "is not an acr value"),
    ("", 'Require jwt-acr gold "a\\"b"', "is not an acr value"),
    ("    AuthJWKSMaxAuthAge 0", "Require valid-user", "AuthJWKSMaxAuthAge: '0'"),
    ("    AuthJWKSMaxAuthAge -5", "Require valid-user", "AuthJWKSMaxAuthAge: '-5'"),
    ("    AuthJWKSMaxAuthAge 5m", "Require valid-user", "AuthJWKSMaxAuthAge: '5m'"),
    ("    AuthJWKSMaxAuthAge", "Require valid-user", "AuthJWKSMaxAuthAge"),
])
def test_bad_config(jwks_server, body, require, msg):
    r = H.configtest(loc("x", body, require).replace("{jwks}", jwks_server.url()))
    assert r.returncode != 0, r.stderr
    assert msg in r.stderr + r.stdout, r.stderr


def test_good_config(jwks_server):
    r = H.configtest(loc("x", "    AuthJWKSMaxAuthAge off", "Require jwt-acr a b:c")
                     .replace("{jwks}", jwks_server.url()))
    assert r.returncode == 0, r.stderr
    assert "auth_jwks:warn" not in r.stderr, r.stderr
