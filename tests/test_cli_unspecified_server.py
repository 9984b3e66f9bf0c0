"""The URL `rdv serve` prints when it listens everywhere (``http://0.0.0.0:PORT``) is this
machine: peers given it race over loopback, as with ``http://127.0.0.1:PORT``.

Before, the default spaces (public and private) applied there: two terminals on one machine
went relay after the picker's second. The run is in a network namespace holding only ``lo``
(``unshare --net``), so even that old behaviour sends nothing beyond this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.test_readme_examples import REPO, _netns_prefix

SCRIPT = r"""
ip link set lo up
py="$1"
"$py" -m rdv_tui serve --listen 127.0.0.1:18555 2>serve.err &
server=$!
for _ in $(seq 100); do grep -q listening serve.err && break; sleep 0.1; done
"$py" -m rdv_tui accept http://0.0.0.0:18555 tok > got 2> accept.err &
accepter=$!
echo hello | "$py" -m rdv_tui dial http://0.0.0.0:18555 tok > /dev/null 2> dial.err
dialed=$?
wait $accepter
accepted=$?
kill $server
wait $server
echo "codes $dialed $accepted"
"""


def test_peers_of_a_server_printed_as_0_0_0_0_go_p2p_over_loopback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    done = subprocess.run(
        [*_netns_prefix(), "sh", "-c", SCRIPT, "sh", sys.executable],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert "codes 0 0" in done.stdout, done.stdout + done.stderr
    assert (tmp_path / "got").read_text() == "hello\n"
    for side in ("dial", "accept"):
        said = (tmp_path / f"{side}.err").read_text()
        assert "peer connected: p2p 127.0.0.1:" in said, said
