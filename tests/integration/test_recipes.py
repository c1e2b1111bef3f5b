"""The documentation cannot drift from the code: every ```apache block of
README.md and docs/*.md passes `apachectl -t` and draws no startup warning;
every identity provider has its recipe; every directive the module declares
has a row in docs/directives.md, whose `where` column is what httpd enforces
and whose example is accepted there; every docs page is linked from the
README, and every link between the pages (with its #anchor) leads somewhere.

A block that holds a section (<Location>, <Directory>, <VirtualHost>, <Files>)
is tested as written, at server level. A block of bare directives is a
fragment of a section: its server-level directives stay outside, the rest
goes into a <Location> given what a section needs and the fragment does not
say (AuthType, AuthName, an issuer bound to a URL, an audience, a Require).
Modules a block may use (mod_ssl, mod_cache, the socache providers,
mod_setenvif, ...) are loaded, and the example fleet key path is replaced by
a real key file."""
import glob
import os
import re
import tempfile
import textwrap

import pytest

import harness as H

README = os.path.join(H.REPO, "README.md")
DOCS = sorted(glob.glob(os.path.join(H.REPO, "docs", "*.md")))
PAGES = [README] + DOCS

FENCE = re.compile(r"^([ \t]*)```apache[ \t]*\n(.*?)^\1```[ \t]*$", re.M | re.S)
SECTION = re.compile(r"^\s*<(Location|LocationMatch|Directory|DirectoryMatch|VirtualHost|Files"
                     r"|FilesMatch)\b", re.M | re.I)
