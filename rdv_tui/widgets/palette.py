"""Theme-aware colours for Rich renderables (DataTable cells, the waterfall).

Rich styles need concrete colours, while Textual themes define variables. These
helpers resolve a theme variable to a colour string at render time, so that
every theme (and a theme change) colours the race consistently.
"""

from __future__ import annotations

from textual.app import App

from rdv_tui.race_model import RowState

#: The theme variable that colours each state.
STATE_COLOURS: dict[RowState, str] = {
    RowState.SKIPPED: "foreground-darken-3",
    RowState.DIALING: "primary-lighten-2",
    RowState.RETRYING: "warning",
    RowState.INBOUND: "secondary-lighten-3",
    RowState.CONNECTED: "accent",
    RowState.HANDSHAKEN: "accent",
    RowState.READY: "secondary-lighten-3",
    RowState.FAILED: "error",
    RowState.REJECTED: "error",
    RowState.PICKED: "success",
    RowState.DISCARDED: "warning",
}

_FALLBACK = {
    "primary": "#0178D4",
    "secondary": "#004578",
    "accent": "#ffa62b",
    "warning": "#ffa62b",
    "error": "#ba3c5b",
    "success": "#4EBF71",
    "foreground": "#e0e0e0",
}


def colour(app: App[object], name: str) -> str:
    """The concrete colour of theme variable ``name`` (a fallback when it is not a colour)."""
    value = app.theme_variables.get(name, "")
    if value.startswith("#") and len(value) in (7, 9):
        return value[:7]  # Rich has no alpha channel: drop it
    if value.startswith("rgb"):
        return value
    base = name.split("-", 1)[0]
    return _FALLBACK.get(base, _FALLBACK["foreground"])


def state_colour(app: App[object], state: RowState) -> str:
    """The colour of a candidate state in the current theme."""
    return colour(app, STATE_COLOURS[state])
