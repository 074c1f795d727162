"""Streaming voice activity detection with the Silero model that faster-whisper ships.

faster-whisper runs Silero over a whole array; a live stream needs the same network fed
32 ms at a time with its LSTM state carried between calls. One onnxruntime session is
shared by every stream (``run`` is thread-safe); each stream keeps only its own state.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CHUNK = 512  # samples per Silero step at 16 kHz (32 ms)
_CONTEXT = 64  # samples of the previous chunk the v6 model sees in front of each chunk
_MAX_DURATION_MS = 60_000


@dataclass
class VadParameters:
    """Endpointing knobs; names follow faster-whisper's VadOptions so clients can reuse them."""

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_duration_ms: int = 200
    min_silence_duration_ms: int = 500
    speech_pad_ms: int = 500

    @classmethod
    def from_dict(cls, values: dict | None) -> VadParameters:
        """A client's parameters; a value of the wrong type or out of range is a ValueError
        (durations between 0 and a minute: a huge pad would keep a whole stream in memory)."""
        params = cls()
        for key, value in (values or {}).items():
            if key in cls.__dataclass_fields__ and value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                    raise ValueError(f"{key} must be a number")
                try:
                    number = type(getattr(params, key) or 0.0)(value)
                except OverflowError as exc:
                    raise ValueError(f"{key} must be a finite number") from exc
                setattr(params, key, number)
        if not 0.0 < params.threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if params.neg_threshold is not None and not 0.0 < params.neg_threshold < 1.0:
            raise ValueError("neg_threshold must be between 0 and 1")
        for key in ("min_speech_duration_ms", "min_silence_duration_ms", "speech_pad_ms"):
            if not 0 <= getattr(params, key) <= _MAX_DURATION_MS:
                raise ValueError(f"{key} must be between 0 and {_MAX_DURATION_MS}")
        return params

    @property
    def silence_threshold(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


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


class SpeechChunks:
    """Cuts a stream, fed in frames of any size, into chunks and gives each one's speech
    probability, with the chunk's absolute start sample.

    ``vad`` is any function from whole chunks to one probability each (a ``StreamingVad``,
    or a script in tests). Without one every chunk counts as speech: the utterance then
    ends only with the stream.
    """

    def __init__(self, vad: Callable[[np.ndarray], np.ndarray] | None):
        self._vad = vad
        self._pending = np.zeros(0, np.float32)
        self._next = 0  # absolute index of _pending[0]

    def feed(self, samples: np.ndarray) -> list[tuple[int, float]]:
        """Every chunk completed by these samples; a remainder waits for the next frame."""
        if len(samples):
            self._pending = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        count = len(self._pending) // CHUNK
        if count == 0:
            return []
        block, self._pending = self._pending[: count * CHUNK], self._pending[count * CHUNK :]
        start, self._next = self._next, self._next + count * CHUNK
        probs = self._vad(block) if self._vad is not None else np.ones(count, np.float32)
        return [(start + i * CHUNK, float(p)) for i, p in enumerate(probs)]

    def flush(self) -> list[tuple[int, float]]:
        """End of stream: the complete chunks left; a last fraction of a chunk is not judged."""
        chunks = self.feed(np.zeros(0, np.float32))
        self._next += len(self._pending)
        self._pending = np.zeros(0, np.float32)
        return chunks
