"""The model listing every face shares: which models a client may ask for, and ``GET
/v1/models`` in each SDK's shape at once (OpenAI's reads ``data``, Deepgram's ``stt``).

Aliases (``--model-alias``, ``whisper-1``) are resolved by the pool, the one place names
are turned into models; here they only appear in the listing's ``aliases``.
"""

from __future__ import annotations

import contextlib

from aiohttp import web

from ... import errors
from ...engine import models
from ...engine.pool import ModelPool
from .face import MODEL_LISTS, POOL


async def offered_models(pool: ModelPool) -> list[models.ModelInfo]:
    """The models a client may ask for: the default first, then the others offered
    (resolved off the event loop the first time: joining ``base`` takes a while)."""
    names = dict.fromkeys([pool.default_model, *(pool.allowed_models or models.bundled_models())])
    offered = []
    for name in names:
        with contextlib.suppress(models.ModelNotFound):
            offered.append(await pool.describe(name))
    return offered


async def describe(pool: ModelPool, name: str | None) -> models.ModelInfo:
    """``pool.describe`` for a client's field: an unknown name names the ``model`` parameter."""
    try:
        return await pool.describe(name)
    except errors.ModelNotFound as exc:
        exc.param = "model"
        raise


def model_json(pool: ModelPool, info: models.ModelInfo) -> dict:
    """One model in OpenAI's shape (plus what this server knows of it)."""
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


async def list_models(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    offered = await offered_models(pool)
    body: dict = {"object": "list"}
    for name, entry in request.app[MODEL_LISTS].items():
        body[name] = [entry(pool, m) for m in offered]
    # Names served by another model (whisper-1, --model-alias), where their model is offered.
    body["aliases"] = {}
    for name in pool.aliases:
        with contextlib.suppress(models.ModelNotFound):
            body["aliases"][name] = (await pool.describe(name)).name
    return web.json_response(body)
