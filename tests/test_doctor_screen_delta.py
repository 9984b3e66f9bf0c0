"""The Doctor screen shows a sequential allocation's step, as ``rdv doctor`` prints it.

The CLI said ``allocation  sequential (+256)`` and the JSON ``allocation_delta: 256``; the
app's screen said ``sequential`` alone, the one number port prediction rests on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rdv_core.doctor import Finding
from rdv_tui.app import make_app
from rdv_tui.scene_doctor import doctor_scene_report

from tests.tui.test_live import config


async def test_the_doctor_screen_shows_the_allocation_step(tmp_path: Path) -> None:
    base = doctor_scene_report()
    findings = dict(base.findings)
    findings["allocation"] = Finding("sequential", "public ports 4096, 4352, 4608: each +256")
    report = dataclasses.replace(base, findings=findings, allocation_delta=256)
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.doctor_screen
        screen.urls = [s.url for s in report.servers]
        screen.report = report
        await app.switch_mode("doctor")
        screen.show_report(report)
        await pilot.pause()
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
    assert "sequential (+256)" in text, text
