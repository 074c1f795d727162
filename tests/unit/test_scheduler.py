"""The priority scheduler (pure concurrency, real threads, callables for decodes) and the
pool's choice of its batch size."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from whisper_live.engine.pool import default_max_batch
from whisper_live.engine.scheduler import Priority, Scheduler
from whisper_live.engine.streams import SchedulerBudget


def test_scheduler_keeps_a_worker_for_finals_and_orders_the_rest():
    order: list[str] = []

    def job(name, seconds=0.05):
        def run():
            time.sleep(seconds)
            order.append(name)
            return name

        return run

    async def go():
        sched = Scheduler(workers=2, max_batch=1)
        assert sched.has_room(Priority.PARTIAL)
        first = asyncio.ensure_future(sched.run(job("partial1", 0.3), Priority.PARTIAL))
        await asyncio.sleep(0.02)
        # one of two workers is busy with background work: no room for more of it
        assert not sched.has_room(Priority.PARTIAL) and sched.has_room(Priority.FINAL)
        queued = [
            asyncio.ensure_future(sched.run(job("batch1"), Priority.UPLOAD)),
            asyncio.ensure_future(sched.run(job("batch2"), Priority.UPLOAD)),
            asyncio.ensure_future(sched.run(job("partial2"), Priority.PARTIAL)),
        ]
        cancelled = asyncio.ensure_future(sched.run(job("cancelled"), Priority.UPLOAD))
        final = asyncio.ensure_future(sched.run(job("final"), Priority.FINAL))
        await asyncio.sleep(0)
        cancelled.cancel()
        await final
        assert order == ["final"], "the final ran at once beside the partial"
        assert sched.queue_depth == 3 and sched.running == 1
        await asyncio.gather(first, *queued)
        sched.shutdown()
        return sched

    sched = asyncio.run(go())
    assert order == ["final", "partial1", "partial2", "batch1", "batch2"]
    assert sched.completed == 5 and sched.busy_by_priority[Priority.FINAL] > 0


def test_scheduler_batches_waiting_jobs_of_one_kind_and_never_waits_for_more():
    calls: list[list[str]] = []

    def run_many(items):
        time.sleep(0.1)
        calls.append(list(items))
        if "boom" in items:
            raise RuntimeError("model call failed")
        return [item.upper() for item in items]

    async def go():
        sched = Scheduler(workers=1, max_batch=3)
        submit = lambda item, key, p=Priority.FINAL: asyncio.ensure_future(  # noqa: E731
            sched.run_batchable(run_many, item, key, p)
        )
        alone = submit("first", "k")  # a free worker: runs at once, alone
        await asyncio.sleep(0.02)
        waiting = [submit(name, "k") for name in ("a", "b", "c", "d")]
        other_key = submit("x", "other")
        unbatchable = submit("solo", None)
        partial = submit("p", "k", Priority.PARTIAL)  # same key, other priority: not mixed in
        cancelled = submit("gone", "k")
        await asyncio.sleep(0)
        cancelled.cancel()
        results = await asyncio.gather(alone, *waiting, other_key, unbatchable, partial)
        busy = submit("busy", None)
        await asyncio.sleep(0.02)
        outcomes = await asyncio.gather(busy, submit("boom", "k"), submit("ok", "k"), return_exceptions=True)
        sched.shutdown()
        return sched, results, outcomes

    sched, results, outcomes = asyncio.run(go())
    assert results == ["FIRST", "A", "B", "C", "D", "X", "SOLO", "P"]
    assert calls[:6] == [["first"], ["a", "b", "c"], ["d"], ["x"], ["solo"], ["p"]]
    assert outcomes[0] == "BUSY" and calls[-1] == ["boom", "ok"]
    assert all(isinstance(o, RuntimeError) for o in outcomes[1:]), "a failed call fails each of its jobs"
    assert sched.batch_sizes[Priority.FINAL] == {1: 5, 2: 1, 3: 1} and sched.completed == 11
    assert sched.batch_sizes[Priority.PARTIAL] == {1: 1}


def test_partials_may_wait_for_the_next_batch_but_not_beyond_it():
    async def go():
        sched = Scheduler(workers=2, max_batch=2)
        block = asyncio.ensure_future(sched.run(lambda: time.sleep(0.2), Priority.PARTIAL))
        await asyncio.sleep(0.02)
        assert not sched.has_room(Priority.PARTIAL) and sched.has_batch_room(Priority.PARTIAL)
        queued = [
            asyncio.ensure_future(sched.run_batchable(lambda items: items, i, "k", Priority.PARTIAL))
            for i in range(2)
        ]
        await asyncio.sleep(0)
        assert not sched.has_batch_room(Priority.PARTIAL), "one batch is already waiting"
        assert sched.has_room(Priority.FINAL), "a final still finds the other worker free"
        finals = [asyncio.ensure_future(sched.run(lambda: time.sleep(0.2), Priority.FINAL)) for _ in range(2)]
        await asyncio.sleep(0.02)
        queued[1].cancel()  # room in the next batch again, but a final is waiting
        await asyncio.sleep(0)
        assert sched.queued(Priority.FINAL) == 1 and not sched.has_batch_room(Priority.PARTIAL)
        await asyncio.gather(block, queued[0], *finals)
        sched.shutdown()
        return sched

    assert asyncio.run(go()).batch_sizes[Priority.PARTIAL] == {1: 2}


def test_batching_is_on_by_default_only_where_it_was_measured_to_pay():
    assert default_max_batch("cpu") == 1 and default_max_batch("cuda") == 8


@pytest.mark.parametrize(("max_batch", "partial_while_busy"), [(1, False), (8, True)])
def test_a_sessions_budget_follows_the_scheduler(max_batch, partial_while_busy):
    """Optional decodes run only when they would not wait: a speculative final needs a free
    decoder; a partial may also join a batch that is forming."""

    async def go():
        scheduler = Scheduler(workers=1, max_batch=max_batch)
        budget = SchedulerBudget(scheduler)
        assert budget.allows_partial() and budget.allows_speculative_final()
        release = threading.Event()
        final = asyncio.ensure_future(scheduler.run(release.wait, Priority.FINAL))
        for _ in range(500):
            if scheduler.running:
                break
            await asyncio.sleep(0.01)
        assert not budget.allows_speculative_final()
        assert budget.allows_partial() is partial_while_busy
        release.set()
        await final
        assert budget.allows_partial() and budget.allows_speculative_final()
        scheduler.shutdown()

    asyncio.run(go())
