"""make bench, second part: what one request costs mod_auth_jwks, beyond the
unprotected baseline, for the token mixes a real server sees.

Part 1 repeats one token, so these rows use wrk (Debian package wrk) with a
Lua script that cycles through a list of tokens; the unprotected baseline of
this part is measured with wrk too (first and last, so drift shows). Every
row is one httpd with the section's config; the JWKS server counts fetches
during each run. Rows:

  signature cost     `openssl speed -seconds 1 rsa2048 ecdsap256 ed25519`,
                     parsed: the verify time of the bare primitive here
  hit                distinct tokens, fewer than AuthJWKSTokenCache holds
  miss <alg>         distinct tokens, more than the cache holds (every
                     request verified and inserted): RS256 PS256 ES256 EdDSA
  invalid            bad signature, unknown kid (random kids), malformed,
                     expired: all must be 401, with the fetches they caused
  JWKS of N keys     1, 20, 200 keys (the token's key last), RS256 misses
  token of N KB      0.5, 4, 12 KB tokens, RS256 misses
  prefork            the static, hit and RS256 miss rows under prefork
  RSS                per-process RSS before and after filling a large token
                     cache with distinct tokens: bytes per entry
  library            bench/micro.c, built against the libajw.a next to the
                     module: the library's own steps per token (parse +
                     claims, signature, cache insert, cache hit, early
                     rejects) in one thread, free of httpd and of the load
                     that makes the per-request CPU column noisy

The cost column is CPU per request (user+sys of the httpd children over the
run / requests) minus the same MPM's static row: what authentication adds.
BENCH_TOKENS_SECONDS (default 2) per run, BENCH_TOKENS_ROUNDS (default 2,
best kept = least CPU).
"""
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time

import harness as H

SECONDS = int(os.environ.get("BENCH_TOKENS_SECONDS", "2"))
ROUNDS = max(1, int(os.environ.get("BENCH_TOKENS_ROUNDS", "2")))
CONC = int(os.environ.get("BENCH_CONCURRENCY", "8"))
ISS, AUD = "https://issuer.test", "api"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HIT_TOKENS = 400          # < the default cache (1024 under prefork, 4096 threaded)
MISS_CACHE = 128          # AuthJWKSTokenCache for the miss rows ...
MISS_TOKENS = 400         # ... with more distinct tokens than that
RSS_CACHE = 8192
# AJW_MODULE_BEFORE=/path/to/old/mod_auth_jwks.so: every row twice, the old
# module ("before") and AJW_MODULE ("after"), interleaved in one run.
MODULES = ([("before", os.environ["AJW_MODULE_BEFORE"]), ("after", H.MODULE_SO)]
           if os.environ.get("AJW_MODULE_BEFORE") else [("", H.MODULE_SO)])


def openssl_speed():
    """{alg: verify microseconds} from openssl speed, or {} when unavailable."""
    try:
        out = subprocess.run(["openssl", "speed", "-seconds", "1", "rsa2048", "ecdsap256",
                              "ed25519"], capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    res = {}
    m = re.search(r"^rsa 2048 bits\s+\S+\s+\S+\s+\S+\s+([\d.]+)", out, re.M)
    if m:
        res["RS256"] = res["PS256"] = 1e6 / float(m.group(1))
    m = re.search(r"ecdsa \(nistp256\)\s+\S+\s+\S+\s+\S+\s+([\d.]+)", out)
    if m:
        res["ES256"] = 1e6 / float(m.group(1))
    m = re.search(r"EdDSA \(Ed25519\)\s+\S+\s+\S+\s+\S+\s+([\d.]+)", out)
    if m:
        res["EdDSA"] = 1e6 / float(m.group(1))
    return res


def micro(tmp, jwks_doc, lines):
    """{(case, step): us} from bench/micro.c, or (None, why)."""
    import json
    lib = os.path.join(os.path.dirname(os.path.abspath(H.MODULE_SO)), "libajw.a")
    repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    if not os.path.exists(lib):
        return None, "%s missing" % lib
    exe = os.path.join(tmp, "micro")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "apr-1", "apr-util-1", "openssl",
                            "jansson", "libcurl"], capture_output=True, text=True).stdout.split()
    cc = subprocess.run(["gcc", "-std=gnu11", "-O2", "-D_GNU_SOURCE", "-I" + os.path.join(repo, "lib"),
                         "-o", exe, os.path.join(repo, "bench", "micro.c"), lib] + flags
                        + ["-lpthread"], capture_output=True, text=True)
    if cc.returncode:
        return None, "micro.c did not build: %s" % cc.stderr[-300:]
    with open(os.path.join(tmp, "jwks.json"), "w") as f:
        json.dump(jwks_doc, f)
    with open(os.path.join(tmp, "tokens.txt"), "w") as f:
        f.write("".join("%s %s\n" % kv for kv in lines))
    r = subprocess.run([exe, os.path.join(tmp, "jwks.json"), os.path.join(tmp, "tokens.txt")],
                       capture_output=True, text=True, timeout=300)
    if r.returncode:
        return None, "micro failed: %s" % r.stderr[-300:]
    out = {}
    for ln in r.stdout.splitlines():
        case, step, us = ln.split()
        out[(case, step)] = float(us)
    return out, None


