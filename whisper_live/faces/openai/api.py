"""OpenAI's audio API: /v1/audio/transcriptions, /v1/audio/translations and /v1/models.

A thin adapter: it reads OpenAI's fields, runs ``engine.files.transcribe`` (every decode on
the shared pool at upload priority, so live streams keep their latency) and answers in
OpenAI's formats, with OpenAI's error envelope, which its SDK turns into its exceptions.

The same handlers serve every system that speaks OpenAI's audio API with other defaults:
``routes(prefix, face)`` mounts them under a base URL with that system's ``FaceDefaults``
(``/v1`` OpenAI's, ``/whisperkit/v1`` WhisperKit's, ``/whisperx/v1`` WhisperX's), so a
client needs only its base URL changed and a field it leaves out means what its own server
would make of it. WhisperX's extras (``vtt_json`` and ``aud`` formats, ``suppress_numerals``,
``highlight_words``, ``align``, ``chunk_size``, ``diarize``) are read on every prefix; a
parameter this server cannot honour is a 400, never ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web

from ... import errors
from ...core.decodes import DecodeOptions, DecodeResult, Segment
from ...engine.capabilities import check_task, normalize_language
from ...engine.diarization import MAX_SPEAKERS, check_speaker_bounds, diarize_upload
from ...engine.speaker_encoder import weights_path
from ...engine.tokens import numeral_tokens
from ...formats import highlighted_cues, to_audacity, to_srt, to_text, to_vtt
from ...media import AUDIO_FORMATS, RAW_DTYPES
from ..http.face import MODEL_LISTS, POOL, SETTINGS, UPLOADS, ErrorRenderer, add_face_routes, http_status
from ..http.models import describe, list_models, model_json
from ..http.transcription import acquire, served_model_header, upload_audio, upload_job
from ..http.uploads import MIB, Form, read_param, read_upload

log = logging.getLogger(__name__)

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "vtt_json", "aud")
SUBTITLE_FORMATS = ("srt", "vtt", "vtt_json")
# with diarize: JSON with a speaker per segment and word, or cues prefixed as WhisperX does
DIARIZED_FORMATS = ("verbose_json", "vtt_json", "srt", "vtt")
GRANULARITIES = ("segment", "word")


def status_of(exc: errors.WhisperLiveError) -> int:
    return http_status(exc)


def error_response(exc: errors.WhisperLiveError, status: int | None = None) -> web.Response:
    """OpenAI's error envelope, which its SDK turns into the matching exception class."""
    status = status or status_of(exc)
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": exc.message, "type": kind, "param": exc.param, "code": exc.code}}
    return web.json_response(body, status=status)


@dataclass(frozen=True)
class FaceDefaults:
    """What a field a client leaves out means, for one system whose clients post to these
    handlers; every other field means the same on every prefix."""

    name: str  # the face's tag in /openapi.json
    prefix: str  # base URL the handlers are mounted under (a client's ``base_url``)
    response_format: str = "json"
    suppress_numerals: bool = False
    align: bool = False  # word timings inside segments
    # False: ``stream=true`` is accepted and answered as one response (WhisperX's server
    # accepts the flag and does not use it; its clients expect one JSON body).
    streams: bool = True
    # An upload too short to hold any audio header (WhisperKit's clients test the connection
    # with the 4 bytes ``test``) is answered as no speech instead of a 400.
    probe_is_empty: bool = False
    response_formats: tuple[str, ...] = field(default=RESPONSE_FORMATS)


OPENAI = FaceDefaults("OpenAI", "/v1")
# Shorter than any audio container's header (a WAV header alone is 44 bytes).
PROBE_BYTES = 44


@dataclass
class TranscriptionRequest:
    model: str | None
    response_format: str
    granularities: list[str]
    stream: bool
    logprobs: bool
    segment_words: bool  # word_timestamps=true: words inside each segment too
    options: DecodeOptions
    audio_format: str
    sample_rate: int
    dtype: str | None  # None: sniff int16 / float32
    suppress_numerals: bool = False
    highlight_words: bool = False
    diarize: bool = False  # speaker labels on verbose_json segments and words
    min_speakers: int | None = None
    max_speakers: int | None = None
    speaker_embeddings: bool = False  # WhisperX: each speaker's embedding in the JSON


