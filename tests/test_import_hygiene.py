"""The headless core never imports textual or rich (DESIGN.md section 1).

Each check runs in a fresh interpreter, so that what the test session itself imported
cannot hide a leak. Modules are discovered at test time: new ones are covered as they
appear.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
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
    """Run ``body`` (after :data:`PRELUDE`) in a fresh interpreter; it prints one JSON line.

    Any exception in ``body``, a module that does not exist included, fails the calling test
    with the interpreter's traceback: a check that cannot run is not a pass.
    """
    script = PRELUDE + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


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
            module = importlib.import_module(f"rdv_tui.commands.{{name}}")
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
