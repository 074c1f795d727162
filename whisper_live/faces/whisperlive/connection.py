"""The WhisperLive face's view of a WebSocket, whichever library carries it.

The face runs on its own port (the ``websockets`` library) and on the HTTP port at ``/ws``
(aiohttp), so one port can carry everything behind a proxy. Its per-connection logic talks
to a ``Connection``: receive a frame, send text, close with a code, iterate until the peer
closes. Each library gets a thin adapter that maps its own "the peer went away" errors to
``ConnectionGone``, so the face handles a vanished client in one place.

Two transport concerns live here too, the same on both transports: the peer a log line
names (behind ``--trusted-proxies``, the client the proxy forwarded for: ``gate.proxies``)
and frames over ``--max-frame-mb``, which the libraries would close with a bare 1009: the
client gets the protocol's ``ERROR`` first, with the limit and what to do, then the 1009.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from aiohttp import WSCloseCode, WSMsgType, web
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State

from ...gate.proxies import Network, client_peer

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


def frame_too_large(uid: str | None, detail: str) -> str:
    """The ``ERROR`` a client gets before the 1009 close of a frame over ``--max-frame-mb``."""
    message = f"frame too large ({detail}; the server's --max-frame-mb): send audio in smaller frames"
    return json.dumps({"uid": uid, "status": "ERROR", "message": message})


def _uid_of(frame: str | bytes, known: str | None) -> str | None:
    """The stream's uid from its configuration (the first text frame), for an ERROR sent
    by the transport itself."""
    if known is not None or not isinstance(frame, str):
        return known
    try:
        uid = json.loads(frame).get("uid")
    except (ValueError, AttributeError):
        return None
    return uid if isinstance(uid, str) else None


class CappedServerConnection(ServerConnection):
    """A ``websockets`` connection whose frame-size failure (``max_size``) first sends the
    protocol's ``ERROR``: the library's parser fails the connection with 1009 by itself,
    so the ERROR frame is queued just before its close frame (``serve(create_connection=)``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stream_uid: str | None = None
        fail = self.protocol.fail

        def fail_with_error(code: int, reason: str = "") -> None:
            if code == CloseCode.MESSAGE_TOO_BIG and self.protocol.state is State.OPEN:
                self.protocol.send_frame(
                    Frame(Opcode.TEXT, frame_too_large(self.stream_uid, reason).encode())
                )
            fail(code, reason)

        self.protocol.fail = fail_with_error


class CappedWebSocketResponse(web.WebSocketResponse):
    """aiohttp's side of ``CappedServerConnection``: a message over ``max_msg_size`` makes
    ``receive`` close with 1009 by itself; the ERROR goes out first."""

    stream_uid: str | None = None

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not self.closed:
            detail = f"over {self._max_msg_size} bytes"  # noqa: SLF001 - aiohttp keeps the limit here
            with contextlib.suppress(ConnectionError):
                await self.send_str(frame_too_large(self.stream_uid, detail))
            message = message or b"frame too large (--max-frame-mb)"
        return await super().close(code=code, message=message, drain=drain)


class WebsocketsConnection:
    """The face's own port: a ``websockets`` ServerConnection."""

    def __init__(self, ws: ServerConnection, trusted: Sequence[Network] = ()):
        self.ws = ws
        self.peer = self.peer_of(ws, ws.request.headers if ws.request else {}, trusted)

    @staticmethod
    def peer_of(ws: ServerConnection, headers=None, trusted: Sequence[Network] = ()) -> str:
        """The client's address (and port); behind a trusted proxy, the one it forwarded for."""
        return client_peer(_address(ws.remote_address), headers or {}, trusted)

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def recv(self) -> str | bytes:
        try:
            frame = await self.ws.recv()
        except ConnectionClosed as exc:
            raise ConnectionGone(str(exc)) from exc
        if isinstance(self.ws, CappedServerConnection):
            self.ws.stream_uid = _uid_of(frame, self.ws.stream_uid)
        return frame

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
    def peer_of(request: web.Request, trusted: Sequence[Network] = ()) -> str:
        """The client's address (and port); behind a trusted proxy, the one it forwarded for."""
        peer = _address(request.transport.get_extra_info("peername") if request.transport else None)
        return client_peer(peer, request.headers, trusted)

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def _next(self) -> str | bytes | None:
        """The next data frame, or None when the peer closed normally."""
        message = await self.ws.receive()
        if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            if isinstance(self.ws, CappedWebSocketResponse):
                self.ws.stream_uid = _uid_of(message.data, self.ws.stream_uid)
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
