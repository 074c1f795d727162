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
import weakref
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from aiohttp import hdrs, web
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from ... import errors
from ...core.events import SegmentsChanged
from ...core.pcm import SAMPLE_RATE
from ...engine import live as ends
from ...engine.admission import Admission
from ...engine.capabilities import check_task
from ...engine.diarization import LiveSpeakers
from ...engine.live import LiveStream, LiveStreams
from ...engine.models import ModelNotFound
from ...engine.pool import ModelPool
from ...engine.streams import StreamRunner, new_session
from ...gate.credentials import ANSWERED_SUBPROTOCOLS, answered_subprotocol
from ...gate.gate import Gate
from ...gate.keys import ApiKey
from ...gate.metrics import Metrics
from ...media import PcmIntake
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
    """One connection: what the face keeps beside the engine's ``LiveStream``."""

    peer: str
    key: ApiKey | None
    uid: str | None = None
    stream: LiveStream | None = None  # once admitted
    runner: StreamRunner | None = None
    intake: PcmIntake = field(default_factory=PcmIntake)  # the client's bytes to 16 kHz mono
    speakers: LiveSpeakers | None = None  # with diarization
    send_words: bool = True  # segments' words go out (protocol.ClientConfig.send_words)
    told_not_audio: bool = False  # the WARNING that the bytes do not read as audio was sent


