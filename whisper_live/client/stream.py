"""Streaming clients for the WhisperLive protocol: asyncio first, a thread-backed sync wrapper.

``AsyncStreamingClient`` is for programs that already run an event loop;
``StreamingClient`` gives the same thing to plain code by running a private loop in a
thread. Both send bytes or NumPy arrays, call back on partial and completed text, retry
with backoff when the server says ``WAIT``, and finish by sending ``END_OF_AUDIO`` and
reading until the server closes the socket: the close is what says the transcript is
final, so nothing here waits a fixed time.

With ``reconnect``, a stream whose connection drops (the replica behind a load balancer
died) or whose server drains (``DISCONNECT`` with reason ``shutdown``) continues on a new
connection, through the same address, so the balancer picks a live replica. The client
keeps the audio not yet covered by a completed segment and sends it again first, so at
most the utterance in flight is decoded twice and nothing completed is lost or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import random
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets
from websockets.exceptions import ConnectionClosed

from ..core.pcm import to_int16_bytes
from ..faces.whisperlive.wire import DEFAULT_PORT, END_OF_AUDIO
from .transcript import Segment, Transcript

log = logging.getLogger(__name__)

Callback = Callable[..., Any] | None


class ClientError(RuntimeError):
    """The stream could not be run (connection refused or lost, no answer)."""


class ServerError(ClientError):
    """The server answered ``status: ERROR``."""


class ServerBusy(ClientError):
    """The server kept answering ``WAIT`` until the retry policy gave up."""


class ModelNotServed(ServerError):
    """The server does not have the model asked for (it offered its own instead)."""


# Audio kept for a resume is bounded: what is older than this (a long stretch without any
# completed segment, e.g. silence) is dropped from the replay.
MAX_REPLAY_SECONDS = 300.0


class _Replay:
    """The audio sent since the end of the last completed segment, for a resumed stream.

    Positions are bytes of the whole stream (all connections); ``bytes_per_second`` converts
    segment times, ``frame`` keeps cuts on whole samples."""

    def __init__(self, bytes_per_second: int, frame: int):
        self.bytes_per_second = bytes_per_second
        self.frame = frame
        self.chunks: list[bytes] = []
        self.start = 0  # stream position of chunks[0]
        self.end = 0  # bytes sent so far

    def add(self, data: bytes) -> None:
        self.chunks.append(data)
        self.end += len(data)
        self.acknowledge_until(self.end - int(MAX_REPLAY_SECONDS * self.bytes_per_second))

    def acknowledge(self, seconds: float) -> None:
        """Everything before ``seconds`` of stream time is in completed segments."""
        self.acknowledge_until(int(seconds * self.bytes_per_second))

    def acknowledge_until(self, position: int) -> None:
        position -= position % self.frame
        while self.chunks and self.start + len(self.chunks[0]) <= position:
            self.start += len(self.chunks.pop(0))
        if self.chunks and position > self.start:
            self.chunks[0] = self.chunks[0][position - self.start :]
            self.start = position

    @property
    def start_seconds(self) -> float:
        return self.start / self.bytes_per_second


@dataclass
class RetryPolicy:
    """How to retry after ``WAIT`` (server full): exponential backoff with jitter.

    The server's own estimate (minutes until a slot frees at the latest) only caps the
    delay: slots usually free much earlier, when a client finishes.
    """

    initial_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    max_attempts: int | None = 20  # connection attempts answered WAIT before giving up; None: forever
    jitter: float = 0.1

    def delay(self, attempt: int, estimate_seconds: float | None = None) -> float | None:
        """Seconds to sleep before attempt ``attempt + 1``, or None to give up."""
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return None
        delay = min(self.max_delay, self.initial_delay * self.factor**attempt)
        if estimate_seconds is not None:
            delay = min(delay, max(self.initial_delay, estimate_seconds))
        return delay * (1.0 + random.uniform(0.0, self.jitter))


# A resume tries for about 25 s (connection refused, WAIT), then the stream ends as it would
# have without reconnect: a balancer needs a second or two to route around a dead replica.
RESUME_RETRY = RetryPolicy(initial_delay=0.5, factor=2.0, max_delay=8.0, max_attempts=6)


@dataclass
class StreamOptions:
    """The configuration frame's fields (WhisperLive's names); None leaves the server default."""

    language: str | None = None
    task: str = "transcribe"
    model: str | None = None
    use_vad: bool = True
    send_last_n_segments: int = 10
    no_speech_thresh: float = 0.45
    initial_prompt: str | None = None
    hotwords: str | None = None
    vad_parameters: dict[str, Any] | None = None
    word_timestamps: bool = False
    audio_format: str = "int16"
    enable_diarization: bool = False
    max_speakers: int | None = None
    # What the audio sent is, for a caller that cannot resample: the server resamples.
    # None: 16 kHz mono, as WhisperLive's protocol has it.
    sample_rate: int | None = None
    channels: int | None = None
    # Seconds an utterance must last before the server commits any of it (our extension):
    # 0 commits words as soon as two decodes agree, each commit a completed segment of a few
    # words ("word by word": text final ~1.4 s after it is spoken instead of at the pause;
    # ``Transcript.lines`` joins the pieces into lines). None sends nothing: the server's
    # default (8 s: an utterance completes whole at its pause). WhisperLive's servers ignore it.
    commit_after: float | None = 0.0
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def config(self) -> dict[str, Any]:
        cfg = {
            "uid": self.uid,
            "language": self.language,
            "task": self.task,
            "model": self.model,
            "use_vad": self.use_vad,
            "send_last_n_segments": self.send_last_n_segments,
            "no_speech_thresh": self.no_speech_thresh,
            "initial_prompt": self.initial_prompt,
            "hotwords": self.hotwords,
            "vad_parameters": self.vad_parameters,
            "word_timestamps": self.word_timestamps,
            "audio_format": self.audio_format,
            "enable_diarization": self.enable_diarization or None,
            "max_speakers": self.max_speakers if self.enable_diarization else None,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "commit_after": self.commit_after,
        }
        return {k: v for k, v in cfg.items() if v is not None}


def server_url(server: str) -> str:
    """Accept ``host``, ``host:port`` or a full ``ws://``/``wss://`` URL."""
    if "://" in server:
        return server
    return f"ws://{server}" if ":" in server else f"ws://{server}:{DEFAULT_PORT}"


