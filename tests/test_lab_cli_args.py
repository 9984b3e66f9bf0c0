"""``rdv lab`` refuses what it would silently ignore, before any lab is built.

What a user saw: ``rdv lab matrix --presets --cells 'a-rst/*'`` (or ``--delays``,
``--predict``) ran every preset, minutes, with the subset asked for ignored; ``rdv lab
faststart cone`` said ``unknown preset(s) cone`` without the names there are, where
``rdv lab run cone`` lists them; ``rdv lab doctor`` named only the first unknown preset;
``--cells`` matching nothing did not say which cells there are. Now the first is refused
at once (exit 2, saying what to drop), every unknown preset is named with the known ones,
and the cells there are are listed. No lab is built: milliseconds after start-up.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

RDV = [sys.executable, "-m", "rdv_tui", "lab"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--cells", "a-rst/*"], "--cells"),
        (["--delays", "0,5", "--predict"], "--delays and --predict"),
    ],
)
def test_matrix_presets_with_cell_options_is_refused(extra: list[str], named: str) -> None:
    # Before: every preset ran (over a minute); the timeout makes that a failure here.
    proc = subprocess.run(
        [*RDV, "matrix", "--presets", *extra], capture_output=True, text=True, timeout=15
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == (
        f"rdv lab matrix: {named} choose matrix cells, and --presets runs every preset "
        "instead: drop one or the other\n"
    )


@pytest.mark.parametrize("command", ["faststart", "doctor"])
def test_every_unknown_preset_is_named_with_the_known_ones(command: str) -> None:
    """Before: only the first (``unknown preset 'cone'``); fixing it, the next run stopped
    at ``x``. The doctor's list of known names now has its ``sequential-a`` too."""
    proc = subprocess.run(
        [*RDV, command, "cone-fw", "cone", "x", "cone"], capture_output=True, text=True, timeout=15
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("rdv lab: unknown presets 'cone', 'x' (known: cone-fw, cone-rst,")
    assert proc.stderr.endswith(", vpn, sequential-a)\n" if command == "doctor" else ", vpn)\n")


def test_cells_that_match_nothing_are_refused_naming_the_cells_there_are() -> None:
    """Before: ``no cell matches 'a-foo/*'``, and the user had to read the source to learn
    the names; now they are listed, with the ``--delays`` given, before any lab is built."""
    proc = subprocess.run(
        [*RDV, "matrix", "--cells", "a-foo/*", "--delays", "0,20"],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == (
        "rdv lab matrix: no cell matches 'a-foo/*'; the 30 cells are 'FILTERS DELAYS' for the "
        "filters a-drop/b-drop, a-drop/b-rst, a-rst/b-drop, a-rst/b-rst, a-icmp/b-drop, "
        "a-icmp/b-rst and the delays 0/0, 20/20, 20/0, 0/20, 20/20 loss5% (e.g. --cells "
        "'a-icmp/b-rst 20/20 loss5%'; shell patterns, several joined by '|')\n"
    )
