"""WhisperX API server's health and model-management paths, over our model pool.

``/models/list|load|unload`` are aliases of the OpenAI face's model management. Alignment
and diarization have model lists of their own in WhisperX: diarization has one
(resemblyzer's speaker encoder); here word timings (``align``)
come from the Whisper model itself, so there is no alignment model to load, and a load
request says so with a 400 instead of pretending. Errors use FastAPI's ``{"detail": ...}``.
"""

from __future__ import annotations

from aiohttp import web

from ... import errors
from ...engine.speaker_encoder import weights_path
from ..http.app import POOL, add_face_routes
from ..http.fastapi import detail_renderer
from ..http.transcription import acquire
from ..http.uploads import read_param
from ..openai.api import OPENAI_DEFAULT_MODEL

DIARIZATION_MODEL = "resemblyzer"  # the speaker encoder engine/diarization.py runs
NO_ALIGNMENT_MODEL = (
    "this server has no separate alignment model: word timings (align=true) come from the"
    " Whisper model's own cross-attention, so there is nothing to load or unload"
)


async def healthcheck(request: web.Request) -> web.Response:
    return web.json_response({"status": "healthy"})


async def list_models(request: web.Request) -> web.Response:
    return web.json_response({"models": list(dict.fromkeys(m.name for m in request.app[POOL].loaded()))})


async def _model_name(request: web.Request) -> str | None:
    name = await read_param(request, "model")
    return None if name == OPENAI_DEFAULT_MODEL else name  # WhisperX: whisper-1 is the default


async def load_model(request: web.Request) -> web.Response:
    loaded = await acquire(request.app[POOL], await _model_name(request))
    return web.json_response({"status": "success", "model": loaded.name})


async def unload_model(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    name = (await pool.describe(await _model_name(request))).name
    if not pool.unload(name):
        raise errors.ModelNotFound(f"Model {name} not found", param="model", code="model_not_loaded")
    return web.json_response({"status": "success"})


async def no_models(request: web.Request) -> web.Response:
    return web.json_response({"models": []})


async def align_model(request: web.Request) -> web.Response:
    await read_param(request, "language")  # a request without it is still a bad request
    raise errors.Unsupported(NO_ALIGNMENT_MODEL, param="language", code="no_alignment_model")


def _diarize_models() -> list[str]:
    try:
        weights_path()
    except errors.Unsupported:
        return []
    return [DIARIZATION_MODEL]


async def list_diarize_models(request: web.Request) -> web.Response:
    return web.json_response({"models": _diarize_models()})


async def diarize_model(request: web.Request) -> web.Response:
    """There is one speaker model, loaded with the first request that needs it: loading and
    unloading it by name succeeds, any other name is a clear 400."""
    name = await read_param(request, "model")
    if name not in _diarize_models():
        raise errors.Unsupported(
            f"diarization model {name!r} is not available: this server labels speakers with"
            f" {', '.join(_diarize_models()) or 'no model (pip install --no-deps resemblyzer)'}",
            param="model",
            code="diarization_model_not_found",
        )
    return web.json_response({"status": "success", "model": name})


def add_routes(app: web.Application) -> None:
    add_face_routes(
        app,
        [
            web.get("/healthcheck", healthcheck),
            web.get("/models/list", list_models),
            web.post("/models/load", load_model),
            web.post("/models/unload", unload_model),
            web.get("/align_models/list", no_models),
            web.post("/align_models/load", align_model),
            web.post("/align_models/unload", align_model),
            web.get("/diarize_models/list", list_diarize_models),
            web.post("/diarize_models/load", diarize_model),
            web.post("/diarize_models/unload", diarize_model),
        ],
        detail_renderer(),
    )
