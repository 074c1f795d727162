"""Streaming voice activity detection with the Silero model that faster-whisper ships.

faster-whisper runs Silero over a whole array; a live stream needs the same network fed
32 ms at a time with its LSTM state carried between calls. One onnxruntime session is
shared by every stream (``run`` is thread-safe); each stream keeps only its own state.
It is the engine's (a model, loaded once): the streaming core is handed a ``StreamingVad``
(``new_session`` in ``engine/streams.py``) and never builds one.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from ..core.vad import CHUNK

_CONTEXT = 64  # samples of the previous chunk the v6 model sees in front of each chunk


@functools.lru_cache(maxsize=1)
def shared_session():
    """The one onnxruntime session, built on first use. Building it (and importing
    onnxruntime) took up to 0.9 s on a cold disk cache: a server calls this at start-up,
    off its event loop, so that the first stream does not pay for it on the loop."""
    import onnxruntime
    from faster_whisper.utils import get_assets_path

    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 4
    path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=opts)


class StreamingVad:
    """Speech probability for each successive 32 ms of one stream."""

    def __init__(self):
        self._session = shared_session()
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(_CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities for every complete chunk now available (leftover samples wait)."""
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        count = len(samples) // CHUNK
        self._pending = samples[count * CHUNK :].copy()
        if count == 0:
            return np.zeros(0, np.float32)
        chunks = samples[: count * CHUNK].reshape(count, CHUNK)
        contexts = np.concatenate([self._context[None], chunks[:-1, -_CONTEXT:]])
        batch = np.ascontiguousarray(np.concatenate([contexts, chunks], axis=1), dtype=np.float32)
        probs, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = chunks[-1, -_CONTEXT:].copy()
        return np.asarray(probs, np.float32).reshape(-1)
