"""The right server, the wrong path: a ``404`` says which part of the URL to check.

``rdv serve --prefix /rdv`` and a client URL without it: the client printed ``server
rejected: 404 Not Found: 404 page not found``, which does not say that the path is what is
wrong (the host and port were right). Real server on loopback.
"""

from __future__ import annotations

import pytest

from rdv_core.errors import ServerRejectedError
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native

from tests.race_support import client


@pytest.mark.parametrize("path", ["", "/other"])
async def test_a_url_outside_the_prefix_names_the_path(path: str) -> None:
    server = RdvServer()
    front = await start_native(server, host="127.0.0.1", port=0, prefix="/rdv")
    try:
        with pytest.raises(ServerRejectedError) as caught:
            await client().dial(f"http://127.0.0.1:{front.port}{path}", "tok")
    finally:
        await front.close()
        await server.close()
    assert str(caught.value) == (
        "server rejected: 404 Not Found: 404 page not found; nothing serves rdv at this URL's "
        "path: check it (rdv serve --prefix)"
    )
    assert caught.value.status == 404
