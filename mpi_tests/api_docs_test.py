#!/usr/bin/python3
"""Checks that every public function states its collective rule (issue 13, "C API ready to
bind": "state the collective rule of every public function in its doc block").

usage: api_docs_test.py HEADER.h...

A header is read as blocks separated by blank lines; a block that declares functions
(lines beginning a prototype `type name(`, also static inline definitions) must contain a
comment that says "collective" or "local" (any case; "not collective" counts). So a
comment may cover a group of declarations written together without a blank line between
them, as the headers do for get/set pairs. Prints each offending function with its file
and line; exit status 1 if there is one, 0 otherwise, 2 on misuse.
"""
import re
import sys

PROTO = re.compile(r"^(?:static\s+inline\s+)?(?:const\s+)?[A-Za-z_][\w\s\*]*?\b(rpu_\w+)\s*\(")
RULE = re.compile(r"collective|\blocal\b", re.IGNORECASE)


def blocks(text):
    """(first line number, lines) of the blank-line separated blocks."""
    out, cur, start = [], [], 1
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip() == "":
            if cur:
                out.append((start, cur))
            cur, start = [], n + 1
        else:
            cur.append(line)
    if cur:
        out.append((start, cur))
    return out


def check(path):
    bad = []
    text = open(path, encoding="utf-8").read()
    for start, lines in blocks(text):
        protos = []
        comment = []
        in_comment = False
        depth = 0  # inside a struct/enum body or a function body: not a prototype
        for k, line in enumerate(lines):
            s = line.strip()
            if in_comment or s.startswith("/*"):
                comment.append(s)
                in_comment = "*/" not in s
                continue
            if depth == 0 and not s.startswith(("typedef", "#", "}")):
                m = PROTO.match(line)
                if m:
                    protos.append((m.group(1), start + k))
            depth += line.count("{") - line.count("}")
        if protos and not RULE.search(" ".join(comment)):
            bad.extend((path, n, name) for name, n in protos)
    return bad


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    bad, total = [], 0
    for path in argv[1:]:
        bad.extend(check(path))
    for path, n, name in bad:
        print(f"{path}:{n}: {name}: the doc block does not say collective or local")
    if not bad:
        print(f"every public function in {len(argv) - 1} headers states its collective rule")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
