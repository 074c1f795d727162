"""The server's native memory with the real model: decodes of ever new window lengths (what
fitted windows are) must not keep memory per length. Without the cap on oneDNN's primitive
cache (``memory.cap_kernel_cache``) each new length kept about 1.6 MB, hundreds of MB over
a soak (docs/RELIABILITY.md). Each side runs in a child process, as the server does, with
glibc's trim between decodes so that only memory still held counts.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# Loads tiny.en, encodes windows of 60 new lengths (10-11.2 s: with the cap, enough to fill
# it), then of 60 more (11.2-12.4 s); prints RSS growth over the second 60 in MB.
PROGRAM = """
import ctypes, os, sys
from pathlib import Path
import numpy as np
from whisper_live import memory
if sys.argv[1] == "capped":
    memory.cap_kernel_cache()
else:
    os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = "1024"  # oneDNN's own default
from faster_whisper import WhisperModel
from whisper_live.engine import models

libc = ctypes.CDLL("libc.so.6")
def rss():
    libc.malloc_trim(0)
    status = Path("/proc/self/status").read_text()
    return int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) / 1024

model = WhisperModel(models.resolve("tiny.en").path, device="cpu", compute_type="int8", cpu_threads=1)
audio = (np.random.default_rng(0).standard_normal(16000 * 13) * 0.05).astype(np.float32)
features = model.feature_extractor(audio, padding=0)
def encode(frames):
    model.encode(features[:, :frames])
for i in range(60):
    encode(1000 + 2 * i)
before = rss()
for i in range(60, 120):
    encode(1000 + 2 * i)
print(round(rss() - before, 1))
"""


def growth(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return float(done.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and calls glibc's malloc_trim")
def test_new_window_lengths_do_not_keep_memory():
    capped, uncapped = growth("capped"), growth("uncapped")
    if uncapped < 40:  # e.g. an Intel CPU, where CTranslate2 may use MKL instead
        pytest.skip(f"this CPU's convolutions do not fill oneDNN's cache (+{uncapped} MB uncapped)")
    assert capped < 8, f"+{capped} MB over 60 new window lengths with the cap (+{uncapped} MB without)"
