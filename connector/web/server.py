"""Connection-level behaviour uvicorn does not have: a deadline on request headers, and
each response in one write.

Contract of `HeaderDeadline` (uvicorn's httptools protocol, which `serve` always
selects, plus these rules):

* The request line and headers of a connection's first request must be complete
  within `header_timeout` seconds of the connection's opening; those of every
  later request on a kept-alive connection, within `header_timeout` of that
  request's first byte (between requests uvicorn's own keep-alive timeout applies).
* When the deadline passes, a connection that has sent part of a request is
  answered `408 {"error": "timeout", ...}` with `Connection: close` and closed;
  one that has sent nothing is closed without an answer (what uvicorn does to an
  idle keep-alive connection). If an earlier pipelined request is still being
  answered, the connection closes once that answer is sent.
* A response completed while its request's body is still arriving (the app
  answered without reading it: 401, 404, ...) closes the connection: the rest of
  that body would otherwise keep it open with no deadline, uvicorn re-arming its
  keep-alive timer only once the body is complete. The app's own body deadline
  (`http.bounded`) covers bodies that are read.
* Once the headers are complete the deadline is gone: a slow app, a long body
  read (the app's `CONNECTOR_BODY_TIMEOUT_SECONDS`) and WebSocket upgrades are not
  affected.
* A response's head is written together with its first body part
  (`coalesce.HeldHead`): one `send` per small response instead of two. A head
  with nothing after it goes out when its response is complete.

`BoundServer` is uvicorn's server on a socket `serve` bound before migrating (so a
port in use is one line before anything ran); it logs where it listens once up.

`raise_open_files_limit` lifts the process's soft limit on open files to the hard
limit, so that the sockets a burst of slow clients holds until their deadline do
not exhaust file descriptors first.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from connector.memory import freeze_startup_objects
from connector.web.coalesce import HeldHead

log = logging.getLogger("connector")


class HeaderDeadline(HttpToolsProtocol):
    """Uvicorn's httptools protocol with a deadline on request headers (module docstring),
    whose responses each leave in one write (`coalesce.HeldHead`)."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _request_begun = False
    _held: HeldHead | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._held = HeldHead(transport)
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        if self._header_timer is None:  # a later request: the clock starts at its first byte
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def on_headers_complete(self) -> None:
        self._stop_header_clock()
        self._request_begun = False
        super().on_headers_complete()
        if self.cycle is not None and self._held is not None:
            self.cycle.transport = self._held  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        if self._held is not None:
            self._held.flush()
        # With requests queued behind it, this one's body was complete (the next began).
        if (not self.pipeline and self.cycle is not None and self.cycle.more_body
                and not self.transport.is_closing()):
            self.transport.close()
        super().on_response_complete()

    def _stop_header_clock(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # close once the earlier request is answered
            return
        if self._request_begun:
            body = orjson.dumps({"error": "timeout", "message": "request headers not received "
                                 f"within {self.header_timeout:g} s"})
            head = [b"HTTP/1.1 408 Request Timeout\r\n"]
            head += [name + b": " + value + b"\r\n"
                     for name, value in self.server_state.default_headers]
            head += [b"content-type: application/json\r\n",
                     b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n"]
            self.transport.write(b"".join(head) + body)
        self.transport.close()


def http_protocol(header_timeout: float) -> type[HeaderDeadline]:
    """The protocol class for uvicorn's `http=` option, with this header deadline."""
    seconds = header_timeout

    class Configured(HeaderDeadline):
        header_timeout = seconds

    return Configured


class BoundServer(uvicorn.Server):
    """Uvicorn's server, run as `BoundServer(config).run(sockets=[sock])`."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            freeze_startup_objects()
        if self.started and sockets:  # uvicorn logs nothing for sockets it was given
            host, port = sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info("running on http://%s:%d (Press CTRL+C to quit)", shown, port)


def raise_open_files_limit() -> None:
    """Lift RLIMIT_NOFILE's soft limit to its hard limit (where the platform has one)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return  # unlimited, or nothing to gain (an unlimited hard limit cannot be the soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open files limit from %d to %d: %s", soft, hard, exc)
        return
    log.info("open files limit raised from %d to %d", soft, hard)
