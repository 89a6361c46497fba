"""Every public name has a docstring with a runnable example.

"Public" is ``fnn.__all__`` and the ``__all__`` of every public submodule (the modules that
``fnn.__all__`` names, plus ``fnn.tree`` and ``fnn.checks``, which custom layers use). A public
function or class must have a docstring containing a ``>>>`` example; pytest's
``--doctest-modules`` (pyproject.toml) runs those examples, so they cannot rot. Constants and
type aliases (``FASHION_CLASSES``, ``PyTree``) and the loss instances (``fnn.mse``, a
``Loss(value, vjp)`` pair documented in ``fnn.losses``' module docstring) carry no docstring of
their own and are skipped.
"""

import importlib
import inspect

import pytest

import fnn

EXTRA_PUBLIC_MODULES = ("fnn.tree", "fnn.checks")

# Public names allowed to lack an example: none (kept so a name can be added with a reason).
KNOWN_MISSING: set[str] = set()


def public_modules():
    modules = {"fnn": fnn}
    for name in fnn.__all__:
        obj = getattr(fnn, name)
        if inspect.ismodule(obj):
            modules[obj.__name__] = obj
    for name in EXTRA_PUBLIC_MODULES:
        modules[name] = importlib.import_module(name)
    return modules


def documentable(obj) -> bool:
    """Functions and classes defined in fnn (not constants, not typing aliases)."""
    return (inspect.isfunction(obj) or inspect.isclass(obj)) and \
        getattr(obj, "__module__", "").startswith("fnn")


def public_names():
    out = []
    for mod_name, module in public_modules().items():
        assert hasattr(module, "__all__"), f"{mod_name} is public but has no __all__"
        for name in module.__all__:
            obj = getattr(module, name)
            if documentable(obj):
                out.append((f"{mod_name}.{name}", obj))
    return out


def missing_example(obj) -> bool:
    return ">>>" not in (inspect.getdoc(obj) or "")


NAMES = public_names()


def test_every_public_module_is_found():
    modules = public_modules()
    for name in ("fnn", "fnn.layers", "fnn.datasets", "fnn.initializers", "fnn.plot",
                 "fnn.threads", "fnn.tree", "fnn.checks"):
        assert name in modules
    assert len(NAMES) > 100


@pytest.mark.parametrize("qualname,obj", NAMES, ids=[n for n, _ in NAMES])
def test_public_name_has_docstring_with_example(qualname, obj):
    if qualname in KNOWN_MISSING:
        pytest.skip("completed by the lead after the checkpoint merge")
    doc = inspect.getdoc(obj)
    assert doc, f"{qualname} has no docstring"
    assert ">>>" in doc, f"{qualname}'s docstring has no runnable (>>>) example"


def test_known_missing_set_is_current():
    """Names in KNOWN_MISSING that now have an example must leave the set (keep it honest)."""
    by_name = dict(NAMES)
    stale = sorted(n for n in KNOWN_MISSING if n not in by_name or not missing_example(by_name[n]))
    assert not stale, f"remove from KNOWN_MISSING (documented now, or not public): {stale}"
