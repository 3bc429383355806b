"""Running the app under uvicorn with limits on slow or idle clients.

uvicorn closes a connection idle between requests after `timeout_keep_alive`, but once a client has sent the
first byte of a request it waits for the rest of the headers for ever, so a few slow clients (slowloris) could
hold every connection. `HeaderDeadlineH11Protocol` closes a connection whose request headers are not complete
within `header_timeout_s` of the connection opening or the previous response ending. Header size is bounded by
h11 (`H11_MAX_HEADER_BYTES`); the body's pace and size by the app's `BodyLimits`.
"""

from __future__ import annotations

import asyncio
import socket

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0
KEEP_ALIVE_TIMEOUT_S = 5
H11_MAX_HEADER_BYTES = 16 * 1024


class HeaderDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers arrive too slowly."""

    header_timeout_s: float = HEADER_TIMEOUT_S

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE:  # waiting for the next request's headers
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def protocol_with_header_timeout(seconds: float) -> type[HeaderDeadlineH11Protocol]:
    """The protocol class uvicorn instantiates per connection, with its header deadline set."""
    return type("HeaderDeadlineH11Protocol", (HeaderDeadlineH11Protocol,), {"header_timeout_s": seconds})


def server_config(
    app: FastAPI, host: str, port: int, header_timeout_s: float = HEADER_TIMEOUT_S, log_level: str = "info"
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=protocol_with_header_timeout(header_timeout_s),
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT_S,
        h11_max_incomplete_event_size=H11_MAX_HEADER_BYTES,
        server_header=False,
    )


def default_allowed_hosts(host: str) -> tuple[str, ...]:
    """Host header values a server bound to `host` answers to when none are given: its address and localhost.

    A wildcard bind (0.0.0.0, ::) adds this machine's host names; any other name needs --allowed-hosts.
    """
    names = {"localhost", "127.0.0.1", "[::1]"}
    if host in ("0.0.0.0", "::", ""):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    elif ":" in host:
        names.add(f"[{host.strip('[]').lower()}]")
    else:
        names.add(host.lower())
    return tuple(sorted(names))
