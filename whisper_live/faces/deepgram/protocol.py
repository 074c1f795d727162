"""Deepgram's ``/v1/listen`` wire format: query parameters, responses, live messages, errors.

Everything that knows Deepgram's key names lives here, so the REST handler and the
WebSocket transport only move bytes. Deliberate departures: ``language`` defaults to
English as Deepgram's does, but any Whisper language (or ``detect_language``) works;
Whisper always punctuates, so ``punctuate=false`` (Deepgram's default) gives Deepgram's
plain form (lower case, no punctuation) from the punctuated words; ``start`` and
``duration`` (in ms) crop the audio and times stay in the original file's time.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from ... import errors
from ...core.decodes import Segment, Word
from ...engine.capabilities import normalize_language
from ...engine.diarization import speaker_runs
from ...engine.models import ModelInfo
from ...engine.speaker_encoder import weights_path
from ..http.face import Statuses, http_status
from ..http.uploads import Form

# Deepgram's names for headerless audio → whisper_live.media's.
PCM_ENCODINGS = {"linear16": "int16", "linear32": "int32", "mulaw": "mulaw", "alaw": "alaw"}
# Encodings that come in a container PyAV recognises by itself.
CONTAINER_ENCODINGS = ("flac", "opus", "ogg-opus", "ogg_opus", "webm-opus", "mp3", "aac")
RESPONSE_FORMATS = ("json", "srt", "vtt")
ARCH = "whisper"
_NAMESPACE = uuid.UUID("6a0f35d4-1b1e-4c2c-9a7d-0e2f4b8f6d11")
_PLAIN = re.compile(r"[^\w'-]+")


# Where Deepgram answers differently from our other HTTP faces.
STATUS_OVERRIDES: Statuses = [
    (errors.ModelNotFound, 400),  # Deepgram: "No such model/language/tier combination found"
]


def status_of(exc: errors.WhisperLiveError) -> int:
    return http_status(exc, STATUS_OVERRIDES)


def error_body(exc: errors.WhisperLiveError, request_id: str) -> dict:
    return {"err_code": exc.code.upper(), "err_msg": exc.message, "request_id": request_id}


def error_response(exc: errors.WhisperLiveError, status: int | None = None) -> web.Response:
    """Deepgram's error shape; the request id is the one the handler gave the request."""
    request_id = getattr(exc, "request_id", None) or str(uuid.uuid4())
    return web.json_response(
        error_body(exc, request_id), status=status or status_of(exc), headers={"dg-request-id": request_id}
    )


# ----------------------------------------------------------------------------- parameters


@dataclass
class ListenOptions:
    """What a ``/v1/listen`` request asked for, prerecorded or live."""

    model: str | None = None
    language: str | None = "en"
    detect_language: bool = False
    punctuate: bool = False
    diarize: bool = False
    utterances: bool = False
    utt_split: float = 0.8
    paragraphs: bool = False
    prompt: str | None = None
    hotwords: str | None = None
    start: float = 0.0  # seconds
    duration: float | None = None
    response_format: str = "json"
    multichannel: bool = False
    encoding: str | None = None  # media's PCM name; None: a container
    sample_rate: int = 16000
    channels: int = 1
    # live only
    interim_results: bool = False
    endpointing_ms: int | None = None  # None: our VAD's default
    speech_final: bool = True  # False when endpointing=false
    utterance_end_ms: int | None = None
    vad_events: bool = False
    warnings: list[dict] = field(default_factory=list)

    def warn(self, parameter: str, message: str) -> None:
        self.warnings.append({"parameter": parameter, "type": "unsupported", "message": message})


def _language(form: Form, options: ListenOptions) -> None:
    detect = form.flag("detect_language", False)
    language = form.text("language")
    if language is not None and language.lower() == "multi":
        language = None
        detect = True
    elif language is not None:
        language = language.split("-", 1)[0]  # en-US → en: Whisper has no regional variants
    if detect and language is None:
        options.language, options.detect_language = None, True
    else:
        options.language = normalize_language(language or "en")


