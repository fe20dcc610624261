#!/usr/bin/python3
"""Checks that the files of a target call each other without cycles (issue 13, "Structure").

usage: call_graph_test.py OBJECT.o...

Edges come from the object files themselves (`nm`): file a calls file b when a.o has an
undefined symbol that b.o defines. So the graph is what the linker sees: calls through
static inline helpers of a header are not edges (they belong to the header's owner), and
a declaration that nobody calls is not an edge either. Prints the graph (one line per file:
"a.c -> the files it calls"), then every strongly connected component of more than one file
as "CYCLE: a.c <-> b.c ...". Exit status 1 if there is a cycle, 0 otherwise, 2 on misuse.
"""
import collections
import os
import subprocess
import sys


def graph(objects):
    defined, used = {}, collections.defaultdict(set)
    for obj in objects:
        name = os.path.basename(obj)
        if name.endswith(".o"):
            name = name[:-2]
        out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "TDBRG":
                defined[parts[2]] = name
            elif len(parts) == 2 and parts[0] == "U":
                used[name].add(parts[1])
    edges = {name: set() for name in used}
    for a, syms in used.items():
        for s in syms:
            b = defined.get(s)
            if b is not None and b != a:
                edges[a].add(b)
    return edges


def cycles(edges):
    """Strongly connected components with more than one node (iterative Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    edges = graph(argv[1:])
    for a in sorted(edges):
        print(a, "->", " ".join(sorted(edges[a])) or "(nothing)")
    found = cycles(edges)
    for comp in found:
        print("CYCLE:", " <-> ".join(comp))
    if not found:
        print(f"no cycles among {len(argv) - 1} object files")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