class Refusal(Exception):
    """The handshake is refused before the upgrade: an HTTP status, a message, headers."""

    def __init__(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def select_subprotocol(connection: ServerConnection, offered) -> str | None:
    """A browser that sent its key as the subprotocols ``token, <key>`` (or OpenAI's
    ``realtime, openai-insecure-api-key.<secret>``) must get ``token`` (``realtime``) back,
    or it drops the connection; other clients get no subprotocol."""
    return answered_subprotocol(list(offered))


class StreamingServer:
    def __init__(
        self,
        pool: ModelPool,
        settings: ServerSettings,
        admission: Admission,
        gate: Gate | None = None,
        metrics: Metrics | None = None,
        live: LiveStreams | None = None,
    ):
        self.pool = pool
        self.settings = settings
        self.admission = admission
        self.gate = gate or Gate(origins=settings.allowed_origins)
        self.metrics = metrics or Metrics()
        # Every live stream's lifecycle (admission, slot, metrics, limits, drain, log line),
        # shared with the other live faces.
        self.live = live or LiveStreams(admission, settings, self.gate, self.metrics)
        self.clients: dict[Connection, _Client] = {}  # streams admitted and running
        self._keys: weakref.WeakKeyDictionary[ServerConnection, ApiKey | None] = weakref.WeakKeyDictionary()

    async def serve(self, host: str, port: int, ssl=None):
        return await serve(
            self.handler,
            host,
            port,
            ssl=ssl,
            max_size=self.settings.max_frame_bytes,  # over it: ERROR, then 1009 (CappedServerConnection)
            create_connection=CappedServerConnection,
            # a peer that stops answering pings (half-open: a dead NAT, a closed laptop) is dropped
            ping_interval=self.live.keepalive,
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
        try:
            self.gate.check_origin(origin, headers.get("Host"))
        except errors.OriginNotAllowed as exc:
            self._refused(peer, None, "origin not allowed", origin=origin)
            raise Refusal(HTTPStatus.FORBIDDEN, exc.message + "\n") from None
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
        self.live.refused(
            FACE,
            peer,
            reason,
            uid=client.uid if client else None,
            key=client.key if client else None,
            **fields,
        )

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
            protocols=ANSWERED_SUBPROTOCOLS,
            heartbeat=self.live.keepalive,
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
        line that says how it ended (the engine's ``LiveStreams`` writes it)."""
        client = _Client(ws.peer, key)
        try:
            how = await self._serve_client(ws, client)
        except ConnectionGone:
            how = ends.CLIENT_GONE
        except Exception:  # one broken connection must never take the server down
            log.exception("stream %s failed", client.uid)
            how = ends.INTERNAL_ERROR
            with contextlib.suppress(Exception):
                await self._refuse(ws, protocol.error(client.uid, "internal server error"), 1011)
        if client.stream is None and how != ends.CLIENT_GONE:
            self._refused(client.peer, client, how)

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
        with self.live.pending():
            return await self._admit(ws, client, config)

    async def _admit(self, ws: Connection, client: _Client, config: protocol.ClientConfig) -> str:
        uid = config.uid
        wait = self.live.full()
        if wait is not None:
            await self._refuse(ws, protocol.wait(uid, wait), 1013)
            return "wait (shutting down)" if self.admission.draining else "wait"
        # int16/float32 (sniffed when undeclared), at the client's rate and channels
        client.intake = PcmIntake(config.session.audio_format, config.sample_rate, config.channels)
        try:
            model, substitute = await self._model_for(config)
            client.send_words = config.send_words
            if config.diarize:  # labels the intake's samples, as float32 bytes
                client.speakers = LiveSpeakers(self.pool, "float32", config.max_speakers)
        except errors.WhisperLiveError as exc:
            await self._refuse(ws, protocol.error(uid, str(exc)), 1008)
            return f"error {exc}"
        try:
            stream = client.stream = self.live.open(FACE, client.peer, client.key, uid, model.name)
        except errors.LimitReached as exc:
            await self._refuse(ws, protocol.error(uid, exc.message), 1008)
            return "limit reached"
        config.session.fit_window = self.settings.fit_window
        client.runner = runner = StreamRunner(new_session(config.session), self.pool, model)
        self.clients[ws] = client
        try:
            await ws.send(protocol.dumps(protocol.server_ready(uid, model.name)))
            if substitute is not None:
                await ws.send(protocol.dumps(substitute))
            for text in config.warnings:
                await ws.send(protocol.dumps(protocol.warning(uid, text)))
            how = await self._stream(ws, client)
            stream.end(how)
            return how
        except ConnectionGone:
            stream.end(ends.CLIENT_GONE)
            raise
        except Exception:
            stream.end(ends.INTERNAL_ERROR)
            raise
        finally:
            runner.close()
            self.clients.pop(ws, None)
            stream.close()

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
        interrupted = asyncio.create_task(client.stream.interrupted())  # time limit, shutdown
        discard: asyncio.Task | None = None
        try:
            done, _ = await asyncio.wait({receiver, sender, interrupted}, return_when=asyncio.FIRST_COMPLETED)
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
            if receiver in done and error is None:
                # END_OF_AUDIO: the client ended the stream, and may close its socket at once
                # (WhisperLive's own client does): what cannot be delivered then is no error.
                with contextlib.suppress(ConnectionGone):
                    await self._finish(client, sender)
                    await ws.close(1000, "end of audio")
                return ends.END_OF_AUDIO
            await self._finish(client, sender)
            if error is not None:
                await self._refuse(ws, protocol.error(uid, str(error)), 1008)
                return "protocol error"
            # Time limit or shutdown: what was said is delivered first, then DISCONNECT.
            reason = interrupted.result()
            await ws.send(protocol.dumps(protocol.disconnect(uid, reason)))
            if reason == ends.TIME_LIMIT:
                await ws.close(1000, "maximum connection time reached")
            else:
                await ws.close(1001, "server shutting down")
            return reason
        finally:
            for task in (sender, receiver, interrupted, discard):
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
                return  # what the intake holds is flushed by _finish, whatever ended the stream
            if isinstance(message, str):
                raise protocol.ProtocolError(
                    "text frames other than END_OF_AUDIO are not understood after the configuration"
                )
            self._feed(client, client.intake.feed(message))
            if client.intake.not_audio is not None and not client.told_not_audio:
                client.told_not_audio = True  # said once: a silent recording and a broken one differ
                await ws.send(
                    protocol.dumps(protocol.warning(client.uid, client.intake.not_audio, code="not_audio"))
                )

    @staticmethod
    def _feed(client: _Client, samples: np.ndarray) -> None:
        if not len(samples):
            return
        if client.speakers is not None:
            client.speakers.feed(samples.astype("<f4").tobytes())
        client.runner.feed(samples)
        client.stream.audio(len(samples) / SAMPLE_RATE)

    @staticmethod
    async def _finish(client: _Client, sender: asyncio.Task) -> None:
        """Decode what is buffered, then let the sender deliver every event, in order."""
        runner = client.runner
        last = client.intake.flush()
        if client.speakers is not None:
            if len(last):
                client.speakers.feed(last.astype("<f4").tobytes())
            client.speakers.end()
        runner.end(last)
        client.stream.audio(len(last) / SAMPLE_RATE)
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
            message = protocol.event_message(client.uid, update, speaker_of, client.send_words)
            await ws.send(protocol.dumps(message))
            if isinstance(update, SegmentsChanged):
                client.stream.delivered(runner, update, speaker_of)

    @staticmethod
    async def _refuse(ws: Connection, message: dict, code: int) -> None:
        with contextlib.suppress(ConnectionGone):
            await ws.send(protocol.dumps(message))
            await ws.close(code, message.get("status", "closing").lower())
