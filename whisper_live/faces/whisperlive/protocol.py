"""WhisperLive's wire format: the client's JSON configuration and the server's messages.

Everything that knows key names lives here, so the transport only moves text and bytes.
Known differences from WhisperLive are deliberate: a missing ``use_vad`` means VAD on,
segment times are numbers, and ``WAIT`` never estimates a negative wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...core.session import LanguageDetected, SegmentsChanged, SessionOptions, StreamSegment
from ...core.vad import VadParameters
from ...engine.capabilities import TASKS, normalize_language
from ...engine.diarization import MAX_SPEAKERS
from ...errors import InvalidRequest

END_OF_AUDIO = "END_OF_AUDIO"
BACKEND = "faster_whisper"


class ProtocolError(ValueError):
    """The client said something we cannot act on; the message goes back as ERROR."""


@dataclass
class ClientConfig:
    uid: str
    model: str | None
    session: SessionOptions
    warnings: list[str] = field(default_factory=list)
    diarize: bool = False  # a "speaker" on completed segments
    max_speakers: int | None = None


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise ProtocolError(f"{key} must be true or false")


def _number(value: Any, key: str, kind: type, low: float, high: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ProtocolError(f"{key} must be a number")
    try:
        number = kind(value)
    except ValueError as exc:
        raise ProtocolError(f"{key} must be a number") from exc
    if not low <= number <= high:
        raise ProtocolError(f"{key} must be between {low} and {high}")
    return number


def _text(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{key} must be a string")
    return value or None


def parse_config(raw: str | bytes) -> ClientConfig:
    """The first frame of a connection. Unknown keys are ignored, as WhisperLive does."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("the first message must be the JSON configuration, not audio") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"the first message must be a JSON configuration: {exc}") from exc
    if not isinstance(data, dict):
        raise ProtocolError("the configuration must be a JSON object")
    uid = data.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ProtocolError("the configuration needs a 'uid' string")
    opts = SessionOptions()
    warnings = []
    try:
        opts.language = normalize_language(_text(data.get("language"), "language"))
    except InvalidRequest as exc:
        raise ProtocolError(exc.message) from exc
    task = data.get("task") or "transcribe"
    if task not in TASKS:
        raise ProtocolError("task must be 'transcribe' or 'translate'")
    opts.task = task
    if data.get("use_vad") is not None:
        opts.use_vad = _bool(data["use_vad"], "use_vad")
    if data.get("send_last_n_segments") is not None:
        opts.send_last_n_segments = _number(
            data["send_last_n_segments"], "send_last_n_segments", int, 0, 1000
        )
    if data.get("no_speech_thresh") is not None:
        opts.no_speech_thresh = _number(data["no_speech_thresh"], "no_speech_thresh", float, 0.0, 1.0)
    opts.initial_prompt = _text(data.get("initial_prompt"), "initial_prompt")
    hotwords = data.get("hotwords")
    if isinstance(hotwords, list):
        hotwords = " ".join(str(w) for w in hotwords)
    opts.hotwords = _text(hotwords, "hotwords")
    if data.get("word_timestamps") is not None:
        opts.word_timestamps = _bool(data["word_timestamps"], "word_timestamps")
    audio_format = data.get("audio_format")
    if audio_format not in (None, "int16", "float32"):
        raise ProtocolError("audio_format must be 'int16' or 'float32'")
    opts.audio_format = audio_format
    vad = data.get("vad_parameters")
    if vad is not None:
        if not isinstance(vad, dict):
            raise ProtocolError("vad_parameters must be an object")
        try:
            opts.vad = VadParameters.from_dict(vad)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"vad_parameters: {exc}") from exc
    if data.get("enable_translation") and _bool(data["enable_translation"], "enable_translation"):
        warnings.append(
            "enable_translation is not supported by this server (no translation model);"
            " use task='translate' with a multilingual model for English output"
        )
    model = _text(data.get("model"), "model")
    # WhisperLive's client sends enable_diarization (and max_speakers, default null).
    diarize = any(_bool(data[k], k) for k in ("enable_diarization", "diarize") if data.get(k) is not None)
    max_speakers = None
    if diarize and data.get("max_speakers") is not None:
        max_speakers = _number(data["max_speakers"], "max_speakers", int, 1, MAX_SPEAKERS)
    return ClientConfig(
        uid=uid, model=model, session=opts, warnings=warnings, diarize=diarize, max_speakers=max_speakers
    )


def is_end_of_audio(message: str | bytes) -> bool:
    if isinstance(message, bytes):
        return message == END_OF_AUDIO.encode()
    return message.strip() == END_OF_AUDIO


def server_ready(uid: str) -> dict:
    return {"uid": uid, "message": "SERVER_READY", "backend": BACKEND}


def event_message(
    uid: str,
    event: SegmentsChanged | LanguageDetected,
    speaker_of: Callable[[StreamSegment], str | None] | None = None,
) -> dict:
    """``speaker_of`` (with diarization) gives completed segments their ``speaker``."""
    if isinstance(event, LanguageDetected):
        return {"uid": uid, "language": event.language, "language_prob": round(event.probability, 4)}
    segments = []
    for segment in event.segments:
        body = segment.to_dict()
        speaker = speaker_of(segment) if speaker_of is not None and segment.completed else None
        if speaker is not None:
            body["speaker"] = speaker
        segments.append(body)
    return {"uid": uid, "segments": segments}


def wait(uid: str, minutes: float) -> dict:
    return {"uid": uid, "status": "WAIT", "message": round(max(0.0, minutes), 2)}


def disconnect(uid: str) -> dict:
    return {"uid": uid, "message": "DISCONNECT"}


def error(uid: str | None, message: str) -> dict:
    return {"uid": uid, "status": "ERROR", "message": message}


def warning(uid: str, message: str) -> dict:
    return {"uid": uid, "status": "WARNING", "message": message}


def dumps(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)
