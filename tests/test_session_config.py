"""Settings: server URL precedence, downloads folder, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from rdv_core.config import ConfigError, load_settings, resolve_server


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('server = "http://from-file:1"\ndownloads = "~/got"\n')
    monkeypatch.setenv("RDV_CONFIG", str(cfg))
    monkeypatch.delenv("RDV_SERVER", raising=False)
    assert resolve_server(None) == ("http://from-file:1", str(cfg))
    monkeypatch.setenv("RDV_SERVER", "http://from-env:2")
    assert resolve_server(None) == ("http://from-env:2", "RDV_SERVER")
    assert resolve_server("http://flag:3") == ("http://flag:3", "--server")
    assert load_settings().downloads == Path("~/got").expanduser()


def test_missing_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDV_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("RDV_SERVER", raising=False)
    with pytest.raises(ConfigError, match="pass --server URL, set RDV_SERVER"):
        resolve_server(None)
    assert load_settings().server is None


@pytest.mark.parametrize("text", ["server = ", "server = 5", 'downloads = ["x"]'])
def test_bad_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    monkeypatch.setenv("RDV_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match=str(cfg)):
        load_settings()


def test_a_misspelt_setting_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `sever = ...` was read as no setting at all: "no rdv server: ... write server = ...".
    cfg = tmp_path / "config.toml"
    cfg.write_text('sever = "https://rdv.example.com"\n')
    monkeypatch.setenv("RDV_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match=r"unknown setting 'sever' \(did you mean 'server'\?\)"):
        load_settings()
    cfg.write_text('server = "https://rdv.example.com"\ncolour = 1\n')
    with pytest.raises(ConfigError, match="unknown setting 'colour': the settings are server, "):
        load_settings()


def test_a_toml_error_says_it_is_toml_and_how_a_setting_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing closing quote read ``...: Illegal character '\\n' (at line 1, column 33)``:
    tomllib's words, with nothing on what the file is or should hold."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('server = "http://127.0.0.1:8080\n')
    monkeypatch.setenv("RDV_CONFIG", str(cfg))
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"{cfg}: not valid TOML: ")
    assert str(raised.value).endswith('a setting reads server = "https://..."')
    cfg.unlink()
    cfg.mkdir()  # a folder where the file should be: said without "[Errno 21]"
    with pytest.raises(ConfigError, match=r"cannot read it: Is a directory$"):
        load_settings()


def test_a_proxy_in_the_config_file_points_at_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `proxy = ...` was refused with only "the settings are server, downloads": a user in an
    # office network was not told where a proxy goes (README "Through an HTTP proxy").
    cfg = tmp_path / "config.toml"
    monkeypatch.setenv("RDV_CONFIG", str(cfg))
    for name in ("proxy", "HTTPS_PROXY", "no-proxy"):
        cfg.write_text(f'{name} = "http://proxy.corp:3128"\n')
        with pytest.raises(ConfigError, match=r"use HTTPS_PROXY in the environment, or --proxy"):
            load_settings()
