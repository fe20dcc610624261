#!/usr/bin/python3
"""Checks that scripts/setup.sh installs everything the scripts and tests use.

usage: deps_check.py SOURCE_DIR [--python PYTHON] [--verbose]

A fresh Debian machine has only the required base system; `bash scripts/setup.sh` must
install the rest. In the files of the tree (scripts/, mpi_tests/, fuzz/, ...; build trees
and hidden directories left out) this finds
  - every Python module imported by a .py file or by Python code given with -c in a shell
    file (an import inside `try: ... except ImportError` is optional and only listed),
  - every command the shell files (*.sh, *.sbatch) run,
    including the commands in $(...), `...`, <(...), bash -c '...', trap '...' and in the
    arguments of the test wrappers (check DESC CMD..., expect_rc RC OUT CMD...),
finds the file PYTHON (default /usr/bin/python3) or the PATH would load or run, and asks
dpkg which package ships it. Each package must be in setup.sh's list
(`bash scripts/setup.sh --print-packages`), be pulled in by one in the list (Depends or
Pre-Depends, first alternative, as apt installs them), or be part of the base system
(Essential: yes or Priority: required). A package that is merely installed on this
machine does not count. Files of the project itself (modules and packages of the tree,
commands given by path or variable) need no package.

Fails (exit 1) naming the module or command, the file and line that uses it, the file
it resolves to and its package; also when a module or command cannot be found at all or
belongs to no package, and when a shell function runs its arguments as a command but is
not in WRAPPERS (its commands would go unseen).
"""
import ast
import collections
import json
import os
import re
import shutil
import subprocess
import sys

# Shell functions of the tests that run their arguments as a command, with the number of
# leading arguments that are not part of it.
WRAPPERS = {
    "check": 1,  # testlib.sh: check DESCRIPTION CMD...
    "expect_rc": 2,  # expect_rc WANT OUTFILE CMD...
    "expect_fail": 1,  # infer_test.sh: expect_fail PATTERN CMD...
    "run": 0,  # setup.sh: run CMD... (prints and runs it)
    "rpusim_job_run": 0,  # scripts/slurm/rpusim_job.sh: rpusim_job_run CMD...
    "start_daemon": 1,  # scripts/slurm/local_slurm.sh: start_daemon NAME CMD...
}
# Commands that run their arguments as a command after options: name -> options that
# take a value.
PREFIXES = {
    "nohup": set(),
    "setsid": set(),
    "sudo": {"-u", "-g"},
    "nice": {"-n"},
    "timeout": {"-s", "-k"},  # and the duration
    "env": {"-u"},
    "xargs": {"-n", "-I", "-d", "-P"},
    "stdbuf": {"-i", "-o", "-e"},
}
# Reserved words and builtins that precede the command they run.
KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "in", "{",
            "}", "!", "time", "exec", "coproc"}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELL_EXT = (".sh", ".sbatch")


class Use:
    """One use of a module or command: what, where, how it is needed."""

    def __init__(self, kind, name, path, line, optional=False):
        self.kind, self.name, self.path, self.line, self.optional = kind, name, path, line, optional

    def where(self, root):
        return f"{os.path.relpath(self.path, root)}:{self.line}"


# ------------------------------------------------------------------------ Python imports

def python_imports(tree):
    """(top-level module, line, optional) of every import; relative imports are skipped."""
    optional_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            names = set()
            for h in node.handlers:
                t = h.type
                for e in (t.elts if isinstance(t, ast.Tuple) else [t]):
                    if isinstance(e, ast.Name):
                        names.add(e.id)
            if names & {"ImportError", "ModuleNotFoundError"}:
                for stmt in node.body:
                    for sub in ast.walk(stmt):
                        optional_nodes.add(id(sub))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append((a.name.split(".")[0], node.lineno, id(node) in optional_nodes))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module.split(".")[0], node.lineno, id(node) in optional_nodes))
    return out


def scan_python(text, path, first_line, uses):
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    for name, line, optional in python_imports(tree):
        uses.append(Use("module", name, path, first_line + line - 1, optional))
    return True


# ------------------------------------------------------------------------ shell commands

class Word:
    """A shell word: its text with quotes removed (None if it is not a plain literal,
    e.g. "$x"), the raw text, and its line."""

    def __init__(self, raw, literal, line):
        self.raw, self.literal, self.line = raw, literal, line


