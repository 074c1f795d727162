"""The life of a live stream, the same on every face that streams.

A face knows its wire format; everything else about a live stream is here, once: whether
the server takes another stream (``Admission``: WAIT when full or draining), the key's
stream slot (``Gate``), the metrics (admitted, refused, ended by how, audio seconds,
final latency), the keepalive interval, the time limit, the idle timeout, the drain on
SIGTERM and the one log line that says how a stream ended. A face is an adapter:

    wait = live.full()                          # minutes to WAIT, or None
    stream = live.open(FACE, peer, key, uid)    # LimitReached: the key's slot is taken
    try:
        ... feed audio: stream.audio(seconds); finals sent: stream.delivered(runner, update)
        how = await stream.interrupted(idle_timeout)   # "time limit", "shutdown" or "idle"
        stream.end(how)                         # or "end of audio", "client gone", ...
    finally:
        stream.close()                          # the slot frees; the log line, the metric

A stream closed without ``end`` is logged as gone: every stream gets its line and metric.

Viewers (live captions for broadcasting): ``streams.find(id)`` gives a running stream by
its face's id (WhisperLive's ``uid``, Deepgram's ``request_id``, Realtime's session id) and
``stream.watch()`` a ``Viewer``: a bounded queue of caption events (``caption_event``) fed
by ``delivered``, so every face shares them with no code of its own. A viewer that falls
behind loses its oldest events (the next one carries the current lines again), never slows
the stream, and gets ``{"type": "end"}`` when the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.events import SegmentsChanged
from ..core.transcript import StreamSegment
from ..errors import LimitReached
from ..logs import event
from .admission import Admission, OpenStream

if TYPE_CHECKING:
    from ..gate.gate import Gate
    from ..gate.keys import ApiKey
    from ..gate.metrics import Metrics
    from ..settings import ServerSettings
    from .streams import StreamRunner

log = logging.getLogger("whisper_live.streams")

# The ways a stream ends, as logged and counted (``whisper_live_streams_ended{how}``).
END_OF_AUDIO = "end of audio"  # the client said so (END_OF_AUDIO, CloseStream)
TIME_LIMIT = "time limit"  # --max-connection-time
SHUTDOWN = "shutdown"  # the server drains
IDLE = "idle"  # nothing received for the face's idle timeout
CLIENT_GONE = "client gone"  # the socket closed or broke
INTERNAL_ERROR = "internal error"

VIEWER_QUEUE = 64  # caption events a viewer may lag behind before its oldest are dropped
VIEWERS_PER_STREAM = 16  # viewers one stream may have at once


def caption_event(
    update: SegmentsChanged,
    speaker_of: Callable[[StreamSegment], str | None] | None = None,
    offset: float = 0.0,
) -> dict:
    """What a viewer sees of an update: the completed segments it shows and the partial, as
    text with stream times (seconds; ``offset``: where the update's session began in the
    stream, for a face that runs one stream as several sessions) and, with diarization,
    the speaker."""
    lines = []
    for segment in update.segments:
        line: dict = {
            "start": round(segment.start + offset, 3),
            "end": round(segment.end + offset, 3),
            "text": segment.text.strip(),
            "completed": segment.completed,
        }
        speaker = speaker_of(segment) if speaker_of is not None and segment.completed else None
        if speaker is not None:
            line["speaker"] = speaker
        lines.append(line)
    return {"type": "captions", "segments": lines}


class Viewer:
    """One viewer's events: bounded, never blocking the stream that fills it."""

    def __init__(self, size: int = VIEWER_QUEUE):
        self._events: deque[dict] = deque(maxlen=size)  # full: the oldest goes
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, message: dict) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(message)
        self._ready.set()

    async def get(self) -> dict:
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()


@dataclass(eq=False)
class LiveStream:
    """One admitted stream: what its log line and metrics say, and when it must stop."""

    streams: LiveStreams
    face: str
    peer: str
    key: ApiKey | None
    uid: str | None
    model: str | None = None
    finals: int = 0
    audio_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)
    heard: float = field(default_factory=time.monotonic)  # the client's last frame of any kind
    how: str | None = None  # set by ``end``
    admitted: OpenStream | None = None
    viewers: set[Viewer] = field(default_factory=set, repr=False)
    last_caption: dict | None = field(default=None, repr=False)  # what a new viewer sees first
    _held: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    @property
    def deadline(self) -> float:
        return self.started + self.streams.settings.max_connection_time

    def received(self) -> None:
        """The client sent something (audio, a keepalive): the idle clock starts again."""
        self.heard = time.monotonic()

    def audio(self, seconds: float) -> None:
        """``seconds`` of audio went into the stream's session."""
        self.received()
        if seconds > 0:
            self.audio_seconds += seconds
            self.streams.metrics.audio_seconds.labels(self.face).inc(seconds)

    def delivered(
        self,
        runner: StreamRunner,
        update: SegmentsChanged,
        speaker_of: Callable[[StreamSegment], str | None] | None = None,
        offset: float = 0.0,
    ) -> None:
        """An update is on the wire: its viewers get its captions; count its finals and how
        long after their speech ended (the audio's arrival, from the runner) they were sent."""
        self.publish(caption_event(update, speaker_of, offset))
        if not update.speech_ended:
            return
        sent = time.monotonic()
        self.finals += len(update.speech_ended)
        latency = self.streams.metrics.final_latency.labels(self.face)
        for point in update.speech_ended:
            arrived = runner.arrived_at(point)
            if arrived is not None:
                latency.observe(sent - arrived)

    def publish(self, message: dict) -> None:
        """Give every viewer ``message`` (a caption event, or the end)."""
        if message.get("type") == "captions":
            self.last_caption = message
        for viewer in self.viewers:
            viewer.put(message)

    @contextlib.contextmanager
    def watch(self) -> Iterator[Viewer]:
        """A viewer of this stream for as long as the block runs; it starts with the lines
        shown now. ``LimitReached`` when the stream has ``VIEWERS_PER_STREAM`` already."""
        if len(self.viewers) >= VIEWERS_PER_STREAM:
            raise LimitReached(f"this stream already has {len(self.viewers)} viewers (the limit)")
        viewer = Viewer()
        if self.last_caption is not None:
            viewer.put(self.last_caption)
        if self.how is not None and self not in self.streams.streams:
            viewer.put({"type": "end", "how": self.how})
        self.viewers.add(viewer)
        try:
            yield viewer
        finally:
            self.viewers.discard(viewer)

    def interruption(self, idle_timeout: float | None = None) -> str | None:
        """Why the stream must stop now, if it must: the drain, its time limit, idleness."""
        now = time.monotonic()
        if self.streams.draining.is_set():
            return SHUTDOWN
        if now >= self.deadline:
            return TIME_LIMIT
        if idle_timeout is not None and now >= self.heard + idle_timeout:
            return IDLE
        return None

    async def interrupted(self, idle_timeout: float | None = None) -> str:
        """Wait until the stream must stop; returns why (see ``interruption``)."""
        while (reason := self.interruption(idle_timeout)) is None:
            until = self.deadline
            if idle_timeout is not None:
                until = min(until, self.heard + idle_timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.streams.draining.wait(), max(0.01, until - time.monotonic()))
        return reason

    def end(self, how: str) -> None:
        """How the stream ended (the first call wins: a later close cannot rewrite it)."""
        if self.how is None:
            self.how = how

    def close(self) -> None:
        """The stream is over: its slot and admission free, its line logged (once)."""
        self.streams.close(self)


