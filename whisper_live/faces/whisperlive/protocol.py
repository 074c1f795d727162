"""WhisperLive's wire format: the client's JSON configuration and the server's messages.

Everything that knows key names lives here, so the transport only moves text and bytes.
Known differences from WhisperLive are deliberate: a missing ``use_vad`` means VAD on,
segment times are numbers, and ``WAIT`` never estimates a negative wait.

Every key WhisperLive's clients send is accepted. Keys for what this server does otherwise
(``clip_audio``, ``same_output_threshold``: segments complete at pauses here) are ignored;
those asking for what it cannot do (``enable_translation``, speaker labels) are accepted
with a ``WARNING``. Our extension: ``sample_rate`` and ``channels`` for clients that cannot
resample (the transport resamples to 16 kHz mono before the session).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...booleans import SPELLINGS, as_bool
from ...core.events import AudioLost, Event, LanguageDetected
from ...core.options import DIARIZED_COMMIT_AFTER, MAX_COMMIT_AFTER, SessionOptions
from ...core.pcm import SAMPLE_RATE
from ...core.transcript import StreamSegment
from ...core.vad import VadParameters
from ...engine.capabilities import TASKS, normalize_language
from ...engine.diarization import MAX_SPEAKERS
from ...errors import InvalidRequest
from .wire import BACKEND, DEFAULT_PORT, END_OF_AUDIO  # noqa: F401  (shared with the client)

CHANNELS = (1, 2)
# A configuration is a few hundred bytes; a bigger one is refused before it is parsed (a
# megabyte of prompt would be tokenized again for every decode).
MAX_CONFIG_BYTES = 64 * 1024


class ProtocolError(ValueError):
    """The client said something we cannot act on; the message goes back as ERROR."""


@dataclass
class ClientConfig:
    uid: str
    model: str | None
    session: SessionOptions
    warnings: list[str] = field(default_factory=list)
    sample_rate: int = SAMPLE_RATE  # of the audio as sent; the transport resamples when not 16 kHz
    channels: int = 1  # interleaved in each frame; downmixed by the same resampler
    diarize: bool = False  # a "speaker" on completed segments (enable_diarization)
    max_speakers: int | None = None
    # Whether segments carry ``words`` (the client asked for word_timestamps). With
    # diarization finals are decoded with word timings anyway, so that a completed segment
    # two speakers share can be split at the word where the speaker changes
    # (``LiveSpeakers``); the words are then only sent to a client that asked for them.
    send_words: bool = False

    @property
    def needs_resampling(self) -> bool:
        return self.sample_rate != SAMPLE_RATE or self.channels != 1


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and (parsed := as_bool(value)) is not None:
        return parsed
    raise ProtocolError(f"{key} must be true or false ({SPELLINGS})")


def _number(value: Any, key: str, kind: type, low: float, high: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ProtocolError(f"{key} must be a number")
    try:
        number = kind(value)
    except (ValueError, OverflowError) as exc:  # "abc", Infinity as an integer
        raise ProtocolError(f"{key} must be a finite number") from exc
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
    """The first frame of a connection. Unknown keys are ignored, as WhisperLive does.
    Anything wrong with it is a ``ProtocolError`` (the ERROR message's text), nothing else."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise ProtocolError(f"the configuration is larger than {MAX_CONFIG_BYTES // 1024} KiB")
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
    if data.get("redetect_language") is not None:  # our extension: see SessionOptions
        opts.redetect_language = _bool(data["redetect_language"], "redetect_language")
    if data.get("commit_after") is not None:  # our extension: see SessionOptions
        opts.commit_after = _number(data["commit_after"], "commit_after", float, 0.0, MAX_COMMIT_AFTER)
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
        target = _text(data.get("target_language"), "target_language")
        warnings.append(
            f"enable_translation{f' (to {target!r})' if target else ''} is not supported by this"
            " server (no translation model); use task='translate' with a multilingual model for"
            " English output"
        )
    sample_rate = SAMPLE_RATE
    if data.get("sample_rate") is not None:
        sample_rate = _number(data["sample_rate"], "sample_rate", int, 1000, 384_000)
    channels = 1
    if data.get("channels") is not None:
        channels = _number(data["channels"], "channels", int, 1, max(CHANNELS))
    # WhisperLive's client sends enable_diarization (and max_speakers, default null).
    diarize = any(_bool(data[k], k) for k in ("enable_diarization", "diarize") if data.get(k) is not None)
    max_speakers = None
    if data.get("max_speakers") is not None:
        max_speakers = _number(data["max_speakers"], "max_speakers", int, 1, MAX_SPEAKERS)
    known = data.get("known_speakers")
    if known is not None and not isinstance(known, list):
        raise ProtocolError("known_speakers must be a list")
    if known:
        warnings.append("known_speakers is not supported: speakers are labelled SPEAKER_00, SPEAKER_01, ...")
    if diarize:
        opts.commit_after = max(opts.commit_after, DIARIZED_COMMIT_AFTER)
    model = _text(data.get("model"), "model")
    send_words = opts.word_timestamps
    if diarize:
        opts.word_timestamps = True
    return ClientConfig(
        uid=uid,
        model=model,
        session=opts,
        warnings=warnings,
        sample_rate=sample_rate,
        channels=channels,
        diarize=diarize,
        max_speakers=max_speakers,
        send_words=send_words,
    )


def is_end_of_audio(message: str | bytes) -> bool:
    if isinstance(message, bytes):
        return message == END_OF_AUDIO.encode()
    return message.strip() == END_OF_AUDIO


def server_ready(uid: str, model: str | None = None) -> dict:
    """``model``: the one serving this stream (our extension; WhisperLive's clients ignore it)."""
    message = {"uid": uid, "message": "SERVER_READY", "backend": BACKEND}
    if model is not None:
        message["model"] = model
    return message


def event_message(
    uid: str,
    event: Event,
    speaker_of: Callable[[StreamSegment], str | None] | None = None,
    words: bool = True,
) -> dict:
    """``speaker_of`` (with diarization) gives completed segments their ``speaker``;
    ``words`` false leaves out the words a segment carries (decoded for diarization, not
    asked for)."""
    if isinstance(event, AudioLost):
        return warning(
            uid, event.describe(), code="audio_lost", start=round(event.start, 3), end=round(event.end, 3)
        )
    if isinstance(event, LanguageDetected):
        return {"uid": uid, "language": event.language, "language_prob": round(event.probability, 4)}
    segments = []
    for segment in event.segments:
        body = _segment(segment)
        if not words:
            body.pop("words", None)
        speaker = speaker_of(segment) if speaker_of is not None and segment.completed else None
        if speaker is not None:
            body["speaker"] = speaker
        segments.append(body)
    return {"uid": uid, "segments": segments}


def _segment(segment: StreamSegment) -> dict:
    """WhisperLive's segment, with ``words`` when the client asked for word timestamps."""
    out = {
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text,
        "completed": segment.completed,
    }
    if segment.words is not None:
        out["words"] = [
            {
                "start": round(w.start, 3),
                "end": round(w.end, 3),
                "word": w.word,
                "probability": round(w.probability, 3),
            }
            for w in segment.words
        ]
    return out


def wait(uid: str, minutes: float) -> dict:
    return {"uid": uid, "status": "WAIT", "message": round(max(0.0, minutes), 2)}


def disconnect(uid: str, reason: str | None = None) -> dict:
    """The stream ends before its audio did. Our extension, ``reason``: "time limit" (the
    client should not come back) or "shutdown" (the replica is draining: a client may resume
    elsewhere); WhisperLive's clients ignore it."""
    message = {"uid": uid, "message": "DISCONNECT"}
    if reason is not None:
        message["reason"] = reason
    return message


def error(uid: str | None, message: str) -> dict:
    return {"uid": uid, "status": "ERROR", "message": message}


def warning(uid: str, message: str, code: str | None = None, **fields: Any) -> dict:
    """``code`` (and any fields) let programs act on a warning without parsing its text:
    ``model_not_found`` (with ``model``, the one served instead), ``audio_lost`` (with
    ``start`` and ``end``). WhisperLive's clients print the message and ignore the rest."""
    message = {"uid": uid, "status": "WARNING", "message": message}
    if code is not None:
        message["code"] = code
    return {**message, **fields}


def dumps(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)
