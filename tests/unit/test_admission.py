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


def test_wait_is_until_the_oldest_stream_reaches_its_time_limit():
    readings = Readings()
    admission = readings.admission(max_clients=2, max_connection_time=600.0)
    assert admission.wait_minutes() == 0.0  # nobody to wait for
    oldest = admission.open(lambda: 0.0)
    readings.now += 100.0
    admission.open(lambda: 0.0)
    readings.now += 60.0
    assert not admission.admits_another()
    assert admission.wait_minutes() == pytest.approx((600.0 - 160.0) / 60.0)
    admission.close(oldest)
    assert admission.wait_minutes() == pytest.approx((600.0 - 60.0) / 60.0)
    readings.now += 1000.0  # past its limit (it is being closed): no negative wait
    assert admission.wait_minutes() == 0.0
