"""A NAT lab in Linux network namespaces: specs, presets, builder, impairment, runner.

Real conntrack NATs and firewalls, a rendezvous server on a simulated internet, two real rdv
peers behind configurable routers. See
"""

from rdv_core.lab._lab import Lab
from rdv_core.lab._netns import LabError
from rdv_core.lab._presets import PRESETS, get_preset
from rdv_core.lab._probe import Capabilities, probe
from rdv_core.lab._spec import (
    Firewall,
    HostSpec,
    Impairment,
    LabSpec,
    LabSpecError,
    NatKind,
    Outcome,
    RouterSpec,
)

__all__ = [
    "PRESETS",
    "Capabilities",
    "Firewall",
    "HostSpec",
    "Impairment",
    "Lab",
    "LabError",
    "LabSpec",
    "LabSpecError",
    "NatKind",
    "Outcome",
    "RouterSpec",
    "get_preset",
    "probe",
]
