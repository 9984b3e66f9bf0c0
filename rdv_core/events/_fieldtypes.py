"""The type check of an event read back from JSON (:meth:`Event.from_json`).

A JSONL file may come from anyone (``rdv tui --replay FILE``): a ``"t": "x"`` or a
``"candidate": 5`` used to build an event that broke the dashboard later, far from the
line at fault. Each field is checked against its annotation here, so that a bad line is
refused with its field named. The annotations events use are few: ``int``, ``float``,
``str``, ``bool``, ``None``, ``Literal``, unions, ``tuple[X, ...]`` and
:class:`~rdv_core.events.Candidate`; anything else is not checked.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any

__all__ = ["check_fields"]


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _conforms(value: Any, kind: Any) -> bool:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return True
    if kind is float:  # a number written without a fraction ("t": 0) is a float too
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in (str, bool):
        return isinstance(value, kind)
    if kind is type(None):
        return value is None
    if origin is typing.Literal:
        # The words' type only: a newer rdv may write a reason or origin this one does
        # not know yet, and the dashboard shows any word.
        return any(type(value) is type(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return isinstance(value, tuple) and all(_conforms(item, args[0]) for item in value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return isinstance(value, kind)  # its own fields: checked by _problem
    return True


def _problem(cls: type, values: dict[str, Any]) -> tuple[str, Any, str] | None:
    """The first field of ``values`` that does not fit ``cls``: its (dotted) name, its
    value and its annotation; None when all fit."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in values or f.name not in hints:
            continue
        value, kind = values[f.name], hints[f.name]
        if not _conforms(value, kind):
            return f.name, value, str(f.type)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            inner = _problem(type(value), dataclasses.asdict(value))
            if inner is not None:
                return (f"{f.name}.{inner[0]}", *inner[1:])
    return None


def check_fields(cls: type, values: dict[str, Any]) -> None:
    """Refuse ``values`` for ``cls`` when a field does not fit its annotation.

    Raises:
        ValueError: naming the field, what it holds and what it should hold.
    """
    problem = _problem(cls, values)
    if problem is None:
        return
    name, value, wanted = problem
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    raise ValueError(f"field {name!r} is {shown}, not {wanted}")
