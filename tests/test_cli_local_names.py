"""A server URL whose host is this machine under another name is a local server: peers
race over loopback and are not warned that "p2p across NATs will likely fail".

Only ``localhost`` and IP literals counted: ``http://vm:8080`` (the machine's own name,
``127.0.0.1 vm`` in ``/etc/hosts``), ``http://127.1:8080`` or ``http://[::ffff:127.0.0.1]``
reach the server on loopback all the same, yet both sides printed the warning and took
the default spaces (this machine's public and private addresses: issue 16's trap). The
run is in a namespace of its own (``unshare --net --mount``): only ``lo``, and an
``/etc/hosts`` of the test's bound over the machine's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rdv_tui.cli.checks import is_local

from tests.test_readme_examples import REPO, _netns_prefix

SCRIPT = r"""
ip link set lo up
mount --bind hosts /etc/hosts || exit 7
py="$1"; shift
"$py" -m rdv_tui serve --listen :18557 2>serve.err &
server=$!
for _ in $(seq 100); do grep -q listening serve.err && break; sleep 0.1; done
for host in "$@"; do
  url="http://$host:18557"
  "$py" -m rdv_tui accept -v "$url" "tok-$host" > /dev/null 2> "$host.accept" < /dev/null &
  accepter=$!
  echo hello | "$py" -m rdv_tui dial -v "$url" "tok-$host" > /dev/null 2> "$host.dial"
  dialed=$?
  wait $accepter
  echo "$host codes $dialed $?"
done
kill $server
wait $server
"""

HOSTS = "127.0.0.1 rdv-here  # this machine's own name, as Debian writes it\n::1 rdv-here6\n"
NAMES = ["rdv-here", "rdv-here6", "127.1", "[::ffff:127.0.0.1]"]


def test_names_and_forms_of_loopback_are_a_local_server(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text(HOSTS)
    prefix = _netns_prefix()
    # Mount namespaces come with --user too when not root: the bind then stays inside.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    done = subprocess.run(
        [*prefix, "--mount", "sh", "-c", SCRIPT, "sh", sys.executable, *NAMES],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    if done.returncode == 7:
        pytest.skip(f"cannot bind-mount /etc/hosts here: {done.stderr.strip()}")
    for host in NAMES:
        assert f"{host} codes 0 0" in done.stdout, done.stdout + done.stderr
        for side in ("dial", "accept"):
            said = (tmp_path / f"{host}.{side}").read_text()
            assert "spaces=loopback4,loopback6 " in said, said
            # Either loopback family may win the race (both are offered: the line above).
            assert re.search(r"peer connected: p2p (127\.0\.0\.1|\[::1\]):", said), said
            assert "warning" not in said, said


def test_a_hosts_file_decides_only_for_names_it_maps_to_loopback_alone(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "127.0.1.1\tbox.example box  # Debian's line for the machine's name\n"
        "127.0.0.1 both\n192.0.2.7 both\n"
        "# 127.0.0.1 commented\n"
        "not-an-address odd\n"
        "192.0.2.8 far\n"
    )
    here = str(hosts)
    assert is_local("http://box:8080", here) and is_local("http://BOX.example.:8080/rdv", here)
    assert not is_local("http://both:8080", here)  # one of its addresses is elsewhere
    assert not is_local("http://commented:8080", here) and not is_local("http://odd", here)
    assert not is_local("http://far:8080", here) and not is_local("http://unknown", here)
    assert not is_local("http://box:8080", str(tmp_path / "missing"))
    assert is_local("http://app.localhost:8080", here)  # RFC 6761: always loopback
    for literal in ("127.1", "2130706433", "0x7f.0.0.1", "0", "[::ffff:127.0.0.1]", "[::]"):
        assert is_local(f"http://{literal}:8080", here), literal
    for far in ("10.1", "fade", "[::ffff:192.0.2.1]", "1.2.3.4", "example.com"):
        assert not is_local(f"http://{far}:8080", here), far
