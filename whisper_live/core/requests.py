"""What a streaming session asks the engine to decode, and who says whether it may ask now."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np

from .decodes import DecodeOptions


class DecodeKind(Enum):
    # A greedy refresh of the text on screen: skipped when the decoders are busy, forgotten
    # when it fails or comes back after a newer one.
    PARTIAL = "partial"
    # Beam search of an utterance: never skipped, delivered in utterance order.
    FINAL = "final"


@dataclass
class DecodeRequest:
    id: int  # increasing: a result of a lower id is older
    kind: DecodeKind
    utterance: int
    audio: np.ndarray
    start_sample: int  # absolute index of audio[0] in the stream
    options: DecodeOptions

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.audio)


class DecodeBudget(Protocol):
    """Whether a decode the session could do without would start now.

    Partials and the final started early at a pause are optional: when the decoders are
    busy, queueing them only delays the finals that someone waits for. The session asks at
    the moment it considers one; the runner answers from its scheduler, tests from a script.
    """

    def allows_partial(self) -> bool: ...

    def allows_speculative_final(self) -> bool: ...


class UnlimitedBudget:
    """Every optional decode runs: for callers that decode in-process, one request at a time."""

    def allows_partial(self) -> bool:
        return True

    def allows_speculative_final(self) -> bool:
        return True
