"""What every HTTP face needs from the HTTP port, and nothing else: the app's keys, the
status table, and how a face adds its routes and says how its errors look.

A leaf module: it imports no face and not the app (``app.py``), so faces import this and the
app imports no face; ``server.py`` hands the faces' routes to ``create_app``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web

from ... import errors
from ...engine.admission import Admission
from ...engine.files import UploadJobs
from ...engine.live import LiveStreams
from ...engine.pool import ModelPool
from ...gate.gate import Gate
from ...gate.keys import ApiKey
from ...gate.metrics import Metrics
from ...settings import ServerSettings

POOL = web.AppKey("pool", ModelPool)
ADMISSION = web.AppKey("admission", Admission)
SETTINGS = web.AppKey("settings", ServerSettings)
UPLOADS = web.AppKey("uploads", UploadJobs)
GATE = web.AppKey("gate", Gate)
METRICS = web.AppKey("metrics", Metrics)
LIVE = web.AppKey("live", LiveStreams)  # every live face's stream lifecycle
# GET /v1/models answers every SDK that reads it: list name ("data", "stt") -> the entry of
# one model in that face's shape, each registered by its face.
MODEL_LISTS = web.AppKey("model_lists", dict)
API_KEY = web.RequestKey("api_key", ApiKey)  # the caller's key (None on an open server)

# (the error, the HTTP status when aiohttp already chose one) -> the face's response
ErrorRenderer = Callable[[errors.WhisperLiveError, "int | None"], web.StreamResponse]
_RENDERERS = web.AppKey("error_renderers", dict)
_OPEN = web.AppKey("open_resources", set)  # resources served without a key
_IN_FLIGHT = web.AppKey("in_flight", dict)  # face requests running now (to drain at shutdown)

# The gate's refusals, the same on every face (its renderer gives them its shape).
GATE_STATUS: list[tuple[type[errors.WhisperLiveError], int]] = [
    (errors.Unauthorized, 401),
    (errors.OriginNotAllowed, 403),
    (errors.LimitReached, 429),
    (errors.ShuttingDown, 503),
]

Statuses = list[tuple[type[errors.WhisperLiveError], int]]

# Domain errors to HTTP statuses, most specific class first (the first isinstance wins).
# Every HTTP face uses this table; a face whose API answers differently puts its own
# entries in front (``http_status(exc, overrides)``).
HTTP_STATUSES: Statuses = [
    (errors.AudioTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.MissingAudio, 422),
    (errors.InvalidRequest, 400),
    (errors.Unauthorized, 401),
    (errors.OriginNotAllowed, 403),
    (errors.ModelNotFound, 404),
    (errors.LimitReached, 429),
    (errors.ClientGone, 499),
    (errors.ShuttingDown, 503),
    (errors.WhisperLiveError, 500),
]


def http_status(exc: errors.WhisperLiveError, overrides: Statuses = ()) -> int:
    return next(status for kind, status in (*overrides, *HTTP_STATUSES) if isinstance(exc, kind))


def plain_error(exc: errors.WhisperLiveError, status: int | None) -> web.Response:
    """Errors outside any face (unknown paths, the page, status)."""
    return web.json_response({"error": {"message": exc.message, "code": exc.code}}, status=status or 500)


def add_face_routes(
    app: web.Application, routes: Iterable[web.RouteDef], render_error: ErrorRenderer
) -> None:
    for route in app.router.add_routes(list(routes)):
        app[_RENDERERS][route] = render_error


def render_error(
    request: web.Request, exc: errors.WhisperLiveError, status: int | None
) -> web.StreamResponse:
    """An error in the shape of the face that owns the request's route."""
    return request.app[_RENDERERS].get(request.match_info.route, plain_error)(exc, status)


def open_route(app: web.Application, resource: web.AbstractResource) -> None:
    """Serve this resource without a key (health, readiness, the page)."""
    app[_OPEN].add(resource)


# A face: adds its routes to the app (``server.py`` passes the list to ``create_app``).
Face = Callable[[web.Application], None]
