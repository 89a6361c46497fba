"""fnn's modules import each other without a circle, counting every import: top level and
inside functions (a lazy import still makes a circle at run time), but not those under
``if TYPE_CHECKING:``, which never run."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fnn"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks (imports there never run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _resolve(name: str) -> str | None:
    """The fnn module ``name`` refers to: itself, or the longest module prefix of it."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """The fnn modules ``module`` imports, anywhere in its body (functions included)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from fnn.ops import pool` imports the module fnn.ops.pool
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target) if target.startswith("fnn") else None
            if resolved and resolved != module:
                found.add(resolved)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_circle():
    """Package ``__init__`` files import their children; a child importing a sibling through
    the package path is an edge to the sibling, not to the package."""
    graph = {m: {t for t in imports_of(m) if not m.startswith(t + ".")} for m in MODULES}
    cycle = _cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_top_level_and_function_level_imports():
    assert "fnn.keys" in imports_of("fnn.threads")
    assert "fnn.threads" in imports_of("fnn.gradients")
    # fnn.ops._backend imports the compiled kernels inside a function, on first use
    assert "fnn.ops.compiled" in imports_of("fnn.ops._backend")


def test_the_numerics_import_only_numerics():
    """``fnn.ops`` knows nothing of layers, losses, optimisers or training: its modules import
    only other ``fnn.ops`` modules (DESIGN.md's rule "layers validate, ops compute")."""
    outside = {m: sorted(t for t in imports_of(m) if not t.startswith("fnn.ops"))
               for m in MODULES if m.startswith("fnn.ops")}
    assert {m: t for m, t in outside.items() if t} == {}
