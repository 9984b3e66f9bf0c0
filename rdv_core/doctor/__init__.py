"""``rdv doctor``: why two machines can or cannot talk directly (docs/PROTOCOL.md section 15).

- :mod:`._report`: the report, every finding tri-state with its reason, and its JSON form;
- :mod:`._classify`: samples to findings (mapping, allocation, filtering ...), pure;
- :mod:`._measure`: the probes, from one shared local port as the race uses (one
  server's conns in :mod:`._main_conn`, the findings over all servers in :mod:`._overall`);
- :mod:`._explain`: a report in plain words (the CLI's text, the TUI's explanations);
- :mod:`._verdict`: after a race, the prediction and both sides' candidates in one story;
- :mod:`._predict`: from two reports, before a race: direct expected, possible or impossible.

Layer: above ``client`` (it makes its sockets the race's way), below ``session`` (the peers
exchange reports over the encrypted session).
"""

from __future__ import annotations

from rdv_core.doctor._explain import LABELS, explain, render_text, summary
from rdv_core.doctor._measure import Doctor, FindingCallback, run_doctor, uplink_of
from rdv_core.doctor._ports import predicted_addrs
from rdv_core.doctor._predict import EXPECTATIONS, Expectation, Prediction, predict
from rdv_core.doctor._report import (
    ALLOCATIONS,
    FILTERINGS,
    FINDINGS,
    MAPPINGS,
    REPORT_VERSION,
    Finding,
    Report,
    ReportError,
    Sample,
    ServerCheck,
)
from rdv_core.doctor._verdict import candidate_lines, render_verdict, verdict

__all__ = [
    "ALLOCATIONS",
    "EXPECTATIONS",
    "FILTERINGS",
    "FINDINGS",
    "LABELS",
    "MAPPINGS",
    "REPORT_VERSION",
    "Doctor",
    "Expectation",
    "Finding",
    "FindingCallback",
    "Prediction",
    "Report",
    "ReportError",
    "Sample",
    "ServerCheck",
    "candidate_lines",
    "explain",
    "predict",
    "predicted_addrs",
    "render_text",
    "render_verdict",
    "run_doctor",
    "summary",
    "uplink_of",
    "verdict",
]