def pcm_bytes(
    audio: bytes | bytearray | memoryview | np.ndarray, audio_format: str = "int16", channels: int = 1
) -> bytes:
    """Audio as the wire wants it. Bytes pass as they are (already in ``audio_format``);
    float arrays are samples in [-1, 1]; int16 arrays are PCM. (n, channels) is interleaved
    when the stream declared that many channels, else downmixed."""
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return bytes(audio)
    samples = np.asarray(audio)
    if samples.dtype == np.int16:
        if samples.ndim == 1 and audio_format == "int16":
            return samples.astype("<i2").tobytes()
        samples = samples.astype(np.float32) / 32768.0
    elif samples.dtype.kind != "f":
        raise ValueError(f"audio arrays must be float (-1..1) or int16, not {samples.dtype}")
    if samples.ndim == 2:
        samples = (
            samples.reshape(-1) if channels > 1 and samples.shape[1] == channels else samples.mean(axis=1)
        )
    elif samples.ndim != 1:
        raise ValueError(f"audio must be 1-D (mono) or (samples, channels), not shape {samples.shape}")
    if audio_format == "float32":
        return np.clip(samples, -1.0, 1.0).astype("<f4").tobytes()
    return to_int16_bytes(samples)


async def _call(callback: Callback, *args: Any) -> None:
    """Callbacks may be plain functions or coroutines; one that raises must not kill the stream."""
    if callback is None:
        return
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("client callback %r failed", callback)


