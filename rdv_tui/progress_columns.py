"""Rich progress columns that write sizes and rates like the rest of rdv (IEC units).

Rich's own ``TransferSpeedColumn`` writes decimal ``MB/s`` and ``DownloadColumn``
writes ``1,000/1,000 bytes``, next to our ``1000 B`` and ``1.5 MiB`` (issue 16): these
format through :mod:`rdv_tui.cli.formatting`, the one place for units.
"""

from __future__ import annotations

from rich.progress import ProgressColumn, Task
from rich.text import Text

from rdv_tui.cli.formatting import human_done, human_rate


class SizeDoneColumn(ProgressColumn):
    """``1.5/3.0 MiB``."""

    def render(self, task: Task) -> Text:
        total = task.total if task.total is not None else task.completed
        return Text(
            human_done(task.completed, total, largest_unit="TiB"), style="progress.download"
        )


class RateColumn(ProgressColumn):
    """``11.2 MiB/s`` (blank until rich has a speed estimate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("", style="progress.data.speed")
        return Text(human_rate(speed, largest_unit="TiB"), style="progress.data.speed")
