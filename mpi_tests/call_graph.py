#!/usr/bin/python3
"""Fails if the object files given call each other in a circle.

usage: call_graph.py [--nm NM] OBJECT...

File A calls file B when A uses (nm: undefined symbol) a function or variable that B
defines. The files of one layer of the design must form a graph without cycles: helpers
are called by the code above them and call nothing of it (issue 13: src/cli's helpers sat
in main.c and bench_tile.c, so every subcommand and main called each other). Prints each
strongly connected component of two or more files with the symbols of every edge inside
it, and exits 1; prints the edges and exits 0 when there is none.
"""
import os
import subprocess
import sys


def symbols(nm, path):
    """(defined, undefined) external symbol names of one object file."""
    out = subprocess.run([nm, "-P", path], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind.isupper():  # global: text, data, bss, read-only, common
            defined.add(name)
    return defined, undefined


def components(nodes, edges):
    """Strongly connected components (Tarjan), each a sorted list of nodes."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            result.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return result


def name_of(path):
    """foo.c.o -> foo.c (the source the object came from)."""
    base = os.path.basename(path)
    return base[:-2] if base.endswith(".o") else base


def main(argv):
    nm = "nm"
    if len(argv) >= 2 and argv[0] == "--nm":
        nm, argv = argv[1], argv[2:]
    if not argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    files = {name_of(p): symbols(nm, p) for p in argv}
    owner = {}
    for f, (defined, _) in files.items():
        for s in defined:
            owner[s] = f
    edges, labels = {}, {}
    for f, (_, undefined) in files.items():
        for s in undefined:
            g = owner.get(s)
            if g and g != f:
                edges.setdefault(f, set()).add(g)
                labels.setdefault((f, g), []).append(s)
    cycles = [c for c in components(files, edges) if len(c) > 1]
    for f in sorted(edges):
        for g in sorted(edges[f]):
            print(f"{f} -> {g}: {', '.join(sorted(labels[(f, g)]))}")
    if not cycles:
        print(f"call_graph: {len(files)} files, no cycles")
        return 0
    for c in cycles:
        print(f"FAIL: these files call each other in a circle: {' '.join(c)}", file=sys.stderr)
        for f in c:
            for g in sorted(edges.get(f, ())):
                if g in c:
                    print(f"  {f} -> {g}: {', '.join(sorted(labels[(f, g)]))}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
