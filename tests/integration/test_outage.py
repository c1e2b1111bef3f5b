"""Operating through an IdP outage: quiet, bounded logs."""
import re

import harness as H
from conftest import get

ISS = "https://issuer.test"


def test_no_keys_refusals_logged_once_per_interval(make_httpd, keys, expect_log):
    """A URL that never loads: every request gets 503, but the error log
    holds one no_keys_loaded line per process per interval, not one per
    request (38,808 lines in 25 s before)."""
    conf = """<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL http://127.0.0.1:9/never
    AuthJWKSIssuer %s
    AuthJWKSAudience api
    AuthJWKSStartupWait 0
    Require valid-user
</Location>
""" % ISS
    expect_log(r"\[auth_jwks:error\].*token rejected: no_keys_loaded", required=True)
    expect_log(r"\[auth_jwks:error\].*no keys from http://127\.0\.0\.1:9/never")
    h = make_httpd(conf)
    tok = H.mint(H.std_claims(), keys.rsa, "RS256")
    for _ in range(200):
        r = get(h, "/api/env", tok)
        assert r.status_code == 503, r.status_code
        assert r.headers.get("Retry-After") == "10"
    lines = re.findall(r"token rejected: no_keys_loaded", h.log_text())
    assert 1 <= len(lines) <= len(h.children()) + 1, len(lines)
