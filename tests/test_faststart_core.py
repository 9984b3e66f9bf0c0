"""The migration core against a simulated network: no byte lost, doubled or reordered.

Hypothesis drives two :class:`MigrationCore` peers over two simulated paths (the relay
and one direct path, each an in-order pipe per direction, as TCP is) with random write
sizes, random delivery, a random switch time per side, and random deaths of a path
(in-flight bytes dropped, each side told at its own time). Whatever happens, each side
ends up with exactly the bytes the other wrote, in order (docs/PROTOCOL.md section 16.4).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rdv_core.errors import RdvProtocolError
from rdv_core.faststart._core import RELAY, MigrationCore
from rdv_core.faststart._frames import (
    MAX_PAYLOAD,
    Frame,
    FrameParser,
    Kind,
    data_frame,
    hello_frame,
    parse_hello,
    switch_frame,
    u64_frame,
)

DIRECT = 1


@dataclass
class Pipe:
    """One direction of one path: bytes in flight, then the receiver's parser."""

    flight: bytearray = field(default_factory=bytearray)
    parser: FrameParser = field(default_factory=FrameParser)
    cut: bool = False  # the path died: bytes in flight are gone


@dataclass
class Side:
    core: MigrationCore
    wrote: bytearray = field(default_factory=bytearray)
    got: bytearray = field(default_factory=bytearray)
    knows_dead: set[int] = field(default_factory=set)


class Net:
    def __init__(self) -> None:
        self.sides = (Side(MigrationCore()), Side(MigrationCore()))
        self.pipes: dict[tuple[int, int], Pipe] = {(RELAY, 0): Pipe(), (RELAY, 1): Pipe()}
        self.attached = [False, False]

    def attach(self, who: int) -> None:
        for direction in (0, 1):
            self.pipes.setdefault((DIRECT, direction), Pipe())
        self.sides[who].core.add_path(DIRECT)
        self.attached[who] = True

    def pump(self, who: int, pid: int) -> None:
        core = self.sides[who].core
        out = b"".join(core.take(pid, MAX_PAYLOAD))
        pipe = self.pipes.get((pid, who))
        if pipe is not None and not pipe.cut:
            pipe.flight += out

    def deliver(self, who: int, pid: int, size: int) -> None:
        """Move up to ``size`` bytes from ``who``'s side of ``pid`` to the other side."""
        pipe = self.pipes.get((pid, who))
        if pipe is None or pipe.cut or not pipe.flight:
            return
        chunk = bytes(pipe.flight[:size])
        del pipe.flight[:size]
        peer = self.sides[1 - who]
        if pid in peer.knows_dead:
            return
        for frame in pipe.parser.feed(chunk):
            peer.core.receive(pid, frame)
        for piece in peer.core.take_delivered():
            peer.got += piece

    def kill(self, pid: int) -> None:
        for direction in (0, 1):
            pipe = self.pipes.get((pid, direction))
            if pipe is not None:
                pipe.cut = True
                pipe.flight.clear()

    def tell_dead(self, who: int, pid: int) -> None:
        side = self.sides[who]
        side.knows_dead.add(pid)
        side.core.path_lost(pid)

    def settle(self) -> None:
        for _ in range(100000):
            moved = False
            for who in (0, 1):
                core = self.sides[who].core
                core.queue_ack()
                for pid in list(core.paths):
                    self.pump(who, pid)
            for (pid, who), pipe in list(self.pipes.items()):
                if pipe.flight and not pipe.cut:
                    moved = True
                    self.deliver(who, pid, len(pipe.flight))
            if not moved:
                return
        raise AssertionError("the network never settled")


def _random_migration(data: st.DataObject) -> Net:
    """Two sides writing at random while paths attach, switch, die; then both end and settle."""
    rng = random.Random(data.draw(st.integers(0, 2**32), label="seed"))
    net = Net()
    fate = data.draw(st.sampled_from(["switch", "kill-direct", "kill-relay", "stay"]), label="fate")
    steps = data.draw(st.integers(5, 120), label="steps")
    attach_at = [data.draw(st.integers(0, steps), label=f"attach{w}") for w in (0, 1)]
    switch_delay = [data.draw(st.integers(0, 10), label=f"switch{w}") for w in (0, 1)]
    kill_at = data.draw(st.integers(0, steps + 10), label="kill")
    tell_delay = [data.draw(st.integers(0, 10), label=f"tell{w}") for w in (0, 1)]
    killed_at: int | None = None
    for step in range(steps + 25):
        for who in (0, 1):
            core = net.sides[who].core
            if fate != "stay" and step == attach_at[who]:
                net.attach(who)
            if (
                fate != "stay"
                and net.attached[who]
                and step == attach_at[who] + switch_delay[who]
                and core.alive(DIRECT)
            ):
                core.switch_to(DIRECT)
            if step < steps and rng.random() < 0.5:
                size = rng.choice([1, 7, 100, 5000, 70000, 300000])
                payload = rng.randbytes(size)
                core.write(payload)
                net.sides[who].wrote += payload
            if core.relay_done and core.alive(RELAY) and fate == "switch":
                # The relay goes: what we wrote on it arrives, the rest is cut.
                net.tell_dead(who, RELAY)
            for pid in list(core.paths):
                if rng.random() < 0.7:
                    net.pump(who, pid)
        for pid, who in list(net.pipes):
            if rng.random() < 0.6:
                net.deliver(who, pid, rng.choice([1, 13, 4096, 1 << 20]))
        if killed_at is None and step >= kill_at:
            if fate == "kill-direct" and all(net.attached):
                net.kill(DIRECT)
                killed_at = step
            elif fate == "kill-relay" and all(net.attached):
                net.kill(RELAY)
                killed_at = step
        if killed_at is not None:
            pid = DIRECT if fate == "kill-direct" else RELAY
            for who in (0, 1):
                if step == killed_at + tell_delay[who]:
                    net.tell_dead(who, pid)
        if rng.random() < 0.2:
            for side in net.sides:
                side.core.queue_ack()
    if killed_at is not None:
        pid = DIRECT if fate == "kill-direct" else RELAY
        for who in (0, 1):
            if pid not in net.sides[who].knows_dead:
                net.tell_dead(who, pid)
    for side in net.sides:
        side.core.write_eof()
    net.settle()
    event(f"{fate}: relay {'closed' if not net.sides[0].core.alive(RELAY) else 'open'}")
    event(f"{fate}: side 0 sends on {net.sides[0].core.send_path}, {len(net.sides[0].wrote) > 0}")
    return net


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_byte_lost_doubled_or_reordered(data: st.DataObject) -> None:
    net = _random_migration(data)
    for who in (0, 1):
        me, peer = net.sides[who], net.sides[1 - who]
        assert bytes(peer.got) == bytes(me.wrote), f"side {who}'s stream arrived damaged"
        assert me.core.flushed


