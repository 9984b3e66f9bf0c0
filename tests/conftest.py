"""Fixtures shared across the suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rdv_core.server._core import RdvServer
from rdv_core.server._native import serve_native


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """A real rdv server (native front) on 127.0.0.1, port 0: its URL; closed afterwards."""
    async with serve_native(RdvServer(), host="127.0.0.1", port=0) as front:
        yield front.url
