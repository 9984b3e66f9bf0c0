"""SYNs a hostile peer makes fast start send to a victim over one long session (NAT lab, root).

    .venv/bin/python bench/syn_session.py dialer [SECONDS] [GAP]    # hostile D, our rdv accept
    .venv/bin/python bench/syn_session.py accepter [SECONDS]        # hostile A, our rdv dial

The real ``rdv accept --fast-start`` (or ``rdv dial --fast-start``) runs behind ``rtrA``;
the hostile peer, a few lines of plain sockets, lists nine closed ports of a victim as its
candidates (``Rdv-Self-Addrs``, so the server's ``Rdv-Peer-Addrs``) and keeps the session
open on the relay for SECONDS. ``dialer``: it writes ``PORT(k, port)`` + ``SYNC(k)`` every
GAP seconds (default 0.01), each with a new port. ``accepter``: it answers every ``PING``
and ``PORT`` as a real accepter would and never attaches, so our dialer runs its whole
schedule (docs/PROTOCOL.md 16.5: 5 quick attempts, then at 30 s and 120 s). nft counters
in ``rtrA`` count the SYNs to the victim; prints them per second where any left, and the
total. Nothing leaves the lab's namespaces.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rdv_core.lab import Firewall, HostSpec, Lab, LabSpec, NatKind, RouterSpec
from rdv_core.lab._builder import SERVER4, SERVER_PORT
from rdv_core.lab._runner import read_events

VICTIM = "203.0.113.21"

COUNTERS = f"""table inet sess {{
\tcounter to_victim {{ }}
\tchain count {{
\t\ttype filter hook forward priority -10; policy accept;
\t\tip daddr {VICTIM} tcp flags & (syn | ack) == syn counter name "to_victim"
\t}}
}}
"""

_COMMON = f"""
import os, socket, struct, sys, threading, time
addrs = ", ".join(f"{VICTIM}:{{p}}" for p in range(1001, 1010))
s = socket.create_connection(("{SERVER4}", {SERVER_PORT}))
s.sendall((f"{{METHOD}} /session HTTP/1.1\\r\\nHost: {SERVER4}:{SERVER_PORT}\\r\\n"
           f"Connection: upgrade\\r\\nRdv-Extensions: fast-start/1\\r\\n"
           f"Rdv-Self-Addrs: {{addrs}}\\r\\nUpgrade: rdv/1\\r\\n\\r\\n").encode())
data = b""
while b"\\r\\n\\r\\n" not in data:
    data += s.recv(4096)
head, data = data.split(b"\\r\\n\\r\\n", 1)
print(head.split(b"\\r\\n")[0].decode(), flush=True)
frame = lambda kind, body: struct.pack(">BI", kind, len(body)) + body
end = time.monotonic() + float(sys.argv[1])
"""

HOSTILE_DIALER = (
    _COMMON.replace("{METHOD}", "DIAL")
    + """
s.sendall(b"CONTINUE\\n" + frame(0, b"RDVF\\x01D" + os.urandom(16)))
threading.Thread(target=lambda: [None for _ in iter(lambda: s.recv(65536), b"")],
                 daemon=True).start()
k = 0
while time.monotonic() < end:
    k = k % 250 + 1
    s.sendall(frame(11, struct.pack(">BH", k, 20000 + k)) + frame(8, bytes([k])))
    time.sleep(float(sys.argv[2]))
s.close()
"""
)

HOSTILE_ACCEPTER = (
    _COMMON.replace("{METHOD}", "ACCEPT")
    + """
while b"\\n" not in data:
    data += s.recv(4096)
data = data.split(b"\\n", 1)[1]
s.sendall(frame(0, b"RDVF\\x01A" + os.urandom(16)))
s.settimeout(0.5)
while time.monotonic() < end:
    while len(data) >= 5 and len(data) >= 5 + struct.unpack(">I", data[1:5])[0]:
        kind, size = struct.unpack(">BI", data[:5])
        body, data = data[5:5 + size], data[5 + size:]
        if kind == 6:
            s.sendall(frame(7, body))
        elif kind == 11:
            s.sendall(frame(11, struct.pack(">BH", body[0], 30000 + body[0])))
    try:
        more = s.recv(65536)
    except socket.timeout:
        continue
    if not more:
        break
    data += more
s.close()
"""
)


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else "dialer"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 40.0
    gap = sys.argv[3] if len(sys.argv) > 3 else "0.01"
    ours = "accept" if role == "dialer" else "dial"
    spec = LabSpec(
        name="syn-session",
        summary=f"our rdv {ours} --fast-start behind a NAT; a hostile {role}",
        routers=(RouterSpec("rtrA", NatKind.PORT_PRESERVING, Firewall.DROP),),
        hosts=(HostSpec("cliA", "rtrA"), HostSpec("evil", None), HostSpec("victim", None)),
        dialer="evil" if role == "dialer" else "cliA",
        accepter="cliA" if role == "dialer" else "evil",
        expect="relay",
        why="the hostile peer never attaches",
    )
    script = HOSTILE_DIALER if role == "dialer" else HOSTILE_ACCEPTER
    with Lab(spec, rdv_command=[sys.executable, "-m", "rdv_tui"]) as lab:
        lab.run("rtrA", ["nft", "-f", "-"], input_text=COUNTERS)
        lab.start_server()

        def count() -> int:
            argv = ["nft", "list", "counter", "inet", "sess", "to_victim"]
            match = re.search(r"packets (\d+)", lab.run("rtrA", argv).stdout)
            assert match
            return int(match.group(1))

        events = os.path.join(lab.workdir, "ours.jsonl")
        argv = [ours, lab.plan.server_url, "session", "--fast-start", "--events", events]
        if role == "accepter":
            hostile = lab.spawn(
                "evil", [sys.executable, "-c", script, str(seconds)], stdout=subprocess.PIPE
            )
            time.sleep(1.0)
        ourselves = lab.spawn(
            "cliA",
            lab.rdv_argv(*argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if role == "dialer":
            deadline = time.monotonic() + 10
            while not any(
                e.get("type") == "PeerJoined" for e in read_events(lab.server_events_path)
            ):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            hostile = lab.spawn(
                "evil", [sys.executable, "-c", script, str(seconds), gap], stdout=subprocess.PIPE
            )
        assert hostile.stdout is not None
        print("hostile peer got:", hostile.stdout.readline().decode().strip())
        started = time.monotonic()
        last, per_second = 0, []
        while hostile.poll() is None:
            time.sleep(1.0)
            now = count()
            per_second.append((time.monotonic() - started, now - last))
            last = now
        total = count()
        ourselves.kill()
        ourselves.wait()
        kinds = [e for e in read_events(events) if e.get("type") == "UpgradeAttempt"]
    for at, syns in per_second:
        if syns:
            print(f"  {at:6.1f} s  {syns:5d} SYNs")
    print(f"{role}: {total} SYNs to {VICTIM} in {seconds:.0f} s, {len(kinds)} attempts raced")


if __name__ == "__main__":
    main()
