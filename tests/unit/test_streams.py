"""StreamRunner's error paths (a final retried once, then reported) and its Outbox, with a
scripted decoder: no model. The same paths over a real socket: tests/integration/test_faults.py."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from test_session import SILENCE, LevelVad, audio, result

from whisper_live.core.events import AudioLost, SegmentsChanged
from whisper_live.core.options import SessionOptions
from whisper_live.core.session import StreamingSession
from whisper_live.core.transcript import StreamSegment
from whisper_live.engine.scheduler import Priority
from whisper_live.engine.streams import Outbox, StreamRunner


class FlakyPool:
    """Decodes finals with a script of failures: ``failures`` finals raise before any succeeds."""

    def __init__(self, failures: int):
        self.failures = failures
        self.calls: list[Priority] = []
        self.scheduler = self  # SchedulerBudget asks the scheduler for room

    def has_room(self, priority) -> bool:
        return False  # no speculative finals: one final per utterance, at its endpoint

    def has_batch_room(self, priority) -> bool:
        return False  # no partials

    async def decode(self, model, audio, options, priority):
        self.calls.append(priority)
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("worker crashed")
        return result(" Hello there.")


def run(failures: int) -> tuple[FlakyPool, list]:
    pool = FlakyPool(failures)

    async def go():
        session = StreamingSession(SessionOptions(language="en"), vad=LevelVad())
        runner = StreamRunner(session, pool, model=None)
        runner.feed(np.concatenate([audio(20), audio(40, SILENCE)]))
        runner.end()
        await asyncio.wait_for(runner.finished(), 5)
        events = []
        while runner.events.qsize():
            events.append(await runner.events.get())
        return events

    return pool, asyncio.run(go())


def completed(events) -> list[str]:
    updates = [e for e in events if isinstance(e, SegmentsChanged)]
    return [s.text for s in updates[-1].segments if s.completed] if updates else []


def test_a_final_that_fails_once_is_retried_and_delivered():
    pool, events = run(failures=1)
    assert pool.calls == [Priority.FINAL, Priority.FINAL]
    assert completed(events) == [" Hello there."]
    assert not [e for e in events if isinstance(e, AudioLost)]


def test_a_final_that_fails_twice_is_reported_lost_not_dropped_in_silence():
    pool, events = run(failures=2)
    assert pool.calls == [Priority.FINAL, Priority.FINAL]  # once more, not forever
    (lost,) = [e for e in events if isinstance(e, AudioLost)]
    assert lost.start == 0.0 and lost.end == pytest.approx(20 * 512 / 16000)
    assert "worker crashed" in lost.reason
    assert completed(events) == []


def segs(*texts: str, partial: str | None = None) -> list[StreamSegment]:
    out = [StreamSegment(i, i + 1, t, True) for i, t in enumerate(texts)]
    return out + ([StreamSegment(len(texts), len(texts) + 1, partial, False)] if partial else [])


def drain(outbox: Outbox) -> list:
    async def go():
        return [await outbox.get() for _ in range(outbox.qsize())]

    return asyncio.run(go())


def test_the_outbox_drops_stale_partials_and_keeps_every_final():
    outbox = Outbox()
    outbox.put_nowait(SegmentsChanged(segs(partial="he"), []))
    outbox.put_nowait(SegmentsChanged(segs(partial="hello"), []))
    assert outbox.qsize() == 1  # the first partial is stale: replaced
    outbox.put_nowait(SegmentsChanged(segs("A", "B"), [1.0, 2.0], completed_added=2))
    outbox.put_nowait(SegmentsChanged(segs("A", "B", partial="c"), [], completed_added=0))
    assert outbox.qsize() == 1  # still shows A and B: the final's update may go
    outbox.put_nowait(SegmentsChanged(segs("A", "B", "C"), [3.0], completed_added=1))
    (only,) = drain(outbox)  # shows all three finals: one update says it all
    assert only.completed_added == 3 and only.speech_ended == [1.0, 2.0, 3.0]
    # With only the last segment shown (send_last_n_segments=1), a final's update may not be
    # replaced by one that no longer shows it.
    short = Outbox()
    short.put_nowait(SegmentsChanged(segs("A"), [1.0], completed_added=1))
    short.put_nowait(SegmentsChanged(segs("B"), [2.0], completed_added=1))
    short.put_nowait(SegmentsChanged(segs("B", partial="c"), [], completed_added=0))
    first, second = drain(short)
    assert [s.text for s in first.segments] == ["A"] and first.speech_ended == [1.0]
    assert [s.text for s in second.segments] == ["B", "c"] and second.speech_ended == [2.0]


def test_the_outbox_keeps_other_events_in_order_and_ends_with_none():
    outbox = Outbox()
    lost = AudioLost(1.0, 2.0, "x")
    outbox.put_nowait(SegmentsChanged(segs(partial="a"), []))
    outbox.put_nowait(lost)
    outbox.put_nowait(SegmentsChanged(segs(partial="b"), []))
    outbox.put_nowait(None)
    items = drain(outbox)
    assert items[1] is lost and items[-1] is None and len(items) == 4


def test_the_outbox_wakes_a_waiting_sender():
    async def go():
        outbox = Outbox()
        waiter = asyncio.create_task(outbox.get())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        outbox.put_nowait(None)
        return await asyncio.wait_for(waiter, 1)

    assert asyncio.run(go()) is None
