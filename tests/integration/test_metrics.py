"""Metrics: SetHandler jwks-metrics (Prometheus text, checked with the real
prometheus_client parser), the mod_status section (HTML and ?auto), and the
"metrics" members of jwks-status?json, after driving known numbers of
accepted and refused requests through a real httpd under event and prefork
(several children, some recycled: the counts must add up across them)."""
import concurrent.futures as cf
import json
import os
import re

import pytest
import requests

import harness as H
from conftest import REJECTED, TIMEOUT, get

prom_parser = pytest.importorskip("prometheus_client.parser")

ISS = "https://issuer.test"
BAD_REQUEST = r"\[auth_jwks:error\].*bad bearer request"
PFX = "mod_auth_jwks_"
STATUS_SO = os.path.join(H.MODDIR, "mod_status.so")


def conf(url, extra_loc=""):
    return H.api_admin_locations(url, ISS) + extra_loc + """
<Location /metrics>
    SetHandler jwks-metrics
    Require all granted
</Location>
<Location /jwks-status>
    SetHandler jwks-status
    Require all granted
</Location>
"""


def scrape(h):
    r = requests.get(h.url("/metrics"), timeout=TIMEOUT, headers={"Connection": "close"})
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    assert r.headers.get("Cache-Control") == "no-store", r.headers
    return r.text


def parse(text):
    """{(sample name, frozenset(labels)): value}, via the real parser; and
    every family has HELP text and a type."""
    out, fams = {}, {}
    for fam in prom_parser.text_string_to_metric_families(text):
        assert fam.name.startswith(PFX), fam.name
        assert fam.documentation, fam.name
        assert fam.type in ("counter", "gauge"), (fam.name, fam.type)
        fams[fam.name] = fam
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, "duplicate sample %r" % (key,)
            out[key] = s.value
    return out, fams


def val(samples, name, **labels):
    return samples[(PFX + name, frozenset(labels.items()))]


def drive(h, keys, n_ok=4, n_repeat=3, n_none=2):
    """Known traffic; returns the expected counters."""
    toks = [H.mint(H.std_claims(sub="u%d" % i), keys.rsa, "RS256") for i in range(n_ok)]
    for t in toks:
        assert get(h, "/api/env", t).status_code == 200
    for _ in range(n_repeat):
        assert get(h, "/api/env", toks[0]).status_code == 200
    for _ in range(n_none):
        assert get(h, "/api/env").status_code == 401
    expired = H.mint(H.std_claims(iat=H.now() - 4000, exp=H.now() - 3000), keys.ec256, "ES256")
    assert get(h, "/api/env", expired).status_code == 401
    assert get(h, "/api/env", H.tamper_payload(toks[1], sub="mallory")).status_code == 401
    assert get(h, "/api/env", "abc.def").status_code == 401
    assert get(h, "/api/env", "a b").status_code == 400
    return {"accepted": n_ok + n_repeat,
            "refused": {"no_token": n_none, "expired": 1, "bad_signature": 1,
                        "malformed": 1, "bad_request": 1},
            "full_verifications": n_ok + 3}


def expect_refusals(expect_log):
    for reason in ("expired", "bad_signature", "malformed"):
        expect_log(REJECTED % reason)
    expect_log(BAD_REQUEST)


def check_counts(samples, want, cache_hits=None):
    assert val(samples, "requests_accepted_total") == want["accepted"]
    for reason, n in want["refused"].items():
        assert val(samples, "requests_refused_total", reason=reason) == n, reason
    others = {dict(k[1])["reason"]: v for k, v in samples.items()
              if k[0] == PFX + "requests_refused_total"}
    # every error-log reason name is exposed, zero or not; "ok" is not a refusal
    assert {"no_matching_key", "bad_issuer", "no_keys_loaded", "internal_error",
            "bad_request", "no_token"} <= set(others), sorted(others)
    assert "ok" not in others
    assert sum(others.values()) == sum(want["refused"].values()), others
    if cache_hits is not None:
        assert val(samples, "token_cache_hits_total") == cache_hits