class Lexer:
    """A small lexer for the bash that the project writes: words, operators, quotes,
    $(...), `...`, <(...), $((...)), ${...}, comments, heredocs. Code inside command
    substitutions is handed to `sub(code, line)`."""

    OPS = ["&&", "||", ";;&", ";;", ";&", "|&", "<<<", "<<-", "<<", ">>", "&>>", "&>", ">&",
           "<&", "<>", ">|", ";", "&", "|", "(", ")", "<", ">", "\n"]

    def __init__(self, text, line, sub):
        self.s, self.i, self.line, self.sub = text, 0, line, sub
        self.heredocs = []  # delimiters waiting for the end of the line

    def peek(self, k=0):
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def tokens(self):
        """Yields ("op", text, line) and ("word", Word)."""
        while self.i < len(self.s):
            c = self.peek()
            if c in " \t":
                self.i += 1
            elif c == "\\" and self.peek(1) == "\n":
                self.i += 2
                self.line += 1
            elif c == "#":
                while self.i < len(self.s) and self.peek() != "\n":
                    self.i += 1
            elif c == "\n":
                self.i += 1
                yield ("op", "\n", self.line)
                self.line += 1
                if self.heredocs:
                    self.skip_heredocs()
            elif c in "<>" and self.peek(1) == "(":
                self.i += 2
                start = self.line
                self.sub(self.balanced(")"), start)
                yield ("word", Word("<(...)", None, start))
            else:
                op = next((o for o in self.OPS if self.s.startswith(o, self.i)), None)
                if op:
                    self.i += len(op)
                    if op in ("<<", "<<-"):
                        w = self.word()
                        self.heredocs.append((w.literal or w.raw).strip("'\""))
                        continue
                    yield ("op", op, self.line)
                else:
                    yield ("word", self.word())

    def skip_heredocs(self):
        for delim in self.heredocs:
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                body = self.s[self.i:end]
                self.i = end + 1
                self.line += 1
                if body.strip() == delim:
                    break
        self.heredocs = []

    def balanced(self, close):
        """Text up to the matching close paren (the opening one consumed), quotes and
        nested parens respected; returns it and moves past the close paren."""
        depth, start = 1, self.i
        while self.i < len(self.s):
            c = self.peek()
            if c == "\\":
                self.i += 2
                continue
            if c == "\n":
                self.line += 1
            if c == "#" and (self.i == start or self.s[self.i - 1] in " \t\n;(|&"):
                # a comment (it may hold a quote: "# glibc's symbols" in an array)
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
                continue
            if c == "'":
                j = self.s.find("'", self.i + 1)
                j = len(self.s) if j < 0 else j  # unterminated: the rest of the text
                self.line += self.s.count("\n", self.i, j)
                self.i = j + 1
                continue
            if c == '"':
                self.i += 1
                self.dquoted()
                continue
            if c == "(":
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    text = self.s[start:self.i]
                    self.i += 1
                    return text
            self.i += 1
        return self.s[start:]

    def dollar(self):
        """At a '$': consumes an expansion; command substitutions go to sub()."""
        if self.s.startswith("$((", self.i):
            self.i += 3
            self.balanced(")")  # arithmetic: (( ... )) -> the inner text and one ')'
            if self.peek() == ")":
                self.i += 1
            return False
        if self.s.startswith("$(", self.i):
            self.i += 2
            start = self.line
            self.sub(self.balanced(")"), start)
            return False
        if self.s.startswith("${", self.i):
            self.i += 2
            depth = 1
            while self.i < len(self.s) and depth:
                c = self.peek()
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                elif c == "$":
                    self.dollar()
                    continue
                self.i += 1
            return False
        self.i += 1
        if self.peek() in "@*#?$!-0123456789" and self.peek():
            self.i += 1
            return False
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.i += 1
        return False

    def backtick(self):
        self.i += 1
        start, line = self.i, self.line
        while self.i < len(self.s) and self.peek() != "`":
            if self.peek() == "\\":
                self.i += 1
            if self.peek() == "\n":
                self.line += 1
            self.i += 1
        self.sub(self.s[start:self.i], line)
        self.i += 1

    def dquoted(self):
        """Inside "...": returns (value, literal?) and moves past the closing quote."""
        out, literal = [], True
        while self.i < len(self.s):
            c = self.peek()
            if c == '"':
                self.i += 1
                break
            if c == "\\" and self.peek(1) in '"\\$`\n':
                out.append(self.peek(1))
                self.i += 2
                continue
            if c == "$" and (self.peek(1).isalnum() or self.peek(1) in "_{(@*#?$!-"):
                self.dollar()
                literal = False
                continue
            if c == "`":
                self.backtick()
                literal = False
                continue
            if c == "\n":
                self.line += 1
            out.append(c)
            self.i += 1
        return "".join(out), literal

    def word(self):
        start, line = self.i, self.line
        out, literal = [], True
        while self.i < len(self.s):
            c = self.peek()
            if c == "(" and re.fullmatch(r"[A-Za-z_]\w*(\[[^]]*\])?\+?=", "".join(out)):
                # an array assignment name=(words): its words are not commands, but
                # substitutions in them run
                self.i += 1
                first = self.line
                for _ in Lexer(self.balanced(")"), first, self.sub).tokens():
                    pass
                literal = False
                continue
            if c in " \t\n;&|()<>":
                break
            if c == "\\":
                if self.peek(1) == "\n":
                    self.i += 2
                    self.line += 1
                    continue
                out.append(self.peek(1))
                self.i += 2
            elif c == "'":
                j = self.s.find("'", self.i + 1)
                j = len(self.s) if j < 0 else j
                out.append(self.s[self.i + 1:j])
                self.line += self.s.count("\n", self.i, j)
                self.i = j + 1
            elif c == '"':
                self.i += 1
                v, lit = self.dquoted()
                out.append(v)
                literal = literal and lit
            elif c == "$" and self.peek(1) and self.peek(1) not in " \t\n\"'":
                self.dollar()
                literal = False
            elif c == "`":
                self.backtick()
                literal = False
            else:
                out.append(c)
                self.i += 1
        raw = self.s[start:self.i]
        return Word(raw, "".join(out) if literal else None, line)


