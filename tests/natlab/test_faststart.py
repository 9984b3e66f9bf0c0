"""Fast start between real NATs: relay from the first byte, direct where a path exists.

A representative subset of ``rdv lab faststart`` (the full table is in the README): a
preset with a direct path must end on it with the payload intact across the switch; a
symmetric one stays on the relay, intact too (docs/PROTOCOL.md section 16).
"""

from __future__ import annotations

import pytest

from rdv_core.lab import get_preset, run_faststart

#: Runs per preset (the relay-only one waits out three attempts of 1 s each). cone-fw's
#: second run is test_peer_exit.py's, in a lab of its own.
RUNS = {"cone-fw": 1, "symmetric-both": 1}


@pytest.mark.parametrize(("name", "expect"), [("cone-fw", "direct"), ("symmetric-both", "relay")])
def test_fast_start_ends_where_physics_allows(
    name: str, expect: str, rdv_command: list[str]
) -> None:
    result = run_faststart(get_preset(name), RUNS[name], rdv_command=rdv_command)
    for run in result.runs:
        assert run.outcome == expect, run.to_json()
        assert run.data_ok, run.to_json()
        assert run.first_byte_ms is not None  # the first byte came over the relay
        if expect == "direct":
            assert run.to_direct_ms is not None and run.attempts >= 1
