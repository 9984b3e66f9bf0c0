"""A NAT lab in Linux network namespaces: specs, presets, builder, impairment, runner.

Real conntrack NATs and firewalls, a rendezvous server on a simulated internet, two real rdv
peers behind configurable routers. See
"""

from rdv_core.lab._doctor import (
    DOCTOR_ALT4,
    DOCTOR_PROBE_PORT,
    SEQUENTIAL_A,
    built_with,
    doctor_urls,
    host_doctor_urls,
    mismatches,
    run_doctor_command,
    same_public_address,
    start_doctor_server,
)
from rdv_core.lab._faststart import FastResult, FastRun, FastStartRunner, run_faststart
from rdv_core.lab._isolate import can_isolate, is_isolated, reexec_isolated, setup_inside
from rdv_core.lab._lab import Lab
from rdv_core.lab._matrix import (
    COLUMNS,
    LOTTERY_NOTE,
    MATRIX_PAYLOAD,
    Column,
    MatrixCell,
    MatrixRow,
    fit_columns,
    format_header,
    format_row,
    format_table,
    insert_column,
    matrix_cells,
    run_cell,
)
from rdv_core.lab._netns import LabError
from rdv_core.lab._presets import PRESETS, get_preset
from rdv_core.lab._probe import Capabilities, probe
from rdv_core.lab._runner import LabRunner, PresetResult, direct_attempts, run_preset
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
    "COLUMNS",
    "DOCTOR_ALT4",
    "DOCTOR_PROBE_PORT",
    "LOTTERY_NOTE",
    "MATRIX_PAYLOAD",
    "PRESETS",
    "SEQUENTIAL_A",
    "Capabilities",
    "Column",
    "FastResult",
    "FastRun",
    "FastStartRunner",
    "Firewall",
    "HostSpec",
    "Impairment",
    "Lab",
    "LabError",
    "LabRunner",
    "LabSpec",
    "LabSpecError",
    "MatrixCell",
    "MatrixRow",
    "NatKind",
    "Outcome",
    "PresetResult",
    "RouterSpec",
    "built_with",
    "can_isolate",
    "direct_attempts",
    "doctor_urls",
    "fit_columns",
    "format_header",
    "format_row",
    "format_table",
    "get_preset",
    "host_doctor_urls",
    "insert_column",
    "is_isolated",
    "matrix_cells",
    "mismatches",
    "probe",
    "reexec_isolated",
    "run_cell",
    "run_doctor_command",
    "run_faststart",
    "run_preset",
    "same_public_address",
    "setup_inside",
    "start_doctor_server",
]