def test_prometheus_event(make_httpd, jwks_server, keys, expect_log):
    expect_refusals(expect_log)
    url = jwks_server.url()
    h = make_httpd(conf(url), mpm="event")
    want = drive(h, keys)
    text = scrape(h)
    samples, fams = parse(text)
    # the expired, tampered and malformed tokens miss the cache too
    check_counts(samples, want, cache_hits=3)
    assert val(samples, "token_cache_misses_total") == want["full_verifications"]
    assert fams[PFX + "requests_accepted"].type == "counter"
    assert fams[PFX + "keyset_age_seconds"].type == "gauge"
    assert val(samples, "keyset_loaded", url=url) == 1
    assert 0 <= val(samples, "keyset_age_seconds", url=url) < 60
    assert val(samples, "keyset_stale_seconds", url=url) == 0
    fetches = {o: val(samples, "jwks_fetches_total", url=url, outcome=o)
               for o in ("200", "304", "error")}
    assert all(v >= 0 for v in fetches.values()), fetches
    if sum(fetches.values()):
        # the key store reports its fetches (ajw_metrics_fetch_done): every
        # child's first load is a 200, and the last one took some time
        assert fetches["200"] >= 1 and fetches["error"] == 0, fetches
        assert 0 < val(samples, "jwks_last_fetch_duration_seconds", url=url) < 10
        assert val(samples, "jwks_last_fetch_timestamp_seconds", url=url) > 0
    assert val(samples, "counters_start_time_seconds") > 0

    # GET only; HEAD rides on GET
    r = requests.post(h.url("/metrics"), data=b"x", timeout=TIMEOUT)
    assert r.status_code == 405, r.status_code
    assert requests.head(h.url("/metrics"), timeout=TIMEOUT).status_code == 200

    # jwks-status?json keeps its array form, each URL with its own metrics;
    # ?json=2 adds the server-wide counters next to the list
    arr = json.loads(requests.get(h.url("/jwks-status?json"), timeout=TIMEOUT).text)
    assert isinstance(arr, list) and [e["url"] for e in arr] == [url], arr
    m = arr[0]["metrics"]
    assert set(m["fetches"]) == {"200", "304", "error"}, m
    assert m["age"] is not None and m["stale"] == 0, m
    v2 = json.loads(requests.get(h.url("/jwks-status?json=2"), timeout=TIMEOUT).text)
    assert [e["url"] for e in v2["sources"]] == [url], v2
    assert {"url", "loaded", "keys", "generation", "failures", "last_error",
            "metrics"} <= set(v2["sources"][0]), v2
    mm = v2["metrics"]
    assert mm["shared"] is True, mm
    assert mm["requests_accepted"] == want["accepted"], mm
    for reason, n in want["refused"].items():
        assert mm["requests_refused"][reason] == n, (reason, mm)
    assert mm["token_cache_hits"] == 3, mm

    # counters live in the parent's segment: a graceful restart keeps them
    h.graceful()
    H.wait_until(lambda: val(parse(scrape(h))[0], "keyset_loaded", url=url) == 1, 15, 0.2,
                 "keys after graceful restart")
    samples, _ = parse(scrape(h))
    check_counts(samples, want)
    assert get(h, "/api/env", H.mint(H.std_claims(), keys.rsa)).status_code == 200
    assert val(parse(scrape(h))[0], "requests_accepted_total") == want["accepted"] + 1


def test_label_escaping(make_httpd, jwks_server, keys, expect_log):
    """A URL holding a quote and a backslash comes out escaped, and the
    parser gives back the URL the module reports."""
    expect_log(r"\[auth_jwks:(warn|error)\].*x=")   # whatever curl thinks of that URL
    odd = jwks_server.url() + '?x=\\"q\\\\'
    loc = """<Location /odd>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL "%s"
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    Require valid-user
</Location>
""" % (odd, ISS)
    h = make_httpd(conf(jwks_server.url(), loc), mpm="event")
    urls = [e["url"] for e in json.loads(requests.get(h.url("/jwks-status?json"),
                                                      timeout=TIMEOUT).text)]
    weird = [u for u in urls if "x=" in u]
    assert len(weird) == 1 and '"' in weird[0] and "\\" in weird[0], urls
    text = scrape(h)
    assert 'url="%s' % weird[0] not in text           # raw quote would end the label
    samples, _ = parse(text)
    got = {dict(k[1]).get("url") for k in samples if "url" in dict(k[1])}
    assert set(urls) == got, (urls, got)


def _status_auto(h):
    r = requests.get(h.url("/server-status?auto"), timeout=TIMEOUT)
    assert r.status_code == 200, r.status_code
    return dict(line.split(": ", 1) for line in r.text.splitlines() if ": " in line)


@pytest.mark.skipif(not os.path.exists(STATUS_SO), reason="mod_status not installed")
def test_server_status_section(make_httpd, jwks_server, keys, expect_log):
    expect_refusals(expect_log)
    url = jwks_server.url()
    extra = """LoadModule status_module %s
ExtendedStatus On
<Location /server-status>
    SetHandler server-status
    Require all granted
</Location>
""" % STATUS_SO
    h = make_httpd(conf(url, extra), mpm="event")
    want = drive(h, keys)
    auto = _status_auto(h)
    assert "Total Accesses" in auto or "ServerUptime" in auto, auto    # mod_status's own part
    assert int(auto["AuthJWKSRequestsAccepted"]) == want["accepted"], auto
    assert int(auto["AuthJWKSRequestsRefused"]) == sum(want["refused"].values()), auto
    for reason, n in want["refused"].items():
        assert int(auto["AuthJWKSRefused_" + reason]) == n, (reason, auto)
    assert int(auto["AuthJWKSTokenCacheHits"]) == 3, auto
    assert auto["AuthJWKSSources"] == "1" and auto["AuthJWKSSource1URL"] == url, auto
    assert auto["AuthJWKSSource1Loaded"] == "1", auto
    assert int(auto["AuthJWKSSource1StaleSeconds"]) == 0, auto
    html = requests.get(h.url("/server-status"), timeout=TIMEOUT).text
    assert "<h2>mod_auth_jwks</h2>" in html, html[-2000:]
    assert "Tokens accepted: %d" % want["accepted"] in html
    assert re.search(r"<td>%s</td><td>yes</td>" % re.escape(url), html), html[-2000:]


