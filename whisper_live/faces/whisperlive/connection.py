"""The WhisperLive face's view of a WebSocket, whichever library carries it.

The face runs on its own port (the ``websockets`` library) and on the HTTP port at ``/ws``
(aiohttp), so one port can carry everything behind a proxy. Its per-connection logic talks
to a ``Connection``: receive a frame, send text, close with a code, iterate until the peer
closes. Each library gets a thin adapter that maps its own "the peer went away" errors to
``ConnectionGone``, so the face handles a vanished client in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import WSMsgType, web
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

_CLOSED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)
_NORMAL_CLOSE = (1000, 1001, None)  # as websockets' ConnectionClosedOK: the end, not a failure


class ConnectionGone(Exception):
    """The peer closed the connection or it broke: nothing more can be sent or received."""


class Connection(Protocol):
    peer: str  # "address:port" of the other end, for the logs

    @property
    def close_code(self) -> int | None: ...

    async def recv(self) -> str | bytes:
        """The next frame; ConnectionGone once the connection is closed."""

    async def send(self, text: str) -> None:
        """Send a text frame; ConnectionGone once the connection is closed."""

    async def close(self, code: int, reason: str) -> None: ...

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Frames until the peer closes normally; ConnectionGone when the connection breaks."""


class WebsocketsConnection:
    """The face's own port: a ``websockets`` ServerConnection."""

    def __init__(self, ws: ServerConnection):
        self.ws = ws
        self.peer = self.peer_of(ws)

    @staticmethod
    def peer_of(ws: ServerConnection) -> str:
        return _address(ws.remote_address)

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def recv(self) -> str | bytes:
        try:
            return await self.ws.recv()
        except ConnectionClosed as exc:
            raise ConnectionGone(str(exc)) from exc

    async def send(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except ConnectionClosed as exc:
            raise ConnectionGone(str(exc)) from exc

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                yield await self.ws.recv()
            except ConnectionClosedOK:
                return
            except ConnectionClosed as exc:
                raise ConnectionGone(str(exc)) from exc


class AiohttpConnection:
    """The HTTP port's ``/ws``: an aiohttp WebSocketResponse, already prepared."""

    def __init__(self, ws: web.WebSocketResponse, peer: str):
        self.ws = ws
        self.peer = peer

    @staticmethod
    def peer_of(request: web.Request) -> str:
        return _address(request.transport.get_extra_info("peername") if request.transport else None)

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def _next(self) -> str | bytes | None:
        """The next data frame, or None when the peer closed normally."""
        message = await self.ws.receive()
        if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            return message.data
        if message.type in _CLOSED and self.ws.close_code in _NORMAL_CLOSE:
            return None
        raise ConnectionGone(f"connection closed ({message.type.name}, code {self.ws.close_code})")

    async def recv(self) -> str | bytes:
        message = await self._next()
        if message is None:
            raise ConnectionGone(f"connection closed (code {self.ws.close_code})")
        return message

    async def send(self, text: str) -> None:
        if self.ws.closed:
            raise ConnectionGone(f"connection closed (code {self.ws.close_code})")
        try:
            await self.ws.send_str(text)
        except ConnectionError as exc:  # aiohttp: ClientConnectionResetError, "closing transport"
            raise ConnectionGone(str(exc)) from exc

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode()[:120])

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        while (message := await self._next()) is not None:
            yield message


def _address(address) -> str:
    return f"{address[0]}:{address[1]}" if address else "?"
