"""make bench, part 1b: mod_auth_jwks and its peers on distinct and invalid
tokens, side by side in one run.

Part 1 (bench.py) repeats one token. This part drives every
module with wrk and the Lua token cycling of part 2 (bench_tokens.py: same
BENCH_CONCURRENCY, BENCH_TOKENS_SECONDS, BENCH_TOKENS_ROUNDS interleaved and
reversed every other round, CPU per request from the httpd children's /proc
stat; each row keeps its best req/s and its least CPU over the rounds) on the
two workloads that need many tokens:

  distinct   2000 distinct valid RS256 tokens, rotating. mod_auth_jwks runs
             its default config (AuthJWKSTokenCache 4096 under event, which holds
             them all: after the first pass they are cache hits); every
             answer must be 200
  flood      invalid flood of 2000 tokens, alternating: a bad signature (a
             valid token with the signature's last characters replaced) and
             an unknown kid (a fresh random kid per token, signed by an RSA
             key that is in no JWKS, so no refetch can make it valid);
             every answer must be 401

for mod_auth_jwks (default config), mod_oauth2 (default, and expiry=0) and
mod_auth_openidc, each configured exactly as in part 1 (bench.conf_*,
bench.Server, the same RSA-2048 + P-256 JWKS, mod_auth_openidc through the
HTTPS twin of the JWKS server) and checked first by bench.check_protected,
plus one distinct token answered 200 and one token of each invalid kind
answered 401. The wrk script counts every answer whose status is not the
expected one. A peer that is not installed, fails a check or answers wrongly
while timed is reported as skipped with the reason; a wrong answer from
mod_auth_jwks makes the bench exit 1.

Per row: req/s, x static (a wrk run of the unprotected file, with the same
status-counting script), httpd CPU us per request, auth us (that minus the
static row's), the JWKS fetches counted by the JWKS servers during the
least-CPU run and the error-log lines written during it (requests still in
flight when wrk stops are waited for), and for mod_auth_jwks "ours / better
peer": its req/s over the best peer row's, and the least CPU a peer row adds
over what ours adds (when ours adds less than the static row's CPU spread
over the rounds, e.g. a 401 costing less than the file, the ratio of the
whole CPU per request instead, marked >=: a lower bound). The JWKS servers
run in this process, so the CPU a refetch costs them is not in the httpd
column; it shows in req/s.

Opt-in (BENCH_PART1B=1; the goals part, bench_goals.py, measures the miss
and invalid-flood goals against the peers in the default run).
"""
import collections
import os
import re
import secrets
import shutil
import tempfile
import time

import bench as B
import bench_tokens as T
import harness as H

N_DISTINCT = 2000
N_FLOOD = 2000  # half bad signature, half unknown kid


class Row:
    def __init__(self, workload, group, mode, srv, path, script, expect, ours):
        self.workload, self.group, self.mode = workload, group, mode
        self.srv, self.path, self.script, self.expect, self.ours = srv, path, script, expect, ours
        self.rps = self.cpu = None
        self.fetches = self.logged = self.done = 0
        self.log_kinds = []      # [(kind, lines)] of the least-CPU run, most common first
        self.wrong = 0           # over every round
        self.errors = set()      # wrk socket-error lines
        self.all_cpu = []
        self.all_rps = []
        self.skip = None         # why a peer row is dropped

    @property
    def name(self):
        return "%s %s" % (self.group, self.mode)


