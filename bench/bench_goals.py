"""make bench, goals part: the performance goals, each measured side by side
in ONE run and printed as a row of a final "goals" table (goal, target,
measured, met / not met, and the figures it is computed from). A target
that is not met prints "NOT MET"; nothing is hidden.

Every timed row is wrk with BENCH_GOALS_THREADS (default 2) threads and
BENCH_GOALS_CONCURRENCY (default 32) keep-alive connections for
BENCH_GOALS_SECONDS (default 2), against an httpd of its own: event MPM with
one process of 64 threads (prefork rows: exactly 8 children), all on
127.0.0.1. Every row is run BENCH_GOALS_ROUNDS times (default 2, interleaved,
order reversed every other round); each keeps its best req/s and its least
CPU per request (user+sys of the httpd children from /proc over the run,
divided by the requests wrk completed). The unprotected static file is
measured in every round and once more at the end; its spread is printed.
The Lua script of every row counts each answer whose status is not the
expected one; a row with such answers is marked NOT VALID and fails the goal.

Tokens are minted once per run with `cryptography` (jwcrypto's keys, the
signature computed directly: ~0.35 ms per RS256 token, on both cores) into
files in the run's temp dir that every row's Lua script reads. Claims: nine,
with an array and a nested object (RS256 tokens of 673 bytes).

  1 cached hit  the same RS256 / ES256 token repeated, default token cache:
                req/s / static (target >= 0.92); instructions added over the
                static file per hit, callgrind (target <= 20,000)
  2 miss        BENCH_GOALS_MISS_TOKENS (default 20000) distinct RS256 and as
                many ES256 tokens cycled through AuthJWKSTokenCache 128, so
                every request misses: httpd CPU per request over static
                minus the bare verify (`openssl speed`, one core) must be
                <= the hit's CPU over static + 10 us; ours / the better
                peer in req/s (target >= 1.5; peers: mod_oauth2 expiry=0
                and mod_auth_openidc on the same tokens; mod_oauth2's
                default result cache is slower than expiry=0 on distinct
                tokens, see part 1b, so it is not run); a callgrind row for
                RS256 (instructions over static; OpenSSL runs its generic
                code under valgrind, so the signature's count is not what
                the hardware runs: for information). A hit below the
                static row's CPU (noise) counts as +0 in the target
  3 DPoP        one cnf.jkt-bound RS256 token with a fresh ES256 proof per
                request (new jti, iat, htm, htu, ath; one client key; every
                proof used once, pre-minted; proofs running out or any
                answer but 200 fails the row): CPU per request <= the same
                token's Bearer cache hit + one P-256 verify + 20 us; ours /
                mod_oauth2 (OAuth2AcceptTokenIn header
                name=Authorization&type=DPoP, type=dpop) in req/s >= 1.5.
                mod_auth_jwks demands no server nonce unless
                AuthJWKSDPoPNonce is set; the bench sets none
  4 memory      RSS bytes per cached token beyond the token's own bytes:
                threads warmed with a static flood, cache filled with 800
                distinct tokens, RSS read, filled to 3800, read again:
                dRSS / 3000 - token length (target <= 1024)
  5 refusals    1000 bad-signature + 1000 unknown-kid tokens, alternating:
                req/s / static (target >= 0.90), JWKS fetches of that
                server over its whole life (target: the initial one, plus
                at most one per AuthJWKSMinRefreshInterval, 30 s, that an unknown
                kid may wake),
                error-log bytes per refused request
  6 prefork     exactly 8 children: static, RS256 and ES256 hits, RS256 and
                ES256 misses; the hit ratio and the miss CPU goals as under event,
                and RSS per child with a full cache (3 s of 1024 distinct
                tokens, the default prefork cache size, through all children)

Callgrind rows (BENCH_GOALS_INSTR, default 1; valgrind, root): httpd -X
counted twice, serving BENCH_GOALS_INSTR_N/4 and BENCH_GOALS_INSTR_N
(default 100) requests after the same warm-up (bench_instr.counted_run); the
difference over the extra requests is per request. Workloads: static, RS256
hit, ES256 hit, RS256 miss, and the RS256 miss again counted without the
signature check (ajw_crypt_verify and what it calls): what a miss costs
beyond its signature, over a hit. Two lives run at once (instruction counts do not
depend on load), after the timed rows, so they do not disturb them.

Profile rows (BENCH_GOALS_PROFILE, default 1; perf, root): after the timed
rounds, one more run each of static, RS256 miss, ES256 miss, the bound token
as Bearer and DPoP (event), sampled by `perf record` at 999 Hz on the httpd
children; each row's CPU per request (from /proc, as in the rounds) is split
in proportion to where the samples fell: the module (mod_auth_jwks.so, with
lib/ linked in, and jansson), libcrypto, the kernel, and the rest of the
process (httpd, APR, libc). The split of a miss against the static file is
the profile behind goal 2's CPU rows.

BENCH_GOALS_DPOP_RPS (default 8000): proofs minted per second of each DPoP
run and round; a run that uses them up is NOT VALID (raise it).
BENCH_GOALS_MISS_TOKENS: fewer distinct tokens mint faster; the cache of
the miss rows stays 128, so every request still misses.
"""
import concurrent.futures as CF
import hashlib
import json
import multiprocessing
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid

import bench as B
import bench_tokens as T
import harness as H

SECONDS = int(os.environ.get("BENCH_GOALS_SECONDS", "2"))
ROUNDS = max(1, int(os.environ.get("BENCH_GOALS_ROUNDS", "3")))
CONC = int(os.environ.get("BENCH_GOALS_CONCURRENCY", "32"))
THREADS = int(os.environ.get("BENCH_GOALS_THREADS", "2"))
N_MISS = int(os.environ.get("BENCH_GOALS_MISS_TOKENS", "20000"))
INSTR = os.environ.get("BENCH_GOALS_INSTR", "1") != "0"
INSTR_N = max(40, int(os.environ.get("BENCH_GOALS_INSTR_N", "100")))
DPOP_RPS = int(os.environ.get("BENCH_GOALS_DPOP_RPS", "8000"))  # proofs minted per second of run
PROFILE = os.environ.get("BENCH_GOALS_PROFILE", "1") != "0"
PROFILE_HZ = 999
# what the profile rows attribute CPU to, by the shared object a sample is in
PROFILE_GROUPS = (("module", ("mod_auth_jwks.so", "libjansson")), ("libcrypto", ("libcrypto",)),
                  ("kernel", ("[kernel",)), ("httpd+APR+libc", ("",)))