def _terms(form: Form) -> str | None:
    """keywords (``word:boost``, boosts dropped) and keyterms as faster-whisper's hotwords."""
    words = [k.rsplit(":", 1)[0] if re.search(r":-?\d+(\.\d+)?$", k) else k for k in form.list("keywords")]
    terms = [*words, *form.list("keyterm")]
    return " ".join(t for t in terms if t) or None


def _audio_format(form: Form, options: ListenOptions) -> None:
    encoding = form.text("encoding")
    options.channels = form.number("channels", 1, 1, 8, int)
    if encoding is None or encoding in CONTAINER_ENCODINGS:
        return
    if encoding not in PCM_ENCODINGS:
        raise errors.InvalidRequest(
            f"encoding {encoding!r} is not supported: use {', '.join(PCM_ENCODINGS)} for raw audio,"
            " or send a container (WAV, FLAC, Ogg/WebM Opus, MP3, ...) without encoding",
            param="encoding",
        )
    if form.text("sample_rate") is None:
        raise errors.InvalidRequest(f"encoding={encoding} needs sample_rate", param="sample_rate")
    options.encoding = PCM_ENCODINGS[encoding]
    options.sample_rate = form.number("sample_rate", 16000, 1000, 384_000, int)


def parse_options(form: Form, live: bool) -> ListenOptions:
    """Deepgram's query parameters. Unknown ones are ignored; wrong values are a 400."""
    options = ListenOptions()
    options.model = form.text("model")
    _language(form, options)
    options.punctuate = form.flag("punctuate", False) or form.flag("smart_format", False)
    options.diarize = form.flag("diarize", False)
    if options.diarize and live:
        options.warn("diarize", "live /v1/listen streams carry no speaker labels (prerecorded requests do)")
    elif options.diarize:
        weights_path()  # no speaker model installed: a clear 400 before any transcription
    options.utterances = form.flag("utterances", False)
    options.utt_split = form.number("utt_split", 0.8, 0.0, 60.0)
    options.paragraphs = form.flag("paragraphs", False)
    prompt = form.list("prompt")
    options.prompt = ", ".join(prompt) if prompt else None
    options.hotwords = _terms(form)
    options.multichannel = form.flag("multichannel", False)
    _audio_format(form, options)
    if not live:
        options.response_format = form.choice("response_format", "json", RESPONSE_FORMATS)
        start = form.number("start", 0, 0, 86_400_000)
        options.start = start / 1000
        duration = form.number("duration", None, 1, 86_400_000)
        options.duration = duration / 1000 if duration is not None else None
        return options
    options.interim_results = form.flag("interim_results", False)
    endpointing = form.text("endpointing")
    if endpointing is not None and endpointing.lower() == "false":
        options.speech_final = False
    elif endpointing is not None and endpointing.lower() != "true":
        options.endpointing_ms = form.number("endpointing", 10, 0, 60_000, int)
    if form.text("utterance_end_ms") is not None:
        options.utterance_end_ms = form.number("utterance_end_ms", 1000, 100, 60_000, int)
    options.vad_events = form.flag("vad_events", False)
    return options


# ----------------------------------------------------------------------------- results


