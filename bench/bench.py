#!/usr/bin/python3
"""make bench: side-by-side throughput of mod_auth_jwks and its peers.

In ONE run, on this machine, each in its own httpd (event MPM, same harness
config, same static file, same JWKS served on 127.0.0.1, same RS256 / ES256
tokens, same wrk concurrency), requests per second for:

  static               unprotected static file (baseline; measured first and
                       again last, so drift during the run is visible)
  mod_auth_jwks        AuthType jwks: default (token cache hit) and
                       AuthJWKSTokenCache 0 (every request fully verified)
  mod_oauth2           AuthType oauth2, OAuth2TokenVerify jwks_uri: default
                       (its verify-result cache, shm, 300 s) and expiry=0
                       (result cache entries expire at once: every request
                       verified; the JWKS itself stays cached)
  mod_auth_openidc     AuthType oauth20, OIDCOAuthVerifyJwksUri: it has no
                       result cache for locally validated JWTs (JWKS cached
                       in OIDCCacheType shm), so one mode. It only takes an
                       https:// JWKS URL, so it gets the same document from
                       an HTTPS twin of the JWKS server (throwaway CA)

Before timing, every protected config must answer 401 without a token and
200 (the static file's exact body) with each token, so no error page is ever
benchmarked. A peer module that is not installed or fails that check is
reported with the reason and skipped; it never fails the bench. The JWKS
server counts fetches during each timed run, and any error-log lines
written during a run are reported, so a peer that refetches keys or logs per
request shows up.

wrk (Debian package wrk; one thread, keep-alive, the Lua script of part 2
sending the one token and counting any answer but 200), BENCH_SECONDS
(default 2) per run,
BENCH_ROUNDS (default 2: every config measured that often, interleaved,
the best round kept),
BENCH_CONCURRENCY (default 8). Prints req/s, the ratio to the unprotected
baseline and to mod_auth_jwks in the same algorithm (cache hit, and cache
off). Exit status 1 only if a mod_auth_jwks or baseline run had errors.

Then the goals part (bench_goals.py; BENCH_GOALS=0 skips it): the
performance goals (cached hit, miss, DPoP, memory per cached token, invalid
flood, prefork), each measured side by side in one run with wrk -t2 -c32
against a one-process 64-thread event httpd (8-child prefork), callgrind
instruction rows included, ending with the "goals" table: goal, target,
measured, met / NOT MET and the figures behind it. See its docstring.

Opt-in, superseded by the goals part for the default run: part 1b
(BENCH_PART1B=1, bench_peers.py: the peers on 2000 distinct RS256 tokens
and an invalid flood, with the JWKS fetches and error-log lines each
causes), part 2 (BENCH_TOKENS=1, bench_tokens.py: per-request cost of many
token mixes, JWKS and token sizes, prefork, RSS, bench/micro.c library
costs) and part 3 (BENCH_INSTR=1, bench_instr.py: instruction counts of
seven workloads). BENCH_PART1=0 skips part 1.

After part 1 (and 1b), a summary of mod_auth_jwks against the better of
mod_oauth2 and mod_auth_openidc: workloads 1 and 2 (same RS256 / ES256
token repeated) from part 1, 3 and 4 from part 1b when it ran, each as
ours / the better peer in req/s and in CPU added per request.
"""
import hashlib
import os
import re
import secrets
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness as H  # noqa: E402

# bench_peers.py imports this file as `bench`; when it runs as the script,
# let that import find this module instead of loading a second copy.
if __name__ == "__main__":
    sys.modules.setdefault("bench", sys.modules["__main__"])

SECONDS = int(os.environ.get("BENCH_SECONDS", "2"))
CONC = int(os.environ.get("BENCH_CONCURRENCY", "8"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "2")))
JWKS_PATH = "/jwks.json"
BODY = "static ok\n"  # the harness's htdocs/static.txt
ISS, AUD = "https://issuer.test", "api"

CLK_TCK = os.sysconf("SC_CLK_TCK")
OAUTH2_SO = os.path.join(H.MODDIR, "mod_oauth2.so")
OPENIDC_SO = os.path.join(H.MODDIR, "mod_auth_openidc.so")


