"""OpenAI's audio API: /v1/audio/transcriptions, /v1/audio/translations and /v1/models.

A thin adapter: it reads OpenAI's fields, runs ``engine.files.transcribe`` (every decode on
the shared pool at upload priority, so live streams keep their latency) and answers in
OpenAI's formats, with OpenAI's error envelope, which its SDK turns into its exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ... import errors
from ...core.decodes import DecodeOptions, DecodeResult, Segment
from ...engine import models
from ...engine.capabilities import check_task, normalize_language
from ...engine.files import transcribe
from ...engine.pool import LoadedModel, ModelPool
from ...formats import to_srt, to_text, to_vtt
from ...media import RAW_DTYPES, load_audio
from ..deepgram.protocol import stt_model
from ..http.app import POOL, SETTINGS, UPLOADS, add_face_routes
from ..http.uploads import MIB, Form, read_upload
from . import openapi

log = logging.getLogger(__name__)

OPENAI_DEFAULT_MODEL = "whisper-1"
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")


# Domain errors to HTTP statuses, most specific class first (the first isinstance wins).
STATUS: list[tuple[type[errors.WhisperLiveError], int]] = [
    (errors.AudioTooLarge, 413),
    (errors.MissingAudio, 422),
    (errors.InvalidRequest, 400),
    (errors.ModelNotFound, 404),
    (errors.ClientGone, 499),
    (errors.ShuttingDown, 503),
    (errors.WhisperLiveError, 500),
]


def status_of(exc: errors.WhisperLiveError) -> int:
    return next(status for kind, status in STATUS if isinstance(exc, kind))


def error_response(exc: errors.WhisperLiveError, status: int | None = None) -> web.Response:
    """OpenAI's error envelope, which its SDK turns into the matching exception class."""
    status = status or status_of(exc)
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": exc.message, "type": kind, "param": exc.param, "code": exc.code}}
    return web.json_response(body, status=status)


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
    dtype: str