def parse_request(form: Form, task: str, face: FaceDefaults = OPENAI) -> TranscriptionRequest:
    """OpenAI's fields plus faster-whisper's knobs that other servers expose; a field left
    out takes ``face``'s default."""
    model = form.text("model")
    response_format = form.choice("response_format", face.response_format, face.response_formats)
    granularities = form.list("timestamp_granularities") or ["segment"]
    for item in granularities:
        if item not in GRANULARITIES:
            raise errors.InvalidRequest(
                f"timestamp_granularities must be segment and/or word, not {item!r}",
                param="timestamp_granularities",
            )
    if "word" in granularities and response_format not in ("verbose_json", "vtt_json"):
        raise errors.InvalidRequest(
            "timestamp_granularities=word requires response_format=verbose_json (or vtt_json)",
            param="timestamp_granularities",
        )
    includes = form.list("include")
    if any(item != "logprobs" for item in includes):
        raise errors.InvalidRequest("include may only contain 'logprobs'", param="include")
    logprobs = "logprobs" in includes
    if logprobs and response_format not in ("json", "verbose_json"):
        raise errors.InvalidRequest(
            "include=logprobs requires response_format json or verbose_json", param="include"
        )
    language = normalize_language(form.text("language"))
    temperature = form.number("temperature", 0.0, 0.0, 1.0)
    highlight_words = form.flag("highlight_words", False)
    if highlight_words and response_format not in SUBTITLE_FORMATS:
        raise errors.InvalidRequest(
            "highlight_words applies to subtitles: response_format srt, vtt or vtt_json",
            param="highlight_words",
        )
    # WhisperX's align: word timings, here from the Whisper model's own cross-attention.
    segment_words = form.flag("word_timestamps", False) or form.flag("align", face.align)
    batch_size = form.number("batch_size", 1, 1, 128, int)
    diarize = form.flag("diarize", False)
    options = DecodeOptions(
        language=language,
        task=task,
        beam_size=form.number("beam_size", 5, 1, 20, int),
        # OpenAI: 0 means "start greedy and raise the temperature on failure" (Whisper's fallback).
        temperature=DecodeOptions.temperature if temperature == 0 else temperature,
        initial_prompt=form.text("prompt"),
        hotwords=form.text("hotwords"),
        # diarize: segments are split at the word where the speaker changes
        word_timestamps=segment_words or logprobs or highlight_words or diarize or "word" in granularities,
        condition_on_previous_text=form.flag("condition_on_previous_text", True),
        vad_filter=form.flag("vad_filter", False) or batch_size > 1,
        batch_size=batch_size,
        chunk_length=form.number("chunk_size", None, 1, 30, int),
    )
    stream = form.flag("stream", False) and face.streams
    min_speakers = form.number("min_speakers", None, 1, MAX_SPEAKERS, int)
    max_speakers = form.number("max_speakers", None, 1, MAX_SPEAKERS, int)
    check_speaker_bounds(min_speakers, max_speakers)
    if diarize and response_format not in DIARIZED_FORMATS:
        raise errors.InvalidRequest(
            "diarize=true requires response_format=verbose_json (or WhisperX's vtt_json, srt or vtt)",
            param="diarize",
        )
    if diarize and stream:
        raise errors.InvalidRequest("diarize=true cannot be streamed (stream=true)", param="diarize")
    speaker_embeddings = form.flag("speaker_embeddings", False)
    if not diarize and (min_speakers or max_speakers or speaker_embeddings):
        raise errors.InvalidRequest(
            "min_speakers, max_speakers and speaker_embeddings need diarize=true", param="diarize"
        )
    if diarize:
        weights_path()  # not installed: a clear 400 before any transcription
    return TranscriptionRequest(
        model=model,
        response_format=response_format,
        granularities=granularities,
        stream=stream,
        logprobs=logprobs,
        segment_words=segment_words,
        options=options,
        audio_format=form.choice("audio_format", "auto", AUDIO_FORMATS),
        sample_rate=form.number("sample_rate", 16000, 1000, 384_000, int),
        dtype=form.choice("dtype", "", tuple(RAW_DTYPES)) if form.text("dtype") else None,
        suppress_numerals=form.flag("suppress_numerals", face.suppress_numerals),
        highlight_words=highlight_words,
        diarize=diarize,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        speaker_embeddings=speaker_embeddings,
    )


# ----------------------------------------------------------------------------- responses


