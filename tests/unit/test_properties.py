"""Property-based tests (hypothesis) of what a client controls byte for byte: the WhisperLive
configuration frame and the PCM frames after it."""

from __future__ import annotations

import contextlib
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whisper_live.core.pcm import PcmDecoder
from whisper_live.faces.whisperlive import protocol

KEYS = [
    "uid", "language", "task", "model", "use_vad", "send_last_n_segments", "no_speech_thresh",
    "initial_prompt", "hotwords", "word_timestamps", "audio_format", "vad_parameters",
    "enable_translation", "target_language", "sample_rate", "channels", "enable_diarization",
    "diarize", "max_speakers", "known_speakers", "clip_audio", "same_output_threshold",
]  # fmt: skip
VAD_KEYS = ["threshold", "neg_threshold", "min_speech_duration_ms", "min_silence_duration_ms",
            "speech_pad_ms", "max_speech_duration_s", "window_size_samples"]  # fmt: skip

# Values a hostile or buggy client sends: every JSON type, the edges of numbers (Python's
# json reads NaN and Infinity), strings that look like numbers or booleans.
edges = st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e300, -1, 0, 0.5, 2**63, True, "1e3"])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["en", "de", "auto", "xx", "int16", "float32", "translate", "1", "true", "0"]),
)
containers = st.recursive(
    scalars | edges,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from([*VAD_KEYS, "x"]), inner, max_size=4)
    ),
    max_leaves=8,
)
# Edge values as often as all others: they are where parsers break.
values = st.one_of(edges, scalars, containers, st.dictionaries(st.sampled_from(VAD_KEYS), edges, min_size=1))


valid = st.fixed_dictionaries(
    {"uid": st.text(min_size=1, max_size=30)},
    optional={
        "language": st.sampled_from(["en", "de", "fr", "auto", None]),
        "task": st.sampled_from(["transcribe", "translate"]),
        "model": st.sampled_from(["tiny.en", "base", "small", None]),
        "use_vad": st.booleans(),
        "send_last_n_segments": st.integers(0, 1000),
        "no_speech_thresh": st.floats(0.0, 1.0),
        "initial_prompt": st.text(max_size=50),
        "hotwords": st.text(max_size=50),
        "word_timestamps": st.booleans(),
        "audio_format": st.sampled_from(["int16", "float32"]),
        "vad_parameters": st.fixed_dictionaries(
            {},
            optional={
                "threshold": st.floats(0.01, 0.99),
                "min_silence_duration_ms": st.integers(0, 10_000),
                "speech_pad_ms": st.integers(0, 2000),
            },
        ),  # fmt: skip
        "sample_rate": st.integers(1000, 384_000),
        "channels": st.sampled_from([1, 2]),
        "enable_diarization": st.booleans(),
    },
)


# A valid configuration with one to three keys given any value at all: a random dictionary
# would almost always fail at its first key and never reach the later ones.
configs = st.builds(
    lambda base, bad: {**base, **bad},
    valid,
    st.dictionaries(st.sampled_from([*KEYS, "vad_parameters", "x"]), values, min_size=1, max_size=3),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_any_json_configuration_parses_or_is_a_protocol_error(config):
    raw = json.dumps(config)  # NaN and Infinity included, as Python's json (and ours) reads them
    try:
        parsed = protocol.parse_config(raw)
    except protocol.ProtocolError as exc:
        assert str(exc)  # the ERROR message's text
        return
    assert isinstance(parsed.uid, str) and parsed.uid
    vad = parsed.session.vad
    numbers = [parsed.session.no_speech_thresh, vad.threshold, vad.min_silence_duration_ms, vad.speech_pad_ms]
    assert all(np.isfinite(n) for n in numbers), numbers
    assert parsed.session.send_last_n_segments >= 0 and 1 <= parsed.channels <= 2


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=200))
def test_any_first_frame_parses_or_is_a_protocol_error(raw):
    with contextlib.suppress(protocol.ProtocolError):
        protocol.parse_config(raw)


@settings(max_examples=300, deadline=None)
@given(valid)
def test_valid_configurations_round_trip(config):
    """What a client sends within the documented ranges is what the session gets."""
    parsed = protocol.parse_config(json.dumps(config))
    opts = parsed.session
    assert parsed.uid == config["uid"]
    language = config.get("language")
    assert opts.language == (None if language in (None, "auto") else language)
    assert opts.task == config.get("task", "transcribe")
    assert parsed.model == (config.get("model") or None)
    assert opts.use_vad == config.get("use_vad", True)
    assert opts.send_last_n_segments == config.get("send_last_n_segments", 10)
    assert opts.no_speech_thresh == config.get("no_speech_thresh", 0.45)
    assert opts.initial_prompt == (config.get("initial_prompt") or None)
    assert opts.hotwords == (config.get("hotwords") or None)
    # words are sent as asked; with diarization finals are decoded with them regardless
    assert parsed.send_words == config.get("word_timestamps", False)
    assert opts.word_timestamps == parsed.send_words or parsed.diarize
    assert opts.audio_format == config.get("audio_format")
    for key, value in config.get("vad_parameters", {}).items():
        assert getattr(opts.vad, key) == value
    assert parsed.sample_rate == config.get("sample_rate", 16000)
    assert parsed.channels == config.get("channels", 1)
    assert parsed.diarize == config.get("enable_diarization", False)


def _decode_in_frames(data: bytes, cuts: list[int], sample_format: str | None) -> np.ndarray:
    decoder = PcmDecoder(sample_format)
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    out = [decoder.feed(data[a:b]) for a, b in zip(bounds, bounds[1:])]
    out.append(decoder.flush())
    return np.concatenate(out)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=12_000),
    st.lists(st.integers(0, 12_000), max_size=20),
    st.sampled_from([None, "int16", "float32"]),
)
def test_any_framing_of_any_bytes_gives_the_same_finite_samples(data, cuts, sample_format):
    whole = _decode_in_frames(data, [], sample_format)
    framed = _decode_in_frames(data, cuts, sample_format)
    assert np.array_equal(whole, framed)
    assert framed.dtype == np.float32 and np.all(np.isfinite(framed))
    assert np.all(np.abs(framed) <= 1.0)
    width = 4 if (sample_format or "") == "float32" else 2
    if sample_format is not None:
        assert len(framed) == len(data) // width  # only a trailing partial sample is dropped


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=3000),
    st.lists(st.integers(0, 12_000), max_size=10),
)
def test_nan_and_inf_float32_samples_never_come_out(samples, cuts):
    data = np.array(samples, "<f4").tobytes()
    out = _decode_in_frames(data, cuts, "float32")
    assert len(out) == len(samples) and np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1.0)
