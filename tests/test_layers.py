"""The layout's promises, checked: layers import one way, and stay small.

rdv_core is a stack of layers (docs/ARCHITECTURE.md section 1): errors < wire < events <
{client, server} < session, with lab beside them on wire alone and config on errors alone.
The import graph here is read from the source with :mod:`ast`, function-level imports and
``TYPE_CHECKING`` blocks included, so that a lazy import cannot hide a dependency.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fresh_python import ROOT, run_json

CORE = ROOT / "rdv_core"
PACKAGES = ("rdv_core", "rdv_tui")
MAX_LINES = 500

#: Each layer of rdv_core (a sub-package or a top module) and the layers it may import.
ALLOWED: Mapping[str, frozenset[str]] = {
    "errors": frozenset(),
    "tcpinfo": frozenset(),
    "config": frozenset({"errors"}),
    "wire": frozenset({"errors"}),
    "events": frozenset({"errors", "wire"}),
    "faststart": frozenset({"errors", "wire", "events"}),
    "client": frozenset({"errors", "tcpinfo", "wire", "events", "faststart"}),
    "server": frozenset({"errors", "tcpinfo", "wire", "events"}),
    "doctor": frozenset({"errors", "wire", "events", "client"}),
    "session": frozenset({"errors", "wire", "events", "client", "doctor"}),
    "lab": frozenset({"errors", "wire"}),
}
#: What ``from rdv_core import Name`` depends on when Name is not a layer: the package's
#: lazy API (rdv_core/__init__.py), which re-exports every layer; no layer may use it.
FACADE = "rdv_core"


@dataclass(frozen=True)
class Import:
    """One import statement of rdv_core, reduced to the layers on both ends."""

    source: str  # the importing layer
    target: str  # the imported layer, or FACADE
    where: str  # path:line, for the failure message

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports {self.target}"


def module_parts(path: Path) -> list[str]:
    """``rdv_core/wire/_lines.py`` -> ``["rdv_core", "wire", "_lines"]`` (packages end at
    their ``__init__``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(node: ast.Import | ast.ImportFrom, package: list[str]) -> list[str]:
    """The absolute names one import statement loads; ``package`` is where it stands."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from .x import y, from .. import z
        base = package[: len(package) - (node.level - 1)]
        module = ".".join([*base, *([node.module] if node.module else [])])
    else:
        module = node.module or ""
    # ``from package import name`` may load the sub-module ``package.name``.
    return [module, *(f"{module}.{alias.name}" for alias in node.names)]


def layer_of(module: str) -> str | None:
    """The rdv_core layer that ``module`` belongs to; None outside rdv_core."""
    parts = module.split(".")
    if parts[0] != "rdv_core":
        return None
    return parts[1] if len(parts) > 1 else FACADE


def core_imports() -> Iterator[Import]:
    """Every import between two different layers of rdv_core (the facade not a source)."""
    for path in sorted(CORE.rglob("*.py")):
        parts = module_parts(path)
        if len(parts) == 1:
            continue  # rdv_core/__init__.py: the lazy API on top of every layer
        source = parts[1]
        is_package = path.name == "__init__.py"
        package = parts if is_package else parts[:-1]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = imported_modules(node, package)
            targets = {layer_of(name) for name in names}
            if isinstance(node, ast.ImportFrom) and layer_of(names[0]) == FACADE:
                # from rdv_core import wire: the layer; from rdv_core import Client: the facade
                targets = {layer_of(name) for name in names[1:]}
                targets = {t if t in ALLOWED else FACADE for t in targets}
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for target in targets:
                if target is not None and target != source:
                    yield Import(source, target, where)


def layer_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for edge in core_imports():
        graph.setdefault(edge.source, set()).add(edge.target)
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            if cycle := visit(nxt, [*path, node]):
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        if cycle := visit(start, []):
            return cycle
    return None


def test_the_graph_reader_sees_what_is_there() -> None:
    """Guards the checks below against passing on an empty graph."""
    graph = layer_graph()
    assert {"errors", "wire", "events"} <= graph["client"]
    assert "client" in graph["session"]


def test_every_layer_of_rdv_core_has_a_place() -> None:
    """A new sub-package or top module must be placed in :data:`ALLOWED` first."""
    found = {
        layer_of(".".join(module_parts(path)))
        for path in CORE.rglob("*.py")
        if path != CORE / "__init__.py"
    }
    assert found == set(ALLOWED)


def test_no_import_cycle_between_the_layers() -> None:
    cycle = find_cycle(layer_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer: str) -> None:
    wrong = [
        str(edge)
        for edge in core_imports()
        if edge.source == layer and edge.target not in ALLOWED[layer]
    ]
    assert wrong == [], f"{layer} may import only {sorted(ALLOWED[layer])}:\n" + "\n".join(wrong)


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}}) is None


def test_relative_imports_resolve_against_their_package() -> None:
    node = ast.parse("from ..wire import _lines").body[0]
    assert isinstance(node, ast.ImportFrom)
    package = ["rdv_core", "session"]
    assert imported_modules(node, package) == ["rdv_core.wire", "rdv_core.wire._lines"]


def test_no_file_of_rdv_core_mentions_rdv_tui() -> None:
    """The bottom layer does not know the app on top (not even by a command's name)."""
    mentions = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(CORE.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
        for number, line in enumerate(path.read_bytes().splitlines(), 1)
        if b"rdv_tui" in line
    ]
    assert mentions == []


def test_no_module_is_over_500_lines() -> None:
    """Small modules with one job (docs/ARCHITECTURE.md section 7)."""
    long = {
        str(path.relative_to(ROOT)): lines
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


#: rdv_core and its sub-packages: each ``__init__.py`` is a public face with an ``__all__``.
PUBLIC_FACES = [
    "rdv_core",
    *(f"rdv_core.{init.parent.name}" for init in sorted(CORE.glob("*/__init__.py"))),
]


@pytest.mark.parametrize("package", PUBLIC_FACES)
def test_public_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_importing_the_wire_format_loads_no_heavier_layer() -> None:
    """rdv_core.wire is sans-IO: a parser user pays for neither the server nor the crypto."""
    result = run_json(
        """
import json, sys
import rdv_core.wire
print(json.dumps({"modules": sorted(sys.modules)}))
"""
    )
    heavy = ("rdv_core.server", "rdv_core.session", "aiohttp", "cryptography")
    loaded = [
        name
        for name in result["modules"]
        if any(name == top or name.startswith(top + ".") for top in heavy)
    ]
    assert loaded == []
