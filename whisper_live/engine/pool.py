"""The one place models live and the one queue every decode waits in.

Streams and REST requests share it: a model is loaded once per (path, device, compute
type), and a fixed number of worker threads run decodes in priority order, so a stream's
final result overtakes its partials and any batch work, and no client can hold a worker
that another is waiting for beyond one decode.

Decodes that can share one model call (fitted windows of similar length, same search:
``decoding.batch_key``) can be batched across streams: a worker that starts one takes the
others of its kind that are already waiting. Nothing waits for a batch to fill, so at
light load every decode runs alone, and under load a queue turns into fewer, larger calls.
By default that is on for GPUs only (``default_max_batch``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

import numpy as np

from ..core.decodes import DecodeOptions, DecodeResult
from . import models
from .decoding import batch_key, run_decodes

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    """

    def __init__(self, workers: int, batch_slots: int | None = None, max_batch: int = 8):
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


def default_max_batch(device: str) -> int:
    """Batch across streams only where it pays. On a GPU a batch of decodes costs about what
    one does. On a CPU it was measured (docs/BENCHMARKS.md, 16 and 32 streams on 2 cores):
    generate alone runs 1.7-2.4x faster batched, but in the running server finals came out
    slower, batched partials staler and memory ~100 MB higher, so there it is off."""
    import ctranslate2

    on_gpu = device == "cuda" or (device == "auto" and ctranslate2.get_cuda_device_count() > 0)
    return 8 if on_gpu else 1


@dataclass
class LoadedModel:
    info: models.ModelInfo
    model: Any  # faster_whisper.WhisperModel
    device: str
    compute_type: str

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def multilingual(self) -> bool:
        return self.info.multilingual


class ModelPool:
    """Loaded models keyed by (path, device, compute type), plus the shared scheduler."""

    def __init__(
        self,
        default_model: str = models.DEFAULT_MODEL,
        device: str = "cpu",
        compute_type: str = "int8",
        workers: int | None = None,
        cpu_threads: int | None = None,
        allowed_models: list[str] | None = None,
        max_batch: int = 0,
    ):
        self.default_model = default_model
        self.device = device
        self.compute_type = compute_type
        self.workers = workers or os.cpu_count() or 1
        # Several single-threaded replicas beat one multi-threaded model on a small CPU:
        # Whisper's step-by-step decoding does not scale across threads, and a final
        # never has to wait behind another stream's partial.
        self.cpu_threads = cpu_threads or max(1, (os.cpu_count() or 1) // self.workers)
        self.allowed_models = allowed_models
        self.scheduler = Scheduler(self.workers, max_batch=max_batch or default_max_batch(device))
        self._models: dict[tuple[str, str, str], LoadedModel] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str | None) -> models.ModelInfo:
        name = name or self.default_model
        if self.allowed_models is not None and name not in self.allowed_models and name != self.default_model:
            raise models.ModelNotFound(
                f"model {name!r} is not offered by this server; choose one of "
                + ", ".join(dict.fromkeys([self.default_model, *self.allowed_models]))
            )
        return models.resolve(name)

    def get(
        self, name: str | None = None, compute_type: str | None = None, device: str | None = None
    ) -> LoadedModel:
        """Load (once) and return a model; blocking, so call it off the event loop.

        ``compute_type`` and ``device`` default to the server's; a request may ask for
        another variant (e.g. float32 weights of the same model), loaded once beside it.
        """
        info = self.resolve(name)
        device, compute_type = device or self.device, compute_type or self.compute_type
        key = (info.path, device, compute_type)
        with self._lock:
            loaded = self._models.get(key)
            if loaded is None:
                from faster_whisper import WhisperModel

                started = time.monotonic()
                model = WhisperModel(
                    info.path,
                    device=device,
                    compute_type=compute_type,
                    cpu_threads=self.cpu_threads,
                    num_workers=self.workers,
                )
                loaded = LoadedModel(info, model, device, compute_type)
                self._models[key] = loaded
                log.info(
                    "loaded %s (%s %s) from %s in %.1fs",
                    info.name,
                    device,
                    compute_type,
                    info.path,
                    time.monotonic() - started,
                )
            return loaded

    async def acquire(
        self, name: str | None = None, compute_type: str | None = None, device: str | None = None
    ) -> LoadedModel:
        info = self.resolve(name)
        key = (info.path, device or self.device, compute_type or self.compute_type)
        if key in self._models:
            return self._models[key]
        return await asyncio.get_running_loop().run_in_executor(None, self.get, name, compute_type, device)

    def loaded(self) -> list[LoadedModel]:
        return list(self._models.values())

    def unload(self, name: str) -> bool:
        """Drop every loaded variant (device, compute type) of a model; False if none was."""
        with self._lock:
            keys = [k for k, m in self._models.items() if name in (m.name, m.info.path)]
            for key in keys:
                del self._models[key]
        return bool(keys)

    async def decode(
        self, model: LoadedModel, audio: np.ndarray, options: DecodeOptions, priority: Priority
    ) -> DecodeResult:
        def run_many(items: list[tuple[np.ndarray, DecodeOptions]]) -> list[DecodeResult]:
            return run_decodes(model.model, [a for a, _ in items], [o for _, o in items])

        # The key tokenizes the prompt, on the event loop: only worth it where batches form.
        key = batch_key(model.model, audio, options) if self.scheduler.max_batch > 1 else None
        if key is not None:
            key = (id(model), *key)
        return await self.scheduler.run_batchable(run_many, (audio, options), key, priority)

    def status(self) -> dict:
        return {
            "models": [m.name for m in self.loaded()],
            "workers": self.workers,
            "running": self.scheduler.running,
            "queue_depth": self.scheduler.queue_depth,
            "queued": {p.name.lower(): self.scheduler.queued(p) for p in Priority},
            "batch_sizes": {
                p.name.lower(): dict(sorted(c.items())) for p, c in self.scheduler.batch_sizes.items()
            },
        }

    def close(self) -> None:
        self.scheduler.shutdown()
