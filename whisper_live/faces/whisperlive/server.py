"""The WebSocket face: the handshake, and moving frames to a StreamRunner.

It knows the protocol's messages (through ``protocol``) and nothing about decoding; who
may open a stream is the engine's ``Admission``, shared with every other streaming face,
and the server's ``Gate`` (API keys, per-key limits), asked before the upgrade, so a
client without a valid key gets HTTP 401 and never a socket.

Two transports carry it: its own port (``serve``, the ``websockets`` library) and the HTTP
port's ``/ws`` (``http_handler``, aiohttp), so one port can carry everything behind a
proxy. Both check the handshake with ``check_handshake`` and run the connection through
``run`` over a ``Connection``: keys, origins, limits, metrics, logs and the drain are the
same code on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

from aiohttp import hdrs, web
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from ... import errors
from ...core.events import SegmentsChanged
from ...core.session import StreamingSession
from ...engine.admission import Admission, OpenStream
from ...engine.capabilities import check_task
from ...engine.diarization import LiveSpeakers
from ...engine.models import ModelNotFound
from ...engine.pool import ModelPool
from ...engine.streams import StreamRunner
from ...gate.credentials import SUBPROTOCOL
from ...gate.gate import Gate
from ...gate.keys import ApiKey
from ...gate.metrics import Metrics
from ...gate.origins import origin_allowed
from ...logs import event
from ...media import PcmResampler
from ...settings import ServerSettings
from . import protocol
from .connection import (
    AiohttpConnection,
    CappedServerConnection,
    CappedWebSocketResponse,
    Connection,
    ConnectionGone,
    WebsocketsConnection,
)

log = logging.getLogger(__name__)

CONFIG_TIMEOUT = 30.0
FACE = "whisperlive"  # the metrics' label for this face


@dataclass(eq=False)
class _Client:
    """One connection, from its handshake to the log line that says how it ended."""

    peer: str
    key: ApiKey | None
    uid: str | None = None
    model: str | None = None
    runner: StreamRunner | None = None
    admitted: OpenStream | None = None
    resampler: PcmResampler | None = None  # for clients that send other rates or stereo
    speakers: LiveSpeakers | None = None  # with diarization
    finals: int = 0
    started: float = field(default_factory=time.monotonic)


class Refusal(Exception):
    """The handshake is refused before the upgrade: an HTTP status, a message, headers."""

    def __init__(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def select_subprotocol(connection: ServerConnection, offered) -> str | None:
    """A browser that sent its key as the subprotocols ``token, <key>`` must get ``token``
    back, or it drops the connection; other clients get no subprotocol."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


