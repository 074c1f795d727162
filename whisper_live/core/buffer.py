"""The recent samples of a stream, addressed by their absolute index since the stream began."""

from __future__ import annotations

import numpy as np


class SampleBuffer:
    def __init__(self):
        self._samples = np.zeros(0, np.float32)
        self.start = 0  # absolute index of the oldest sample kept
        self.end = 0  # samples received so far

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._samples = np.concatenate([self._samples, samples]) if len(self._samples) else samples.copy()
            self.end += len(samples)

    def slice(self, begin: int, end: int) -> np.ndarray:
        """A copy of samples ``begin`` to ``end``, which must still be kept."""
        return self._samples[begin - self.start : end - self.start].copy()

    def drop_before(self, index: int) -> None:
        """Forget what no decode will need again."""
        drop = index - self.start
        if drop > 0:
            self._samples = self._samples[drop:]
            self.start = index
