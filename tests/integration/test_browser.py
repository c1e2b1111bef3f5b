"""The browser recipe of docs/browser-apps.md, in a real browser.

A page served by one origin (a virtual host of the test httpd on its own
port) calls the API on another origin (the main server, protected by the
configuration block taken verbatim from docs/browser-apps.md) with fetch(),
in headless Chromium. The page writes what its JavaScript saw into the DOM;
the test reads it back with --dump-dom. So the page cannot drift from what
is tested: change the block, and this test runs the new one.

Skipped only when Debian's chromium is not installed (`make check` installs
it through tests/deps.sh). The page's "Several origins" block is checked
without a browser: which Origin gets Access-Control-Allow-Origin back."""
import html
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import requests
from jwcrypto import jwk

import harness as H
from conftest import REJECTED, _module_teardown_check, get

DOC = os.path.join(H.REPO, "docs", "browser-apps.md")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_SECONDS = 60     # the whole browser run, page load to DOM dump
VIRTUAL_MS = 20000       # virtual time the page gets once its fetches are done


def recipe_block():
    """The recipe: the first ```apache block of docs/browser-apps.md that sets
    Access-Control-Allow-Origin."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    blocks = [b for b in re.findall(r"```apache\n(.*?)```", text, re.S)
              if "Access-Control-Allow-Origin" in b]
    assert blocks, "docs/browser-apps.md has no apache block with the CORS lines"
    return blocks[0]


def adapt(block, jwks_url, page_origin):
    """The recipe with the test's JWKS URL and the page's origin in place of
    the example ones; issuer, audience and everything else stay as written."""
    m = re.search(r"^\s*AuthJWKSIssuer (\S+) (\S+)\s*$", block, re.M)
    assert m, "the recipe names no AuthJWKSIssuer <iss> <url>"
    iss = m.group(1)
    aud = re.search(r"^\s*AuthJWKSAudience (\S+)", block, re.M).group(1)
    origin = re.search(r'Access-Control-Allow-Origin "([^"]+)"', block).group(1)
    path = re.search(r"<Location (\S+)>", block).group(1)
    block = block.replace(m.group(0), m.group(0).replace(m.group(2), jwks_url))
    block = block.replace('"%s"' % origin, '"%s"' % page_origin)
    # the harness's /<name>/env CGI prints its environment as JSON
    return block, iss, aud, path


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>spa</title></head>
<body><pre id="out">pending</pre>
<script>
const API = %(api)s;
const PLAIN = %(plain)s;
const TOKEN = %(token)s;
const EXPIRED = %(expired)s;
const BOUND = %(bound)s;
const PROOF_JWK = %(proof_jwk)s;

function b64u(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
}
const utf8 = (s) => new TextEncoder().encode(s);

async function dpopProof(method, url, token) {
  const key = await crypto.subtle.importKey("jwk", PROOF_JWK,
      {name: "ECDSA", namedCurve: "P-256"}, false, ["sign"]);
  const pub = {kty: PROOF_JWK.kty, crv: PROOF_JWK.crv, x: PROOF_JWK.x, y: PROOF_JWK.y};
  const header = {typ: "dpop+jwt", alg: "ES256", jwk: pub};
  const claims = {jti: crypto.randomUUID(), htm: method, htu: url,
                  iat: Math.floor(Date.now() / 1000),
                  ath: b64u(await crypto.subtle.digest("SHA-256", utf8(token)))};
  const input = b64u(utf8(JSON.stringify(header))) + "." + b64u(utf8(JSON.stringify(claims)));
  const sig = await crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, key, utf8(input));
  return input + "." + b64u(sig);   // WebCrypto's ECDSA signature is r||s, as JWS wants
}

async function call(url, headers) {
  try {
    const r = await fetch(url, {headers: headers, cache: "no-store"});
    const body = await r.text();
    return {status: r.status, www: r.headers.get("WWW-Authenticate"),
            nonce: r.headers.get("DPoP-Nonce"), body: body.slice(0, 4000)};
  } catch (e) {
    return {error: String(e)};
  }
}

async function main() {
  const seen = {};
  seen.valid = await call(API, {"Authorization": "Bearer " + TOKEN});
  seen.none = await call(API, {});
  seen.expired = await call(API, {"Authorization": "Bearer " + EXPIRED});
  seen.dpop = await call(API, {"Authorization": "DPoP " + BOUND,
                               "DPoP": await dpopProof("GET", API, BOUND)});
  seen.bound_as_bearer = await call(API, {"Authorization": "Bearer " + BOUND});
  seen.plain = await call(PLAIN, {"Authorization": "Bearer " + TOKEN});
  return seen;
}

main().then(
  (seen) => { document.getElementById("out").textContent = "RESULT " + JSON.stringify(seen); },
  (e) => { document.getElementById("out").textContent = "FAILED " + String(e); });
</script></body></html>
"""


