"""Fast start's background race stays within its stated SYN budget against a hostile dialer.

docs/PROTOCOL.md 16.5: the accepter races whenever the dialer's ``SYNC(k)`` arrives on the
relay. A hostile dialer (plain sockets, not rdv) that lists a victim's addresses as its
candidates and then writes ``PORT(k, port)`` + ``SYNC(k)`` over and over would make the
real ``rdv accept --fast-start`` behind ``rtrA`` race again and again, each attempt with a
fresh budget (a fresh port is a new address for the history). nft counters in ``rtrA``
count every SYN that leaves for the victim. The session's budget (``SessionBudget``) holds
it to 5 attempts' worth (640 SYNs) before 30 s, whatever the dialer writes.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time

from rdv_core.client._budget import BudgetPolicy
from rdv_core.client._upgrade import QUICK_ATTEMPTS, SCHEDULED_ATTEMPTS
from rdv_core.lab import Firewall, HostSpec, Lab, LabSpec, NatKind, RouterSpec
from rdv_core.lab._builder import SERVER4, SERVER_PORT
from rdv_core.lab._runner import read_events

from tests.natlab.natlab_support import nft_packets

#: How long the hostile dialer keeps writing SYNCs (the old code raced all along).
HOLD_S = 1.2
VICTIM = "203.0.113.21"

SPEC = LabSpec(
    name="fs-budget",
    summary="rdv accept --fast-start behind a NAT; a hostile dialer SYNCs again and again",
    routers=(RouterSpec("rtrA", NatKind.PORT_PRESERVING, Firewall.DROP),),
    hosts=(HostSpec("cliA", "rtrA"), HostSpec("evil", None), HostSpec("victim", None)),
    dialer="evil",
    accepter="cliA",
    expect="relay",
    why="the dialer never attaches",
)

COUNTERS = f"""table inet fsbudget {{
\tcounter to_victim {{ }}
\tchain count {{
\t\ttype filter hook forward priority -10; policy accept;
\t\tip daddr {VICTIM} tcp flags & (syn | ack) == syn counter name "to_victim"
\t}}
}}
"""

# The dialer's side of fast start by hand (docs/PROTOCOL.md 16.2-16.3): the offer, then
# CONTINUE and HELLO, then PORT + SYNC every 10 ms, each with a new port (the victim
# listens on none of them: every SYN is refused, the race's fastest case).
HOSTILE = f"""
import os, socket, struct, sys, threading, time
addrs = ", ".join(f"{VICTIM}:{{p}}" for p in range(1001, 1010))
s = socket.create_connection(("{SERVER4}", {SERVER_PORT}))
s.sendall((f"DIAL /fsbudget HTTP/1.1\\r\\nHost: {SERVER4}:{SERVER_PORT}\\r\\n"
           f"Connection: upgrade\\r\\nRdv-Extensions: fast-start/1\\r\\n"
           f"Rdv-Self-Addrs: {{addrs}}\\r\\nUpgrade: rdv/1\\r\\n\\r\\n").encode())
data = b""
while b"\\r\\n\\r\\n" not in data:
    data += s.recv(4096)
print(data.split(b"\\r\\n")[0].decode(), flush=True)
frame = lambda kind, body: struct.pack(">BI", kind, len(body)) + body
s.sendall(b"CONTINUE\\n" + frame(0, b"RDVF\\x01D" + os.urandom(16)))
threading.Thread(target=lambda: [None for _ in iter(lambda: s.recv(65536), b"")],
                 daemon=True).start()
end = time.monotonic() + float(sys.argv[1])
k = 0
while time.monotonic() < end:
    k = k % 250 + 1
    s.sendall(frame(11, struct.pack(">BH", k, 20000 + k)) + frame(8, bytes([k])))
    time.sleep(0.01)
print(k, flush=True)
s.close()
"""


def _count(lab: Lab) -> int:
    return nft_packets(lab, "rtrA", "fsbudget", "to_victim")


def test_a_hostile_dialers_syncs_stay_within_the_sessions_syn_budget(
    rdv_command: list[str],
) -> None:
    policy = BudgetPolicy()
    with Lab(SPEC, rdv_command=rdv_command) as lab:
        lab.run("rtrA", ["nft", "-f", "-"], input_text=COUNTERS)
        lab.start_server()
        events = os.path.join(lab.workdir, "accepter.jsonl")
        argv = ["accept", lab.plan.server_url, "fsbudget", "--fast-start", "--events", events]
        accepter = lab.spawn(
            "cliA",
            lab.rdv_argv(*argv, "--timeout", "20"),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=lab.log_file("accepter.stderr"),
        )
        deadline = time.monotonic() + 10
        while not any(e.get("type") == "PeerJoined" for e in read_events(lab.server_events_path)):
            assert time.monotonic() < deadline and accepter.poll() is None
            time.sleep(0.01)
        hostile = lab.spawn(
            "evil",
            [sys.executable, "-c", HOSTILE, str(HOLD_S)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert hostile.stdout is not None
        assert b" 101 " in hostile.stdout.readline()
        started = time.monotonic()
        samples = [(0.0, 0)]
        while hostile.poll() is None:
            time.sleep(0.25)
            samples.append((time.monotonic() - started, _count(lab)))
        hostile.wait(timeout=10)
        time.sleep(0.3)  # the last dials' SYNs cross the router
        total = _count(lab)
        accepter.kill()
        accepter.wait(timeout=10)
        recorded = read_events(events)
        attempts = sum(e.get("type") == "UpgradeAttempt" for e in recorded)
        refused = [
            e for e in recorded if e.get("type") == "UpgradeFailed" and "outside" in e["reason"]
        ]
    peak = max((c1 - c0) / (t1 - t0) for (t0, c0), (t1, c1) in itertools.pairwise(samples))
    report = f"{total} SYNs to {VICTIM} in {HOLD_S} s over {attempts} attempts, peak {peak:.0f}/s"
    print(report)
    assert refused, f"the hostile dialer's SYNCs past the schedule were not refused: {report}"
    # The accepter races only at the SYNC of the schedule's next attempt: it raced at each,
    # 112 times in 1.2 s (11,008 in 130 s), each a race's CPU and events.
    assert QUICK_ATTEMPTS <= attempts <= SCHEDULED_ATTEMPTS, report
    assert total >= 9, f"no SYN left for the victim (the counter works?): {report}"
    # Before 30 s: the quick attempts' worth, whatever the dialer writes (16.5).
    assert total <= QUICK_ATTEMPTS * policy.per_attempt, report