def run_row(row, fetches):
    srv = row.srv
    f0 = fetches()
    mark = srv.log_size()
    t0 = T.cpu_ticks(srv)
    r = T.wrk_run(srv.url(row.path), row.script, T.SECONDS)
    # requests still in flight when wrk stops (a peer waiting on a JWKS
    # fetch) finish now: count their CPU, fetches and log lines here, not in
    # the next row on this server
    size, deadline = srv.log_size(), time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if srv.log_size() == size:
            break
        size = srv.log_size()
    t1 = T.cpu_ticks(srv)
    n_fetch = fetches() - f0
    ticks = sum(v - t0.get(pid, 0) for pid, v in t1.items())
    cpu = 1e6 * ticks / T.CLK_TCK / r["done"] if r["done"] else None
    logged = [ln for ln in srv.log_since(mark).splitlines() if ln.strip()]
    row.all_cpu.append(cpu)
    if r["wrong"] is None:
        raise RuntimeError("wrk printed no status count (script %s)" % row.script)
    row.wrong += r["wrong"]
    if r["errors"]:
        row.errors.add(r["errors"].strip())
    row.all_rps.append(r["rps"])
    row.rps = max(row.rps or 0, r["rps"])
    if row.cpu is None or (cpu is not None and cpu < row.cpu):
        row.cpu, row.done = cpu, r["done"]
        row.fetches, row.logged = n_fetch, len(logged)
        kinds = collections.Counter(log_kind(ln) for ln in logged)
        row.log_kinds = kinds.most_common(2)


def log_kind(line):
    """An error-log line without its time, pid and client, numbers and hex
    runs (kids, ages, addresses) as N: [module:level] message, 170 chars."""
    m = re.match(r"^\[[^\]]*\] (\[[^\]]*\]) (?:\[pid [^\]]*\] )?(?:\[client [^\]]*\] )?(.*)$",
                 line)
    text = "%s %s" % m.groups() if m else line
    return re.sub(r"\b[0-9A-Fa-f]*[0-9][0-9A-Fa-f]*\b", "N", text)[:170]


def ratio_text(ours, peers, noise):
    """'ours / better peer' for one workload: req/s ours over the peer row
    with the most req/s; CPU the least auth us of a peer row over ours."""
    if not peers:
        return "no peer measured"
    best_rps = max(peers, key=lambda r: r.rps)
    best_cpu = min(peers, key=lambda r: r.auth)
    rps = "%.2fx req/s (vs %s)" % (ours.rps / best_rps.rps, best_rps.name)
    cpu = "%s less CPU added (vs %s)" % (
        B.cpu_ratio(best_cpu.auth, ours.auth, noise, best_cpu.cpu, ours.cpu), best_cpu.name)
    return rps + ", " + cpu


