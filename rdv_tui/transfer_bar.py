"""The aggregate progress line of ``rdv send`` / ``rdv receive``, fitted to the width.

Rich's :class:`~rich.progress.Progress` lays its columns out as a table and squeezes them
when the terminal is narrow: at 60 columns the rate folded into two lines (``458.9``
over ``MiB/s``), at 40 every field was cut (``2.0/… 224… 0:00:…``). Here the fields
that fit are shown whole on one line, the least useful going first, and the current
file's name and the bar share what is left (a name that does not fit keeps its end:
the file itself). Imported only inside the commands' ``run()`` (rich).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, Task, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from rdv_tui.progress_columns import RateColumn, SizeDoneColumn

#: Rich's own bar width: a wider terminal gets no longer bar, as before.
BAR_MAX = 40
#: Narrower than this, a bar tells nothing: the fields take the room.
BAR_MIN = 8
#: Narrower than this, a name tells nothing: the bar takes the room.
NAME_MIN = 8
#: The fields in the order shown.
FIELDS = ("files", "size", "rate", "eta")


class FittedProgress(Progress):
    """A progress display whose one line per task always fits the console's width.

    A task's ``description`` is its name (rich markup, escaped); its field ``files`` is
    ``3/10 files`` and ``many`` says whether the send has more than one file (a lone
    file's ``0/1 files`` is the first to go, else the rate is).
    """

    def __init__(self, console: Console) -> None:
        super().__init__(console=console)
        self._bar = BarColumn(bar_width=BAR_MAX)
        self._size = SizeDoneColumn()
        self._rate = RateColumn()
        self._eta = TimeRemainingColumn()
        #: The widest text seen per field: fields keep their place as digits change,
        #: so the bar does not jump (the rate is blank, then "9.8 MiB/s", then "10.1 ...").
        self._widest = dict.fromkeys(FIELDS, 0)

    def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
        """One row per visible task, each laid out for the console's current width."""
        table = Table.grid()
        table.add_column(no_wrap=True)
        for task in tasks:
            if task.visible:
                table.add_row(self._line(task, self.console.width))
        return table

    def _line(self, task: Task, width: int) -> Table:
        texts = {
            "files": Text(str(task.fields.get("files", ""))),
            "size": self._size.render(task),
            "rate": self._rate.render(task),
            "eta": self._eta.render(task),
        }
        for key, text in texts.items():
            self._widest[key] = max(self._widest[key], text.cell_len)
        shown = [key for key in FIELDS if self._widest[key]]
        drop = ["rate", "eta", "files"] if task.fields.get("many") else ["files", "rate", "eta"]

        def used() -> int:
            return sum(self._widest[key] for key in shown) + len(shown) - 1

        while shown and used() > width and drop:
            gone = drop.pop(0)
            if gone in shown:
                shown.remove(gone)
        rest = width - used() - 1 if shown else width
        name = Text.from_markup(task.description).plain
        name_w = bar_w = 0
        if name and rest >= BAR_MIN + 1 + NAME_MIN:
            # The name before the bar (the bar repeats the size's fraction): a third of
            # the room for the bar, the rest for the name, what the name leaves to the bar.
            bar_w = min(max((rest - 1) // 3, BAR_MIN), BAR_MAX)
            name_w = min(cell_len(name), rest - 1 - bar_w)
            bar_w = min(BAR_MAX, rest - 1 - name_w)
        elif rest >= BAR_MIN:
            bar_w = min(BAR_MAX, rest)
        row = Table.grid(padding=(0, 1))
        cells: list[RenderableType] = []
        if name_w:
            row.add_column(no_wrap=True, width=name_w)
            cells.append(Text(_tail(name, name_w)))
        if bar_w:
            self._bar.bar_width = bar_w
            row.add_column(no_wrap=True, width=bar_w)
            cells.append(self._bar.render(task))
        for key in shown:
            row.add_column(no_wrap=True, width=self._widest[key], overflow="crop")
            cells.append(texts[key])
        row.add_row(*cells)
        return row


def _tail(text: str, width: int) -> str:
    """``text`` in ``width`` cells, its start cut (``…port-final.pdf``): the end names the file."""
    if cell_len(text) <= width:
        return text
    while text and cell_len("…" + text) > width:
        text = text[1:]
    return "…" + text