class LiveStreams:
    """Every live stream of the server, whichever face carries it."""

    def __init__(
        self,
        admission: Admission,
        settings: ServerSettings,
        gate: Gate | None = None,
        metrics: Metrics | None = None,
    ):
        from ..gate.gate import Gate
        from ..gate.metrics import Metrics

        self.admission = admission
        self.settings = settings
        self.gate = gate or Gate(origins=settings.allowed_origins)
        self.metrics = metrics or Metrics()
        self.streams: set[LiveStream] = set()
        self.draining = asyncio.Event()
        self._pending = 0  # connections past their handshake, admitted or about to be

    @property
    def keepalive(self) -> float:
        """Seconds between the WebSocket pings every live face sends (--ping-interval)."""
        return self.settings.ping_interval

    def full(self) -> float | None:
        """None when another stream may start; else the minutes it should WAIT."""
        if self.admission.admits_another():
            return None
        return self.admission.wait_minutes()

    def refused(
        self, face: str, peer: str, reason: str, uid: str | None = None, key: ApiKey | None = None, **fields
    ):
        """A stream that never started: counted by its first word and logged."""
        self.metrics.streams_refused.labels(face, reason.split()[0]).inc()
        event(
            log, "stream refused", uid=uid, peer=peer, key=key.label if key else None, reason=reason, **fields
        )

    @contextlib.contextmanager
    def pending(self) -> Iterator[None]:
        """A connection that has said what it wants: a drain waits for it to finish."""
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1

    def open(
        self, face: str, peer: str, key: ApiKey | None, uid: str | None, model: str | None = None
    ) -> LiveStream:
        """Admit a stream (the caller asked ``full`` first) holding the key's stream slot
        (``LimitReached`` when it has none left) and count it. The face calls ``close``
        when the stream is over, whatever happened."""
        stream = LiveStream(self, face, peer, key, uid, model)
        held = contextlib.ExitStack()
        held.enter_context(self.gate.slot(key, "streams"))
        held.enter_context(self.pending())
        stream._held = held
        stream.admitted = self.admission.open(lambda: stream.audio_seconds)
        self.streams.add(stream)
        self.metrics.streams_admitted.labels(face).inc()
        return stream

    def find(self, stream_id: str, key: ApiKey | None = None) -> LiveStream | None:
        """The running stream of that id (WhisperLive uid, Deepgram request_id, Realtime
        session id), or None. Clients choose WhisperLive uids, so two keys' streams may
        share one: the one ``key`` owns comes first (the caller still checks the owner)."""
        found = [s for s in self.streams if s.uid == stream_id]
        owned = [s for s in found if key is not None and s.key is not None and s.key.name == key.name]
        return (owned or found or [None])[0]

    def close(self, stream: LiveStream) -> None:
        if stream not in self.streams:
            return
        stream.end(CLIENT_GONE)  # unless the face said otherwise
        self.streams.discard(stream)
        self.admission.close(stream.admitted)
        stream._held.close()
        stream.publish({"type": "end", "how": stream.how})
        self._ended(stream)

    def _ended(self, stream: LiveStream) -> None:
        self.metrics.streams_ended.labels(stream.face, stream.how).inc()
        event(
            log,
            "stream ended",
            face=stream.face,
            uid=stream.uid,
            peer=stream.peer,
            key=stream.key.label if stream.key else None,
            model=stream.model,
            audio_seconds=round(stream.audio_seconds, 2),
            finals=stream.finals,
            seconds=round(time.monotonic() - stream.started, 2),
            how=stream.how,
        )

    # ---------------------------------------------------------------- shutdown
    def finish_all(self) -> None:
        """Shutdown: no new stream starts; each one stops taking audio, sends its finals,
        then closes saying why."""
        self.admission.stop_admitting()
        self.draining.set()

    async def finished(self) -> None:
        """Every stream (and every connection about to become one) is done."""
        while self._pending:
            await asyncio.sleep(0.05)
