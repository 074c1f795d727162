"""OpenAI's Realtime transcription protocol as data: the session configuration a client
sets, the events it sends parsed and checked, the events we send built. No sockets here.

Both shapes of ``session.update`` are read: the current one (``session.type:
"transcription"``, ``audio.input.format`` / ``.transcription`` / ``.turn_detection`` /
``.noise_reduction``, ``include``) and the older beta one (``transcription_session.update``
with ``input_audio_format``, ``input_audio_transcription``, ``turn_detection``), which
clients written against the beta still send. A field of the wrong type or value is an
``EventError``, answered with an ``error`` event in OpenAI's shape; the socket stays open.
"""

from __future__ import annotations

import copy
import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from ...core.decodes import Word
from ...core.vad import VadParameters
from ...engine.diarization import MAX_SPEAKERS
from ...engine.speaker_encoder import weights_path
from ...errors import Unsupported

LOGPROBS = "item.input_audio_transcription.logprobs"
# OpenAI's transcription model names: served by this server's default model.
OPENAI_MODELS = {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-transcribe-diarize"}
OPENAI_MODELS |= {"gpt-realtime-whisper", "gpt-4o-transcribe-latest", "gpt-4o-mini-transcribe-2025-12-15"}

# audio.input.format types (and the beta's input_audio_format names) -> (PcmIntake encoding, rate)
FORMATS = {"audio/pcm": ("int16", 24000), "audio/pcmu": ("mulaw", 8000), "audio/pcma": ("alaw", 8000)}
BETA_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
PCM_RATES = (24000, 16000)  # OpenAI takes 24 kHz only; 16 kHz spares a resampling

DEFAULT_TURN_DETECTION = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
}
MANUAL_SILENCE_MS = 60_000  # manual commits: the VAD never closes an item by itself


class EventError(Exception):
    """A client event we cannot act on: an ``error`` event, the session goes on."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value", event_id=None):
        super().__init__(message)
        self.message, self.param, self.code, self.event_id = message, param, code, event_id


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass
class SessionConfig:
    """A transcription session as the client configured it (OpenAI's defaults first)."""

    id: str = field(default_factory=lambda: new_id("sess"))
    format: dict = field(default_factory=lambda: {"type": "audio/pcm", "rate": 24000})
    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None
    turn_detection: dict | None = field(default_factory=lambda: dict(DEFAULT_TURN_DETECTION))
    noise_reduction: dict | None = None
    include: list[str] = field(default_factory=list)
    diarize: bool = False  # our extension: a "speaker" on each completed item
    max_speakers: int | None = None

    @property
    def pcm(self) -> tuple[str, int]:
        encoding, rate = FORMATS[self.format["type"]]
        return encoding, int(self.format.get("rate") or rate)

    @property
    def served_model(self) -> str | None:
        """The model to ask the pool for: None (the server's default) for OpenAI's names."""
        return None if self.model in OPENAI_MODELS else self.model

    def vad(self) -> VadParameters:
        """The session's VAD parameters: server_vad's knobs, or (manual commits) a silence
        so long that only ``input_audio_buffer.commit`` ends an item."""
        params = VadParameters()
        turn = self.turn_detection
        if turn is None:
            params.min_silence_duration_ms = MANUAL_SILENCE_MS
            return params
        if turn.get("threshold") is not None:
            params.threshold = float(turn["threshold"])
        if turn.get("silence_duration_ms") is not None:
            params.min_silence_duration_ms = int(turn["silence_duration_ms"])
        if turn.get("prefix_padding_ms") is not None:
            params.speech_pad_ms = int(turn["prefix_padding_ms"])
        return params

    @property
    def logprobs(self) -> bool:
        return LOGPROBS in self.include

    def describe(self) -> dict:
        """The session object of ``session.created`` / ``session.updated``."""
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": self.id,
            "audio": {
                "input": {
                    "format": dict(self.format),
                    "transcription": {
                        "model": self.model,
                        "language": self.language,
                        "prompt": self.prompt,
                        **({"diarize": True, "max_speakers": self.max_speakers} if self.diarize else {}),
                    },
                    "turn_detection": copy.deepcopy(self.turn_detection),
                    "noise_reduction": copy.deepcopy(self.noise_reduction),
                }
            },
            "include": list(self.include),
        }


