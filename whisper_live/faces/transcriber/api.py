"""The Faster-Whisper Transcriber's server API, so its users' scripts run unchanged.

``POST /transcribe`` (multipart, the file in ``audio``), ``POST /transcribe/raw`` (JSON with
base64 ``audio_data``) and ``GET /models``; ``/health`` and ``/status`` are the server's own,
which carry the fields this API's clients read. The transcription runs on the shared pool
at upload priority like every REST face. Errors are FastAPI's ``{"detail": ...}`` with this
API's statuses: a bad model, language, task or audio is a 400, a missing file a 422.
"""

from __future__ import annotations

import time

from aiohttp import web

from ... import errors
from ...core.decodes import DecodeOptions, DecodeResult
from ...engine.capabilities import check_task, normalize_language
from ...engine.models import ModelInfo
from ...media import AUDIO_FORMATS, RAW_DTYPES
from ..http.face import POOL, SETTINGS, UPLOADS, add_face_routes
from ..http.fastapi import detail_renderer
from ..http.models import offered_models
from ..http.transcription import acquire, upload_audio, upload_job
from ..http.uploads import MIB, Form, read_upload

# CTranslate2 compute types this API names; which ones load depends on the device.
QUANTIZATIONS = ("float32", "float16", "bfloat16", "int8", "int8_float16", "int8_bfloat16", "int8_float32")
DEVICES = ("cpu", "cuda")


# Unknown models are a 400 in this API (it lists what is available), not a 404.
_DETAIL = detail_renderer([(errors.ModelNotFound, 400)])


def render_error(exc: errors.WhisperLiveError, status: int | None) -> web.Response:
    if isinstance(exc, errors.InvalidAudio) and exc.code == "empty_audio":
        exc = errors.InvalidAudio("Empty audio data", param=exc.param)
    elif isinstance(exc, errors.InvalidAudio):
        exc = errors.InvalidAudio(f"Failed to process audio: {exc.message}", param=exc.param)
    return _DETAIL(exc, status)


def check_variant(device: str | None, quantization: str | None) -> None:
    """A device or compute type this machine cannot load is the client's 400, said before
    CTranslate2 fails on it."""
    import ctranslate2

    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise errors.Unsupported(
            "device 'cuda' was requested but this server has no CUDA GPU", param="device"
        )
    if quantization is not None:
        supported = ctranslate2.get_supported_compute_types(device or "cpu")
        if quantization not in supported:
            raise errors.Unsupported(
                f"quantization {quantization!r} is not supported on {device or 'cpu'} here;"
                f" use one of {', '.join(sorted(supported))}",
                param="quantization",
            )


def parse_options(form: Form) -> DecodeOptions:
    batch_size = form.number("batch_size", 1, 1, 128, int)
    include_timestamps = form.flag("include_timestamps", False)
    return DecodeOptions(
        language=normalize_language(form.text("language")),
        task=form.choice("task_mode", "transcribe", ("transcribe", "translate")),
        beam_size=form.number("beam_size", 5, 1, 20, int),
        word_timestamps=form.flag("word_timestamps", False),
        without_timestamps=not include_timestamps,
        condition_on_previous_text=form.flag("condition_on_previous_text", True),
        # The batched pipeline needs VAD, and this API forces it on as well.
        vad_filter=form.flag("vad_filter", False) or batch_size > 1,
        batch_size=batch_size,
    )


def response(result: DecodeResult, options: DecodeOptions, model_used: str, seconds: float) -> dict:
    segments = []
    if not options.without_timestamps:
        for segment in result.segments:
            item = {"start": round(segment.start, 3), "end": round(segment.end, 3), "text": segment.text}
            if options.word_timestamps:
                item["words"] = [
                    {"start": round(w.start, 3), "end": round(w.end, 3), "word": w.word}
                    for w in segment.words or []
                ]
            segments.append(item)
    return {
        "text": result.text,
        "segments": segments,
        "language": result.language,
        "duration": round(result.duration, 3),
        "task": options.task,
        "model_used": model_used,
        "processing_time_seconds": round(seconds, 3),
    }


async def handle(request: web.Request, audio_field: str) -> web.Response:
    started = time.monotonic()
    pool = request.app[POOL]
    request.app[UPLOADS].check()
    try:
        if request.content_type in ("application/x-www-form-urlencoded", ""):  # fields without a file
            raise errors.MissingAudio("no audio file in the request", param=audio_field)
        upload = await read_upload(request, int(request.app[SETTINGS].max_upload_mb * MIB), (audio_field,))
    except errors.MissingAudio as exc:
        exc.param = audio_field
        raise
    form = Form(upload.fields)
    options = parse_options(form)
    device = form.choice("device", "", DEVICES) if form.text("device") else None
    quantization = form.choice("quantization", "", QUANTIZATIONS) if form.text("quantization") else None
    check_variant(device, quantization)
    loaded = await acquire(pool, form.text("model"), quantization, device)
    check_task(loaded.info, options.task, options.language)
    audio = await upload_audio(
        upload,
        audio_format=form.choice("audio_format", "auto", AUDIO_FORMATS),
        sample_rate=form.number("sample_rate", 16000, 1000, 384_000, int),
        dtype=form.choice("dtype", "", tuple(RAW_DTYPES)) if form.text("dtype") else None,
    )
    async with upload_job(request, loaded, audio, options) as run:
        result = await run()
    model_used = f"{loaded.name} - {loaded.compute_type}"
    return web.json_response(response(result, options, model_used, time.monotonic() - started))


async def transcribe_file(request: web.Request) -> web.Response:
    return await handle(request, "audio")


async def transcribe_raw(request: web.Request) -> web.Response:
    return await handle(request, "audio_data")


def model_entry(info: ModelInfo) -> dict:
    return {"name": info.name, "supports_translation": info.multilingual}


async def list_models(request: web.Request) -> web.Response:
    return web.json_response({m.name: model_entry(m) for m in await offered_models(request.app[POOL])})


def add_routes(app: web.Application) -> None:
    add_face_routes(
        app,
        [
            web.post("/transcribe", transcribe_file),
            web.post("/transcribe/raw", transcribe_raw),
            web.get("/models", list_models),
        ],
        render_error,
    )
