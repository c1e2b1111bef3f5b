"""The MCP authorization rules for a resource server, run on the docs' own
MCP recipe: a 403 insufficient_scope names every scope the section needs in
one challenge, with resource_metadata; `AuthJWKSAudience resource` takes the
audience from the RFC 9728 document, compared exactly; and the token never
reaches the MCP server behind mod_proxy (a real backend that records what it
receives)."""
import http.server
import json
import os
import re
import threading

import pytest
import requests

import harness as H
from conftest import TIMEOUT, get

ISS = "https://auth.example.com"
WK = "/.well-known/oauth-protected-resource"
REJECTED = r"\[auth_jwks:error\].*token rejected: %s"
FORBIDDEN = r"authz_core:error.*AH0163\d"


class RecordingBackend:
    """An MCP-server stand-in: answers GET and POST with 200 and remembers
    every request line, header and body it was sent."""

    def __init__(self):
        outer = self
        self.seen = []
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with outer.lock:
                    outer.seen.append({"line": self.requestline, "path": self.path,
                                       "headers": list(self.headers.items()),
                                       "body": body.decode("utf-8", "replace")})
                out = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _answer

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def requests(self):
        with self.lock:
            return list(self.seen)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def readme_mcp_recipe():
    text = open(os.path.join(H.REPO, "docs", "identity-providers.md"), encoding="utf-8").read()
    blocks = re.findall(r"```apache\n(<Location /mcp>.*?)```", text, re.S)
    assert len(blocks) == 1, "docs/identity-providers.md has no single MCP recipe"
    return blocks[0]


def challenges(resp):
    out = []
    for v in resp.raw._original_response.msg.get_all("WWW-Authenticate") or []:
        scheme, _, rest = v.strip().partition(" ")
        out.append((scheme, dict(H.WWW_AUTH_PARAM.findall(rest))))
    return out


EXTRA = """<Location /multi>
    AuthType jwks
    AuthName "mcp"
    AuthJWKSIssuer %s {jwks}
    AuthJWKSAudience resource
    AuthJWKSResourceMetadata {base}/multi %s
    <RequireAll>
        Require jwt-scope tools:read
        Require jwt-scope tools:write admin
        Require not jwt-scope banned
    </RequireAll>
</Location>
<Location /plain>
    AuthType jwks
    AuthJWKSIssuer %s {jwks}
    AuthJWKSAudience api
    Require jwt-scope a b
</Location>
<Location /both>
    AuthType jwks
    AuthName "mcp"
    AuthJWKSIssuer %s {jwks}
    AuthJWKSAudience resource api://other
    AuthJWKSResourceMetadata {base}/both %s
    Require valid-user
</Location>
""" % (ISS, ISS, ISS, ISS, ISS)


@pytest.fixture(scope="module")
def backend():
    b = RecordingBackend()
    yield b
    b.close()


@pytest.fixture(scope="module")
def srv(jwks_server, backend):
    h = H.Httpd("", name="mcp")
    base = "http://127.0.0.1:%d" % h.port
    recipe = readme_mcp_recipe()
    for must in ("AuthJWKSForwardToken Off", "AuthJWKSAudience resource",
                 "AuthJWKSResourceMetadata https://mcp.example.com/mcp"):
        assert must in recipe, must
    conf = (recipe.replace("%s discover" % ISS, "%s %s" % (ISS, jwks_server.url()))
            .replace("https://mcp.example.com", base)
            .replace("http://127.0.0.1:3000/mcp", "http://127.0.0.1:%d/mcp" % backend.port))
    conf += EXTRA.replace("{jwks}", jwks_server.url()).replace("{base}", base)
    h.write_conf(conf)
    h.covered = []
    h.allowed = [REJECTED % ".*", FORBIDDEN]
    h.start()
    h.resource = base + "/mcp"
    yield h
    from conftest import _module_teardown_check
    _module_teardown_check(h)


def tok(keys, aud, **claims):
    return H.mint(H.std_claims(iss=ISS, aud=aud, **claims), keys.rsa, "RS256")


def post(h, path, token, body):
    return requests.post(h.url(path), data=json.dumps(body),
                         headers={"Authorization": "Bearer %s" % token,
                                  "Content-Type": "application/json",
                                  "Accept": "application/json, text/event-stream"},
                         timeout=TIMEOUT)


def test_token_never_reaches_the_mcp_server(srv, keys, backend):
    before = len(backend.requests())
    t = tok(keys, srv.resource, scope="mcp:tools")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    r = post(srv, "/mcp", t, body)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert get(srv, "/mcp?x=1", t).status_code == 200
    seen = backend.requests()[before:]
    assert len(seen) == 2, seen
    sig = t.split(".")[2]
    for req in seen:
        names = [k.lower() for k, _ in req["headers"]]
        assert "authorization" not in names, req
        dump = json.dumps(req)
        # the claims themselves go on (AuthJWKSPassClaims headers), never the token
        assert t not in dump and sig not in dump, req
    assert json.loads(seen[0]["body"]) == body
    claims = dict((k.lower(), v) for k, v in seen[0]["headers"])
    assert claims.get("x-jwt-claim-sub") == "alice"


