"""FastAPI's error shape, for the faces that imitate FastAPI servers (Transcriber, WhisperX).

Their clients read ``{"detail": "..."}`` for every error, except a missing field, which
FastAPI reports as a 422 whose ``detail`` is a list of validation errors.
"""

from __future__ import annotations

from aiohttp import web

from ... import errors
from .app import ErrorRenderer

Statuses = list[tuple[type[errors.WhisperLiveError], int]]

# Domain errors to HTTP statuses, most specific class first (the first isinstance wins).
STATUS: Statuses = [
    (errors.AudioTooLarge, 413),
    (errors.MissingAudio, 422),
    (errors.InvalidRequest, 400),
    (errors.ModelNotFound, 404),
    (errors.ClientGone, 499),
    (errors.ShuttingDown, 503),
    (errors.WhisperLiveError, 500),
]


def detail_renderer(statuses: Statuses = STATUS) -> ErrorRenderer:
    def render(exc: errors.WhisperLiveError, status: int | None) -> web.Response:
        status = status or next(code for kind, code in statuses if isinstance(exc, kind))
        if isinstance(exc, errors.MissingAudio):
            missing = {"type": "missing", "loc": ["body", exc.param], "msg": "Field required", "input": None}
            return web.json_response({"detail": [missing]}, status=status)
        return web.json_response({"detail": exc.message}, status=status)

    return render