class AsyncStreamingClient:
    """One transcription stream over a WebSocket, for asyncio programs.

    Callbacks (plain or async): ``on_partial(text)`` when the unfinished text changes,
    ``on_completed(segment)`` once per completed segment (word by word, the default: a piece
    of a few words; ``transcript.lines`` joins them), ``on_segments(transcript)`` after
    every update, ``on_language(code, probability)``, ``on_wait(attempt, delay_seconds)``
    before each retry, ``on_warning(message)``, ``on_status(message)`` with every control
    message (``WAIT``, ``WARNING``, ``ERROR``, ``DISCONNECT``) as the server sent it,
    ``on_reconnect(count, resume_seconds, reason)`` when a dropped stream resumes
    (``reconnect``: off here, as the kept audio costs memory; ``TranscriptionClient`` turns it on).

    ``async with AsyncStreamingClient(url) as stream: await stream.send(samples)`` finishes
    the transcript on a clean exit and aborts on an exception.
    """

    def __init__(
        self,
        url: str = "ws://localhost:9090",
        options: StreamOptions | None = None,
        *,
        retry: RetryPolicy | None = None,
        on_partial: Callback = None,
        on_completed: Callback = None,
        on_segments: Callback = None,
        on_language: Callback = None,
        on_wait: Callback = None,
        on_warning: Callback = None,
        on_status: Callback = None,
        open_timeout: float = 30.0,
        ready_timeout: float = 120.0,
        strict_model: bool = False,
        reconnect: bool = False,
        on_reconnect: Callback = None,
    ):
        self.url = server_url(url)
        self.options = options or StreamOptions()
        self.retry = retry or RetryPolicy()
        self.on_partial = on_partial
        self.on_completed = on_completed
        self.on_segments = on_segments
        self.on_language = on_language
        self.on_wait = on_wait
        self.on_warning = on_warning
        self.on_status = on_status
        self.open_timeout = open_timeout
        self.ready_timeout = ready_timeout  # a model load on first use can take a while
        # The server serves its own model when it lacks the one named (as WhisperLive's
        # clients always name one); strict: that ends the stream with ModelNotServed.
        self.strict_model = strict_model
        self.transcript = Transcript()
        self.backend: str | None = None
        self.model: str | None = None  # the model serving the stream, when the server says
        self.waits = 0
        self.close_code: int | None = None
        self._ws: websockets.ClientConnection | None = None
        self._receiver: asyncio.Task | None = None
        self._error: str | None = None
        self._error_type: type[ServerError] = ServerError
        self._ended = False
        self.reconnect = reconnect
        self.on_reconnect = on_reconnect
        self.reconnects = 0  # how many times the stream resumed on a new connection
        self._disconnect_reason: str | None = None
        width = 4 if self.options.audio_format == "float32" else 2
        channels = self.options.channels or 1
        rate = self.options.sample_rate or 16000
        self._replay = _Replay(rate * channels * width, channels * width) if reconnect else None
        self._bytes_per_second = rate * channels * width
        self._sent_bytes = 0  # audio taken by send(), for the transcript's clock (its cap)
        self._offset = 0.0  # stream seconds before this connection's audio (after a resume)
        self._resume_failed: str | None = None  # why the last resume gave up (then no more)

    @property
    def closed(self) -> bool:
        """The server has closed the stream (finished, time limit or error): sending is pointless."""
        return self._receiver is not None and self._receiver.done()

    async def connect(self, retry: RetryPolicy | None = None) -> None:
        """Open the stream; on ``WAIT`` retry with backoff until a slot frees or the policy
        (``retry``, by default the client's) gives up."""
        retry = retry or self.retry
        attempt = 0
        while True:
            wait_minutes = await self._handshake()
            if wait_minutes is None:
                return
            delay = retry.delay(attempt, wait_minutes * 60.0)
            if delay is None:
                raise ServerBusy(f"server full: still WAIT after {attempt + 1} attempts")
            self.waits += 1
            attempt += 1
            log.info("server full (WAIT, up to %.1f min); retrying in %.1f s", wait_minutes, delay)
            await _call(self.on_wait, attempt, delay)
            await asyncio.sleep(delay)

    async def _handshake(self) -> float | None:
        """One attempt. Returns None when the stream is open, else the server's WAIT estimate."""
        try:
            ws = await websockets.connect(
                # a short close_timeout: an abort must not wait on a server that stopped reading
                self.url,
                max_size=2**24,
                open_timeout=self.open_timeout,
                close_timeout=2.0,
            )
        except websockets.InvalidStatus as exc:
            raise ClientError(
                f"cannot connect to {self.url}: it answered HTTP {exc.response.status_code}, not a"
                f" WebSocket (the HTTP port? there the stream is at /ws; port {DEFAULT_PORT} by default)"
            ) from exc
        except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError) as exc:
            reason = (
                exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            )
            raise ClientError(f"cannot connect to {self.url}: {reason}") from exc
        try:
            await ws.send(json.dumps(self.options.config()))
            wait_minutes = await asyncio.wait_for(self._await_ready(ws), self.ready_timeout)
        except ConnectionClosed as exc:
            raise ClientError(f"server closed the connection during the handshake: {exc}") from exc
        except asyncio.TimeoutError as exc:
            await ws.close()
            raise ClientError(f"no SERVER_READY within {self.ready_timeout:g} s") from exc
        except BaseException:
            await ws.close()
            raise
        if wait_minutes is not None:
            await ws.close()
            return wait_minutes
        self._ws = ws
        self._receiver = asyncio.create_task(self._receive(ws))
        return None

    async def _await_ready(self, ws: websockets.ClientConnection) -> float | None:
        """Read until SERVER_READY (None) or WAIT (its estimate in minutes); ERROR raises."""
        while True:
            message = json.loads(await ws.recv())
            status = message.get("status")
            if status:
                await _call(self.on_status, message)
            if message.get("message") == "SERVER_READY":
                self.backend = message.get("backend")
                self.model = message.get("model")  # ours names it; WhisperLive's servers do not
                return None
            if status == "WAIT":
                try:  # ours sends minutes; WhisperLive's docs show a sentence
                    return max(0.0, float(message.get("message") or 0.0))
                except (TypeError, ValueError):
                    return 0.0
            if status == "ERROR":
                raise ServerError(str(message.get("message")))
            if status == "WARNING":
                await self._warning(message)

    async def _warning(self, message: dict[str, Any]) -> None:
        text = str(message.get("message"))
        if self.strict_model and message.get("code") == "model_not_found" and self._error is None:
            # the server lacks the model and serves another (named in "model"): not an answer
            self._error = f"model {self.options.model!r} is not served here: {text}"
            self._error_type = ModelNotServed
            return
        log.warning("server: %s", text)
        await _call(self.on_warning, text)

    async def _receive(self, ws: websockets.ClientConnection) -> None:
        try:
            async for raw in ws:
                if isinstance(raw, bytes):
                    continue
                await self._handle(json.loads(raw))
                if self.transcript.disconnected or self._error is not None:
                    # The server's last word: everything it had is delivered. Drop the socket
                    # rather than close it politely, because a server that stopped reading
                    # our audio never sees a close frame queued behind it, and a send
                    # blocked on that full socket is released at once.
                    ws.transport.abort()
                    break
        except ConnectionClosed:
            pass  # abnormal close: finish() reports it from close_code
        finally:
            self.close_code = ws.close_code
            self.transcript.final = self._ended and ws.close_code == 1000 and self._error is None

    async def _handle(self, message: dict[str, Any]) -> None:
        status = message.get("status")
        if status or message.get("message") == "DISCONNECT":
            await _call(self.on_status, message)
        if status == "ERROR":
            self._error = str(message.get("message"))
            log.error("server: %s", self._error)
        elif status == "WARNING":
            await self._warning(message)
        elif message.get("message") == "DISCONNECT":
            self.transcript.disconnected = True
            self._disconnect_reason = message.get("reason")
            if self._replay is None or self._disconnect_reason != "shutdown":  # else: resumed
                log.warning("server ended the stream (DISCONNECT: time limit or shutdown)")
        if message.get("language"):
            self.transcript.language = message["language"]
            self.transcript.language_probability = message.get("language_prob")
            await _call(self.on_language, message["language"], message.get("language_prob"))
        if "segments" in message:
            before = self.transcript.partial
            for seg in self.transcript.update(message["segments"], self._offset):
                if self._replay is not None:
                    self._replay.acknowledge(seg.end)
                await _call(self.on_completed, seg)
            partial = self.transcript.partial
            if partial != before:
                await _call(self.on_partial, partial.text.strip() if partial else "")
            await _call(self.on_segments, self.transcript)

    async def send(self, audio: bytes | np.ndarray) -> bool:
        """Send audio (see ``pcm_bytes``). Waits while the socket's buffer is full, which is the
        backpressure that keeps a fast sender in step with the network and the server.
        Returns False once the server has ended the stream (the audio is then dropped)."""
        if self._ws is None:
            raise ClientError("not connected: call connect() first")
        if self._ended:
            raise ClientError("the audio has already been ended")
        data = pcm_bytes(audio, self.options.audio_format, self.options.channels or 1)
        if not data:
            return not self.closed or self._resumable()
        # The stream can be no further than the audio sent (see StreamClock): what was sent,
        # in the whole stream's time (a resume re-sends audio, but not through here).
        self._sent_bytes += len(data)
        self.transcript.clock.cap = self._sent_bytes / self._bytes_per_second
        if self._replay is not None:
            self._replay.add(data)
        if self.closed:
            # resuming sends this audio too, with the rest not yet acknowledged
            return self._resumable() and await self._resume()
        try:
            await self._ws.send(data)
        except ConnectionClosed:
            return self._resumable() and await self._resume()
        return True

    def _resumable(self) -> bool:
        """The connection ended in a way a new one can mend: it dropped without a word from
        the server, or the server drained; not a time limit, an error or a normal end."""
        if self._replay is None or not self.closed or self._error is not None or self._resume_failed:
            return False
        if self.transcript.disconnected:
            return self._disconnect_reason == "shutdown"
        return self.close_code != 1000

    @property
    def disconnect_reason(self) -> str | None:
        """Why the server sent DISCONNECT ("time limit", "shutdown"; None: it did not say)."""
        return self._disconnect_reason

    async def _resume(self) -> bool:
        """Open a new connection (through the same address: a balancer picks a live replica)
        and send again the audio not yet in completed segments; END_OF_AUDIO again if the
        stream had ended. Refused connections and WAIT are retried (``RESUME_RETRY``); if
        that fails the stream ends as without reconnect (False): a drained one with its
        DISCONNECT, a dropped one with the lost connection (``finish`` raises)."""
        replay = self._replay
        reason = (
            "server shutting down"
            if self.transcript.disconnected
            else f"connection lost (code {self.close_code})"
        )
        self.reconnects += 1
        log.log(  # a caller with on_reconnect says it in its own words
            logging.INFO if self.on_reconnect else logging.WARNING,
            "%s: resuming the stream from %.1f s on a new connection",
            reason,
            replay.start_seconds,
        )
        await _call(self.on_reconnect, self.reconnects, replay.start_seconds, reason)
        drained = self.transcript.disconnected, self._disconnect_reason
        self.transcript.disconnected, self._disconnect_reason = False, None
        self.transcript.partial = None
        attempt = 0
        while True:
            try:
                await self.connect(RESUME_RETRY)
                break
            except ServerError:
                raise  # the server refused this stream for a reason a retry will not change
            except ClientError as exc:
                delay = None if isinstance(exc, ServerBusy) else RESUME_RETRY.delay(attempt)
                if delay is None:
                    self._resume_failed = f"{reason}; could not resume the stream: {exc}"
                    log.warning("%s", self._resume_failed)
                    self.transcript.disconnected, self._disconnect_reason = drained
                    return False
                attempt += 1
                log.info("resume failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
        self._offset = replay.start_seconds
        try:
            for chunk in list(replay.chunks):
                await self._ws.send(chunk)
            if self._ended:
                await self._ws.send(END_OF_AUDIO.encode())
        except ConnectionClosed:
            pass  # the new connection dropped too: the caller's next send or finish resumes again
        return True

    async def finish(self, timeout: float | None = 600.0) -> Transcript:
        """Send ``END_OF_AUDIO`` and read until the server closes: then the transcript is final."""
        if self._ws is None or self._receiver is None:
            raise ClientError("not connected: call connect() first")
        if not self._ended:
            self._ended = True
            if not self.closed:
                with contextlib.suppress(ConnectionClosed):
                    await self._ws.send(END_OF_AUDIO.encode())
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            try:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                await asyncio.wait_for(asyncio.shield(self._receiver), remaining)
            except asyncio.TimeoutError as exc:
                await self.close()
                raise ClientError(f"the server did not finish within {timeout:g} s") from exc
            # a resume replays what is not final yet, then END_OF_AUDIO
            if not self._resumable() or not await self._resume():
                break
        if self._error is not None:
            raise self._error_type(self._error)
        if self.close_code not in (1000, None) and not self.transcript.disconnected:
            raise ClientError(self._resume_failed or f"connection lost (close code {self.close_code})")
        return self.transcript

    async def close(self) -> None:
        """Abort: close the socket without waiting for the rest of the transcript."""
        if self._ws is not None:
            await self._ws.close()
        if self._receiver is not None:
            await asyncio.gather(self._receiver, return_exceptions=True)

    async def __aenter__(self) -> AsyncStreamingClient:
        await self.connect()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            await self.finish()
        else:
            await self.close()


class StreamingClient:
    """``AsyncStreamingClient`` for code without an event loop: a private loop runs in a thread.

    Callbacks run on that thread. ``send`` blocks while the socket is backed up.
    """

    def __init__(self, url: str = "ws://localhost:9090", options: StreamOptions | None = None, **kwargs):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="whisper-live-client", daemon=True
        )
        self._thread.start()
        self._stream = self._run(self._make(url, options, kwargs))

    async def _make(self, url, options, kwargs) -> AsyncStreamingClient:
        return AsyncStreamingClient(url, options, **kwargs)

    def _run(self, coro: Awaitable, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def transcript(self) -> Transcript:
        return self._stream.transcript

    @property
    def closed(self) -> bool:
        return self._stream.closed

    @property
    def waits(self) -> int:
        return self._stream.waits

    def connect(self) -> StreamingClient:
        try:
            self._run(self._stream.connect())
        except BaseException:
            self._shutdown()
            raise
        return self

    def send(self, audio: bytes | np.ndarray) -> bool:
        return self._run(self._stream.send(audio))

    def finish(self, timeout: float | None = 600.0) -> Transcript:
        try:
            return self._run(self._stream.finish(timeout))
        finally:
            self._shutdown()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._stream.close(), 30)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def __enter__(self) -> StreamingClient:
        return self.connect()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.close()


__all__ = [
    "AsyncStreamingClient",
    "ClientError",
    "ModelNotServed",
    "RetryPolicy",
    "Segment",
    "ServerBusy",
    "ServerError",
    "StreamOptions",
    "StreamingClient",
]
