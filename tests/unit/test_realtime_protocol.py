"""The Realtime face's logic without a socket or a model: session configuration in both
shapes, event checks, the deltas' agreement rule, and client secrets in the gate."""

from __future__ import annotations

import json
import time

import pytest

from whisper_live.errors import Unauthorized, Unsupported
from whisper_live.faces.realtime import protocol
from whisper_live.faces.realtime.live import Item, _stable
from whisper_live.faces.realtime.protocol import EventError, SessionConfig
from whisper_live.gate import secrets
from whisper_live.gate.credentials import answered_subprotocol, presented_secret
from whisper_live.gate.gate import Gate
from whisper_live.gate.keys import KeyStore


def update(session: dict, kind: str = "session.update", config: SessionConfig | None = None) -> SessionConfig:
    return protocol.updated(config or SessionConfig(), {"type": kind, "session": session})


def test_defaults_are_openais():
    config = SessionConfig()
    assert config.pcm == ("int16", 24000)
    assert config.turn_detection["type"] == "server_vad"
    vad = config.vad()
    assert (vad.threshold, vad.min_silence_duration_ms, vad.speech_pad_ms) == (0.5, 500, 300)
    assert config.served_model is None  # whisper-1: the server's default model


def test_current_shape_sets_format_transcription_vad_and_logprobs():
    config = update(
        {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": "tiny.en", "language": "en", "prompt": "Kat"},
                    "turn_detection": {"type": "server_vad", "threshold": 0.7, "silence_duration_ms": 800},
                    "noise_reduction": {"type": "near_field"},
                }
            },
            "include": [protocol.LOGPROBS],
        }
    )
    assert config.pcm == ("mulaw", 8000)
    assert (config.served_model, config.language, config.prompt) == ("tiny.en", "en", "Kat")
    assert config.vad().threshold == 0.7 and config.vad().min_silence_duration_ms == 800
    assert config.logprobs
    described = config.describe()
    assert described["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert described["include"] == [protocol.LOGPROBS]


def test_diarize_extension_in_both_shapes_and_off_again():
    config = update({"audio": {"input": {"transcription": {"diarize": True, "max_speakers": 2}}}})
    assert (config.diarize, config.max_speakers) == (True, 2)
    described = config.describe()["audio"]["input"]["transcription"]
    assert (described["diarize"], described["max_speakers"]) == (True, 2)
    beta = update({"input_audio_transcription": {"diarize": True}}, kind="transcription_session.update")
    assert (beta.diarize, beta.max_speakers) == (True, None)
    off = update({"audio": {"input": {"transcription": {"diarize": False}}}}, config=config)
    assert not off.diarize and "diarize" not in off.describe()["audio"]["input"]["transcription"]
    assert not SessionConfig().diarize


def test_diarize_without_the_speaker_model_is_an_unsupported_error(monkeypatch):
    def missing():
        raise Unsupported("speaker diarization is not available on this server", param="diarize")

    monkeypatch.setattr(protocol, "weights_path", missing)
    before = SessionConfig()
    with pytest.raises(EventError) as refused:
        update({"audio": {"input": {"transcription": {"diarize": True}}}}, config=before)
    assert refused.value.code == "unsupported"
    assert refused.value.param == "session.audio.input.transcription.diarize"
    assert "not available" in refused.value.message and not before.diarize
    update({"audio": {"input": {"transcription": {"diarize": False}}}})  # asking for none is fine


def test_an_item_speaker_is_who_talked_longest_and_completed_carries_it():
    item = Item("item_1", 0.0)
    assert item.speaker is None
    item.speakers = {"SPEAKER_00": 1.0, "SPEAKER_01": 2.5}
    assert item.speaker == "SPEAKER_01"
    item.speakers["SPEAKER_00"] += 1.5
    assert item.speaker == "SPEAKER_00"  # a tie: the first heard
    event = protocol.completed(item.id, "Hello.", 4.0, None, False, item.speaker)
    assert event["speaker"] == "SPEAKER_00"
    assert "speaker" not in protocol.completed(item.id, "Hello.", 4.0, None, False)


def test_manual_commits_keep_the_vad_from_closing_items():
    config = update({"audio": {"input": {"turn_detection": None}}})
    assert config.turn_detection is None
    assert config.vad().min_silence_duration_ms == protocol.MANUAL_SILENCE_MS


def test_beta_shape_is_read():
    config = update(
        {
            "input_audio_format": "g711_alaw",
            "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "de"},
            "turn_detection": None,
        },
        kind="transcription_session.update",
    )
    assert config.pcm == ("alaw", 8000) and config.language == "de" and config.turn_detection is None
    assert config.served_model is None
    assert update({"input_audio_format": "pcm16"}, kind="transcription_session.update").pcm == (
        "int16",
        24000,
    )


@pytest.mark.parametrize(
    "session, param",
    [
        ({"type": "realtime"}, "session.type"),
        ({"audio": []}, "session.audio"),
        ({"audio": {"input": {"format": {"type": "audio/opus"}}}}, "session.audio.input.format.type"),
        (
            {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 8000}}}},
            "session.audio.input.format.rate",
        ),
        (
            {"audio": {"input": {"turn_detection": {"threshold": 2}}}},
            "session.audio.input.turn_detection.threshold",
        ),
        (
            {"audio": {"input": {"turn_detection": {"threshold": True}}}},
            "session.audio.input.turn_detection.threshold",
        ),
        (
            {"audio": {"input": {"turn_detection": {"type": "magic"}}}},
            "session.audio.input.turn_detection.type",
        ),
        ({"audio": {"input": {"transcription": {"prompt": 3}}}}, "session.audio.input.transcription.prompt"),
        ({"include": "logprobs"}, "session.include"),
        (
            {"audio": {"input": {"transcription": {"diarize": "yes"}}}},
            "session.audio.input.transcription.diarize",
        ),
        (
            {"audio": {"input": {"transcription": {"diarize": True, "max_speakers": 0}}}},
            "session.audio.input.transcription.max_speakers",
        ),
        (
            {"audio": {"input": {"transcription": {"diarize": True, "max_speakers": 2.5}}}},
            "session.audio.input.transcription.max_speakers",
        ),
    ],
)
def test_bad_fields_are_event_errors_naming_the_field(session, param):
    before = SessionConfig()
    with pytest.raises(EventError) as refused:
        update(session, config=before)
    assert refused.value.param == param
    assert before.turn_detection is not None and before.pcm == ("int16", 24000)  # unchanged


