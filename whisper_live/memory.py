"""Native memory, set up for a server that runs for weeks.

Two things made the server's RSS climb for many minutes although no Python object
accumulates (docs/RELIABILITY.md, "Soak and memory"):

- **oneDNN's primitive cache.** CTranslate2 runs Whisper's two input convolutions through
  oneDNN (on CPUs where it does not use MKL, such as AMD's), which compiles a kernel for
  every input width and keeps up to 1024 of them. A fitted window follows the utterance's
  length, so nearly every decode has a new width, and each one kept costs about 1.6 MB:
  hundreds of MB before the cache is full. Recompiling costs about 1.4 ms per convolution
  against 50-400 ms for the decode, so the cache is capped at ``KERNEL_CACHE_CAPACITY``.
- **glibc's arenas.** CTranslate2, onnxruntime and numpy allocate and free buffers of a new
  size for nearly every decode, from several threads; glibc gives each thread an arena of
  its own (up to 8 per core) and keeps what is freed inside them, fragmented, instead of
  handing it back. At most two arenas, and ``malloc_trim(0)`` every ten seconds (which
  returns the free pages inside every arena, not only those at its top) lower it at no
  measurable cost per decode or in capacity.

Settings the environment makes win (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``,
``MALLOC_ARENA_MAX``); a process that does not run on glibc (musl, macOS, jemalloc
preloaded) keeps its allocator as it is.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time

log = logging.getLogger(__name__)

KERNEL_CACHE_CAPACITY = 64  # oneDNN's primitives: about 10 input widths' worth, ~16 MB
M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENA_MAX = 2
TRIM_EVERY_SECONDS = 10.0


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
        return libc
    except (OSError, AttributeError):
        return None


class AllocatorTrim:
    """A daemon thread that calls ``malloc_trim(0)`` every ``every`` seconds."""

    def __init__(self, libc: ctypes.CDLL, every: float):
        self._libc = libc
        self.every = every
        self._stop = threading.Event()
        self.last_seconds: float | None = None  # how long the last trim took (arenas are locked meanwhile)
        self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)

    def start(self) -> AllocatorTrim:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            started = time.perf_counter()
            self._libc.malloc_trim(0)
            self.last_seconds = time.perf_counter() - started


def tune_allocator(
    arena_max: int = ARENA_MAX, trim_every: float = TRIM_EVERY_SECONDS
) -> AllocatorTrim | None:
    """Call once, early in the server process, before the decode threads start: limits the
    arenas and starts the trimming thread (returned; None when not on glibc)."""
    libc = _glibc()
    if libc is None:
        log.debug("not glibc: the C allocator is left as it is")
        return None
    if "MALLOC_ARENA_MAX" not in os.environ and not libc.mallopt(M_ARENA_MAX, arena_max):
        log.warning("mallopt(M_ARENA_MAX, %d) failed", arena_max)
    return AllocatorTrim(libc, trim_every).start() if trim_every > 0 else None


def cap_kernel_cache(capacity: int = KERNEL_CACHE_CAPACITY) -> str:
    """Caps oneDNN's primitive cache unless the environment already does, and returns the
    capacity in force. oneDNN reads the variable when it first builds a primitive, so this
    must run before the first decode (importing CTranslate2 earlier is fine)."""
    return os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(capacity))


def tune() -> AllocatorTrim | None:
    """Everything above, once, first thing in the server process: returns the trim thread."""
    cap_kernel_cache()
    return tune_allocator()
