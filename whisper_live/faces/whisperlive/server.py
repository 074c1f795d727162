"""The WebSocket transport: admission, the handshake, and moving frames to a StreamRunner.

It knows the protocol's messages (through ``protocol``) and nothing about decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ... import errors
from ...core.session import StreamingSession
from ...engine.capabilities import check_task
from ...engine.models import ModelNotFound
from ...engine.pool import ModelPool, Priority
from ...engine.streams import StreamRunner
from ...settings import ServerSettings
from . import protocol

log = logging.getLogger(__name__)

CONFIG_TIMEOUT = 30.0
# Share of the CPU (and of the decode workers) that work a stream cannot shed may be
# expected to use before new streams wait; the rest absorbs bursts (several utterances
# ending together) and partials.
TARGET_UTILIZATION = 0.7
# Stream-seconds observed before the capacity estimate is trusted over max_clients alone.
MIN_OBSERVED_SECONDS = 120.0


@dataclass
class _Client:
    uid: str
    started: float
    runner: StreamRunner


class StreamingServer:
    def __init__(
        self,
        pool: ModelPool,
        settings: ServerSettings,
        cpu_seconds: Callable[[], float] = time.process_time,
        cores: int | None = None,
    ):
        self.pool = pool
        self.settings = settings
        self.clients: dict[object, _Client] = {}  # by connection, of every face
        self._closed_stream_seconds = 0.0
        self._cpu_seconds = cpu_seconds  # this process, every thread
        self._cpu_start = cpu_seconds()
        self.cores = cores or len(os.sched_getaffinity(0))

    def stream_seconds(self) -> float:
        """Audio seconds received by every stream so far, finished ones included."""
        return self._closed_stream_seconds + sum(
            c.runner.session.stream_seconds for c in self.clients.values()
        )

    def capacity(self) -> int | None:
        """How many streams this server can keep up with, from what streams have cost so far.

        A stream costs work that cannot be shed: its VAD, its socket and its finals.
        Partials (skipped when busy) and REST decodes (which wait) are elastic and do not
        count. Two bounds: the process's CPU time less the time of elastic decodes, per
        second of audio received, against the cores; and the time of final decodes against
        the decode workers (the bound that matters when decodes run on a GPU). None until
        enough audio has been seen to estimate.
        """
        seen = self.stream_seconds()
        busy = self.pool.scheduler.busy_by_priority
        if seen < MIN_OBSERVED_SECONDS or busy[Priority.FINAL] <= 0:
            return None
        elastic = busy[Priority.PARTIAL] + busy[Priority.UPLOAD]
        cpu = max(self._cpu_seconds() - self._cpu_start - elastic, busy[Priority.FINAL])
        by_cpu = self.cores * TARGET_UTILIZATION / (cpu / seen)
        by_workers = self.pool.workers * TARGET_UTILIZATION / (busy[Priority.FINAL] / seen)
        return max(1, int(min(by_cpu, by_workers) + 1e-9))

    def admits_another(self) -> bool:
        limit = self.settings.max_clients
        capacity = self.capacity() if self.settings.capacity_admission else None
        if capacity is not None:
            limit = min(limit, capacity)
        return len(self.clients) < limit

    def add_stream(self, key: object, uid: str, runner: StreamRunner) -> None:
        """Count a stream of any face against admission (max_clients, capacity, waits).

        Adding the same key again swaps in a new runner for the same connection (a
        Deepgram Finalize starts a fresh session) and keeps its start time.
        """
        previous = self.clients.get(key)
        if previous is not None:
            self._closed_stream_seconds += previous.runner.session.stream_seconds
        started = previous.started if previous is not None else time.monotonic()
        self.clients[key] = _Client(uid, started, runner)

    def remove_stream(self, key: object) -> None:
        client = self.clients.pop(key, None)
        if client is not None:
            self._closed_stream_seconds += client.runner.session.stream_seconds

    def wait_minutes(self) -> float:
        """When the next slot frees at the latest: the oldest stream hits its time limit."""
        now = time.monotonic()
        remaining = [self.settings.max_connection_time - (now - c.started) for c in self.clients.values()]
        return max(0.0, min(remaining, default=0.0)) / 60.0

    async def serve(self, host: str, port: int):
        self._cpu_start = self._cpu_seconds()  # model loading is not a stream's cost
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
            if not self.admits_another():
                await self._refuse(ws, protocol.wait(uid, self.wait_minutes()), 1013)
                return
            try:
                model = await self._model_for(config)
            except errors.WhisperLiveError as exc:
                await self._refuse(ws, protocol.error(uid, str(exc)), 1008)
                return
            config.session.fit_window = self.settings.fit_window
            session = StreamingSession(config.session)
            runner = StreamRunner(session, self.pool, model)
            self.add_stream(ws, uid, runner)
            try:
                await ws.send(protocol.dumps(protocol.server_ready(uid)))
                for text in config.warnings:
                    await ws.send(protocol.dumps(protocol.warning(uid, text)))
                await self._stream(ws, uid, runner)
            finally:
                runner.close()
                self.remove_stream(ws)
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

    async def _stream(self, ws: ServerConnection, uid: str, runner: StreamRunner) -> None:
        sender = asyncio.create_task(self._send_events(ws, uid, runner))
        receiver = asyncio.create_task(self._receive(ws, runner))
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
            await self._finish(runner, sender)
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

    async def _receive(self, ws: ServerConnection, runner: StreamRunner) -> None:
        async for message in ws:
            if protocol.is_end_of_audio(message):
                return
            if isinstance(message, str):
                raise protocol.ProtocolError(
                    "text frames other than END_OF_AUDIO are not understood after the configuration"
                )
            runner.feed(message)

    @staticmethod
    async def _finish(runner: StreamRunner, sender: asyncio.Task) -> None:
        """Decode what is buffered, then let the sender deliver every event, in order."""
        runner.end()
        await runner.finished()
        runner.events.put_nowait(None)
        await sender

    @staticmethod
    async def _send_events(ws: ServerConnection, uid: str, runner: StreamRunner) -> None:
        while (event := await runner.events.get()) is not None:
            await ws.send(protocol.dumps(protocol.event_message(uid, event)))

    @staticmethod
    async def _refuse(ws: ServerConnection, message: dict, code: int) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(protocol.dumps(message))
            await ws.close(code, message.get("status", "closing").lower())
