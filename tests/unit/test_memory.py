"""whisper_live.memory against the real glibc: freed memory that free() alone keeps inside
the heap goes back to the system once the trimming thread has run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from whisper_live import memory

# Fills the main arena with 150 MB of 1 KB blocks, frees all but the last (which pins the
# top of the heap, so free() cannot shrink it), waits, and prints RSS in MB.
PROGRAM = """
import ctypes, sys, time
from pathlib import Path
from whisper_live import memory

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
trim = memory.tune_allocator(trim_every=0.2) if sys.argv[1] == "on" else None
blocks = [libc.malloc(1024) for _ in range(150_000)]
for block in blocks:
    ctypes.memset(block, 1, 1024)
for block in blocks[:-1]:
    libc.free(block)
time.sleep(1.5)
status = Path("/proc/self/status").read_text()
print(int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) // 1024)
"""


def rss_after_freeing(trim: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROGRAM, trim], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(memory._glibc() is None, reason="glibc's allocator only")
def test_trimming_returns_freed_heap_memory():
    kept, trimmed = rss_after_freeing("off"), rss_after_freeing("on")
    assert kept - trimmed > 100, (kept, trimmed)


@pytest.mark.skipif(memory._glibc() is None, reason="glibc's allocator only")
def test_trim_thread_stops():
    trim = memory.AllocatorTrim(memory._glibc(), every=0.05).start()
    assert trim._thread.is_alive()
    trim.stop()
    assert not trim._thread.is_alive()


def test_kernel_cache_is_capped_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    assert memory.cap_kernel_cache() == str(memory.KERNEL_CACHE_CAPACITY)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "512")
    assert memory.cap_kernel_cache() == "512"