class StreamingServer:
    def __init__(
        self,
        pool: ModelPool,
        settings: ServerSettings,
        admission: Admission,
        gate: Gate | None = None,
        metrics: Metrics | None = None,
        own_ports: set[int] | None = None,
    ):
        self.pool = pool
        self.settings = settings
        self.admission = admission
        self.gate = gate or Gate()
        self.metrics = metrics or Metrics()
        self.own_ports = own_ports if own_ports is not None else set()  # filled once bound
        self.clients: dict[Connection, _Client] = {}  # streams admitted and running
        self._keys: weakref.WeakKeyDictionary[ServerConnection, ApiKey | None] = weakref.WeakKeyDictionary()
        self._configured = 0  # connections past their configuration (a drain waits for these)
        self._draining = asyncio.Event()
        self._audio_seconds = self.metrics.audio_seconds.labels(FACE)
        self._latency = self.metrics.final_latency.labels(FACE)

    async def serve(self, host: str, port: int, ssl=None):
        return await serve(
            self.handler,
            host,
            port,
            ssl=ssl,
            max_size=self.settings.max_frame_bytes,  # over it: ERROR, then 1009 (CappedServerConnection)
            create_connection=CappedServerConnection,
            # a peer that stops answering pings (half-open: a dead NAT, a closed laptop) is dropped
            ping_interval=self.settings.ping_interval,
            ping_timeout=self.settings.ping_timeout,
            process_request=self.check_request,
            select_subprotocol=select_subprotocol,
        )

    # ------------------------------------------------------------------ the handshake
    def check_handshake(self, headers, query: dict[str, str], peer: str) -> ApiKey | None:
        """Before the upgrade, on either transport: browsers from other sites get 403, a
        missing, wrong or revoked key 401 (in the header, ``?token=`` or the subprotocols
        ``token, <key>``). Returns the caller's key; raises ``Refusal``."""
        origin = headers.get("Origin")
        if not origin_allowed(origin, headers.get("Host"), self.settings.allowed_origins(), self.own_ports):
            self._refused(peer, None, "origin not allowed", origin=origin)
            raise Refusal(
                HTTPStatus.FORBIDDEN, f"pages from {origin} may not use this server (see --cors-origins)\n"
            )
        try:
            return self.gate.admit(headers, query)
        except errors.Unauthorized as exc:
            self._refused(peer, None, "unauthorized")
            raise Refusal(
                HTTPStatus.UNAUTHORIZED,
                exc.message + "\n",
                {"WWW-Authenticate": 'Bearer realm="whisper-live"'},
            ) from None

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """The ``websockets`` transport's hook before the upgrade (see ``check_handshake``)."""
        peer = WebsocketsConnection.peer_of(connection, request.headers, self.settings.trusted_networks())
        try:
            key = self.check_handshake(request.headers, dict(parse_qsl(urlsplit(request.path).query)), peer)
        except Refusal as refusal:
            response = connection.respond(refusal.status, refusal.message)
            response.headers.update(refusal.headers)
            return response
        self._keys[connection] = key
        return None

    def _refused(self, peer: str, client: _Client | None, reason: str, **fields) -> None:
        self.metrics.streams_refused.labels(FACE, reason.split()[0]).inc()
        event(
            log,
            "stream refused",
            uid=client.uid if client else None,
            peer=peer,
            key=client.key.label if client and client.key else None,
            reason=reason,
            **fields,
        )

    # ------------------------------------------------------------------ shutdown
    def finish_all(self) -> None:
        """Shutdown: every stream stops taking audio, gets its finals, then DISCONNECT."""
        self._draining.set()

    async def finished(self) -> None:
        """Every configured connection is done (one still silent gets WAIT whenever it speaks)."""
        while self._configured:
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ the transports
    async def handler(self, connection: ServerConnection) -> None:
        """The ``websockets`` transport (the face's own port), after ``check_request``."""
        connection_view = WebsocketsConnection(connection, self.settings.trusted_networks())
        await self.run(connection_view, self._keys.pop(connection, None))

    async def http_handler(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp transport (``/ws`` on the HTTP port): the same checks, then the same run.

        A browser that offered its key as the subprotocols ``token, <key>`` gets ``token``
        back (``protocols``), as on the face's own port."""
        peer = AiohttpConnection.peer_of(request, self.settings.trusted_networks())
        try:
            key = self.check_handshake(request.headers, dict(request.query), peer)
        except Refusal as refusal:
            return web.Response(status=refusal.status, text=refusal.message, headers=refusal.headers)
        ws = CappedWebSocketResponse(
            protocols=(SUBPROTOCOL,),
            heartbeat=self.settings.ping_interval,
            max_msg_size=self.settings.max_frame_bytes,  # over it: ERROR, then 1009
        )
        if not ws.can_prepare(request).ok:
            return web.Response(
                status=HTTPStatus.UPGRADE_REQUIRED,
                text="this is the WhisperLive WebSocket: connect with a WebSocket client\n",
                headers={hdrs.UPGRADE: "websocket"},
            )
        await ws.prepare(request)
        await self.run(AiohttpConnection(ws, peer), key)
        return ws

    # ------------------------------------------------------------------ a connection
    async def run(self, ws: Connection, key: ApiKey | None) -> None:
        """One connection, whichever transport carries it, from its configuration to the log
        line that says how it ended."""
        client = _Client(ws.peer, key)
        try:
            how = await self._serve_client(ws, client)
        except ConnectionGone:
            how = "client gone"
        except Exception:  # one broken connection must never take the server down
            log.exception("stream %s failed", client.uid)
            how = "internal error"
            with contextlib.suppress(Exception):
                await self._refuse(ws, protocol.error(client.uid, "internal server error"), 1011)
        if client.admitted is None:
            if how != "client gone":
                self._refused(client.peer, client, how)
            return
        self.metrics.streams_ended.labels(FACE, how).inc()
        event(
            log,
            "stream ended",
            uid=client.uid,
            peer=client.peer,
            key=client.key.label if client.key else None,
            model=client.model,
            audio_seconds=round(client.runner.session.stream_seconds, 2),
            finals=client.finals,
            seconds=round(time.monotonic() - client.started, 2),
            how=how,
        )

    async def _serve_client(self, ws: Connection, client: _Client) -> str:
        """Run one connection; returns how it ended (or why it was refused)."""
        try:
            first = await asyncio.wait_for(ws.recv(), CONFIG_TIMEOUT)
            config = protocol.parse_config(first)
        except (TimeoutError, protocol.ProtocolError) as exc:
            message = "no configuration received" if isinstance(exc, TimeoutError) else str(exc)
            await self._refuse(ws, protocol.error(None, message), 1008)
            return f"error {message}"
        client.uid = config.uid
        self._configured += 1
        try:
            return await self._admit(ws, client, config)
        finally:
            self._configured -= 1

    async def _admit(self, ws: Connection, client: _Client, config: protocol.ClientConfig) -> str:
        uid = config.uid
        if not self.admission.admits_another():
            await self._refuse(ws, protocol.wait(uid, self.admission.wait_minutes()), 1013)
            return "wait (shutting down)" if self.admission.draining else "wait"
        try:
            with self.gate.slot(client.key, "streams"):
                if config.needs_resampling:  # a client that cannot resample: we do, before the session
                    client.resampler = PcmResampler(
                        config.sample_rate, config.channels, config.session.audio_format
                    )
                    config.session.audio_format = "float32"
                try:
                    model, substitute = await self._model_for(config)
                    if config.diarize:
                        client.speakers = LiveSpeakers(
                            self.pool, config.session.audio_format, config.max_speakers
                        )
                except errors.WhisperLiveError as exc:
                    await self._refuse(ws, protocol.error(uid, str(exc)), 1008)
                    return f"error {exc}"
                client.model = model.name
                config.session.fit_window = self.settings.fit_window
                session = StreamingSession(config.session)
                client.runner = runner = StreamRunner(session, self.pool, model)
                client.admitted = self.admission.open(lambda: session.stream_seconds)
                self.metrics.streams_admitted.labels(FACE).inc()
                self.clients[ws] = client
                try:
                    await ws.send(protocol.dumps(protocol.server_ready(uid, model.name)))
                    if substitute is not None:
                        await ws.send(protocol.dumps(substitute))
                    for text in config.warnings:
                        await ws.send(protocol.dumps(protocol.warning(uid, text)))
                    return await self._stream(ws, client)
                finally:
                    runner.close()
                    self.clients.pop(ws, None)
                    self.admission.close(client.admitted)
        except errors.LimitReached as exc:
            await self._refuse(ws, protocol.error(uid, exc.message), 1008)
            return "limit reached"

    async def _model_for(self, config: protocol.ClientConfig):
        """The model for this stream, and the WARNING to send when it is not the one asked for."""
        substitute = None
        try:
            model = await self.pool.acquire(config.model)
        except ModelNotFound as exc:
            # WhisperLive's clients always name a model ("small" by default): serve them
            # with ours rather than refuse, and say so (after SERVER_READY, which they expect
            # first) in a way a program can act on: code model_not_found, the model served.
            model = await self.pool.acquire(None)
            substitute = protocol.warning(
                config.uid,
                f"{exc}; using {model.name}",
                code=exc.code,
                requested=config.model,
                model=model.name,
            )
        check_task(model.info, config.session.task, config.session.language)
        return model, substitute

    async def _stream(self, ws: Connection, client: _Client) -> str:
        uid = client.uid
        sender = asyncio.create_task(self._send_events(ws, client))
        receiver = asyncio.create_task(self._receive(ws, client))
        deadline = asyncio.create_task(asyncio.sleep(self.settings.max_connection_time))
        draining = asyncio.create_task(self._draining.wait())
        discard: asyncio.Task | None = None
        try:
            done, _ = await asyncio.wait(
                {receiver, deadline, sender, draining}, return_when=asyncio.FIRST_COMPLETED
            )
            if sender in done:
                sender.result()  # only ends by raising: the client went away mid-send
                return "client gone"
            error = receiver.exception() if receiver in done else None
            if isinstance(error, ConnectionGone):
                return "client gone"  # nothing to deliver
            if error is not None and not isinstance(error, protocol.ProtocolError):
                raise error
            if receiver not in done:
                receiver.cancel()
            if receiver not in done or error is not None:
                # A client may still be sending: keep reading (and dropping) its frames, or
                # it blocks on a full socket and never sees our close.
                discard = asyncio.create_task(self._discard(ws))
            await self._finish(client, sender)
            if error is not None:
                await self._refuse(ws, protocol.error(uid, str(error)), 1008)
                return "protocol error"
            if receiver in done:
                await ws.close(1000, "end of audio")
                return "end of audio"
            # Time limit or shutdown: what was said is delivered first, then DISCONNECT.
            reason = "time limit" if deadline in done else "shutdown"
            await ws.send(protocol.dumps(protocol.disconnect(uid, reason)))
            if deadline in done:
                await ws.close(1000, "maximum connection time reached")
                return "time limit"
            await ws.close(1001, "server shutting down")
            return "shutdown"
        finally:
            for task in (sender, receiver, deadline, draining, discard):
                if task is not None:
                    task.cancel()

    @staticmethod
    async def _discard(ws: Connection) -> None:
        with contextlib.suppress(ConnectionGone):
            async for _ in ws:
                pass

    async def _receive(self, ws: Connection, client: _Client) -> None:
        async for message in ws:
            if protocol.is_end_of_audio(message):
                if client.resampler is not None:
                    self._feed(client, client.resampler.flush())
                return
            if isinstance(message, str):
                raise protocol.ProtocolError(
                    "text frames other than END_OF_AUDIO are not understood after the configuration"
                )
            self._feed(client, client.resampler.feed(message) if client.resampler is not None else message)

    def _feed(self, client: _Client, data: bytes) -> None:
        runner = client.runner
        if client.speakers is not None:
            client.speakers.feed(data)
        before = runner.session.stream_seconds
        runner.feed(data)
        self._audio_seconds.inc(runner.session.stream_seconds - before)

    @staticmethod
    async def _finish(client: _Client, sender: asyncio.Task) -> None:
        """Decode what is buffered, then let the sender deliver every event, in order."""
        runner = client.runner
        if client.speakers is not None:
            client.speakers.end()
        runner.end()
        await runner.finished()
        runner.events.put_nowait(None)
        await sender

    async def _send_events(self, ws: Connection, client: _Client) -> None:
        runner = client.runner
        speakers = client.speakers
        speaker_of = speakers.speaker_of if speakers is not None else None
        while (update := await runner.events.get()) is not None:
            if speakers is not None and isinstance(update, SegmentsChanged):
                await speakers.label(update.segments)
                # a completed segment two speakers share goes out as one segment per turn
                update = replace(update, segments=speakers.split(update.segments))
            await ws.send(protocol.dumps(protocol.event_message(client.uid, update, speaker_of)))
            if isinstance(update, SegmentsChanged) and update.speech_ended:
                sent = time.monotonic()
                client.finals += len(update.speech_ended)
                for point in update.speech_ended:
                    arrived = runner.arrived_at(point)
                    if arrived is not None:
                        self._latency.observe(sent - arrived)

    @staticmethod
    async def _refuse(ws: Connection, message: dict, code: int) -> None:
        with contextlib.suppress(ConnectionGone):
            await ws.send(protocol.dumps(message))
            await ws.close(code, message.get("status", "closing").lower())
