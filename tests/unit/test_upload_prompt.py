"""What one piece of a long upload passes to the next as its prompt (``files.carried_prompt``),
and how the decode hands carried tokens to faster-whisper (a fake model records the call).
The effect on real speech is tested over a socket in tests/integration/test_http_api.py."""

from __future__ import annotations

import numpy as np

from whisper_live.core.decodes import DecodeOptions, DecodeResult, Segment
from whisper_live.engine import decoding, files

TS = 50364  # tiny.en's <|0.00|>: timestamp tokens are ids from here up


def result(*segments: Segment) -> DecodeResult:
    return DecodeResult(list(segments), "en", 1.0, 30.0)


def test_tokens_are_carried_with_their_timestamps():
    first = Segment(0.0, 2.0, " One.", tokens=[TS, 440, 13, TS + 100])
    second = Segment(2.5, 4.0, " Two.", tokens=[TS + 125, 1584, 13, TS + 200])
    prompt, previous = files.carried_prompt(result(first, second))
    assert prompt is None
    assert previous == (TS, 440, 13, TS + 100, TS + 125, 1584, 13, TS + 200)


def test_only_the_last_tokens_are_carried():
    long = Segment(0.0, 30.0, " words", tokens=list(range(500)))
    _, previous = files.carried_prompt(result(long))
    assert len(previous) == files.CARRIED_PROMPT_TOKENS
    assert previous[-1] == 499


def test_the_batched_pipeline_gets_text():
    segment = Segment(0.0, 2.0, " x" * 300, tokens=[TS, 1, TS + 100])
    prompt, previous = files.carried_prompt(result(segment), batched=True)
    assert previous == () and prompt == segment.text.strip()[-files.CARRIED_PROMPT_CHARS :]


def test_a_high_temperature_decode_passes_nothing_on():
    calm = Segment(0.0, 2.0, " One.", tokens=[TS, 440, TS + 100])
    guessed = Segment(2.0, 4.0, " uh uh", tokens=[TS + 100, 7, TS + 200], temperature=0.6)
    assert files.carried_prompt(result(calm, guessed)) == (None, ())
    assert files.carried_prompt(result(calm, guessed), batched=True) == (None, ())


class FakeModel:
    """Records the keyword arguments of ``transcribe``; returns no segments."""

    def __init__(self):
        self.calls: list[dict] = []

    def transcribe(self, audio, **kwargs):
        self.calls.append(kwargs)

        class Info:
            language, language_probability, duration = "en", 1.0, len(audio) / 16000

        return iter(()), Info()


def test_carried_tokens_go_to_faster_whisper_as_its_initial_prompt():
    model = FakeModel()
    audio = np.zeros(16000, np.float32)
    decoding.run_decode(model, audio, DecodeOptions(language="en", previous_tokens=(TS, 440, TS + 100)))
    decoding.run_decode(model, audio, DecodeOptions(language="en", initial_prompt="Hello there."))
    decoding.run_decode(model, audio, DecodeOptions(language="en"))
    assert [c["initial_prompt"] for c in model.calls] == [[TS, 440, TS + 100], "Hello there.", None]
