#!/usr/bin/python3
"""Conversions APR's formatter does not know, in calls that format with it.

apr_psprintf, ap_log_*error, ap_rprintf and friends format with APR's own
apr_vformatter, not libc's: on 64-bit Linux it has no `ll`, `z`, `j`, `hh`,
`L` or `t` length modifier. "%lld" prints a literal "%ld" and consumes no
argument, so every conversion after it reads the wrong one (a "%s" then
crashes the process). GCC checks these calls against printf's rules and
lets them through, hence this check; APR's own *_FMT macros are the way.

Usage: apr_formats.py [root]   (exit 1 and one line per finding)
"""
import glob
import os
import re
import sys

FUNCS = re.compile(r"\b(apr_psprintf|apr_pvsprintf|apr_snprintf|apr_vsnprintf|apr_file_printf|"
                   r"apr_brigade_printf|ap_log_error|ap_log_rerror|ap_log_perror|ap_log_cerror|"
                   r"ap_log_cserror|ap_rprintf|ap_fprintf|ajw_mod_dir_err)\s*\(")
MACRO = re.compile(r'"\s*APR_[A-Z0-9_]+_FMT\s*"')     # "%" APR_INT64_T_FMT " s" -> "%ld s"
LITERAL = re.compile(r'"((?:\\.|[^"\\])*)"')
BAD = re.compile(r"%[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(ll|z|j|hh|L|t)[a-zA-Z]")


def call_text(src, start):
    """The argument text of the call whose '(' ends at start."""
    depth, i = 1, start
    while i < len(src) and depth:
        c = src[i]
        if c == '"':
            i += 1
            while i < len(src) and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
        elif c == "'":
            i += 1
            while i < len(src) and src[i] != "'":
                i += 2 if src[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        i += 1
    return src[start:i]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    found = 0
    for path in sorted(glob.glob(os.path.join(root, "**", "*.c"), recursive=True)):
        rel = os.path.relpath(path, root)
        if rel.startswith(("build", ".git")):
            continue
        with open(path, errors="replace") as f:
            src = f.read()
        for m in FUNCS.finditer(src):
            text = MACRO.sub("ld", call_text(src, m.end()))
            fmt = "".join(LITERAL.findall(text))
            bad = BAD.search(fmt)
            if bad:
                found += 1
                print("%s:%d: %s: \"%s\" is not an APR conversion (use APR's *_FMT macros)"
                      % (rel, src.count("\n", 0, m.start()) + 1, m.group(1), bad.group(0)))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