def _round(value: float) -> float:
    return round(float(value), 3)


def segment_json(segment: Segment, with_words: bool) -> dict:
    body = {
        "id": segment.id,
        "seek": segment.seek,
        "start": _round(segment.start),
        "end": _round(segment.end),
        "text": segment.text,
        "tokens": segment.tokens,
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }
    if segment.speaker is not None:
        body["speaker"] = segment.speaker
    if with_words:
        body["words"] = [word_json(w) for w in segment.words or []]
    return body


def word_json(word) -> dict:
    body = {
        "word": word.word.strip(),
        "start": _round(word.start),
        "end": _round(word.end),
        "probability": _round(word.probability),
    }
    if word.speaker is not None:
        body["speaker"] = word.speaker
    return body


def token_logprobs(segments: list[Segment]) -> list[dict]:
    """One entry per decoded text token, as OpenAI gives them: the token's text piece as the
    tokenizer yields it, its log probability, and its UTF-8 bytes (a character split across
    tokens has its bytes in both). The probabilities are the model's, for the tokens it
    decoded, read in the word-timing pass (``engine.decoding``)."""
    return [
        {"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes)}
        for s in segments
        for t in s.logprobs or []
    ]


def usage(result: DecodeResult) -> dict:
    return {"type": "duration", "seconds": math.ceil(result.duration)}


def render(
    result: DecodeResult,
    req: TranscriptionRequest,
    model: str,
    embeddings: dict[str, np.ndarray] | None = None,
) -> web.Response:
    """The response in ``req``'s format; ``model`` (the one that served, which an alias or
    ``whisper-1`` does not say) goes in a header and in JSON bodies."""
    fmt = req.response_format
    headers = served_model_header(model)
    if fmt == "text":
        return web.Response(text=to_text(result.segments), content_type="text/plain", headers=headers)
    cues = highlighted_cues(result.segments) if req.highlight_words else result.segments
    if fmt == "srt":
        return web.Response(text=to_srt(cues), content_type="application/x-subrip", headers=headers)
    if fmt == "vtt":
        return web.Response(text=to_vtt(cues), content_type="text/vtt", headers=headers)
    if fmt == "aud":
        return web.Response(text=to_audacity(result.segments), content_type="text/plain", headers=headers)
    body: dict = {"text": result.text}
    if fmt in ("verbose_json", "vtt_json"):
        body = {
            "task": req.options.task,
            "language": result.language,
            "duration": _round(result.duration),
            "text": result.text,
        }
        if "segment" in req.granularities:
            body["segments"] = [segment_json(s, req.segment_words) for s in result.segments]
        if "word" in req.granularities:
            body["words"] = [word_json(w) for s in result.segments for w in s.words or []]
        if fmt == "vtt_json":
            body["vtt_text"] = to_vtt(cues)
        if embeddings is not None:
            body["speaker_embeddings"] = {
                name: [round(float(v), 6) for v in vector] for name, vector in embeddings.items()
            }
    if req.logprobs:
        body["logprobs"] = token_logprobs(result.segments)
    body["usage"] = usage(result)
    body["model"] = model
    return web.json_response(body, headers=headers)


async def _sse(response: web.StreamResponse, event: dict) -> None:
    await response.write(f"data: {json.dumps(event)}\n\n".encode())


async def stream_events(
    request: web.Request, run: Callable, req: TranscriptionRequest, model: str, render_error: ErrorRenderer
) -> web.StreamResponse:
    """OpenAI's server-sent events: one ``transcript.text.delta`` per segment (with the
    segment's ``start`` and ``end``), then ``done``; with ``include[]=logprobs`` each delta
    carries its tokens' and ``done`` all of them.

    Segments arrive as each piece finishes, so a long file shows text long before its end.
    """
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            **served_model_header(model),
        }
    )
    await response.prepare(request)
    segments: asyncio.Queue[Segment | None] = asyncio.Queue()

    async def transcription() -> DecodeResult:
        try:
            return await run(segments.put_nowait)
        finally:
            segments.put_nowait(None)

    task = asyncio.create_task(transcription())
    try:
        first = True
        while (segment := await segments.get()) is not None:
            delta = segment.text.lstrip() if first else segment.text
            first = False
            # start/end are this server's addition (OpenAI's SDK keeps unknown fields): with
            # them the browser page shows progress and writes subtitles from the stream.
            event = {"type": "transcript.text.delta", "delta": delta}
            event.update(start=_round(segment.start), end=_round(segment.end))
            if req.logprobs:
                event["logprobs"] = token_logprobs([segment])
            await _sse(response, event)
        result = await task
        done = {"type": "transcript.text.done", "text": result.text, "usage": usage(result)}
        if req.logprobs:
            done["logprobs"] = token_logprobs(result.segments)
        await _sse(response, done)
    except errors.WhisperLiveError as exc:
        await _sse(response, json.loads(render_error(exc, None).text))
    finally:
        task.cancel()
    await response.write_eof()
    return response


