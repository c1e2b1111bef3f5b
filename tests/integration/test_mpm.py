"""Smoke tests under each MPM, and graceful restart."""

import pytest

import harness as H
from conftest import AUTHZ_FAILURE, assert_insufficient, env_of, get

ISS = "https://issuer.test"


def conf(url):
    return H.api_admin_locations(url, ISS)


def smoke(h, keys):
    assert get(h, "/api/env").status_code == 401
    t = H.mint(H.std_claims(), keys.rsa, "RS256")
    assert env_of(get(h, "/api/env", t))["REMOTE_USER"] == "alice"
    assert_insufficient(get(h, "/admin/env", t))
    ta = H.mint(H.std_claims(roles=["admin"]), keys.ec256, "ES256")
    assert get(h, "/admin/env", ta).status_code == 200
    assert get(h, "/api/app", t).status_code == 200
    assert get(h, "/api/static.txt", t).text == "static ok\n"


@pytest.mark.parametrize("mpm", ["event", "worker", "prefork"])
def test_mpm_smoke_and_graceful(make_httpd, jwks_server, keys, expect_log, mpm):
    expect_log(AUTHZ_FAILURE, required=True)
    h = make_httpd(conf(jwks_server.url()), mpm=mpm)
    smoke(h, keys)
    before = set(h.children())
    h.graceful()
    smoke(h, keys)
    # old generation exits (background threads stopped cleanly)
    H.wait_until(lambda: _survivors_ok(h, before, mpm), 20, 0.2,
                 "old children to exit after graceful restart")
    for _ in range(2):
        h.graceful()
        smoke(h, keys)
    assert h.stop(), "httpd did not stop in time"
    text = h.log_text()
    assert "exit signal" not in text, text[-2000:]


def _survivors_ok(h, before, mpm):
    # with cgid (threaded MPMs) the CGI daemon process may survive a graceful restart
    return len(before & set(h.children())) <= (0 if mpm == "prefork" else 1)


def test_many_concurrent_requests(make_httpd, jwks_server, keys):
    import concurrent.futures as cf
    h = make_httpd(conf(jwks_server.url()), mpm="event")
    toks = [H.mint(H.std_claims(sub="u%d" % i), keys.for_alg(a), a)
            for i, a in enumerate(H.ALL_ALGS * 3)]

    def one(i):
        t = toks[i % len(toks)]
        r = get(h, "/api/env", t)
        return r.status_code, r.json().get("REMOTE_USER") if r.status_code == 200 else None

    with cf.ThreadPoolExecutor(8) as ex:
        res = list(ex.map(one, range(200)))
    assert all(s == 200 for s, _ in res), [s for s, _ in res if s != 200][:5]
    assert {u for _, u in res} == {"u%d" % i for i in range(len(toks))}
