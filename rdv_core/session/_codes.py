"""Human session codes such as ``482913-tulip-orbit``.

A code has two parts. The *nameplate* (``482913``) becomes the rdv token that the server
sees and matches on: it only brings the two peers together. The *secret words*
(``tulip-orbit``) never leave the peers: the whole code is the password of the PAKE
(see :mod:`rdv_core.session._crypto`), so the server, or anyone watching it, learns
nothing that helps to read or inject, and a guesser gets exactly one online try per
session (a wrong guess ends both sessions with "code mismatch").

Two words from a 256-word list give 16 bits of secret: that is the chance of an
active attacker per attempt (1 in 65536), the same trade-off magic-wormhole makes. A
code whose key confirmation failed once is never used again (see
:mod:`rdv_core.session._burned`): each use would give whoever interfered another guess.

Nameplates are six digits (900,000 of them), so that nobody who knows only the server
can squat them all: 9,999 idle lobby conns took every nameplate of the old 1..9999
range, where 900,000 need more conns than a server's fd limit, let alone its per-IP
lobby caps (docs/PROTOCOL.md section 12.1).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from rdv_core.errors import RdvError

_WORDLIST = """
    acorn adobe agate alpine amber anchor angle apple april arbor arctic arrow
    aspen atlas autumn avocado badge bagel bamboo banjo barley basil beacon beetle
    berry birch bison blossom bluff bonsai border bottle bramble breeze brick bridge
    bronze brook bubble bucket buffalo cabin cactus camel candle canoe canyon carbon
    cargo carrot castle cedar cello chalk cherry chess cider cinder citrus clover
    cobalt comet copper coral cotton cougar coyote crane crater cricket crystal cumin
    dahlia daisy delta desert dingo dolphin domino donkey dragon drizzle dune eagle
    easel ebony echo eclipse elbow elder ember emerald engine falcon fennel fern
    ferry fiddle fig finch fjord flame flint forest fossil fox galaxy garden garlic
    gecko geyser ginger glacier globe gopher granite grape gravel guava gull hammock
    harbor hazel heron hickory honey hornet husky iceberg igloo indigo iris island
    ivory jade jaguar jasmine jelly jigsaw juniper kayak kettle kiwi koala lagoon
    lantern larch lava lemon lentil lilac lime linen llama lobster lotus lunar
    lynx magnet mango maple marble meadow melon meteor mint mocha monsoon moose
    mosaic moss nectar nebula nickel nutmeg oasis oat ocean olive onyx opal orbit
    orchid otter owl oyster paddle panda papaya parrot pebble pecan pepper pigeon
    pine planet plum polar pony poppy prairie prism puffin pumpkin quartz quill
    rabbit radar radish raven reef ribbon river robin rocket ruby saffron sage
    salmon sapphire satin season sequoia shadow shell sierra silver sketch sparrow
    spruce squid summit sunset swan tango thistle thunder tiger timber toffee topaz
    tulip tundra turtle valley velvet violet walnut walrus willow wombat yarrow yeti
    zebra zephyr zinnia
"""
#: 256 short, distinct, easy-to-say words (8 bits each).
WORDS: tuple[str, ...] = tuple(_WORDLIST.split())

#: Generated nameplates are drawn from NAMEPLATE_MIN..NAMEPLATE_MAX (always six digits,
#: easy to read out; the words carry the secret). The server cannot hand nameplates out
#: like a wormhole mailbox (rdv has no such step), so the space must be too large for a
#: squatter to cover, and two honest pairs rarely pick the same one; a clash or a squatter
#: shows as "code mismatch" (then both need a fresh code) or as a 409 (retried).
NAMEPLATE_MIN = 100_000
NAMEPLATE_MAX = 999_999

#: Tokens the server sees are ``TOKEN_PREFIX + nameplate``, apart from raw pipe tokens.
TOKEN_PREFIX = "rdv-session-"

_NAMEPLATE_RE = re.compile(r"[A-Za-z0-9._~]{1,64}")


class CodeError(RdvError, ValueError):
    """A session code that cannot be used (empty part, unsafe characters, ...)."""


@dataclass(frozen=True, slots=True)
class Code:
    """A parsed session code.

    Attributes:
        nameplate: The part the server sees (through :attr:`token`).
        secret: The rest, which never leaves the peers.
    """

    nameplate: str
    secret: str

    @property
    def token(self) -> str:
        """The rdv token for the server: derived from the nameplate only."""
        return TOKEN_PREFIX + self.nameplate

    @property
    def password(self) -> bytes:
        """The PAKE password: the whole normalised code."""
        return f"{self.nameplate}-{self.secret}".encode()

    def __str__(self) -> str:
        return f"{self.nameplate}-{self.secret}"

    def __repr__(self) -> str:
        # Never print the secret part by accident (logs, tracebacks).
        return f"Code(nameplate={self.nameplate!r}, secret=<hidden>)"


def generate_code(words: int = 2) -> str:
    """A fresh random code such as ``482913-tulip-orbit``.

    Args:
        words: How many secret words (8 bits each); at least 2.
    """
    if words < 2:
        raise ValueError("a code needs at least 2 secret words")
    nameplate = NAMEPLATE_MIN + secrets.randbelow(NAMEPLATE_MAX - NAMEPLATE_MIN + 1)
    chosen = [secrets.choice(WORDS) for _ in range(words)]
    return "-".join([str(nameplate), *chosen])


def parse_code(text: str) -> Code:
    """Split and normalise a code typed by a person.

    Surrounding whitespace is ignored and the secret is lower-cased (words are read
    aloud, so case carries no meaning); inner spaces are read as ``-``. Short nameplates
    (``7-tulip-orbit``, from older versions or typed by hand) are still accepted.

    Raises:
        CodeError: with a message that says what is wrong.
    """
    cleaned = "-".join(text.strip().split())
    nameplate, sep, secret = cleaned.partition("-")
    if not sep or not nameplate or not secret:
        raise CodeError("a code looks like 7-tulip-orbit: a nameplate, '-', then secret words")
    if not _NAMEPLATE_RE.fullmatch(nameplate):
        raise CodeError("the part before the first '-' may use only letters, digits and . _ ~")
    secret = secret.lower()
    if any(not part for part in secret.split("-")):
        raise CodeError("a code has no empty words (doubled '-')")
    if len(secret) > 200:
        raise CodeError("the secret part of the code is too long (at most 200 characters)")
    return Code(nameplate=nameplate, secret=secret)
