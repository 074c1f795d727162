"""Where utterances begin and end, from one VAD speech probability per 32 ms chunk.

An utterance opens on the first chunk at or above ``threshold`` and starts ``speech_pad_ms``
before it (Silero fires a little late, and Whisper needs the onset). It goes on while
chunks stay at or above the lower ``silence_threshold`` (hysteresis: a soft syllable does
not end it), and ends after ``min_silence_duration_ms`` of silence, at most
``speech_pad_ms`` after its last speech. Whether it held enough speech to be worth
decoding (``min_speech_duration_ms``) is for the caller to ask.
"""

from __future__ import annotations

import itertools
from enum import Enum

from .pcm import SAMPLE_RATE
from .vad import CHUNK, VadParameters


class Activity(Enum):
    """What one chunk did to the utterance."""

    IDLE = "idle"  # silence, and no utterance open
    OPENED = "opened"  # speech: an utterance opened
    SPEECH = "speech"  # the open utterance goes on, with confident speech
    HELD = "held"  # between the two thresholds: the utterance goes on, not confidently
    PAUSE = "pause"  # silence inside the utterance, too short to end it
    ENDPOINT = "endpoint"  # enough silence: the utterance is over at ``end``; the caller closes it


def samples(ms: int) -> int:
    return ms * SAMPLE_RATE // 1000


class Endpointer:
    def __init__(self, params: VadParameters):
        self.params = params
        self._numbers = itertools.count(1)
        self.utterance = 0  # number of the open (or last) utterance, from 1
        self.is_open = False
        self.start = 0  # first sample of the utterance, speech pad included
        self.speech_end = 0  # end of its last speech chunk
        self.speech_samples = 0
        self.silence_samples = 0  # the silence since then
        self.end = 0  # set with ENDPOINT: the speech pad after the last speech, within the silence

    @property
    def long_enough(self) -> bool:
        """Held enough speech to decode; shorter blips (a click, a breath) are dropped."""
        return self.speech_samples >= samples(self.params.min_speech_duration_ms)

    def step(self, start: int, probability: float) -> Activity:
        """Take the probability of the chunk at absolute sample ``start``."""
        params = self.params
        end = start + CHUNK
        if not self.is_open:
            if probability < params.threshold:
                return Activity.IDLE
            self.utterance = next(self._numbers)
            self.is_open = True
            self.start = max(0, start - samples(params.speech_pad_ms))
            self.speech_samples = CHUNK
            self.speech_end = end
            self.silence_samples = 0
            return Activity.OPENED
        if probability >= params.silence_threshold:
            self.speech_samples += CHUNK
            self.speech_end = end
            self.silence_samples = 0
            return Activity.SPEECH if probability >= params.threshold else Activity.HELD
        self.silence_samples += CHUNK
        if self.silence_samples >= samples(params.min_silence_duration_ms):
            self.end = min(end, self.speech_end + samples(params.speech_pad_ms))
            return Activity.ENDPOINT
        return Activity.PAUSE

    def close(self) -> None:
        self.is_open = False
