"""Deepgram's live ``WebSocket /v1/listen`` over the same streaming core as the WhisperLive face.

The audio (raw PCM in any of Deepgram's encodings and rates, or a container such as
MediaRecorder's WebM/Ogg Opus, decoded as it arrives) becomes 16 kHz float32 for a
``StreamingSession`` that a ``StreamRunner`` drives on the shared pool, admitted and counted
by the WhisperLive face: same VAD, endpointing, finals, and the engine's ``Admission``.
Only the wire differs: our partials are interim ``Results``, our completed segments final
ones (``speech_final`` on the last of an utterance), and the session's VAD gives
``SpeechStarted`` and ``UtteranceEnd``.

``Finalize`` ends the current session (its buffered speech becomes final, sent with
``from_finalize``) and opens a new one at the same stream time; ``CloseStream`` finishes
everything, sends it and the closing ``Metadata``, then closes. A connection that sends
neither audio nor text for ``IDLE_TIMEOUT`` seconds gets what it said, then a close
(1011) that says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np
from aiohttp import WSMsgType, web

from ... import errors
from ...core.decodes import Word
from ...core.events import SegmentsChanged
from ...core.options import SessionOptions
from ...core.pcm import SAMPLE_RATE
from ...core.session import StreamingSession
from ...core.vad import VadParameters
from ...engine import live as ends
from ...engine.live import LiveStream as EngineStream
from ...engine.pool import LoadedModel, ModelPool
from ...engine.streams import StreamRunner, new_session
from ...gate.credentials import ANSWERED_SUBPROTOCOLS
from ...media import PcmIntake, StreamDecoder
from ...settings import ServerSettings
from . import protocol
from .protocol import ListenOptions

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 10.0  # Deepgram closes a connection that sent nothing for 10 s (NET-0001)


FACE = "deepgram"  # the metrics' label for this face
# Deepgram's live results: interim results grow with the speech and an ``is_final`` result
# closes a stretch of it, at an endpoint or after several seconds (its "Using Interim Results"
# example: interims from 1.1 s to 8.1 s, then a final), and its clients show the interim
# first. The engine's word-by-word default would make nearly every word an ``is_final`` of
# its own before any interim: a Deepgram stream commits only in utterances past 8 s.
COMMIT_AFTER = 8.0


@dataclass
class LiveContext:
    """What a live stream needs from the server: the shared pool and settings, and its
    admitted ``LiveStream`` (the engine's lifecycle: limits, drain, metrics, log line)."""

    pool: ModelPool
    settings: ServerSettings
    stream: EngineStream


MIN_ENDPOINTING_MS = 100  # shorter pauses cut words apart: Whisper needs whole words
CHANNEL = (0, 1)  # the audio is transcribed as one (downmixed) channel


@dataclass
class _DecoderFailed:
    """An inbox item: the audio decoder failed (raised in its thread)."""

    error: BaseException


class LiveStream:
    """One live connection: audio in, Deepgram messages out."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request_id: str,
        context: LiveContext,
        model: LoadedModel,
        options: ListenOptions,
    ):
        self.ws = ws
        self.request_id = request_id
        self.context = context
        self.model = model
        self.options = options
        self.loop = asyncio.get_running_loop()
        self.outbox: asyncio.Queue[dict | None] = asyncio.Queue()
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.sha256 = hashlib.sha256()
        self.offset = 0.0  # stream seconds in sessions before the current one
        self.runner: StreamRunner = self._new_runner()
        self.forwarder = asyncio.create_task(self._forward(self.runner, self.offset))
        self.finalizing = False  # the session is being ended: new audio waits for the next one
        self.from_finalize = False  # results now answer a Finalize
        self.held: list[np.ndarray] = []  # decoded while a session was being finalized
        self.sent_completed = 0
        self.interim = ""
        self.speech_open = False
        self.last_word_end: float | None = None  # of the last final word, until its UtteranceEnd
        self.speech_opened: list[float] = []  # stream times the VAD heard speech begin, recent first
        self.interim_start: float | None = None  # of the last interim Results sent
        self.gone = False  # the client's socket closed under the writer
        self.told_not_audio = False  # the Warning that raw bytes do not read as audio was sent
        self.decoder: StreamDecoder | None = None
        self.decoder_done = asyncio.Event()
        self.decoder_error: BaseException | None = None  # why the container could not be decoded
        self.pcm: PcmIntake | None = None  # raw PCM: the one intake every live face uses
        if options.encoding is not None:
            self.pcm = PcmIntake(options.encoding, options.sample_rate, options.channels)
        else:
            self.decoder = StreamDecoder(
                lambda block: self.loop.call_soon_threadsafe(self._samples, block),
                lambda error: self.loop.call_soon_threadsafe(self._decoder_ended, error),
            )

    # ---------------------------------------------------------------- sessions
    def _new_runner(self) -> StreamRunner:
        opts = self.options
        vad = VadParameters()
        if opts.endpointing_ms is not None:
            vad.min_silence_duration_ms = max(opts.endpointing_ms, MIN_ENDPOINTING_MS)
        session = new_session(
            SessionOptions(
                language=opts.language,
                initial_prompt=opts.prompt,
                hotwords=opts.hotwords,
                word_timestamps=True,
                commit_after=COMMIT_AFTER,
                audio_format="float32",
                vad=vad,
                fit_window=self.context.settings.fit_window,
            )
        )
        return StreamRunner(session, self.context.pool, self.model)

    @property
    def stream_seconds(self) -> float:
        return self.offset + self.runner.session.stream_seconds

    # ---------------------------------------------------------------- audio in
    def _audio(self, data: bytes) -> None:
        self.sha256.update(data)
        if self.decoder is not None:
            self.decoder.feed(data)
            return
        self._samples(self.pcm.feed(data))
        if self.pcm.not_audio is not None and not self.told_not_audio:
            self.told_not_audio = True  # said once: a silent recording and a broken one differ
            self.send({"type": "Warning", "variant": "DATA-0001", "description": self.pcm.not_audio})

    def _samples(self, samples: np.ndarray) -> None:
        if self.finalizing:
            self.held.append(samples)
            return
        if not len(samples):
            return
        self.runner.feed(np.ascontiguousarray(samples, dtype=np.float32))
        self.context.stream.audio(len(samples) / SAMPLE_RATE)
        self._vad_events()

    def _decoder_ended(self, error: BaseException | None) -> None:
        self.decoder_done.set()
        if error is not None:
            self.decoder_error = error
            self.inbox.put_nowait(_DecoderFailed(error))

    def _vad_events(self) -> None:
        session = self.runner.session
        now = self.stream_seconds
        if session.speech_open and not self.speech_open:
            self.speech_opened = [now, *self.speech_opened[:7]]
            if self.options.vad_events:
                self.send(protocol.speech_started(CHANNEL, now))
        self.speech_open = session.speech_open
        self._utterance_end()

    def _utterance_end(self) -> None:
        """UtteranceEnd as Deepgram defines it: ``utterance_end_ms`` have passed since the
        last final word with no new word. Asked as audio arrives, after each final and
        before each interim, so it is never sent once the next utterance has begun: speech
        that the VAD heard start within the gap cancels it (its words come instead)."""
        gap = self.options.utterance_end_ms
        if gap is None or self.last_word_end is None:
            return
        due = self.last_word_end + gap / 1000
        began = any(self.last_word_end < t < due for t in self.speech_opened)
        shown = self.interim_start is not None and self.interim_start > self.last_word_end
        if began or shown:
            # The next utterance began within the gap, or its words are already on the wire
            # (its interim came before this final): too late to say the last one ended.
            self.last_word_end = None
        elif self.stream_seconds >= due:
            self.send(protocol.utterance_end(CHANNEL, self.last_word_end))
            self.last_word_end = None

    # ---------------------------------------------------------------- results out
    def send(self, message: dict) -> None:
        self.outbox.put_nowait(message)

    async def _forward(self, runner: StreamRunner, offset: float) -> None:
        """Turn one session's events into Results as they happen."""
        while (event := await runner.events.get()) is not None:
            if isinstance(event, SegmentsChanged):
                self._results(runner.session, offset)
                self.context.stream.delivered(runner, event)

    def _results(self, session: StreamingSession, offset: float) -> None:
        opts = self.options
        new = session.completed[self.sent_completed :]
        self.sent_completed = len(session.completed)
        group = []
        for segment in new:
            group.append(segment)
            if segment.ends_utterance or segment is new[-1]:
                words = [w for s in group for w in s.words or []]
                self.send(
                    protocol.results(
                        self.request_id,
                        self.model.info,
                        CHANNEL,
                        group[0].start,
                        group[-1].end,
                        "".join(s.text for s in group),
                        words,
                        offset=offset,
                        is_final=True,
                        speech_final=opts.speech_final and segment.ends_utterance,
                        from_finalize=self.from_finalize,
                        punctuate=opts.punctuate,
                    )
                )
                if words:
                    self.last_word_end = offset + words[-1].end
                group = []
                self.interim = ""
        self._utterance_end()
        partial = session.partial
        if opts.interim_results and partial is not None and partial.text != self.interim:
            self.interim = partial.text
            self.interim_start = offset + partial.start
            self.send(
                protocol.results(
                    self.request_id,
                    self.model.info,
                    CHANNEL,
                    partial.start,
                    partial.end,
                    partial.text,
                    _words(partial.words),
                    offset=offset,
                    is_final=False,
                    speech_final=False,
                    from_finalize=False,
                    punctuate=opts.punctuate,
                )
            )

    async def _write(self) -> None:
        """Send the outbox in order; a client that has gone (it may close right after
        CloseStream) ends the writing quietly: there is nobody left to tell."""
        while (message := await self.outbox.get()) is not None:
            if self.gone:
                continue
            try:
                await self.ws.send_str(protocol.dumps(message))
            except ConnectionError:  # aiohttp: ClientConnectionResetError, "closing transport"
                self.gone = True

    # ---------------------------------------------------------------- control
    async def _flush(self, closing: bool) -> None:
        """Every audio byte received so far through the decoder, the session ended and
        its last results sent; unless closing, a new session continues the stream."""
        if self.decoder is not None:
            if closing:
                self.decoder.close()
                await self.decoder_done.wait()
            else:
                while not self.decoder.idle:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0)  # the decoder's last callbacks run before this
        if self.pcm is not None and closing:
            self._samples(self.pcm.flush())
        self.finalizing, self.from_finalize = True, not closing
        runner = self.runner
        runner.end()
        await runner.finished()
        runner.events.put_nowait(None)
        await self.forwarder
        if closing:
            return
        self.offset += runner.session.stream_seconds
        self.runner = self._new_runner()
        self.sent_completed, self.interim, self.speech_open = 0, "", False
        self.forwarder = asyncio.create_task(self._forward(self.runner, self.offset))
        self.finalizing = self.from_finalize = False
        held, self.held = self.held, []
        for samples in held:
            self._samples(samples)

    async def _read(self) -> None:
        """The only reader of the socket: everything goes to the inbox, in order."""
        async for message in self.ws:
            self.inbox.put_nowait(message)
        self.inbox.put_nowait(None)  # the client closed

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        reader = asyncio.create_task(self._read())
        stream = self.context.stream
        interrupted = asyncio.create_task(stream.interrupted(IDLE_TIMEOUT))
        close_code, reason, how = 1000, "end of stream", ends.END_OF_AUDIO
        try:
            self.send(protocol.opened(self.request_id, self.model.info))
            for warning in self.options.warnings:
                self.send({"type": "Warning", **warning})
            while True:
                getter = asyncio.create_task(self.inbox.get())
                await asyncio.wait({getter, interrupted}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():  # what was said is sent, then the close says why
                    getter.cancel()
                    how = interrupted.result()
                    close_code, reason = _INTERRUPTIONS[how]
                    reason = reason.format(idle=IDLE_TIMEOUT)
                    break
                message = getter.result()
                stream.received()
                if isinstance(message, _DecoderFailed):
                    break  # told below
                if message is None or message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    stream.end(ends.CLIENT_GONE)
                    return  # nobody to deliver to
                if message.type == WSMsgType.BINARY:
                    if not message.data:
                        break  # Deepgram's older clients end a stream with an empty frame
                    self._audio(message.data)
                    continue
                control = _control(message.data)
                if control == "CloseStream":
                    break
                if control == "Finalize":
                    await self._flush(closing=False)
                elif control != "KeepAlive":
                    self.send(protocol.error_message(errors.InvalidRequest(control)))
            await self._flush(closing=True)
            if self.decoder_error is not None:
                # Bytes that are no audio are said to be so, whenever the decoder gave up
                # (even on the last bytes, after CloseStream): never a silent, clean close.
                close_code, how = 1008, "bad audio"
                reason = f"DATA-0000: the audio cannot be decoded: {self.decoder_error}"[:120]
                self.send(protocol.error_message(errors.InvalidAudio(reason)))
            self.send(
                protocol.closing_metadata(
                    self.request_id, self.model.info, self.stream_seconds, 1, self.sha256.hexdigest()
                )
            )
            self.outbox.put_nowait(None)
            await writer
            stream.end(how)
            if not self.gone:
                await self.ws.close(code=close_code, message=reason.encode()[:120])
        finally:
            for task in (writer, reader, interrupted, self.forwarder):
                task.cancel()
            self.runner.close()
            if self.decoder is not None:
                self.decoder.close()


# How a stream the server stops ends on Deepgram's wire: (close code, reason).
_INTERRUPTIONS = {
    ends.SHUTDOWN: (1001, "server shutting down"),
    ends.TIME_LIMIT: (1000, "maximum connection time reached"),
    ends.IDLE: (1011, "NET-0001: no audio or KeepAlive received within {idle:g} s"),
}


def _control(text: str) -> str:
    """The type of a client's text message; anything else is described for an Error."""
    try:
        kind = json.loads(text).get("type")
    except (ValueError, AttributeError):
        return f"not a JSON control message: {text[:80]!r}"
    if kind in ("KeepAlive", "Finalize", "CloseStream"):
        return kind
    return f"unknown message type {kind!r}: send KeepAlive, Finalize or CloseStream"


def _words(words: list[Word] | None) -> list[Word]:
    return list(words or [])


async def serve(
    request: web.Request,
    request_id: str,
    context: LiveContext,
    model: LoadedModel,
    options: ListenOptions,
) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(
        heartbeat=context.stream.streams.keepalive, max_msg_size=2**24, protocols=ANSWERED_SUBPROTOCOLS
    )
    ws.headers["dg-request-id"] = request_id
    await ws.prepare(request)
    try:
        await LiveStream(ws, request_id, context, model, options).run()
    except asyncio.CancelledError:
        raise
    except ConnectionError:  # the client went away mid-write: nothing to log but its going
        context.stream.end(ends.CLIENT_GONE)
    except Exception:  # one broken connection must never take the server down
        context.stream.end(ends.INTERNAL_ERROR)
        log.exception("live stream %s failed", request_id)
        with contextlib.suppress(Exception):
            await ws.close(code=1011, message=b"internal server error")
    return ws
