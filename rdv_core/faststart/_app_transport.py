"""The application's side of a fast-start stream: an :class:`asyncio.Transport` facade.

The application gets a plain ``StreamReader``/``StreamWriter`` pair over it
(:class:`~rdv_core.faststart._stream.MigratingStream`), which never notices that the
stream moves between paths (docs/PROTOCOL.md section 16.4).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from rdv_core.faststart._stream import MigratingStream

__all__ = ["RETAIN_HIGH", "RETAIN_LOW", "AppTransport"]

#: The app's writes pause while we keep more than this (unacknowledged bytes): memory
#: per conn, and with one RTT of the slowest path the cap on its throughput (8 MiB over
#: 50 ms is 160 MiB/s).
RETAIN_HIGH: Final = 8 * 1024 * 1024
RETAIN_LOW: Final = RETAIN_HIGH // 2


class AppTransport(asyncio.Transport):
    """What the application's StreamWriter writes to: the stream, not a socket."""

    def __init__(self, stream: MigratingStream) -> None:
        super().__init__()
        self._stream = stream

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._stream.write(bytes(data))

    def write_eof(self) -> None:
        self._stream.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self._stream.close()

    def abort(self) -> None:
        self._stream.abort()

    def is_closing(self) -> bool:
        return self._stream.closing

    def pause_reading(self) -> None:
        self._stream.pause_reading()

    def resume_reading(self) -> None:
        self._stream.resume_reading()

    def is_reading(self) -> bool:
        return self._stream._read_ok.is_set()

    def get_write_buffer_size(self) -> int:
        return self._stream.write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return RETAIN_LOW, RETAIN_HIGH

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass  # the retention window is fixed (RETAIN_HIGH)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The current send path's ``peername``, ``sockname`` ...; never its ``socket``
        (whoever took it over would bypass the framing): ``path_socket`` names it for
        readers of ``TCP_INFO``."""
        if name == "socket":
            return default
        current = self._stream.current
        key = "socket" if name == "path_socket" else name
        value = current.extra(key) if current is not None else None
        return default if value is None else value