def model_uuid(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def model_info(info: ModelInfo) -> dict:
    return {"name": info.name, "version": "whisper", "arch": ARCH}


def plain(word: str) -> str:
    """Deepgram's ``word``: lower case without punctuation."""
    return _PLAIN.sub("", word.strip().lower()) or word.strip().lower()


def words_json(words: list[Word], offset: float = 0.0, punctuate: bool = True) -> list[dict]:
    out = []
    for w in words:
        item = {
            "word": plain(w.word),
            "start": round(w.start + offset, 3),
            "end": round(w.end + offset, 3),
            "confidence": round(w.probability, 4),
        }
        if punctuate:
            item["punctuated_word"] = w.word.strip()
        if w.speaker is not None:
            item["speaker"] = speaker_number(w.speaker)
        out.append(item)
    return out


def speaker_number(label: str) -> int:
    """Deepgram numbers speakers from 0; ours are labelled SPEAKER_00, SPEAKER_01, ..."""
    return int(label.rsplit("_", 1)[-1])


def transcript(words: list[Word], text: str, punctuate: bool) -> str:
    if punctuate:
        return " ".join(text.split())
    return " ".join(plain(w.word) for w in words)


def confidence(words: list[Word]) -> float:
    return round(sum(w.probability for w in words) / len(words), 4) if words else 0.0


def _sentences(words: list[Word]) -> list[list[Word]]:
    sentences: list[list[Word]] = [[]]
    for w in words:
        sentences[-1].append(w)
        if re.search(r"[.!?]['\"»”)]*$", w.word.strip()):
            sentences.append([])
    return [s for s in sentences if s]


def _groups(words: list[Word], gap: float) -> list[list[Word]]:
    """Words split wherever the speaker paused at least ``gap`` seconds, and (diarized)
    wherever another speaker takes over: an utterance or paragraph holds one speaker."""
    groups: list[list[Word]] = []
    for run in speaker_runs(words):
        for i, w in enumerate(run):
            if i and w.start - groups[-1][-1].end < gap:
                groups[-1].append(w)
            else:
                groups.append([w])
    return groups


def paragraphs_json(words: list[Word], offset: float, gap: float = 1.5) -> dict:
    """Deepgram's paragraphs: sentences grouped wherever the speaker paused ``gap`` seconds."""
    paragraphs = []
    for group in _groups(words, gap):
        sentences = [
            {
                "text": " ".join(w.word.strip() for w in s),
                "start": round(s[0].start + offset, 3),
                "end": round(s[-1].end + offset, 3),
            }
            for s in _sentences(group)
        ]
        paragraphs.append(
            {
                "sentences": sentences,
                "num_words": len(group),
                "start": round(group[0].start + offset, 3),
                "end": round(group[-1].end + offset, 3),
            }
        )
        if group[0].speaker is not None:
            paragraphs[-1]["speaker"] = speaker_number(group[0].speaker)
    # Deepgram's paragraph transcript: paragraphs after a blank line, a diarized one led by
    # its speaker ("Speaker 0: ...")
    text = "\n".join(
        "\n"
        + (f"Speaker {p['speaker']}: " if "speaker" in p else "")
        + " ".join(s["text"] for s in p["sentences"])
        for p in paragraphs
    )
    return {"transcript": text, "paragraphs": paragraphs}


def utterances_json(channels: list[list[Word]], options: ListenOptions, offset: float) -> list[dict]:
    out = []
    for index, words in enumerate(channels):
        for group in _groups(words, options.utt_split):
            out.append(
                {
                    "start": round(group[0].start + offset, 3),
                    "end": round(group[-1].end + offset, 3),
                    "confidence": confidence(group),
                    "channel": index,
                    "transcript": transcript(
                        group, " ".join(w.word.strip() for w in group), options.punctuate
                    ),
                    "words": words_json(group, offset, options.punctuate),
                    "id": str(uuid.uuid4()),
                }
            )
            if group[0].speaker is not None:
                out[-1]["speaker"] = speaker_number(group[0].speaker)
    return sorted(out, key=lambda u: (u["start"], u["channel"]))


@dataclass
class ChannelResult:
    segments: list[Segment]
    language: str
    language_probability: float

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words or []]

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()


