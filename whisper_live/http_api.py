"""The HTTP side of the server (aiohttp): OpenAI-style batch transcription, models, status.

It shares the model pool with the streams and never decodes by itself: every
faster-whisper call goes through ``pool.decode`` at batch priority (see ``batch``), so
live streams keep their latency while uploads are transcribed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from multidict import MultiDict

from . import models, openapi
from .batch import RAW_DTYPES, BatchError, BatchQueue, load_audio, transcribe
from .decoding import DecodeOptions, DecodeResult, Segment
from .formats import to_srt, to_text, to_vtt
from .pool import LoadedModel, ModelPool

log = logging.getLogger(__name__)

POOL = web.AppKey("pool", ModelPool)
STREAMS = web.AppKey("streams", object)
BATCH = web.AppKey("batch", BatchQueue)

# The browser client: client/ beside the package in a checkout or editable install.
CLIENT_DIR = Path(__file__).resolve().parent.parent / "client"

MIB = 1 << 20
FIELD_LIMIT = 1 * MIB  # a form field that is not the audio is a few bytes; refuse abuse
OPENAI_DEFAULT_MODEL = "whisper-1"
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")
WHISPER_LANGUAGES: frozenset[str] = frozenset()


def _languages() -> frozenset[str]:
    global WHISPER_LANGUAGES
    if not WHISPER_LANGUAGES:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        WHISPER_LANGUAGES = frozenset(_LANGUAGE_CODES)
    return WHISPER_LANGUAGES


# ----------------------------------------------------------------------------- errors


_ERROR_TYPES = {413: "invalid_request_error", 404: "invalid_request_error", 422: "invalid_request_error"}


def error_response(
    status: int, message: str, *, param: str | None = None, code: str | None = None, type: str | None = None
) -> web.Response:
    """OpenAI's error envelope, which its SDK turns into the matching exception class."""
    kind = type or ("server_error" if status >= 500 else _ERROR_TYPES.get(status, "invalid_request_error"))
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)


@web.middleware
async def error_envelope(request: web.Request, handler) -> web.StreamResponse:
    """Every failure leaves as an envelope; nothing a client sends can escape as a crash."""
    try:
        return await handler(request)
    except BatchError as exc:
        return error_response(exc.status, exc.message, param=exc.param, code=exc.code, type=exc.type)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.text or exc.reason, code=exc.reason.lower().replace(" ", "_"))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, f"internal error: {exc}", code="internal_error")


# ----------------------------------------------------------------------------- request body


@dataclass
class Upload:
    """What a transcription request carried: the audio bytes and every other field."""

    data: bytes | None = None
    filename: str = ""
    fields: MultiDict = field(default_factory=MultiDict)


def upload_limit(request: web.Request) -> int:
    return int(request.app[STREAMS].settings.max_upload_mb * MIB)


def _too_large(limit: int) -> BatchError:
    return BatchError(
        413,
        f"audio upload is larger than this server's limit of {limit / MIB:g} MiB (max_upload_mb)",
        param="file",
        code="file_too_large",
    )


async def _read_limited(read_chunk: Callable, limit: int, error: BatchError) -> bytes:
    """Read a body or part chunk by chunk, stopping as soon as it passes ``limit``."""
    buffer = bytearray()
    while chunk := await read_chunk():
        buffer += chunk
        if len(buffer) > limit:
            raise error
    return bytes(buffer)


async def read_multipart(request: web.Request, limit: int) -> Upload:
    upload = Upload()
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if part.name in ("file", "audio") and upload.data is None:
            upload.data = await _read_limited(part.read_chunk, limit, _too_large(limit))
            upload.filename = part.filename or ""
        else:
            raw = await _read_limited(
                part.read_chunk, FIELD_LIMIT, BatchError(400, f"form field {part.name!r} is too long")
            )
            upload.fields.add(part.name or "", raw.decode("utf-8", "replace"))
    return upload


