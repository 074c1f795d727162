"""Continuous reading over a real WebSocket with the real model: text is committed word by
word while the reader goes on, not only at the pauses. How fast is measured by
scripts/bench_longform.py; here only what must hold on any machine."""

from __future__ import annotations

import asyncio

import pytest
from harness import evaluation as ev
from harness import longform_metrics as lm
from harness.transcripts import inserted_words, repeated_segments


@pytest.mark.slow
def test_a_continuous_reading_is_committed_while_it_is_read(server):
    four = ("LJ001-0001", "LJ001-0002", "LJ001-0007", "LJ001-0031")
    clips = [u for u in ev.manifest("ljspeech") if u.id in four]  # 28 s, joined with 0.2 s gaps
    conv = ev.conversation(clips, gap=0.2, lead=0.5)
    config = {"language": "en", "commit_after": 0}  # word by word, from the first agreement
    trace = asyncio.run(ev.stream(server.ws_url, conv.audio, config, speed=1.0, timeout=180))
    assert trace.close_code == 1000

    # Commits during speech: completed text of a clip that arrived before that clip's
    # audio ended (a final can only come after its speech: these are LocalAgreement's).
    # Measured: 17 such segments of the four clips; two long clips alone must give some.
    early = [
        seg
        for seg, at in zip(trace.completed, trace.completed_at, strict=True)
        if any(start <= float(seg["end"]) <= end and at < end for start, end in zip(conv.starts, conv.ends))
    ]
    assert len(early) >= 3, [(s["text"], at) for s, at in zip(trace.completed, trace.completed_at)]

    # Completed segments are in order and never overlap.
    ends = [(float(s["start"]), float(s["end"])) for s in trace.completed]
    assert all(b[0] >= a[1] - 1e-6 for a, b in zip(ends, ends[1:])), ends

    # As accurate as the utterance path (measured WER 0.066, 4 words outside the reference:
    # numbers as digits), nothing said twice.
    error = ev.wer(conv.reference, trace.transcript)
    assert error < 0.15, (error, trace.transcript)
    assert inserted_words(conv.reference, trace.transcript) <= 10, trace.transcript
    assert repeated_segments([s["text"] for s in trace.completed]) == 0, trace.transcript
    words = ev.normalize(trace.transcript).split()
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    assert len(grams) == len(set(grams)), "a run of four words repeats: a loop or a restatement"

    # Little flicker: what the display takes back (characters, over the final text's length).
    # Measured here 0.16 before the beam confirms, and 0.30 in process (bench_longform.simulate,
    # 0.05-0.3 s a decode); 0.50 and 0.64 before, when one changed word stalled agreement.
    shown = [d.text for d in lm.displays(trace.messages[1:], trace.arrivals)]
    assert lm.normalized_erasure(shown) < 0.4, shown

    # Nothing lost: the end of every clip is in the transcript.
    text = " " + " ".join(words) + " "
    for clip in clips:
        last = " ".join(ev.normalize(clip.reference).split()[-2:])
        assert f" {last} " in text, (last, trace.transcript)
