"""Helpers shared by the natlab tests."""

from __future__ import annotations

import pytest

from rdv_core.lab._probe import probe


def require_impairment() -> None:
    """Skip unless delay/loss can be applied here (netem or the NFQUEUE delayer)."""
    caps = probe()
    if not caps.can_impair:
        pytest.skip(f"no delay/loss on this machine: {'; '.join(caps.notes)}")