MISS_CACHE = 128
MEM_CACHE = 8192
N_FLOOD = 1000       # of each kind
ISS, AUD = B.ISS, B.AUD
# htu of every proof: http://bench.test:<port of mod_oauth2's DPoP httpd> + PATH. mod_oauth2
# builds the URL from the Host header's name and the port it listens on; ours
# compares with AuthJWKSDPoPBaseURL + path, set to the same base, so one set
# of proofs serves both DPoP servers (each proof used once on each).
PATH = "/api/static.txt"
CLK_TCK = os.sysconf("SC_CLK_TCK")

MPM = {
    "event": """LoadModule mpm_event_module {moddir}/mod_mpm_event.so
StartServers 1
ServerLimit 1
ThreadLimit 64
ThreadsPerChild 64
MinSpareThreads 1
MaxSpareThreads 64
MaxRequestWorkers 64
""",
    "prefork": """LoadModule mpm_prefork_module {moddir}/mod_mpm_prefork.so
StartServers 8
MinSpareServers 8
MaxSpareServers 8
ServerLimit 8
MaxRequestWorkers 8
""",
}


class Server(B.Server):
    """bench.Server with the goals' MPM settings."""

    def __init__(self, extra, name, mpm="event", ours=True):
        self.goal_mpm = mpm     # read by conf_text, which the harness calls in __init__
        super().__init__(extra, name=name, ours=ours)

    def conf_text(self, extra):
        mpm = getattr(self, "goal_mpm", "event")
        self.mpm = mpm
        text = super().conf_text(extra)
        return text.replace(H.MPM_CONF[mpm].format(moddir=H.MODDIR),
                            MPM[mpm].format(moddir=H.MODDIR))


# ---------------------------------------------------------------- tokens

_KEYS = {}   # alg -> (cryptography private key, kid); set before the pool forks


def b64j(obj):
    return H.b64u(json.dumps(obj, separators=(",", ":")).encode())


def sign(alg, data):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    key = _KEYS[alg][0]
    if alg.endswith("RS256"):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def claims(exp, **extra):
    """Nine claims, an array and a nested object among them."""
    c = {"iss": ISS, "aud": AUD, "sub": "u-%s" % uuid.uuid4().hex[:8], "iat": H.now(),
         "exp": exp, "jti": uuid.uuid4().hex[:16], "scope": "read write",
         "roles": ["reader", "writer"], "org": {"id": "o-7f", "tier": "gold"}}
    c.update(extra)
    return c


def mint_one(alg, c, kid=None, key=None):
    """A compact JWS of claims c, signed with _KEYS[key or alg]."""
    hdr = {"alg": alg, "typ": "JWT", "kid": kid or _KEYS[alg][1]}
    si = b64j(hdr) + "." + b64j(c)
    return si + "." + H.b64u(sign(key or alg, si.encode()))


def _mint_chunk(args):
    alg, n, exp, kind = args
    out = []
    for _ in range(n):
        if kind == "nokid":
            out.append(mint_one(alg, claims(exp), kid="nokid-%s" % secrets.token_hex(6),
                                key="X" + alg))
        else:
            out.append(mint_one(alg, claims(exp)))
    return out


def _proof_chunk(args):
    n, htu, ath, jwk_pub = args
    hdr = b64j({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk_pub})
    out = []
    now = H.now()
    for _ in range(n):
        si = hdr + "." + b64j({"jti": uuid.uuid4().hex, "htm": "GET", "htu": htu, "iat": now,
                               "ath": ath})
        out.append(si + "." + H.b64u(sign("DPOP", si.encode())))
    return out


def parallel(fn, jobs, pool):
    out = []
    for part in pool.map(fn, jobs):
        out += part
    return out


