"""jwks-tool: the offline checker operators use, linked with the same lib/."""
import json
import os
import re
import subprocess

import pytest
from jwcrypto import jwk, jws

import harness as H

TOOL = os.environ.get("AJW_TOOL") or os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                                  "jwks-tool")
pytestmark = pytest.mark.skipif(not os.path.exists(TOOL), reason="%s not built" % TOOL)


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
    assert r.returncode == 2 and "jwks-tool keys:" in r.stderr and "no \"keys\" array" in r.stderr


# ---------------------------------------------------------------- verify: token argument

def test_verify_token_as_argument_or_file(jwks_file, keys, tmp_path):
    tok = H.mint(H.std_claims(), keys.ec256, "ES256")
    r = run("verify", "--aud", "api", jwks_file, tok)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("valid: alg=ES256 kid=tool-ec256")
    f = tmp_path / "token.txt"
    f.write_text(tok + "\n")
    r = run("verify", jwks_file, str(f), "--aud", "api")       # options after the arguments too
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("verify", "--aud=other", jwks_file, tok)
    assert r.returncode == 1 and r.stdout.startswith("rejected: bad_audience:")


def test_verify_bad_token_argument_says_why(jwks_file, keys, tmp_path):
    r = run("verify", jwks_file, str(tmp_path / "missing-token"))
    assert r.returncode == 2
    assert "neither a readable file nor a compact JWS" in r.stderr
    # a long non-token string is not echoed back (it may be a mangled token)
    tok = H.mint(H.std_claims(), keys.rsa, "RS256")
    mangled = tok.replace(".", "!")
    r = run("verify", jwks_file, mangled)
    assert r.returncode == 2 and "neither a compact JWS" in r.stderr
    assert mangled[:40] not in r.stderr + r.stdout


# ---------------------------------------------------------------- help and usage errors

@pytest.mark.parametrize("cmd", ["keys", "verify", "fetch", "mint", "help"])
def test_help_for_every_command(cmd):
    for args in (["help", cmd], [cmd, "--help"], [cmd, "-h"]):
        r = run(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stdout.startswith("usage: jwks-tool %s" % cmd), (args, r.stdout)
        assert r.stderr == ""
    r = run("--help")
    assert r.returncode == 0 and "mint" in r.stdout and "fetch" in r.stdout


def test_mint_help_says_test_aid_only():
    r = run("mint", "--help")
    assert "TEST AID ONLY" in r.stdout and "never use it to issue real tokens" in r.stdout


@pytest.mark.parametrize("args,reason", [
    ([], "usage: jwks-tool COMMAND"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["help", "frobnicate"], "unknown command 'frobnicate'"),
    (["keys"], "expects one JWKS FILE, got 0 arguments"),
    (["keys", "a", "b"], "expects one JWKS FILE, got 2 arguments"),
    (["verify", "jwks.json"], "expects a JWKS FILE and a TOKEN"),
    (["verify", "--bogus", "x", "y", "z"], "unknown option '--bogus'"),
    (["verify", "--iss"], "option --iss needs a value"),
    (["verify", "--leeway", "soon", "a", "b"], "--leeway wants a whole number"),
    (["verify", "--alg", "HS256", "a", "b"], "--alg 'HS256' is not one of"),
    (["verify", "--alg", "none", "a", "b"], "never verify with a JWKS"),
    (["fetch"], "expects one URL, got 0 arguments"),
    (["fetch", "--timeout", "0", "https://x.example/"], "--timeout wants a whole number from 1"),
    (["mint", "key.json"], "expects a private JWK file KEY and a CLAIMS file"),
    (["mint", "--kid", "a", "--no-kid", "k", "c"], "--kid and --no-kid exclude each other"),
    (["mint", "--no-kid=1", "k", "c"], "option --no-kid takes no value"),
    (["mint", "-", "-"], "cannot both come from stdin"),
])
def test_usage_errors_say_what_was_wrong(args, reason):
    r = run(*args)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert reason in r.stderr, (args, r.stderr)


# ---------------------------------------------------------------- fetch

def _doc_with_oct(keys):
    doc = json.loads(json.dumps(H.jwks_doc(keys.all())))
    doc["keys"].append({"kty": "oct", "k": "c2VjcmV0", "kid": "sym"})
    return doc


@pytest.fixture(scope="module")
def fetch_server(keys):
    s = H.JWKSServer()
    s.set(_doc_with_oct(keys))
    s.set({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "sym"}]}, path="/only-oct")
    s.set(b"<html>not json</html>", path="/html")
    yield s
    s.close()


@pytest.fixture(scope="module")
def tls_server(keys, ca):
    s = H.JWKSServer(tls=ca)
    s.set(H.jwks_doc([keys.ec256, keys.ed]))
    yield s
    s.close()


