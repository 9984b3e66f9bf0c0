"""``help()`` on a public name of ``rdv_core`` says what it does (the README's library
section sends users to the names; ``help(rdv_core.Prediction.to_json)`` said nothing)."""

from __future__ import annotations

import inspect
from typing import Any

import rdv_core

#: Public methods without a docstring, each in a file another change owns.
KNOWN: frozenset[str] = frozenset({"Upgrader.is_dialer"})


def _undocumented(name: str, obj: Any) -> list[str]:
    doc = inspect.getdoc(obj) if inspect.isclass(obj) or callable(obj) else "constant"
    # A dataclass without a docstring gets its signature as one: "Name(t: float, ...)".
    missing = [name] if not doc or doc.startswith(f"{name}(") else []
    if inspect.isclass(obj):
        for attr, value in vars(obj).items():
            func = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
            if not attr.startswith("_") and inspect.isfunction(func) and not func.__doc__:
                missing.append(f"{name}.{attr}")
    return missing


def test_every_public_name_and_method_has_a_docstring() -> None:
    aliases = {"EventCallback", "OfferCallback", "FailReason", "Origin"}  # typing aliases
    missing = [
        found
        for name in rdv_core.__all__
        if not name.startswith("__") and name not in aliases
        for found in _undocumented(name, getattr(rdv_core, name))
    ]
    assert sorted(set(missing) - KNOWN) == []