# ----------------------------------------------------------------------------- handlers


def no_speech(req: TranscriptionRequest) -> DecodeResult:
    return DecodeResult(
        segments=[], language=req.options.language or "en", language_probability=1.0, duration=0.0
    )


async def handle_audio(
    request: web.Request, task: str, face: FaceDefaults = OPENAI, render_error: ErrorRenderer = error_response
) -> web.StreamResponse:
    pool = request.app[POOL]
    request.app[UPLOADS].check()
    upload = await read_upload(request, int(request.app[SETTINGS].max_upload_mb * MIB))
    req = parse_request(Form(upload.fields), task, face)
    loaded = await acquire(pool, req.model)
    check_task(loaded.info, req.options.task, req.options.language)
    if face.probe_is_empty and len(upload.data) < PROBE_BYTES:
        return render(no_speech(req), req, loaded.name)
    if req.suppress_numerals:
        req.options.suppress_tokens = await asyncio.to_thread(numeral_tokens, loaded)
    if req.logprobs:
        req.options.token_logprobs = True
    audio = await upload_audio(
        upload, audio_format=req.audio_format, sample_rate=req.sample_rate, dtype=req.dtype
    )
    async with upload_job(request, loaded, audio, req.options) as run:
        if req.stream:
            return await stream_events(request, run, req, loaded.name, render_error)
        result = await run()
        embeddings = None
        if req.diarize:
            labelled = await diarize_upload(pool, audio, result.segments, req.min_speakers, req.max_speakers)
            result.segments, embeddings = labelled.segments, labelled.embeddings
        return render(result, req, loaded.name, embeddings if req.speaker_embeddings else None)


async def get_model(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    return web.json_response(model_json(pool, await describe(pool, request.match_info["model"])))


async def load_model(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    loaded = await acquire(pool, (await describe(pool, await read_param(request, "model"))).name)
    return web.json_response(model_json(pool, loaded.info))


async def unload_model(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    name = request.match_info.get("model") or await read_param(request, "model")
    info = await describe(pool, name)
    if not pool.unload(info.name):
        raise errors.ModelNotFound(
            f"model {info.name!r} is not loaded", param="model", code="model_not_loaded"
        )
    return web.json_response({"id": info.name, "object": "model", "deleted": True, "loaded": False})


def audio_routes(face: FaceDefaults, render_error: ErrorRenderer = error_response) -> list[web.RouteDef]:
    """The two audio paths under ``face.prefix`` with ``face``'s defaults (``render_error``:
    the face's error shape, for an error in the middle of a stream of events)."""

    async def transcriptions(request: web.Request) -> web.StreamResponse:
        return await handle_audio(request, "transcribe", face, render_error)

    async def translations(request: web.Request) -> web.StreamResponse:
        return await handle_audio(request, "translate", face, render_error)

    return [
        web.post(f"{face.prefix}/audio/transcriptions", transcriptions),
        web.post(f"{face.prefix}/audio/translations", translations),
    ]


def model_routes(prefix: str) -> list[web.RouteDef]:
    return [
        web.get(f"{prefix}/models", list_models),
        web.post(f"{prefix}/models/load", load_model),
        web.post(f"{prefix}/models/unload", unload_model),
        web.get(f"{prefix}/models/{{model:.+}}", get_model),
        web.delete(f"{prefix}/models/{{model:.+}}", unload_model),
    ]


def add_routes(app: web.Application) -> None:
    app[MODEL_LISTS]["data"] = model_json  # OpenAI's SDK reads ``data`` of GET /v1/models
    add_face_routes(app, [*audio_routes(OPENAI), *model_routes(OPENAI.prefix)], error_response)