# ---------------------------------------------------------------- configs

def conf_jwks(url, cache_line=""):
    return """%s
<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience %s
    AuthJWKSStartupWait 10
    Require valid-user
</Location>
""" % (cache_line, url, ISS, AUD)


def conf_oauth2(url, options=""):
    # OAuth2TokenVerify <type> <value> [<options, form-encoded>]; the JWKS is
    # fetched on first use and cached (liboauth2 default shm cache).
    return """LoadModule oauth2_module %s
<Location /api>
    AuthType oauth2
    AuthName "api"
    OAuth2TokenVerify jwks_uri %s %s
    Require valid-user
</Location>
""" % (OAUTH2_SO, url, options)


def conf_openidc(url, ca_file):
    # Resource-server only: no provider/client settings. 2.4.12 requires
    # OIDCCryptoPassphrase whenever the module is configured (it encrypts
    # cache entries/sessions); a throwaway one per run. OIDCCacheType shm is
    # the default and holds the JWKS. OIDCOAuthVerifyJwksUri must be https://
    # in 2.4.12 (an http:// URL is a config error), so it gets the same JWKS
    # document from an HTTPS server with a throwaway CA, verified through
    # OIDCCABundlePath. The fetch is off the request path once cached.
    return """LoadModule auth_openidc_module %s
OIDCCryptoPassphrase %s
OIDCCacheType shm
OIDCCABundlePath %s
OIDCOAuthVerifyJwksUri %s
OIDCOAuthRemoteUserClaim sub
<Location /api>
    AuthType oauth20
    AuthName "api"
    Require valid-user
</Location>
""" % (OPENIDC_SO, secrets.token_hex(16), ca_file, url)


class Server(H.Httpd):
    """A harness httpd whose auth module LoadModule line is ours or none
    (peer configs bring their own LoadModule in `extra`)."""

    def __init__(self, extra, name, ours=True):
        self.ours = ours
        super().__init__(extra, loglevel="warn", name=name)

    def conf_text(self, extra):
        text = super().conf_text(extra)
        if not self.ours:
            text = re.sub(r"^LoadModule auth_jwks_module .*$", "# (mod_auth_jwks not loaded)",
                          text, flags=re.M)
        return text


# ---------------------------------------------------------------- checks

def get(url, token=None):
    import requests
    hdrs = {"Authorization": "Bearer " + token} if token else {}
    return requests.get(url, headers=hdrs, timeout=15)


def check_protected(srv, tokens):
    """None if /api/static.txt answers 401 without a token and 200 with
    each token; otherwise why not."""
    url = srv.url("/api/static.txt")
    r = get(url)
    if r.status_code != 401:
        return "without a token: %d, expected 401" % r.status_code
    for alg, tok in tokens.items():
        # first use may fetch the JWKS (peers fetch on demand): a few tries
        deadline = time.monotonic() + 15
        while True:
            r = get(url, tok)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if r.status_code != 200:
            return "%s token: %d, expected 200 (www-authenticate: %s)\n%s" % (
                alg, r.status_code, r.headers.get("WWW-Authenticate"), srv.log_tail(8))
        if r.text != BODY:
            return "%s token: 200 but body %r is not the static file" % (alg, r.text[:80])
    if get(url, tokens["RS256"][:-4] + "AAAA").status_code != 401:
        return "a token with a broken signature was not refused with 401"
    return None


def start_checked(srv, name, ours, check, servers, skipped):
    """Start srv and run check(srv) (None when all is well, else why not).
    Returns srv, kept in servers; when it fails, ours raises, and a peer is
    added to skipped with the reason, cleaned up, and None returned."""
    servers.append(srv)
    try:
        srv.start()
        why = check(srv)
    except Exception as e:  # a peer that does not even start
        why = "did not start: %s" % str(e).strip()[-600:]
    if not why:
        return srv
    if ours:
        raise RuntimeError("%s: %s" % (name, why))
    skipped.append((name, why))
    srv.cleanup()
    servers.remove(srv)
    return None


