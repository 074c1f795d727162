"""The one place models live, and the scheduler every decode goes through.

Streams and REST requests share it: a model name is resolved to a directory once, a model
is loaded once per (path, device, compute type), and its decodes run on the shared
``Scheduler`` in priority order. Resolving and loading touch the disk (the bundled
``base`` is joined from two ~70 MB halves, the vocabulary is parsed to tell an English-only
model), so the first request for a name does that on a worker thread; later requests are
dict lookups on the event loop.

Decodes that can share one model call (fitted windows of similar length, same search:
``decoding.batch_key``) can be batched across streams by the scheduler. By default that is
on for GPUs only (``default_max_batch``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.decodes import DecodeOptions, DecodeResult
from ..errors import ModelLoadFailed
from . import models
from .decoding import batch_key, run_decodes
from .scheduler import Priority, Scheduler

log = logging.getLogger(__name__)


@functools.cache
def one_blas_thread() -> None:
    """Keep numpy's BLAS to one thread, for the whole process, before the first decode.

    Every decode's log-mel features are a matrix product in numpy (faster-whisper's
    ``FeatureExtractor``), and the speaker encoder's LSTM is numpy too. The OpenBLAS that
    numpy ships starts a thread per core for each product and lets them spin, waiting for
    the next one, long after it is done: on 2 cores at 16 streams that spinning was a third
    of the server's CPU (perf, docs/BENCHMARKS.md "Where a stream's CPU goes"), taken from
    the decoders. The server's parallelism is the scheduler's workers; one BLAS thread
    inside each is what the cores can hold.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


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
    """Loaded models keyed by (path, device, compute type), plus the shared scheduler.

    ``resolver`` turns a name into a directory (``models.resolve``) and ``loader`` builds
    the model object for one on a device and compute type (faster-whisper; the pool's own
    unless a request asks for another variant, e.g. float32 weights); both are blocking and
    run once per name and per directory respectively, off the event loop when reached
    through ``acquire`` or ``describe``. Tests pass stand-ins. The pool serves one event loop.
    """

    def __init__(
        self,
        default_model: str = models.DEFAULT_MODEL,
        device: str = "cpu",
        compute_type: str = "int8",
        workers: int | None = None,
        cpu_threads: int | None = None,
        allowed_models: list[str] | None = None,
        max_batch: int = 0,
        aliases: dict[str, str] | None = None,
        resolver: Callable[[str], models.ModelInfo] = models.resolve,
        loader: Callable[[models.ModelInfo, str, str], Any] | None = None,
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
        # Names clients send for another model (``--model-alias``); ``whisper-1``, the name
        # OpenAI's SDK sends, is the default model on every face.
        self.aliases = {models.OPENAI_DEFAULT_MODEL: default_model, **(aliases or {})}
        # 0 means "what suits the device": the one place that default is chosen.
        self.scheduler = Scheduler(self.workers, max_batch=max_batch or default_max_batch(device))
        self._resolver = resolver
        self._loader = loader or self._load_whisper
        self._infos: dict[str, models.ModelInfo] = {}  # requested name -> where it points
        self._models: dict[tuple[str, str, str], LoadedModel] = {}
        # first acquires in flight, by (name, device, compute type)
        self._loading: dict[tuple[str, str, str], asyncio.Future[LoadedModel]] = {}
        self._resolve_lock = threading.Lock()
        self._lock = threading.Lock()

    def _offered(self, name: str | None) -> str:
        """The name to serve (the default for None, an alias's model), if this server offers
        it; no I/O."""
        name = self.aliases.get(name, name) if name else self.default_model
        if self.allowed_models is not None and name not in self.allowed_models and name != self.default_model:
            raise models.ModelNotFound(
                f"model {name!r} is not offered by this server; choose one of "
                + ", ".join(dict.fromkeys([self.default_model, *self.allowed_models, *self.aliases]))
                + (f" ({hint})" if (hint := models.not_installed_hint(name)) else "")
            )
        return name

    def resolve(self, name: str | None) -> models.ModelInfo:
        """Where a name points, resolved once per name (a failure is not remembered: a
        directory may appear, a download may become possible). The first call for a name
        touches the disk, so on the event loop use ``describe``."""
        name = self._offered(name)
        info = self._infos.get(name)
        if info is None:
            with self._resolve_lock:  # two threads asking for a new name resolve it once
                info = self._infos.get(name)
                if info is None:
                    info = self._infos[name] = self._resolver(name)
        return info

    async def describe(self, name: str | None) -> models.ModelInfo:
        """``resolve`` for the event loop: a known name is a lookup, a new one resolves on a thread."""
        name = self._offered(name)
        return self._infos.get(name) or await asyncio.to_thread(self.resolve, name)

    def _variant(self, compute_type: str | None, device: str | None) -> tuple[str, str]:
        return device or self.device, compute_type or self.compute_type

    def _key(self, info: models.ModelInfo, variant: tuple[str, str] | None = None) -> tuple[str, str, str]:
        return (info.path, *(variant or (self.device, self.compute_type)))

    def _load_whisper(self, info: models.ModelInfo, device: str, compute_type: str) -> Any:
        from faster_whisper import WhisperModel

        one_blas_thread()
        return WhisperModel(
            info.path,
            device=device,
            compute_type=compute_type,
            cpu_threads=self.cpu_threads,
            num_workers=self.workers,
        )

    def get(
        self, name: str | None = None, compute_type: str | None = None, device: str | None = None
    ) -> LoadedModel:
        """Load (once) and return a model; blocking the first time, so call it off the event loop.
        ``compute_type`` and ``device`` default to the pool's; another variant of the same
        model is loaded once beside it."""
        info = self.resolve(name)
        variant = self._variant(compute_type, device)
        key = self._key(info, variant)
        loaded = self._models.get(key)
        if loaded is not None:
            return loaded
        with self._lock:  # names that point to one directory (aliases, a path) load it once
            loaded = self._models.get(key)
            if loaded is None:
                started = time.monotonic()
                try:
                    model = self._loader(info, *variant)
                except Exception as exc:  # no GPU or driver, corrupt files, out of memory
                    log.debug("loading model %s (%s %s) failed", info.name, *variant, exc_info=True)
                    raise ModelLoadFailed(
                        f"model {info.name!r} failed to load on {variant[0]} ({variant[1]}): {exc}"
                    ) from exc
                loaded = LoadedModel(info, model, *variant)
                self._models[key] = loaded
                log.info(
                    "loaded %s (%s %s) from %s in %.1fs",
                    info.name,
                    *variant,
                    info.path,
                    time.monotonic() - started,
                )
            return loaded

    async def acquire(
        self, name: str | None = None, compute_type: str | None = None, device: str | None = None
    ) -> LoadedModel:
        """The model behind a name, for the event loop. A name already loaded is two dict
        lookups; the first request resolves and loads it on a worker thread, and requests
        arriving meanwhile wait for that same load (one client leaving does not cancel it)."""
        name = self._offered(name)
        variant = self._variant(compute_type, device)
        info = self._infos.get(name)
        loaded = self._models.get(self._key(info, variant)) if info is not None else None
        if loaded is not None:
            return loaded
        pending = self._loading.get((name, *variant))
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(self.get, name, variant[1], variant[0]))
            self._loading[(name, *variant)] = pending
            pending.add_done_callback(lambda done: self._load_finished((name, *variant), done))
        return await asyncio.shield(pending)

    def _load_finished(self, key: tuple[str, str, str], done: asyncio.Future) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]  # a failed load is tried again by the next request
        if not done.cancelled():
            done.exception()  # every waiter may have left: the error is theirs, not a warning

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