def parse_request(form: Form, task: str) -> TranscriptionRequest:
    """OpenAI's fields plus faster-whisper's knobs that other servers expose."""
    model = form.text("model")
    response_format = form.choice("response_format", "json", RESPONSE_FORMATS)
    granularities = form.list("timestamp_granularities") or ["segment"]
    for item in granularities:
        if item not in GRANULARITIES:
            raise errors.InvalidRequest(
                f"timestamp_granularities must be segment and/or word, not {item!r}",
                param="timestamp_granularities",
            )
    if "word" in granularities and response_format != "verbose_json":
        raise errors.InvalidRequest(
            "timestamp_granularities=word requires response_format=verbose_json",
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
    segment_words = form.flag("word_timestamps", False)
    batch_size = form.number("batch_size", 1, 1, 128, int)
    options = DecodeOptions(
        language=language,
        task=task,
        beam_size=form.number("beam_size", 5, 1, 20, int),
        # OpenAI: 0 means "start greedy and raise the temperature on failure" (Whisper's fallback).
        temperature=DecodeOptions.temperature if temperature == 0 else temperature,
        initial_prompt=form.text("prompt"),
        hotwords=form.text("hotwords"),
        word_timestamps=segment_words or logprobs or "word" in granularities,
        condition_on_previous_text=form.flag("condition_on_previous_text", True),
        vad_filter=form.flag("vad_filter", False) or batch_size > 1,
        batch_size=batch_size,
    )
    return TranscriptionRequest(
        model=None if model in (None, OPENAI_DEFAULT_MODEL) else model,
        response_format=response_format,
        granularities=granularities,
        stream=form.flag("stream", False),
        logprobs=logprobs,
        segment_words=segment_words,
        options=options,
        audio_format=form.choice("audio_format", "auto", ("auto", "file", "numpy", "pcm")),
        sample_rate=form.number("sample_rate", 16000, 1000, 384_000, int),
        dtype=form.choice("dtype", "int16", tuple(RAW_DTYPES)),
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
    if with_words:
        body["words"] = [word_json(w) for w in segment.words or []]
    return body


def word_json(word) -> dict:
    return {
        "word": word.word.strip(),
        "start": _round(word.start),
        "end": _round(word.end),
        "probability": _round(word.probability),
    }


def logprobs_json(result: DecodeResult) -> list[dict]:
    """Per-word log probabilities (faster-whisper exposes them per word, not per token)."""
    return [
        {"token": w.word, "logprob": math.log(max(w.probability, 1e-12)), "bytes": list(w.word.encode())}
        for s in result.segments
        for w in s.words or []
    ]


def usage(result: DecodeResult) -> dict:
    return {"type": "duration", "seconds": math.ceil(result.duration)}


def render(result: DecodeResult, req: TranscriptionRequest) -> web.Response:
    fmt = req.response_format
    if fmt == "text":
        return web.Response(text=to_text(result.segments), content_type="text/plain")
    if fmt == "srt":
        return web.Response(text=to_srt(result.segments), content_type="application/x-subrip")
    if fmt == "vtt":
        return web.Response(text=to_vtt(result.segments), content_type="text/vtt")
    body: dict = {"text": result.text}
    if fmt == "verbose_json":
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
    if req.logprobs:
        body["logprobs"] = logprobs_json(result)
    body["usage"] = usage(result)
    return web.json_response(body)


async def _sse(response: web.StreamResponse, event: dict) -> None:
    await response.write(f"data: {json.dumps(event)}\n\n".encode())


async def stream_events(request: web.Request, run: Callable) -> web.StreamResponse:
    """OpenAI's server-sent events: one ``transcript.text.delta`` per segment, then ``done``.

    Segments arrive as each piece finishes, so a long file shows text long before its end.
    """
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
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
            await _sse(response, {"type": "transcript.text.delta", "delta": delta})
        result = await task
        await _sse(response, {"type": "transcript.text.done", "text": result.text, "usage": usage(result)})
    except errors.WhisperLiveError as exc:
        await _sse(response, json.loads(error_response(exc).text))
    finally:
        task.cancel()
    await response.write_eof()
    return response


# ----------------------------------------------------------------------------- handlers


async def acquire(pool: ModelPool, name: str | None) -> LoadedModel:
    """Load (or find) a model; unknown names are 404, a model that fails to load is 500."""
    try:
        return await pool.acquire(name)
    except errors.ModelNotFound as exc:
        exc.param = "model"
        raise
    except Exception as exc:
        log.exception("loading model %r failed", name)
        raise errors.ModelLoadFailed(f"model {name or pool.default_model!r} failed to load: {exc}") from exc


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def handle_audio(request: web.Request, task: str) -> web.StreamResponse:
    pool, queue = request.app[POOL], request.app[UPLOADS]
    queue.check()
    upload = await read_upload(request, int(request.app[SETTINGS].max_upload_mb * MIB))
    req = parse_request(Form(upload.fields), task)
    loaded = await acquire(pool, req.model)
    check_task(loaded.info, req.options.task, req.options.language)
    audio = await asyncio.to_thread(
        load_audio,
        upload.data,
        filename=upload.filename,
        audio_format=req.audio_format,
        sample_rate=req.sample_rate,
        dtype=req.dtype,
    )
    if len(audio) == 0:
        raise errors.InvalidAudio("the audio is empty (no samples decoded)", param="file", code="empty_audio")
    job = queue.open(loaded.name, task, len(audio) / 16000)

    async def run(on_segment=None) -> DecodeResult:
        try:
            return await transcribe(
                pool, loaded, audio, req.options, job, queue, on_segment, lambda: client_gone(request)
            )
        except errors.WhisperLiveError:
            raise
        except Exception as exc:
            log.exception("transcription failed")
            raise errors.DecodeFailed(f"transcription failed: {exc}") from exc

    try:
        if req.stream:
            return await stream_events(request, run)
        return render(await run(), req)
    finally:
        queue.close(job)


async def transcriptions(request: web.Request) -> web.StreamResponse:
    return await handle_audio(request, "transcribe")


async def translations(request: web.Request) -> web.StreamResponse:
    return await handle_audio(request, "translate")


def model_json(pool: ModelPool, info: models.ModelInfo) -> dict:
    loaded = {m.info.path for m in pool.loaded()}
    return {
        "id": info.name,
        "object": "model",
        "created": 0,
        "owned_by": "whisper-live",
        "multilingual": info.multilingual,
        "can_translate": info.multilingual,
        "loaded": info.path in loaded,
        "default": info.name == pool.resolve(None).name,
        "source": info.source,
    }


def _resolve(pool: ModelPool, name: str | None) -> models.ModelInfo:
    try:
        return pool.resolve(None if name == OPENAI_DEFAULT_MODEL else name)
    except errors.ModelNotFound as exc:
        exc.param = "model"
        raise


async def list_models(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    names = dict.fromkeys([pool.default_model, *(pool.allowed_models or models.bundled_models())])
    data = []
    for name in names:
        with contextlib.suppress(models.ModelNotFound):
            data.append(model_json(pool, pool.resolve(name)))
    # One listing for every face: OpenAI's SDK reads ``data``, Deepgram's ``stt``.
    stt = [stt_model(pool.resolve(item["id"])) for item in data]
    return web.json_response({"object": "list", "data": data, "stt": stt})


async def get_model(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    return web.json_response(model_json(pool, _resolve(pool, request.match_info["model"])))


async def _model_param(request: web.Request) -> str:
    """The model to load or unload, from the query, a JSON body or a form."""
    name = request.query.get("model")
    if name is None and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            name = body.get("model") if isinstance(body, dict) else None
        else:
            name = (await request.post()).get("model")
    if not name or not isinstance(name, str):
        raise errors.InvalidRequest(
            "say which model: 'model' in the query, a JSON body or a form", param="model"
        )
    return name


async def load_model(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    loaded = await acquire(pool, _resolve(pool, await _model_param(request)).name)
    return web.json_response(model_json(pool, loaded.info))


async def unload_model(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    name = request.match_info.get("model") or await _model_param(request)
    info = _resolve(pool, name)
    if not pool.unload(info.name):
        raise errors.ModelNotFound(
            f"model {info.name!r} is not loaded", param="model", code="model_not_loaded"
        )
    return web.json_response({"id": info.name, "object": "model", "deleted": True, "loaded": False})


async def openapi_spec(request: web.Request) -> web.Response:
    return web.json_response(openapi.spec())


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=openapi.DOCS_HTML, content_type="text/html")


def add_routes(app: web.Application) -> None:
    add_face_routes(
        app,
        [
            web.post("/v1/audio/transcriptions", transcriptions),
            web.post("/v1/audio/translations", translations),
            web.get("/v1/models", list_models),
            web.post("/v1/models/load", load_model),
            web.post("/v1/models/unload", unload_model),
            web.get("/v1/models/{model:.+}", get_model),
            web.delete("/v1/models/{model:.+}", unload_model),
            web.get("/openapi.json", openapi_spec),
            web.get("/docs", docs),
        ],
        error_response,
    )
