"""Who may open another live stream: the limit every streaming face asks before it starts one.

A face tells ``Admission`` when a stream opens (with a way to read how much audio it has
received) and when it closes; in between it asks ``admits_another`` before accepting a
new one, and ``wait_minutes`` for how long a refused client should wait. The limit is
``max_clients`` or, once enough audio has been seen, the measured capacity when that is
lower (``capacity``). It counts streams, not connections of one protocol, so every face
that streams shares one budget.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .scheduler import Priority

if TYPE_CHECKING:
    from ..settings import ServerSettings

# Share of the CPU (and of the decode workers) that work a stream cannot shed may be
# expected to use before new streams wait; the rest absorbs bursts (several utterances
# ending together) and partials.
TARGET_UTILIZATION = 0.7
# Stream-seconds observed before the capacity estimate is trusted over max_clients alone.
MIN_OBSERVED_SECONDS = 120.0


class DecodeTimes(Protocol):
    """What admission reads from the scheduler: its workers and their busy time so far."""

    workers: int
    busy_by_priority: dict[Priority, float]


@dataclass(eq=False)
class OpenStream:
    """One admitted stream, as ``Admission.open`` returns it; give it back to ``close``."""

    opened: float  # the admission clock when it opened
    audio_seconds: Callable[[], float]  # audio received so far


class Admission:
    """Stream count, limits and the capacity estimate, shared by every streaming face.

    ``settings`` is read at each question (max_clients, max_connection_time,
    capacity_admission), so a changed limit applies to the next client. ``cpu_seconds``
    (this process, every thread), ``clock`` and ``cores`` are injectable for tests.
    """

    def __init__(
        self,
        scheduler: DecodeTimes,
        settings: ServerSettings,
        *,
        cpu_seconds: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
        cores: int | None = None,
    ):
        self.scheduler = scheduler
        self.settings = settings
        self._cpu_seconds = cpu_seconds
        self._clock = clock
        self.cores = cores or len(os.sched_getaffinity(0))
        self._cpu_start = cpu_seconds()
        self._open: set[OpenStream] = set()
        self._closed_seconds = 0.0
        self.draining = False  # shutting down: streams already open finish, no new one starts
        # Loading the default model: streams that arrive wait for it, but a load balancer
        # should send them elsewhere (``/ready`` 503) while another replica is ready.
        self.starting = True

    def started(self) -> None:
        """Start-up is over: readiness may say ready, and the CPU time spent so far (loading
        models) is no stream's cost."""
        self.starting = False
        self._cpu_start = self._cpu_seconds()

    def open(self, audio_seconds: Callable[[], float]) -> OpenStream:
        """Count a stream from now on; ``audio_seconds`` says how much audio it has received."""
        stream = OpenStream(self._clock(), audio_seconds)
        self._open.add(stream)
        return stream

    def close(self, stream: OpenStream) -> None:
        """The stream ended: its slot frees and its audio stays in the estimate."""
        if stream in self._open:
            self._open.remove(stream)
            self._closed_seconds += stream.audio_seconds()

    @property
    def active(self) -> int:
        return len(self._open)

    def stream_seconds(self) -> float:
        """Audio seconds received by every stream so far, finished ones included."""
        return self._closed_seconds + sum(s.audio_seconds() for s in self._open)

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
        busy = self.scheduler.busy_by_priority
        if seen < MIN_OBSERVED_SECONDS or busy[Priority.FINAL] <= 0:
            return None
        elastic = busy[Priority.PARTIAL] + busy[Priority.UPLOAD]
        cpu = max(self._cpu_seconds() - self._cpu_start - elastic, busy[Priority.FINAL])
        by_cpu = self.cores * TARGET_UTILIZATION / (cpu / seen)
        by_workers = self.scheduler.workers * TARGET_UTILIZATION / (busy[Priority.FINAL] / seen)
        return max(1, int(min(by_cpu, by_workers) + 1e-9))

    def stop_admitting(self) -> None:
        """Shutdown has begun: every face answers new streams as it answers a full server."""
        self.draining = True

    def limit(self) -> int:
        """Streams admitted at once: max_clients, or the measured capacity when lower."""
        limit = self.settings.max_clients
        capacity = self.capacity() if self.settings.capacity_admission else None
        return limit if capacity is None else min(limit, capacity)

    def admits_another(self) -> bool:
        return not self.draining and self.active < self.limit()

    def wait_minutes(self) -> float:
        """When the next slot frees at the latest: the oldest stream hits its time limit."""
        now = self._clock()
        remaining = [self.settings.max_connection_time - (now - s.opened) for s in self._open]
        return max(0.0, min(remaining, default=0.0)) / 60.0

    def status(self) -> dict:
        """The figures ``admits_another`` decides from, and its answer (what ``/ready`` says)."""
        capacity = self.capacity()
        limit = self.limit()
        return {
            "active_streams": self.active,
            "max_clients": self.settings.max_clients,
            "capacity_estimate": capacity,  # streams it can keep up with; None: not yet known
            "capacity_admission": self.settings.capacity_admission,  # whether the estimate limits
            "stream_limit": limit,  # the lower of the two that apply
            "free_streams": max(0, limit - self.active),
            "starting": self.starting,
            "draining": self.draining,
            "admits_new_streams": not self.draining and self.active < limit,
        }
