"""The headless core never imports textual or rich (docs/ARCHITECTURE.md section 1).

Each check runs in a fresh interpreter, so that what the test session itself imported
cannot hide a leak. Modules are discovered at test time: new ones are covered as they
appear.
"""

from __future__ import annotations

import textwrap
from typing import Any

from tests.fresh_python import run_json

HEADLESS_COMMANDS = ("serve", "dial", "accept", "lab")

PRELUDE = """
import importlib, json, pkgutil, sys

def ui_modules():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))

def import_all(package_name):
    package = importlib.import_module(package_name)
    names = [package_name]
    def fail(name):
        raise ImportError(f"cannot walk {name}")
    for info in pkgutil.walk_packages(package.__path__, package_name + ".", onerror=fail):
        importlib.import_module(info.name)
        names.append(info.name)
    return names
"""


def run_fresh(body: str) -> dict[str, Any]:
    """Run ``body`` (after :data:`PRELUDE`) in a fresh interpreter; it prints one JSON line."""
    return run_json(PRELUDE + textwrap.dedent(body))


def test_rdv_core_and_all_its_modules_are_headless() -> None:
    result = run_fresh(
        """
        names = import_all("rdv_core")
        print(json.dumps({"modules": names, "ui": ui_modules()}))
        """
    )
    # Discovery works: the foundation's modules are among those imported.
    for name in ("rdv_core", "rdv_core.wire", "rdv_core.wire", "rdv_core.events"):
        assert name in result["modules"]
    assert result["ui"] == [], f"rdv_core imported {result['ui'][:5]}"


def test_headless_commands_are_headless() -> None:
    result = run_fresh(
        f"""
        import argparse
        import rdv_tui.cli  # the entry point's own imports
        for name in {HEADLESS_COMMANDS!r}:
            module = importlib.import_module(f"rdv_tui.cli.commands.{{name}}")
            module.add_parser(argparse.ArgumentParser().add_subparsers())
        print(json.dumps({{"ui": ui_modules()}}))
        """
    )
    assert result["ui"] == [], f"{HEADLESS_COMMANDS} imported {result['ui'][:5]}"


def test_building_the_rdv_parser_is_headless() -> None:
    result = run_fresh(
        """
        import rdv_core
        names = import_all("rdv_core")
        from rdv_tui import cli
        cli.build_parser()
        print(json.dumps({"ui": ui_modules()}))
        """
    )
    assert result["ui"] == [], f"building the parser imported {result['ui'][:5]}"
