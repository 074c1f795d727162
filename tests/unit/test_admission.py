"""Admission as a unit: clocks, CPU readings and the scheduler's busy times are injected, and
only its public methods are used (what a face calls, what /status reads)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from whisper_live.engine.admission import Admission
from whisper_live.engine.scheduler import Priority
from whisper_live.settings import ServerSettings


class Readings:
    """A stand-in process: its CPU seconds, a monotonic clock, and a scheduler's busy times."""

    def __init__(self, cpu: float = 10.0, workers: int = 2):
        self.cpu = cpu
        self.now = 1000.0
        self.scheduler = SimpleNamespace(workers=workers, busy_by_priority=dict.fromkeys(Priority, 0.0))

    def admission(self, **settings) -> Admission:
        return Admission(
            self.scheduler,
            ServerSettings(**settings),
            cpu_seconds=lambda: self.cpu,
            clock=lambda: self.now,
            cores=2,
        )


def test_capacity_estimate_counts_what_a_stream_cannot_shed():
    readings = Readings(cpu=10.0)  # 10 CPU seconds spent before streams (model loading)
    admission = readings.admission(max_clients=100)
    assert admission.capacity() is None and admission.admits_another()  # nothing measured yet
    admission.close(admission.open(lambda: 600.0))  # ten minutes of audio served ...
    busy = readings.scheduler.busy_by_priority
    busy[Priority.FINAL] = 30.0  # ... cost half a minute of finals,
    busy[Priority.PARTIAL] = 200.0  # a lot of partials (elastic: not counted),
    readings.cpu = 10.0 + 30.0 + 200.0 + 30.0  # and half a minute of VAD and sockets
    assert admission.capacity() == 14  # 2 cores * 0.7 / (60 s / 600 s)
    readings.cpu = 10.0 + 30.0 + 200.0  # CPU that does not even cover the decodes: finals still count
    assert admission.capacity() == 28  # 2 * 0.7 / (30 / 600)
    readings.scheduler.workers = 1  # one decoder: finals alone fill 0.05 of it per stream
    assert admission.capacity() == 14
    admission.settings = ServerSettings(max_clients=3)
    assert admission.admits_another()


def test_cpu_before_measuring_starts_is_no_streams_cost():
    readings = Readings(cpu=0.0)
    admission = readings.admission(max_clients=100)
    readings.cpu = 500.0  # loading models after the admission was built
    admission.started()
    admission.close(admission.open(lambda: 600.0))
    readings.scheduler.busy_by_priority[Priority.FINAL] = 30.0
    readings.cpu += 60.0
    assert admission.capacity() == 14  # as if the 500 s had never been spent


def test_the_limit_is_the_lower_of_max_clients_and_capacity():
    readings = Readings(cpu=10.0)
    admission = readings.admission(max_clients=16)
    readings.scheduler.busy_by_priority[Priority.FINAL] = 30.0
    readings.cpu += 60.0  # 600 s of audio at this cost: capacity 14 (see above)
    streams = [admission.open(lambda: 600.0 / 13) for _ in range(13)]
    assert admission.capacity() == 14 and admission.active == 13 and admission.admits_another()
    streams.append(admission.open(lambda: 0.0))
    assert not admission.admits_another(), "14 open streams fill a capacity of 14"
    status = admission.status()  # what /ready's 503 and /status say, from the same figures
    assert (status["stream_limit"], status["free_streams"], status["admits_new_streams"]) == (14, 0, False)
    admission.settings.capacity_admission = False  # only max_clients counts
    assert admission.admits_another()
    streams += [admission.open(lambda: 0.0) for _ in range(2)]
    assert not admission.admits_another(), "16 open streams fill max_clients"
    admission.close(streams.pop())
    assert admission.active == 15 and admission.admits_another()
    admission.close(streams[0])
    admission.close(streams[0])  # closing twice frees one slot and counts its audio once
    assert admission.active == 14 and admission.stream_seconds() == pytest.approx(600.0)


def test_open_streams_audio_counts_as_it_arrives_and_stays_after_they_close():
    readings = Readings()
    admission = readings.admission(max_clients=4)
    received = {"a": 0.0, "b": 0.0}
    a = admission.open(lambda: received["a"])
    admission.open(lambda: received["b"])
    assert admission.stream_seconds() == 0.0
    received.update(a=90.0, b=40.0)
    assert admission.stream_seconds() == 130.0
    admission.close(a)
    received["a"] = 1e6  # what a closed stream says later no longer matters
    assert admission.stream_seconds() == 130.0
    assert admission.status() == {
        "active_streams": 1,
        "max_clients": 4,
        "capacity_estimate": None,
        "capacity_admission": admission.settings.capacity_admission,
        "stream_limit": 4,
        "free_streams": 3,
        "starting": True,  # until the server has loaded its model: /ready says 503
        "draining": False,
        "admits_new_streams": True,
    }
    admission.started()
    assert not admission.status()["starting"]


