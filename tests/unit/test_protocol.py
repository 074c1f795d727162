"""WhisperLive wire protocol: parsing a client's configuration."""

from __future__ import annotations

import json

import pytest

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


@pytest.mark.parametrize(
    "raw",
    ["nope", b"\xff\xfe\x00", "[]", json.dumps({"uid": ""}), json.dumps({"uid": "a", "audio_format": "mp3"})],
)
def test_bad_configs_are_protocol_errors(raw):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_config(raw)