def test_without_mod_status(make_httpd, jwks_server, keys):
    """The status hook is optional: without mod_status nothing breaks."""
    h = make_httpd(conf(jwks_server.url()), mpm="event")
    assert get(h, "/api/env", H.mint(H.std_claims(), keys.rsa)).status_code == 200
    assert val(parse(scrape(h))[0], "requests_accepted_total") == 1


def test_prefork_children_add_up(make_httpd, jwks_server, keys, expect_log):
    """Several prefork children, recycled every few connections: every
    child reports the same server-wide totals, and they add up."""
    expect_refusals(expect_log)
    url = jwks_server.url()
    extra = "StartServers 4\nMinSpareServers 3\nMaxSpareServers 6\nMaxConnectionsPerChild 5\n"
    h = make_httpd(conf(url) + extra, mpm="prefork")
    toks = [H.mint(H.std_claims(sub="p%d" % i), keys.for_alg(a), a)
            for i, a in enumerate(["RS256", "ES256", "PS256", "EdDSA"])]
    n_ok, n_none = 40, 12

    def one(i):
        hdrs = {"Connection": "close"}
        if i < n_ok:
            return get(h, "/api/static.txt", toks[i % len(toks)], headers=hdrs).status_code
        return get(h, "/api/static.txt", headers=hdrs).status_code

    with cf.ThreadPoolExecutor(6) as ex:
        codes = list(ex.map(one, range(n_ok + n_none)))
    assert codes.count(200) == n_ok and codes.count(401) == n_none, codes
    want = drive(h, keys, n_ok=2, n_repeat=1, n_none=1)

    seen = {}

    def status_once(_):
        r = requests.get(h.url("/jwks-status?json=2"), timeout=TIMEOUT,
                         headers={"Connection": "close"})
        return json.loads(r.text)

    def enough():
        with cf.ThreadPoolExecutor(4) as ex:
            for v2 in ex.map(status_once, range(8)):
                seen[v2["process"]] = v2["metrics"]
        return len(seen) >= 2

    H.wait_until(enough, 20, 0.1, "answers from two prefork children")
    total_ok = n_ok + want["accepted"]
    total_none = n_none + want["refused"]["no_token"]
    for pid, m in seen.items():
        assert m["requests_accepted"] == total_ok, (pid, m)
        assert m["requests_refused"]["no_token"] == total_none, (pid, m)
        assert m["requests_refused"]["expired"] == 1, (pid, m)
    samples, _ = parse(scrape(h))
    assert val(samples, "requests_accepted_total") == total_ok
    assert val(samples, "requests_refused_total", reason="no_token") == total_none
    hits = val(samples, "token_cache_hits_total")
    misses = val(samples, "token_cache_misses_total")
    # every token that reached verify() is either a hit or a miss
    assert hits + misses == total_ok + 3, (hits, misses)


@pytest.mark.parametrize("mpm,size", [("event", 4096), ("prefork", 1024)])
def test_token_cache_default_per_mpm(make_httpd, jwks_server, mpm, size):
    """Without AuthJWKSTokenCache a threaded process (one cache for all its
    threads) gets 4096 entries, each prefork child 1024; a setting wins."""
    h = make_httpd(conf(jwks_server.url()), mpm=mpm)
    H.wait_until(lambda: "token cache: %d entries in this process (default for this MPM)"
                 % size in h.log_text(), 10, 0.1, "the token cache's size in the log")
    h2 = make_httpd("AuthJWKSTokenCache 10\n" + conf(jwks_server.url()), mpm=mpm)
    H.wait_until(lambda: "token cache: 10 entries in this process\n" in h2.log_text(), 10, 0.1,
                 "the configured size in the log")
    assert "default for this MPM" not in h2.log_text()


def test_token_cache_default_holds_1500_tokens(make_httpd, jwks_server, keys):
    """The threaded default really holds more than the prefork one: 1500
    distinct tokens, sent twice, are hits the second time. (A few may not be:
    a put evicts the oldest of its 8-slot probe window when that is full,
    which for 1500 random keys in 4096 slots costs up to ~30 misses, 1 %
    of runs more than 10. A cache of 1024 would miss nearly all of them.)"""
    h = make_httpd(conf(jwks_server.url()), mpm="event")
    toks = [H.mint(H.std_claims(sub="u%d" % i), keys.ec256, "ES256") for i in range(1500)]
    s = requests.Session()

    def send_all():
        for t in toks:
            r = s.get(h.url("/api/static.txt"), headers={"Authorization": "Bearer " + t},
                      timeout=TIMEOUT)
            assert r.status_code == 200, r.status_code

    send_all()
    hits0 = val(parse(scrape(h))[0], "token_cache_hits_total")
    send_all()
    hits = val(parse(scrape(h))[0], "token_cache_hits_total") - hits0
    assert hits >= 1400, hits