def cpu_ticks(srv):
    """{pid: utime+stime clock ticks} of the httpd's children (the request
    workers; the parent does no request work)."""
    out = {}
    for pid in srv.children():
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return out


def load(url, token, script_dir):
    """One timed wrk run (one thread, CONC keep-alive connections, SECONDS)
    sending token as the bearer token (None: no Authorization header), with
    part 2's Lua script counting every answer but 200: (req/s, answers not
    200, socket errors, requests done)."""
    import bench_tokens as T
    path = os.path.join(script_dir, "tok-%s.lua" % (
        hashlib.sha256(token.encode()).hexdigest()[:16] if token else "none"))
    if not os.path.exists(path):
        T.lua_script(path, [token] if token else None, 200)
    r = T.wrk_run(url, path, SECONDS)
    failed = sum(int(x) for x in re.findall(r"\d+", r["errors"]))
    bad = r["wrong"] if r["wrong"] is not None else r["non2xx"]
    return r["rps"], bad, failed, r["done"]


# ---------------------------------------------------------------- main

class Row:
    def __init__(self, group, mode, alg, rps=None, note=""):
        self.group, self.mode, self.alg, self.rps, self.note = group, mode, alg, rps, note
        self.errors = 0
        self.cpu_us = None


def main():
    if not os.path.exists(H.MODULE_SO):
        print("bench: %s missing — run make" % H.MODULE_SO, file=sys.stderr)
        return 1
    t0 = time.monotonic()
    part1_on = os.environ.get("BENCH_PART1", "1") != "0"
    part1b_on = os.environ.get("BENCH_PART1B", "0") != "0"
    goals_on = os.environ.get("BENCH_GOALS", "1") != "0"
    if (part1_on or part1b_on or goals_on) and not shutil.which("wrk"):
        print("bench: wrk not found (Debian package wrk; bench/deps.sh installs it)",
              file=sys.stderr)
        return 1
    rc = 0
    goals = []
    if part1_on:
        failed, g = part1()
        rc |= failed
        goals += g
    if part1b_on:
        import bench_peers
        failed, g = bench_peers.main()
        rc |= failed
        goals += g
    if os.environ.get("BENCH_TOKENS", "0") != "0":
        import bench_tokens
        rc |= bench_tokens.main()
    rc |= part_instr()
    goal_summary(goals)
    if goals_on:
        import bench_goals
        rc |= bench_goals.main()
    print("\nbench: %.0f s in all" % (time.monotonic() - t0))
    return 1 if rc else 0


