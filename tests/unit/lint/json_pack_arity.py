#!/usr/bin/env python3
"""Check that every json_pack()/json_pack_ex() call in the C sources passes as
many arguments as its format string asks for.

Why: jansson's json_pack is variadic and carries no format attribute, so the
compiler cannot see a missing argument. One such call (a key without its
value) read past the argument list and crashed the broker under ASan only.
This lint reads the format literal, counts what it consumes (per jansson's
"Building values" documentation: s, s#, s%, +, +#, +%, n, b, i, I, f, o, O,
with ? and * modifiers) and compares it with the arguments given. Calls whose
format is not a string literal are skipped and counted.

It first proves it can fail: the built-in samples include calls with one
argument too few and one too many, which must be reported.
"""
import os
import re
import sys

CALL = re.compile(r"\bjson_pack(_ex)?\s*\(")


def split_args(src, i):
    """Top-level comma-separated arguments from src[i:] up to the closing ')'."""
    args, cur, depth = [], [], 0
    while i < len(src):
        c = src[i]
        if c in "\"'":
            j = i + 1
            while j < len(src) and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            cur.append(src[i:j + 1])
            i = j + 1
            continue
        if src.startswith("/*", i):
            i = src.index("*/", i) + 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append("".join(cur))
                return args
            depth -= 1
        elif c == "," and depth == 0:
            args.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    raise ValueError("unterminated call")


def consumed(fmt):
    """How many variadic arguments a json_pack format consumes."""
    n, i = 0, 0
    while i < len(fmt):
        c = fmt[i]
        nxt = fmt[i + 1] if i + 1 < len(fmt) else ""
        if c in "s+":
            n += 1
            if nxt in "#%":
                n += 1
                i += 1
        elif c in "bifIoO":
            n += 1
        i += 1
    return n


def literal(arg):
    """The concatenated string literal in arg, or None if it is not one."""
    arg = arg.strip()
    if not arg.startswith('"'):
        return None
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', arg)
    return "".join(parts)


def check_source(name, src):
    problems, skipped, calls = [], 0, 0
    for m in CALL.finditer(src):
        line = src.count("\n", 0, m.start()) + 1
        before = src[src.rfind("\n", 0, m.start()) + 1:m.start()]
        if before.lstrip().startswith(("//", "*", "/*")):
            continue
        args = split_args(src, m.end())
        if m.group(1):  # json_pack_ex(error, flags, fmt, ...)
            args = args[2:]
        fmt = literal(args[0]) if args else None
        if fmt is None:
            skipped += 1
            continue
        calls += 1
        want, got = consumed(fmt), len(args) - 1
        if want != got:
            problems.append("%s:%d: format %r takes %d argument(s), %d given"
                            % (name, line, fmt, want, got))
    return problems, skipped, calls


SAMPLES = '''
json_pack("{s:s, s:s}", "a", x, "b");
json_pack("[i]", 1, 2);
json_pack_ex(&err, 0, "{s:s#}", "k", p);
'''


def main():
    bad, _, _ = check_source("sample", SAMPLES)
    if len(bad) != 3:
        print("lint self-check failed: expected 3 findings in the samples, got", bad)
        return 1
    ok, _, _ = check_source("sample", 'json_pack("{s:s?, s:o, s:s#}", "a", x, "b", j, "c", p, n);')
    if ok:
        print("lint self-check failed: a correct call was reported:", ok)
        return 1

    root = os.environ.get("GW_SOURCE_ROOT") or os.path.join(os.path.dirname(__file__), "../../..")
    problems, skipped, calls, files = [], 0, 0, 0
    for top in ("broker", "workers", "cli", "lib", "bridge", "tests", "bench", "integrations"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames[:] = [d for d in dirnames if d != "node_modules"]
            for f in filenames:
                if f.endswith((".c", ".h")):
                    path = os.path.join(dirpath, f)
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        p, s, c = check_source(os.path.relpath(path, root), fh.read())
                    problems += p
                    skipped += s
                    calls += c
                    files += 1
    for p in problems:
        print(p)
    print("json_pack arity: %d call(s) in %d file(s) checked, %d with a non-literal format "
          "skipped, %d problem(s)" % (calls, files, skipped, len(problems)))
    if calls == 0:
        print("no json_pack call found: wrong source root?")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