# directives a fragment may hold that belong outside any <Location>
SERVER_LEVEL = {
    "authjwkstokencache", "authjwksrefusalcache", "authjwkslogrefusals", "authjwkscachedir", "authjwkscachesocache", "authjwksfleetkey",
    "authjwksdpopreplaycache", "authjwksstripclaimheaders", "cachequickhandler",
    "cachestoreprivate", "cacheenable", "cacheroot", "setenvif", "mutex", "sslverifyclient",
    "listen", "logformat", "customlog", "authjwksfetchheader", "authjwksfetchproxy",
}
EXTRA_MODULES = [
    ("authz_host_module", "mod_authz_host.so"),
    ("setenvif_module", "mod_setenvif.so"),
    ("rewrite_module", "mod_rewrite.so"),
    ("socache_shmcb_module", "mod_socache_shmcb.so"),
    ("socache_memcache_module", "mod_socache_memcache.so"),
    ("socache_redis_module", "mod_socache_redis.so"),
    ("ssl_module", "mod_ssl.so"),
    ("cache_module", "mod_cache.so"),
    ("cache_disk_module", "mod_cache_disk.so"),
    ("status_module", "mod_status.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
]
EXAMPLE_FLEET_KEY = "/etc/apache2/auth_jwks_fleet.key"
EXAMPLE_DENY_LIST = "/etc/apache2/auth_jwks_revoked.txt"
# root-only secret files the docs name, and a CA bundle of the example's cluster
EXAMPLE_SECRETS = ["/var/run/secrets/kubernetes.io/serviceaccount/token",
                   "/etc/apache2/jwks-proxy.cred"]
EXAMPLE_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
WARNING = re.compile(r"\[[\w.]*:(warn|error|crit|alert|emerg)\]")


def rel(path):
    return os.path.relpath(path, H.REPO)


def page_blocks(path):
    """[(line number, dedented block text)] of every ```apache block."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        out.append((line, textwrap.dedent(m.group(2))))
    return out


BLOCKS = [(rel(p), line, b) for p in PAGES for line, b in page_blocks(p)]


def directive(line):
    s = line.strip()
    if not s or s.startswith("#") or s.startswith("<"):
        return None
    return s.split()[0].lower()


def as_config(block, tmp):
    """The block as a configuration `apachectl -t` can check."""
    if EXAMPLE_FLEET_KEY in block:
        key = os.path.join(tmp, "fleet.key")
        if not os.path.exists(key):
            H.write_fleet_key(key, uid=os.getuid(), gid=os.getgid())
        block = block.replace(EXAMPLE_FLEET_KEY, key)
    for i, path in enumerate(EXAMPLE_SECRETS):
        if path in block:
            secret = os.path.join(tmp, "secret%d" % i)
            with open(secret, "w") as f:
                f.write("user:example-secret\n")
            os.chmod(secret, 0o600)
            block = block.replace(path, secret)
    block = block.replace(EXAMPLE_CA, "/etc/ssl/certs/ca-certificates.crt")
    if EXAMPLE_DENY_LIST in block:
        deny = os.path.join(tmp, "revoked.txt")
        with open(deny, "w") as f:
            f.write("# the docs' example deny-list\njti:example-revoked-jti\n")
        os.chmod(deny, 0o644)
        block = block.replace(EXAMPLE_DENY_LIST, deny)
    mods = "".join("<IfModule !%s>\n    LoadModule %s %s/%s\n</IfModule>\n" % (
        name, name, H.MODDIR, so) for name, so in EXTRA_MODULES)
    if SECTION.search(block):
        return mods + block
    outside, inside = [], []
    for line in block.splitlines():
        (outside if directive(line) in SERVER_LEVEL else inside).append(line)
    body = "\n".join(inside)
    has = lambda name: re.search(r"^\s*%s\b" % name, body, re.M | re.I)
    head = ["AuthType jwks", 'AuthName "doc"']
    if not has("AuthJWKSIssuer"):
        head.append("AuthJWKSIssuer https://issuer.test" if has("AuthJWKSURL")
                    else "AuthJWKSIssuer https://issuer.test https://issuer.test/jwks")
    if not has("AuthJWKSAudience"):
        head.append("AuthJWKSAudience api")
    tail = [] if has("Require") or has("<Require") else ["Require valid-user"]
    return "%s%s\n<Location /doc-fragment>\n%s\n%s\n%s\n</Location>\n" % (
        mods, "\n".join(outside), "\n".join(head), body, "\n".join(tail))


@pytest.fixture(scope="module")
def tmp():
    d = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-recipes-", dir="/tmp"))
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def test_blocks_found():
    pages = {p for p, _, _ in BLOCKS}
    assert "README.md" in pages
    assert len(BLOCKS) >= 25, len(BLOCKS)
    for page in ("identity-providers", "browser-apps", "directives", "dpop-mtls",
                 "deployment", "operations", "claims"):
        assert "docs/%s.md" % page in pages, page


def test_every_provider_has_a_recipe():
    path = os.path.join(H.REPO, "docs", "identity-providers.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for name in ("Auth0", "Keycloak", "Okta", "Entra ID", "Cognito", "Google", "Zuplo", "MCP"):
        assert re.search(r"^## .*%s" % re.escape(name), text, re.M) or name in text, name
    assert len(page_blocks(path)) >= 10


@pytest.mark.parametrize("block", [b for _, _, b in BLOCKS],
                         ids=["%s:%d" % (p, line) for p, line, _ in BLOCKS])
def test_block_passes_configtest_without_warnings(block, tmp):
    if EXAMPLE_FLEET_KEY in block and os.getuid() != 0:
        pytest.skip("the fleet key must be owned by root: run as root")
    conf = as_config(block, tmp)
    r = H.configtest(conf)
    assert r.returncode == 0, "%s\n--- as tested:\n%s" % (r.stderr, conf)
    bad = [l for l in (r.stderr + r.stdout).splitlines() if WARNING.search(l)]
    assert not bad, "%s\n--- as tested:\n%s" % ("\n".join(bad), conf)
    assert "Syntax OK" in r.stderr + r.stdout


# ------------------------------------------------------------------ links

def anchors(path):
    """GitHub's anchors for the headings of a page."""
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"^```.*?^```", "", f.read(), flags=re.M | re.S)
    out = set()
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*$", text, re.M):
        a = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        out.add(a)
    return out


def links(path):
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"^```.*?^```", "", f.read(), flags=re.M | re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_every_docs_page_is_linked_from_the_readme():
    targets = {os.path.normpath(os.path.join(H.REPO, l.split("#")[0])) for l in links(README)}
    for page in DOCS:
        assert page in targets, "README does not link " + rel(page)