def conf(url, cache=None, extra=""):
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
%s""" % ("AuthJWKSTokenCache %d" % cache if cache is not None else "", url, ISS, AUD, extra)


# Appended by lua_script(expect=...): counts every answer whose status is not
# the expected one (wrk's own "Non-2xx or 3xx" count cannot tell a 401 from a
# 400 or a 500) and prints the sum over wrk's threads at the end.
STATUS_LUA = """
status_threads = {}
setup = function(thread) table.insert(status_threads, thread) end
wrong = 0
response = function(status, headers, body)
  if status ~= %d then wrong = wrong + 1 end
end
done = function(summary, latency, requests)
  local n = 0
  for _, t in ipairs(status_threads) do n = n + t:get("wrong") end
  io.write(string.format("wrong status: %%d\\n", n))
end
"""


def lua_script(path, tokens, expect=None):
    """A wrk script cycling through tokens (none: wrk's plain request); with
    expect, it also counts answers whose status is not expect (wrk_run)."""
    with open(path, "w") as f:
        if tokens:
            f.write("toks = {\n")
            f.write(",\n".join('"%s"' % t for t in tokens))
            f.write("}\ni = math.random(#toks)\nrequest = function()\n"
                    "  i = i + 1\n  if i > #toks then i = 1 end\n"
                    "  return wrk.format(nil, nil, {[\"Authorization\"] = \"Bearer \" .. toks[i]})\n"
                    "end\n")
        if expect is not None:
            f.write(STATUS_LUA % expect)
    return path


def cpu_ticks(srv):
    out = {}
    for pid in srv.children():
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return out


def rss_kb(srv):
    out = {}
    for pid in srv.children():
        try:
            with open("/proc/%d/status" % pid) as f:
                m = re.search(r"VmRSS:\s+(\d+)", f.read())
            out[pid] = int(m.group(1))
        except (OSError, AttributeError):
            pass
    return out


def wrk_run(url, script, seconds):
    """One wrk run: dict of rps, done (requests), non2xx (wrk's count of
    statuses >= 400), errors (its socket-errors line or ""), wrong (answers
    with another status than the script's expect; None if it counts none)."""
    cmd = ["wrk", "-t1", "-c%d" % CONC, "-d%ds" % seconds, "--timeout", "10s"]
    if script:
        cmd += ["-s", script]
    r = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60)
    done = re.search(r"(\d+) requests in", r.stdout)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", r.stdout)
    errs = re.search(r"Socket errors:.*", r.stdout)
    wrong = re.search(r"^wrong status: (\d+)$", r.stdout, re.M)
    if not done or not rps:
        raise RuntimeError("wrk failed: %s %s" % (r.stdout[-400:], r.stderr[-400:]))
    return {"rps": float(rps.group(1)), "done": int(done.group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errs.group(0) if errs else "",
            "wrong": int(wrong.group(1)) if wrong else None}


def wrk(url, script, seconds):
    r = wrk_run(url, script, seconds)
    return r["rps"], r["done"], r["non2xx"], r["errors"]


class Case:
    def __init__(self, section, name, srv, path, tokens, expect, mpm="event", alg=None):
        self.section, self.name, self.srv, self.path = section, name, srv, path
        self.tokens, self.expect, self.mpm, self.alg = tokens, expect, mpm, alg
        self.script = None
        self.rps = self.cpu = None
        self.all_cpu = []
        self.notes = []


def run_case(cs, idp, tmp):
    if cs.tokens and not cs.script:
        cs.script = lua_script(os.path.join(tmp, "case%d.lua" % id(cs)), cs.tokens)
    fetch0 = idp.total()
    mark = cs.srv.log_size()
    t0 = cpu_ticks(cs.srv)
    rps, done, non2xx, errs = wrk(cs.srv.url(cs.path), cs.script, SECONDS)
    t1 = cpu_ticks(cs.srv)
    ticks = sum(v - t0.get(pid, 0) for pid, v in t1.items())
    cpu = 1e6 * ticks / CLK_TCK / done if done else None
    cs.all_cpu.append(cpu)
    if cs.cpu is None or (cpu is not None and cpu < cs.cpu):
        cs.cpu, cs.rps = cpu, rps
    bad = non2xx if cs.expect == 200 else done - non2xx
    if bad:
        cs.notes.append("%d answers not %d: NOT VALID" % (bad, cs.expect))
    if errs:
        cs.notes.append(errs.strip())
    fetches = idp.total() - fetch0
    if fetches or cs.expect != 200:
        cs.notes.append("%d JWKS fetches" % fetches)
    if cs.expect == 200:
        logged = [ln for ln in cs.srv.log_since(mark).splitlines() if ln.strip()]
        if logged:
            cs.notes.append("%d error-log lines, e.g. %s" % (len(logged), logged[0][:100]))


def main():
    if not shutil.which("wrk"):
        print("\nbench (tokens): wrk not found (Debian package wrk): part skipped")
        return 0
    t_start = time.monotonic()
    speed = openssl_speed()
    print("\nsignature verify cost of the bare primitive (openssl speed -seconds 1): %s" % (
        ", ".join("%s %.1f us" % (a, speed[a]) for a in ("RS256", "ES256", "EdDSA") if a in speed)
        or "unavailable"), flush=True)
    keys = H.Keys("bt")
    import jwcrypto.jwk as jwk
    filler = [jwk.JWK.generate(kty="EC", crv="P-256", kid="filler-%d" % i) for i in range(199)]
    idp = H.JWKSServer()
    docs = {"all": keys.jwks(), 1: H.jwks_doc([keys.rsa]), 20: H.jwks_doc(filler[:19] + [keys.rsa]),
            200: H.jwks_doc(filler + [keys.rsa])}
    for k, d in docs.items():
        idp.set(d, "/jwks-%s.json" % k)
    exp = H.now() + 3600

    def mint(n, alg="RS256", pad=0, **over):
        out = []
        for _ in range(n):
            c = H.std_claims(**dict({"exp": exp}, **over))
            if pad:
                c["pad"] = "x" * pad
            out.append(H.mint(c, keys.for_alg(alg), alg))
        return out

    tmp = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-bench-tok-", dir="/tmp"))
    lines = [(alg, t) for alg in ("RS256", "PS256", "ES256", "EdDSA") for t in mint(200, alg)]
    lines += [("expired", t) for t in mint(200, "RS256", exp=H.now() - 3600)]
    lines += [("nokid", H.mint(H.std_claims(exp=exp), keys.rsa, "RS256", kid="nokid-%d" % i))
              for i in range(200)]
    lines += [("badsig", t[:-6] + ("AAAAAA" if not t.endswith("AAAAAA") else "BBBBBB"))
              for k, t in lines[:200]]
    lib_costs, lib_why = micro(tmp, keys.jwks(), lines)
    servers = []
    cases = []
    rss_rows = []

    def server(extra, mpm="event"):
        srv = H.Httpd(extra, mpm=mpm, loglevel="warn", name="btok%d" % len(servers))
        servers.append(srv)
        srv.start()
        return srv

    try:
        url_all = idp.url("/jwks-all.json")
        toks = {}

        def tokens(key, make):
            if key not in toks:
                toks[key] = make()
            return toks[key]

        for label, so in MODULES:
            H.MODULE_SO = so
            tag = (label + ": ") if label else ""
            for mpm in ("event", "prefork"):
                hit = server(conf(url_all), mpm)
                miss = server(conf(url_all, MISS_CACHE), mpm)
                sect = "event" if mpm == "event" else "prefork"
                if label == MODULES[0][0]:
                    cases.append(Case(sect, "static (wrk)", hit, "/open/static.txt", None, 200,
                                      mpm))
                cases.append(Case(sect, tag + "hit: %d distinct, default cache" % HIT_TOKENS, hit,
                                  "/api/static.txt",
                                  tokens("hit", lambda: mint(HIT_TOKENS, "ES256")), 200, mpm))
                algs = ("RS256", "PS256", "ES256", "EdDSA") if mpm == "event" else ("RS256",)
                for alg in algs:
                    cases.append(Case(sect, tag + "miss: %d distinct, cache %d" % (
                        MISS_TOKENS, MISS_CACHE), miss, "/api/static.txt",
                        tokens(alg, lambda: mint(MISS_TOKENS, alg)), 200, mpm, alg))
                if mpm != "event":
                    continue
                rs = toks["RS256"]
                if label == MODULES[0][0]:
                    cases.append(Case("invalid", "no token: 401 (baseline of this part)", miss,
                                      "/api/static.txt", None, 401))
                bad = tokens("bad", lambda: [t[:-6] + ("AAAAAA" if not t.endswith("AAAAAA")
                                                       else "BBBBBB") for t in rs])
                cases.append(Case("invalid", tag + "bad signature", miss, "/api/static.txt", bad,
                                  401, alg="RS256"))
                unknown = tokens("unknown", lambda: [
                    H.mint(H.std_claims(exp=exp), keys.rsa, "RS256",
                           kid="nokid-%s" % secrets.token_hex(4)) for _ in range(50)])
                cases.append(Case("invalid", tag + "unknown kid (50 random)", miss,
                                  "/api/static.txt", unknown, 401))
                cases.append(Case("invalid", tag + "malformed (400)", miss, "/api/static.txt",
                                  tokens("mal", lambda: [t.replace(".", "!", 1) for t in rs[:50]]),
                                  400))
                cases.append(Case("invalid", tag + "malformed JSON header", miss,
                                  "/api/static.txt",
                                  tokens("json", lambda: [H.b64u("{") + "." + t.split(".", 1)[1]
                                                          for t in rs[:50]]), 401))
                cases.append(Case("invalid", tag + "expired", miss, "/api/static.txt",
                                  tokens("exp", lambda: mint(50, "RS256", exp=H.now() - 3600)),
                                  401))
                for n in (1, 20, 200):
                    srv = server(conf(idp.url("/jwks-%d.json" % n), MISS_CACHE))
                    cases.append(Case("keys", tag + "JWKS of %d keys, miss" % n, srv,
                                      "/api/static.txt", rs, 200, alg="RS256"))
                for pad in (0, 2900, 8900):
                    t = rs if pad == 0 else tokens(pad, lambda: mint(MISS_TOKENS, "RS256",
                                                                     pad=pad))
                    cases.append(Case("size", tag + "token of %.1f KB, miss" % (
                        len(t[0]) / 1024.0), miss, "/api/static.txt", t, 200, alg="RS256"))
        # warm up every server once (JWKS loaded, first requests done)
        import requests
        for srv in servers:
            deadline = time.monotonic() + 15
            for cs in cases:
                if cs.srv is srv and cs.expect == 200 and cs.tokens:
                    while True:
                        r = requests.get(srv.url(cs.path),
                                         headers={"Authorization": "Bearer " + cs.tokens[0]},
                                         timeout=15)
                        if r.status_code == 200 or time.monotonic() > deadline:
                            break
                        time.sleep(0.2)
                    if r.status_code != 200:
                        raise RuntimeError("%s: %d before timing\n%s" % (
                            cs.name, r.status_code, srv.log_tail(6)))
        for rnd in range(ROUNDS):
            for cs in (cases if rnd % 2 == 0 else cases[::-1]):
                run_case(cs, idp, tmp)
        # RSS: a large cache filled with distinct ES256 tokens (cheap to mint)
        fill = mint(RSS_CACHE, "ES256")
        tok_len = sum(len(t) for t in fill) / len(fill)
        warm = lua_script(os.path.join(tmp, "fill.lua"), fill[:64])
        full = lua_script(os.path.join(tmp, "fill2.lua"), fill)
        for label, so in MODULES:
            H.MODULE_SO = so
            srv = server(conf(url_all, RSS_CACHE))
            wrk(srv.url("/api/static.txt"), warm, 1)          # warm: threads, pools, JWKS
            before = rss_kb(srv)
            wrk(srv.url("/api/static.txt"), full, 3)
            after = rss_kb(srv)
            rss_rows += [(label, pid, before.get(pid, 0), kb) for pid, kb in after.items()]
            srv.cleanup()
            servers.remove(srv)
    finally:
        for s in servers:
            s.cleanup()
        idp.close()
        shutil.rmtree(tmp, ignore_errors=True)

    base = {}
    for cs in cases:
        if cs.name.startswith("static"):
            base[cs.mpm] = cs.cpu
        if cs.name.startswith("no token"):
            base["invalid"] = cs.cpu
    print("\nmod_auth_jwks per request, wrk -c %d, %ds per run, least-CPU of %d rounds. "
          "cpu = httpd CPU us/request; auth us = cpu minus the same MPM's static row "
          "(invalid rows: minus the no-token 401 row); "
          "sig us = openssl speed verify; x static = req/s ratio:" % (CONC, SECONDS, ROUNDS))
    hdr = "  %-8s %-42s %-6s %9s %8s %8s %8s %7s" % ("part", "case", "alg", "req/s", "x static",
                                                    "cpu us", "auth us", "sig us")
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    static_rps = {cs.mpm: cs.rps for cs in cases if cs.name.startswith("static")}
    for cs in cases:
        b = base.get("invalid" if cs.section == "invalid" else cs.mpm)
        print("  %-8s %-42s %-6s %9.0f %8s %8.0f %8s %7s  %s" % (
            cs.section, cs.name, cs.alg or "", cs.rps or 0,
            "%.2f" % (cs.rps / static_rps[cs.mpm]) if static_rps.get(cs.mpm) else "-",
            cs.cpu or 0, "%+.0f" % (cs.cpu - b) if b is not None and not cs.name.startswith(
                ("static", "no token")) else "-",
            "%.0f" % speed[cs.alg] if cs.alg in speed else "-",
            "; ".join(sorted(set(cs.notes)))))
    for cs in cases:
        if cs.name.startswith("static"):
            print("  %s static CPU us/request over the rounds: %s (differences smaller than that "
                  "spread are noise)" % (cs.mpm, " ".join("%.0f" % x for x in cs.all_cpu)))
    for label, pid, b, a in rss_rows:
        print("  %sRSS of child %d: %d KB before, %d KB with a full cache of %d entries "
              "(tokens of %.0f bytes): %+.0f bytes per entry" % (
                  label + ": " if label else "", pid, b, a, RSS_CACHE, tok_len,
                  1024.0 * (a - b) / RSS_CACHE))
    if lib_costs is None:
        print("\n  library costs: skipped (%s)" % lib_why)
    else:
        print("\nlibrary cost per token (bench/micro.c: one thread, no httpd, least of 15 passes "
              "over 200 tokens; us):")
        print("  %-8s %13s %10s %10s %9s %13s %10s" % ("case", "parse+claims", "signature",
                                                      "openssl", "sig-ossl", "cache insert",
                                                      "cache hit"))
        for case in ("RS256", "PS256", "ES256", "EdDSA", "expired", "nokid", "badsig"):
            g = lambda step: lib_costs.get((case, step))
            if g("parse+claims") is None:
                continue
            sp = speed.get(case if case not in ("nokid", "badsig", "expired") else "RS256")
            print("  %-8s %13.2f %10.2f %10s %9s %13s %10s" % (
                case, g("parse+claims"), g("signature"),
                "%.2f" % sp if sp and case not in ("expired", "nokid") else "-",
                "%+.2f" % (g("signature") - sp) if sp and case not in ("expired", "nokid")
                else "-",
                "%.2f" % g("cache-insert") if g("cache-insert") else "-",
                "%.2f" % g("cache-hit") if g("cache-hit") else "-"))
        print("  (expired: refused by the claims check, before any key lookup; nokid: parse, "
              "claims and the key search, no signature; badsig: one signature check)")
    print("  (this part took %.0f s)" % (time.monotonic() - t_start))
    return 1 if any("NOT VALID" in n for cs in cases for n in cs.notes) else 0
