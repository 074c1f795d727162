"""Fitted-window decoding with the real model: as accurate as the 30 s window, and it knows
when to give up."""

from __future__ import annotations

import numpy as np
import pytest
from harness import evaluation as ev

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.engine.decoding import (
    DecodeOptions,
    _repeats,
    batch_key,
    decode_fitted,
    decode_fitted_batch,
    run_decode,
    run_decodes,
)
from whisper_live.media import decode_audio


@pytest.fixture(scope="module")
def clips():
    utts = ev.manifest("librispeech_dev_clean")[:8] + ev.manifest("jfk")
    return [(u, decode_audio(str(u.path))) for u in utts]


def test_fitted_window_matches_the_padded_window_on_real_speech(server, clips):
    model = server.server.pool.get().model
    refs, fitted, padded, fallbacks = [], [], [], 0
    for utt, audio in clips:
        options = DecodeOptions(language="en", condition_on_previous_text=False)
        result = decode_fitted(model, audio, options)
        if result is None:
            fallbacks += 1
            continue
        duration = len(audio) / SAMPLE_RATE
        assert result.segments and all(0 <= s.start <= s.end <= duration for s in result.segments)
        refs.append(utt.reference)
        fitted.append(result.text)
        padded.append(run_decode(model, audio, options).text)
    assert fallbacks <= 2, "the fitted window should serve most utterances"
    fitted_wer = ev.wer(" ".join(refs), " ".join(fitted))
    padded_wer = ev.wer(" ".join(refs), " ".join(padded))
    assert fitted_wer <= padded_wer + 0.01, (fitted_wer, padded_wer)


def test_fitted_window_word_timestamps_stay_inside_the_audio(server, clips):
    model = server.server.pool.get().model
    utt, audio = clips[-1]  # jfk, 11 s
    result = decode_fitted(model, audio, DecodeOptions(language="en", word_timestamps=True))
    assert result is not None
    words = [w for s in result.segments for w in s.words]
    assert len(words) >= 15
    starts = [w.start for w in words]
    assert starts == sorted(starts)
    assert words[-1].end <= len(audio) / SAMPLE_RATE + 0.05
    assert ev.wer(utt.reference, "".join(w.word for w in words)) < 0.15


def test_fitted_window_declines_what_it_cannot_do_well(server, clips):
    model = server.server.pool.get().model
    _, audio = clips[0]
    long_audio = np.tile(audio, int(np.ceil(29 * SAMPLE_RATE / len(audio))))[: 29 * SAMPLE_RATE]
    assert decode_fitted(model, long_audio, DecodeOptions(language="en")) is None
    # run_decode then takes the padded window and still transcribes it
    options = DecodeOptions(language="en", fit_window=True, beam_size=1)
    assert run_decode(model, long_audio, options).text


@pytest.mark.parametrize("beam_size,without_timestamps", [(5, False), (1, True)])  # finals, partials
def test_a_batch_decodes_each_member_as_well_as_alone(server, clips, beam_size, without_timestamps):
    model = server.server.pool.get().model
    options = [
        DecodeOptions(
            language="en", beam_size=beam_size, without_timestamps=without_timestamps, fit_window=True
        )
        for _ in clips
    ]
    keys = {batch_key(model, audio, o) for (_, audio), o in zip(clips, options)}
    assert len(keys) == 2, "the clips are 3-12 s long: two window steps"
    members = [(u, a, o) for (u, a), o in zip(clips, options) if batch_key(model, a, o) == min(keys)]
    assert len(members) >= 5
    batch = decode_fitted_batch(model, [a for _, a, _ in members], [o for _, _, o in members])
    alone = [decode_fitted(model, a, o) for _, a, o in members]
    for (utt, audio, _), together, single in zip(members, batch, alone):
        if together is None or single is None:
            continue
        assert ev.wer(utt.reference, together.text) < 0.3, "a member got another member's text"
        assert all(s.end <= len(audio) / SAMPLE_RATE for s in together.segments)
    refs = " ".join(u.reference for u, _, _ in members)
    batch_wer = ev.wer(refs, " ".join(r.text if r else "" for r in batch))
    alone_wer = ev.wer(refs, " ".join(r.text if r else "" for r in alone))
    assert batch_wer <= alone_wer + 0.01, (batch_wer, alone_wer)


