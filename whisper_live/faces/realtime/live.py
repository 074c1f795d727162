"""One Realtime transcription connection: OpenAI's events in, ours out, over the engine's
streaming core and live-stream lifecycle, as the Deepgram live face does.

Audio (``input_audio_buffer.append``, base64 PCM at 24 or 16 kHz, or G.711) goes through the
one ``PcmIntake`` into a ``StreamingSession`` driven by a ``StreamRunner``. What OpenAI calls
an *item* is one of our utterances:

- ``server_vad``: the session's VAD opens an utterance (``speech_started`` with a new item
  id) and its endpoint closes it (``speech_stopped``, ``committed``); the utterance's final
  is the item's ``completed`` transcript. Finals are matched to items by stream time (where
  each utterance began), so a final that yields no text still completes its item.
- manual (``turn_detection: null``): the VAD never ends an item by itself; ``commit`` ends
  the session (its buffered speech becomes a forced final, which never invents text) and a
  new one continues the stream, as Deepgram's ``Finalize`` does.
- ``clear`` drops the audio not yet committed: the finals of committed items are awaited,
  then the session is discarded without a final.

Deltas: our partials change as more audio comes, but an OpenAI delta is appended for good.
So a delta carries only text that two successive partials agree on (a word-level common
prefix, the last word held back), and the rest of the final just before ``completed``. When
the final revises what deltas already said (Whisper's beam search reading a word differently
from the greedy partial), no more deltas are sent for that item and ``completed`` carries the
final text: ``completed`` is always the transcript; deltas are a preview that agrees with it
whenever the final did not revise the preview.

Diarization (our extension ``transcription.diarize``): the stream's samples also feed the
engine's ``LiveSpeakers``, as on the WhisperLive face, which labels each completed segment
(split at a speaker change within it) before it is sent. An item is one utterance and keeps
one ``speaker`` on ``completed``: the speaker who talked longest in it (total duration of
its labelled pieces; the first to reach that total on a tie).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from dataclasses import dataclass, field, replace

import numpy as np
from aiohttp import WSMsgType, web

from ...core.events import AudioLost, SegmentsChanged
from ...core.options import DIARIZED_COMMIT_AFTER, SessionOptions
from ...core.pcm import SAMPLE_RATE
from ...core.transcript import StreamSegment
from ...core.vad import CHUNK
from ...engine import live as ends
from ...engine.diarization import LiveSpeakers
from ...engine.live import LiveStream as EngineStream
from ...engine.pool import LoadedModel, ModelPool
from ...engine.streams import StreamRunner, new_session
from ...gate.credentials import ANSWERED_SUBPROTOCOLS
from ...media import PcmIntake
from ...settings import ServerSettings
from . import protocol
from .protocol import EventError, SessionConfig

log = logging.getLogger(__name__)

FACE = "realtime"  # the metrics' label for this face
IDLE_TIMEOUT = 60.0  # nothing at all received for a minute: the client is gone
MIN_COMMIT_SECONDS = 0.1  # OpenAI refuses to commit less than 100 ms of audio
CLEAR_WAIT = 60.0  # seconds a clear waits for the finals of items already committed


@dataclass
class LiveContext:
    pool: ModelPool
    settings: ServerSettings
    stream: EngineStream


@dataclass
class Item:
    """One utterance as OpenAI's conversation item of user audio."""

    id: str
    start: float  # stream seconds where its speech began
    committed: bool = False
    text: str = ""  # completed segments so far
    words: list = field(default_factory=list)
    sent: str = ""  # what deltas have said
    preview: str = ""  # the last provisional text (completed + partial)
    end: float | None = None
    speakers: dict[str, float] = field(default_factory=dict)  # seconds of speech per speaker

    @property
    def speaker(self) -> str | None:
        """The speaker who talked longest in the item (the first of a tie)."""
        return max(self.speakers, key=self.speakers.__getitem__, default=None)


def _shifted(segment: StreamSegment, by: float) -> StreamSegment:
    """``segment`` with its times (and its words') moved ``by`` seconds."""
    if not by:
        return segment
    words = [replace(w, start=w.start + by, end=w.end + by) for w in segment.words or []]
    return replace(segment, start=segment.start + by, end=segment.end + by, words=words or segment.words)


