"""What a streaming session asks the engine to decode, with which options, and who says
whether it may ask now."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np

from .decodes import DecodeOptions
from .options import SessionOptions


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


def decode_options(
    kind: DecodeKind, options: SessionOptions, language: str | None, prompt: str | None, words: bool = False
) -> DecodeOptions:
    """The options of a decode: greedy and quick for a partial, the client's beam for a
    final. The session carries context in ``prompt`` itself (its completed text), so
    Whisper's own conditioning stays off.

    Partials always carry word times: LocalAgreement compares them word by word and commits
    what two agree on (the alignment pass reuses the encoder's output: a fraction of the
    decode). A final gets them when the client asks, or when ``words``: its utterance has
    words committed already, which it must leave out."""
    decode = DecodeOptions(
        language=language,
        task=options.task,
        initial_prompt=prompt,
        hotwords=options.hotwords,
        condition_on_previous_text=False,
        no_speech_threshold=options.no_speech_thresh,
        fit_window=options.fit_window,
    )
    if kind is DecodeKind.PARTIAL:
        decode.beam_size = decode.best_of = 1
        decode.temperature = 0.0
        decode.word_timestamps = True
        decode.without_timestamps = True
    else:
        decode.beam_size = options.beam_size
        decode.word_timestamps = options.word_timestamps or words
    return decode


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
