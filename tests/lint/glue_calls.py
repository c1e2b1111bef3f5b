#!/usr/bin/python3
"""No call cycle between the glue files (mod_auth_jwks*.c).

Calls between the glue files run one way: mod_auth_jwks.c (hooks and the
authentication path) and mod_auth_jwks_config.c (the directive table) call
the feature files, and every glue file may call mod_auth_jwks_request.c,
which calls only lib/ and httpd. A cycle makes the files one lump that can
only be read, changed and tested together, so this check fails on any.

Each glue file is compiled on its own; `nm` gives the functions it defines
and the symbols it leaves undefined. File A depends on file B when A leaves
undefined a function B defines (a call, or a function's address such as a
directive table entry). Data (the module record, the process-wide state) is
not a call and does not count. Any strongly connected set of two or more
files is a cycle: each is printed, one cycle through it step by step, then
the other calls between its files, with the functions behind each.

Usage: glue_calls.py --cc "<compiler and flags>" [-v] [root]
       (-v also prints the file graph; exit 1 on a cycle, 2 on a build error)
"""
import argparse
import glob
import os
import shlex
import subprocess
import sys
import tempfile


def symbols(obj):
    """(functions defined, symbols undefined) of one object file."""
    out = subprocess.run(["nm", obj], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in ("T", "W"):
            defined.add(parts[2])
    return defined, undefined


def graph(root, cc):
    """{file: {file it calls: sorted functions}} over the glue files."""
    srcs = sorted(glob.glob(os.path.join(root, "mod_auth_jwks*.c")))
    if not srcs:
        sys.exit("glue_calls: no mod_auth_jwks*.c under %s" % root)
    defs, undefs = {}, {}
    with tempfile.TemporaryDirectory(prefix="ajw-glue.") as tmp:
        for src in srcs:
            name = os.path.basename(src)
            obj = os.path.join(tmp, name + ".o")
            r = subprocess.run(shlex.split(cc) + ["-c", src, "-o", obj],
                               capture_output=True, text=True)
            if r.returncode:
                sys.stderr.write(r.stderr)
                print("glue_calls: cannot compile %s" % name)
                sys.exit(2)
            defs[name], undefs[name] = symbols(obj)
    owner = {}
    for name, fns in defs.items():
        for fn in fns:
            owner[fn] = name
    edges = {name: {} for name in defs}
    for name, syms in undefs.items():
        for sym in syms:
            to = owner.get(sym)
            if to and to != name:
                edges[name].setdefault(to, []).append(sym)
    for name in edges:
        for to in edges[name]:
            edges[name][to].sort()
    return edges


def components(edges):
    """Strongly connected components (Tarjan), each a sorted list."""
    index, low, on, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def cycle_in(edges, comp):
    """One cycle through comp[0] that stays inside comp, as a list of files."""
    inside, start = set(comp), comp[0]
    path, seen = [start], {start}

    def walk(v):
        for w in sorted(edges[v]):
            if w not in inside:
                continue
            if w == start:
                return True
            if w not in seen:
                seen.add(w)
                path.append(w)
                if walk(w):
                    return True
                path.pop()
        return False

    walk(start)
    return path + [start]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", required=True, help="compiler command and flags, one string")
    ap.add_argument("-v", action="store_true", help="print the file graph")
    ap.add_argument("root", nargs="?", default=".")
    a = ap.parse_args()
    edges = graph(a.root, a.cc)
    if a.v:
        for name in sorted(edges):
            for to in sorted(edges[name]):
                print("%s -> %s: %s" % (name, to, " ".join(edges[name][to])))
    cycles = [c for c in components(edges) if len(c) > 1]
    for comp in cycles:
        path = cycle_in(edges, comp)
        print("glue_calls: call cycle between %s:" % ", ".join(comp))
        for f, t in zip(path, path[1:]):
            print("  %s -> %s: %s" % (f, t, " ".join(edges[f][t])))
        rest = [(f, t) for f in comp for t in sorted(edges[f])
                if t in comp and (f, t) not in zip(path, path[1:])]
        if rest:
            print("  and the other calls inside it:")
            for f, t in rest:
                print("  %s -> %s: %s" % (f, t, " ".join(edges[f][t])))
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
