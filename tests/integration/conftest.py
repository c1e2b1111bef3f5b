import json
import os
import re
import shutil
import sys
import tempfile

import pytest
import requests

sys.path.insert(0, os.path.dirname(__file__))
import harness as H  # noqa: E402

TIMEOUT = 15

# Every token a test mints is remembered so the log checker can assert that
# no token text (payload or signature part) ever reaches the error log.
MINTED = H.MINTED


def pytest_collection_modifyitems(config, items):
    if not os.path.exists(H.MODULE_SO):
        skip = pytest.mark.skip(reason="build/mod_auth_jwks.so not built (run make)")
        for it in items:
            it.add_marker(skip)


# ---------------------------------------------------------------- session material

@pytest.fixture(scope="session")
def keys():
    return H.Keys("k1")


@pytest.fixture(scope="session")
def other_keys():
    return H.Keys("k2")


@pytest.fixture(scope="session")
def ca():
    d = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-ca-", dir="/tmp"))
    c = H.TestCA(d)
    yield c
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def jwks_server(keys):
    s = H.JWKSServer()
    s.set(keys.jwks())
    yield s
    s.close()


@pytest.fixture(scope="module")
def echo_backend():
    b = H.EchoBackend()
    yield b
    b.close()


# ---------------------------------------------------------------- log checking

class LogCheck:
    def __init__(self):
        self.expected = []      # regexes tolerated at error level
        self.required = []      # regexes that must appear
        self.forbidden = []     # plain strings that must not appear
        self.marks = {}
        self.failures = []

    def expect(self, regex, required=False):
        self.expected.append(regex)
        if required:
            self.required.append(regex)

    def check(self, httpd, start, end=None):
        text = httpd.log_since(start)
        if end is not None:
            text = text[: max(0, end - start)]
        bad = H.bad_log_lines(text, self.expected)
        if bad:
            self.failures.append("unexpected error-log lines in %s:\n  %s" % (
                httpd.error_log, "\n  ".join(bad[:20])))
        return text


@pytest.fixture(autouse=True)
def logcheck(request):
    lc = LogCheck()
    n_minted = len(MINTED)
    for h in H.RUNNING:
        lc.marks[id(h)] = (h, h.log_size())
    request.node._ajw_logcheck = lc
    yield lc
    texts = []
    for h in list(H.RUNNING):
        hm = lc.marks.get(id(h))
        start = hm[1] if hm else 0
        end = h.log_size()
        texts.append(lc.check(h, start))
        h.covered.append((start, end))
    texts.extend(getattr(lc, "extra_texts", []))
    alltext = "\n".join(texts)
    for rx in lc.required:
        if not re.search(rx, alltext):
            lc.failures.append("expected error-log line matching %r not found" % rx)
    for tok in MINTED[n_minted:]:
        parts = tok.split(".")
        for piece in [tok] + [p for p in parts[1:] if len(p) >= 16]:
            if piece and piece in alltext:
                lc.failures.append("token text leaked into the error log: %s..." % piece[:24])
                break
    if lc.failures:
        pytest.fail("\n".join(lc.failures), pytrace=False)


@pytest.fixture
def expect_log(logcheck):
    return logcheck.expect


def _module_teardown_check(h):
    """Lines no test covered (startup, between tests, shutdown)."""
    clean = h.stop()
    text = h.log_text()
    covered = sorted(h.covered)
    pos, pieces = 0, []
    for a, b in covered:
        if a > pos:
            pieces.append(text[pos:a])
        pos = max(pos, b)
    pieces.append(text[pos:])
    bad = H.bad_log_lines("".join(pieces), getattr(h, "allowed", []))
    h.cleanup()
    problems = []
    if not clean:
        problems.append("httpd did not stop within the deadline")
    if bad:
        problems.append("unexpected error-log lines outside tests:\n  " + "\n  ".join(bad[:20]))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def make_httpd(logcheck):
    """Factory for per-test httpd instances; checks their whole log (including
    shutdown) against the test's expectations before deleting them."""
    made = []

    def factory(extra, mpm="event", start=True, **kw):
        h = H.Httpd(extra, mpm=mpm, **kw)
        h.covered = []
        made.append(h)
        if start:
            h.start()
        return h

    yield factory
    for h in made:
        clean = h.stop()
        if not clean:
            logcheck.failures.append("httpd did not stop within the deadline")
        text = h.log_text()
        lc_bad = H.bad_log_lines(text, logcheck.expected)
        if lc_bad:
            logcheck.failures.append("unexpected error-log lines:\n  " + "\n  ".join(lc_bad[:20]))
        logcheck.extra_texts = getattr(logcheck, "extra_texts", []) + [text]
        h.cleanup()


def module_httpd(extra, mpm="event", allowed=(), **kw):
    h = H.Httpd(extra, mpm=mpm, **kw)
    h.covered = []
    h.allowed = list(allowed)
    try:
        h.start()
    except Exception:
        h.cleanup()
        raise
    return h


# ---------------------------------------------------------------- HTTP helpers

def get(h, path, token=None, headers=None, scheme="Bearer", **kw):
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = "%s %s" % (scheme, token) if scheme else token
    kw.setdefault("timeout", TIMEOUT)
    kw.setdefault("allow_redirects", False)
    return requests.get(h.url(path), headers=hdrs, **kw)


def bearer(resp):
    return H.parse_bearer(resp.headers.get("WWW-Authenticate"))


def assert_invalid_token(resp, realm="api"):
    assert resp.status_code == 401, (resp.status_code, resp.text[:300])
    b = bearer(resp)
    assert b is not None, resp.headers.get("WWW-Authenticate")
    assert b.get("realm") == realm, b
    assert b.get("error") == "invalid_token", b
    assert b.get("error_description"), b


def assert_invalid_request(resp, realm="api"):
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    b = bearer(resp)
    assert b is not None, resp.headers.get("WWW-Authenticate")
    assert b.get("error") == "invalid_request", b


def assert_insufficient(resp, realm="api", scope=None):
    assert resp.status_code == 403, (resp.status_code, resp.text[:300])
    b = bearer(resp)
    assert b is not None, resp.headers.get("WWW-Authenticate")
    assert b.get("realm") == realm, b
    assert b.get("error") == "insufficient_scope", b
    if scope is not None:
        assert b.get("scope") == scope, b


def env_of(resp):
    assert resp.status_code == 200, (resp.status_code, resp.headers, resp.text[:300])
    return json.loads(resp.text)


AUTHZ_FAILURE = r"authz_core:error.*AH0163\d"
REJECTED = r"\[auth_jwks:error\].*token rejected: %s"