def part1():
    """The side-by-side part (one token repeated, wrk): (1 if a mod_auth_jwks or baseline run had
    errors else 0, goal entries for goal_summary)."""
    keys = H.Keys("bench")
    idp = H.JWKSServer()
    # One JWKS for everyone: RSA 2048 + EC P-256 only (the peers use cjose,
    # which has no OKP/Ed25519 keys; a key it cannot import could make it
    # reject the whole set, which is not what we want to measure).
    doc = keys.jwks([keys.rsa, keys.ec256])
    idp.set(doc, JWKS_PATH)
    url = idp.url(JWKS_PATH)
    tls_dir = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-bench-ca-", dir="/tmp"))
    script_dir = tempfile.mkdtemp(prefix="ajw-bench-lua-", dir="/tmp")
    ca = H.TestCA(tls_dir)
    idp_tls = H.JWKSServer(tls=ca)  # same document over https, for mod_auth_openidc
    idp_tls.set(doc, JWKS_PATH)
    exp = H.now() + 3600
    tokens = {"RS256": H.mint(H.std_claims(exp=exp), keys.rsa, "RS256"),
              "ES256": H.mint(H.std_claims(exp=exp), keys.ec256, "ES256")}

    # (group, mode label, config, ours?, module file needed, ratio key)
    setups = [
        ("mod_auth_jwks", "cache hit (default)", conf_jwks(url), True, None, "cached"),
        ("mod_auth_jwks", "AuthJWKSTokenCache 0", conf_jwks(url, "AuthJWKSTokenCache 0"),
         True, None, "uncached"),
        ("mod_oauth2", "result cache (default)", conf_oauth2(url), False, OAUTH2_SO, "cached"),
        ("mod_oauth2", "expiry=0 (no result cache)", conf_oauth2(url, "expiry=0"),
         False, OAUTH2_SO, "uncached"),
        ("mod_auth_openidc", "oauth20 (no result cache)",
         conf_openidc(idp_tls.url(JWKS_PATH), ca.ca_file), False,
         OPENIDC_SO, "uncached"),
    ]

    rows = []
    skipped = []
    servers = []
    ours_failed = False
    print("bench: %ds per run, wrk -t1 -c %d (keep-alive), JWKS %s, one httpd (event MPM) "
          "per config"
          % (SECONDS, CONC, url), flush=True)
    try:
        live = []
        for i, (group, mode, extra, ours, so, key) in enumerate(setups):
            name = "%s %s" % (group, mode)
            if so and not os.path.exists(so):
                skipped.append((name, "%s not installed (Debian package %s; `make bench` "
                                "installs it when run as root)" % (
                                    so, "libapache2-mod-oauth2" if so == OAUTH2_SO
                                    else "libapache2-mod-auth-openidc")))
                continue
            srv = start_checked(Server(extra, name="bench%d" % i, ours=ours), name, ours,
                                lambda s: check_protected(s, tokens), servers, skipped)
            if srv:
                live.append((group, mode, srv, key))

        base_srv = live[0][2]
        static_url = base_srv.url("/open/static.txt")
        protected = [(group, mode, alg, srv.url("/api/static.txt"), srv, key)
                     for group, mode, srv, key in live for alg in ("RS256", "ES256")]
        # Every round: the baseline, then each protected config (reversed on
        # odd rounds, so no config always runs first or last); one more
        # baseline at the very end shows drift. The table keeps each
        # config's best round (least disturbed by whatever else the machine
        # was doing).
        runs = []
        for rnd in range(ROUNDS):
            runs.append(("static", "unprotected", None, static_url, None, None))
            runs += protected if rnd % 2 == 0 else protected[::-1]
        runs.append(("static", "unprotected (after)", None, static_url, None, None))

        for group, mode, alg, u, srv, key in runs:
            row = Row(group, mode, alg)
            row.key = key
            fetch0 = idp.count(JWKS_PATH) + idp_tls.count(JWKS_PATH)
            mark = srv.log_size() if srv else 0
            cpu_srv = srv or base_srv
            t0 = cpu_ticks(cpu_srv)
            try:
                rps, bad, failed, done = load(u, tokens[alg] if alg else None, script_dir)
                t1 = cpu_ticks(cpu_srv)
            except Exception as e:
                if group in ("static", "mod_auth_jwks"):
                    raise
                skipped.append(("%s %s %s" % (group, mode, alg), str(e)))
                continue
            row.rps = rps
            ticks = sum(v - t0.get(pid, 0) for pid, v in t1.items())
            row.cpu_us = 1e6 * ticks / CLK_TCK / done if done else None
            row.errors = bad + failed
            notes = []
            if bad or failed:
                notes.append("non-2xx %d, failed %d: NOT VALID" % (bad, failed))
            fetches = idp.count(JWKS_PATH) + idp_tls.count(JWKS_PATH) - fetch0
            if fetches:
                notes.append("%d JWKS fetches during the run" % fetches)
            if srv:
                logged = [ln for ln in srv.log_since(mark).splitlines() if ln.strip()]
                if logged:
                    notes.append("%d error-log lines, e.g. %s" % (len(logged), logged[0][:120]))
            row.note = "; ".join(notes)
            if row.errors and group in ("static", "mod_auth_jwks"):
                ours_failed = True
            rows.append(row)
            print("  %-17s %-27s %-6s %9.0f req/s %6s us cpu/req  %s" % (
                group, mode, alg or "", rps,
                "%.0f" % row.cpu_us if row.cpu_us is not None else "?", row.note), flush=True)
    finally:
        for s in servers:
            s.cleanup()
        idp.close()
        idp_tls.close()
        shutil.rmtree(tls_dir, ignore_errors=True)
        shutil.rmtree(script_dir, ignore_errors=True)

    return (1 if ours_failed else 0), report(rows, skipped)


