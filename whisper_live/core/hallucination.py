"""Which decoded segments are Whisper talking over silence or looping rather than speech."""

from __future__ import annotations

import re

from .decodes import Segment

# Whisper's rule for "this window is silence", as in faster-whisper and OpenAI's whisper.
LOGPROB_SILENCE = -1.0
# Text repeated so often that gzip shrinks it this much is a decoding loop, not speech.
COMPRESSION_LOOP = 2.4

_WORD_CHARACTER = re.compile(r"[\w']")


def is_silence(segment: Segment, no_speech_threshold: float) -> bool:
    """Whisper's own test for a hallucinated segment over silence or noise."""
    return (
        segment.no_speech_prob > no_speech_threshold and segment.avg_logprob < LOGPROB_SILENCE
    ) or segment.compression_ratio > COMPRESSION_LOOP


def is_speech(segment: Segment, no_speech_threshold: float) -> bool:
    """Worth showing: it has a word (not only punctuation, as in " ..." over noise) and passes
    Whisper's silence and loop test."""
    return _WORD_CHARACTER.search(segment.text) is not None and not is_silence(segment, no_speech_threshold)
