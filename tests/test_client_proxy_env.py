"""The proxy variables an attempt reads are the ones set in the environment now.

``client/_prepare._proxy_env`` asks CPython's environment mapping without raising for
unset names (issue 10's connect time, docs/notes/issue-10-connect-fifth.md): a guard that
its answer is what ``os.environ.get`` gives, name by name, after each change to the real
environment of this process.
"""

from __future__ import annotations

import os

import pytest

from rdv_core.client._prepare import _PROXY_VARS, _proxy_env


def _by_get() -> tuple[tuple[str, str], ...]:
    return tuple((n, v) for n in _PROXY_VARS if (v := os.environ.get(n)) is not None)


def test_proxy_env_is_what_os_environ_get_says(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    assert _proxy_env() == () == _by_get()
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "")  # set but empty is set
    monkeypatch.setenv("ALL_PROXY", "http://pr\udcffoxy:1")  # a non-UTF-8 byte, surrogateescape
    monkeypatch.setenv("HTTPS_PROXYX", "http://127.0.0.1:9")  # not one of ours
    assert _proxy_env() == _by_get()
    assert dict(_proxy_env()) == {
        "NO_PROXY": "",
        "https_proxy": "http://127.0.0.1:3128",
        "ALL_PROXY": "http://pr\udcffoxy:1",
    }
    os.environ.pop("https_proxy")  # a change is seen by the next read
    assert "https_proxy" not in dict(_proxy_env())
    assert _proxy_env() == _by_get()
