"""What to tell a user whose download folder cannot take the files (read-only, full).

The reason alone ("cannot write x: read-only file system") was right, and left the
user to guess that another folder was the way out, and how to choose one.
"""

from __future__ import annotations

#: What to do when the download folder cannot take files (README, "Screens").
FOLDER_HINT = (
    "to receive into another folder, start the app with rdv tui --download-dir DIR, "
    'or set downloads = "DIR" in config.toml (rdv receive: --dir DIR)'
)
#: Words of the reasons that mean the folder, not the file, is the trouble
#: (rdv_core.session.describe_os_error, docs/PROTOCOL.md 12.7's free space refusal).
_FOLDER_WORDS = (
    "permission denied",
    "read-only file system",
    "disk full",
    "disk quota exceeded",
    "not enough free space in the download folder",
)


def folder_trouble(reason: str) -> bool:
    """Whether a receive failed for the download folder's sake (not the sender's)."""
    return not reason.startswith("sender:") and any(w in reason for w in _FOLDER_WORDS)