def simple_commands(text, first_line, on_sub):
    """Splits shell text into simple commands (lists of Words); case patterns, for/select
    word lists and redirection targets are left out. Code of substitutions goes to
    on_sub(code, line)."""
    commands, cur = [], []
    lex = Lexer(text, first_line, on_sub)
    case_state = []  # per open case: "word" (case WORD in), "pattern", "body"
    redirect_next = False
    for tok in lex.tokens():
        if tok[0] == "op":
            op = tok[1]
            if op in ("<", ">", ">>", "&>", "&>>", ">&", "<&", "<>", ">|", "<<<"):
                redirect_next = True
                continue
            if case_state and case_state[-1] == "pattern":
                if op == ")":
                    case_state[-1] = "body"
                continue
            if op in (";;", ";&", ";;&") and case_state:
                case_state[-1] = "pattern"
            if cur:
                commands.append(cur)
            cur = []
            continue
        w = tok[1]
        if redirect_next:
            redirect_next = False
            continue
        if case_state and case_state[-1] == "word":
            if w.literal == "in":
                case_state[-1] = "pattern"
            continue
        if case_state and case_state[-1] == "pattern":
            if w.literal == "esac":
                case_state.pop()
            continue
        if not cur and w.literal == "case":
            case_state.append("word")
            continue
        if not cur and w.literal == "esac" and case_state:
            case_state.pop()
            continue
        if re.fullmatch(r"[0-9]+", w.raw or "") and lex.peek() in "<>":
            continue  # a file descriptor of the redirection that follows
        cur.append(w)
    if cur:
        commands.append(cur)
    return commands


def without_heredocs(text):
    """text with the bodies of heredocs blanked (the line count stays): data, not code."""
    out, delims = [], []
    for line in text.split("\n"):
        if delims:
            if line.strip() == delims[0]:
                delims.pop(0)
            out.append("")
            continue
        out.append(line)
        delims = re.findall(r"<<-?\s*['\"]?([A-Za-z_]\w*)['\"]?", line.replace("<<<", ""))
    return "\n".join(out)


