"""User settings: the default rdv server and where received files go.

Read from a small TOML file, ``config.toml`` in the platform's config folder
(``platformdirs``: ``~/.config/rdv/config.toml`` on Linux), for example::

    server = "https://rdv.example.com"
    downloads = "~/Downloads"

The server URL is chosen in this order: a command-line flag, the ``RDV_SERVER``
environment variable, the config file. ``RDV_CONFIG`` points at another config file
(tests, several profiles). Received files default to the user's downloads folder.
(Recent servers and codes are remembered by the app, not here.)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rdv_core.errors import RdvError

ENV_SERVER = "RDV_SERVER"
ENV_CONFIG = "RDV_CONFIG"
#: The settings the file may hold: a misspelt one (``sever =``) was read as no setting.
KNOWN_SETTINGS = ("server", "downloads")


class ConfigError(RdvError, ValueError):
    """The config file is unreadable or wrong, or no server is configured."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What the config file says (None / defaults where it is silent).

    Attributes:
        path: The config file (it may not exist).
        server: ``server =`` from the file.
        downloads: Where received files go.
    """

    path: Path
    server: str | None
    downloads: Path


def config_path() -> Path:
    """The config file: ``$RDV_CONFIG`` or ``<user config dir>/rdv/config.toml``."""
    override = os.environ.get(ENV_CONFIG)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_path

    return user_config_path("rdv") / "config.toml"


def default_downloads() -> Path:
    """The user's downloads folder (``~/Downloads`` when the platform does not say)."""
    from platformdirs import user_downloads_path

    return user_downloads_path()


def load_settings(path: Path | None = None) -> Settings:
    """Read the config file; a missing file means defaults.

    Raises:
        ConfigError: the file exists but is not valid TOML or has wrong types.
    """
    path = path or config_path()
    data: dict[str, object] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            # tomllib's words alone ("Illegal character '\n' (at line 1, column 33)")
            # said neither that the file is TOML nor what a setting looks like.
            raise ConfigError(
                f'{path}: not valid TOML: {exc}; a setting reads server = "https://..."'
            ) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not a UTF-8 text file") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    for name in data:
        if name not in KNOWN_SETTINGS:
            raise ConfigError(f"{path}: {_unknown_setting(name)}")
    server = data.get("server")
    if server is not None and (not isinstance(server, str) or not server.strip()):
        raise ConfigError(f"{path}: 'server' must be a URL string")
    downloads = data.get("downloads")
    if downloads is not None and not isinstance(downloads, str):
        raise ConfigError(f"{path}: 'downloads' must be a folder path string")
    return Settings(
        path=path,
        server=server.strip() if isinstance(server, str) else None,
        downloads=Path(downloads).expanduser() if downloads else default_downloads(),
    )


def _unknown_setting(name: str) -> str:
    import difflib

    known = ", ".join(KNOWN_SETTINGS)
    close = difflib.get_close_matches(name, KNOWN_SETTINGS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if name.lower().replace("-", "_") in _PROXY_NAMES:
        # The proxy comes from the environment or --proxy (README "Through an HTTP proxy"):
        # a user who wrote one here was told only what the settings are.
        hint = " (a proxy is not set here: use HTTPS_PROXY in the environment, or --proxy)"
    return f"unknown setting {name!r}{hint}: the settings are {known}"


#: Names a user may try for a proxy in the config file.
_PROXY_NAMES: Final = frozenset({"proxy", "https_proxy", "http_proxy", "all_proxy", "no_proxy"})


def resolve_server(
    flag: str | None, settings: Settings | None = None, *, how_to_pass: str = "pass --server URL"
) -> tuple[str, str]:
    """The server URL to use and where it came from (``--server``, ``RDV_SERVER``, the file).

    ``how_to_pass`` is the error's first advice: commands that take the URL another way
    (``rdv doctor URL``) name their own.

    Raises:
        ConfigError: no server anywhere (the message says how to set one).
    """
    if flag:
        return flag, "--server"
    env = os.environ.get(ENV_SERVER, "").strip()
    if env:
        return env, ENV_SERVER
    settings = settings or load_settings()
    if settings.server:
        return settings.server, str(settings.path)
    raise ConfigError(
        f"no rdv server: {how_to_pass}, set {ENV_SERVER}, "
        f'or write server = "https://..." in {settings.path}'
    )
