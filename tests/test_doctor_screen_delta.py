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


async def test_the_doctor_screen_shows_another_uplink_s_findings_live(tmp_path: Path) -> None:
    """An extra uplink's findings (``nat@eth1 203.0.113.30``, as the doctor's ``on_finding``
    gives them) show as they come, under the table. Old: stored and never shown until the
    final summary."""
    app = make_app(config(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.doctor_screen
        await app.switch_mode("doctor")
        screen.found("nat", Finding(True, "the main path's"))
        screen.found("nat@eth1 203.0.113.30", Finding(False, "we are 203.0.113.30:40001"))
        screen.found("filtering@eth1 203.0.113.30", Finding("open", "a SYN reached us"))
        await pilot.pause()
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
    assert "eth1 203.0.113.30: NAT no, filtering open" in text, text