def functions_with_args_run(text):
    """Names of shell functions whose body runs "$@" as a command, with the line."""
    found = []
    lines = without_heredocs(text).splitlines()
    for n, line in enumerate(lines):
        m = re.match(r"\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*\(\)\s*\{(.*)$", line)
        if not m:
            continue
        indent = len(line) - len(line.lstrip())
        body = [m.group(2)]
        if not re.search(r"(^|;|\s)\}\s*(#.*)?$", m.group(2)):
            for later in lines[n + 1:]:
                if re.match(r"\s*\}\s*$", later) and len(later) - len(later.lstrip()) == indent:
                    break
                body.append(later)
        if re.search(r'(^|[;&|(]|\bthen|\bdo|\belse|!)\s*"\$(@|\{@\})"', "\n".join(body),
                     re.M):
            found.append((m.group(1), n + 1))
    return found


def defined_functions(text):
    return set(re.findall(r"^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*\(\)\s*\{",
                          without_heredocs(text), re.M))


def scan_shell(text, path, first_line, uses, functions):
    """Adds the commands and Python modules used by shell text to uses."""

    def on_sub(code, line):
        scan_shell(code, path, line, uses, functions)

    for cmd in simple_commands(text, first_line, on_sub):
        words = list(cmd)
        while words:
            w = words[0]
            lit = w.literal
            if lit is None:  # a variable or an expansion: a project file or unknown
                break
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=.*", w.raw, re.S):
                words.pop(0)  # assignment before the command
                continue
            if lit in ("[[", "for", "select", "function", "((", "local", "declare",
                       "export", "readonly", "typeset", "unset", "read", "shift", "return",
                       "exit", "continue", "break", "set", "wait", "cd", "echo", "printf",
                       "test", "[", "true", "false", ":", "source", ".", "kill", "pwd",
                       "mapfile", "readarray", "let", "umask", "ulimit", "getopts", "hash",
                       "type", "builtin", "jobs", "disown", "shopt", "alias", "help",
                       "compgen", "complete", "caller", "dirs", "pushd", "popd", "fg", "bg",
                       "enable", "history", "logout", "suspend", "times", "case", "esac"):
                break
            if lit in KEYWORDS:
                words.pop(0)
                continue
            if lit in ("trap", "eval"):  # trap CODE SIGNAL...; eval CODE
                code = words[1].literal if len(words) > 1 else None
                if code is not None and not code.startswith("-"):
                    scan_shell(code, path, words[1].line, uses, functions)
                break
            if lit == "command":
                if len(words) > 1 and words[1].literal in ("-v", "-V"):
                    break  # a probe: `command -v X` asks whether X exists
                words.pop(0)
                continue
            if lit in WRAPPERS:
                del words[:1 + WRAPPERS[lit]]
                continue
            if lit in functions:
                break
            uses.append(Use("command", lit, path, w.line))
            if os.path.basename(lit) in PREFIXES:
                opts = PREFIXES[os.path.basename(lit)]
                words.pop(0)
                if os.path.basename(lit) == "timeout":
                    while words and (words[0].literal or "").startswith("-"):
                        words.pop(0)
                    words = words[1:]  # the duration
                while words and (words[0].literal or "x").startswith("-"):
                    o = words.pop(0).literal
                    if o in opts and words:
                        words.pop(0)
                if lit.endswith("env"):
                    while words and words[0].literal and "=" in words[0].literal:
                        words.pop(0)
                continue
            break
        # -c CODE: shell for bash/sh, else Python if it parses as Python
        head = cmd[0].literal or ""
        for k in range(len(cmd) - 1):
            if cmd[k].literal != "-c" or cmd[k + 1].literal is None:
                continue
            code = cmd[k + 1].literal
            if os.path.basename(head) in ("bash", "sh"):
                scan_shell(code, path, cmd[k + 1].line, uses, functions)
            else:
                scan_python(code, path, cmd[k + 1].line, uses)


# ------------------------------------------------------------------------ packages

def candidates(path):
    """The names dpkg may know path by, in order: path, then each symlink target in turn
    (alternatives: /usr/bin/mpiexec -> /etc/alternatives/mpiexec -> ...), each also with
    its /usr-merged alias (/usr/bin/x and /bin/x)."""
    out, p = [], path
    while p and p not in out:
        out.append(p)
        for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/"), ("/usr/lib/", "/lib/")):
            if p.startswith(a):
                out.append(b + p[len(a):])
            elif p.startswith(b):
                out.append(a + p[len(b):])
        if not os.path.islink(p):
            break
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return out


