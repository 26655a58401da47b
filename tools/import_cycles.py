"""List the import cycles between the modules of a package, from the source alone (no import is executed).

An edge A -> B means module A imports module B. Imports that run when A is imported (module level, including
inside `if`/`try` blocks and class bodies) are *top-level* edges; imports inside a function body run only when
the function is called and are reported apart, as *deferred* edges: they are how a cycle is usually hidden.

A cycle is reported as a strongly connected component of the graph (a set of modules each of which reaches
every other), with one shortest closed path through it as an example. Importing `a.b.c` also runs `a/__init__`
and `a/b/__init__`; those implicit parent edges are left out (else every module would sit in a cycle with its
package), while an explicit `from a import name` of a non-module name counts as an edge to `a`. Imports
under `if TYPE_CHECKING:` (for annotations only) never run and are left out.

Usage: python tools/import_cycles.py [--package fastfit] [--root .] [--json]
Exit status 0 (2 when there is no such package). The output lists the top-level cycles, then the cycles
that deferred imports close, then the deferred imports themselves.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    deferred: bool  # the import sits inside a function body


def find_modules(root: Path, package: str) -> dict[str, Path]:
    """Map each module name of `package` (source files under `root/package`) to its path."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`, whose imports never run."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            assert isinstance(child, ast.If)
            for other in child.orelse:  # the `else:` branch does run
                yield from _walk(ast.Module(body=[other], type_ignores=[]), in_function)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _walk(child, inner)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def module_edges(name: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    """The imports of module `name` that name another module of the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    edges: dict[tuple[str, int], Edge] = {}
    for node, deferred in _walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _resolve(name, is_package, node)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.append(submodule if submodule in modules else base)
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a non-module name: its module
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.setdefault((target, node.lineno), Edge(name, target, node.lineno, deferred))
    return list(edges.values())


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); only components of two or more modules, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def shortest_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest closed path inside `component`, starting and ending at its first module."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [start] + path[::-1][1:] + [start] if node != start else [start, start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return [start]


def analyse(root: Path, package: str) -> dict:
    """Top-level cycles, cycles that deferred imports close, and the deferred imports."""
    modules = find_modules(root, package)
    edges = [edge for name, path in modules.items() for edge in module_edges(name, path, modules)]
    top: dict[str, set[str]] = {name: set() for name in modules}
    full: dict[str, set[str]] = {name: set() for name in modules}
    for edge in edges:
        full[edge.source].add(edge.target)
        if not edge.deferred:
            top[edge.source].add(edge.target)
    top_cycles = strongly_connected(top)
    full_cycles = strongly_connected(full)
    return {
        "modules": len(modules),
        "top_level_cycles": [{"modules": c, "example": shortest_cycle(top, c)} for c in top_cycles],
        "cycles_with_deferred_imports": [{"modules": c, "example": shortest_cycle(full, c)} for c in full_cycles],
        "deferred_imports": [{"module": e.source, "line": e.line, "imports": e.target}
                             for e in edges if e.deferred],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="fastfit")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not (Path(args.root) / args.package / "__init__.py").is_file():
        parser.error(f"no package {args.package!r} under {args.root}")
    result = analyse(Path(args.root), args.package)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return 0
    print(f"Top-level import cycles: {len(result['top_level_cycles'])}")
    for cycle in result["top_level_cycles"]:
        print(f"  {len(cycle['modules'])} modules: {' -> '.join(cycle['example'])}")
        print(f"    members: {', '.join(cycle['modules'])}")
    print(f"Cycles once imports inside functions count: {len(result['cycles_with_deferred_imports'])}")
    for cycle in result["cycles_with_deferred_imports"]:
        print(f"  {len(cycle['modules'])} modules: {' -> '.join(cycle['example'])}")
        print(f"    members: {', '.join(cycle['modules'])}")
    print(f"Imports inside functions: {len(result['deferred_imports'])}")
    for item in result["deferred_imports"]:
        print(f"  {item['module']}:{item['line']} imports {item['imports']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
