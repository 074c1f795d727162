"""The C allocator, set up for a server that runs for weeks.

Without this the server's RSS climbs for many minutes although no Python object
accumulates (docs/RELIABILITY.md, "Soak and memory"). The memory is glibc malloc's:
CTranslate2, onnxruntime and numpy allocate and free buffers of a new size for nearly every
decode (a fitted window follows the utterance's length), from several threads, and glibc
gives each thread its own arena (up to 8 per core) and keeps what is freed inside them,
fragmented, instead of handing it back. Two settings lower it, at no measurable cost per
decode or in capacity: at most two arenas, and ``malloc_trim(0)`` every ten seconds, which
returns the free pages inside every arena (not only those at its top) to the system. A
slower rise remains in a 30-minute soak, under jemalloc as well, so it is not the arenas'
(docs/RELIABILITY.md).

A process that does not run on glibc (musl, macOS, jemalloc preloaded) is left as it is;
so are settings the environment makes (``MALLOC_ARENA_MAX``), which glibc has read already.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time

log = logging.getLogger(__name__)

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
