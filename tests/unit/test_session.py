"""The sans-I/O session: its logic with a scripted decoder, and long speech with the real model."""

from __future__ import annotations

import numpy as np
import pytest
from harness import evaluation as ev

from whisper_live.core.decodes import DecodeResult, Segment
from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.core.session import SegmentsChanged, SessionOptions, StreamingSession
from whisper_live.engine.decoding import run_decode
from whisper_live.media import decode_audio


def _result(text: str, duration: float) -> DecodeResult:
    return DecodeResult([Segment(0.0, duration, text, avg_logprob=-0.2)], "en", 1.0, duration)


def _speechy(seconds: float, seed: int) -> np.ndarray:
    """Not speech to a human, but a signal a VAD-free session treats as audio to decode."""
    return (np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)


def test_finals_are_delivered_in_order_even_when_decoded_out_of_order():
    session = StreamingSession(SessionOptions(use_vad=False, partial_interval=100))
    session.feed_samples(_speechy(2, 1))
    session.end_of_audio()
    (first,) = [r for r in session.take_requests() if r.kind == "final"]
    assert not session.finished
    session.decode_done(first, _result(" hello there.", 2.0))
    (event,) = [e for e in session.take_events() if isinstance(e, SegmentsChanged)]
    assert [s.text for s in event.segments] == [" hello there."] and event.segments[0].completed
    assert session.finished


def test_a_failed_final_does_not_block_the_ones_after_it(librispeech):
    clip = decode_audio(str(librispeech[0].path))
    silence = np.zeros(SAMPLE_RATE, np.float32)
    session = StreamingSession(SessionOptions(language="en"))
    session.feed_samples(np.concatenate([silence, clip, silence, clip, silence]))
    finals = [r for r in session.take_requests() if r.kind == "final"]
    assert len(finals) == 2, "two utterances, two finals"
    session.decode_done(finals[1], _result(" second.", 3.0))
    assert session.completed == []  # waits for the first
    session.decode_failed(finals[0], RuntimeError("decoder crashed"))
    assert [s.text for s in session.completed] == [" second."]


def test_an_utterance_final_says_it_ends_the_utterance_and_speech_open_follows_the_vad(librispeech):
    clip = decode_audio(str(librispeech[0].path))
    silence = np.zeros(SAMPLE_RATE, np.float32)
    session = StreamingSession(SessionOptions(language="en", partial_interval=100))
    session.feed_samples(silence)
    assert not session.speech_open
    session.feed_samples(clip[:SAMPLE_RATE])
    assert session.speech_open
    session.feed_samples(np.concatenate([clip[SAMPLE_RATE:], silence]))
    assert not session.speech_open, "a second of silence is past the endpoint"
    (final,) = [r for r in session.take_requests() if r.kind == "final"]
    two = DecodeResult(
        [Segment(0.0, 1.0, " one.", avg_logprob=-0.2), Segment(1.0, 2.0, " two.", avg_logprob=-0.2)],
        "en",
        1.0,
        2.0,
    )
    session.decode_done(final, two)
    assert [s.ends_utterance for s in session.completed] == [False, True]


def test_hallucination_over_silence_is_dropped():
    session = StreamingSession(SessionOptions(use_vad=False, partial_interval=100))
    session.feed_samples(np.zeros(2 * SAMPLE_RATE, np.float32))
    session.end_of_audio()
    (final,) = session.take_requests()
    fake = DecodeResult(
        [Segment(0.0, 2.0, " Thank you.", avg_logprob=-1.5, no_speech_prob=0.9)], "en", 1.0, 2.0
    )
    session.decode_done(final, fake)
    assert session.completed == [] and session.finished


@pytest.mark.slow
def test_long_speech_without_endpoint_commits_and_keeps_the_window_bounded(server):
    """A minute of continuous reading with VAD endpointing off: text is committed as it
    goes and no decode ever sees more than the window limit."""
    utt = ev.manifest("longform")[0]  # Shakespeare's first sonnet, 53 s
    audio = decode_audio(str(utt.path))
    model = server.server.pool.get().model
    options = SessionOptions(language="en", use_vad=False)
    session = StreamingSession(options)
    longest = 0.0
    committed_before_end = 0
    step = SAMPLE_RATE // 2
    for pos in range(0, len(audio), step):
        session.feed_samples(audio[pos : pos + step])
        for request in session.take_requests():
            longest = max(longest, len(request.audio) / SAMPLE_RATE)
            session.decode_done(request, run_decode(model, request.audio, request.options))
        committed_before_end = len(session.completed)
    session.end_of_audio()
    for request in session.take_requests():
        longest = max(longest, len(request.audio) / SAMPLE_RATE)
        session.decode_done(request, run_decode(model, request.audio, request.options))
    assert session.finished
    assert committed_before_end >= 2, "nothing was committed during the speech"
    assert longest <= options.max_window + 1.5, longest
    starts = [s.start for s in session.completed]
    assert starts == sorted(starts)
    assert ev.wer(utt.reference, session.transcript()) < 0.35, session.transcript()
