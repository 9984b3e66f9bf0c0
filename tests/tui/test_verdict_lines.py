"""The verdict's line per candidate agrees with the race table.

A candidate whose TCP conn came up and whose header exchange then failed (``misdial``:
another token's peer answered) read ``connected`` in the verdict, under a race table
that said ``failed: misdial``.
"""

from __future__ import annotations

from rdv_core.doctor import candidate_lines
from rdv_core.events import Event


def test_a_misdial_is_not_called_connected(race_events: list[Event]) -> None:
    lines, outcome, chosen = candidate_lines(race_events)
    (misdialed,) = [line for line in lines if line.startswith("[fd00::5]:52000")]
    assert misdialed == "[fd00::5]:52000 private6: connected, then misdial"
    assert (outcome, chosen) == ("direct", "203.0.113.99:52000")
