"""The HTTP port: one aiohttp app that carries every HTTP face, the browser page, health and status.

The app imports no face: ``server.py`` hands it their ``add_routes`` (``faces``), and a face
imports what it needs from the leaf ``face.py``. A face
adds its routes with ``add_face_routes`` and says how its errors look; one
middleware turns anything a handler raises (a domain error, aiohttp's own HTTP errors, a
crash) into that face's error shape, so nothing a client sends escapes as a traceback.

Every request passes the gate first (``gatekeeper``), before its body is read: its API
key, the per-key limit on concurrent requests, the browser origin, and at shutdown the
refusal of new work, each answered through the face's own error renderer; it also counts
and logs every request. Only health, readiness and the browser page (which holds no
data; its key goes with its WebSocket) are open without a key, and ``/ws``, the
WhisperLive WebSocket, whose face checks keys and origins itself exactly as on its own
port (and answers a full or draining server with ``WAIT``, as there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from ... import errors
from ...engine.admission import Admission
from ...engine.files import UploadJobs
from ...engine.live import LiveStreams
from ...engine.pool import ModelPool
from ...gate.gate import Gate
from ...gate.keys import ApiKey
from ...gate.metrics import Metrics
from ...gate.proxies import forwarded_client
from ...logs import event
from ...settings import ServerSettings
from .face import (
    _IN_FLIGHT,
    _OPEN,
    _RENDERERS,
    ADMISSION,
    API_KEY,
    GATE,
    GATE_STATUS,
    LIVE,
    METRICS,
    MODEL_LISTS,
    POOL,
    SETTINGS,
    UPLOADS,
    Face,
    open_route,
    render_error,
)

if TYPE_CHECKING:
    from ..whisperlive.server import StreamingServer

log = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parents[2]
# The browser page: packaged as whisper_live/page in a wheel (setup.cfg maps client/ there);
# in a checkout or an editable install, client/ itself.
PAGE_DIR = next(
    (d for d in (_PACKAGE / "page", _PACKAGE.parent / "client") if (d / "index.html").is_file()), None
)


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _origin_ok(request: web.Request) -> bool:
    try:
        request.app[GATE].check_origin(request.headers.get(hdrs.ORIGIN), request.host)
    except errors.OriginNotAllowed:
        return False
    return True


@web.middleware
async def cors_preflight(request: web.Request, handler) -> web.StreamResponse:
    """Answer CORS preflights (they carry no key) before anything else; allowed origins only."""
    if request.method != "OPTIONS" or hdrs.ACCESS_CONTROL_REQUEST_METHOD not in request.headers:
        return await handler(request)
    if not _origin_ok(request):
        return web.Response(status=403, text="origin not allowed (see --cors-origins)")
    return web.Response(
        status=204,
        headers={
            hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: request.headers[hdrs.ORIGIN],
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: "GET, POST, DELETE, OPTIONS",
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: request.headers.get(
                hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "Authorization, Content-Type"
            ),
            hdrs.ACCESS_CONTROL_MAX_AGE: "600",
            hdrs.VARY: "Origin",
        },
    )


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer to an allowed cross-origin page says so, streamed ones too."""
    origin = request.headers.get(hdrs.ORIGIN)
    if (
        origin is not None
        and hdrs.ACCESS_CONTROL_ALLOW_ORIGIN not in response.headers
        and _origin_ok(request)
    ):
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
        response.headers.add(hdrs.VARY, "Origin")


@web.middleware
async def gatekeeper(request: web.Request, handler) -> web.StreamResponse:
    """Key, origin, per-key request limit and shutdown, before any body is read; then count and log."""
    app = request.app
    started = time.monotonic()
    resource = request.match_info.route.resource
    is_open = resource in app[_OPEN]
    key: ApiKey | None = None
    status = 500
    try:
        if is_open:
            response = await handler(request)
        else:
            try:
                app[GATE].check_origin(request.headers.get(hdrs.ORIGIN), request.host)
                key = request[API_KEY] = app[GATE].admit(request.headers, request.query)
                face = request.match_info.route in app[_RENDERERS]
                if face and app[ADMISSION].draining:
                    raise errors.ShuttingDown("the server is shutting down; try again on another instance")
                upgrade = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
                # Streams hold a "streams" slot in their face; every other request holds an upload slot.
                slot = app[GATE].slot(key, "uploads") if face and not upgrade else contextlib.nullcontext()
                with slot:
                    token = object()
                    app[_IN_FLIGHT][token] = request
                    try:
                        response = await handler(request)
                    finally:
                        del app[_IN_FLIGHT][token]
            except tuple(kind for kind, _ in GATE_STATUS) as exc:
                status = next(code for kind, code in GATE_STATUS if isinstance(exc, kind))
                response = render_error(request, exc, status)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away
        raise
    finally:
        route = _route_name(request)
        app[METRICS].http_requests.labels(route, request.method, str(status)).inc()
        quiet = is_open or route == "/metrics"
        event(
            log,
            "request",
            logging.DEBUG if quiet else logging.INFO,
            method=request.method,
            path=request.path,
            status=status,
            key=key.label if key is not None else None,
            peer=forwarded_client(request.remote, request.headers, app[SETTINGS].trusted_networks())
            or request.remote,
            seconds=round(time.monotonic() - started, 3),
        )


