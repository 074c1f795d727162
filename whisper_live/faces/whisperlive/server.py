"""The WebSocket transport: the handshake, and moving frames to a StreamRunner.

It knows the protocol's messages (through ``protocol``) and nothing about decoding; who
may open a stream is the engine's ``Admission``, shared with every other streaming face.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ... import errors
from ...core.events import SegmentsChanged
from ...core.session import StreamingSession
from ...engine.admission import Admission, OpenStream
from ...engine.capabilities import check_task
from ...engine.diarization import LiveSpeakers
from ...engine.models import ModelNotFound
from ...engine.pool import ModelPool
from ...engine.streams import StreamRunner
from ...media import PcmResampler
from ...settings import ServerSettings
from . import protocol

log = logging.getLogger(__name__)

CONFIG_TIMEOUT = 30.0


@dataclass
class _Client:
    uid: str
    admitted: OpenStream
    runner: StreamRunner


class StreamingServer:
    def __init__(self, pool: ModelPool, settings: ServerSettings, admission: Admission):
        self.pool = pool
        self.settings = settings
        self.admission = admission
        self.clients: dict[ServerConnection, _Client] = {}

    async def serve(self, host: str, port: int):
        return await serve(self.handler, host, port, max_size=2**24, ping_interval=20, ping_timeout=60)

    async def handler(self, ws: ServerConnection) -> None:
        uid = None
        try:
            try:
                first = await asyncio.wait_for(ws.recv(), CONFIG_TIMEOUT)
                config = protocol.parse_config(first)
            except (TimeoutError, protocol.ProtocolError) as exc:
                message = "no configuration received" if isinstance(exc, TimeoutError) else str(exc)
                await self._refuse(ws, protocol.error(None, message), 1008)
                return
            uid = config.uid
            if not self.admission.admits_another():
                await self._refuse(ws, protocol.wait(uid, self.admission.wait_minutes()), 1013)
                return
            resampler = None
            if config.needs_resampling:  # a client that cannot resample: we do, before the session
                resampler = PcmResampler(config.sample_rate, config.channels, config.session.audio_format)
                config.session.audio_format = "float32"
            try:
                model = await self._model_for(config)
                speakers = (
                    LiveSpeakers(self.pool, config.session.audio_format, config.max_speakers)
                    if config.diarize
                    else None
                )
            except errors.WhisperLiveError as exc:
                await self._refuse(ws, protocol.error(uid, str(exc)), 1008)
                return
            config.session.fit_window = self.settings.fit_window
            session = StreamingSession(config.session)
            runner = StreamRunner(session, self.pool, model)
            admitted = self.admission.open(lambda: session.stream_seconds)
            self.clients[ws] = _Client(uid, admitted, runner)
            try:
                await ws.send(protocol.dumps(protocol.server_ready(uid)))
                for text in config.warnings:
                    await ws.send(protocol.dumps(protocol.warning(uid, text)))
                await self._stream(ws, uid, runner, resampler, speakers)
            finally:
                runner.close()
                self.clients.pop(ws, None)
                self.admission.close(admitted)
        except ConnectionClosed:
            pass
        except Exception:  # one broken connection must never take the server down
            log.exception("stream %s failed", uid)
            with contextlib.suppress(Exception):
                await self._refuse(ws, protocol.error(uid, "internal server error"), 1011)

    async def _model_for(self, config: protocol.ClientConfig):
        requested = config.model
        try:
            model = await self.pool.acquire(requested)
        except ModelNotFound as exc:
            # WhisperLive's clients always name a model ("small" by default): serve them
            # with ours rather than refuse, and say so (after SERVER_READY, which they expect first).
            config.warnings.append(f"{exc}; using {self.pool.default_model}")
            model = await self.pool.acquire(None)
        check_task(model.info, config.session.task, config.session.language)
        return model

    async def _stream(
        self,
        ws: ServerConnection,
        uid: str,
        runner: StreamRunner,
        resampler: PcmResampler | None = None,
        speakers: LiveSpeakers | None = None,
    ) -> None:
        sender = asyncio.create_task(self._send_events(ws, uid, runner, speakers))
        receiver = asyncio.create_task(self._receive(ws, runner, resampler, speakers))
        deadline = asyncio.create_task(asyncio.sleep(self.settings.max_connection_time))
        discard: asyncio.Task | None = None
        try:
            done, _ = await asyncio.wait({receiver, deadline, sender}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done:
                sender.result()  # only ends by raising: the client went away mid-send
                return
            error = receiver.exception() if receiver in done else None
            if isinstance(error, ConnectionClosed):
                return  # client gone: nothing to deliver
            if error is not None and not isinstance(error, protocol.ProtocolError):
                raise error
            if receiver not in done:
                receiver.cancel()
            if receiver not in done or error is not None:
                # A client may still be sending: keep reading (and dropping) its frames, or
                # it blocks on a full socket and never sees our close.
                discard = asyncio.create_task(self._discard(ws))
            await self._finish(runner, sender, speakers)
            if error is not None:
                await self._refuse(ws, protocol.error(uid, str(error)), 1008)
            elif receiver in done:
                await ws.close(1000, "end of audio")
            else:  # time limit: what was said is delivered first, then DISCONNECT
                await ws.send(protocol.dumps(protocol.disconnect(uid)))
                await ws.close(1000, "maximum connection time reached")
        finally:
            for task in (sender, receiver, deadline, discard):
                if task is not None:
                    task.cancel()

    @staticmethod
    async def _discard(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    async def _receive(
        self,
        ws: ServerConnection,
        runner: StreamRunner,
        resampler: PcmResampler | None,
        speakers: LiveSpeakers | None,
    ) -> None:
        async for message in ws:
            if protocol.is_end_of_audio(message):
                if resampler is not None:
                    tail = resampler.flush()
                    if speakers is not None:
                        speakers.feed(tail)
                    runner.feed(tail)
                return
            if isinstance(message, str):
                raise protocol.ProtocolError(
                    "text frames other than END_OF_AUDIO are not understood after the configuration"
                )
            data = resampler.feed(message) if resampler is not None else message
            if speakers is not None:
                speakers.feed(data)
            runner.feed(data)

    @staticmethod
    async def _finish(runner: StreamRunner, sender: asyncio.Task, speakers: LiveSpeakers | None) -> None:
        """Decode what is buffered, then let the sender deliver every event, in order."""
        if speakers is not None:
            speakers.end()
        runner.end()
        await runner.finished()
        runner.events.put_nowait(None)
        await sender

    @staticmethod
    async def _send_events(
        ws: ServerConnection, uid: str, runner: StreamRunner, speakers: LiveSpeakers | None
    ) -> None:
        while (event := await runner.events.get()) is not None:
            if speakers is not None and isinstance(event, SegmentsChanged):
                await speakers.label(event.segments)
            speaker_of = speakers.speaker_of if speakers is not None else None
            await ws.send(protocol.dumps(protocol.event_message(uid, event, speaker_of)))

    @staticmethod
    async def _refuse(ws: ServerConnection, message: dict, code: int) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(protocol.dumps(message))
            await ws.close(code, message.get("status", "closing").lower())
