#!/usr/bin/env python3
"""Prints the calls between h1mock's modules and fails on a cycle or on a
module that calls a layer above its own.

An edge A -> B is made by a file of module A that includes B's public
header (src/b.h) or names a function or exported object that a file of
module B defines. A file belongs to the module named by the longest entry
of LAYERS that is its name or a prefix of it followed by "_"
(provision_load.c is `provision`, script_app.c is `script_app`). Private
headers (*_int.h) are shared inside a module and make no edge by being
included; the calls between the files that share them are still checked.

LAYERS is the list of docs/ARCHITECTURE.md, top to bottom: a module may
call its own layer (without a cycle) or any layer below, never one above.
The binding files of the script layer (BINDINGS) expose only their open
functions.

    tests/check-layers.py            the graph, then "N passed, N failed"
    tests/check-layers.py --quiet    only what is wrong, and that line
    tests/check-layers.py --src DIR  checks the sources in DIR instead of src/
                                     (tests/integration/test_layers.py plants
                                     faults in a copy)
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")

# Top to bottom; keep in step with docs/ARCHITECTURE.md.
LAYERS = [
    ["main"],
    ["h1mock"],
    ["server"],
    ["admin", "conn", "watcher"],
    ["provision"],
    ["script"],
    ["script_app", "script_request", "script_response", "script_store", "script_journal", "script_http",
     "script_string", "script_sandbox", "script_jsonlib"],
    ["script_value"],
    ["script_budget"],
    ["router", "store", "journal", "metrics", "access_log", "http", "script_json", "watchdog",
     "http_client", "proxy", "record", "dribble", "pattern", "safedir", "cors"],
    ["config", "text", "log", "buf", "origin"],
]

# Each registers one API group of the Lua binding and is reached only
# through its open function (script_store_seed is the admin API's seeding).
BINDINGS = set(LAYERS[6])
BINDING_EXPORTS_ALSO = {"script_store_seed"}

LAYER_OF = {m: i for i, row in enumerate(LAYERS) for m in row}


def module_of(stem):
    best = None
    for m in LAYER_OF:
        if (stem == m or stem.startswith(m + "_")) and (best is None or len(m) > len(best)):
            best = m
    return best


def strip(text):
    """The text without comments, strings and character literals (their
    length kept, so line numbers stay right)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j]) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


DEF_FUNC = re.compile(r"^(?!static\b|typedef\b|extern\b)[A-Za-z_][\w \t\*]*?\b([a-z_]\w*)\s*\([^;{}]*\)\s*\{",
                      re.M)
DEF_INLINE = re.compile(r"^static\s+inline\b[\w \t\*]*?\b([a-z_]\w*)\s*\([^;{}]*\)\s*\{", re.M)
DEF_DATA = re.compile(r"^(?!static\b|typedef\b|extern\b|struct\b[^;=]*\{|enum\b|union\b)"
                      r"(?:const\s+)?[A-Za-z_][\w \t\*]*?\b([a-z_]\w*)\s*(?:\[[^\]]*\])*\s*(?:=|;)",
                      re.M)
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)
IDENT = re.compile(r"(?<![.>\w])[a-z_]\w*\b")  # not a member (.x, ->x)


def main():
    global SRC
    args = sys.argv[1:]
    quiet = "--quiet" in args
    if "--src" in args:
        i = args.index("--src")
        if i + 1 >= len(args) or not os.path.isdir(args[i + 1]):
            print("check-layers.py: --src needs a directory", file=sys.stderr)
            return 2
        SRC = args[i + 1]
    files = sorted(f for f in os.listdir(SRC) if f.endswith((".c", ".h")))
    problems = []
    texts, mods = {}, {}
    for f in files:
        stem = f[:-2]
        m = module_of(stem)
        if m is None:
            problems.append("%s: in no module: add its module to LAYERS (tests/check-layers.py) "
                            "and docs/ARCHITECTURE.md" % f)
            continue
        mods[f] = m
        with open(os.path.join(SRC, f), encoding="utf-8") as fh:
            texts[f] = fh.read()

    # What each module defines: functions, inline functions of public
    # headers, exported objects.
    owner = {}
    for f, m in mods.items():
        code = strip(texts[f])
        if f.endswith(".c"):
            names = DEF_FUNC.findall(code) + DEF_DATA.findall(code)
        elif f.endswith("_int.h"):
            names = []  # shared inside its package, like the header itself
        else:
            names = DEF_INLINE.findall(code)
        for name in names:
            owner.setdefault(name, m)

    edges = {}  # (from, to) -> set of "file: what"

    def edge(a, b, why):
        if a != b:
            edges.setdefault((a, b), set()).add(why)

    used_from_outside = {}
    for f, m in mods.items():
        code = strip(texts[f])
        for inc in INCLUDE.findall(texts[f]):
            if inc.endswith("_int"):
                continue
            target = module_of(inc)
            if target is not None and os.path.exists(os.path.join(SRC, inc + ".h")):
                edge(m, target, "%s: #include \"%s.h\"" % (f, inc))
        if not f.endswith(".c"):
            continue
        for name in set(IDENT.findall(code)):
            target = owner.get(name)
            if target is not None and target != m:
                edge(m, target, "%s: %s" % (f, name))
                used_from_outside.setdefault(target, set()).add(name)

    # Calls that go up.
    for (a, b), why in sorted(edges.items()):
        if LAYER_OF[a] > LAYER_OF[b]:
            problems.append("upward: %s (layer %d) -> %s (layer %d): %s" %
                            (a, LAYER_OF[a], b, LAYER_OF[b], "; ".join(sorted(why))))

    # Cycles (Tarjan's strongly connected components).
    graph = {m: [] for m in LAYER_OF}
    for a, b in edges:
        graph[a].append(b)
    index, low, stack, on, sccs = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    for comp in sccs:
        inside = ["%s -> %s (%s)" % (a, b, "; ".join(sorted(why)))
                  for (a, b), why in sorted(edges.items()) if a in comp and b in comp]
        problems.append("cycle between %s: %s" % (", ".join(comp), " | ".join(inside)))

    # Binding files are reached through their open function only.
    for m in sorted(BINDINGS):
        extra = sorted(n for n in used_from_outside.get(m, ())
                       if not n.startswith(m + "_open") and n not in BINDING_EXPORTS_ALSO)
        if extra:
            problems.append("binding %s is reached through more than its open function: %s" %
                            (m, ", ".join(extra)))

    if not quiet:
        for row in LAYERS:
            for m in row:
                deps = sorted({b for (a, b) in edges if a == m}, key=lambda x: (LAYER_OF[x], x))
                print("%-16s -> %s" % (m, ", ".join(deps) if deps else "(nothing)"))
    for p in problems:
        print("not ok - " + p)
    print("%d passed, %d failed" % (0 if problems else 1, 1 if problems else 0))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
