"""Drives one ``StreamingSession`` against the model pool inside an event loop.

The session decides what to decode; this runs those decodes on the shared scheduler and
feeds results back, and queues the session's events for whichever transport sends them.
The session asks the scheduler, through a ``SchedulerBudget``, whether an optional decode
would start now.

A final decode that raises is tried once more (a worker's transient failure must not cost
an utterance); if it fails again the session reports the span as ``AudioLost``. The queue
of events (``Outbox``) stays small for a client that stops reading: an update not yet sent
is replaced by a newer one that still shows everything it completed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..core.events import Event, SegmentsChanged
from ..core.options import SessionOptions
from ..core.requests import DecodeKind, DecodeRequest
from ..core.session import StreamingSession
from .pool import LoadedModel, ModelPool, Priority, Scheduler
from .vad import StreamingVad

log = logging.getLogger(__name__)

PRIORITIES = {DecodeKind.FINAL: Priority.FINAL, DecodeKind.PARTIAL: Priority.PARTIAL}
FINAL_ATTEMPTS = 2  # a final that fails is tried once more before its span is reported lost


@dataclass
class SchedulerBudget:
    """A session's ``DecodeBudget``: optional decodes run only when they would not wait.

    A partial may join a batch that is forming (it costs little there); a final started
    early at a pause needs a free decoder, since the speaker may go on and waste it.
    """

    scheduler: Scheduler

    def allows_partial(self) -> bool:
        return self.scheduler.has_batch_room(Priority.PARTIAL)

    def allows_speculative_final(self) -> bool:
        return self.scheduler.has_room(Priority.FINAL)


class Outbox:
    """The session's events waiting for the transport, oldest first; ``None`` ends them.

    While the transport is blocked (a client that does not read), updates pile up here:
    each ``SegmentsChanged`` absorbs the unsent one before it when no completed segment is
    lost by that, so stale partials go and finals stay, and the queue holds about one
    update per ``send_last_n_segments`` finals rather than one per decode.
    """

    def __init__(self) -> None:
        self._items: deque[Event | None] = deque()
        self._waiting = asyncio.Event()

    def put_nowait(self, item: Event | None) -> None:
        if (
            isinstance(item, SegmentsChanged)
            and self._items
            and isinstance(self._items[-1], SegmentsChanged)
            and item.absorb(self._items[-1])
        ):
            self._items.pop()
        self._items.append(item)
        self._waiting.set()

    async def get(self) -> Event | None:
        while not self._items:
            self._waiting.clear()
            await self._waiting.wait()
        return self._items.popleft()

    def qsize(self) -> int:
        return len(self._items)


def new_session(options: SessionOptions) -> StreamingSession:
    """A streaming session with the engine's Silero VAD when it uses one (the core is
    handed its VAD: it loads no model)."""
    return StreamingSession(options, vad=StreamingVad() if options.use_vad else None)


class StreamRunner:
    def __init__(self, session: StreamingSession, pool: ModelPool, model: LoadedModel):
        self.session = session
        session.budget = SchedulerBudget(pool.scheduler)
        self.pool = pool
        self.model = model
        self.events = Outbox()
        self._tasks: dict[asyncio.Task, DecodeRequest] = {}
        self._finished = asyncio.Event()
        # (stream seconds received, monotonic time it arrived) per fed frame, oldest first
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=100_000)

    def feed(self, samples: np.ndarray) -> None:
        """16 kHz mono float32 samples (from the face's ``media.PcmIntake``)."""
        self.session.feed(samples)
        self._arrivals.append((self.session.stream_seconds, time.monotonic()))
        self._pump()

    def arrived_at(self, stream_seconds: float) -> float | None:
        """When (``time.monotonic``) the audio holding this point of the stream arrived.

        Asked in stream order (each final's end of speech, see ``SegmentsChanged``), so
        frames before the point are forgotten as it goes."""
        while self._arrivals and self._arrivals[0][0] < stream_seconds:
            self._arrivals.popleft()
        return self._arrivals[0][1] if self._arrivals else None

    def end(self, last: np.ndarray | None = None) -> None:
        """End of audio (``last``: the intake's last samples): drop queued partials (nobody
        will see them) and finish the finals."""
        self.session.end_of_audio(last)
        for task, request in list(self._tasks.items()):
            if request.kind is DecodeKind.PARTIAL:
                task.cancel()
        self._pump()

    async def finished(self) -> None:
        await self._finished.wait()

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _pump(self) -> None:
        for request in self.session.take_requests():
            task = asyncio.get_running_loop().create_task(self._decode(request))
            self._tasks[task] = request
            task.add_done_callback(self._tasks.pop)
        for event in self.session.take_events():
            self.events.put_nowait(event)
        if self.session.finished:
            self._finished.set()

    async def _decode(self, request: DecodeRequest) -> None:
        attempts = FINAL_ATTEMPTS if request.kind is DecodeKind.FINAL else 1
        for attempt in range(1, attempts + 1):
            try:
                result = await self.pool.decode(
                    self.model, request.audio, request.options, PRIORITIES[request.kind]
                )
            except asyncio.CancelledError:
                if request.kind is DecodeKind.FINAL:
                    self.session.decode_failed(request, asyncio.CancelledError())
                raise
            except Exception as exc:  # a broken decode costs one update, never the session
                if attempt < attempts:
                    log.warning("final decode failed (%s: %s); trying it again", type(exc).__name__, exc)
                    continue
                log.exception("decode %s failed", request.kind.value)
                self.session.decode_failed(request, exc)
            else:
                self.session.decode_done(request, result)
            break
        self._pump()
