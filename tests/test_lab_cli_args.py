"""``rdv lab`` refuses what it would silently ignore, before any lab is built.

What a user saw: ``rdv lab matrix --presets --cells 'a-rst/*'`` (or ``--delays``,
``--predict``) ran every preset, minutes, with the subset asked for ignored; ``rdv lab
faststart cone`` said ``unknown preset(s) cone`` without the names there are, where
``rdv lab run cone`` lists them. Now the first is refused at once (exit 2, saying what
to drop) and both name the known presets. No lab is built: milliseconds after start-up.
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


def test_faststart_names_the_unknown_preset_and_the_known_ones() -> None:
    proc = subprocess.run(
        [*RDV, "faststart", "cone-fw", "cone", "x"], capture_output=True, text=True, timeout=15
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("rdv lab: unknown preset 'cone' (known: cone-fw, cone-rst,")
