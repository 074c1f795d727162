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


class FakePool:
    """Decodes nothing: each piece's result says which prompt it was given; a piece given
    carried tokens "needs" ``prompted_temperature``."""

    def __init__(self, prompted_temperature: float, fresh_temperature: float = 0.0):
        self.prompted, self.fresh = prompted_temperature, fresh_temperature
        self.asked: list[tuple[int, ...]] = []

        class Scheduler:
            async def run(self, fn, priority):
                return fn()

        self.scheduler = Scheduler()

    async def decode(self, loaded, audio, options, priority):
        self.asked.append(options.previous_tokens)
        temperature = self.prompted if options.previous_tokens else self.fresh
        text = " prompted" if options.previous_tokens else " fresh"
        return result(Segment(0.0, 1.0, text, tokens=[TS, 1, TS + 50], temperature=temperature))


def transcribe_three_pieces(pool: FakePool, monkeypatch) -> DecodeResult:
    import asyncio

    monkeypatch.setattr(
        files, "plan_pieces", lambda audio, limit: [(0, 16000), (16000, 32000), (32000, 48000)]
    )
    jobs = files.UploadJobs()
    audio = np.zeros(40 * 16000, np.float32)
    job = jobs.open("tiny.en", "transcribe", 40.0)
    return asyncio.run(files.transcribe(pool, None, audio, DecodeOptions(language="en"), job, jobs))


def test_a_piece_the_prompt_leads_astray_is_decoded_again_without_it(monkeypatch):
    pool = FakePool(prompted_temperature=0.4)
    out = transcribe_three_pieces(pool, monkeypatch)
    # the first piece has no prompt; each later one is tried with it, then without
    assert pool.asked == [(), (TS, 1, TS + 50), (), (TS, 1, TS + 50), ()]
    assert [s.text for s in out.segments] == [" fresh"] * 3


def test_a_calm_prompted_piece_is_kept_and_a_redo_no_calmer_is_not_used(monkeypatch):
    pool = FakePool(prompted_temperature=0.0)
    out = transcribe_three_pieces(pool, monkeypatch)
    assert len(pool.asked) == 3 and [s.text for s in out.segments] == [" fresh", " prompted", " prompted"]
    pool = FakePool(prompted_temperature=0.2, fresh_temperature=0.2)
    out = transcribe_three_pieces(pool, monkeypatch)
    assert len(pool.asked) == 5 and [s.text for s in out.segments] == [" fresh", " prompted", " prompted"]