def prerecorded_json(
    request_id: str,
    body: bytes,
    info: ModelInfo,
    duration: float,
    channels: list[ChannelResult],
    options: ListenOptions,
) -> dict:
    """Deepgram's prerecorded response. Times are in the uploaded file's time (crop offset added)."""
    uid = model_uuid(info.name)
    metadata: dict = {
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": hashlib.sha256(body).hexdigest(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        "duration": round(duration, 3),
        "channels": len(channels),
        "models": [uid],
        "model_info": {uid: model_info(info)},
    }
    if options.warnings:
        metadata["warnings"] = options.warnings
    offset = options.start
    results: dict = {"channels": []}
    for channel in channels:
        words = channel.words
        alternative: dict = {
            "transcript": transcript(words, channel.text, options.punctuate),
            "confidence": confidence(words),
            "words": words_json(words, offset, options.punctuate),
        }
        if options.paragraphs:
            alternative["paragraphs"] = paragraphs_json(words, offset)
        item: dict = {"alternatives": [alternative]}
        if options.detect_language:
            item["detected_language"] = channel.language
            item["language_confidence"] = round(channel.language_probability, 4)
        results["channels"].append(item)
    if options.utterances:
        results["utterances"] = utterances_json([c.words for c in channels], options, offset)
    return {"metadata": metadata, "results": results}


def subtitle_segments(channels: list[ChannelResult], offset: float) -> list[Segment]:
    """Every channel's segments in file time, in order of start (for SRT/VTT)."""
    return sorted((s.shifted(offset) for c in channels for s in c.segments), key=lambda s: s.start)


# ----------------------------------------------------------------------------- live messages


def opened(request_id: str, info: ModelInfo) -> dict:
    """Sent first on a live connection: the reference's client reads the request id from it.
    It has the closing Metadata's fields (nothing received yet), for clients that parse both."""
    return closing_metadata(request_id, info, 0.0, 1, hashlib.sha256(b"").hexdigest())


def closing_metadata(request_id: str, info: ModelInfo, duration: float, channels: int, sha256: str) -> dict:
    uid = model_uuid(info.name)
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": sha256,
        "created": _now(),
        "duration": round(duration, 3),
        "channels": channels,
        "models": [uid],
        "model_info": {uid: model_info(info)},
    }


def results(
    request_id: str,
    info: ModelInfo,
    channel: tuple[int, int],
    start: float,
    end: float,
    text: str,
    words: list[Word],
    *,
    offset: float,
    is_final: bool,
    speech_final: bool,
    from_finalize: bool,
    punctuate: bool,
) -> dict:
    uid = model_uuid(info.name)
    return {
        "type": "Results",
        "channel_index": list(channel),
        "duration": round(max(0.0, end - start), 3),
        "start": round(start + offset, 3),
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {
            "alternatives": [
                {
                    "transcript": transcript(words, text, punctuate) if words else _text(text, punctuate),
                    "confidence": confidence(words),
                    "words": words_json(words, offset, punctuate),
                }
            ]
        },
        "metadata": {"request_id": request_id, "model_info": model_info(info), "model_uuid": uid},
    }


def _text(text: str, punctuate: bool) -> str:
    return " ".join(text.split()) if punctuate else " ".join(plain(w) for w in text.split())


def speech_started(channel: tuple[int, int], timestamp: float) -> dict:
    return {"type": "SpeechStarted", "channel": list(channel), "timestamp": round(timestamp, 3)}


def utterance_end(channel: tuple[int, int], last_word_end: float) -> dict:
    return {"type": "UtteranceEnd", "channel": list(channel), "last_word_end": round(last_word_end, 3)}


def error_message(exc: errors.WhisperLiveError) -> dict:
    return {"type": "Error", "variant": exc.code, "description": exc.message}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def dumps(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


# ----------------------------------------------------------------------------- models


def stt_model(info: ModelInfo) -> dict:
    """One entry of Deepgram's ``GET /v1/models`` ``stt`` list (the listing is shared with
    OpenAI's ``data``)."""
    return {
        "name": info.name,
        "canonical_name": info.name,
        "architecture": ARCH,
        "languages": ["multi"] if info.multilingual else ["en"],
        "version": "whisper",
        "uuid": model_uuid(info.name),
        "batch": True,
        "streaming": True,
        "formatted_output": True,
    }
