"""Speech Whisper skipped inside a segment (``decoding.unworded_speech``, ``split_at_gaps``):
found from the words' times and Silero, on a real reading placed between silences."""

from __future__ import annotations

import numpy as np
import pytest
from harness import evaluation

from whisper_live.core.decodes import Segment, Word
from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.engine.decoding import split_at_gaps, unworded_speech
from whisper_live.media import decode_audio


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    """1 s of silence, "in being comparatively modern." (LJ001-0002, 1.9 s), 3 s of silence."""
    (reading,) = [u for u in evaluation.manifest("ljspeech") if u.id == "LJ001-0002"]
    silence = np.zeros(SAMPLE_RATE, np.float32)
    return np.concatenate([silence, decode_audio(str(reading.path)), silence, silence, silence])


def segment(*words: tuple[float, float, str], tokens=(1, 2, 3)) -> Segment:
    ws = [Word(a, b, w, 0.9) for a, b, w in words]
    return Segment(ws[0].start, ws[-1].end, "".join(w.word for w in ws), tokens=list(tokens), words=ws)


def test_a_gap_between_words_over_speech_is_found_and_over_silence_is_not(audio):
    over_speech = [segment((0.2, 0.5, " a"), (3.2, 3.5, " b"))]
    assert unworded_speech(audio, SAMPLE_RATE, over_speech) == [(0.5, 3.2)]
    over_silence = [segment((3.0, 3.3, " a"), (5.6, 5.9, " b"))]  # 2.3 s of nothing
    assert unworded_speech(audio, SAMPLE_RATE, over_silence) == []
    short = [segment((0.2, 1.5, " a"), (2.9, 3.2, " b"))]  # 1.4 s: under WORD_GAP_SECONDS
    assert unworded_speech(audio, SAMPLE_RATE, short) == []
    across = [segment((0.2, 0.5, " a")), segment((3.2, 3.5, " b"))]  # between two segments too
    assert unworded_speech(audio, SAMPLE_RATE, across) == [(0.5, 3.2)]
    assert unworded_speech(audio, SAMPLE_RATE, over_speech, skip=[(0.4, 3.3)]) == []  # found already
    assert unworded_speech(audio, SAMPLE_RATE, [Segment(0.0, 4.0, " text")]) == []  # no word timings


def test_a_word_stretched_over_speech_covers_none_of_it(audio):
    inside = [segment((0.2, 0.5, " a"), (0.6, 3.0, " the"), (3.2, 3.5, " b"))]  # "the": 2.4 s
    assert unworded_speech(audio, SAMPLE_RATE, inside) == [(0.5, 3.2)]
    last = [segment((0.2, 0.5, " a"), (0.6, 3.4, " the"))]  # the last word stretched to the end
    assert unworded_speech(audio, SAMPLE_RATE, last) == [(0.5, 3.4)]


def test_segments_are_split_at_a_gap_and_stretched_words_dropped():
    one = segment((0.0, 0.4, " a"), (0.4, 0.8, " b"), (0.9, 3.0, " the"), (3.2, 3.5, " c"), (3.5, 3.9, " d."))
    untouched = Segment(5.0, 6.0, " no words", tokens=[7])
    first, second, third = split_at_gaps([one, untouched], [(0.8, 3.2)])
    assert (first.start, first.end, first.text, first.tokens) == (0.0, 0.8, " a b", [1, 2, 3])
    assert (second.start, second.end, second.text, second.tokens) == (3.2, 3.9, " c d.", [])
    assert [w.word for w in first.words + second.words] == [" a", " b", " c", " d."]
    assert third is untouched
    only = segment((1.0, 3.5, " the"))
    assert split_at_gaps([only], [(0.8, 3.6)]) == []  # nothing left of it
    assert split_at_gaps([one], []) == [one]
