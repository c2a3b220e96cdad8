#!/usr/bin/env python3
"""Checks the shape of core-api/src, as issue #9 set it; run by .ci/run, rerun by anyone:

    python3 core-api/checks/structure.py            # exits 1 and says why when a rule is broken
    python3 core-api/checks/structure.py --graph    # also prints the file import graph

Rules:
1. No import circle between the files of core-api/src (a file imports another when it names it
   with `use crate::…`, `use super::…` or an inline `crate::…` path; `mod x;` is ownership, not use).
2. No SQL in a routes file (routes call services; services call repos).
3. No domain imports another domain's routes or service (repos are shared on purpose: a table has
   one owner, whose repo others may read).
4. No source file much above 450 lines (500 is the hard stop).
5. No `#[path = …]` that reaches into another crate (shared test code lives in `testkit/`).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "core-api", "src")
DOMAINS = {"auth", "member", "follow", "post", "moderation", "export"}
MAX_LINES = 500


def module_of(rel):
    """auth/routes.rs -> ('auth', 'routes'); auth/mod.rs -> ('auth',); lib.rs -> ()."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)  # string literals (SQL, messages)
    return "\n".join(line.split("//", 1)[0] for line in text.split("\n"))


def expand_use_tree(tree):
    """'crate::{a::{b, c}, d}' -> ['crate::a::b', 'crate::a::c', 'crate::d']."""
    tree = re.sub(r"\s+", "", tree)
    tree = re.sub(r"\bas\w+", "", tree)  # `x as y` (spaces already gone: 'xasy' is rare enough)
    out = []

    def walk(prefix, text):
        depth, start, items = 0, 0, []
        for i, ch in enumerate(text):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(text[start:i])
                start = i + 1
        items.append(text[start:])
        for item in items:
            if not item:
                continue
            if "{" in item:
                head, rest = item.split("{", 1)
                walk(prefix + head, rest[: rest.rfind("}")])
            else:
                out.append(prefix + item)

    walk("", tree)
    return out


def references(text):
    text = strip_comments(text)
    paths = []
    for match in re.finditer(r"\buse\s+([^;]+);", text):
        paths += expand_use_tree(match.group(1))
    without_uses = re.sub(r"\buse\s+[^;]+;", "", text)
    paths += re.findall(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", without_uses)
    return paths


def resolve(path, here, modules, is_mod_file):
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    elif parts[0] in ("super", "self"):
        base = here if is_mod_file else here[:-1]  # the module this file's items live in
        rest = parts
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    else:
        # A path from a child module (`use routes::router;` in a mod.rs), else an outside crate.
        base = here if is_mod_file else here[:-1]
        rest = parts
        if base + (parts[0],) not in modules:
            return None
    best = None
    for n in range(len(rest) + 1):
        candidate = base + tuple(rest[:n])
        if candidate in modules:
            best = candidate
    return best


def main():
    files = {}
    for dirpath, _, names in os.walk(SRC):
        for name in names:
            if name.endswith(".rs"):
                rel = os.path.relpath(os.path.join(dirpath, name), SRC)
                files[rel] = open(os.path.join(dirpath, name), encoding="utf-8").read()
    modules = {module_of(rel): rel for rel in files if not rel.endswith("main.rs")}
    graph = {}
    for rel, text in files.items():
        here = module_of(rel)
        is_mod_file = os.path.basename(rel) in ("mod.rs", "lib.rs", "main.rs")
        edges = set()
        for path in references(text):
            target = resolve(path, here, modules, is_mod_file)
            if target is not None and target != here and target != ():
                edges.add(modules[target])
        graph[rel] = edges

    problems = []
    # 1. cycles (Tarjan's strongly connected components)
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            connect(v)
    for scc in sccs:
        problems.append("import circle between: " + ", ".join(scc))

    for rel, text in files.items():
        parts = rel.split(os.sep)
        lines = text.count("\n") + 1
        if lines > MAX_LINES:
            problems.append(f"{rel}: {lines} lines (at most {MAX_LINES})")
        if parts[-1] == "routes.rs" and re.search(r"sqlx::|\b(SELECT|INSERT|UPDATE|DELETE FROM)\b", text):
            problems.append(f"{rel}: SQL in a routes file")
        if parts[0] in DOMAINS:
            for target in graph[rel]:
                tparts = target.split(os.sep)
                if tparts[0] in DOMAINS and tparts[0] != parts[0] and tparts[-1] in ("routes.rs", "service.rs"):
                    problems.append(f"{rel}: imports another domain's {target}")

    for crate_dir, _, names in os.walk(ROOT):
        if "/target" in crate_dir or "/.git" in crate_dir:
            continue
        for name in names:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(crate_dir, name)
            for m in re.finditer(r'#\[path\s*=\s*"([^"]+)"\]', open(path, encoding="utf-8").read()):
                if "../../" in m.group(1) or m.group(1).count("..") > 1:
                    problems.append(f"{os.path.relpath(path, ROOT)}: #[path] into another crate: {m.group(1)}")

    if "--graph" in sys.argv:
        for rel in sorted(graph):
            print(f"{rel} -> {', '.join(sorted(graph[rel])) or '-'}")
    edges = sum(len(e) for e in graph.values())
    if problems:
        print("\n".join(problems))
        print(f"structure: {len(problems)} problem(s) in {len(files)} files, {edges} imports")
        return 1
    print(f"structure: ok — {len(files)} files, {edges} imports, no circle, no SQL in routes, "
          f"no cross-domain route/service import, no file over {MAX_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
