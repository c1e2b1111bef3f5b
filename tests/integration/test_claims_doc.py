"""The claims as the module keeps them: parsed straight into a flat document
that every reader and the token cache read. What the app reads must not
depend on which way the payload was parsed (an object of more than 64
members goes the tree way), on whether the token came from the cache, nor
on the length of a value in the cached rendering."""
import json

import pytest

import harness as H
from conftest import (AUTHZ_FAILURE, REJECTED, assert_invalid_token, env_of, get,
                      module_httpd)


def loc(name, body="", require="Require valid-user"):
    return """<Location /%s>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL {jwks}
    AuthJWKSIssuer https://issuer.test
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    AuthJWKSMaxTokenSize 65536
%s
    %s
</Location>
""" % (name, body, require)


@pytest.fixture(scope="module")
def srv(jwks_server):
    extra = "LimitRequestFieldSize 65536\n" + loc("d") + loc(
        "r", "", "<RequireAll>\n    Require claim k70:v70\n    Require claim big_list:b\n"
        "    </RequireAll>")
    extra = extra.replace("{jwks}", jwks_server.url())
    h = module_httpd(extra, allowed=[REJECTED % ".*"])
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def jwt_env(env):
    return {k: v for k, v in env.items() if k.startswith("JWT_") or k == "REMOTE_USER"}


def miss_then_hit(srv, path, token):
    """The environment of the first request (a miss) and of a second one
    (a cache hit), which must be the same."""
    first = jwt_env(env_of(get(srv, path, token)))
    second = jwt_env(env_of(get(srv, path, token)))
    assert first == second
    return first


def test_many_members_read_the_same(srv, keys):
    # 100 claims: past the document writer's duplicate scan, parsed as a tree
    claims = H.std_claims(**{"k%d" % i: "v%d" % i for i in range(100)})
    env = miss_then_hit(srv, "/d/env", H.mint(claims, keys.rsa, "RS256"))
    for i in range(100):
        assert env["JWT_CLAIM_K%d" % i] == "v%d" % i
    assert json.loads(env["JWT_CLAIMS"]) == claims
    assert list(json.loads(env["JWT_CLAIMS"])) == list(claims)      # the token's order
    assert env["REMOTE_USER"] == "alice"


def test_long_values_replayed_exactly(srv, keys):
    # lengths of one, two and three bytes in the cached rendering
    claims = H.std_claims(short="s", mid="m" * 200, big="b" * 20000,
                          nested={"deep": ["x" * 150, 1.5, None, True]})
    env = miss_then_hit(srv, "/d/env", H.mint(claims, keys.rsa, "RS256"))
    assert env["JWT_CLAIM_SHORT"] == "s"
    assert env["JWT_CLAIM_MID"] == "m" * 200
    assert env["JWT_CLAIM_BIG"] == "b" * 20000
    assert json.loads(env["JWT_CLAIM_NESTED"]) == {"deep": ["x" * 150, 1.5, None, True]}
    assert json.loads(env["JWT_CLAIMS"]) == claims


def test_rules_read_either_parse(srv, keys, expect_log):
    expect_log(AUTHZ_FAILURE, required=True)
    # Require claim on a member past the 64th, and on an array, both ways
    many = {"k%d" % i: "v%d" % i for i in range(80)}
    ok = H.mint(H.std_claims(big_list=["a", "b"], **many), keys.rsa, "RS256")
    assert get(srv, "/r/env", ok).status_code == 200
    assert get(srv, "/r/env", ok).status_code == 200                 # cached
    bad = H.mint(H.std_claims(big_list=["a"], **many), keys.rsa, "RS256")
    assert get(srv, "/r/env", bad).status_code == 403
    assert get(srv, "/r/env", bad).status_code == 403                # cached
    few = H.mint(H.std_claims(k70="v70", big_list="b"), keys.rsa, "RS256")
    assert get(srv, "/r/env", few).status_code == 200
    nok = H.mint(H.std_claims(k70="v7", big_list="b"), keys.rsa, "RS256")
    assert get(srv, "/r/env", nok).status_code == 403


@pytest.mark.parametrize("members", [3, 70])
def test_duplicate_member_refused_either_way(srv, keys, expect_log, members):
    expect_log(REJECTED % r"malformed: token payload: JSON: invalid at line 1 column \d+ "
               r"\(duplicate member name\)", required=True)
    body = ",".join('"k%d":%d' % (i, i) for i in range(members))
    payload = ('{"iss":"https://issuer.test","aud":"api","sub":"alice","exp":%d,%s,"k1":9}'
               % (H.now() + 600, body))
    resp = get(srv, "/d/env", H.mint(payload, keys.rsa, "RS256"))
    assert_invalid_token(resp)