def main():
    """Returns (exit status, goal entries for bench.py's summary)."""
    if not shutil.which("wrk"):
        print("\nbench part 1b (peers on distinct and invalid tokens): wrk not found "
              "(Debian package wrk): part skipped")
        return 0, []
    import jwcrypto.jwk as jwk
    keys = H.Keys("peers")
    stray = jwk.JWK.generate(kty="RSA", size=2048, kid="stray")  # in no JWKS
    idp = H.JWKSServer()
    doc = keys.jwks([keys.rsa, keys.ec256])  # RSA + P-256 only: see bench.py (cjose)
    idp.set(doc, B.JWKS_PATH)
    url = idp.url(B.JWKS_PATH)
    tls_dir = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-bench-ca-", dir="/tmp"))
    tmp = H.make_world_readable_dir(tempfile.mkdtemp(prefix="ajw-bench-peers-", dir="/tmp"))
    ca = H.TestCA(tls_dir)
    idp_tls = H.JWKSServer(tls=ca)
    idp_tls.set(doc, B.JWKS_PATH)

    def fetches():
        return idp.total() + idp_tls.total()

    exp = H.now() + 3600
    distinct = [H.mint(H.std_claims(exp=exp), keys.rsa, "RS256") for _ in range(N_DISTINCT)]
    bad_sig = [t[:-6] + ("AAAAAA" if not t.endswith("AAAAAA") else "BBBBBB")
               for t in distinct[:N_FLOOD // 2]]
    unknown = [H.mint(H.std_claims(exp=exp), stray, "RS256", kid="nokid-" + secrets.token_hex(8))
               for _ in range(N_FLOOD // 2)]
    flood = [t for pair in zip(bad_sig, unknown) for t in pair]
    check_tokens = {"RS256": H.mint(H.std_claims(exp=exp), keys.rsa, "RS256"),
                    "ES256": H.mint(H.std_claims(exp=exp), keys.ec256, "ES256")}
    scripts = {
        "static": T.lua_script(os.path.join(tmp, "static.lua"), None, 200),
        "distinct": T.lua_script(os.path.join(tmp, "distinct.lua"), distinct, 200),
        "flood": T.lua_script(os.path.join(tmp, "flood.lua"), flood, 401),
    }
    # (key, label, expected status, number of the workload in the summary)
    workloads = [("distinct", "%d distinct RS256, rotating" % N_DISTINCT, 200, 3),
                 ("flood", "invalid flood (1/2 bad sig, 1/2 random kid)", 401, 4)]
    setups = [
        ("mod_auth_jwks", "default (cache 4096)", B.conf_jwks(url), True, None),
        ("mod_oauth2", "result cache (default)", B.conf_oauth2(url), False, B.OAUTH2_SO),
        ("mod_oauth2", "expiry=0", B.conf_oauth2(url, "expiry=0"), False, B.OAUTH2_SO),
        ("mod_auth_openidc", "oauth20", B.conf_openidc(idp_tls.url(B.JWKS_PATH), ca.ca_file),
         False, B.OPENIDC_SO),
    ]
    print("\nbench part 1b: mod_auth_jwks and its peers on distinct and invalid tokens "
          "(wrk -c %d, %ds per run, %d rounds)" % (T.CONC, T.SECONDS, T.ROUNDS), flush=True)

    def check(srv):
        """Part 1's check, then one token of each workload answered as expected."""
        why = B.check_protected(srv, check_tokens)
        u = srv.url("/api/static.txt")
        for what, tok, want in (("a distinct token", distinct[0], 200),
                                ("a bad-signature token", bad_sig[0], 401),
                                ("an unknown-kid token", unknown[0], 401)):
            if why:
                break
            got = B.get(u, tok).status_code
            if got != want:
                why = "%s: %d, expected %d" % (what, got, want)
        return why

    servers, rows, skipped = [], [], []
    try:
        for i, (group, mode, extra, ours, so) in enumerate(setups):
            name = "%s %s" % (group, mode)
            if so and not os.path.exists(so):
                skipped.append((name, "%s not installed (bench/deps.sh installs it as root)" % so))
                continue
            srv = B.start_checked(B.Server(extra, name="peers%d" % i, ours=ours), name, ours,
                                  check, servers, skipped)
            if not srv:
                continue
            for wl, _, expect, _ in workloads:
                rows.append(Row(wl, group, mode, srv, "/api/static.txt", scripts[wl], expect, ours))
        static = Row("static", "static", "unprotected (wrk)", rows[0].srv, "/open/static.txt",
                     scripts["static"], 200, True)
        timed = [static] + rows
        for rnd in range(T.ROUNDS):
            for row in (timed if rnd % 2 == 0 else timed[::-1]):
                if row.skip:
                    continue
                try:
                    run_row(row, fetches)
                except Exception as e:
                    if row.ours:
                        raise
                    row.skip = "wrk: %s" % str(e)[-300:]
                    continue
                if row.wrong and not row.ours:
                    row.skip = "%d answers not %d while timed (%s)" % (
                        row.wrong, row.expect,
                        row.log_kinds[0][0] if row.log_kinds else "no error-log line")
    finally:
        for s in servers:
            s.cleanup()
        idp.close()
        idp_tls.close()
        shutil.rmtree(tls_dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)

    for row in rows:
        if row.skip:
            skipped.append(("%s, %s" % (row.name, row.workload), row.skip))
    rows = [r for r in rows if not r.skip]
    for r in [static] + rows:
        r.auth = r.cpu - static.cpu if r.cpu is not None and static.cpu is not None else 0.0

    print("\npeers on distinct and invalid tokens: wrk -c %d, %ds per run, %d rounds; req/s = the "
          "best round's, cpu = the least-CPU round's (httpd CPU us/request); x static = req/s / "
          "the unprotected row's; auth us = cpu minus the unprotected row's; JWKS = fetches "
          "during the least-CPU run; ours / better peer = "
          "mod_auth_jwks req/s over the peer row with the most, and the least auth us of a peer "
          "row over ours (>=: ours adds less than the unprotected row's CPU spread over the "
          "rounds, so the ratio of the whole CPU per request, a lower bound):"
          % (T.CONC, T.SECONDS, T.ROUNDS))
    hdr = "  %-44s %-17s %-22s %8s %8s %6s %7s %5s  %s" % (
        "workload", "module", "mode", "req/s", "x static", "cpu us", "auth us", "JWKS",
        "ours / better peer")
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    fmt = "  %-44s %-17s %-22s %8.0f %8.2f %6.0f %7s %5d  %s"
    print(fmt % ("static file, no token", "-", static.mode, static.rps, 1.0, static.cpu or 0,
                 "-", static.fetches, ""))
    cpus = [x for x in static.all_cpu if x is not None]
    noise = max(cpus) - min(cpus) if cpus else 0.0
    goals = []
    rc = 1 if static.wrong else 0
    for wl, label, expect, n in workloads:
        wrows = [r for r in rows if r.workload == wl]
        ours = next((r for r in wrows if r.ours), None)
        peers = [r for r in wrows if not r.ours]
        for r in wrows:
            notes = []
            if r.wrong:
                notes.append("%d answers not %d: NOT VALID" % (r.wrong, expect))
                rc = 1
            notes += sorted(r.errors)
            if r.fetches > 2:
                notes.append("%d JWKS fetches in %d requests (%.2f per request)" % (
                    r.fetches, r.done, r.fetches / float(r.done or 1)))
            if r.logged:
                notes.append("%d error-log lines (%.2f per request): %s" % (
                    r.logged, r.logged / float(r.done or 1),
                    "; ".join("%d x %s" % (n, k) for k, n in r.log_kinds)))
            print(fmt % (label, r.group, r.mode, r.rps, r.rps / static.rps if static.rps else 0,
                         r.cpu or 0, "%+.0f" % r.auth, r.fetches,
                         ratio_text(r, peers, noise) if r is ours else ""))
            for note in notes:
                print("  %44s   <- %s" % ("", note))
        if ours and peers:
            br = max(peers, key=lambda r: r.rps)
            bc = min(peers, key=lambda r: r.auth)
            goals.append(dict(n=n, workload=label, source="part 1b (wrk)", ours_rps=ours.rps,
                              ours_auth=ours.auth, ours_cpu=ours.cpu, peer_rps=br.rps,
                              peer_rps_name=br.name, peer_auth=bc.auth, peer_cpu=bc.cpu,
                              peer_auth_name=bc.name, noise=noise))
        elif ours:
            goals.append(dict(n=n, workload=label, source="part 1b (wrk)", ours_rps=ours.rps,
                              ours_auth=ours.auth, ours_cpu=ours.cpu, peer_rps=None, noise=noise))
    for wl, label, _, _ in workloads:
        print("  req/s per round, %s: %s" % (label, "; ".join(
            "%s %s" % (r.name, " ".join("%.0f" % x for x in r.all_rps))
            for r in rows if r.workload == wl)))
    print("  unprotected CPU us/request over the rounds: %s (differences smaller than that "
          "spread are noise). CPU is httpd's only: the JWKS servers run in the bench process, "
          "so a module that refetches pays it in req/s, not in this column" % (
              " ".join("%.0f" % x for x in static.all_cpu if x is not None)))
    for name, why in skipped:
        print("  SKIPPED %s: %s" % (name, why))
    return rc, goals
