"""Who may open another live stream: the limit every streaming face asks before it starts one.

A face tells ``Admission`` when a stream opens (with a way to read how much audio it has
received) and when it closes; in between it asks ``admits_another`` before accepting a
new one, and ``wait_minutes`` for how long a refused client should wait. The limit is
``max_clients`` or, once enough audio has been seen, the measured capacity when that is
lower (``capacity``). It counts streams, not connections of one protocol, so every face
that streams shares one budget.

The capacity is measured over the last minute (``CAPACITY_WINDOW``): the median of what
a second of audio cost in each of its six 10-second slices. A blip (a few utterances
ending together, a burst of other work on the machine) spoils one or two slices and does
not move the median; a machine that stays busy, where decodes take longer, moves it
within half a minute to a minute, before streams collapse. With too little audio in the
window it falls back to the whole run's average.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import deque
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
# The capacity is the cost of the audio received over this many seconds, once the window
# holds at least MIN_WINDOW_AUDIO stream-seconds (else the whole run's average).
CAPACITY_WINDOW = 60.0
WINDOW_SLICES = 6  # the median of their costs: a blip spoils at most two
MIN_SLICE_AUDIO = 5.0  # stream-seconds a slice needs to count; half the slices must count
SAMPLE_EVERY = 1.0  # seconds between the readings the window keeps
# How long the last streams lasted: what the WAIT estimate expects of the open ones.
DURATIONS_KEPT = 200


class DecodeTimes(Protocol):
    """What admission reads from the scheduler: its workers and their busy time so far."""

    workers: int
    busy_by_priority: dict[Priority, float]


@dataclass(frozen=True)
class _Reading:
    """Cumulative figures at one moment; the capacity comes from two of them."""

    at: float
    audio: float  # stream-seconds received
    cpu: float  # process CPU seconds since start-up
    elastic: float  # seconds of partial and upload decodes (sheddable)
    final: float  # seconds of final decodes


def _costs(start: _Reading, end: _Reading) -> tuple[float, float]:
    """(CPU, final-decode) seconds per second of audio between two readings: CPU less the
    elastic decodes, never less than the finals themselves."""
    seen = end.audio - start.audio
    final = end.final - start.final
    cpu = max((end.cpu - start.cpu) - (end.elastic - start.elastic), final)
    return cpu / seen, final / seen


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
        self._readings: deque[_Reading] = deque()
        self._durations: deque[float] = deque(maxlen=DURATIONS_KEPT)  # of streams that ended
        self.draining = False  # shutting down: streams already open finish, no new one starts
        # Loading the default model: streams that arrive wait for it, but a load balancer
        # should send them elsewhere (``/ready`` 503) while another replica is ready.
        self.starting = True

    def started(self) -> None:
        """Start-up is over: readiness may say ready, and the CPU time spent so far (loading
        models) is no stream's cost."""
        self.starting = False
        self._cpu_start = self._cpu_seconds()
        self._readings.clear()

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
            self._durations.append(self._clock() - stream.opened)

    @property
    def active(self) -> int:
        return len(self._open)

    def stream_seconds(self) -> float:
        """Audio seconds received by every stream so far, finished ones included."""
        return self._closed_seconds + sum(s.audio_seconds() for s in self._open)

    def _reading(self) -> _Reading:
        busy = self.scheduler.busy_by_priority
        return _Reading(
            self._clock(),
            self.stream_seconds(),
            self._cpu_seconds() - self._cpu_start,
            busy[Priority.PARTIAL] + busy[Priority.UPLOAD],
            busy[Priority.FINAL],
        )

    def _window_start(self, now: _Reading) -> None:
        """Keep a reading every ``SAMPLE_EVERY`` seconds back to the window's start (the
        latest one at or before it). Readings are taken when admission is asked (each new
        stream, /ready, /status, a metrics scrape): after a quiet spell a slice is longer."""
        if not self._readings or now.at - self._readings[-1].at >= SAMPLE_EVERY:
            self._readings.append(now)
        else:
            self._readings[-1] = now  # the same second: the newest figures stand for it
        while len(self._readings) > 1 and self._readings[1].at <= now.at - CAPACITY_WINDOW:
            self._readings.popleft()

    def capacity(self) -> int | None:
        """How many streams this server can keep up with, from what streams have cost lately.

        A stream costs work that cannot be shed: its VAD, its socket and its finals.
        Partials (skipped when busy) and REST decodes (which wait) are elastic and do not
        count. Two bounds: the process's CPU time less the time of elastic decodes, per
        second of audio received, against the cores; and the time of final decodes against
        the decode workers (the bound that matters when decodes run on a GPU, and the one
        that sees a machine busy with other work: decodes then take longer). Measured over
        the last minute (the median slice, see the module's docstring), else over the whole
        run; None until enough audio has been seen to estimate.
        """
        now = self._reading()
        costs = self._recent_costs(now)
        if now.audio < MIN_OBSERVED_SECONDS or now.final <= 0:
            return None
        if costs is None or costs[0] <= 0:
            costs = _costs(_Reading(now.at, 0.0, 0.0, 0.0, 0.0), now)
        cpu, final = costs
        by_cpu = self.cores * TARGET_UTILIZATION / cpu
        by_workers = self.scheduler.workers * TARGET_UTILIZATION / final if final > 0 else by_cpu
        return max(1, int(min(by_cpu, by_workers) + 1e-9))

    def _recent_costs(self, now: _Reading) -> tuple[float, float] | None:
        """(CPU, final-decode) seconds per second of audio over the last minute: the median
        of its slices', or None when fewer than half the slices saw enough audio."""
        self._window_start(now)
        step = CAPACITY_WINDOW / WINDOW_SLICES
        edges = []
        for i in range(WINDOW_SLICES + 1):
            t = now.at - CAPACITY_WINDOW + i * step
            edges.append(next((r for r in reversed(self._readings) if r.at <= t + 1e-9), self._readings[0]))
        slices = [_costs(a, b) for a, b in zip(edges, edges[1:]) if b.audio - a.audio >= MIN_SLICE_AUDIO]
        if len(slices) < WINDOW_SLICES // 2 or not any(final > 0 for _, final in slices):
            return None
        return statistics.median(c for c, _ in slices), statistics.median(f for _, f in slices)

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
        """Minutes until a slot is expected to free: what ``WAIT`` tells a refused client.

        A slot frees when enough open streams end to bring them under the limit. When a
        stream ends is known only at its time limit (``--max-connection-time``), the latest
        it can end; how long streams here have lasted says when it will more likely: for a
        stream open ``a`` seconds, the median length of the ended streams that lasted
        longer than ``a``, less ``a``. Each open stream is expected to end then (never past
        its time limit, and at its limit when no ended stream outlasted it), and the
        estimate is when the last of the streams that must end has. Before any stream has
        ended this is the time limit alone: an upper bound, not a forecast.
        """
        now = self._clock()
        durations = sorted(self._durations)
        expected = []
        for stream in self._open:
            age = now - stream.opened
            at_limit = self.settings.max_connection_time - age
            longer = [d for d in durations if d > age]
            typical = statistics.median(longer) - age if longer else at_limit
            expected.append(max(0.0, min(typical, at_limit)))
        if not expected:
            return 0.0
        must_end = max(1, min(len(expected), self.active - self.limit() + 1))
        return sorted(expected)[must_end - 1] / 60.0

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
