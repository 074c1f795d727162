"""The HTTP side of the server (aiohttp): health and status for now.

It shares the model pool with the streams; it never decodes by itself.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .pool import ModelPool

POOL = web.AppKey("pool", ModelPool)
STREAMS = web.AppKey("streams", object)

# The browser client: client/ beside the package in a checkout or editable install.
CLIENT_DIR = Path(__file__).resolve().parent.parent / "client"


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def status(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    streams = request.app[STREAMS]
    body = pool.status()
    body["active_streams"] = len(streams.clients)
    body["max_clients"] = streams.settings.max_clients
    body["transcribing"] = pool.scheduler.running > 0
    return web.json_response(body)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(CLIENT_DIR / "index.html")


def create_app(pool: ModelPool, streams) -> web.Application:
    app = web.Application()
    app[POOL] = pool
    app[STREAMS] = streams
    app.router.add_get("/health", health)
    app.router.add_get("/status", status)
    if CLIENT_DIR.is_dir():
        app.router.add_get("/", index)
        app.router.add_static("/client/", CLIENT_DIR)
    return app
