"""The app's aggregate transfer line counts verified files, the failed ones apart.

A failed file was counted as done beside bytes that count only verified files: one 3 GiB
file that failed read ``1/1 files · 0 B/3.0 GiB · ... · 1 failed``.
"""

from __future__ import annotations

from rdv_tui.widgets.files import Aggregate


def test_a_failed_file_is_not_a_done_file() -> None:
    aggregate = Aggregate()
    aggregate.files_total, aggregate.bytes_total = 1, 3 * 2**30
    aggregate.files_failed = 1
    aggregate.settle(7, 0)
    line = aggregate.text("↑")
    assert line.startswith("↑ 0/1 files · "), line
    assert line.endswith(" · 1 failed"), line
