"""The sans-I/O session driven in-process by the real model: what scripted decodes cannot show."""

from __future__ import annotations

import pytest
from harness import evaluation as ev

from whisper_live.core.options import SessionOptions
from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.core.requests import DecodeKind
from whisper_live.core.session import StreamingSession
from whisper_live.engine.decoding import run_decode
from whisper_live.media import decode_audio


@pytest.mark.slow
def test_long_speech_without_endpoint_commits_and_keeps_the_window_bounded(server):
    """A minute of continuous reading with VAD endpointing off: text is committed as it
    goes and no decode ever sees more than the window limit."""
    utt = ev.manifest("longform")[0]  # Shakespeare's first sonnet, 53 s
    audio = decode_audio(str(utt.path))
    model = server.server.pool.get(None).model
    options = SessionOptions(language="en", use_vad=False)
    session = StreamingSession(options)
    longest = 0.0
    committed_before_end = 0
    step = SAMPLE_RATE // 2
    for pos in range(0, len(audio), step):
        session.feed(audio[pos : pos + step])
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


@pytest.mark.slow
def test_doubted_words_are_committed_in_a_beam_reading_of_the_window(server):
    """Word by word (``commit_after`` 0) with the real model: words two greedy partials
    agree on but Whisper doubts are decoded again with the client's beam (a partial request
    of beam 5) and committed from it; the text stays accurate. Measured here: 7 confirms,
    each committing, WER 0.13 (``bench_longform.py --simulate``: 0.105, 0.114 without)."""
    utt = ev.manifest("longform")[0]  # Shakespeare's first sonnet, 53 s
    audio = decode_audio(str(utt.path))
    model = server.server.pool.get(None).model
    session = StreamingSession(SessionOptions(language="en", use_vad=False, commit_after=0))
    confirms = settled = 0

    def decode_all() -> None:
        nonlocal confirms, settled
        for request in session.take_requests():
            confirm = request.kind is DecodeKind.PARTIAL and request.options.beam_size > 1
            before = len(session.completed)
            session.decode_done(request, run_decode(model, request.audio, request.options))
            confirms += confirm
            settled += confirm and len(session.completed) > before

    step = SAMPLE_RATE // 10
    for pos in range(0, len(audio), step):
        session.feed(audio[pos : pos + step])
        decode_all()
    session.end_of_audio()
    decode_all()
    assert session.finished
    assert confirms >= 1 and settled >= 1, (confirms, settled)
    assert ev.wer(utt.reference, session.transcript()) < 0.2, session.transcript()
    words = ev.normalize(session.transcript()).split()
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    assert len(grams) == len(set(grams)), "a run of four words repeats: a loop or a restatement"
