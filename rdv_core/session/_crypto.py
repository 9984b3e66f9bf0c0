"""Keys from a short code: SPAKE2, then HKDF, then one AEAD per direction.

Handshake (plaintext, the only bytes not encrypted), sent by both peers at once::

    "RDVS" | version (1 byte) | n (1 byte) | SPAKE2 message (n bytes)

Both run symmetric SPAKE2 with the whole code as the password, so someone who sees
every byte (the server, a relay, the network) learns nothing that helps to guess the
code offline, and an active attacker gets one guess per session. The shared SPAKE2
key, bound to the transcript (both messages, in dialer-then-accepter order), goes
through HKDF-SHA256 to two 256-bit keys, one per direction, so a frame can never be
reflected back to its sender.

Every later frame is sealed with AES-256-GCM under its direction's key. The 96-bit
nonce is a per-direction counter that is never sent: both sides count frames, so a
dropped, replayed, reordered or injected frame fails authentication, and a nonce can
never repeat under one key (a fresh SPAKE2 run gives fresh keys for every session).

Key confirmation: the first sealed frame each side sends is its ``hello``; a peer that
cannot open it holds a different key, which means a different code (see
:mod:`~rdv_core.session._session`).
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from spake2 import SPAKE2_Symmetric

from rdv_core.session._channel import Channel
from rdv_core.session._codes import Code
from rdv_core.session._errors import ConnectionLost, ProtocolViolation
from rdv_core.session._record import TAG_SIZE

#: Session protocol version, in the plaintext prelude and in ``hello``. Version 2 made
#: whole-file digests BLAKE3 (named in ``done`` frames); a version 1 peer hashed SHA-256.
SESSION_VERSION = 2
MAGIC = b"RDVS"
_SPAKE_ID = b"rdv-session/1"
_PRELUDE = struct.Struct("!4sBB")
#: 2**64 frames per direction per session: unreachable, but checked rather than wrapped.
_MAX_COUNTER = (1 << 64) - 1


class Sealer:
    """Encrypts the frames of one direction, with counter nonces."""

    __slots__ = ("_aead", "_counter")

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._counter = 0

    def _next_nonce(self) -> bytes:
        if self._counter >= _MAX_COUNTER:
            raise ProtocolViolation("nonce counter exhausted: start a new session")
        nonce = b"\0\0\0\0" + self._counter.to_bytes(8, "big")
        self._counter += 1
        return nonce

    def seal(self, plaintext: bytes | bytearray | memoryview) -> bytes:
        """The ciphertext (with its 16-byte tag) of the next frame."""
        return self._aead.encrypt(self._next_nonce(), plaintext, None)

    def seal_into(self, plaintext: bytes | bytearray | memoryview, out: memoryview) -> None:
        """Like :meth:`seal`, writing into ``out`` (exactly ``len(plaintext) + 16`` bytes)."""
        self._aead.encrypt_into(self._next_nonce(), plaintext, None, out)


class Opener:
    """Decrypts and authenticates the frames of one direction, in order."""

    __slots__ = ("_aead", "_counter")

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._counter = 0

    @property
    def frames_opened(self) -> int:
        """How many frames were opened so far (0 until the peer's ``hello``)."""
        return self._counter

    def open_into(self, ciphertext: bytes | bytearray | memoryview, out: memoryview) -> int:
        """Decrypt into ``out`` (at least ``len(ciphertext) - 16`` bytes); return the length.

        Raises:
            InvalidTag: the frame is not authentic (wrong key, corrupted, replayed, ...).
        """
        size = len(ciphertext) - TAG_SIZE
        if size < 0:
            raise InvalidTag()
        nonce = b"\0\0\0\0" + self._counter.to_bytes(8, "big")
        self._aead.decrypt_into(nonce, ciphertext, None, out[:size])
        self._counter += 1
        return size


async def exchange_keys(channel: Channel, code: Code, *, is_dialer: bool) -> tuple[Sealer, Opener]:
    """Run the SPAKE2 exchange and derive this side's sealer and opener.

    Raises:
        ProtocolViolation: the peer is not an rdv session peer, or speaks another version.
        ConnectionLost: the connection ended during the exchange.
    """
    spake = SPAKE2_Symmetric(code.password, idSymmetric=_SPAKE_ID)
    ours = spake.start()
    channel.write(_PRELUDE.pack(MAGIC, SESSION_VERSION, len(ours)) + ours)
    try:
        await channel.drain()
        head = await channel.readexactly(_PRELUDE.size)
        magic, version, size = _PRELUDE.unpack(head)
        if magic != MAGIC:
            raise ProtocolViolation(
                "the peer does not speak the rdv session protocol "
                "(is it a raw `rdv dial`/`rdv accept` pipe?)"
            )
        if version != SESSION_VERSION:
            raise ProtocolViolation(
                f"session version mismatch: the peer speaks {version}, we speak {SESSION_VERSION}"
            )
        theirs = await channel.readexactly(size)
    except ConnectionLost as exc:
        raise ConnectionLost(f"{exc} (during the key exchange)") from exc
    try:
        shared = spake.finish(theirs)
    except Exception as exc:  # spake2 raises assorted types for a malformed message
        raise ProtocolViolation(f"invalid key-exchange message from the peer: {exc!r}") from exc
    transcript = ours + theirs if is_dialer else theirs + ours
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=64,
        salt=_SPAKE_ID,
        info=b"rdv-session/1 directional keys " + transcript,
    ).derive(shared)
    dialer_to_accepter, accepter_to_dialer = okm[:32], okm[32:]
    if is_dialer:
        return Sealer(dialer_to_accepter), Opener(accepter_to_dialer)
    return Sealer(accepter_to_dialer), Opener(dialer_to_accepter)