async def read_json(request: web.Request, limit: int) -> Upload:
    """A JSON body with base64 audio (``audio_data`` or ``file``), as transcriber servers take."""
    # Base64 is 4/3 the size of what it encodes; allow for that plus the other fields.
    body = await _read_limited(request.content.readany, limit * 4 // 3 + FIELD_LIMIT, _too_large(limit))
    try:
        values = json.loads(body)
    except ValueError as exc:
        raise BatchError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise BatchError(400, "the JSON body must be an object")
    upload = Upload()
    encoded = values.pop("audio_data", None) or values.pop("file", None)
    if encoded is not None:
        if not isinstance(encoded, str):
            raise BatchError(400, "audio_data must be a base64 string", param="audio_data")
        try:
            upload.data = base64.b64decode(
                encoded.split(",", 1)[-1] if encoded.startswith("data:") else encoded
            )
        except (binascii.Error, ValueError) as exc:
            raise BatchError(400, f"audio_data is not valid base64: {exc}", param="audio_data") from exc
        if len(upload.data) > limit:
            raise _too_large(limit)
    upload.filename = str(values.pop("filename", ""))
    for key, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            upload.fields.add(key, json.dumps(item) if isinstance(item, bool) else str(item))
    return upload


async def read_upload(request: web.Request) -> Upload:
    limit = upload_limit(request)
    # Refuse an announced oversize body before reading it (base64 JSON may be 4/3 larger).
    if request.content_length is not None and request.content_length > limit * 4 // 3 + FIELD_LIMIT:
        raise _too_large(limit)
    if request.content_type == "multipart/form-data":
        try:
            upload = await read_multipart(request, limit)
        except (ValueError, AssertionError, web.HTTPBadRequest) as exc:  # aiohttp's malformed-body errors
            raise BatchError(400, f"malformed multipart body: {exc}") from exc
    elif request.content_type == "application/json":
        upload = await read_json(request, limit)
    else:
        raise BatchError(
            400, "send multipart/form-data (as OpenAI's API) or a JSON body with base64 audio_data"
        )
    if upload.data is None:
        raise BatchError(422, "the request has no audio: send it as the 'file' field", param="file")
    return upload


# ----------------------------------------------------------------------------- parameters


class Form:
    """Typed access to request fields; a bad value is a 400 that names the parameter."""

    def __init__(self, fields: MultiDict):
        self.fields = fields

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.fields.get(name)
        return value.strip() if value is not None and value.strip() else default

    def list(self, name: str) -> list[str]:
        """OpenAI's SDK sends arrays as repeated ``name[]`` fields; accept ``name`` and commas too."""
        values = [*self.fields.getall(name + "[]", []), *self.fields.getall(name, [])]
        items = []
        for value in values:
            with contextlib.suppress(ValueError):
                parsed = json.loads(value)
                if isinstance(parsed, list):
                    items += [str(v) for v in parsed]
                    continue
            items += [v.strip() for v in value.split(",") if v.strip()]
        return items

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise BatchError(400, f"{name} must be one of {', '.join(choices)}, not {value!r}", param=name)
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise BatchError(400, f"{name} must be true or false, not {value!r}", param=name)

    def number(self, name: str, default, low: float, high: float, kind: type = float):
        value = self.text(name)
        if value is None:
            return default
        try:
            number = kind(float(value)) if kind is int and float(value).is_integer() else kind(value)
        except ValueError:
            raise BatchError(400, f"{name} must be a number, not {value!r}", param=name) from None
        if not (low <= number <= high) or (isinstance(number, float) and math.isnan(number)):
            raise BatchError(400, f"{name} must be between {low:g} and {high:g}", param=name)
        return number


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
            raise BatchError(
                400,
                f"timestamp_granularities must be segment and/or word, not {item!r}",
                param="timestamp_granularities",
            )
    if "word" in granularities and response_format != "verbose_json":
        raise BatchError(
            400,
            "timestamp_granularities=word requires response_format=verbose_json",
            param="timestamp_granularities",
        )
    includes = form.list("include")
    if any(item != "logprobs" for item in includes):
        raise BatchError(400, "include may only contain 'logprobs'", param="include")
    logprobs = "logprobs" in includes
    if logprobs and response_format not in ("json", "verbose_json"):
        raise BatchError(
            400, "include=logprobs requires response_format json or verbose_json", param="include"
        )
    language = form.text("language")
    if language is not None:
        language = language.lower()
        if language not in _languages():
            raise BatchError(
                400,
                f"unsupported language {language!r}: use an ISO-639-1 code such as 'en'",
                param="language",
            )
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
    except BatchError as exc:
        await _sse(
            response,
            {"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}},
        )
    finally:
        task.cancel()
    await response.write_eof()
    return response


# ----------------------------------------------------------------------------- handlers


async def acquire(pool: ModelPool, name: str | None) -> LoadedModel:
    """Load (or find) a model; unknown names are 404, a model that fails to load is 500."""
    try:
        return await pool.acquire(name)
    except models.ModelNotFoundError as exc:
        raise BatchError(404, str(exc), param="model", code="model_not_found") from exc
    except Exception as exc:
        log.exception("loading model %r failed", name)
        raise BatchError(
            500,
            f"model {name or pool.default_model!r} failed to load: {exc}",
            code="model_load_failed",
            type="server_error",
        ) from exc


def check_model_task(loaded: LoadedModel, options: DecodeOptions) -> None:
    if loaded.multilingual:
        return
    if options.task == "translate":
        raise BatchError(
            400,
            f"model {loaded.name!r} is English-only and cannot translate; "
            "choose a multilingual model such as 'base'",
            param="model",
            code="model_cannot_translate",
        )
    if options.language not in (None, "en"):
        raise BatchError(
            400,
            f"model {loaded.name!r} is English-only and cannot transcribe "
            f"language {options.language!r}; choose a multilingual model",
            param="language",
        )


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def handle_audio(request: web.Request, task: str) -> web.StreamResponse:
    pool, queue = request.app[POOL], request.app[BATCH]
    queue.check()
    upload = await read_upload(request)
    req = parse_request(Form(upload.fields), task)
    loaded = await acquire(pool, req.model)
    check_model_task(loaded, req.options)
    audio = await asyncio.to_thread(
        load_audio,
        upload.data,
        filename=upload.filename,
        audio_format=req.audio_format,
        sample_rate=req.sample_rate,
        dtype=req.dtype,
    )
    if len(audio) == 0:
        raise BatchError(400, "the audio is empty (no samples decoded)", param="file", code="empty_audio")
    job = queue.open(loaded.name, task, len(audio) / 16000)

    async def run(on_segment=None) -> DecodeResult:
        try:
            return await transcribe(
                pool, loaded, audio, req.options, job, queue, on_segment, lambda: client_gone(request)
            )
        except BatchError:
            raise
        except Exception as exc:
            log.exception("transcription failed")
            raise BatchError(
                500, f"transcription failed: {exc}", code="decode_failed", type="server_error"
            ) from exc

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
    except models.ModelNotFoundError as exc:
        raise BatchError(404, str(exc), param="model", code="model_not_found") from exc


async def list_models(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    names = dict.fromkeys([pool.default_model, *(pool.allowed_models or models.bundled_models())])
    data = []
    for name in names:
        with contextlib.suppress(models.ModelNotFoundError):
            data.append(model_json(pool, pool.resolve(name)))
    return web.json_response({"object": "list", "data": data})


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
        raise BatchError(400, "say which model: 'model' in the query, a JSON body or a form", param="model")
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
        raise BatchError(404, f"model {info.name!r} is not loaded", param="model", code="model_not_loaded")
    return web.json_response({"id": info.name, "object": "model", "deleted": True, "loaded": False})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def status(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    streams = request.app[STREAMS]
    body = pool.status()
    body["active_streams"] = len(streams.clients)
    body["max_clients"] = streams.settings.max_clients
    body["capacity_estimate"] = streams.capacity()  # streams it can keep up with; None: not yet known
    body["transcribing"] = pool.scheduler.running > 0
    body["batch"] = request.app[BATCH].status()
    return web.json_response(body)


async def openapi_spec(request: web.Request) -> web.Response:
    return web.json_response(openapi.spec())


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=openapi.DOCS_HTML, content_type="text/html")


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(CLIENT_DIR / "index.html")


async def refuse_new_work(app: web.Application) -> None:
    """On shutdown new uploads get 503 and running ones stop at their next piece."""
    app[BATCH].shutting_down = True


def create_app(pool: ModelPool, streams) -> web.Application:
    app = web.Application(middlewares=[error_envelope])
    app[POOL] = pool
    app[STREAMS] = streams
    app[BATCH] = BatchQueue()
    app.on_shutdown.append(refuse_new_work)
    app.router.add_get("/health", health)
    app.router.add_get("/status", status)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/translations", translations)
    app.router.add_get("/v1/models", list_models)
    app.router.add_post("/v1/models/load", load_model)
    app.router.add_post("/v1/models/unload", unload_model)
    app.router.add_get("/v1/models/{model:.+}", get_model)
    app.router.add_delete("/v1/models/{model:.+}", unload_model)
    app.router.add_get("/openapi.json", openapi_spec)
    app.router.add_get("/docs", docs)
    if CLIENT_DIR.is_dir():
        app.router.add_get("/", index)
        app.router.add_static("/client/", CLIENT_DIR)
    return app
