"""Live captions of a running stream, for broadcasting: ``/captions?stream=ID&token=T``.

Any live stream (WhisperLive ``uid``, Deepgram ``request_id``, Realtime session id) can be
watched read-only by its id:

- ``POST /v1/streams/{id}/viewer_tokens`` (the stream owner's API key; anyone on an open
  server): a viewer token (``gate/secrets.py``, a client secret scoped to that one stream),
  by default for 4 hours, at most 24 (``{"expires_in": seconds}``).
- ``GET /v1/streams/{id}/captions?token=T``: server-sent events, because an OBS browser
  source (or any page) reads them with ``EventSource``, which reconnects by itself but
  cannot set headers: hence the token in the query. Each ``data:`` line is a JSON caption
  event (``engine/live.py`` ``caption_event``) or ``{"type": "end", "how": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import hdrs, web

from ... import errors
from ...engine.live import LiveStream
from ...gate import secrets
from ...gate.credentials import presented_secret
from ...gate.keys import ApiKey, digest
from ..http.face import API_KEY, GATE, LIVE, add_face_routes, http_status, open_route, plain_error
from ..http.uploads import MIB, read_json_object

KEEPALIVE_SECONDS = 15.0  # an SSE comment so that proxies and browsers keep the connection


def _not_running(stream_id: str) -> web.Response:
    return web.json_response(
        {"error": {"message": f"no stream {stream_id!r} is running on this server", "code": "not_found"}},
        status=404,
    )


def _owned(stream: LiveStream, key: ApiKey | None) -> bool:
    """Only the stream's own key may share it (on an open server there are no keys)."""
    return stream.key is None or (key is not None and key.name == stream.key.name)


async def viewer_tokens(request: web.Request) -> web.Response:
    """A viewer token for one running stream, minted with its owner's API key."""
    if secrets.is_client_secret(presented_secret(request.headers, request.query)):
        raise errors.Unauthorized("a client secret or viewer token cannot mint viewer tokens: use an API key")
    stream_id = request.match_info["id"]
    key: ApiKey | None = request.get(API_KEY)
    stream = request.app[LIVE].find(stream_id, key)
    if stream is None:
        return _not_running(stream_id)
    if not _owned(stream, key):
        raise errors.Unauthorized("this stream belongs to another API key")
    body = await read_json_object(request, MIB)
    seconds = body.get("expires_in", secrets.VIEWER_DEFAULT_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise errors.InvalidRequest("expires_in must be an integer (seconds)", param="expires_in")
    if not secrets.MIN_SECONDS <= seconds <= secrets.VIEWER_MAX_SECONDS:
        raise errors.InvalidRequest(
            f"expires_in must be between {secrets.MIN_SECONDS} and {secrets.VIEWER_MAX_SECONDS}",
            param="expires_in",
        )
    # An open server checks no token; one is still issued, so that the same URL works.
    token, expires_at = secrets.issue(key or ApiKey("open", digest("open")), seconds, view=stream_id)
    url = f"/captions?stream={stream_id}&token={token}"
    return web.json_response({"stream": stream_id, "token": token, "expires_at": expires_at, "url": url})


def _sse(message: dict) -> bytes:
    return f"data: {json.dumps(message, ensure_ascii=False)}\n\n".encode()


async def captions(request: web.Request) -> web.StreamResponse:
    """The stream's caption events as server-sent events until it ends."""
    gate = request.app[GATE]
    stream_id = request.match_info["id"]
    try:
        gate.check_origin(request.headers.get(hdrs.ORIGIN), request.host)
        key = gate.admit_viewer(request.headers, request.query, stream_id)
    except errors.OriginNotAllowed as exc:
        return plain_error(exc, 403)
    except errors.Unauthorized as exc:
        return plain_error(exc, 401)
    stream = request.app[LIVE].find(stream_id, key)
    if stream is None:
        return _not_running(stream_id)
    if not _owned(stream, key):  # a viewer token acts for its key: never another key's stream
        return plain_error(errors.Unauthorized("this stream belongs to another API key"), 401)
    with contextlib.ExitStack() as held:
        try:
            viewer = held.enter_context(stream.watch())
        except errors.LimitReached as exc:
            return plain_error(exc, 429)
        response = web.StreamResponse(
            headers={
                hdrs.CONTENT_TYPE: "text/event-stream",
                hdrs.CACHE_CONTROL: "no-cache",
                "X-Accel-Buffering": "no",  # nginx: do not hold the events back
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        while True:
            try:
                message = await asyncio.wait_for(viewer.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await response.write(_sse(message))
            if message["type"] == "end":
                break
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response


def _error(exc: errors.WhisperLiveError, status: int | None) -> web.Response:
    return plain_error(exc, status or http_status(exc))


def add_routes(app: web.Application) -> None:
    add_face_routes(app, [web.post("/v1/streams/{id}/viewer_tokens", viewer_tokens)], _error)
    open_route(app, app.router.add_get("/v1/streams/{id}/captions", captions).resource)
