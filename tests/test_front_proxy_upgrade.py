"""A reverse proxy in front of the server that drops rdv's Upgrade: the error says so.

nginx without ``proxy_http_version 1.1`` or without the ``Upgrade``/``Connection`` lines
(README "Behind a reverse proxy") passes the rdv request on as HTTP/1.0 or without them; the
server answers ``426 invalid rdv upgrade: ...`` and the client printed only that, which reads
as if our own request lacked them. nginx adds no ``Via``, so the proxy hint stayed silent. The
client now says that its request had them and what drops them. Real nginx, the shipped
config with the lines removed, real ``rdv serve`` backends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rdv_core.errors import ServerRejectedError

from tests.balancer_support import BACKEND_ARGS, backends, balancer, client, missing_binary

WITHOUT_UPGRADE = {
    "no Upgrade headers": lambda text: text.replace(
        "proxy_set_header Connection $http_connection;", ""
    ).replace("proxy_set_header Upgrade $http_upgrade;", ""),
    "HTTP/1.0 upstream": lambda text: text.replace("proxy_http_version 1.1;", ""),
}


async def test_nginx_dropping_the_upgrade_is_named(tmp_path: Path) -> None:
    reason = missing_binary("nginx")
    if reason is not None:
        pytest.skip(reason)
    said: dict[str, str] = {}
    async with backends(tmp_path, BACKEND_ARGS["nginx"]) as pool:
        for name, edit in WITHOUT_UPGRADE.items():
            async with balancer("nginx", tmp_path, [b.addr for b in pool], edit=edit) as lb:
                with pytest.raises(ServerRejectedError) as caught:
                    await client(p2p=False).dial(lb.url, f"tok-{len(said)}")
            said[name] = str(caught.value)
    assert said["no Upgrade headers"].startswith(
        "server rejected: 426 Upgrade Required: invalid rdv upgrade: requires connection upgrade;"
    )
    assert said["HTTP/1.0 upstream"].startswith(
        "server rejected: 426 Upgrade Required: invalid rdv upgrade: bad http version for "
        "upgrade HTTP/1.0;"
    )
    for text in said.values():
        assert text.endswith(
            "; our request carried HTTP/1.1 and the Upgrade headers, so a reverse proxy in "
            "front of the server drops them (nginx: proxy_http_version 1.1 and "
            "proxy_set_header Upgrade and Connection, README 'Behind a reverse proxy')"
        ), text
