"""OpenAI's Realtime API on the HTTP port, transcription sessions only: the WebSocket
``GET /v1/realtime?intent=transcription`` and ``POST /v1/realtime/client_secrets``.

A thin adapter on the engine's live-stream lifecycle (``LiveStreams``): admission and WAIT,
the key's stream slot, metrics, keepalive, time limit, drain. Keys are read by the gate
like on every face; browsers present a short-lived client secret as the subprotocols
``realtime, openai-insecure-api-key.<secret>`` (``gate/secrets.py``).
"""

from __future__ import annotations

from aiohttp import web

from ... import errors
from ...engine.capabilities import check_task
from ...gate import secrets
from ...gate.credentials import presented_secret
from ...gate.keys import ApiKey, digest
from ..http.face import API_KEY, LIVE, POOL, SETTINGS, add_face_routes
from ..http.uploads import MIB, read_json_object
from ..openai.api import error_response
from . import live, protocol
from .protocol import EventError, SessionConfig


def _refusal(message: str, code: str) -> dict:
    return protocol.server_error(message, code)


async def realtime(request: web.Request) -> web.StreamResponse:
    """The WebSocket. A full server, a key without a free stream slot, an unknown model
    or a session that is not a transcription answer with an ``error`` event and a close."""
    app = request.app
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise errors.InvalidRequest(
            "GET /v1/realtime is the Realtime WebSocket: connect with a WebSocket client"
            " (?intent=transcription), e.g. the openai SDK's client.realtime.connect"
        )
    streams, key = app[LIVE], request.get(API_KEY)
    peer = request.remote or "?"
    intent = request.query.get("intent")
    if intent is not None and intent != "transcription":
        return await live.refuse(
            request,
            _refusal(
                f"intent {intent!r} is not served: this server serves intent=transcription", "invalid_intent"
            ),
        )
    config = SessionConfig()
    secret = presented_secret(request.headers, request.query)
    carried = secrets.session_of(secret) if secrets.is_client_secret(secret) else None
    if carried is not None:  # the configuration the backend issued the secret with
        try:
            config = protocol.updated(config, {"type": "session.update", "session": carried})
        except EventError as exc:
            return await live.refuse(request, protocol.error(exc))
    model_name = request.query.get("model")
    if model_name:
        config.model = model_name
    wait = streams.full()
    if wait is not None:
        streams.refused(live.FACE, peer, "wait", key=key)
        message = f"this server is at its limit of concurrent streams; retry in about {wait:.1f} minutes"
        return await live.refuse(request, _refusal(message, "server_busy"))
    try:
        model = await app[POOL].acquire(config.served_model)
        check_task(model.info, "transcribe", None)
    except errors.WhisperLiveError as exc:
        return await live.refuse(request, protocol.error(EventError(exc.message, "model", code=exc.code)))
    try:
        stream = streams.open(live.FACE, peer, key, config.id, model.name)  # its captions: by session id
    except errors.LimitReached as exc:
        streams.refused(live.FACE, peer, "limit reached", key=key)
        return await live.refuse(request, _refusal(exc.message, "rate_limit_exceeded"))
    try:
        return await live.serve(request, live.LiveContext(app[POOL], app[SETTINGS], stream), model, config)
    finally:
        stream.close()


async def client_secrets(request: web.Request) -> web.Response:
    """A short-lived secret for a browser, bound to the caller's key (its limits, its
    revocation), expiring after ``expires_after.seconds`` (default 60, 10 to 7200). The
    session configuration, if sent, is checked and carried (signed) in the secret: streams
    opened with it start from it, as OpenAI's do; the browser may still update it."""
    if secrets.is_client_secret(presented_secret(request.headers, request.query)):
        raise errors.Unauthorized("a client secret cannot create client secrets: use an API key")
    body = await read_json_object(request, MIB)
    seconds = secrets.DEFAULT_SECONDS
    expires_after = body.get("expires_after") or {}
    if not isinstance(expires_after, dict):
        raise errors.InvalidRequest("expires_after must be an object", param="expires_after")
    if expires_after.get("anchor", "created_at") != "created_at":
        raise errors.InvalidRequest("expires_after.anchor must be 'created_at'", param="expires_after.anchor")
    if "seconds" in expires_after:
        seconds = expires_after["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise errors.InvalidRequest(
                "expires_after.seconds must be an integer", param="expires_after.seconds"
            )
        if not secrets.MIN_SECONDS <= seconds <= secrets.MAX_SECONDS:
            raise errors.InvalidRequest(
                f"expires_after.seconds must be between {secrets.MIN_SECONDS} and {secrets.MAX_SECONDS}",
                param="expires_after.seconds",
            )
    config = SessionConfig()
    if body.get("session") is not None:
        try:
            config = protocol.updated(config, {"type": "session.update", "session": body["session"]})
        except EventError as exc:
            raise errors.InvalidRequest(exc.message, param=exc.param) from exc
    key: ApiKey | None = request.get(API_KEY)
    # An open server checks no secret; one is still issued, so that clients work unchanged.
    value, expires_at = secrets.issue(
        key or ApiKey("open", digest("open")), seconds, session=body.get("session")
    )
    session = config.describe()
    session["expires_at"] = expires_at
    return web.json_response({"value": value, "expires_at": expires_at, "session": session})


def add_routes(app: web.Application) -> None:
    add_face_routes(
        app,
        [web.get("/v1/realtime", realtime), web.post("/v1/realtime/client_secrets", client_secrets)],
        error_response,
    )
