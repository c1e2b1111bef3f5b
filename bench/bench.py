#!/usr/bin/python3
"""make bench: side-by-side throughput of one real httpd (event MPM):

  static        unprotected static file
  cached        the same file behind AuthType jwks, same token every time
                (token cache hit)
  uncached      the same, AuthJWKSTokenCache 0 in a second httpd (every
                request fully verified: RS256 and ES256)

Uses ab (apache2-utils) with keep-alive; each run ~5 s. Prints requests/s
and ratios against the unprotected baseline.
"""
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness as H  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONC = int(os.environ.get("BENCH_CONCURRENCY", "8"))


def conf(url, cache_line=""):
    return """%s
<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer https://issuer.test
    AuthJWKSAudience api
    AuthJWKSStartupWait 10
    Require valid-user
</Location>
""" % (cache_line, url)


def ab(url, token=None):
    cmd = ["ab", "-q", "-k", "-t", str(SECONDS), "-n", "10000000", "-c", str(CONC), "-s", "10"]
    if token:
        cmd += ["-H", "Authorization: Bearer " + token]
    cmd.append(url)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS + 60)
    m = re.search(r"Requests per second:\s+([\d.]+)", r.stdout)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", r.stdout)
    failed = re.search(r"Failed requests:\s+(\d+)", r.stdout)
    if not m:
        raise RuntimeError("ab failed: %s %s" % (r.stdout[-500:], r.stderr[-500:]))
    bad = int(non2xx.group(1)) if non2xx else 0
    return float(m.group(1)), bad, int(failed.group(1)) if failed else 0


def main():
    if not shutil.which("ab"):
        print("bench: ab not found (Debian package apache2-utils)", file=sys.stderr)
        return 1
    if not os.path.exists(H.MODULE_SO):
        print("bench: %s missing — run make" % H.MODULE_SO, file=sys.stderr)
        return 1
    keys = H.Keys("bench")
    idp = H.JWKSServer()
    idp.set(keys.jwks())
    servers = []
    results = []
    try:
        a = H.Httpd(conf(idp.url()), loglevel="warn", name="bench")
        b = H.Httpd(conf(idp.url(), "AuthJWKSTokenCache 0"), loglevel="warn", name="bench0")
        servers += [a, b]
        a.start()
        b.start()
        rs = H.mint(H.std_claims(exp=H.now() + 3600), keys.rsa, "RS256")
        es = H.mint(H.std_claims(exp=H.now() + 3600), keys.ec256, "ES256")
        import requests
        for h in (a, b):  # warm up: keys loaded, token valid
            for t in (rs, es):
                r = requests.get(h.url("/api/static.txt"), timeout=15,
                                 headers={"Authorization": "Bearer " + t})
                if r.status_code != 200:
                    raise RuntimeError("warm-up got %d: %s" % (r.status_code, h.log_tail(10)))
        runs = [
            ("static, unprotected", a.url("/open/static.txt"), None),
            ("protected, cache hit (RS256)", a.url("/api/static.txt"), rs),
            ("protected, cache hit (ES256)", a.url("/api/static.txt"), es),
            ("protected, no cache (RS256)", b.url("/api/static.txt"), rs),
            ("protected, no cache (ES256)", b.url("/api/static.txt"), es),
        ]
        for name, url, tok in runs:
            rps, bad, failed = ab(url, tok)
            results.append((name, rps, bad, failed))
            print("  %-32s %10.0f req/s%s" % (name, rps,
                  "  (non-2xx: %d, failed: %d)" % (bad, failed) if bad or failed else ""),
                  flush=True)
    finally:
        for h in servers:
            h.cleanup()
        idp.close()
    base = results[0][1]
    print("\nratio to unprotected static (c=%d, %ds each, keep-alive):" % (CONC, SECONDS))
    for name, rps, bad, failed in results:
        print("  %-32s %6.2f" % (name, rps / base if base else 0.0))
    return 1 if any(bad or failed for _, _, bad, failed in results) else 0


if __name__ == "__main__":
    sys.exit(main())
