"""The benchmarks' live-source pacing: no sample leaves before it exists, and no drift.

A frame covering [t, t+d) of the stream may be sent at t+d after the stream started and
not before; every latency the benchmarks report rests on that.
"""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
import websockets
from harness import evaluation as ev

from whisper_live.core.pcm import SAMPLE_RATE


class FakeClock:
    """A clock whose sleeps wake ``error`` seconds late (negative: early)."""

    def __init__(self, error: float = 0.0):
        self.now = 0.0  # the stream starts at 0, so times compare exactly with deadlines
        self.error = error
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps += 1
        self.now += max(delay + self.error, 1e-6)


def _run(n_samples: int, frame: int, clock: FakeClock, speed: float = 1.0) -> list[tuple[int, int, float]]:
    async def collect():
        start = clock()
        out = []
        async for first, end in ev.paced(
            n_samples, frame, speed=speed, start=start, clock=clock, sleep=clock.sleep
        ):
            out.append((first, end, clock() - start))
        return out

    return asyncio.run(collect())


@pytest.mark.parametrize("frame", [ev.FRAME_100MS, ev.FRAME_WHISPERLIVE])
def test_frames_cover_the_audio_once_in_order(frame):
    n = 10 * SAMPLE_RATE + 123  # a partial last frame
    sent = _run(n, frame, FakeClock())
    assert sent[0][0] == 0 and sent[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(sent, sent[1:], strict=False))
    assert all(end - first == frame for first, end, _ in sent[:-1])
    assert sent[-1][1] - sent[-1][0] == n % frame


@pytest.mark.parametrize("error", [0.0, 0.004, -0.003])
@pytest.mark.parametrize("frame", [ev.FRAME_100MS, ev.FRAME_WHISPERLIVE])
def test_no_sample_is_sent_before_it_exists(frame, error):
    # sleeps that wake late, on time, or early: each frame leaves only once its last sample
    # exists, i.e. at (end sample) / rate after the start, and the first frame not at 0
    for first, end, at in _run(30 * SAMPLE_RATE, frame, FakeClock(error)):
        assert at >= end / SAMPLE_RATE, (first, end, at)
    first_frame = _run(30 * SAMPLE_RATE, frame, FakeClock())[0]
    assert first_frame[2] == pytest.approx(frame / SAMPLE_RATE)


def test_late_wake_ups_do_not_accumulate():
    # 10 minutes of 100 ms frames with every sleep 5 ms late: a pacer that slept one frame
    # after the previous send would end 30 s behind; deadlines from the start stay 5 ms late
    sent = _run(600 * SAMPLE_RATE, ev.FRAME_100MS, FakeClock(error=0.005))
    lateness = [at - end / SAMPLE_RATE for _, end, at in sent]
    assert max(lateness) == pytest.approx(0.005, abs=1e-6)
    assert lateness[-1] == pytest.approx(lateness[0], abs=1e-6)


def test_a_stalled_sender_catches_up_then_keeps_the_schedule():
    clock = FakeClock()

    async def collect():
        out = []
        async for _first, end in ev.paced(
            4 * SAMPLE_RATE, ev.FRAME_100MS, start=0.0, clock=clock, sleep=clock.sleep
        ):
            out.append((end, clock()))
            if end == ev.FRAME_100MS:
                clock.now += 1.0  # the consumer blocked for 1 s after sending the first frame
        return out

    sent = asyncio.run(collect())
    assert sent[0] == (1600, pytest.approx(0.1))
    # the ten frames whose audio appeared during the stall go out at once ...
    assert [end for end, at in sent if at == pytest.approx(1.1)] == list(range(3200, 17601, 1600))
    # ... and the rest on their own deadlines, none ahead of time
    assert all(at >= end / SAMPLE_RATE for end, at in sent)
    assert [at for end, at in sent[11:]] == pytest.approx([end / SAMPLE_RATE for end, _ in sent[11:]])


def test_speed_scales_the_schedule_and_zero_sends_at_once():
    sent = _run(2 * SAMPLE_RATE, ev.FRAME_WHISPERLIVE, FakeClock(), speed=4.0)
    assert [at for *_, at in sent] == pytest.approx([end / SAMPLE_RATE / 4 for _, end, _ in sent])
    clock = FakeClock()
    assert [at for *_, at in _run(2 * SAMPLE_RATE, ev.FRAME_WHISPERLIVE, clock, speed=0)] == [0.0] * 8
    assert clock.sleeps == 0


def test_parse_frame():
    assert ev.parse_frame("4096") == ev.FRAME_WHISPERLIVE == 4096
    assert ev.parse_frame("100ms") == ev.FRAME_100MS == 1600
    assert ev.parse_frame("256ms") == 4096
    with pytest.raises(ValueError):
        ev.parse_frame("0")


def test_stream_on_a_real_socket_never_sends_audio_ahead_of_time():
    """``stream`` over a real WebSocket with the real clock: a recording peer checks that,
    by each message's arrival, no more audio has come than had existed since SERVER_READY."""
    frame = ev.FRAME_WHISPERLIVE
    audio = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
    received: list[tuple[float, int]] = []  # (arrival, bytes)
    ready_at: list[float] = []

    async def peer(ws):
        json.loads(await ws.recv())
        ready_at.append(time.monotonic())
        await ws.send(json.dumps({"uid": "x", "message": "SERVER_READY", "backend": "test"}))
        async for message in ws:
            if message == b"END_OF_AUDIO":
                break
            received.append((time.monotonic(), len(message)))

    async def main():
        async with websockets.serve(peer, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            return await ev.stream(f"ws://127.0.0.1:{port}", audio, frame=frame, timeout=30)

    trace = asyncio.run(main())
    assert trace.status("SERVER_READY")
    assert sum(n for _, n in received) == 2 * len(audio)
    assert [n for _, n in received[:-1]] == [2 * frame] * (len(received) - 1)
    total = 0
    for arrival, n in received:
        total += n // 2
        assert arrival - ready_at[0] >= total / SAMPLE_RATE, (total, arrival - ready_at[0])
    # and not much later either: the last frame leaves when the audio ends (generous margin)
    assert received[-1][0] - ready_at[0] < len(audio) / SAMPLE_RATE + 0.5