def part_instr():
    """The third part, instruction counts (bench_instr.py), when BENCH_INSTR=1."""
    if os.environ.get("BENCH_INSTR", "0") != "1":
        return 0
    import bench_instr
    return bench_instr.main()


def best_rows(rows):
    """One row per (group, mode, alg): the round with the most req/s; its
    notes, and any round's errors, carried along."""
    best = {}
    order = []
    for r in rows:
        k = (r.group, r.mode, r.alg)
        if k not in best:
            best[k] = r
            order.append(k)
            r.all_rps = [r.rps]
            continue
        b = best[k]
        b.all_rps.append(r.rps)
        b.errors += r.errors
        if r.note and r.note not in b.note:
            b.note = "; ".join(x for x in (b.note, r.note) if x)
        if r.rps > b.rps:
            b.rps, b.cpu_us = r.rps, r.cpu_us
    return [best[k] for k in order]


def report(rows, skipped):
    drift = [r.rps for r in rows if r.group == "static"]
    static_cpu = [r.cpu_us for r in rows if r.group == "static" and r.cpu_us is not None]
    noise = max(static_cpu) - min(static_cpu) if static_cpu else 0.0
    rows = best_rows(rows)
    statics = [r.rps for r in rows if r.mode == "unprotected"]
    base = statics[0] if statics else 0.0
    base_cpu = next((r.cpu_us for r in rows if r.mode == "unprotected"), None)
    ours = {(r.key, r.alg): r.rps for r in rows if r.group == "mod_auth_jwks"}

    def ratio(a, b):
        return "%6.2f" % (a / b) if a and b else "     -"

    print("\nreq/s side by side, best of %d rounds (c=%d, %ds each, keep-alive). "
          "x static = / unprotected; x jwks hit | off = / mod_auth_jwks, same alg, token cache hit | "
          "AuthJWKSTokenCache 0; cpu = httpd worker CPU time per request (user+sys, "
          "from the same best round; auth us = that minus the unprotected baseline's, i.e. "
          "what authentication adds; steadier than req/s on a busy machine):"
          % (ROUNDS, CONC, SECONDS))
    hdr = "  %-17s %-27s %-6s %9s  %8s  %10s  %10s  %10s  %9s" % (
        "module", "mode", "alg", "req/s", "x static", "x jwks hit", "x jwks off", "cpu us/req",
        "auth us")
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    for r in rows:
        print("  %-17s %-27s %-6s %9.0f  %8s  %10s  %10s  %10s  %9s%s" % (
            r.group, r.mode, r.alg or "", r.rps, ratio(r.rps, base),
            ratio(r.rps, ours.get(("cached", r.alg))) if r.alg else "     -",
            ratio(r.rps, ours.get(("uncached", r.alg))) if r.alg else "     -",
            "%.0f" % r.cpu_us if r.cpu_us is not None else "?",
            "%+.0f" % (r.cpu_us - base_cpu) if r.alg and r.cpu_us is not None and base_cpu
            else "-",
            "   <- %s" % r.note if r.note else ""))
    if len(drift) >= 2 and drift[0]:
        print("\n  unprotected baseline over the run: %s req/s (first to last: %+.0f%%; "
              "differences smaller than that spread are noise)" % (
                  " ".join("%.0f" % x for x in drift), 100.0 * (drift[-1] / drift[0] - 1)))
    spread = [r for r in rows if len(getattr(r, "all_rps", [])) > 1]
    if spread:
        worst = max(spread, key=lambda r: max(r.all_rps) / min(r.all_rps))
        print("  largest round-to-round spread: %s %s %s %s req/s" % (
            worst.group, worst.mode, worst.alg or "",
            " / ".join("%.0f" % x for x in worst.all_rps)))
    for name, why in skipped:
        print("\n  SKIPPED %s: %s" % (name, why))

    # workloads 1 and 2 of the summary: the default config
    # (cache hit) against every peer row of the same algorithm
    goals = []
    for n, alg in ((1, "RS256"), (2, "ES256")):
        ours = next((r for r in rows if r.group == "mod_auth_jwks" and r.key == "cached"
                     and r.alg == alg), None)
        peers = [r for r in rows if r.group not in ("static", "mod_auth_jwks") and r.alg == alg
                 and r.cpu_us is not None]
        if ours is None or base_cpu is None or ours.cpu_us is None:
            continue
        g = dict(n=n, workload="same %s token repeated" % alg, source="part 1 (wrk)",
                 ours_rps=ours.rps, ours_auth=ours.cpu_us - base_cpu, ours_cpu=ours.cpu_us,
                 peer_rps=None, noise=noise)
        if peers:
            br = max(peers, key=lambda r: r.rps)
            bc = min(peers, key=lambda r: r.cpu_us)
            g.update(peer_rps=br.rps, peer_rps_name="%s %s" % (br.group, br.mode),
                     peer_auth=bc.cpu_us - base_cpu, peer_cpu=bc.cpu_us,
                     peer_auth_name="%s %s" % (bc.group, bc.mode))
        goals.append(g)
    return goals


