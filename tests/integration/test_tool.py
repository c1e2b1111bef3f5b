"""jwks-tool: the offline checker operators use, linked with the same lib/."""
import json
import os
import subprocess

import pytest

import harness as H

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "build", "jwks-tool")
pytestmark = pytest.mark.skipif(not os.path.exists(TOOL), reason="build/jwks-tool not built")


def run(*args, stdin=None):
    return subprocess.run([TOOL] + list(args), input=stdin, capture_output=True, text=True,
                          timeout=30)


@pytest.fixture(scope="module")
def keys():
    return H.Keys("tool")


@pytest.fixture
def jwks_file(tmp_path, keys):
    p = tmp_path / "jwks.json"
    doc = json.loads(json.dumps(H.jwks_doc(keys.all())))
    doc["keys"].append({"kty": "oct", "k": "c2VjcmV0", "kid": "sym"})
    p.write_text(json.dumps(doc))
    return str(p)


def test_keys_lists_usable_and_skipped(jwks_file):
    r = run("keys", jwks_file)
    assert r.returncode == 0, r.stderr
    assert "5 usable key(s)" in r.stdout
    for kid in ("tool-rsa", "tool-ec256", "tool-ec384", "tool-ec521", "tool-ed25519"):
        assert "kid=%s " % kid in r.stdout
    assert "sym" in r.stderr and "skipped" in r.stderr      # the oct key, with its reason
    assert "c2VjcmV0" not in r.stdout + r.stderr            # never key material


@pytest.mark.parametrize("alg,attr", [("RS256", "rsa"), ("PS384", "rsa"), ("ES256", "ec256"),
                                      ("ES512", "ec521"), ("EdDSA", "ed")])
def test_verify_valid(jwks_file, keys, alg, attr):
    tok = H.mint(H.std_claims(), getattr(keys, attr), alg)
    r = run("verify", "--iss", H.std_claims()["iss"], "--aud", "api", jwks_file, "-", stdin=tok)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("valid: alg=%s" % alg)
    assert json.loads(r.stdout.splitlines()[1])["sub"] == H.std_claims()["sub"]


def test_verify_rejections(jwks_file, keys):
    good = H.mint(H.std_claims(), keys.rsa, "RS256")
    cases = [
        (H.tamper_payload(good, sub="mallory"), [], "bad_signature"),
        (good, ["--iss", "https://other.example"], "bad_issuer"),
        (good, ["--aud", "other"], "bad_audience"),
        (good, ["--alg", "ES256"], "alg_not_allowed"),
        (good, ["--now", str(H.now() + 10 ** 7)], "expired"),
        (H.mint_none(H.std_claims()), [], "alg_not_allowed"),
        (H.mint(H.std_claims(), keys.rsa, "RS256", kid="unknown"), [], "no_matching_key"),
        ("not.a.token", [], "malformed"),
    ]
    for tok, opts, reason in cases:
        r = run("verify", *opts, jwks_file, "-", stdin=tok)
        assert r.returncode == 1, (reason, r.stdout, r.stderr)
        assert r.stdout.startswith("rejected: %s:" % reason), (reason, r.stdout)
        assert tok.split(".")[-1] not in r.stdout + r.stderr or len(tok.split(".")[-1]) < 8


def test_usage_and_bad_files(tmp_path):
    assert run().returncode == 2
    assert run("verify", "--bogus", "x", "y", "z").returncode == 2
    assert run("keys", str(tmp_path / "missing.json")).returncode == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys": {}}')
    r = run("keys", str(bad))
    assert r.returncode == 2 and "jwks-tool:" in r.stderr
