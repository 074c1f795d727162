"""Voice activity as the streaming core sees it: 32 ms chunks, each with a speech
probability from whatever VAD the session was given, and the knobs of endpointing.

The VAD itself (Silero through onnxruntime, a model) is the engine's
(``engine/vad.py``): the core loads no model; it is handed a function from chunks to
probabilities (the engine's ``StreamingVad``, or a script in tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CHUNK = 512  # samples per Silero step at 16 kHz (32 ms)
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