def test_no_new_stream_once_shutdown_began_while_open_ones_run_on():
    admission = Readings().admission(max_clients=4)
    running = admission.open(lambda: 0.0)
    assert admission.admits_another()
    admission.stop_admitting()
    assert not admission.admits_another() and admission.status()["draining"]
    assert not admission.status()["admits_new_streams"]
    admission.close(running)
    assert not admission.admits_another()


def test_wait_without_history_is_the_time_limit_then_how_long_streams_last():
    readings = Readings()
    admission = readings.admission(max_clients=2, max_connection_time=600.0)
    assert admission.wait_minutes() == 0.0  # nobody to wait for
    oldest = admission.open(lambda: 0.0)
    readings.now += 100.0
    admission.open(lambda: 0.0)
    readings.now += 60.0
    assert not admission.admits_another()
    # no stream has ended yet: only the time limit is known (an upper bound)
    assert admission.wait_minutes() == pytest.approx((600.0 - 160.0) / 60.0)
    admission.close(oldest)  # it lasted 160 s
    third = admission.open(lambda: 0.0)
    assert not admission.admits_another()
    # the 60 s old one is expected to last as long as the one that ended: 100 s more;
    # the new one too (160 s): the first of them frees the slot
    assert admission.wait_minutes() == pytest.approx(100.0 / 60.0)
    readings.now += 200.0  # both outlived every stream seen: back to their time limits
    assert admission.wait_minutes() == pytest.approx((600.0 - 260.0) / 60.0)
    readings.now += 1000.0  # past its limit (it is being closed): no negative wait
    assert admission.wait_minutes() == 0.0
    admission.close(third)


def test_wait_counts_the_streams_that_must_end_when_capacity_is_the_limit():
    readings = Readings()
    admission = readings.admission(max_clients=5, max_connection_time=600.0)
    for lasted in (30.0, 40.0, 50.0):
        stream = admission.open(lambda: 0.0)
        readings.now += lasted
        admission.close(stream)
    open_now = [admission.open(lambda: 0.0) for _ in range(5)]
    readings.now += 10.0
    assert admission.wait_minutes() == pytest.approx(30.0 / 60.0)  # median of 30/40/50 less 10
    admission.limit = lambda: 3  # measured capacity 3: three of the five must end first
    assert admission.wait_minutes() == pytest.approx(30.0 / 60.0)  # all equally old: all at once
    assert len(open_now) == 5


def _run(
    admission: Admission, readings: Readings, seconds: int, streams: int, final: float, cpu: float
) -> list:
    """``streams`` real-time streams for ``seconds``: each second of each stream's audio costs
    ``final`` seconds of final decodes and ``cpu`` CPU seconds in all; admission asked every second."""
    received = readings.received
    capacities = []
    for _ in range(seconds):
        readings.now += 1.0
        received[0] += streams
        readings.scheduler.busy_by_priority[Priority.FINAL] += streams * final
        readings.cpu += streams * cpu
        capacities.append(admission.capacity())
    return capacities


def _steady(streams: int = 4) -> tuple[Admission, Readings]:
    readings = Readings(cpu=0.0)
    admission = readings.admission(max_clients=100)
    admission.started()
    readings.received = [0.0]
    admission.open(lambda: readings.received[0])
    _run(admission, readings, 300, streams, final=0.05, cpu=0.1)  # five minutes at a steady cost
    return admission, readings


def test_capacity_ignores_a_blip():
    """Five seconds in which every second of audio cost ten times as much (a burst of
    finals, another process grabbing the cores) move the estimate by a few percent."""
    admission, readings = _steady()
    before = admission.capacity()
    assert before == 14  # 2 cores * 0.7 / 0.1 CPU s per audio s
    during = _run(admission, readings, 5, 4, final=0.5, cpu=1.0)
    after = _run(admission, readings, 10, 4, final=0.05, cpu=0.1)
    assert set(during + after) == {before}, (during, after)
    _run(admission, readings, 60, 4, final=0.05, cpu=0.1)
    assert admission.capacity() == before  # the blip has left the window


def test_capacity_follows_a_machine_that_stays_busy_within_a_minute():
    """When every second of audio costs twice as much from now on (decodes take longer on a
    machine now busy with other work), the estimate halves within a minute; the whole
    run's average would still say 40 % more."""
    admission, readings = _steady()
    assert admission.capacity() == 14
    later = _run(admission, readings, 65, 4, final=0.1, cpu=0.2)
    assert later[-1] == 7, later[-5:]
    assert later[10] > 7  # a few seconds in, it has only begun to move


def test_capacity_falls_back_to_the_whole_run_when_the_last_minute_is_quiet():
    admission, readings = _steady()
    _run(admission, readings, 120, 0, final=0.0, cpu=0.0)  # two minutes without audio
    assert admission.capacity() == 14  # from the whole run: nothing recent to measure
