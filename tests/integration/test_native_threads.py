"""numpy's BLAS inside the server: one thread (``pool.one_blas_thread``).

Each decode's log-mel features are a numpy matrix product. The OpenBLAS numpy ships runs it
on a thread per core and leaves those threads spinning for the next product, which on a
2-core server at 16 streams was a third of its CPU (docs/BENCHMARKS.md). Each case runs in
a child process (plain faster-whisper, the same limited by hand, the model loaded as the
server loads it) and counts the CPU the process spends around 40 feature extractions of a
10 s window, each followed by a short pause, as decodes come in a server.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROGRAM = """
import sys, time
import numpy as np
from whisper_live.engine.pool import ModelPool
if sys.argv[1] == "server":
    model = ModelPool(workers=1).get("tiny.en").model  # the real loader
else:
    if sys.argv[1] == "one thread":
        from threadpoolctl import threadpool_limits
        threadpool_limits(1, user_api="blas")
    from faster_whisper import WhisperModel
    from whisper_live.engine import models
    model = WhisperModel(models.resolve("tiny.en").path, device="cpu", compute_type="int8", cpu_threads=1)
audio = (np.random.default_rng(0).standard_normal(16000 * 10) * 0.05).astype(np.float32)
model.feature_extractor(audio, padding=0)
started = time.process_time()
for _ in range(40):
    model.feature_extractor(audio, padding=0)
    time.sleep(0.02)
print(time.process_time() - started)
"""


def cpu_seconds(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return float(done.stdout)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS has no second thread to spin")
def test_features_do_not_leave_blas_threads_spinning():
    plain, one, server = cpu_seconds("plain"), cpu_seconds("one thread"), cpu_seconds("server")
    if plain < 1.5 * one:  # a BLAS that does not spin (or one thread already, e.g. by env)
        pytest.skip(f"this BLAS does not spin here: {plain:.2f} s of CPU plain, {one:.2f} s on one thread")
    assert server < 1.3 * one, (
        f"{server:.2f} s of CPU in the server, {one:.2f} on one thread, {plain:.2f} plain"
    )

    assert server < 0.75 * plain