@pytest.mark.parametrize(
    "text, code",
    [
        ("{", "invalid_json"),
        ("3", "invalid_json"),
        (json.dumps({"type": "conversation.item.create"}), "invalid_value"),
        (json.dumps({"type": "input_audio_buffer.append", "audio": 5}), "invalid_value"),
    ],
)
def test_parse_event_refuses_what_it_cannot_act_on(text, code):
    with pytest.raises(EventError) as refused:
        protocol.parse_event(text)
    assert refused.value.code == code
    error = protocol.error(refused.value)
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"


def test_deltas_carry_only_words_two_partials_agree_on():
    assert _stable("", "And so") == ""
    assert _stable("And so my", "And so my fellow") == "And so "
    assert _stable("And so, my fellow", "And so my fellow Americans") == "And "
    assert _stable("And so my fellow Americans", "And so my fellow Americans, ask") == "And so my fellow "


@pytest.fixture
def store(tmp_path) -> KeyStore:
    return KeyStore(tmp_path / "keys.json")


def test_client_secret_is_its_keys_until_it_expires(store):
    secret = store.create("backend")
    key = store.authenticate(secret)
    value, expires = secrets.issue(key, 60, now=1000.0)
    assert value.startswith(secrets.PREFIX) and expires == 1060
    assert secrets.verify(value, store, now=1059.0) == key
    assert secrets.verify(value, store, now=1060.0) is None  # expired
    assert secrets.verify(value[:-2] + "xx", store, now=1001.0) is None  # forged signature
    other = store.authenticate(store.create("other"))
    payload = value[len(secrets.PREFIX) :].split(".")[0]
    assert (
        secrets.verify(
            f"{secrets.PREFIX}{payload}.{secrets.issue(other, 60, now=1000.0)[0].split('.')[1]}",
            store,
            now=1001.0,
        )
        is None
    )
    assert secrets.verify("ek_garbage", store) is None
    carrying, _ = secrets.issue(key, 60, now=1000.0, session={"audio": {"input": {"turn_detection": None}}})
    assert secrets.verify(carrying, store, now=1001.0) == key
    assert secrets.session_of(carrying) == {"audio": {"input": {"turn_detection": None}}}
    assert secrets.session_of(value) is None and secrets.session_of("ek_%%%") is None
    store.revoke("backend")
    assert secrets.verify(value, store, now=1001.0) is None  # its key is revoked


def test_the_gate_takes_a_client_secret_from_openais_browser_subprotocol(store):
    store.create("backend")
    key = store.entries()[0]
    value, _ = secrets.issue(key, 60)
    gate = Gate(store)
    headers = {"Sec-WebSocket-Protocol": f"realtime, openai-insecure-api-key.{value}"}
    assert presented_secret(headers, {}) == value
    assert gate.admit(headers, {}) == key
    assert answered_subprotocol(["realtime", f"openai-insecure-api-key.{value}"]) == "realtime"
    assert answered_subprotocol(["token", "wl_x"]) == "token"
    assert answered_subprotocol([]) is None
    expired, _ = secrets.issue(key, 60, now=time.time() - 120)
    with pytest.raises(Unauthorized, match="client secret"):
        gate.admit({"Authorization": f"Bearer {expired}"}, {})
