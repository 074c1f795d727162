"""FastAPI's error shape, for the faces that imitate FastAPI servers (Transcriber, WhisperX).

Their clients read ``{"detail": "..."}`` for every error, except a missing field, which
FastAPI reports as a 422 whose ``detail`` is a list of validation errors.
"""

from __future__ import annotations

from aiohttp import web

from ... import errors
from .face import ErrorRenderer, Statuses, http_status


def detail_renderer(overrides: Statuses = ()) -> ErrorRenderer:
    def render(exc: errors.WhisperLiveError, status: int | None) -> web.Response:
        status = status or http_status(exc, overrides)
        if isinstance(exc, errors.MissingAudio):
            missing = {"type": "missing", "loc": ["body", exc.param], "msg": "Field required", "input": None}
            return web.json_response({"detail": [missing]}, status=status)
        return web.json_response({"detail": exc.message}, status=status)

    return render
