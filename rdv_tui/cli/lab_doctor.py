"""``rdv lab doctor``: on every preset, what the doctor says, what it predicts, what happened.

For each preset: build the lab, start the server with a probe port and dial-back, run the real
``rdv doctor`` on both peers' hosts, check its findings against how the routers were built,
predict the race from the two reports, then run the races and compare. A ``possible``
prediction agrees with either outcome. Imports only the standard library at module level.

:func:`doctor_prediction` is the piece ``rdv lab matrix`` can call for a "predicted" column.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rdv_tui.cli.formatting import ms_figure, plural


def doctor_prediction(lab: Any) -> dict[str, Any]:
    """Run ``rdv doctor`` on both peers of a running ``lab`` and predict their race.

    The lab's server must have been started by ``start_doctor_server``. Returns
    ``{"reports": {host: report JSON}, "mismatches": [...], "prediction": {...}}``.
    """
    from rdv_core.doctor import Report, predict
    from rdv_core.lab import mismatches, run_doctor_command, same_public_address
    from rdv_core.wire import parse_spaces

    spec = lab.spec
    hosts = [spec.dialer, spec.accepter]
    if same_public_address(spec, hosts):
        raw = [run_doctor_command(lab, h) for h in hosts]
    else:
        with ThreadPoolExecutor(2) as pool:
            raw = list(pool.map(lambda h: run_doctor_command(lab, h), hosts))
    problems = [m for h, r in zip(hosts, raw, strict=True) for m in mismatches(spec, h, r)]
    ours, theirs = (Report.from_json(r) for r in raw)
    prediction = predict(ours, theirs, parse_spaces(spec.spaces))
    return {
        "reports": dict(zip(hosts, raw, strict=True)),
        "mismatches": problems,
        "prediction": prediction.to_json(),
    }


def _short(report: dict[str, Any]) -> str:
    def value(name: str) -> str:
        finding = report.get(name) or {}
        v = finding.get("value")
        return "-" if v is None else {True: "yes", False: "no"}.get(v, str(v))

    mapping = {
        "endpoint-independent": "EI",
        "address-and-port-dependent": "APD",
        "address-dependent": "AD",
        "port-dependent": "PD",
        "none": "no NAT",
    }.get(value("mapping"), value("mapping"))
    return f"{mapping}/{value('filtering')}/hp {value('hairpin')}"


def run_lab_doctor(presets: list[str], runs: int, as_json: bool, rdv_command: list[str]) -> int:
    """The ``rdv lab doctor`` command; 0 when every preset agrees, 1 otherwise."""
    from rdv_core.doctor import Prediction
    from rdv_core.lab import PRESETS, SEQUENTIAL_A, Lab, LabRunner, start_doctor_server
    from rdv_core.lab._doctor_table import doctor_header, doctor_row
    from rdv_tui.cli.commands.lab import terminal_room

    specs = {**PRESETS, SEQUENTIAL_A.name: SEQUENTIAL_A}
    names = presets or list(specs)
    room = terminal_room()
    if not as_json:
        print(f"rdv lab doctor: {plural(runs, 'race')} per preset")
        print("\n".join(doctor_header(room)), flush=True)
    out = []
    bad = False
    for name in names:
        spec = specs[name]
        with Lab(spec, rdv_command=rdv_command) as lab:
            start_doctor_server(lab)
            found = doctor_prediction(lab)
            runner = LabRunner(lab)
            outcomes = [runner.run_once() for _ in range(runs)]
        prediction = Prediction.from_json(found["prediction"])
        results = [r.outcome for r in outcomes]
        agree = all(prediction.agrees_with(o) for o in results)
        bad = bad or not agree or bool(found["mismatches"])
        direct = results.count("direct")
        times = sorted(r.connect_ms for r in outcomes if r.connect_ms is not None)
        row = {
            "preset": name,
            "expect": spec.expect,
            "prediction": found["prediction"],
            "outcomes": results,
            "agree": agree,
            "mismatches": found["mismatches"],
            "reports": found["reports"],
            "p50_ms": times[len(times) // 2] if times else None,
        }
        out.append(row)
        if not as_json:
            a, b = (found["reports"][h] for h in (spec.dialer, spec.accepter))
            built = "ok" if not found["mismatches"] else "MISMATCH"
            predicted = f"{prediction.expect} {prediction.winner}"
            outcome = f"{direct}/{len(results)} direct {ms_figure(row['p50_ms'])} ms"
            cells = [name, _short(a), _short(b), built, predicted, outcome]
            cells.append("yes" if agree else "NO")
            advice = prediction.advice if prediction.expect != "direct" else ""
            # A host with several uplinks: each one's findings (PROTOCOL 15.8).
            notes = [
                f"{side}'s uplinks: "
                + "; ".join(f"{p.get('uplink') or 'default'} {_short(p)}" for p in (r, *ups))
                for side, r in (("A", a), ("B", b))
                if (ups := r.get("uplinks"))
            ]
            lines = doctor_row(
                cells, found["mismatches"], prediction.reason, room, advice, notes=notes
            )
            print("\n".join(lines), flush=True)
    if as_json:
        json.dump({"doctor": out}, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
    return 1 if bad else 0


def predicted_cell(cell: Any, runs: int, rdv_command: list[str]) -> Any:
    """One matrix cell with the doctor's prediction: its ``MatrixRow``, ``extra`` filled.

    The lab is built once; its server answers the doctor's probes (``start_doctor_server``),
    both peers run ``rdv doctor``, the prediction is made from their reports, then the
    races run on the same lab. ``extra``: ``predicted`` (``direct``/``possible``/``relay``)
    and ``agree`` (``yes`` when every run's outcome agrees, ``possible`` agreeing with both).
    """
    from rdv_core.doctor import Prediction
    from rdv_core.lab import (
        MATRIX_PAYLOAD,
        Lab,
        LabRunner,
        MatrixRow,
        PresetResult,
        start_doctor_server,
    )

    result = PresetResult(cell.spec)
    with Lab(cell.spec, rdv_command=rdv_command) as lab:
        start_doctor_server(lab)
        found = doctor_prediction(lab)
        runner = LabRunner(lab, payload_size=MATRIX_PAYLOAD)
        result.runs = [runner.run_once() for _ in range(runs)]
    prediction = Prediction.from_json(found["prediction"])
    agree = all(prediction.agrees_with(r.outcome) for r in result.runs)
    bad = sum(1 for r in result.runs if r.data_ok is False)
    extra = {"predicted": prediction.expect, "agree": "yes" if agree else "NO"}
    return MatrixRow(cell, result.summary(), bad, extra)