def _joined(segments: list[StreamSegment]) -> str:
    return "".join(s.text for s in segments)


def _stable(previous: str, current: str) -> str:
    """The words two successive provisional texts agree on, the last word held back (it
    may still be growing)."""
    a, b = previous.split(" "), current.split(" ")
    common = []
    for x, y in zip(a[:-1], b[:-1], strict=False):
        if x != y:
            break
        common.append(x)
    return " ".join(common) + (" " if common else "")


class RealtimeConnection:
    def __init__(
        self, ws: web.WebSocketResponse, context: LiveContext, model: LoadedModel, config: SessionConfig
    ):
        self.ws = ws
        self.context = context
        self.model = model
        self.config = config
        self.outbox: asyncio.Queue[dict | None] = asyncio.Queue()
        self.pcm = PcmIntake(*config.pcm)
        self.audio_seen = False  # the format may change only before the first audio
        self.offset = 0.0  # stream seconds in sessions before the current one
        self.items: list[Item] = []  # not yet completed, oldest first
        self.previous_item: str | None = None  # the last item committed
        self.sent_completed = 0
        self.speech_open = False
        self.gone = False
        self.told_not_audio = False
        self.speakers: LiveSpeakers | None = None
        self.speakers_since = 0.0  # the stream time of the speakers' first sample
        self._diarization()
        self.runner = self._new_runner()
        self.forwarder = asyncio.create_task(self._forward(self.runner, self.offset))

    # ---------------------------------------------------------------- sessions
    def _new_runner(self) -> StreamRunner:
        session = new_session(
            SessionOptions(
                language=self.config.language,
                initial_prompt=self.config.prompt,
                # words let a speaker change inside a segment count for each speaker
                word_timestamps=self.config.logprobs or self.config.diarize,
                commit_after=DIARIZED_COMMIT_AFTER if self.config.diarize else SessionOptions.commit_after,
                audio_format="float32",
                vad=self.config.vad(),
                fit_window=self.context.settings.fit_window,
            )
        )
        return StreamRunner(session, self.context.pool, self.model)

    def _diarization(self) -> None:
        """Speaker labels as the configuration asks, from the stream's next sample on (a
        change of ``diarize`` or ``max_speakers`` comes at a session boundary)."""
        wanted = (self.config.diarize, self.config.max_speakers)
        if self.speakers is not None and wanted == (True, self.speakers.diarizer.max_speakers):
            return
        self.speakers = (
            LiveSpeakers(self.context.pool, "float32", self.config.max_speakers)
            if self.config.diarize
            else None
        )
        self.speakers_since = self.offset

    def _feed(self, samples: np.ndarray) -> np.ndarray:
        """Samples on their way to the session, also heard by the speaker labels."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self.speakers is not None and len(samples):
            self.speakers.feed(samples.tobytes())
        return samples

    @property
    def manual(self) -> bool:
        return self.config.turn_detection is None

    @property
    def session_seconds(self) -> float:
        return self.runner.session.stream_seconds

    def send(self, event: dict) -> None:
        self.outbox.put_nowait(event)

    # ---------------------------------------------------------------- audio in
    def _append(self, event: dict) -> None:
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EventError(
                f"Invalid 'audio': not base64 ({exc})", "audio", event_id=event.get("event_id")
            ) from exc
        self.audio_seen = True
        samples = self.pcm.feed(data)
        if self.pcm.not_audio is not None and not self.told_not_audio:
            self.told_not_audio = True
            self.send(protocol.error(EventError(self.pcm.not_audio, "audio", code="invalid_audio")))
        if not len(samples):
            return
        samples = self._feed(samples)
        # server_vad reads the session's VAD state between pieces of one VAD chunk: an append
        # of seconds (a client uploading faster than real time) may hold several utterances
        # that open and close within it, and each must become its own item.
        step = len(samples) if self.manual else CHUNK
        for first in range(0, len(samples), step):
            self.runner.feed(samples[first : first + step])
            self._vad_events()
        self.context.stream.audio(len(samples) / SAMPLE_RATE)

    def _vad_events(self) -> None:
        """server_vad: the session's VAD opening and closing an utterance."""
        if self.manual:
            return
        session = self.runner.session
        if session.speech_open and not self.speech_open:
            start = self.offset + (session.speech_start or session.stream_seconds)
            item = Item(protocol.new_id("item"), start)
            self.items.append(item)
            self.send(
                protocol.server_event(
                    "input_audio_buffer.speech_started", audio_start_ms=round(start * 1000), item_id=item.id
                )
            )
        elif self.speech_open and not session.speech_open:
            self._commit_open(speech_stopped=True)
        self.speech_open = session.speech_open

    def _open_item(self) -> Item | None:
        return next((i for i in self.items if not i.committed), None)

    def _commit_open(self, speech_stopped: bool) -> Item | None:
        item = self._open_item()
        if item is None:
            return None
        item.committed = True
        end_ms = round((self.offset + self.session_seconds) * 1000)
        if speech_stopped:
            self.send(
                protocol.server_event(
                    "input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item.id
                )
            )
        self.send(
            protocol.server_event(
                "input_audio_buffer.committed", item_id=item.id, previous_item_id=self.previous_item
            )
        )
        self.previous_item = item.id
        return item

    # ---------------------------------------------------------------- results out
    async def _forward(self, runner: StreamRunner, offset: float) -> None:
        while (event := await runner.events.get()) is not None:
            if isinstance(event, SegmentsChanged):
                upto = len(runner.session.completed)  # more may complete while labelling
                if self.speakers is not None:
                    new = runner.session.completed[self.sent_completed : upto]
                    await self.speakers.label([_shifted(s, offset - self.speakers_since) for s in new])
                self._results(runner, event, offset, upto)
                self.context.stream.delivered(runner, event, offset=offset)
            elif isinstance(event, AudioLost):
                self.send(
                    protocol.server_event(
                        "conversation.item.input_audio_transcription.failed",
                        item_id=self._item_at(offset + event.start).id,
                        content_index=0,
                        error={"type": "server_error", "code": "audio_lost", "message": event.describe()},
                    )
                )

    def _item_at(self, t: float) -> Item:
        """The item whose speech holds stream time ``t``: the last that began before it.
        Callers ask with a point inside the utterance's speech (a segment's start, a final's
        end of speech), never its padded end: the next item's prefix padding may begin
        before the previous utterance's padded end. (Every utterance the VAD opens gets its
        item as the audio is fed; one with none is made now, as a safeguard.)"""
        found = None
        for item in self.items:
            if item.start <= t + 0.05:
                found = item
        if found is None:
            found = Item(protocol.new_id("item"), t)
            self.items.insert(0, found)
            if not self.manual:
                self.send(
                    protocol.server_event(
                        "input_audio_buffer.speech_started", audio_start_ms=round(t * 1000), item_id=found.id
                    )
                )
        return found

    def _results(self, runner: StreamRunner, update: SegmentsChanged, offset: float, upto: int) -> None:
        """The items' text (and speakers) from the segments completed up to ``upto``."""
        session = runner.session
        new = session.completed[self.sent_completed : upto]
        self.sent_completed = upto
        for segment in new:
            item = self._item_at(offset + segment.start)
            item.text += segment.text
            item.words += segment.words or []
            item.end = offset + segment.end
            if self.speakers is not None:
                for piece in self.speakers.split([_shifted(segment, offset - self.speakers_since)]):
                    speaker = self.speakers.speaker_of(piece)
                    if speaker is not None:
                        item.speakers[speaker] = item.speakers.get(speaker, 0.0) + piece.end - piece.start
        for ended in update.speech_ended:
            self._complete_through(self._item_at(offset + ended))
        partial = session.partial
        open_item = self._open_item()
        if open_item is not None:
            provisional = (open_item.text + (partial.text if partial is not None else "")).lstrip()
            self._delta(open_item, _stable(open_item.preview, provisional))
            open_item.preview = provisional

    def _delta(self, item: Item, text: str) -> None:
        if len(text) > len(item.sent) and text.startswith(item.sent):
            self.send(protocol.delta(item.id, text[len(item.sent) :], None, False))
            item.sent = text

    def _complete_through(self, last: Item) -> None:
        """Complete every item up to ``last`` (earlier ones whose speech gave no final have
        no text), committing any that the VAD had not closed yet."""
        while self.items:
            item = self.items[0]
            if not item.committed:
                self._commit_open(speech_stopped=False)  # the oldest uncommitted item: this one
            self.items.pop(0)
            transcript = item.text.strip()
            if transcript.startswith(item.sent):
                self._delta(item, transcript)
            seconds = (item.end - item.start) if item.end is not None else 0.0
            self.send(
                protocol.completed(
                    item.id, transcript, max(seconds, 0.0), item.words, self.config.logprobs, item.speaker
                )
            )
            if item is last:
                return

    # ---------------------------------------------------------------- control
    async def _end_session(self, final: bool) -> None:
        """End the current session (``final``: its open speech becomes a final; else it is
        dropped) and continue the stream in a new one."""
        runner = self.runner
        if final:
            runner.end(self._feed(self.pcm.flush()))
            self.pcm = PcmIntake(*self.config.pcm)  # a flushed intake takes no more audio
            await runner.finished()
        runner.events.put_nowait(None)
        await self.forwarder
        runner.close()
        self.offset += runner.session.stream_seconds
        self.runner = self._new_runner()
        self.sent_completed, self.speech_open = 0, False
        self.forwarder = asyncio.create_task(self._forward(self.runner, self.offset))

    async def _commit(self, event: dict) -> None:
        uncommitted = self.session_seconds if self.manual or self._open_item() is not None else 0.0
        if uncommitted < MIN_COMMIT_SECONDS:
            raise EventError(
                f"Error committing input audio buffer: buffer too small. Expected at least"
                f" {MIN_COMMIT_SECONDS * 1000:.0f}ms of audio, but buffer only has"
                f" {uncommitted * 1000:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
                event_id=event.get("event_id"),
            )
        if self.manual and self._open_item() is None:
            self.items.append(Item(protocol.new_id("item"), self.offset))
        item = self._commit_open(speech_stopped=False)
        await self._end_session(final=True)
        if item is not None and item in self.items:
            self._complete_through(item)

    async def _finish_buffered(self) -> None:
        """Everything heard so far becomes final and every item completes (a session.update
        after audio, the server stopping the stream)."""
        if self.manual and self.session_seconds >= MIN_COMMIT_SECONDS and self._open_item() is None:
            self.items.append(Item(protocol.new_id("item"), self.offset))
        self._commit_open(speech_stopped=False)
        await self._end_session(final=True)
        if self.items:
            self._complete_through(self.items[-1])

    async def _clear(self) -> None:
        """Drop what is not committed; what is committed is transcribed first."""
        waited = 0.0
        while any(i.committed for i in self.items) and waited < CLEAR_WAIT:
            await asyncio.sleep(0.02)
            waited += 0.02
        self.items = [i for i in self.items if not i.committed]
        await self._end_session(final=False)
        self.items = []
        self.pcm = PcmIntake(*self.config.pcm)
        self.send(protocol.server_event("input_audio_buffer.cleared"))

    async def _update(self, event: dict) -> None:
        config = protocol.updated(self.config, event)
        if config.pcm != self.config.pcm and self.audio_seen:
            raise EventError(
                "Invalid value for 'session.audio.input.format': the format cannot change once audio was sent",
                "session.audio.input.format",
                event_id=event.get("event_id"),
            )
        if config.served_model != self.config.served_model:
            raise EventError(
                "Invalid value for 'session.audio.input.transcription.model': the model is chosen when"
                " connecting (?model=); it cannot change within a session",
                "session.audio.input.transcription.model",
                event_id=event.get("event_id"),
            )
        self.config = config
        if not self.audio_seen:
            self.pcm = PcmIntake(*config.pcm)
        if self.session_seconds == 0 and not self.items:
            await self._end_session(final=False)  # nothing heard yet: start under the new settings
        else:  # the audio so far was heard under the old settings: it becomes final under them
            await self._finish_buffered()
        kind = (
            "transcription_session.updated"
            if event["type"].startswith("transcription_session")
            else "session.updated"
        )
        self._diarization()
        self.send(protocol.server_event(kind, session=self.config.describe()))

    # ---------------------------------------------------------------- the socket
    async def _write(self) -> None:
        while (event := await self.outbox.get()) is not None:
            if self.gone:
                continue
            try:
                await self.ws.send_json(event)
            except ConnectionError:
                self.gone = True

    async def _read(self, inbox: asyncio.Queue) -> None:
        async for message in self.ws:
            inbox.put_nowait(message)
        inbox.put_nowait(None)

    async def _handle(self, text: str) -> None:
        try:
            event = protocol.parse_event(text)
            kind = event["type"]
            if kind == "input_audio_buffer.append":
                self._append(event)
            elif kind == "input_audio_buffer.commit":
                await self._commit(event)
            elif kind == "input_audio_buffer.clear":
                await self._clear()
            else:
                try:
                    await self._update(event)
                except EventError as exc:
                    exc.event_id = exc.event_id or event.get("event_id")
                    raise
        except EventError as exc:
            self.send(protocol.error(exc))

    async def run(self) -> None:
        inbox: asyncio.Queue = asyncio.Queue()
        writer = asyncio.create_task(self._write())
        reader = asyncio.create_task(self._read(inbox))
        stream = self.context.stream
        interrupted = asyncio.create_task(stream.interrupted(IDLE_TIMEOUT))
        how = ends.CLIENT_GONE
        try:
            self.send(protocol.server_event("session.created", session=self.config.describe()))
            while True:
                getter = asyncio.create_task(inbox.get())
                await asyncio.wait({getter, interrupted}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    how = interrupted.result()
                    break
                message = getter.result()
                stream.received()
                if message is None or message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    stream.end(ends.CLIENT_GONE)
                    return
                if message.type == WSMsgType.BINARY:
                    self.send(
                        protocol.error(
                            EventError(
                                "Events are JSON text frames; audio goes base64 in input_audio_buffer.append",
                                code="invalid_json",
                            )
                        )
                    )
                    continue
                await self._handle(message.data)
            # The server stops the stream: what was heard is transcribed, then the close says why.
            if self.session_seconds > 0 or self.items:
                await self._finish_buffered()
            code, reason = _INTERRUPTIONS[how]
            self.send(protocol.server_error(reason, how.replace(" ", "_")))
            self.outbox.put_nowait(None)
            await writer
            stream.end(how)
            if not self.gone:
                await self.ws.close(code=code, message=reason.encode()[:120])
        finally:
            for task in (writer, reader, interrupted, self.forwarder):
                task.cancel()
            self.runner.close()


_INTERRUPTIONS = {
    ends.SHUTDOWN: (1001, "server shutting down"),
    ends.TIME_LIMIT: (1000, "maximum connection time reached"),
    ends.IDLE: (1000, f"no event received for {IDLE_TIMEOUT:g} s"),
}


async def refuse(request: web.Request, event: dict) -> web.WebSocketResponse:
    """OpenAI's way to refuse a session: the socket opens, an ``error`` event, the close."""
    ws = web.WebSocketResponse(protocols=ANSWERED_SUBPROTOCOLS)
    await ws.prepare(request)
    await ws.send_json(event)
    await ws.close(code=1013, message=event["error"]["message"].encode()[:120])
    return ws


async def serve(
    request: web.Request, context: LiveContext, model: LoadedModel, config: SessionConfig
) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(
        protocols=ANSWERED_SUBPROTOCOLS,
        heartbeat=context.stream.streams.keepalive,
        max_msg_size=context.settings.max_frame_bytes,
    )
    await ws.prepare(request)
    try:
        await RealtimeConnection(ws, context, model, config).run()
    except asyncio.CancelledError:
        raise
    except ConnectionError:
        context.stream.end(ends.CLIENT_GONE)
    except Exception:  # one broken connection must never take the server down
        context.stream.end(ends.INTERNAL_ERROR)
        log.exception("realtime stream failed")
        with contextlib.suppress(Exception):
            await ws.close(code=1011, message=b"internal server error")
    return ws
