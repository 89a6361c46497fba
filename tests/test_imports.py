"""fnn's modules import each other without cycles (top-level imports; a function may import
lazily what it needs)."""

import ast
from pathlib import Path

FNN = Path(__file__).resolve().parents[1] / "fnn"


def module_name(path: Path) -> str:
    parts = path.relative_to(FNN.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in FNN.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.parse(path.read_text()).body:  # top level only
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))
                if not base.startswith("fnn"):
                    continue
                for alias in node.names:  # `from fnn import optim` imports the module fnn.optim
                    target = f"{base}.{alias.name}"
                    graph[mod].add(target if target in modules else base)
            elif isinstance(node, ast.Import):
                graph[mod].update(a.name for a in node.names if a.name.startswith("fnn"))
    for mod in graph:  # a package's __init__ running is not a dependency of its own modules
        graph[mod] = {t for t in graph[mod] if t in modules and not mod.startswith(t + ".")
                      and t != mod}
    return graph


def test_no_import_cycles_inside_fnn():
    graph = import_graph()
    cycles, done = [], set()

    def visit(mod, stack):
        if mod in stack:
            cycles.append(stack[stack.index(mod):] + [mod])
            return
        if mod in done:
            return
        for target in sorted(graph.get(mod, ())):
            visit(target, stack + [mod])
        done.add(mod)

    for mod in sorted(graph):
        visit(mod, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_top_level_imports():
    graph = import_graph()
    assert "fnn.keys" in graph["fnn.threads"] and "fnn.threads" in graph["fnn.gradients"]
