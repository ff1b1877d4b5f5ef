"""One write per response: the status line and headers leave with the first body part.

Uvicorn's httptools protocol writes a response's head (status line and headers)
to the socket as soon as the app sends `http.response.start`, and its body when
the app sends `http.response.body`: two `send` system calls, and two segments
the client wakes up for, for every small JSON answer. `HeldHead` stands between
a connection's response cycles and its transport and sends the head together
with what follows it.

Contract of `HeldHead` (one per connection; responses on a connection are
sequential, so at most one head is held at a time):

* A write that is a final response's head (it starts with `HTTP/1.1 `, is not
  an interim `1xx` answer such as `100 Continue`, and ends with the blank line
  that closes the headers) is held; every other write goes out at once, the
  held head first, as one write.
* `flush()` sends a held head alone: the protocol calls it when a response is
  complete (a response to HEAD, or one with no body part, writes nothing after
  its head). `close()` flushes first, so a response that fails after its head
  still tells the client as much as before; `abort()` drops it, as it drops
  whatever else is unsent.
* Everything else (`is_closing`, `get_extra_info`, flow control, ...) is the
  transport's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

_HEAD_START = b"HTTP/1.1 "
_INTERIM = b"HTTP/1.1 1"
_HEAD_END = b"\r\n\r\n"


class HeldHead:
    """A transport that holds a response's head until the next write (module docstring)."""

    __slots__ = ("_head", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head + bytes(data))
        elif (isinstance(data, bytes) and data.startswith(_HEAD_START)
              and not data.startswith(_INTERIM) and data.endswith(_HEAD_END)):
            self._head = data
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send a held head on its own (the response had nothing after it)."""
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