async def in_flight_finished(app: web.Application) -> None:
    """Wait until no face request is running (the drain at shutdown)."""
    while app[_IN_FLIGHT]:
        await asyncio.sleep(0.05)


def in_flight(app: web.Application) -> int:
    return len(app[_IN_FLIGHT])


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
    return render_error(request, error, status)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness: 200 while this replica admits another stream; 503 while it is starting (its
    model still loading), full or shutting down, so a load balancer (HAProxy, Kubernetes)
    sends new clients to another replica. REST uploads are still served when full (they
    queue); a replica that is full only for streams leaves rotation anyway, because streams
    are what it cannot queue. It is open without a key, so it says only which; ``/status``
    (with a key) has the figures the decision came from."""
    admission = request.app[ADMISSION]
    if admission.starting:
        return web.json_response({"status": "starting"}, status=503)
    if admission.admits_another():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "draining" if admission.draining else "full"}, status=503)


async def scrape(request: web.Request) -> web.Response:
    """Prometheus' text format; it needs a key like any other route (scrapers send a bearer token)."""
    body, content_type = request.app[METRICS].render()
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})


async def status(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    body = pool.status()
    body.update(request.app[ADMISSION].status())
    body["transcribing"] = pool.scheduler.running > 0
    body["uploads"] = request.app[UPLOADS].status()
    # Every task on the loop (streams, uploads, the servers' own): a count that keeps rising
    # after clients have gone is a leak (scripts/soak.py watches it over long runs).
    body["asyncio_tasks"] = len(asyncio.all_tasks())
    # The Transcriber API's fields: its clients poll them to wait until the server is free.
    # queue_depth (above) already counts the decodes waiting, one per waiting request.
    body["server_running"] = True
    body["transcription_active"] = body["transcribing"]
    return web.json_response(body)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE_DIR / "index.html")


async def captions(request: web.Request) -> web.FileResponse:
    """The page's captions view (large last lines for a streaming tool); see client/README.md."""
    return web.FileResponse(PAGE_DIR / "captions.html")


async def refuse_new_work(app: web.Application) -> None:
    """On shutdown new uploads get 503 and running ones stop at their next piece."""
    app[UPLOADS].shutting_down = True


def create_app(
    pool: ModelPool,
    admission: Admission,
    settings: ServerSettings,
    gate: Gate | None = None,
    metrics: Metrics | None = None,
    streams: StreamingServer | None = None,
    faces: Iterable[Face] = (),
) -> web.Application:
    """The HTTP port. ``gate`` and ``metrics`` are the server's (shared with the WebSocket
    face); without them the app is open, allows the pages of ``--cors-origins``, and counts
    for itself. ``streams``: the WhisperLive face, also served at ``/ws``.
    ``faces``: each adds its routes (``server.HTTP_FACES``); the app imports none of them."""

    app = web.Application(middlewares=[cors_preflight, gatekeeper, face_errors])
    app[_RENDERERS] = {}
    app[MODEL_LISTS] = {}
    app[_OPEN] = set()
    app[_IN_FLIGHT] = {}
    app[POOL] = pool
    app[ADMISSION] = admission
    app[SETTINGS] = settings
    app[GATE] = gate or Gate(origins=settings.allowed_origins)
    app[METRICS] = metrics = metrics or Metrics()
    app[LIVE] = streams.live if streams is not None else LiveStreams(admission, settings, app[GATE], metrics)
    app[UPLOADS] = UploadJobs(on_audio=metrics.audio_seconds.labels("upload").inc)
    app.on_shutdown.append(refuse_new_work)
    app.on_response_prepare.append(cors_headers)
    open_route(app, app.router.add_get("/health", health).resource)
    open_route(app, app.router.add_get("/ready", ready).resource)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", scrape)
    for add_routes in faces:
        add_routes(app)
    if streams is not None:
        open_route(app, app.router.add_get("/ws", streams.http_handler).resource)
    if PAGE_DIR is not None:
        open_route(app, app.router.add_get("/", index).resource)
        open_route(app, app.router.add_get("/captions", captions).resource)
        open_route(app, app.router.add_static("/client/", PAGE_DIR))
    return app