def cpu_ratio(peer_auth, ours_auth, noise, peer_cpu, ours_cpu):
    """The CPU a peer adds per request over what ours adds, as text. When
    ours adds less than the noise (the spread of the unprotected row's CPU
    over the rounds; a refusal can even cost less than serving the file),
    that ratio means nothing; the ratio of the whole CPU per request is
    shown instead, marked >=: it is a lower bound of the added-CPU ratio
    whenever the peer adds more than ours."""
    if ours_auth >= max(noise or 0, 1):
        return "%.2fx" % (peer_auth / ours_auth)
    return ">=%.2fx" % (peer_cpu / ours_cpu) if ours_cpu else "-"


def goal_summary(goals):
    """The summary, one line per workload measured in this run:
    mod_auth_jwks against the better peer."""
    if not goals:
        return
    print("\nsummary: mod_auth_jwks against the better of mod_oauth2 and "
          "mod_auth_openidc on every workload, from this run. req/s: ours / the peer row with "
          "the most; CPU: the least CPU a peer row adds per request (over the unprotected "
          "row of the same part) / what ours adds; noise = that part's unprotected-row CPU "
          "spread over the rounds (>=: ours adds less than the noise, so the ratio of the whole "
          "CPU per request is shown, a lower bound). "
          "Ratios are side by side in one run; on a busy machine the CPU ratio is the steadier "
          "one:")
    hdr = "  %-46s %-13s %9s %9s %7s %8s %8s %6s %8s  %s" % (
        "workload", "measured by", "ours r/s", "peer r/s", "ratio", "ours us", "peer us",
        "noise", "ratio", "better peer (req/s; CPU)")
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    for g in goals:
        if g.get("peer_rps") is None:
            print("  %-46s %-13s %9.0f %9s %7s %+8.0f %8s %6.0f %8s  no peer measured" % (
                "%d. %s" % (g["n"], g["workload"]), g["source"], g["ours_rps"], "-", "-",
                g["ours_auth"], "-", g.get("noise") or 0, "-"))
            continue
        rr = g["ours_rps"] / g["peer_rps"]
        cr = cpu_ratio(g["peer_auth"], g["ours_auth"], g.get("noise"), g["peer_cpu"],
                       g["ours_cpu"])
        print("  %-46s %-13s %9.0f %9.0f %6.2fx %+8.0f %+8.0f %6.0f %8s  %s; %s" % (
            "%d. %s" % (g["n"], g["workload"]), g["source"], g["ours_rps"], g["peer_rps"], rr,
            g["ours_auth"], g["peer_auth"], g.get("noise") or 0, cr, g["peer_rps_name"],
            g["peer_auth_name"]))


if __name__ == "__main__":
    sys.exit(main())