def dpkg_owners(paths):
    """path -> package for those of paths that a package ships (one dpkg-query call)."""
    if not paths:
        return {}
    r = subprocess.run(["dpkg-query", "-S"] + sorted(set(paths)), capture_output=True, text=True)
    owners = {}
    for line in r.stdout.splitlines():
        if line.startswith("diversion by"):
            continue
        pkgs, _, f = line.partition(": ")
        owners[f] = pkgs.split(",")[0].strip().split(":")[0]
    return owners


def package_db():
    """name -> (essential, priority, provides, depends) of every installed package."""
    fmt = "${db:Status-Abbrev}\t${Package}\t${Essential}\t${Priority}\t${Provides}\t" \
          "${Pre-Depends}\t${Depends}\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fmt], check=True, capture_output=True,
                         text=True).stdout
    db = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 7 or not f[0].startswith("ii"):
            continue
        provides = [x.strip().split()[0] for x in f[4].split(",") if x.strip()]
        deps = [x.strip() for x in (f[5] + "," + f[6]).split(",") if x.strip()]
        db[f[1]] = (f[2] == "yes", f[3], provides, deps)
    return db


def closure(roots, db):
    """Packages installed with roots: roots and their Depends/Pre-Depends, recursively
    (first alternative; a virtual package by its installed providers). name -> the
    listed package that brings it."""
    providers = {}
    for name, (_, _, provides, _) in db.items():
        for v in provides:
            providers.setdefault(v, []).append(name)
    via = {r: r for r in roots}
    todo = collections.deque(roots)  # breadth first: the nearest listed package
    while todo:
        p = todo.popleft()
        for dep in db.get(p, (False, "", [], []))[3]:
            first = dep.split("|")[0].strip()
            name = re.split(r"[\s(]", first)[0].split(":")[0]
            names = [name] if name in db or name not in providers else providers[name]
            for n in names:
                if n not in via:
                    via[n] = via[p]
                    todo.append(n)
    return via


def resolve_modules(python, names):
    """name -> file of the module as PYTHON finds it (isolated mode: no user site, no
    current directory, no PYTHON* variables), 'built-in', or None."""
    code = ("import importlib.util, json, sys\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            "    try:\n"
            "        s = importlib.util.find_spec(n)\n"
            "    except (ImportError, ValueError):\n"
            "        s = None\n"
            "    if s is None:\n"
            "        out[n] = None\n"
            "    elif s.origin in ('built-in', 'frozen') or (s.origin is None and\n"
            "            not s.submodule_search_locations):\n"
            "        out[n] = 'built-in'\n"
            "    else:\n"
            "        out[n] = s.origin or list(s.submodule_search_locations)[0]\n"
            "print(json.dumps(out))\n")
    r = subprocess.run([python, "-I", "-c", code] + sorted(names), check=True,
                       capture_output=True, text=True)
    return json.loads(r.stdout)


# ------------------------------------------------------------------------ main

def project_files(root):
    """The files of the tree: build trees (a directory with a CMakeCache.txt) and hidden
    directories are left out."""
    for d, dirs, files in os.walk(root):
        if d != root and "CMakeCache.txt" in files:
            dirs[:] = []
            continue
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for f in sorted(files):
            yield os.path.join(d, f)