@pytest.mark.xfail(
    strict=False,
    reason="known defect (docs/notes/00-summary.md): in rare switch timings the EOF frame "
    "is lost although every byte arrives (hypothesis found: fate=switch, attach at 0 and 51 "
    "of 52 steps, switches 7 and 10 steps later)",
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_end_of_stream_arrives_after_any_migration(data: st.DataObject) -> None:
    net = _random_migration(data)
    for who in (0, 1):
        assert net.sides[1 - who].core.peer_eof, f"side {who}'s end of stream was lost"


def test_switch_moves_both_directions_and_frees_the_relay() -> None:
    net = Net()
    for who in (0, 1):
        net.sides[who].core.write(b"before-%d " % who)
        net.attach(who)
        net.sides[who].core.switch_to(DIRECT)
        net.sides[who].core.write(b"after-%d" % who)
    net.settle()
    for who in (0, 1):
        core = net.sides[who].core
        assert core.send_path == DIRECT and core.recv_path == DIRECT
        assert core.relay_done
        assert bytes(net.sides[1 - who].got) == b"before-%d after-%d" % (who, who)


def test_gap_asks_for_resume_once_and_the_sender_replays() -> None:
    receiver = MigrationCore()
    receiver.receive(RELAY, parse_one(data_frame(5, b"later")))
    assert receiver.take_delivered() == []
    control = receiver.take(RELAY)
    assert control == [u64_frame(Kind.RESUME, 0)]
    receiver.receive(RELAY, parse_one(data_frame(10, b"more")))
    assert receiver.take(RELAY) == []  # asked once for this gap
    sender = MigrationCore()
    sender.write(b"0123456789")
    sender.take(RELAY)
    sender.receive(RELAY, parse_one(u64_frame(Kind.RESUME, 4)))
    assert sender.take(RELAY) == [data_frame(4, b"456789")]


def test_contradictions_are_protocol_errors() -> None:
    core = MigrationCore()
    with pytest.raises(RdvProtocolError, match="never wrote"):
        core.receive(RELAY, parse_one(u64_frame(Kind.ACK, 1)))
    core.receive(RELAY, parse_one(data_frame(0, b"abc")))
    with pytest.raises(RdvProtocolError, match="before bytes we hold"):
        core.receive(RELAY, parse_one(u64_frame(Kind.EOF, 2)))


def test_switch_to_a_path_that_died_stays_put() -> None:
    core = MigrationCore()
    core.add_path(DIRECT)
    core.path_lost(DIRECT)
    core.receive(RELAY, parse_one(switch_frame(0, DIRECT)))
    assert core.recv_path == RELAY
    assert core.take(RELAY) == [u64_frame(Kind.RESUME, 0)]


def test_frames_split_anywhere_and_bad_frames() -> None:
    frames = hello_frame(b"D", bytes(16)) + data_frame(0, b"x" * 1000) + u64_frame(Kind.ACK, 3)
    parser = FrameParser()
    out = []
    for i in range(len(frames)):
        out += parser.feed(frames[i : i + 1])
    assert [f.kind for f in out] == [Kind.HELLO, Kind.DATA, Kind.ACK]
    assert parse_hello(out[0]) == (b"D", bytes(16))
    with pytest.raises(RdvProtocolError, match="unknown"):
        FrameParser().feed(b"\xff\x00\x00\x00\x00")
    with pytest.raises(RdvProtocolError, match="bad length"):
        FrameParser().feed(b"\x02\x00\x00\x00\x09" + bytes(9))
    with pytest.raises(RdvProtocolError, match="did not confirm"):
        parse_hello(FrameParser().feed(u64_frame(Kind.ACK, 0))[0])


def parse_one(raw: bytes) -> Frame:
    (frame,) = FrameParser().feed(raw)
    return frame
