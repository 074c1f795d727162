"""The one queue every decode waits in: a priority queue in front of a fixed pool of threads.

Pure concurrency: it runs callables and knows no model, so a stream's final result
overtakes its partials and any upload work, and no client can hold a worker that another
is waiting for beyond one decode.

Jobs that can share one call (the caller gives them the same ``key``) can be batched: a
worker that starts one takes the others of its kind that are already waiting. Nothing
waits for a batch to fill, so at light load every job runs alone, and under load a queue
turns into fewer, larger calls. How large (``max_batch``) is the caller's choice: it
depends on the device, which this module does not know (``pool.default_max_batch``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Priority(IntEnum):
    FINAL = 0  # a stream's utterance just ended: someone is waiting for it
    PARTIAL = 1  # a refresh of text already on screen
    UPLOAD = 2  # REST uploads: throughput, not latency


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    run_many: Callable[[list[Any]], list[Any]] = field(compare=False)  # items -> results, in order
    item: Any = field(compare=False)
    future: asyncio.Future = field(compare=False)
    key: Hashable | None = field(compare=False, default=None)  # None: never batched


class Scheduler:
    """Priority queue in front of a fixed pool of decode threads.

    Within a priority jobs run first come, first served. Work nobody waits for right now
    (partials, batch) may hold at most ``workers - 1`` threads, so a stream's final never
    waits behind it: it finds a free worker or waits only for another final. Partials are
    offered, not queued (``has_room``), except that while their slot is busy up to one
    batch of them may wait to run together: under load a stream shows fewer refreshes
    instead of a backlog of stale ones, and never fewer finals.

    ``max_batch`` is how many jobs may share one call (1: none do). It has no default here:
    the one default is the pool's, which knows the device.
    """

    def __init__(self, workers: int, *, max_batch: int, batch_slots: int | None = None):
        self.workers = max(1, workers)
        self.max_batch = max(1, max_batch)
        self.background_slots = max(1, self.workers - 1)
        self.batch_slots = max(1, min(batch_slots or self.background_slots, self.background_slots))
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="decode")
        self._queue: list[_Job] = []
        self._seq = itertools.count()
        self._running = 0
        self._running_background = 0
        self._running_batch = 0
        self.completed = 0
        self.busy_seconds = 0.0
        self.busy_by_priority = dict.fromkeys(Priority, 0.0)
        # per priority: batch size -> how many model calls ran with it
        self.batch_sizes: dict[Priority, Counter[int]] = {p: Counter() for p in Priority}
        # Called on the loop after every model call with (priority, seconds, jobs in the call):
        # metrics and benchmarks watch decodes here without the scheduler knowing them.
        self.observers: list[Callable[[Priority, float, int], None]] = []

    @property
    def queue_depth(self) -> int:
        return sum(1 for job in self._queue if not job.future.done())

    @property
    def running(self) -> int:
        return self._running

    def queued(self, priority: Priority) -> int:
        return sum(1 for j in self._queue if j.priority == priority and not j.future.done())

    def has_room(self, priority: Priority) -> bool:
        """Would a job of this priority start now rather than wait?"""
        if priority == Priority.FINAL:
            return self._running < self.workers and self.queued(Priority.FINAL) == 0
        return (
            self._running < self.workers
            and self._running_background < self.background_slots
            and self.queued(Priority.FINAL) == 0
            and self.queued(priority) == 0
        )

    def has_batch_room(self, priority: Priority) -> bool:
        """Would a batchable job of this priority start now, or join the next batch?"""
        return self.has_room(priority) or (
            self.max_batch > 1
            and priority != Priority.UPLOAD
            and self.queued(Priority.FINAL) == 0
            and self.queued(priority) < self.max_batch
        )

    async def run(self, fn: Callable[[], T], priority: Priority) -> T:
        """Run blocking ``fn`` on a worker when its turn comes; cancel to drop it unqueued."""
        return await self.run_batchable(lambda items: [fn()], None, None, priority)

    async def run_batchable(
        self, run_many: Callable[[list[Any]], list[T]], item: Any, key: Hashable | None, priority: Priority
    ) -> T:
        """Run ``run_many([item, ...])`` on a worker, together with other waiting jobs of the
        same priority and ``key`` (None: alone); cancel to drop it unqueued."""
        job = _Job(
            int(priority), next(self._seq), run_many, item, asyncio.get_running_loop().create_future(), key
        )
        heapq.heappush(self._queue, job)
        self._dispatch()
        return await job.future

    def _dispatch(self) -> None:
        deferred = []
        while self._queue and self._running < self.workers:
            job = heapq.heappop(self._queue)
            if job.future.done():  # cancelled while waiting
                continue
            if job.priority != Priority.FINAL and (
                self._running_background >= self.background_slots
                or (job.priority == Priority.UPLOAD and self._running_batch >= self.batch_slots)
            ):
                deferred.append(job)
                continue
            self._start([job, *self._companions(job)])
        for job in deferred:
            heapq.heappush(self._queue, job)

    def _companions(self, job: _Job) -> list[_Job]:
        """Take the waiting jobs that can share ``job``'s call, oldest first."""
        if job.key is None or self.max_batch == 1:
            return []
        same = sorted(
            j for j in self._queue if j.key == job.key and j.priority == job.priority and not j.future.done()
        )[: self.max_batch - 1]
        if same:
            taken = {id(j) for j in same}
            self._queue = [j for j in self._queue if id(j) not in taken]
            heapq.heapify(self._queue)
        return same

    def _start(self, jobs: list[_Job]) -> None:
        job = jobs[0]
        priority = Priority(job.priority)
        background = priority != Priority.FINAL
        is_batch = priority == Priority.UPLOAD
        self._running += 1
        self._running_background += background
        self._running_batch += is_batch
        loop = asyncio.get_running_loop()
        started = time.monotonic()

        def finished(done: asyncio.Future) -> None:
            elapsed = time.monotonic() - started
            self._running -= 1
            self._running_background -= background
            self._running_batch -= is_batch
            self.completed += len(jobs)
            self.busy_seconds += elapsed
            self.busy_by_priority[priority] += elapsed
            self.batch_sizes[priority][len(jobs)] += 1
            for observe in self.observers:
                try:
                    observe(priority, elapsed, len(jobs))
                except Exception:  # a broken observer must not leave the jobs unanswered
                    log.exception("decode observer %r failed", observe)
            results = done.result() if not done.cancelled() and done.exception() is None else None
            for i, each in enumerate(jobs):
                if each.future.done():
                    continue
                if done.cancelled():
                    each.future.cancel()
                elif results is None:
                    each.future.set_exception(done.exception())
                else:
                    each.future.set_result(results[i])
            self._dispatch()

        items = [each.item for each in jobs]
        loop.run_in_executor(self._executor, job.run_many, items).add_done_callback(finished)

    def shutdown(self) -> None:
        for job in self._queue:
            job.future.cancel()
        self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
