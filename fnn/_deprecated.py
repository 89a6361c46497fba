"""Old names kept for one release: each warns once per process, naming the new one.

>>> import warnings
>>> from fnn._deprecated import renamed
>>> def linear_schedule(start, end, steps):
...     return start
>>> linear = renamed(linear_schedule, "fnn.optim.linear", "fnn.optim.linear_schedule")
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     _ = linear(1.0, 0.0, 10), linear(1.0, 0.0, 10)
>>> [str(w.message) for w in caught]
['fnn.optim.linear is deprecated: use fnn.optim.linear_schedule (it will be removed in the next release)']
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_warned: set[str] = set()
_lock = threading.Lock()


def warn_once(old: str, new: str, stacklevel: int = 3) -> None:
    """A ``DeprecationWarning`` saying ``old`` is deprecated for ``new``, the first time only."""
    with _lock:
        if old in _warned:
            return
        _warned.add(old)
    warnings.warn(f"{old} is deprecated: use {new} (it will be removed in the next release)",
                  DeprecationWarning, stacklevel=stacklevel)


def renamed(fn: F, old: str, new: str) -> F:
    """``fn`` under its old name ``old``: calling it warns once that ``new`` replaces it."""

    @functools.wraps(fn)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warn_once(old, new)
        return fn(*args, **kwargs)

    alias.__doc__ = f"Deprecated alias of :func:`{new}` (warns once)."
    return alias  # type: ignore[return-value]


def module_getattr(module: str, aliases: dict[str, tuple[str, Callable[[], Any]]]
                   ) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving old attribute names: ``aliases[old] = (new_name,
    get)`` where ``get()`` returns the object now called ``new_name``; other names raise
    ``AttributeError`` as usual."""

    def __getattr__(name: str) -> Any:
        if name in aliases:
            new, get = aliases[name]
            warn_once(f"{module}.{name}", new)
            return get()
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


__all__ = ["module_getattr", "renamed", "warn_once"]