def main(argv):
    args = list(argv)
    python, verbose = "/usr/bin/python3", False
    if "--verbose" in args:
        args.remove("--verbose")
        verbose = True
    if "--python" in args:
        k = args.index("--python")
        python = args[k + 1]
        del args[k:k + 2]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = os.path.abspath(args[0])
    problems = []
    if not shutil.which("dpkg-query"):
        print("FAIL: no dpkg-query: this check maps files to Debian packages", file=sys.stderr)
        return 1

    listed = subprocess.run(["bash", os.path.join(root, "scripts/setup.sh"), "--print-packages"],
                            check=True, capture_output=True, text=True).stdout.split()
    if not listed:
        problems.append("scripts/setup.sh --print-packages printed no packages")

    files = list(project_files(root))
    local_modules = {os.path.splitext(os.path.basename(f))[0] for f in files if f.endswith(".py")}
    # packages of the project (a directory with an __init__.py: python/rpusim)
    local_modules |= {os.path.basename(os.path.dirname(f)) for f in files
                      if os.path.basename(f) == "__init__.py"}
    texts = {}
    for f in files:
        if f.endswith(".py") or f.endswith(SHELL_EXT):
            with open(f, encoding="utf-8") as fh:
                texts[f] = fh.read()
    functions = set()
    for f, t in texts.items():
        if f.endswith(SHELL_EXT):
            functions |= defined_functions(t)
    uses = []
    for f, t in texts.items():
        if f.endswith(".py"):
            if not scan_python(t, f, 1, uses):
                problems.append(f"{os.path.relpath(f, root)}: not valid Python")
        else:
            scan_shell(t, f, 1, uses, functions - set(WRAPPERS))
            for name, line in functions_with_args_run(t):
                if name not in WRAPPERS:
                    problems.append(
                        f"{os.path.relpath(f, root)}:{line}: function {name} runs its arguments "
                        "as a command; add it to WRAPPERS in mpi_tests/deps_check.py (with the "
                        "number of arguments before the command) so that its commands are "
                        "checked")

    db = package_db()
    via = closure(listed, db)
    # (a listed package that is not installed, e.g. dataset-fashion-mnist after
    # setup.sh --no-fashion, is no fault: what needs it is not found and named below)

    modules = sorted({u.name for u in uses if u.kind == "module" and u.name not in local_modules})
    where_module = resolve_modules(python, modules) if modules else {}
    interpreter = os.path.realpath(python)

    # where each module and command is, then one dpkg query for all of them
    found = {}  # (kind, name) -> file or None
    for u in uses:
        key = (u.kind, u.name)
        if key in found or (u.kind == "module" and u.name in local_modules):
            continue
        if u.kind == "command" and "/" in u.name and not u.name.startswith("/"):
            continue  # a relative path: a file of the project (build/src/rpusim)
        if u.kind == "module":
            f = where_module.get(u.name)
            f = interpreter if f == "built-in" else f
        elif u.name.startswith("/"):
            f = u.name if os.path.exists(u.name) else None
        else:
            f = shutil.which(u.name, path=PATH)
        found[key] = f
    names = {f: candidates(f) for f in set(found.values()) if f}
    owners = dpkg_owners([c for cs in names.values() for c in cs])
    package = {f: next((owners[c] for c in cs if c in owners), None) for f, cs in names.items()}

    places = {}  # (kind, name) -> [(use, ...)] in file order
    for u in uses:
        if (u.kind, u.name) in found:
            places.setdefault((u.kind, u.name), []).append(u)
    for (kind, name), us in sorted(places.items()):
        optional = all(u.optional for u in us)
        where = ", ".join(dict.fromkeys(u.where(root) for u in us))
        what = f"{kind} {name} ({where})"
        f = found[(kind, name)]
        pkg = package.get(f) if f else None
        if f is None:
            msg = (f"{what}: not found by {python}" if kind == "module"
                   else f"{what}: not found in {PATH}")
            if optional:
                if verbose:
                    print(f"optional {msg}")
                continue
            problems.append(msg + ": install it and add its package to scripts/setup.sh")
            continue
        if pkg is None:
            if not optional:
                problems.append(f"{what}: {f} belongs to no Debian package (installed by "
                                "hand?); use a Debian package and add it to scripts/setup.sh")
            continue
        essential, priority = db.get(pkg, (False, "", [], []))[:2]
        if pkg in via and via[pkg] == pkg:
            how = "listed"
        elif essential or priority == "required":
            how = "base system"
        elif pkg in via:
            how = f"via {via[pkg]}"
        elif optional:
            how = "optional, not installed by setup.sh"
        else:
            problems.append(f"{what}: {f} is in package {pkg}, which scripts/setup.sh does "
                            f"not install: add {pkg} to its package list")
            continue
        if verbose:
            print(f"{what}: {f} -> {pkg} ({how})")

    n_mod = len({u.name for u in uses if u.kind == "module"})
    n_cmd = len({u.name for u in uses if u.kind == "command"})
    for p in sorted(set(problems)):
        print(f"FAIL: {p}", file=sys.stderr)
    print(f"deps_check: {n_mod} Python modules and {n_cmd} commands in {len(texts)} files, "
          f"{len(listed)} packages listed by scripts/setup.sh: "
          f"{'all covered' if not problems else f'{len(set(problems))} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
