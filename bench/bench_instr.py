"""make bench, third part (BENCH_INSTR=1; valgrind needed, run as root):
user-space instructions per request, counted by callgrind in a one-process
httpd (-X). Unlike CPU time, a count does not move with the machine's load,
so a change of a few hundred instructions shows; it is the steady measure
behind the goals that CPU time on a shared 2-core machine cannot resolve.

Each row is one workload (the configs of the second part: default cache
for hits, AuthJWKSTokenCache 128 with distinct tokens for misses and
invalid tokens). httpd runs under callgrind twice, with N/4 and N requests
after the same warm-up, and the difference divided by the extra requests is
the per-request count, so start-up, key loading and shut-down cancel out.
The "added" column is the count minus the static row (accepted tokens) or
minus the no-token 401 row (refused tokens).

Counts of OpenSSL's own code are not what the hardware runs: valgrind does
not offer the SHA and some vector extensions, so OpenSSL takes its generic
paths under it (SHA-256 of a token: ~9k instructions here, ~0.4 us
natively). The signature rows are therefore left to the second part's
CPU columns; these rows are for everything around the crypto.

BENCH_INSTR_N (default 200) requests per workload. AJW_MODULE_BEFORE as in
the second part counts the old module beside the new.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import harness as H
import bench_tokens as B

N = max(40, int(os.environ.get("BENCH_INSTR_N", "200")))


def inclusive(cg_file, fn):
    """Instructions callgrind counts in fn and everything it calls (0 when
    fn never ran): its largest inclusive figure, as callgrind_annotate
    lists a function under more than one name."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", cg_file],
                         capture_output=True, text=True, check=False).stdout
    best = 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) .*?(\S+?)(?: \[.*\])?$", line)
        if m and (m.group(2) == fn or m.group(2).endswith(":" + fn)):
            best = max(best, int(m.group(1).replace(",", "")))
    return best


def counted_run(srv, path, tokens, n, out_dir, minus=None):
    """Total instructions of one httpd -X life serving n requests (+ warm-up);
    with minus (a function name), less what that function and its callees
    took (the signature check, whose OpenSSL paths valgrind distorts)."""
    import requests
    for f in os.listdir(out_dir):
        os.unlink(os.path.join(out_dir, f))
    subprocess.run(["chmod", "-R", "a+rwX", srv.root], check=False)
    # httpd -X keeps the user it starts as when not root: callgrind's output
    # must be writable by it, and ports above 1024 need no privilege.
    cmd = ["setpriv", "--reuid=www-data", "--regid=www-data", "--init-groups",
           "valgrind", "--tool=callgrind", "--callgrind-out-file=%s/cg.%%p" % out_dir,
           # only what the connection's thread does: the MPM's listener and
           # timers and the module's background threads run per second, not
           # per request, and would make the count depend on the wall time
           # the client took (a loaded machine counted more per request)
           "--toggle-collect=ap_run_process_connection",
           H.APACHE, "-X", "-f", srv.conf_path]
    proc = subprocess.Popen(cmd, env=H.HTTPD_ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    sess = requests.Session()
    codes = set()
    try:
        def one(i):
            h = {"Authorization": "Bearer " + tokens[i % len(tokens)]} if tokens else {}
            return sess.get(srv.url(path), headers=h, timeout=20).status_code
        deadline = time.monotonic() + 60
        while True:
            try:
                if one(0) in (200, 400, 401):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("httpd under callgrind did not answer")
            time.sleep(0.2)
        for i in range(60):                # warm: keys loaded, hit tokens cached
            one(i)
        for i in range(n):
            codes.add(one(i))
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    total = 0
    for f in os.listdir(out_dir):
        with open(os.path.join(out_dir, f)) as fh:
            m = re.search(r"^(?:summary|totals):\s+(\d+)", fh.read(), re.M)
        if m:
            total += int(m.group(1))
            if minus:
                total -= inclusive(os.path.join(out_dir, f), minus)
    return total, codes


def main():
    if not shutil.which("valgrind") or not shutil.which("setpriv"):
        print("\nbench (instructions): valgrind or setpriv missing (Debian packages valgrind, "
              "util-linux): part skipped")
        return 0
    if os.geteuid() != 0:
        print("\nbench (instructions): needs root (httpd -X is started as www-data): skipped")
        return 0
    t0 = time.monotonic()
    keys = H.Keys("bi")
    idp = H.JWKSServer()
    idp.set(keys.jwks(), "/jwks.json")
    exp = H.now() + 3600

    def mint(n, alg="RS256", **over):
        return [H.mint(H.std_claims(**dict({"exp": exp}, **over)), keys.for_alg(alg), alg)
                for _ in range(n)]

    work = [("static", "/open/static.txt", None, None, 200),
            ("no token (401)", "/api/static.txt", None, 128, 401),
            ("hit", "/api/static.txt", mint(50, "ES256"), None, 200),
            ("miss RS256 (signature counted generically)", "/api/static.txt", mint(N), 128, 200),
            ("expired", "/api/static.txt", mint(N, exp=H.now() - 3600), 128, 401),
            ("unknown kid", "/api/static.txt",
             [H.mint(H.std_claims(exp=exp), keys.rsa, "RS256", kid="nk-%d" % i)
              for i in range(N)], 128, 401),
            ("malformed JSON header", "/api/static.txt",
             [H.b64u("{") + "." + t.split(".", 1)[1] for t in mint(50)], 128, 401)]
    out_dir = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-bench-cg-", dir="/tmp"))
    os.chmod(out_dir, 0o1777)
    results = {}
    rc = 0
    print("\nuser-space instructions per request (callgrind, httpd -X, %d requests; "
          "added = minus static, or minus the no-token row for refusals):" % N, flush=True)
    print("  %-10s %-44s %12s %10s" % ("module", "workload", "instr/req", "added"))
    try:
        for label, so in B.MODULES:
            H.MODULE_SO = so
            for name, path, tokens, cache, expect in work:
                counts = []
                for n in (N // 4, N):              # a fresh server root for each life
                    srv = H.Httpd(B.conf(idp.url("/jwks.json"), cache), mpm="event",
                                  loglevel="warn", name="binstr")
                    try:
                        counts.append(counted_run(srv, path, tokens, n, out_dir))
                    finally:
                        srv.cleanup()
                (lo, _), (hi, codes) = counts
                per = (hi - lo) / float(N - N // 4)
                results[(label, name)] = per
                base = results.get((label, "static" if expect == 200 else "no token (401)"))
                note = "" if codes == {expect} else "  answers %s, expected %d: NOT VALID" % (
                    sorted(codes), expect)
                if note:
                    rc = 1
                print("  %-10s %-44s %12.0f %10s%s" % (
                    label or "-", name, per,
                    ("+%.0f" % (per - base)) if base is not None and name not in (
                        "static", "no token (401)") else "", note), flush=True)
    finally:
        idp.close()
        shutil.rmtree(out_dir, ignore_errors=True)
    print("  (this part took %.0f s)" % (time.monotonic() - t0))
    return rc


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
    sys.exit(main())