def split(total, alg, exp, kind="valid", parts=8):
    return [(alg, total // parts + (1 if i < total % parts else 0), exp, kind)
            for i in range(parts)]


# ---------------------------------------------------------------- wrk

LUA = """
local toks = {}
for l in io.lines("%(tokens)s") do toks[#toks + 1] = l end
local proofs = {}
%(load_proofs)s
nthreads = 0
threads = {}
setup = function(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end
wrong = 0
exhausted = 0
init = function(args)
  local n = #proofs
  if n == 0 then n = #toks end
  share = math.floor(n / %(threads)d)
  first = tid * share
  k = 0
end
request = function()
  k = k + 1
  local h = {}
  if #proofs > 0 then
    local j = k
    if j > share then exhausted = exhausted + 1; j = share end
    h["Authorization"] = "DPoP " .. toks[1]
    h["DPoP"] = proofs[first + j]
    h["Host"] = "%(host)s"
  else
    h["Authorization"] = "Bearer " .. toks[(first + k - 1) %% #toks + 1]
  end
  return wrk.format("GET", "%(path)s", h)
end
response = function(status, headers, body)
  if status ~= %(expect)d then wrong = wrong + 1 end
end
done = function(summary, latency, requests)
  local w, e = 0, 0
  for _, t in ipairs(threads) do w = w + t:get("wrong"); e = e + t:get("exhausted") end
  io.write(string.format("wrong status: %%d\\nexhausted: %%d\\n", w, e))
end
"""


def lua(tmp, name, tokens_file, expect=200, proofs_file=None, host="bench.test", path=PATH):
    p = os.path.join(tmp, name + ".lua")
    with open(p, "w") as f:
        f.write(LUA % dict(tokens=tokens_file, threads=THREADS, expect=expect, host=host,
                           path=path,
                           load_proofs=('for l in io.lines("%s") do proofs[#proofs + 1] = l end'
                                        % proofs_file) if proofs_file else ""))
    return p


def write_lines(tmp, name, lines):
    p = os.path.join(tmp, name + ".txt")
    with open(p, "w") as f:
        f.write("\n".join(lines) + "\n")
    return p


def wrk(url, script, seconds, conc=None, threads=None):
    cmd = ["wrk", "-t%d" % (threads or THREADS), "-c%d" % (conc or CONC), "-d%ds" % seconds,
           "--timeout", "10s"]
    if script:
        cmd += ["-s", script]
    r = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 120)
    done = re.search(r"(\d+) requests in", r.stdout)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if not done or not rps:
        raise RuntimeError("wrk failed: %s %s" % (r.stdout[-400:], r.stderr[-400:]))
    wrong = re.search(r"^wrong status: (\d+)$", r.stdout, re.M)
    exh = re.search(r"^exhausted: (\d+)$", r.stdout, re.M)
    errs = re.search(r"Socket errors:.*", r.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", r.stdout)
    return dict(rps=float(rps.group(1)), done=int(done.group(1)),
                wrong=int(wrong.group(1)) if wrong else (int(non2xx.group(1)) if non2xx else 0),
                exhausted=int(exh.group(1)) if exh else 0,
                errors=errs.group(0) if errs else "")


class Row:
    def __init__(self, name, srv, script, path=PATH, expect=200, fetch_path=None,
                 scripts=None, ours=True):
        self.name, self.srv, self.script, self.path = name, srv, script, path
        self.expect, self.scripts, self.ours = expect, scripts, ours
        self.rps = self.cpu = None
        self.all_rps, self.all_cpu = [], []
        self.bad = 0
        self.notes = set()
        self.done = 0
        self.log_bytes = 0
        self.skip = None

    def run(self, rnd):
        script = self.scripts[rnd] if self.scripts else self.script
        mark = self.srv.log_size()
        t0 = B.cpu_ticks(self.srv)
        r = wrk(self.srv.url(self.path), script, SECONDS)
        t1 = B.cpu_ticks(self.srv)
        time.sleep(0.05)
        self.log_bytes += self.srv.log_size() - mark
        self.done += r["done"]
        ticks = sum(v - t0.get(pid, 0) for pid, v in t1.items())
        cpu = 1e6 * ticks / CLK_TCK / r["done"] if r["done"] else None
        self.all_rps.append(r["rps"])
        self.all_cpu.append(cpu)
        self.rps = max(self.rps or 0, r["rps"])
        if cpu is not None and (self.cpu is None or cpu < self.cpu):
            self.cpu = cpu
        if r["wrong"]:
            self.bad += r["wrong"]
            self.notes.add("answers not %d: NOT VALID" % self.expect)
        if r["exhausted"]:
            self.bad += r["exhausted"]
            self.notes.add("%d requests found no unused proof: NOT VALID (raise "
                           "BENCH_GOALS_DPOP_RPS)" % r["exhausted"])
        if r["errors"]:
            self.notes.add(r["errors"].strip())
        return r


# ---------------------------------------------------------------- configs

def conf_ours(url, cache=None, extra_loc="", extra=""):
    # the product's default refusal logging: the test harness's base
    # configuration logs every refusal in full, which its tests count
    return """AuthJWKSLogRefusals 5 60
%s
%s
<Location /api>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience %s
    AuthJWKSStartupWait 10
%s
    Require valid-user
</Location>
""" % ("AuthJWKSTokenCache %d" % cache if cache is not None else "", extra, url, ISS, AUD,
       extra_loc)


def conf_dpop(url, base):
    # /api: DPoP required, htu checked against dpop_base + path (the proofs
    # are minted for it; wrk sends Host: bench.test for mod_oauth2's sake);
    # /bearer: the same token as a Bearer token (DPoP off: cnf.jkt not checked)
    loc = """    AuthJWKSDPoP require
    AuthJWKSDPoPWindow 600
    AuthJWKSDPoPBaseURL %s""" % base
    return conf_ours(url, extra_loc=loc, extra="AuthJWKSDPoPReplayCache 262144") + """
<Location /bearer>
    AuthType jwks
    AuthName "api"
    AuthJWKSURL %s
    AuthJWKSIssuer %s
    AuthJWKSAudience %s
    AuthJWKSStartupWait 10
    Require valid-user
</Location>
""" % (url, ISS, AUD)


def conf_oauth2_dpop(url):
    # iat slack widened: the proofs are minted before the timed runs
    return B.conf_oauth2(url, "type=dpop&dpop.iat.slack.before=900&dpop.iat.slack.after=900"
                         "&dpop.expiry=900").replace(
        "    Require valid-user", "    OAuth2AcceptTokenIn header name=Authorization&type=DPoP\n"
        "    Require valid-user")


# ---------------------------------------------------------------- main

def rss_kb(srv):
    return sum(T.rss_kb(srv).values())


def instr_rows(url, toks, log):
    """{name: instructions per request} from callgrind (bench_instr), or
    (None, why)."""
    import bench_instr as I
    if not shutil.which("valgrind") or not shutil.which("setpriv"):
        return None, "valgrind or setpriv missing (Debian packages valgrind, util-linux)"
    if os.geteuid() != 0:
        return None, "needs root (httpd -X is started as www-data)"
    # the miss's signature check (ajw_crypt_verify with OpenSSL under it) is
    # counted in the first miss row and left out of the second: what a miss
    # costs beyond its signature, in a stable figure
    work = [("static", "/open/static.txt", None, None, None),
            ("hit RS256", PATH, [toks["RS256"][0]], None, None),
            ("hit ES256", PATH, [toks["ES256"][0]], None, None),
            ("miss RS256", PATH, toks["RS256"][:INSTR_N + 200], MISS_CACHE, None),
            ("miss RS256 beyond verify", PATH, toks["RS256"][:INSTR_N + 200], MISS_CACHE,
             "ajw_crypt_verify")]
    jobs = [(name, path, tk, cache, minus, n) for name, path, tk, cache, minus in work
            for n in (INSTR_N // 4, INSTR_N)]
    counts = {}

    def one(job):
        name, path, tk, cache, minus, n = job
        out_dir = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-goal-cg-", dir="/tmp"))
        os.chmod(out_dir, 0o1777)
        srv = H.Httpd(conf_ours(url, cache), mpm="prefork", loglevel="warn", name="bgcg")
        try:
            total, codes = I.counted_run(srv, path, tk, n, out_dir, minus=minus)
        finally:
            srv.cleanup()
            shutil.rmtree(out_dir, ignore_errors=True)
        return job, total, codes

    with CF.ThreadPoolExecutor(2) as ex:
        for (name, path, tk, cache, minus, n), total, codes in ex.map(one, jobs):
            counts[(name, n)] = total
            if codes != {200}:
                log.append("callgrind %s: answers %s, expected 200: NOT VALID" % (name, codes))
                counts[(name, "bad")] = True
    out = {}
    for name, *_ in work:
        out[name] = (counts[(name, INSTR_N)] - counts[(name, INSTR_N // 4)]) / float(
            INSTR_N - INSTR_N // 4)
        if counts.get((name, "bad")):
            out[name + " bad"] = True
    return out, None


def main():
    """Run the goals part; returns 1 if a row of ours was not valid."""
    t_start = time.monotonic()
    if not shutil.which("wrk"):
        print("\nbench (goals): wrk not found (Debian package wrk): part skipped")
        return 0
    load0 = os.getloadavg()[0]
    speed = T.openssl_speed()
    print("\ngoals part: wrk -t%d -c%d, %ds per run, best of %d rounds; event MPM 1 process x "
          "64 threads, prefork 8 children; bare verify (openssl speed, one core): %s" % (
              THREADS, CONC, SECONDS, ROUNDS,
              ", ".join("%s %.1f us" % (a, speed[a]) for a in ("RS256", "ES256") if a in speed)
              or "unavailable"), flush=True)
    keys = H.Keys("goal")
    import jwcrypto.jwk as jwk
    client = jwk.JWK.generate(kty="EC", crv="P-256")
    stranger = H.Keys("stranger")   # signs the unknown-kid tokens: in no JWKS
    _KEYS["RS256"] = (keys.rsa.get_op_key("sign"), keys.rsa.key_id)
    _KEYS["ES256"] = (keys.ec256.get_op_key("sign"), keys.ec256.key_id)
    _KEYS["DPOP"] = (client.get_op_key("sign"), None)
    _KEYS["XRS256"] = (stranger.rsa.get_op_key("sign"), None)
    exp = H.now() + 3600
    tmp = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-bench-goals-", dir="/tmp"))
    log = []
    idp = H.JWKSServer()
    doc = keys.jwks([keys.rsa, keys.ec256])
    for p in ("/jwks.json", "/jwks-flood.json"):
        idp.set(doc, p)
    url = idp.url("/jwks.json")
    o2dpop_srv = (Server(conf_oauth2_dpop(url), name="bg-o2dpop", ours=False)
                  if os.path.exists(B.OAUTH2_SO) else None)
    dpop_base = "http://bench.test:%d" % (o2dpop_srv.port if o2dpop_srv else 80)

    # --- tokens, minted once, on every core
    t0 = time.monotonic()
    toks = {}
    ctx = multiprocessing.get_context("fork")
    with CF.ProcessPoolExecutor(os.cpu_count() or 2, mp_context=ctx) as pool:
        toks["RS256"] = parallel(_mint_chunk, split(N_MISS, "RS256", exp), pool)
        toks["ES256"] = parallel(_mint_chunk, split(N_MISS, "ES256", exp), pool)
        t_rs = time.monotonic() - t0
        bound = mint_one("RS256", claims(exp, cnf={"jkt": client.thumbprint()}))
        ath = H.b64u(hashlib.sha256(bound.encode()).digest())
        n_proofs = DPOP_RPS * SECONDS
        proofs = []
        for rnd in range(ROUNDS + (1 if PROFILE else 0)):
            proofs.append(parallel(_proof_chunk, [
                (n_proofs // 8, dpop_base + PATH, ath, client.export_public(as_dict=True))] * 8,
                pool))
        mem = parallel(_mint_chunk, split(3800, "RS256", exp), pool)
        unknown = parallel(_mint_chunk, split(N_FLOOD, "RS256", exp, "nokid"), pool)
    bad = []
    for t in toks["RS256"][:N_FLOOD]:
        h, p, s = t.split(".")
        raw = bytearray(H.b64u_decode(s))
        raw[-1] ^= 0x5a
        raw[10] ^= 0x5a
        bad.append("%s.%s.%s" % (h, p, H.b64u(bytes(raw))))
    flood = [x for pair in zip(bad, unknown) for x in pair]
    mint_s = time.monotonic() - t0
    tok_len = sum(len(t) for t in mem) / len(mem)
    print("  minted %d RS256 + %d ES256 distinct tokens (RS256 %.0f bytes), %d DPoP proofs, "
          "%d memory and %d flood tokens in %.1f s" % (
              N_MISS, N_MISS, sum(len(t) for t in toks["RS256"][:100]) / 100.0,
              sum(len(p) for p in proofs), len(mem), len(flood), mint_s), flush=True)

    f = {k: write_lines(tmp, "tok-" + k, v) for k, v in toks.items()}
    f1 = {k: write_lines(tmp, "one-" + k, v[:1]) for k, v in toks.items()}
    s_static = lua(tmp, "static", f1["RS256"], path="/open/static.txt")
    s_hit = {a: lua(tmp, "hit-" + a, f1[a]) for a in ("RS256", "ES256")}
    s_miss = {a: lua(tmp, "miss-" + a, f[a]) for a in ("RS256", "ES256")}
    f_bound = write_lines(tmp, "bound", [bound])
    s_bearer = lua(tmp, "bearer", f_bound, path="/bearer/static.txt")
    s_dpop = [lua(tmp, "dpop%d" % r, f_bound, proofs_file=write_lines(tmp, "proofs%d" % r, p))
              for r, p in enumerate(proofs)]
    s_flood = lua(tmp, "flood", write_lines(tmp, "flood", flood), expect=401)

    idp_tls = None
    servers, skipped, rows = [], [], []
    check_toks = {"RS256": toks["RS256"][0], "ES256": toks["ES256"][0]}

    def start(extra, name, mpm="event", ours=True, check=True):
        srv = Server(extra, name="bg-" + name.replace(" ", "")[:20], mpm=mpm, ours=ours)
        chk = (lambda s: B.check_protected(s, check_toks)) if check else (lambda s: None)
        return B.start_checked(srv, name, ours, chk, servers, skipped)

    result = {}
    try:
        # every server started at once (four at a time): start-up and the
        # first fetches are not timed
        specs = [("hit", conf_ours(url), "mod_auth_jwks default", "event", True, True),
                 ("miss", conf_ours(url, MISS_CACHE), "mod_auth_jwks cache %d" % MISS_CACHE,
                  "event", True, True),
                 ("flood", conf_ours(idp.url("/jwks-flood.json")), "mod_auth_jwks flood",
                  "event", True, True),
                 ("dpop", conf_dpop(url, dpop_base), "mod_auth_jwks DPoP", "event", True, False),
                 ("pf hit", conf_ours(url), "mod_auth_jwks prefork default", "prefork", True,
                  True),
                 ("pf miss", conf_ours(url, MISS_CACHE), "mod_auth_jwks prefork cache %d" %
                  MISS_CACHE, "prefork", True, True)]
        # mod_oauth2's default verify-result cache is not run here: on distinct
        # tokens it is always slower than expiry=0 (its shm cache thrashes; part
        # 1b, BENCH_PART1B=1, shows both), so it cannot be the better peer
        if os.path.exists(B.OAUTH2_SO):
            specs.append(("mod_oauth2 expiry=0", B.conf_oauth2(url, "expiry=0"),
                          "mod_oauth2 expiry=0", "event", False, True))
        else:
            skipped.append(("mod_oauth2", "%s not installed (libapache2-mod-oauth2)" %
                            B.OAUTH2_SO))
        if os.path.exists(B.OPENIDC_SO):
            tls_dir = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-bg-ca-", dir=tmp))
            ca = H.TestCA(tls_dir)
            idp_tls = H.JWKSServer(tls=ca)
            idp_tls.set(doc, "/jwks.json")
            specs.append(("mod_auth_openidc", B.conf_openidc(idp_tls.url("/jwks.json"),
                                                            ca.ca_file),
                          "mod_auth_openidc", "event", False, True))
        else:
            skipped.append(("mod_auth_openidc", "%s not installed" % B.OPENIDC_SO))

        def start_spec(spec):
            key, extra, name, mpm, ours, check = spec
            return key, start(extra, name, mpm=mpm, ours=ours, check=check)

        def start_o2dpop():
            return B.start_checked(o2dpop_srv, "mod_oauth2 DPoP", False, lambda s: None,
                                   servers, skipped) if o2dpop_srv else None

        result["flood_t0"] = time.monotonic()      # the flood server's life starts about here
        with CF.ThreadPoolExecutor(4) as ex:
            f_o2 = ex.submit(start_o2dpop)
            started = dict(ex.map(start_spec, specs))
            o2dpop = f_o2.result()
        hit, miss, flood_srv, dpop = (started[k] for k in ("hit", "miss", "flood", "dpop"))
        pf_hit, pf_miss = started["pf hit"], started["pf miss"]
        peers = [(k, started[k]) for k in ("mod_oauth2 expiry=0", "mod_auth_openidc")
                 if started.get(k)]

        # DPoP: one proof by hand for each server before timing (a spare
        # proof, not one of the timed ones)
        import requests
        spare = _proof_chunk((2, dpop_base + PATH, ath, client.export_public(as_dict=True)))
        for s, name, p in ((dpop, "mod_auth_jwks", spare[0]), (o2dpop, "mod_oauth2", spare[1])):
            if not s:
                continue
            r = requests.get(s.url(PATH), headers={"Authorization": "DPoP " + bound, "DPoP": p,
                                                   "Host": "bench.test"}, timeout=15)
            rb = (requests.get(s.url("/bearer/static.txt"),
                               headers={"Authorization": "Bearer " + bound}, timeout=15).status_code
                  if s is dpop else 200)
            if r.status_code != 200 or rb != 200:
                why = "DPoP request answered %d%s (%s)" % (
                    r.status_code, ", bound token as Bearer %d" % rb if rb != 200 else "",
                    s.log_tail(3).strip()[-400:])
                if s is dpop:
                    raise RuntimeError("mod_auth_jwks DPoP: " + why)
                skipped.append(("mod_oauth2 DPoP", why))
                o2dpop = None

        R = {}

        def add(key, *a, **kw):
            R[key] = Row(*a, **kw)
            rows.append(R[key])

        add("static", "static, unprotected", hit, s_static, path="/open/static.txt")
        for a in ("RS256", "ES256"):
            add("hit " + a, "hit %s, default cache" % a, hit, s_hit[a])
        for a in ("RS256", "ES256"):
            add("miss " + a, "miss %s, %d tokens, cache %d" % (a, N_MISS, MISS_CACHE), miss,
                s_miss[a])
            for name, s in peers:
                add("peer %s %s" % (name, a), "%s, miss %s" % (name, a), s, s_miss[a],
                    ours=False)
        add("bearer", "bound token as Bearer (hit)", dpop, s_bearer, path="/bearer/static.txt")
        add("dpop", "DPoP, fresh proof per request", dpop, None, scripts=s_dpop)
        if o2dpop:
            add("o2dpop", "mod_oauth2 DPoP, fresh proof", o2dpop, None, scripts=s_dpop,
                ours=False)
        add("flood", "invalid flood (bad sig + unknown kid)", flood_srv, s_flood, expect=401)
        add("pf static", "prefork static", pf_hit, s_static, path="/open/static.txt")
        for a in ("RS256", "ES256"):
            add("pf hit " + a, "prefork hit %s" % a, pf_hit, s_hit[a])
        for a in ("RS256", "ES256"):
            add("pf miss " + a, "prefork miss %s" % a, pf_miss, s_miss[a])

        # no warm-up pass: every server answered its checks (JWKS loaded), the
        # event child starts its 64 threads at once, and each row keeps its
        # best round
        statics = []
        result["flood_fetches_before"] = idp.count("/jwks-flood.json")
        for rnd in range(ROUNDS):
            order = rows if rnd % 2 == 0 else rows[::-1]
            for row in order:
                if row.skip:
                    continue
                try:
                    r = row.run(rnd)
                except Exception as e:  # noqa: BLE001
                    if row.ours:
                        raise
                    row.skip = str(e)
                    continue
                if row is R["static"]:
                    statics.append((r["rps"], row.all_cpu[-1]))
                print("  round %d  %-44s %9.0f req/s %6s us cpu/req%s" % (
                    rnd + 1, row.name, r["rps"],
                    "%.0f" % row.all_cpu[-1] if row.all_cpu[-1] is not None else "?",
                    "  " + "; ".join(sorted(row.notes)) if row.notes else ""), flush=True)
        # once more at the end, for the spread only: the ratios compare each
        # row's best of ROUNDS with the static row's best of as many
        st_row = R["static"]
        kept = (st_row.rps, st_row.cpu)
        r = st_row.run(0)
        statics.append((r["rps"], st_row.all_cpu[-1]))
        st_row.rps, st_row.cpu = kept
        result["statics"] = statics
        if PROFILE:
            result["profile"] = profile_rows(R, tmp, s_dpop[-1] if len(s_dpop) > ROUNDS
                                             else None)
        else:
            result["profile"] = (None, "BENCH_GOALS_PROFILE=0")
        result["flood_fetches"] = idp.count("/jwks-flood.json")
        result["flood_life"] = time.monotonic() - result["flood_t0"]

        # --- memory: 800 then 3800 distinct tokens in a big cache
        msrv = start(conf_ours(url, MEM_CACHE), "mod_auth_jwks memory", check=False)
        wrk(msrv.url("/open/static.txt"), s_static, 1, conc=128)       # every thread busy
        s_m800 = lua(tmp, "mem800", write_lines(tmp, "mem800", mem[:800]))
        s_m3800 = lua(tmp, "mem3800", write_lines(tmp, "mem3800", mem[800:]))
        r1 = wrk(msrv.url(PATH), s_m800, 1)
        time.sleep(0.3)
        rss1 = rss_kb(msrv)
        r2 = wrk(msrv.url(PATH), s_m3800, 2)
        time.sleep(0.3)
        rss2 = rss_kb(msrv)
        result["mem"] = (rss1, rss2, tok_len, r1["done"], r2["done"], r1["wrong"] + r2["wrong"])
        # prefork RSS per child with a full cache (the default cache, filled
        # with the memory tokens through every child)
        before = T.rss_kb(pf_hit)
        s_pf = lua(tmp, "pffill", write_lines(tmp, "pffill", mem[:1024]))
        wrk(pf_hit.url(PATH), s_pf, 3, conc=16)
        after = T.rss_kb(pf_hit)
        result["pf_rss"] = (before, after)
        for s in servers:
            s.cleanup()
        servers.clear()
        timed_s = time.monotonic() - t_start

        # --- callgrind
        if INSTR:
            t1 = time.monotonic()
            result["instr"] = instr_rows(url, toks, log)
            result["instr_s"] = time.monotonic() - t1
        else:
            result["instr"] = (None, "BENCH_GOALS_INSTR=0")
    finally:
        for s in servers:
            s.cleanup()
        if o2dpop_srv and o2dpop_srv not in servers:
            o2dpop_srv.cleanup()
        idp.close()
        if idp_tls:
            idp_tls.close()
        shutil.rmtree(tmp, ignore_errors=True)

    rc = report(R, rows, result, speed, skipped, log, tok_len, mint_s, t_rs)
    print("  (goals part took %.0f s: minting %.0f s, timed rows and memory %.0f s%s; load "
          "average %.1f at its start, %.1f at its end on %d CPUs: anything else running "
          "shows in the static spread)" % (
              time.monotonic() - t_start, mint_s, timed_s - mint_s,
              ", callgrind %.0f s" % result["instr_s"] if "instr_s" in result else "",
              load0, os.getloadavg()[0], os.cpu_count() or 0))
    return rc


def perf_usable():
    """None when `perf record` can sample this machine's processes, else why not."""
    if not shutil.which("perf"):
        return "perf not found (Debian package linux-perf)"
    if os.geteuid() != 0:
        return "needs root (perf attaches to the httpd children)"
    try:
        r = subprocess.run(["perf", "record", "-F", str(PROFILE_HZ), "-o", "/dev/null", "--",
                            "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return "perf record failed: %s" % e
    return None if r.returncode == 0 else "perf record failed: %s" % r.stderr.strip()[-200:]


def profile_split(report_text):
    """{group: share of the samples} from `perf report --sort dso -n` text."""
    counts = {g: 0 for g, _ in PROFILE_GROUPS}
    total = 0
    for line in report_text.splitlines():
        f = line.split()
        if line.startswith("#") or len(f) < 3 or not f[0].endswith("%"):
            continue
        try:
            n = int(f[1])
        except ValueError:
            continue
        dso = f[2]
        total += n
        for g, marks in PROFILE_GROUPS:
            if any(m and m in dso for m in marks) or marks == ("",):
                counts[g] += n
                break
    return {g: c / float(total) for g, c in counts.items()} if total else {}


def profile_rows(R, tmp, dpop_script):
    """({row key: {"cpu": us per request, group: us per request}}, None) or
    (None, why): one more run of each profiled row under perf record."""
    why = perf_usable()
    if why:
        return None, why
    out = {}
    for key in ("static", "hit RS256", "miss RS256", "hit ES256", "miss ES256", "bearer",
                "dpop"):
        row = R.get(key)
        if not row or row.skip or (key == "dpop" and not dpop_script):
            continue
        srv = row.srv
        data = os.path.join(tmp, "perf-%s.data" % key.replace(" ", "-"))
        pids = [str(p) for p in srv.children()]
        rec = subprocess.Popen(["perf", "record", "-F", str(PROFILE_HZ), "-o", data, "-p",
                                ",".join(pids), "--", "sleep", str(SECONDS)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = B.cpu_ticks(srv)
        r = wrk(srv.url(row.path), dpop_script if key == "dpop" else row.script, SECONDS)
        t1 = B.cpu_ticks(srv)
        try:
            rec.wait(timeout=SECONDS + 60)
        except subprocess.TimeoutExpired:
            rec.kill()
            return None, "perf record did not end"
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "-n", "--sort",
                              "dso", "--stdio"], capture_output=True, text=True, timeout=120)
        share = profile_split(rep.stdout)
        if not r["done"] or not share or r["wrong"] or r.get("exhausted"):
            return None, "profile run of %s not valid (%d answers, %d wrong)" % (
                key, r["done"], r["wrong"])
        ticks = sum(v - t0.get(pid, 0) for pid, v in t1.items())
        cpu = 1e6 * ticks / CLK_TCK / r["done"]
        out[key] = dict({g: cpu * share[g] for g in share}, cpu=cpu)
    return out, None


def fmt(x, f="%.0f"):
    return f % x if x is not None else "?"


def report(R, rows, result, speed, skipped, log, tok_len, mint_s, t_rs):
    print("\ngoals rows, best of %d rounds (req/s: best round; cpu: least CPU us per request "
          "over the rounds; added: minus the static row of the same MPM):" % ROUNDS)
    hdr = "  %-46s %9s %8s %8s %8s  %s" % ("row", "req/s", "x static", "cpu us", "added", "notes")
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    for row in rows:
        base = R["pf static"] if row.name.startswith("prefork") else R["static"]
        if row.skip:
            print("  %-46s SKIPPED: %s" % (row.name, row.skip[:200]))
            continue
        print("  %-46s %9.0f %8.2f %8s %8s  %s" % (
            row.name, row.rps or 0, (row.rps or 0) / base.rps if base.rps else 0,
            fmt(row.cpu), "%+.0f" % (row.cpu - base.cpu) if row is not base and row.cpu
            is not None and base.cpu is not None else "-", "; ".join(sorted(row.notes))))
    st = result["statics"]
    print("\n  static baseline over the run (first ... last): %s req/s, %s us cpu/req "
          "(req/s first to last %+.0f%%; ratio differences smaller than that spread are noise)"
          % (" ".join("%.0f" % r for r, _ in st), " ".join(fmt(c) for _, c in st),
             100.0 * (st[-1][0] / st[0][0] - 1) if st and st[0][0] else 0))
    cpus = [c for _, c in st if c is not None]
    noise = max(cpus) - min(cpus) if cpus else 0
    for name, why in skipped:
        print("  SKIPPED %s: %s" % (name, why))
    for ln in log:
        print("  " + ln)
    prof, why_p = result.get("profile", (None, "not run"))
    if prof:
        groups = [g for g, _ in PROFILE_GROUPS]
        print("\n  where the CPU goes (perf record %d Hz over one more run of each row; us per "
              "request, the row's CPU split as its samples fell):" % PROFILE_HZ)
        print("  %-44s %8s" % ("row", "cpu us") + "".join(" %15s" % g for g in groups))
        for key, v in prof.items():
            print("  %-44s %8.1f" % (R[key].name, v["cpu"])
                  + "".join(" %15.1f" % v.get(g, 0) for g in groups))
    else:
        print("\n  where the CPU goes: not profiled (%s)" % why_p)

    G = []   # (goal, target, measured, met, from)

    def goal(name, target, measured, met, src):
        G.append((name, target, measured, "n/a" if met is None else ("met" if met else "NOT MET"),
                  src))

    def valid(*keys):
        return all(R[k].bad == 0 and not R[k].skip for k in keys if k in R)

    static = R["static"]
    instr, why_i = result["instr"]
    hit_added = {}
    for a in ("RS256", "ES256"):
        h = R["hit " + a]
        ratio = h.rps / static.rps
        hit_added[a] = h.cpu - static.cpu
        goal("1 cached hit %s: req/s / static" % a, ">= 0.92", "%.3f" % ratio,
             ratio >= 0.92 and valid("hit " + a),
             "%.0f / %.0f req/s; cpu %.0f vs %.0f us (%+.0f)" % (
                 h.rps, static.rps, h.cpu, static.cpu, hit_added[a]))
    for a in ("RS256", "ES256"):
        if instr:
            add_i = instr["hit " + a] - instr["static"]
            goal("1 cached hit %s: instructions over static" % a, "<= 20,000", "%+.0f" % add_i,
                 add_i <= 20000 and not instr.get("hit %s bad" % a),
                 "callgrind: %.0f vs %.0f per request (N %d vs %d)" % (
                     instr["hit " + a], instr["static"], INSTR_N // 4, INSTR_N))
        else:
            goal("1 cached hit %s: instructions over static" % a, "<= 20,000", "not measured",
                 None, why_i)
    for a in ("RS256", "ES256"):
        m = R["miss " + a]
        added = m.cpu - static.cpu
        sig = speed.get(a)
        if sig is not None:
            left = added - sig
            # a hit measured below the static row (noise) counts as +0
            tgt = max(hit_added[a], 0) + 10
            goal("2 miss %s: cpu over static - verify" % a, "<= hit +10 = %.0f us" % tgt,
                 "%.0f us" % left, left <= tgt and valid("miss " + a),
                 "%.0f - %.0f us = %+.0f, minus openssl verify %.1f us; hit %+.0f us" % (
                     m.cpu, static.cpu, added, sig, hit_added[a]))
        else:
            goal("2 miss %s: cpu over static - verify" % a, "<= hit + 10 us", "not measured",
                 None, "openssl speed unavailable")
        peer_rows = [r for k, r in R.items() if k.startswith("peer ") and k.endswith(a)
                     and not r.skip and r.bad == 0]
        if peer_rows:
            best = max(peer_rows, key=lambda r: r.rps)
            goal("2 miss %s: ours / better peer req/s" % a, ">= 1.5", "%.2f" % (m.rps / best.rps),
                 m.rps / best.rps >= 1.5 and valid("miss " + a),
                 "%.0f vs %.0f req/s (%s)" % (m.rps, best.rps, best.name.split(", miss")[0]))
        else:
            goal("2 miss %s: ours / better peer req/s" % a, ">= 1.5", "not measured", None,
                 "no peer installed / valid")
        if instr and "miss " + a in instr:
            goal("2 miss %s: instructions over static" % a, "(information)",
                 "%+.0f" % (instr["miss " + a] - instr["static"]), None,
                 "callgrind; OpenSSL takes generic code paths under valgrind")
        if instr and "miss %s beyond verify" % a in instr:
            beyond = instr["miss %s beyond verify" % a] - instr["hit " + a]
            goal("2 miss %s: instructions beyond the signature over a hit" % a,
                 "(information)", "%+.0f" % beyond, None,
                 "callgrind: %.0f per miss without ajw_crypt_verify and its callees, vs %.0f "
                 "per hit" % (instr["miss %s beyond verify" % a], instr["hit " + a]))
        if prof and "miss " + a in prof and "hit " + a in prof:
            pm, ph = prof["miss " + a], prof["hit " + a]
            d = {g: pm.get(g, 0) - ph.get(g, 0) for g, _ in PROFILE_GROUPS}
            goal("2 miss %s: where it goes over a hit (perf)" % a, "(information)",
                 "module %+.1f us" % d["module"], None,
                 "per request, miss vs hit run: module %+.1f, libcrypto %+.1f (openssl "
                 "verify %s us), httpd+APR+libc %+.1f, kernel %+.1f; cpu %.0f vs %.0f us" % (
                     d["module"], d["libcrypto"], fmt(sig, "%.1f"), d["httpd+APR+libc"],
                     d["kernel"], pm["cpu"], ph["cpu"]))
        if peer_rows and sig is not None and static.cpu:
            # what req/s a miss would reach if it cost the static file plus its
            # signature and nothing else (req/s taken as inversely proportional
            # to httpd's CPU per request), over the better peer's
            ceil = static.rps * static.cpu / (static.cpu + sig) / best.rps
            goal("2 miss %s: ours / better peer if a miss cost only its signature" % a,
                 "(information)", "%.2f" % ceil, None,
                 "static %.0f req/s x %.0f / (%.0f + %.1f) us, vs %.0f req/s: the most the "
                 "ratio can read on this machine" % (static.rps, static.cpu, static.cpu, sig,
                                                     best.rps))
    d, b = R["dpop"], R["bearer"]
    p256 = speed.get("ES256")
    if p256 is not None:
        tgt = b.cpu + p256 + 20
        goal("3 DPoP: cpu per request", "<= bearer + P-256 + 20 = %.0f us" % tgt,
             "%.0f us" % d.cpu, d.cpu <= tgt and valid("dpop", "bearer"),
             "bearer hit %.0f us + verify %.1f us + 20; %d requests, %d not 200/unused proof" % (
                 b.cpu, p256, d.done, d.bad))
    if prof and "dpop" in prof and "bearer" in prof:
        pd, pb = prof["dpop"], prof["bearer"]
        dd = {g: pd.get(g, 0) - pb.get(g, 0) for g, _ in PROFILE_GROUPS}
        goal("3 DPoP: where it goes over Bearer (perf)", "(information)",
             "module %+.1f us" % dd["module"], None,
             "per request, DPoP vs Bearer run: module %+.1f, libcrypto %+.1f (openssl P-256 "
             "verify %s us), httpd+APR+libc %+.1f, kernel %+.1f; cpu %.0f vs %.0f us" % (
                 dd["module"], dd["libcrypto"], fmt(p256, "%.1f"), dd["httpd+APR+libc"],
                 dd["kernel"], pd["cpu"], pb["cpu"]))
    if "o2dpop" in R and not R["o2dpop"].skip and R["o2dpop"].bad == 0:
        o = R["o2dpop"]
        goal("3 DPoP: ours / mod_oauth2 req/s", ">= 1.5", "%.2f" % (d.rps / o.rps),
             d.rps / o.rps >= 1.5 and valid("dpop"), "%.0f vs %.0f req/s" % (d.rps, o.rps))
    else:
        o = R.get("o2dpop")
        goal("3 DPoP: ours / mod_oauth2 req/s", ">= 1.5", "not measured", None,
             "mod_oauth2 DPoP skipped: %s" % (
                 (o.skip or "%d wrong answers" % o.bad) if o else
                 next((w for n, w in skipped if n.startswith("mod_oauth2")), "not run"))[:160])
    rss1, rss2, tl, n1, n2, wrong = result["mem"]
    per = (rss2 - rss1) * 1024.0 / 3000 - tl
    goal("4 memory: RSS per cached token - token", "<= 1024 B", "%.0f B" % per,
         per <= 1024 and wrong == 0,
         "RSS %d -> %d KB for 3000 tokens of %.0f B (%d + %d requests%s)" % (
             rss1, rss2, tl, n1, n2, ", %d not 200: NOT VALID" % wrong if wrong else ""))
    fl = R["flood"]
    goal("5 refusals: flood req/s / static", ">= 0.90", "%.3f" % (fl.rps / static.rps),
         fl.rps / static.rps >= 0.90 and valid("flood"),
         "%.0f vs %.0f req/s; cpu %.0f us" % (fl.rps, static.rps, fl.cpu))
    # Unknown kids may wake one refresh per AuthJWKSMinRefreshInterval (30 s by
    # default: the IdP may have rotated); the flood server lives through every
    # round, so the fetches allowed are the initial one plus one per 30 s.
    allowed = 1 + int(result["flood_life"] // 30)
    goal("5 refusals: JWKS fetches (server's life)", "<= 1 + 1 per 30 s = %d" % allowed,
         "%d" % result["flood_fetches"], result["flood_fetches"] <= allowed,
         "%d before the timed runs, %d during them (%d refused requests) over a life of %.0f s"
         % (result["flood_fetches_before"], result["flood_fetches"] -
            result["flood_fetches_before"], fl.done, result["flood_life"]))
    goal("5 refusals: error-log bytes per refusal", "(information)",
         "%.0f B" % (fl.log_bytes / float(fl.done or 1)), None,
         "%d bytes over %d requests" % (fl.log_bytes, fl.done))
    ps = R["pf static"]
    pf_hit_added = {}
    for a in ("RS256", "ES256"):
        h = R["pf hit " + a]
        pf_hit_added[a] = h.cpu - ps.cpu
        goal("6 prefork hit %s: req/s / static" % a, ">= 0.92", "%.3f" % (h.rps / ps.rps),
             h.rps / ps.rps >= 0.92 and valid("pf hit " + a),
             "%.0f / %.0f req/s; cpu %.0f vs %.0f us (%+.0f)" % (h.rps, ps.rps, h.cpu, ps.cpu,
                                                                pf_hit_added[a]))
    for a in ("RS256", "ES256"):
        m = R["pf miss " + a]
        if a in speed:
            left = m.cpu - ps.cpu - speed[a]
            tgt = max(pf_hit_added[a], 0) + 10
            goal("6 prefork miss %s: cpu over static - verify" % a,
                 "<= hit +10 = %.0f us" % tgt, "%.0f us" % left,
                 left <= tgt and valid("pf miss " + a),
                 "%.0f - %.0f us = %+.0f, minus %.1f us; %.0f req/s (%.2f x static)" % (
                     m.cpu, ps.cpu, m.cpu - ps.cpu, speed[a], m.rps, m.rps / ps.rps))
    before, after = result["pf_rss"]
    if after:
        goal("6 prefork: RSS per child, full cache", "(information)",
             "%.1f MB" % (sum(after.values()) / 1024.0 / len(after)),
             None, "%d children, %s KB (before filling: %.1f MB avg)" % (
                 len(after), "/".join(str(v) for v in sorted(after.values())),
                 sum(before.values()) / 1024.0 / max(1, len(before))))

    print("\ngoals (one run, side by side; 'NOT MET' is printed, never hidden):")
    hdr = "  %-47s %-33s %-12s %-8s %s" % ("goal", "target", "measured", "met", "from")
    print(hdr)
    print("  " + "-" * (len(hdr) + 60))
    for g in G:
        print("  %-47s %-33s %-12s %-8s %s" % g)
    print("  (static baseline cpu noise over the run: %.0f us; tokens minted in %.0f s, "
          "RS256 part %.0f s)" % (noise, mint_s, t_rs))
    return 1 if any(R[k].bad for k in R if R[k].ours) else 0