@pytest.mark.parametrize("page", PAGES, ids=[rel(p) for p in PAGES])
def test_links_lead_somewhere(page):
    bad = []
    for link in links(page):
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        path = os.path.normpath(os.path.join(os.path.dirname(page), target)) if target else page
        if not os.path.exists(path):
            bad.append("%s: no such file" % link)
        elif anchor and path.endswith(".md") and anchor not in anchors(path):
            bad.append("%s: no such heading" % link)
    assert not bad, "\n".join(bad)


def test_no_page_mentions_how_the_project_was_built():
    words = re.compile(r"\bissue\s*#?\d+|\bround\s+\d\b|\bthis session\b|\bthe brief\b", re.I)
    hits = []
    for page in PAGES + [os.path.join(H.REPO, "conf.d", "auth_jwks.conf")]:
        with open(page, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if words.search(line):
                    hits.append("%s:%d: %s" % (rel(page), n, line.strip()))
    assert not hits, "\n".join(hits)


# ------------------------------------------- directives.md: where, and examples

DIRECTIVES = os.path.join(H.REPO, "docs", "directives.md")
ROW = re.compile(r"^\| `((?:AuthJWKS|AuthType|AuthName)\w*)[^`]*`[^|]*\| (?:[^|]|\\\|)*? \| "
                 r"((?:server|vhost|dir|\.htaccess)(?:, (?:server|vhost|dir|\.htaccess))*) \| (.*) \|$")
SECTION_FOR_WHERE = """<Location /where>
    AuthType jwks
    AuthName "where"
    AuthJWKSIssuer https://issuer.test https://issuer.test/jwks
    AuthJWKSAudience api
    Require valid-user
</Location>
"""


def directive_rows():
    rows = []
    with open(DIRECTIVES, encoding="utf-8") as f:
        for line in f:
            m = ROW.match(line.rstrip("\n"))
            if m:
                rows.append((m.group(1), [w.strip() for w in m.group(2).split(",")],
                             re.findall(r"`([^`]+)`", m.group(3))[-1]))
    return rows


ROWS = directive_rows()


def test_every_directive_has_a_row():
    names = {n for n, _, _ in ROWS}
    code = ""
    for src in glob.glob(os.path.join(H.REPO, "*.[ch]")):
        with open(src, encoding="utf-8") as f:
            code += f.read()
    declared = set(re.findall(r'AP_INIT_\w+\(\s*"(AuthJWKS\w+)"', code))
    assert declared, "no directives found in the sources"
    assert declared <= names, "directives without a row in docs/directives.md: %s" % sorted(
        declared - names)


@pytest.mark.parametrize("name,where,example", ROWS, ids=[r[0] for r in ROWS])
def test_directive_where_column_is_what_httpd_enforces(name, where, example, tmp):
    """The example of each row is accepted exactly in the contexts the row's
    `where` column names (server, vhost, dir; .htaccess follows from dir)."""
    if EXAMPLE_FLEET_KEY in example and os.getuid() != 0:
        pytest.skip("the fleet key must be owned by root: run as root")
    assert example.split()[0] == name, "the example of %s is %r" % (name, example)
    ex = example.replace("/etc/ssl/private-ca.pem", "/etc/ssl/certs/ca-certificates.crt")
    if "AuthJWKSCacheSocache" in ex and "memcache:" not in ex and "shmcb" not in ex:
        ex = "AuthJWKSFleetKey %s\n%s" % (EXAMPLE_FLEET_KEY, ex)
    places = {
        "server": ex + "\n" + SECTION_FOR_WHERE,
        "vhost": "<VirtualHost 127.0.0.1:1>\n%s\n</VirtualHost>\n%s" % (ex, SECTION_FOR_WHERE),
        "dir": SECTION_FOR_WHERE.replace("    Require valid-user", ex + "\n    Require valid-user"),
    }
    for place, conf in places.items():
        r = H.configtest(as_config(conf, tmp))
        if place in where:
            assert r.returncode == 0, "%s in %s: %s" % (example, place, r.stderr)
        else:
            assert r.returncode != 0 and re.search(r"not allowed|cannot occur within", r.stderr), (
                "%s accepted in %s, which the row does not name: %s" % (example, place, r.stderr))
