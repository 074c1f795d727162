"""Fitted-window decoding with the real model: as accurate as the 30 s window, and it knows
when to give up."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_live import evaluation as ev
from whisper_live.audio import SAMPLE_RATE, decode_audio
from whisper_live.decoding import DecodeOptions, _repeats, decode_fitted, run_decode


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


def test_loop_detector():
    assert _repeats("the two stray kittens, the two stray kittens gradually")
    assert not _repeats("And so, my fellow Americans, ask not what your country can do for you")