def test_fetch_http_shows_status_cache_headers_keys_and_skips(fetch_server):
    r = run("fetch", fetch_server.url())
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "tls: none (plain http to a loopback host)" in out
    assert "status: 200" in out
    assert re.search(r'^etag: "[0-9a-f]{16}"$', out, re.M), out
    assert "cache-control max-age: 300 s" in out
    for kid in ("tool-rsa", "tool-ec256", "tool-ec384", "tool-ec521", "tool-ed25519"):
        assert "kid=%s " % kid in out
    assert re.search(r"^note: .*kid=sym.*skipped", out, re.M), out
    assert "5 usable key(s)" in out
    assert "c2VjcmV0" not in out + r.stderr


def test_fetch_https_with_test_ca(tls_server, ca):
    r = run("fetch", "--ca", ca.ca_file, tls_server.url())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tls: ok (peer certificate and host name verified against %s)" % ca.ca_file in r.stdout
    assert "2 usable key(s)" in r.stdout
    # Without the test CA the system store does not know it: no answer, TLS named.
    r = run("fetch", tls_server.url())
    assert r.returncode == 2, r.stdout
    assert "tls: failed" in r.stdout
    assert "no answer:" in r.stderr and "certificate" in r.stderr.lower()


def test_fetch_answers_without_usable_keys(fetch_server):
    r = run("fetch", fetch_server.url("/missing"))
    assert r.returncode == 1 and "status: 404" in r.stdout and "HTTP 404 is not a JWKS" in r.stdout
    r = run("fetch", fetch_server.url("/only-oct"))
    assert r.returncode == 1 and "0 usable key(s)" in r.stdout and "skipped" in r.stdout
    r = run("fetch", fetch_server.url("/html"))
    assert r.returncode == 1 and "not a usable JWKS" in r.stderr


def test_fetch_refuses_what_the_module_refuses_and_reports_no_answer():
    r = run("fetch", "http://example.com/jwks")
    assert r.returncode == 2 and "http:// is allowed only for loopback hosts" in r.stderr
    r = run("fetch", "ftp://127.0.0.1/jwks")
    assert r.returncode == 2 and "scheme must be" in r.stderr
    r = run("fetch", "https://user:secret@idp.example/jwks")
    assert r.returncode == 2 and "credentials" in r.stderr and "secret" not in r.stderr
    r = run("fetch", "--timeout", "5", "http://127.0.0.1:%d/jwks" % H.free_port())
    assert r.returncode == 2 and "no answer:" in r.stderr


def test_fetch_file_url(jwks_file):
    r = run("fetch", "file://" + jwks_file)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tls: none (local file)" in r.stdout and "5 usable key(s)" in r.stdout


# ---------------------------------------------------------------- mint

def _private(tmp_path, key, name="key.json", **extra):
    d = json.loads(key.export_private())
    d.update(extra)
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return str(p), d


def _claims(tmp_path, claims):
    p = tmp_path / "claims.json"
    p.write_text(json.dumps(claims))
    return str(p)


def _jwcrypto_verify(tok, key, alg):
    t = jws.JWS()
    t.allowed_algs = [alg]
    t.deserialize(tok, key=jwk.JWK(**key.export_public(as_dict=True)), alg=alg)
    return json.loads(t.payload), t.jose_header


@pytest.mark.parametrize("alg,attr", [("RS256", "rsa"), ("RS384", "rsa"), ("RS512", "rsa"),
                                      ("PS256", "rsa"), ("PS384", "rsa"), ("PS512", "rsa"),
                                      ("ES256", "ec256"), ("ES384", "ec384"), ("ES512", "ec521"),
                                      ("EdDSA", "ed")])
def test_mint_verified_by_jwcrypto_and_by_verify(tmp_path, jwks_file, keys, alg, attr):
    key = getattr(keys, attr)
    kf, priv = _private(tmp_path, key)
    claims = H.std_claims()
    r = run("mint", "--alg", alg, kf, _claims(tmp_path, claims))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    tok = H.remember(r.stdout.strip())
    payload, hdr = _jwcrypto_verify(tok, key, alg)
    assert payload == claims
    assert hdr == {"alg": alg, "typ": "JWT", "kid": key.export_public(as_dict=True)["kid"]}
    if alg.startswith("ES"):
        sig = H.b64u_decode(tok.split(".")[2])
        assert len(sig) == {"ES256": 64, "ES384": 96, "ES512": 132}[alg]      # raw r||s
    r = run("verify", "--iss", claims["iss"], "--aud", "api", jwks_file, tok)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("valid: alg=%s kid=%s" % (alg, key.export_public(as_dict=True)["kid"]))
    assert priv["d"] not in r.stdout + r.stderr


