"""The client side of rdv/1: one attempt, its candidate race and the conn it returns.

:class:`Client` makes the request to the server (docs/PROTOCOL.md sections 1 and 2), races
every allowed candidate from one shared port (section 7 and docs/ARCHITECTURE.md section 4)
and returns a :class:`Conn`; a :class:`Picker` decides which conn wins. Every step is an
event of :mod:`rdv_core.events`. With ``fast_start``, an :class:`Upgrader` moves the conn
from the relay to a direct path in the background (docs/PROTOCOL.md section 16).
:func:`tcp_rtt` reads a conn's round-trip time from the kernel. :class:`BudgetPolicy` caps
the SYNs of one attempt (:class:`SynBudget`, :class:`AddressHistory`; docs/PROTOCOL.md
section 11). A conn that goes silent (a blackholed path) fails with :class:`PathSilent`
(docs/PROTOCOL.md sections 16.10 and 16.11). :class:`RejoinPolicy` lets a waiting attempt
rejoin the lobby when its server conn is lost before the pair is made (section 18).
"""

from __future__ import annotations

from rdv_core.client._budget import AddressHistory, BudgetPolicy, SynBudget
from rdv_core.client._client import Client
from rdv_core.client._conn import Conn, Meta
from rdv_core.client._pickers import Offers, Picker, PickFirst, WaitConstant, WaitForP2P
from rdv_core.client._rejoin import RejoinPolicy
from rdv_core.client._silence import PathSilent
from rdv_core.client._upgrade import Upgrader
from rdv_core.tcpinfo import tcp_rtt

__all__ = [
    "AddressHistory",
    "BudgetPolicy",
    "Client",
    "Conn",
    "Meta",
    "Offers",
    "PathSilent",
    "PickFirst",
    "Picker",
    "RejoinPolicy",
    "SynBudget",
    "Upgrader",
    "WaitConstant",
    "WaitForP2P",
    "tcp_rtt",
]