def test_run_decodes_mixes_fitted_members_and_ones_that_need_the_padded_window(server, clips):
    model = server.server.pool.get().model
    _, short = clips[0]
    long_audio = np.tile(short, 9)[: 29 * SAMPLE_RATE]  # too long for a fitted window
    options = DecodeOptions(language="en", beam_size=1, fit_window=True)
    assert batch_key(model, long_audio, options) is None
    results = run_decodes(model, [short, long_audio, short], [options] * 3)
    assert results[0].text == results[2].text and ev.wer(clips[0][0].reference, results[0].text) < 0.2
    assert len(results[1].text) > 2 * len(results[0].text)


def test_loop_detector():
    assert _repeats("the two stray kittens, the two stray kittens gradually")
    assert not _repeats("And so, my fellow Americans, ask not what your country can do for you")


def test_batched_text_that_stops_early_is_decoded_again(server):
    """The batched pipeline decodes each VAD chunk once: a decode that ends early (as it
    did on another CPU, where the sonnet's last sentence went missing) loses the rest of
    the chunk. Here the early end is made by dropping the last segments of a real result;
    the guard finds the speech without text and decodes it again."""
    from dataclasses import replace

    from whisper_live.engine.decoding import _cover, uncovered_speech

    model = server.server.pool.get().model
    utt = ev.manifest("longform")[0]
    audio = decode_audio(str(utt.path))
    options = DecodeOptions(language="en", batch_size=4, beam_size=1, condition_on_previous_text=False)
    whole = run_decode(model, audio, options)
    assert uncovered_speech(audio, SAMPLE_RATE, whole.segments) == [], "nothing to redo in a normal result"
    cut = replace(whole, segments=whole.segments[:-3])
    assert ev.wer(utt.reference, cut.text) > 0.4
    (span,) = uncovered_speech(audio, SAMPLE_RATE, cut.segments)
    assert span[0] == cut.segments[-1].end and span[1] > len(audio) / SAMPLE_RATE - 2
    covered = _cover(model, audio, options, cut)
    assert ev.wer(utt.reference, covered.text) < ev.wer(utt.reference, whole.text) + 0.1, covered.text
    starts = [s.start for s in covered.segments]
    assert starts == sorted(starts) and [s.id for s in covered.segments] == list(range(len(starts)))