def test_mint_defaults_stdin_kid_and_typ(tmp_path, keys):
    kf, _ = _private(tmp_path, keys.ec384)
    claims = {"sub": "bob", "exp": H.now() + 60}
    r = run("mint", kf, "-", stdin=json.dumps(claims))
    assert r.returncode == 0, r.stderr
    payload, hdr = _jwcrypto_verify(H.remember(r.stdout.strip()), keys.ec384, "ES384")
    assert payload == claims and hdr["alg"] == "ES384" and hdr["kid"] == "tool-ec384"
    r = run("mint", "--kid", "other", "--typ", "at+jwt", kf, "-", stdin=json.dumps(claims))
    _, hdr = _jwcrypto_verify(H.remember(r.stdout.strip()), keys.ec384, "ES384")
    assert hdr == {"alg": "ES384", "kid": "other", "typ": "at+jwt"}
    r = run("mint", "--no-kid", kf, "-", stdin=json.dumps(claims))
    _, hdr = _jwcrypto_verify(H.remember(r.stdout.strip()), keys.ec384, "ES384")
    assert "kid" not in hdr
    # The JWK's own alg is the default when it names one.
    kf2, _ = _private(tmp_path, keys.rsa, name="rsa-ps.json", alg="PS384")
    r = run("mint", kf2, "-", stdin=json.dumps(claims))
    _, hdr = _jwcrypto_verify(H.remember(r.stdout.strip()), keys.rsa, "PS384")
    assert hdr["alg"] == "PS384"


def test_mint_rsa_without_crt_members(tmp_path, keys):
    d = json.loads(keys.rsa.export_private())
    for m in ("p", "q", "dp", "dq", "qi"):
        d.pop(m)
    kf = tmp_path / "rsa-nocrt.json"
    kf.write_text(json.dumps(d))
    r = run("mint", str(kf), "-", stdin='{"sub":"x"}')
    assert r.returncode == 0, r.stderr
    payload, _ = _jwcrypto_verify(H.remember(r.stdout.strip()), keys.rsa, "RS256")
    assert payload == {"sub": "x"}


def test_mint_errors_give_reasons_never_key_material(tmp_path, keys, other_keys):
    kf, priv = _private(tmp_path, keys.rsa)
    claims = _claims(tmp_path, {"sub": "x"})
    pub = tmp_path / "pub.json"
    pub.write_text(keys.rsa.export_public())
    mixed = dict(json.loads(keys.ec256.export_public()), d=json.loads(other_keys.ec256.export_private())["d"])
    mixed_f = tmp_path / "mixed.json"
    mixed_f.write_text(json.dumps(mixed))
    notobj = tmp_path / "list.json"
    notobj.write_text("[1, 2]")
    jwks_f = tmp_path / "jwks.json"
    jwks_f.write_text(json.dumps(H.jwks_doc([keys.rsa])))
    oct_f = tmp_path / "oct.json"
    oct_f.write_text('{"kty":"oct","k":"c2VjcmV0c2VjcmV0"}')
    cases = [
        (["mint", str(pub), claims], 2, 'no "d" member (mint needs a private JWK)'),
        (["mint", "--alg", "ES256", kf, claims], 2, "--alg ES256 does not fit this RSA key"),
        (["mint", kf, str(notobj)], 2, "not a JSON object"),
        (["mint", kf, str(tmp_path / "nope.json")], 2, "cannot read claims file"),
        (["mint", str(jwks_f), claims], 2, "holds a JWKS; give one private JWK"),
        (["mint", str(oct_f), claims], 2, "unsupported key type kty=oct"),
        (["mint", str(mixed_f), claims], 1, "does not verify with the JWK's public members"),
    ]
    for args, code, reason in cases:
        r = run(*args)
        assert r.returncode == code, (args, r.stdout, r.stderr)
        assert reason in r.stderr, (args, r.stderr)
        assert r.stdout == ""
        for secret in (priv["d"], priv["p"], mixed["d"], "c2VjcmV0c2VjcmV0"):
            assert secret not in r.stderr


def test_mint_small_rsa_key_signs_with_a_note(tmp_path):
    small = jwk.JWK.generate(kty="RSA", size=1024, kid="small")
    kf, _ = _private(tmp_path, small)
    r = run("mint", kf, "-", stdin='{"sub":"x"}')
    assert r.returncode == 0, r.stderr
    assert "note: the module would refuse this token: key 0 (kid=small): skipped: RSA key" in r.stderr
    _jwcrypto_verify(H.remember(r.stdout.strip()), small, "RS256")