def _object(value: Any, param: str) -> dict:
    if not isinstance(value, dict):
        raise EventError(
            f"Invalid type for '{param}': expected an object, but got {type(value).__name__}", param
        )
    return value


def _optional_text(value: Any, param: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise EventError(
            f"Invalid type for '{param}': expected a string, but got {type(value).__name__}", param
        )
    return value or None


def _number(value: Any, param: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EventError(
            f"Invalid type for '{param}': expected a number, but got {type(value).__name__}", param
        )
    if not low <= value <= high:
        raise EventError(f"Invalid value for '{param}': {value} is not between {low:g} and {high:g}", param)
    return value


def _format(value: Any, param: str) -> dict:
    if isinstance(value, str):  # the beta's names
        if value not in BETA_FORMATS:
            raise EventError(
                f"Invalid value for '{param}': {value!r}; supported: {', '.join(BETA_FORMATS)}", param
            )
        return {"type": BETA_FORMATS[value], **({"rate": 24000} if value == "pcm16" else {})}
    value = _object(value, param)
    kind = value.get("type", "audio/pcm")
    if kind not in FORMATS:
        raise EventError(
            f"Invalid value for '{param}.type': {kind!r}; supported: {', '.join(FORMATS)}", param + ".type"
        )
    if kind != "audio/pcm":
        return {"type": kind}
    rate = value.get("rate", 24000)
    if rate not in PCM_RATES:
        raise EventError(
            f"Invalid value for '{param}.rate': {rate!r}; supported: 24000, 16000", param + ".rate"
        )
    return {"type": kind, "rate": rate}


def _turn_detection(value: Any, param: str) -> dict | None:
    if value is None:
        return None
    value = _object(value, param)
    kind = value.get("type", "server_vad")
    if kind not in ("server_vad", "semantic_vad"):
        raise EventError(
            f"Invalid value for '{param}.type': {kind!r}; supported: server_vad, or null", param + ".type"
        )
    turn = {"type": "server_vad"}  # semantic_vad is served by the same VAD (its eagerness is not read)
    turn["threshold"] = _number(value.get("threshold", 0.5), param + ".threshold", 0.0, 1.0)
    turn["prefix_padding_ms"] = int(
        _number(value.get("prefix_padding_ms", 300), param + ".prefix_padding_ms", 0, 10_000)
    )
    silence = _number(value.get("silence_duration_ms", 500), param + ".silence_duration_ms", 0, 10_000)
    turn["silence_duration_ms"] = int(silence)
    return turn


def _transcription(config: SessionConfig, value: Any, param: str) -> None:
    value = _object(value, param)
    if "model" in value:
        model = _optional_text(value["model"], param + ".model")
        config.model = model or config.model
    if "language" in value:
        config.language = _optional_text(value["language"], param + ".language")
    if "prompt" in value:
        config.prompt = _optional_text(value["prompt"], param + ".prompt")
    # Our extension (OpenAI has none for live speakers): "diarize": true, optional
    # "max_speakers", as the WhisperLive face's enable_diarization / max_speakers.
    if "diarize" in value:
        diarize = value["diarize"]
        if diarize is not None and not isinstance(diarize, bool):
            raise EventError(
                f"Invalid type for '{param}.diarize': expected a boolean, but got {type(diarize).__name__}",
                param + ".diarize",
            )
        if diarize:
            try:
                weights_path()  # no speaker model installed: refused before any audio
            except Unsupported as exc:
                raise EventError(exc.message, param + ".diarize", code="unsupported") from exc
        config.diarize = bool(diarize)
    if "max_speakers" in value:
        speakers = _number(value["max_speakers"], param + ".max_speakers", 1, MAX_SPEAKERS)
        if speakers is not None and speakers != int(speakers):
            raise EventError(
                f"Invalid type for '{param}.max_speakers': expected an integer", param + ".max_speakers"
            )
        config.max_speakers = None if speakers is None else int(speakers)


def _include(value: Any, param: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or any(item != LOGPROBS for item in value):
        raise EventError(f"Invalid value for '{param}': expected a list of {LOGPROBS!r}", param)
    return list(value)


def updated(config: SessionConfig, event: dict) -> SessionConfig:
    """The configuration after a ``session.update`` (current shape) or a
    ``transcription_session.update`` (beta shape); the old one is left as it was when the
    update is refused, as OpenAI does."""
    new = copy.deepcopy(config)
    session = _object(event.get("session"), "session")
    if event["type"] == "transcription_session.update":
        if "input_audio_format" in session:
            new.format = _format(session["input_audio_format"], "session.input_audio_format")
        if "input_audio_transcription" in session and session["input_audio_transcription"] is not None:
            _transcription(new, session["input_audio_transcription"], "session.input_audio_transcription")
        if "turn_detection" in session:
            new.turn_detection = _turn_detection(session["turn_detection"], "session.turn_detection")
        if "input_audio_noise_reduction" in session:
            new.noise_reduction = session["input_audio_noise_reduction"]
        if "include" in session:
            new.include = _include(session["include"], "session.include")
        return new
    kind = session.get("type", "transcription")
    if kind != "transcription":
        raise EventError(
            f"Invalid value for 'session.type': {kind!r}; this server serves transcription sessions only"
            " (connect with ?intent=transcription and send session.type 'transcription')",
            "session.type",
        )
    audio = _object(session.get("audio", {}), "session.audio")
    inputs = _object(audio.get("input", {}), "session.audio.input")
    if "format" in inputs:
        new.format = _format(inputs["format"], "session.audio.input.format")
    if "transcription" in inputs and inputs["transcription"] is not None:
        _transcription(new, inputs["transcription"], "session.audio.input.transcription")
    if "turn_detection" in inputs:
        new.turn_detection = _turn_detection(inputs["turn_detection"], "session.audio.input.turn_detection")
    if "noise_reduction" in inputs:
        if inputs["noise_reduction"] is not None:
            _object(inputs["noise_reduction"], "session.audio.input.noise_reduction")
        new.noise_reduction = inputs["noise_reduction"]  # accepted; Whisper needs no denoising
    if "include" in session:
        new.include = _include(session["include"], "session.include")
    return new


CLIENT_EVENTS = (
    "session.update",
    "transcription_session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)


def parse_event(text: str) -> dict:
    """A client event, its ``type`` known; anything else is an ``EventError``."""
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise EventError(f"The event is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(event, dict):
        raise EventError("An event must be a JSON object", code="invalid_json")
    kind = event.get("type")
    event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
    if kind not in CLIENT_EVENTS:
        raise EventError(
            f"Invalid value for 'type': {kind!r}; a transcription session takes {', '.join(CLIENT_EVENTS)}",
            "type",
            event_id=event_id,
        )
    if kind == "input_audio_buffer.append" and not isinstance(event.get("audio"), str):
        raise EventError(
            "Missing or invalid 'audio': a base64 string is required", "audio", event_id=event_id
        )
    return event


# ---------------------------------------------------------------- server events
def server_event(kind: str, **fields) -> dict:
    return {"type": kind, "event_id": new_id("event"), **fields}


def error(exc: EventError) -> dict:
    return server_event(
        "error",
        error={
            "type": "invalid_request_error",
            "code": exc.code,
            "message": exc.message,
            "param": exc.param,
            "event_id": exc.event_id,
        },
    )


def server_error(message: str, code: str) -> dict:
    return server_event(
        "error",
        error={"type": "server_error", "code": code, "message": message, "param": None, "event_id": None},
    )


def logprobs(words: list[Word]) -> list[dict]:
    """Per word (our tokens for this purpose): the text, log of the model's probability, bytes."""
    return [
        {"token": w.word, "logprob": math.log(max(w.probability, 1e-12)), "bytes": list(w.word.encode())}
        for w in words
    ]


def completed(
    item_id: str,
    transcript: str,
    seconds: float,
    words: list[Word] | None,
    with_logprobs: bool,
    speaker: str | None = None,
) -> dict:
    """An item's ``completed`` event; ``speaker`` (our diarize extension) when labelled."""
    event = server_event(
        "conversation.item.input_audio_transcription.completed",
        item_id=item_id,
        content_index=0,
        transcript=transcript,
        usage={"type": "duration", "seconds": round(seconds, 3)},
    )
    if with_logprobs:
        event["logprobs"] = logprobs(words or [])
    if speaker is not None:
        event["speaker"] = speaker
    return event


def delta(item_id: str, text: str, words: list[Word] | None, with_logprobs: bool) -> dict:
    event = server_event(
        "conversation.item.input_audio_transcription.delta", item_id=item_id, content_index=0, delta=text
    )
    if with_logprobs:
        event["logprobs"] = logprobs(words or [])
    return event
