"""WhisperLive wire protocol: parsing a client's configuration."""

from __future__ import annotations

import json

import pytest

from whisper_live.core.decodes import Word
from whisper_live.core.events import LanguageDetected, SegmentsChanged
from whisper_live.core.transcript import StreamSegment
from whisper_live.faces.whisperlive import protocol


def test_config_defaults_follow_whisperlive_but_vad_defaults_on():
    cfg = protocol.parse_config(json.dumps({"uid": "a"}))
    assert cfg.session.use_vad is True and cfg.model is None
    assert cfg.session.send_last_n_segments == 10 and cfg.session.no_speech_thresh == 0.45
    assert cfg.session.language is None and cfg.session.task == "transcribe"
    cfg = protocol.parse_config(
        json.dumps(
            {
                "uid": "b",
                "language": "de",
                "use_vad": False,
                "clip_audio": True,
                "same_output_threshold": 10,
                "enable_translation": True,
                "target_language": "fr",
                "vad_parameters": {"threshold": 0.6, "min_silence_duration_ms": 800},
                "unknown_key": 1,
            }
        )
    )
    assert cfg.session.language == "de" and cfg.session.use_vad is False
    assert cfg.session.vad.threshold == 0.6 and cfg.session.vad.min_silence_duration_ms == 800
    assert cfg.warnings and "enable_translation" in cfg.warnings[0]
    assert cfg.session.redetect_language is False
    cfg = protocol.parse_config(json.dumps({"uid": "c", "redetect_language": "yes"}))
    assert cfg.session.redetect_language is True
    assert protocol.parse_config(json.dumps({"uid": "c", "commit_after": 4})).session.commit_after == 4.0
    with pytest.raises(protocol.ProtocolError, match="commit_after"):
        protocol.parse_config(json.dumps({"uid": "c", "commit_after": -1}))


@pytest.mark.parametrize(
    "raw",
    ["nope", b"\xff\xfe\x00", "[]", json.dumps({"uid": ""}), json.dumps({"uid": "a", "audio_format": "mp3"})],
)
def test_bad_configs_are_protocol_errors(raw):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_config(raw)


def test_event_messages_have_whisperlives_shape():
    said = StreamSegment(1.23456, 2.5, " Hi.", True, [Word(1.23456, 1.5, " Hi.", 0.98765)])
    saying = StreamSegment(2.5, 3.0, " and", False)
    assert protocol.event_message("u", SegmentsChanged([said, saying])) == {
        "uid": "u",
        "segments": [
            {
                "start": 1.235,
                "end": 2.5,
                "text": " Hi.",
                "completed": True,
                "words": [{"start": 1.235, "end": 1.5, "word": " Hi.", "probability": 0.988}],
            },
            {"start": 2.5, "end": 3.0, "text": " and", "completed": False},
        ],
    }
    assert protocol.event_message("u", LanguageDetected("de", 0.987654)) == {
        "uid": "u",
        "language": "de",
        "language_prob": 0.9877,
    }


def test_diarization_decodes_word_timings_but_sends_words_only_when_asked():
    """Finals need word timings to be split where the speaker changes: with diarization the
    session decodes them whatever the client asked, and the words go out only if it asked."""
    plain = protocol.parse_config(json.dumps({"uid": "a"}))
    assert plain.session.word_timestamps is False and plain.send_words is False
    diarized = protocol.parse_config(json.dumps({"uid": "b", "enable_diarization": True}))
    assert diarized.session.word_timestamps is True and diarized.send_words is False
    asked = protocol.parse_config(json.dumps({"uid": "c", "diarize": True, "word_timestamps": True}))
    assert asked.session.word_timestamps is True and asked.send_words is True
    said = StreamSegment(1.0, 2.0, " Hi.", True, [Word(1.0, 2.0, " Hi.", 0.9)])
    message = protocol.event_message("u", SegmentsChanged([said]), lambda s: "SPEAKER_00", words=False)
    assert message["segments"] == [
        {"start": 1.0, "end": 2.0, "text": " Hi.", "completed": True, "speaker": "SPEAKER_00"}
    ]


@pytest.mark.parametrize(("text", "value"), [("yes", True), ("On", True), ("no", False), ("0", False)])
def test_booleans_read_alike_on_the_websocket_rest_and_the_command_line(text, value):
    from multidict import MultiDict

    from whisper_live.faces.http.uploads import Form
    from whisper_live.settings import parse_bool

    config = protocol.parse_config(json.dumps({"uid": "u", "use_vad": text}))
    assert config.session.use_vad is value
    assert Form(MultiDict({"vad_filter": text})).flag("vad_filter", not value) is value
    assert parse_bool(text, "X") is value


def test_a_word_that_is_no_boolean_is_an_error_everywhere():
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_config(json.dumps({"uid": "u", "use_vad": "maybe"}))


def test_a_diarized_stream_commits_only_utterances_long_enough_for_its_speaker_labels():
    from whisper_live.core.options import DIARIZED_COMMIT_AFTER

    plain = protocol.parse_config(json.dumps({"uid": "a"}))
    diarized = protocol.parse_config(json.dumps({"uid": "a", "enable_diarization": True}))
    assert plain.session.commit_after < diarized.session.commit_after == DIARIZED_COMMIT_AFTER