def test_no_token_401_names_the_scopes(srv, keys, backend):
    """The first answer a client gets (no token yet) already names the
    scopes to ask for, next to resource_metadata (RFC 6750 §3; MCP's scope
    selection prefers it over scopes_supported)."""
    before = len(backend.requests())
    for path in ("/mcp", "/multi/env"):
        r = get(srv, path)
        assert r.status_code == 401
        ch = challenges(r)
        assert [s for s, _ in ch] == ["Bearer"], ch
        p = ch[0][1]
        assert "error" not in p, p
        want = "mcp:tools mcp:resources" if path == "/mcp" else "tools:read tools:write admin"
        assert p["scope"] == want, p
        assert p["resource_metadata"].startswith(srv.url(WK)), p
    assert r.headers["WWW-Authenticate"] == (
        'Bearer realm="mcp", scope="tools:read tools:write admin", resource_metadata="%s"'
        % srv.url(WK + "/multi"))
    assert len(backend.requests()) == before
    # without AuthName or metadata: a well-formed challenge all the same
    assert get(srv, "/plain/env").headers["WWW-Authenticate"] == 'Bearer scope="a b"'


def test_metadata_document_public(srv):
    r = requests.get(srv.url(WK + "/mcp"), timeout=TIMEOUT)
    assert r.status_code == 200
    d = r.json()
    assert d["resource"] == srv.resource
    assert d["authorization_servers"] == [ISS]
    assert d["scopes_supported"] == ["mcp:tools", "mcp:resources"]


def test_audience_is_the_resource_exactly(srv, keys, backend, expect_log):
    expect_log(REJECTED % "bad_audience", required=True)
    before = len(backend.requests())
    assert get(srv, "/mcp", tok(keys, [srv.resource, "x"], scope="mcp:tools")).status_code == 200
    for aud in (srv.resource + "/", srv.resource.upper(), "https://mcp.example.com/mcp",
                srv.resource.replace("/mcp", "/MCP"), "resource", "api", [], None):
        r = get(srv, "/mcp", tok(keys, aud, scope="mcp:tools"))
        assert r.status_code == 401, (aud, r.status_code)
        ch = dict(challenges(r))
        assert ch["Bearer"]["error"] == "invalid_token", ch
        assert ch["Bearer"]["resource_metadata"] == srv.url(WK + "/mcp"), ch
    assert len(backend.requests()) == before + 1


def test_resource_and_literal_audiences(srv, keys, expect_log):
    expect_log(REJECTED % "bad_audience", required=True)
    res = srv.url("/both")
    assert get(srv, "/both/env", tok(keys, res)).status_code == 200
    assert get(srv, "/both/env", tok(keys, "api://other")).status_code == 200
    assert get(srv, "/both/env", tok(keys, "api://else")).status_code == 401


def test_insufficient_scope_403(srv, keys, backend, expect_log):
    expect_log(FORBIDDEN, required=True)
    before = len(backend.requests())
    r = post(srv, "/mcp", tok(keys, srv.resource, scope="openid"), {"jsonrpc": "2.0"})
    assert r.status_code == 403
    ch = challenges(r)
    assert [s for s, _ in ch] == ["Bearer"], ch
    p = ch[0][1]
    assert p["error"] == "insufficient_scope", p
    assert p["scope"] == "mcp:tools mcp:resources", p
    assert p["resource_metadata"] == srv.url(WK + "/mcp"), p
    assert p["realm"] == "mcp", p
    assert len(backend.requests()) == before


def test_one_challenge_names_every_scope(srv, keys, expect_log):
    """Whichever rule of the section fails, scope= lists all the scopes its
    rules ask for (and none a negated rule forbids)."""
    expect_log(FORBIDDEN, required=True)
    res = srv.url("/multi")
    assert get(srv, "/multi/env", tok(keys, res, scope="tools:read admin")).status_code == 200
    for have in ("tools:write", "tools:read", "", "admin banned"):
        r = get(srv, "/multi/env", tok(keys, res, scope=have))
        assert r.status_code == 403, (have, r.status_code)
        p = dict(challenges(r))["Bearer"]
        assert p["error"] == "insufficient_scope", p
        assert p["scope"] == "tools:read tools:write admin", (have, p)
        assert p["resource_metadata"] == srv.url(WK + "/multi"), p
    # a scope the section forbids: 403, and no scope a new token could add
    r = get(srv, "/multi/env", tok(keys, res, scope="tools:read admin banned"))
    assert r.status_code == 403
    assert "insufficient_scope" not in r.headers.get("WWW-Authenticate", "")


def test_audience_resource_needs_metadata(jwks_server):
    r = H.configtest("""<Location /x>
    AuthType jwks
    AuthJWKSIssuer %s %s
    AuthJWKSAudience resource
    Require valid-user
</Location>
""" % (ISS, jwks_server.url()))
    assert r.returncode != 0, r.stderr
    assert "AuthJWKSAudience resource without AuthJWKSResourceMetadata" in r.stderr + r.stdout