@pytest.fixture(scope="module")
def world(jwks_server, keys):
    if not CHROMIUM:
        pytest.skip("chromium is not installed (Debian package chromium; make check installs it)")
    page_port = H.free_port()
    page_root = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-spa-", dir="/tmp"))
    page_origin = "http://127.0.0.1:%d" % page_port
    block, iss, aud, path = adapt(recipe_block(), jwks_server.url(), page_origin)
    extra = """
Listen 127.0.0.1:%(port)d
<VirtualHost 127.0.0.1:%(port)d>
    ServerName spa
    DocumentRoot "%(root)s"
    <Directory "%(root)s">
        Require all granted
    </Directory>
</VirtualHost>

%(block)s

# the same API without the CORS lines: the control that shows the page is
# really cross-origin (the browser must refuse to hand over the answer)
<Location /plain>
    AuthType jwks
    AuthName "api"
    AuthJWKSIssuer %(iss)s %(jwks)s
    AuthJWKSAudience %(aud)s
    <LimitExcept OPTIONS>
        Require valid-user
    </LimitExcept>
</Location>
""" % dict(port=page_port, root=page_root, block=block, iss=iss, aud=aud,
           jwks=jwks_server.url())
    h = H.Httpd(extra, name="browser")
    h.covered = []
    h.allowed = [REJECTED % ".*"]
    try:
        h.start()
    except Exception:
        h.cleanup()
        raise
    yield dict(h=h, iss=iss, aud=aud, path=path, page_root=page_root, page_port=page_port,
               page_origin=page_origin)
    _module_teardown_check(h)
    shutil.rmtree(page_root, ignore_errors=True)


