"""WhisperX's API server: its audio paths with its defaults, health and model management.

Under ``/whisperx`` (a WhisperX client's base URL becomes ``http://host:8001/whisperx``)
``/v1/audio/transcriptions|translations`` are the OpenAI face's handlers with WhisperX's
defaults: ``suppress_numerals`` and ``align`` on, ``stream`` accepted and ignored. Its
management paths are served there and, as before, at the root (they collide with nothing).

``/models/list|load|unload`` manage the shared model pool. Alignment and diarization have
model lists of their own in WhisperX: diarization has one (resemblyzer's speaker encoder),
listed while it is in memory, loaded and unloaded for real; here word timings (``align``)
come from the Whisper model itself, so there is no alignment model to load, and a load
request says so with a 400 instead of pretending. Errors use FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ... import errors
from ...engine.speaker_encoder import shared_encoder, weights_path
from ..http.face import POOL, add_face_routes
from ..http.fastapi import detail_renderer
from ..http.transcription import acquire
from ..http.uploads import read_param
from ..openai.api import FaceDefaults, audio_routes

PREFIX = "/whisperx"
# WhisperX API server's defaults (its README): numbers spelled out, word timings aligned,
# ``stream`` accepted but not used.
WHISPERX = FaceDefaults("WhisperX", PREFIX + "/v1", suppress_numerals=True, align=True, streams=False)
_DETAIL = detail_renderer()

DIARIZATION_MODEL = "resemblyzer"  # the speaker encoder engine/diarization.py runs
NO_ALIGNMENT_MODEL = (
    "this server has no separate alignment model: word timings (align=true) come from the"
    " Whisper model's own cross-attention, so there is nothing to load or unload"
)


async def healthcheck(request: web.Request) -> web.Response:
    return web.json_response({"status": "healthy"})


async def list_models(request: web.Request) -> web.Response:
    return web.json_response({"models": list(dict.fromkeys(m.name for m in request.app[POOL].loaded()))})


async def load_model(request: web.Request) -> web.Response:
    loaded = await acquire(request.app[POOL], await read_param(request, "model"))
    return web.json_response({"status": "success", "model": loaded.name})


async def unload_model(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    name = (await pool.describe(await read_param(request, "model"))).name
    if not pool.unload(name):
        raise errors.ModelNotFound(f"Model {name} not found", param="model", code="model_not_loaded")
    return web.json_response({"status": "success"})


async def no_models(request: web.Request) -> web.Response:
    return web.json_response({"models": []})


async def align_model(request: web.Request) -> web.Response:
    await read_param(request, "language")  # a request without it is still a bad request
    raise errors.Unsupported(NO_ALIGNMENT_MODEL, param="language", code="no_alignment_model")


def _diarize_models() -> list[str]:
    """The speaker models this server has (installed), loaded or not."""
    try:
        weights_path()
    except errors.Unsupported:
        return []
    return [DIARIZATION_MODEL]


def _encoder_loaded() -> bool:
    return shared_encoder.cache_info().currsize > 0


async def list_diarize_models(request: web.Request) -> web.Response:
    """WhisperX lists the diarization models in memory: the speaker encoder once loaded."""
    return web.json_response({"models": [DIARIZATION_MODEL] if _encoder_loaded() else []})


async def _diarize_model_name(request: web.Request) -> str:
    name = await read_param(request, "model")
    if name not in _diarize_models():
        raise errors.Unsupported(
            f"diarization model {name!r} is not available: this server labels speakers with"
            f" {', '.join(_diarize_models()) or 'no model (pip install --no-deps resemblyzer)'}",
            param="model",
            code="diarization_model_not_found",
        )
    return name


async def load_diarize_model(request: web.Request) -> web.Response:
    """Loads the speaker encoder now (otherwise the first diarized request does)."""
    name = await _diarize_model_name(request)
    await asyncio.to_thread(shared_encoder)
    return web.json_response({"status": "success", "model": name})


async def unload_diarize_model(request: web.Request) -> web.Response:
    """Drops the shared speaker encoder (a stream diarizing now keeps its own reference until
    it ends); unloading what is not loaded is a 404, as for transcription models."""
    name = await _diarize_model_name(request)
    if not _encoder_loaded():
        raise errors.ModelNotFound(f"Model {name} not found", param="model", code="model_not_loaded")
    shared_encoder.cache_clear()
    return web.json_response({"status": "success"})


def management_routes(prefix: str) -> list[web.RouteDef]:
    return [
        web.get(f"{prefix}/healthcheck", healthcheck),
        web.get(f"{prefix}/models/list", list_models),
        web.post(f"{prefix}/models/load", load_model),
        web.post(f"{prefix}/models/unload", unload_model),
        web.get(f"{prefix}/align_models/list", no_models),
        web.post(f"{prefix}/align_models/load", align_model),
        web.post(f"{prefix}/align_models/unload", align_model),
        web.get(f"{prefix}/diarize_models/list", list_diarize_models),
        web.post(f"{prefix}/diarize_models/load", load_diarize_model),
        web.post(f"{prefix}/diarize_models/unload", unload_diarize_model),
    ]


def add_routes(app: web.Application) -> None:
    routes = [*audio_routes(WHISPERX, _DETAIL), *management_routes(PREFIX), *management_routes("")]
    add_face_routes(app, routes, _DETAIL)
