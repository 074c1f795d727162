"""The HTTP port: one aiohttp app that carries every HTTP face, the browser page, health and status.

A face adds its routes with ``add_face_routes`` and says how its errors look; one
middleware turns anything a handler raises (a domain error, aiohttp's own HTTP errors, a
crash) into that face's error shape, so nothing a client sends escapes as a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from aiohttp import web

from ... import errors
from ...engine.files import UploadJobs
from ...engine.pool import ModelPool
from ...settings import ServerSettings
from ..whisperlive.server import StreamingServer

log = logging.getLogger(__name__)

POOL = web.AppKey("pool", ModelPool)
STREAMS = web.AppKey("streams", StreamingServer)
SETTINGS = web.AppKey("settings", ServerSettings)
UPLOADS = web.AppKey("uploads", UploadJobs)

# (the error, the HTTP status when aiohttp already chose one) -> the face's response
ErrorRenderer = Callable[[errors.WhisperLiveError, "int | None"], web.StreamResponse]
_RENDERERS = web.AppKey("error_renderers", dict)

_PACKAGE = Path(__file__).resolve().parents[2]
# The browser page: packaged as whisper_live/page in a wheel (setup.cfg maps client/ there);
# in a checkout or an editable install, client/ itself.
PAGE_DIR = next(
    (d for d in (_PACKAGE / "page", _PACKAGE.parent / "client") if (d / "index.html").is_file()), None
)


def plain_error(exc: errors.WhisperLiveError, status: int | None) -> web.Response:
    """Errors outside any face (unknown paths, the page, status)."""
    return web.json_response({"error": {"message": exc.message, "code": exc.code}}, status=status or 500)


def add_face_routes(
    app: web.Application, routes: Iterable[web.RouteDef], render_error: ErrorRenderer
) -> None:
    for route in app.router.add_routes(list(routes)):
        app[_RENDERERS][route] = render_error


@web.middleware
async def face_errors(request: web.Request, handler) -> web.StreamResponse:
    status: int | None = None
    try:
        return await handler(request)
    except errors.WhisperLiveError as exc:
        error = exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status = exc.status
        error = errors.WhisperLiveError(exc.text or exc.reason, code=exc.reason.lower().replace(" ", "_"))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        log.exception("%s %s failed", request.method, request.path)
        error = errors.WhisperLiveError(f"internal error: {exc}", code="internal_error")
        status = 500
    render = request.app[_RENDERERS].get(request.match_info.route, plain_error)
    return render(error, status)


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
    body["uploads"] = request.app[UPLOADS].status()
    return web.json_response(body)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE_DIR / "index.html")


async def refuse_new_work(app: web.Application) -> None:
    """On shutdown new uploads get 503 and running ones stop at their next piece."""
    app[UPLOADS].shutting_down = True


def create_app(pool: ModelPool, streams: StreamingServer, settings: ServerSettings) -> web.Application:
    from ..deepgram import api as deepgram_api
    from ..openai import api as openai_api

    app = web.Application(middlewares=[face_errors])
    app[_RENDERERS] = {}
    app[POOL] = pool
    app[STREAMS] = streams
    app[SETTINGS] = settings
    app[UPLOADS] = UploadJobs()
    app.on_shutdown.append(refuse_new_work)
    app.router.add_get("/health", health)
    app.router.add_get("/status", status)
    openai_api.add_routes(app)
    deepgram_api.add_routes(app)
    if PAGE_DIR is not None:
        app.router.add_get("/", index)
        app.router.add_static("/client/", PAGE_DIR)
    return app
