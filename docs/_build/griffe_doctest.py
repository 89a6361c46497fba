"""A griffe extension: fnn's docstrings are plain reST-ish text with ``>>>`` examples (which
pytest runs as doctests). For the API reference, fence every doctest block as ``pycon`` code and
turn reST roles (``:func:`x```) and double backticks into Markdown code spans, so Markdown does
not read ``>>>`` as nested quotes."""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|exc|obj):`~?([^`]+)`")
_DOUBLE = re.compile(r"``([^`]+)``")


def _fence(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        if stripped.startswith(">>>"):
            indent = len(lines[i]) - len(stripped)
            if out and out[-1].rstrip().endswith("::"):
                out[-1] = out[-1].rstrip()[:-1]
            if out and out[-1].strip():
                out.append("")
            out.append("```pycon")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i][indent:] if len(lines[i]) >= indent else lines[i].lstrip())
                i += 1
            out += ["```", ""]
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _markdown(text: str) -> str:
    parts = re.split(r"(```pycon\n.*?\n```)", _fence(text), flags=re.S)
    for k in range(0, len(parts), 2):  # prose only: leave the examples verbatim
        p = _ROLE.sub(r"`\1`", parts[k])
        p = _DOUBLE.sub(r"`\1`", p)
        parts[k] = re.sub(r"::\n", ":\n", p)
    return "".join(parts)


class DoctestFences(griffe.Extension):
    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None and not getattr(obj.docstring, "_fnn_fenced", False):
            obj.docstring.value = _markdown(obj.docstring.value)
            obj.docstring._fnn_fenced = True