def test_sequential_decode_that_skips_speech_is_decoded_again(server):
    """faster-whisper's sequential loop seeks by the timestamps it decodes, and can jump over
    a whole VAD region or its start (14 s of one generated three-speaker mix). Here the skip
    is made by dropping every segment of the first speech region of a real result; the
    upload path's guard (``cover_speech``) decodes that region again and merges it in time
    order, and on the clean recording it does nothing. A segment dropped between two others
    of one region is found too."""
    from dataclasses import replace

    from faster_whisper.vad import VadOptions, get_speech_timestamps

    from whisper_live.engine.decoding import FULL_WINDOW, _cover, uncovered_speech

    model = server.server.pool.get().model
    utt = ev.manifest("longform")[0]
    audio = decode_audio(str(utt.path))
    options = DecodeOptions(language="en", beam_size=1, word_timestamps=True)
    whole = run_decode(model, audio, options)
    assert uncovered_speech(audio, SAMPLE_RATE, whole.segments) == [], "nothing to redo in a normal result"
    guarded = run_decode(model, audio, replace(options, cover_speech=True))
    assert guarded.text == whole.text, "the guard fires only on skipped speech"
    regions = get_speech_timestamps(audio, VadOptions(max_speech_duration_s=FULL_WINDOW))
    assert len(regions) >= 2, regions
    start, end = regions[0]["start"] / SAMPLE_RATE, regions[0]["end"] / SAMPLE_RATE
    kept = [s for s in whole.segments if not (s.start < end and s.end > start)]
    assert kept and len(kept) < len(whole.segments)
    cut = replace(whole, segments=kept)
    assert ev.wer(utt.reference, cut.text) > ev.wer(utt.reference, whole.text) + 0.1
    (span,) = uncovered_speech(audio, SAMPLE_RATE, cut.segments)
    assert span == (start, end)
    covered = _cover(model, audio, options, cut)
    assert len(covered.segments) > len(kept)
    assert ev.wer(utt.reference, covered.text) < ev.wer(utt.reference, whole.text) + 0.1, covered.text
    starts = [s.start for s in covered.segments]
    assert starts == sorted(starts) and [s.id for s in covered.segments] == list(range(len(starts)))
    redone = [s for s in covered.segments if s.start < end]
    assert redone and all(start <= w.start and w.end <= end + 0.5 for s in redone for w in s.words or [])

    # A jump inside a region: text before and after it, none for the segment between.
    def region_of(t: float) -> int:  # -1: between regions
        return next(
            (i for i, r in enumerate(regions) if r["start"] / SAMPLE_RATE <= t <= r["end"] / SAMPLE_RATE), -1
        )

    inner = [
        i
        for i in range(1, len(whole.segments) - 1)
        if whole.segments[i + 1].start - whole.segments[i - 1].end > 3
        and region_of(whole.segments[i - 1].end) == region_of(whole.segments[i + 1].start) != -1
    ]
    assert inner, "the sonnet has a segment inside one region to drop"
    i = inner[0]
    gap = replace(whole, segments=whole.segments[:i] + whole.segments[i + 1 :])
    assert uncovered_speech(audio, SAMPLE_RATE, gap.segments) == [
        (whole.segments[i - 1].end, whole.segments[i + 1].start)
    ]


def test_speech_skipped_inside_a_segment_is_decoded_again(server):
    """Four LJ Speech readings joined (26 s, one window): tiny.en's decode with word timings
    skips "the Gutenberg, or forty-two line Bible of about fourteen fifty-five, has never
    been" inside its last segment and stretches the word after the skip over it (on this
    machine: "... movable types, the" with "the" lasting 6 s, WER 20 %). ``unworded_speech``
    finds the stretch without a word, the upload path's guard decodes it again, drops the
    stretched word and splits the segment there; on the clean sonnet it finds nothing."""
    from dataclasses import replace

    from whisper_live.engine.decoding import STRETCHED_WORD_SECONDS, WORD_GAP_SECONDS, unworded_speech

    model = server.server.pool.get().model
    ids = ("LJ001-0005", "LJ001-0006", "LJ001-0007", "LJ001-0008")
    readings = sorted((u for u in ev.manifest("ljspeech") if u.id in ids), key=lambda u: u.id)
    joined = ev.conversation(readings, gap=0.5, lead=0.5)
    assert len(joined.utterances) == 4
    audio = joined.audio
    options = DecodeOptions(language="en", word_timestamps=True)  # as an upload's piece, beam 5
    plain = run_decode(model, audio, options)
    # The skip itself is int8 numerics: seen on this machine, perhaps not on another processor,
    # so it is checked only where it happens; the guarded result must hold everywhere (and here,
    # without the guard, it is the plain one at WER 20 %).
    for span in unworded_speech(audio, SAMPLE_RATE, plain.segments):
        assert span[1] - span[0] > WORD_GAP_SECONDS

    guarded = run_decode(model, audio, replace(options, cover_speech=True))
    assert ev.wer(joined.reference, guarded.text) < 0.06, guarded.text
    assert unworded_speech(audio, SAMPLE_RATE, guarded.segments) == []
    words = [w for s in guarded.segments for w in s.words]
    assert all(w.end - w.start <= STRETCHED_WORD_SECONDS for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    starts = [s.start for s in guarded.segments]
    assert starts == sorted(starts) and [s.id for s in guarded.segments] == list(range(len(starts)))
    assert all(s.text == "".join(w.word for w in s.words) for s in guarded.segments)

    utt = ev.manifest("longform")[0]
    sonnet = decode_audio(str(utt.path))
    assert unworded_speech(sonnet, SAMPLE_RATE, run_decode(model, sonnet, options).segments) == []
