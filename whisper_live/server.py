"""``whisper-live-server``: the WebSocket and HTTP servers over one model pool."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web

from .engine.admission import Admission
from .engine.pool import ModelPool
from .faces.http.app import create_app
from .faces.whisperlive.server import StreamingServer
from .settings import ServerSettings, parse_args

log = logging.getLogger("whisper_live")


class Server:
    """Both transports and the engine they share (pool, admission); start() binds, stop() releases."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.pool = ModelPool(
            default_model=settings.model,
            device=settings.device,
            compute_type=settings.compute_type,
            workers=settings.workers or None,
            cpu_threads=settings.cpu_threads or None,
            allowed_models=settings.allowed_models(),
            max_batch=settings.max_batch,
        )
        self.admission = Admission(self.pool.scheduler, settings)
        self.streams = StreamingServer(self.pool, settings, self.admission)
        self._ws = None
        self._http: web.AppRunner | None = None
        self.port = settings.port
        self.http_port = settings.http_port

    async def start(self) -> None:
        if self.settings.preload:
            await self.pool.acquire(None)
        self.admission.start_measuring()  # loading the model is no stream's cost
        self._ws = await self.streams.serve(self.settings.host, self.settings.port)
        self.port = self._ws.sockets[0].getsockname()[1]
        if self.settings.http_port:
            self._http = web.AppRunner(create_app(self.pool, self.admission, self.settings), access_log=None)
            await self._http.setup()
            site = web.TCPSite(self._http, self.settings.host, self.settings.http_port)
            await site.start()
            self.http_port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        log.info(
            "listening: ws://%s:%d%s (model %s, %s %s, %d workers)",
            self.settings.host,
            self.port,
            f", http://{self.settings.host}:{self.http_port}" if self._http else "",
            self.settings.model,
            self.settings.device,
            self.settings.compute_type,
            self.pool.workers,
        )

    async def stop(self) -> None:
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        if self._http is not None:
            await self._http.cleanup()
        self.pool.close()


async def _run(settings: ServerSettings) -> None:
    server = Server(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        from .gate import keys

        sys.exit(keys.main(argv[1:]))
    settings = parse_args(argv)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
