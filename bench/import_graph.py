"""The import graph of the project: cycles, and imports that go from a lower layer to a higher one.

Layers (../shared/DESIGN.md): storage (0) < agentlearn's library modules (1) < the entry points that
people and pages drive: agentlearn.cli, agentlearn.__main__, app.py and pages/ (2). Every import counts,
also those inside functions (a lazy import still ties the modules together).

    python -m bench.import_graph          # prints the cycles (none, ideally) and the upward imports
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("storage", "agentlearn", "pages")
ENTRY = ("agentlearn.cli", "agentlearn.__main__", "app")


def modules() -> dict[str, Path]:
    """Module name -> file, for every .py file of the project's packages and app.py."""
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, name: str, known: dict[str, Path]) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            # `from agentlearn import prompts` imports the module agentlearn.prompts
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    known = modules()
    return {name: set(_imports(path, name, known)) for name, path in known.items()}


def layer(name: str) -> int:
    if name.startswith("storage"):
        return 0
    if name in ENTRY or name.startswith("pages"):
        return 2
    return 1


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return sorted(out)


def upward(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) where the imported module sits in a higher layer."""
    return sorted((a, b) for a, targets in g.items() for b in targets if layer(b) > layer(a))


def main() -> int:
    g = graph()
    found = cycles(g)
    print(f"{len(g)} modules, {sum(map(len, g.values()))} imports between them")
    print(f"cycles: {len(found)}")
    for c in found:
        print("  " + " <-> ".join(c))
    up = upward(g)
    print(f"imports from a lower layer to a higher one: {len(up)}")
    for a, b in up:
        print(f"  {a} -> {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
