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
from hypothesis import HealthCheck, event, example, given, settings
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


@dataclass(frozen=True)
class Plan:
    """One random run: what happens when (steps of the simulation)."""

    seed: int
    fate: str  # "switch", "kill-direct", "kill-relay" or "stay"
    steps: int
    attach: tuple[int, int]  # the step at which each side attaches the direct path
    switch: tuple[int, int]  # steps after its attach at which each side switches
    kill: int  # the step at which the doomed path dies (kill-* fates)
    tell: tuple[int, int]  # steps after the death at which each side notices it


def _plans(steps: int) -> st.SearchStrategy[Plan]:
    upto = st.integers(0, steps)
    small = st.integers(0, 10)
    return st.builds(
        Plan,
        seed=st.integers(0, 2**32),
        fate=st.sampled_from(["switch", "kill-direct", "kill-relay", "stay"]),
        steps=st.just(steps),
        attach=st.tuples(upto, upto),
        switch=st.tuples(small, small),
        kill=st.integers(0, steps + 10),
        tell=st.tuples(small, small),
    )


PLANS = st.integers(5, 120).flatmap(_plans)


def _random_migration(plan: Plan) -> Net:
    """Two sides writing at random while paths attach, switch, die; then both end and settle.

    A side that may retire the relay (``relay_done``) stops using it at once; the other
    side is never told: the relay must then carry nothing that either still needs.
    """
    rng = random.Random(plan.seed)
    net = Net()
    fate, steps, attach_at = plan.fate, plan.steps, plan.attach
    killed_at: int | None = None
    for step in range(steps + 25):
        for who in (0, 1):
            core = net.sides[who].core
            if fate != "stay" and step == attach_at[who]:
                net.attach(who)
            if (
                fate != "stay"
                and net.attached[who]
                and step == attach_at[who] + plan.switch[who]
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
        if killed_at is None and step >= plan.kill:
            if fate == "kill-direct" and all(net.attached):
                net.kill(DIRECT)
                killed_at = step
            elif fate == "kill-relay" and all(net.attached):
                net.kill(RELAY)
                killed_at = step
        if killed_at is not None:
            pid = DIRECT if fate == "kill-direct" else RELAY
            for who in (0, 1):
                if step == killed_at + plan.tell[who]:
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
    return net


# Found by hypothesis: side 1 switched when side 0's acknowledgement of side 1's relay
# bytes was already on its way over the direct path; side 1 took it for "side 0 reads me
# on the direct path", retired the relay with its SWITCH still unwritten, and side 0
# waited on the relay for the stream (and its EOF) that went on on the direct path.
LOST_EOF = Plan(seed=5, fate="switch", steps=7, attach=(0, 5), switch=(0, 7), kill=0, tell=(0, 0))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(plan=LOST_EOF)
@given(plan=PLANS)
def test_no_byte_or_end_lost_doubled_or_reordered(plan: Plan) -> None:
    net = _random_migration(plan)
    relay = "closed" if not net.sides[0].core.alive(RELAY) else "open"
    event(f"{plan.fate}: relay {relay} at side 0")
    for who in (0, 1):
        me, peer = net.sides[who], net.sides[1 - who]
        assert bytes(peer.got) == bytes(me.wrote), f"side {who}'s stream arrived damaged"
        assert me.core.flushed
        assert peer.core.peer_eof, f"side {who}'s end of stream was lost"


def test_an_ack_sent_before_the_peers_switch_does_not_retire_the_relay() -> None:
    """The acknowledgement that lets a side retire the relay must come from a peer that
    reads it on the direct path (docs/PROTOCOL.md section 16.4)."""
    net = Net()
    a, b = (side.core for side in net.sides)
    net.attach(0)
    net.attach(1)
    a.switch_to(DIRECT)
    b.write(b"1234567")
    net.pump(1, RELAY)
    net.deliver(1, RELAY, 1 << 20)  # a holds b's 7 bytes, still reading the relay
    net.pump(0, RELAY)
    net.deliver(0, RELAY, 1 << 20)  # a's SWITCH reaches b: b reads a on the direct path
    a.queue_ack()  # a acknowledges the 7 bytes: a has not read any SWITCH of b's yet
    b.switch_to(DIRECT)  # b's SWITCH(7) waits to be written on the relay
    for pid in (RELAY, DIRECT):
        net.pump(0, pid)
        net.deliver(0, pid, 1 << 20)
    assert not b.relay_done, "b would close the relay before its SWITCH was written"
    net.settle()
    assert a.recv_path == DIRECT and b.relay_done
    net.tell_dead(1, RELAY)  # b retires the relay; a is never told
    a.write_eof()
    b.write_eof()
    net.settle()
    assert a.peer_eof and b.peer_eof
    assert bytes(net.sides[0].got) == b"1234567"


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