def run_page(world, name, page):
    """Serve `page` from the page origin, load it in headless Chromium, and
    return what its JavaScript wrote (a dict), within bounded time."""
    p = os.path.join(world["page_root"], name)
    with open(p, "w", encoding="utf-8") as f:
        f.write(page)
    os.chmod(p, 0o644)
    profile = tempfile.mkdtemp(prefix="ajw-chromium-")
    try:
        r = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             "--disable-dev-shm-usage", "--user-data-dir=" + profile,
             "--virtual-time-budget=%d" % VIRTUAL_MS, "--dump-dom",
             "%s/%s" % (world["page_origin"], name)],
            capture_output=True, text=True, timeout=BROWSER_SECONDS,
            env=dict(os.environ, HOME=profile))
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    m = re.search(r'<pre id="out">(.*?)</pre>', r.stdout, re.S)
    assert m, "no page in chromium's output (rc %d):\n%s\n%s" % (
        r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    out = html.unescape(m.group(1))
    assert out.startswith("RESULT "), "the page did not finish: %s\nstderr:\n%s" % (
        out[:2000], r.stderr[-2000:])
    return json.loads(out[len("RESULT "):])


def test_browser_app_on_another_origin(world, keys, expect_log):
    h, iss, aud = world["h"], world["iss"], world["aud"]
    api = h.url(world["path"] + "/env")
    plain = h.url("/plain/env")
    claims = dict(iss=iss, aud=aud, sub="alice")
    token = H.mint(H.std_claims(**claims), keys.rsa, "RS256")
    expired = H.mint(H.std_claims(exp=H.now() - 3600, iat=H.now() - 7200, **claims),
                     keys.rsa, "RS256")
    pkey = jwk.JWK.generate(kty="EC", crv="P-256")
    bound = H.mint(H.std_claims(cnf={"jkt": pkey.thumbprint()}, **claims), keys.rsa, "RS256")
    expect_log(REJECTED % "expired", required=True)
    expect_log(REJECTED % r"DPoP: DPoP-bound token \(cnf.jkt\) presented as a bearer",
               required=True)

    # first, outside the browser: the API answers, and so does the preflight
    assert get(h, world["path"] + "/env", token).status_code == 200
    pre = requests.options(api, headers={
        "Origin": world["page_origin"], "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization,dpop"}, timeout=10)
    assert pre.status_code // 100 == 2, (pre.status_code, pre.headers)
    assert pre.headers.get("Access-Control-Allow-Origin") == world["page_origin"], pre.headers
    assert "Origin" in pre.headers.get("Vary", ""), pre.headers
    ok = requests.get(api, headers={"Origin": world["page_origin"],
                                    "Authorization": "Bearer " + token}, timeout=10)
    assert ok.status_code == 200, ok.status_code
    vary = {v.strip().lower() for v in ok.headers.get("Vary", "").split(",")}
    assert {"origin", "authorization"} <= vary, ok.headers   # merge kept the module's Vary

    page = PAGE % dict(api=json.dumps(api), plain=json.dumps(plain), token=json.dumps(token),
                       expired=json.dumps(expired), bound=json.dumps(bound),
                       proof_jwk=json.dumps(pkey.export_private(as_dict=True)))
    seen = run_page(world, "app.html", page)

    # 200 and the body, with the user the module verified
    v = seen["valid"]
    assert v.get("status") == 200, seen
    assert json.loads(v["body"]).get("REMOTE_USER") == "alice", v["body"][:500]
    # 401 without a token: the challenge is readable, without an error
    n = seen["none"]
    assert n.get("status") == 401, seen
    assert n["www"] and n["www"].startswith("Bearer ") and "error=" not in n["www"], n
    # 401 with an expired token: error="invalid_token" readable by the page
    e = seen["expired"]
    assert e.get("status") == 401, seen
    assert 'error="invalid_token"' in (e["www"] or ""), e
    # a DPoP-bound token with a proof made by WebCrypto in the page
    d = seen["dpop"]
    assert d.get("status") == 200, seen
    assert json.loads(d["body"]).get("REMOTE_USER") == "alice", d["body"][:500]
    b = seen["bound_as_bearer"]
    assert b.get("status") == 401 and 'error="invalid_token"' in (b["www"] or ""), b
    # the control: the same API without the CORS lines is unreadable to the page
    assert "error" in seen["plain"] and "Failed to fetch" in seen["plain"]["error"], seen["plain"]


def test_several_origins_recipe(jwks_server, keys, make_httpd, expect_log):
    """The "Several origins" block of docs/browser-apps.md, as written (only
    the JWKS URL replaced): each listed origin gets itself back in
    Access-Control-Allow-Origin, on a 200 and on a 401; any other origin,
    look-alikes included, gets none."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    blocks = [b for b in re.findall(r"```apache\n(.*?)```", text, re.S) if "SetEnvIf Origin" in b]
    assert blocks, "docs/browser-apps.md has no several-origins block"
    block = blocks[0]
    m = re.search(r"^\s*AuthJWKSIssuer (\S+) (\S+)\s*$", block, re.M)
    iss, aud = m.group(1), re.search(r"^\s*AuthJWKSAudience (\S+)", block, re.M).group(1)
    path = re.search(r"<Location (\S+)>", block).group(1)
    block = block.replace(m.group(0), m.group(0).replace(m.group(2), jwks_server.url()))
    listed = re.findall(r"https://\((\w+(?:\|\w+)*)\)\\\.(\S+?)\)\$", block)
    assert listed, "cannot read the listed origins from the block"
    names, domain = listed[0]
    domain = domain.replace("\\.", ".")
    h = make_httpd("<IfModule !setenvif_module>\n    LoadModule setenvif_module "
                   "%s/mod_setenvif.so\n</IfModule>\n%s" % (H.MODDIR, block))
    token = H.mint(H.std_claims(iss=iss, aud=aud), keys.rsa, "RS256")
    url = h.url(path + "/env")
    for name in names.split("|"):
        origin = "https://%s.%s" % (name, domain)
        for tok, status in ((token, 200), (None, 401)):
            hdrs = {"Origin": origin}
            if tok:
                hdrs["Authorization"] = "Bearer " + tok
            r = requests.get(url, headers=hdrs, timeout=10)
            assert r.status_code == status, (origin, r.status_code)
            assert r.headers.get("Access-Control-Allow-Origin") == origin, (origin, r.headers)
    for origin in ("https://evil.example", "https://%s.%s.evil.example" % (names.split("|")[0], domain),
                   "http://%s.%s" % (names.split("|")[0], domain)):
        r = requests.get(url, headers={"Origin": origin, "Authorization": "Bearer " + token},
                         timeout=10)
        assert r.status_code == 200
        assert "Access-Control-Allow-Origin" not in r.headers, (origin, r.headers)
