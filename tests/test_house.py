"""The house rules of fnn/, checked: no module over 450 lines, no function over 80 (numba
kernels excepted), no module hidden behind a function of the same name, and DESIGN.md's layout
lists exactly the files of fnn/ (the import circle check is tests/test_imports.py)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fnn"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 450, 80


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_numba_kernel(node: ast.AST) -> bool:
    decorators = getattr(node, "decorator_list", [])
    return any(re.search(r"\b(n?jit|vectorize|guvectorize)\b", ast.unparse(d))
               for d in decorators)


def test_module_and_function_sizes():
    too_long = []
    for path in MODULES.values():
        text = path.read_text()
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and not _is_numba_kernel(node):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: "
                                    f"{size} lines")
    assert not too_long, "over the house sizes:\n" + "\n".join(too_long)


@pytest.mark.parametrize("package", sorted(m for m, p in MODULES.items()
                                           if p.name == "__init__.py"))
def test_no_module_is_hidden_behind_a_function(package):
    """``fnn.summary`` must be one thing: a submodule and an exported function of the same
    name make ``fnn.x`` the function and ``import fnn.x`` the module."""
    mod = importlib.import_module(package)
    hidden = []
    for child in (m for m in MODULES if m.rpartition(".")[0] == package):
        short = child.rpartition(".")[2]
        value = getattr(mod, short, None)
        if value is not None and not isinstance(value, type(mod)):
            hidden.append(f"{child} is hidden by {package}.{short} ({type(value).__name__})")
    assert not hidden, "\n".join(hidden)


def design_layout_files(text: str | None = None) -> set[str]:
    """The files DESIGN.md's layout section names under fnn/: one per line, first word."""
    text = (ROOT / "DESIGN.md").read_text() if text is None else text
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    return {line.split()[0] for line in block.splitlines()
            if line.startswith("fnn/") and line.split()[0].endswith((".py", ".typed"))}


def test_the_layout_parser_reads_one_file_per_line():
    text = "## Layout\n```\nfnn/a.py   job a\nfnn/b/c.py job\n  fnn/x.py indented\n```\n## Next"
    assert design_layout_files(text) == {"fnn/a.py", "fnn/b/c.py"}


def test_design_layout_lists_exactly_the_files_of_fnn():
    listed = design_layout_files()
    actual = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*") if p.is_file()
              and p.suffix in (".py", ".typed") and "__pycache__" not in p.parts}
    assert sorted(actual - listed) == [], "files DESIGN.md does not list"
    assert sorted(listed - actual) == [], "files DESIGN.md lists that do not exist"
