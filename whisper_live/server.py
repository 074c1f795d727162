"""``whisper-live-server``: the WebSocket and HTTP servers over one model pool."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import logging
import os
import signal
import ssl
import sys
import threading

from aiohttp import web

from . import errors, logs, memory
from .engine import models, vad
from .engine.admission import Admission
from .engine.live import LiveStreams
from .engine.pool import ModelPool
from .engine.scheduler import Priority
from .faces.captions import api as captions_api
from .faces.deepgram import api as deepgram_api
from .faces.http import docs
from .faces.http.app import UPLOADS, create_app, in_flight, in_flight_finished
from .faces.openai import api as openai_api
from .faces.realtime import api as realtime_api
from .faces.transcriber import api as transcriber_api
from .faces.whisperkit import api as whisperkit_api
from .faces.whisperlive.server import StreamingServer
from .faces.whisperx import api as whisperx_api
from .gate.gate import Gate
from .gate.keys import KeyStore
from .gate.metrics import Metrics
from .settings import ServerSettings, parse_args

log = logging.getLogger("whisper_live")

# The HTTP port's faces, each adding its routes (and its error shape) to the one app; the
# API docs last, as they describe the others.
HTTP_FACES = (
    openai_api.add_routes,
    whisperkit_api.add_routes,
    whisperx_api.add_routes,
    transcriber_api.add_routes,
    deepgram_api.add_routes,
    realtime_api.add_routes,
    captions_api.add_routes,  # live captions of any stream, for broadcasting
    docs.add_routes,
)


class Server:
    """Both transports and what they share: the engine (pool, admission) and the gate (keys,
    limits, metrics). start() binds, drain() finishes the work under way, stop() releases."""

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
            aliases=settings.model_aliases(),
            resolver=functools.partial(models.resolve, allow_download=settings.allow_download),
        )
        self.admission = Admission(self.pool.scheduler, settings)
        self.gate = Gate(
            KeyStore.from_environment(settings.keys_file or None),
            no_auth=settings.no_auth,
            origins=settings.allowed_origins,
        )
        self.metrics = Metrics()
        self.metrics.watch(self._live_state)
        self.pool.scheduler.observers.append(self._observe_decode)
        # One lifecycle for the live streams of every face (WhisperLive, Deepgram live).
        self.live = LiveStreams(self.admission, settings, self.gate, self.metrics)
        self.streams = StreamingServer(
            self.pool, settings, self.admission, self.gate, self.metrics, self.live
        )
        self.ssl = tls_context(settings)
        self.app: web.Application | None = None
        self._ws = None
        self._http: web.AppRunner | None = None
        self.port = settings.port
        self.http_port = settings.http_port

    async def start(self) -> None:
        """Bind both ports, then load the default model: a port in use or an unknown model
        is a ``StartupError`` within a second, not after a model load."""
        check_device(self.settings.device)
        try:
            await self._bind()
            await self.pool.describe(None)  # an unknown --model, before any weights are read
            if self.settings.preload:
                await self.pool.acquire(None)
                await asyncio.to_thread(vad.shared_session)
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, errors.WhisperLiveError):
                raise StartupError(exc.message) from exc
            raise
        self.admission.started()  # /ready may say 200; loading the model is no stream's cost
        self._log_listening()

    async def _bind(self) -> None:
        try:
            self._ws = await self.streams.serve(self.settings.host, self.settings.port, ssl=self.ssl)
        except OSError as exc:
            raise StartupError(_bind_failure(self.settings.host, self.settings.port, exc)) from exc
        self.port = self._ws.sockets[0].getsockname()[1]
        self.gate.own_ports.add(self.port)
        if self.settings.http_port:
            self.app = create_app(
                self.pool,
                self.admission,
                self.settings,
                self.gate,
                self.metrics,
                self.streams,
                HTTP_FACES,
            )
            # In-flight requests are waited for by drain(); stop() only gives stragglers a moment.
            self._http = web.AppRunner(
                self.app, access_log=None, shutdown_timeout=min(5.0, self.settings.shutdown_timeout)
            )
            await self._http.setup()
            site = web.TCPSite(self._http, self.settings.host, self.settings.http_port, ssl_context=self.ssl)
            try:
                await site.start()
            except OSError as exc:
                raise StartupError(_bind_failure(self.settings.host, self.settings.http_port, exc)) from exc
            self.http_port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
            self.gate.own_ports.add(self.http_port)

    def _log_listening(self) -> None:
        secure = "s" if self.ssl else ""
        log.info(
            "listening: ws%s://%s:%d%s (model %s, %s %s, %d workers; %s)",
            secure,
            self.settings.host,
            self.port,
            f", http{secure}://{self.settings.host}:{self.http_port}" if self._http else "",
            self.settings.model,
            self.settings.device,
            self.settings.compute_type,
            self.pool.workers,
            self.gate.describe(),
        )
        if self.gate.no_auth and self.gate.keys.enabled:
            log.warning("--no-auth: the configured API keys are ignored and anyone may use this server")
        elif self.gate.open and not is_loopback(self.settings.host):
            log.warning(
                "no API keys configured and listening on %s: anyone who can reach this machine may"
                " use it; make a key with 'whisper-live-server keys create --name NAME'",
                self.settings.host,
            )

    def busy(self) -> tuple[int, int]:
        """(streams, REST requests) still running."""
        return len(self.live.streams), in_flight(self.app) if self.app is not None else 0

    async def drain(self) -> None:
        """Stop admitting (new streams get WAIT, REST 503, /ready 503), let every stream send
        its finals and DISCONNECT, and let every request in flight finish."""
        self.live.finish_all()  # new streams get WAIT (admission), running ones finish
        waits = [self.live.finished()]
        if self.app is not None:
            waits.append(in_flight_finished(self.app))
        await asyncio.gather(*waits)

    async def stop(self) -> None:
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
            self._ws = None
        if self._http is not None:
            await self._http.cleanup()
            self._http = None
        self.pool.close()

    def _observe_decode(self, priority: Priority, seconds: float, jobs: int) -> None:
        self.metrics.decode_seconds.labels(priority.name.lower()).observe(seconds)

    def _live_state(self) -> dict:
        """Gauges read at every scrape from the objects that own the state."""
        scheduler = self.pool.scheduler
        state = {
            "whisper_live_streams_open": ("Streams open now", [], {(): self.admission.active}),
            "whisper_live_decode_queue_depth": (
                "Decodes waiting for a worker",
                ["priority"],
                {(p.name.lower(),): scheduler.queued(p) for p in Priority},
            ),
            "whisper_live_decodes_running": ("Model calls running now", [], {(): scheduler.running}),
            "whisper_live_models_loaded": (
                "Models in memory (1 each)",
                ["model"],
                {(m.name,): 1 for m in self.pool.loaded()},
            ),
            "whisper_live_draining": ("1 while shutting down", [], {(): int(self.admission.draining)}),
        }
        capacity = self.admission.capacity()
        if capacity is not None:
            state["whisper_live_capacity_streams"] = (
                "Streams this server can keep up with, as measured so far",
                [],
                {(): capacity},
            )
        if self.app is not None:
            state["whisper_live_uploads_running"] = (
                "REST transcriptions under way",
                [],
                {(): len(self.app[UPLOADS].jobs)},
            )
        return state


class StartupError(Exception):
    """The server cannot start; the message is one line that says why and what to change."""


def tls_context(settings: ServerSettings) -> ssl.SSLContext | None:
    """One server context for both ports (wss:// and https://), or None without a certificate."""
    if not settings.ssl_certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StartupError(
            f"cannot use --ssl-certfile {settings.ssl_certfile} / --ssl-keyfile {settings.ssl_keyfile}: {reason}"
        ) from exc
    return context


def check_device(device: str) -> None:
    """``--device cuda`` on a machine where CTranslate2 sees no GPU (no driver, no device)."""
    if device != "cuda":
        return
    import ctranslate2

    try:
        count = ctranslate2.get_cuda_device_count()
    except Exception:  # a broken CUDA install may raise rather than answer 0
        count = 0
    if count == 0:
        raise StartupError(
            "--device cuda: CTranslate2 finds no usable CUDA device (no GPU or no driver);"
            " use --device cpu or --device auto"
        )


def _bind_failure(host: str, port: int, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        reason = "address already in use (another server running? choose another port)"
    return f"cannot listen on {host}:{port}: {reason}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _exit_now(reason: str) -> None:
    log.warning("%s: exiting now", reason)
    logging.shutdown()
    os._exit(1)


async def _run(settings: ServerSettings) -> None:
    server = Server(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        if stop.is_set():  # the second one: no more waiting
            _exit_now(f"second {name}")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig.name)
    await stop.wait()
    timeout = settings.shutdown_timeout
    # Whatever hangs (a decode that will not end, a client that will not read), the process
    # is gone by the deadline; closing the sockets gets the last part of it.
    watchdog = threading.Timer(timeout, _exit_now, args=(f"shutdown took {timeout:g} s",))
    watchdog.daemon = True
    watchdog.start()
    streams, requests = server.busy()
    log.info("shutting down: finishing %d streams and %d requests (at most %g s)", streams, requests, timeout)
    try:
        await asyncio.wait_for(server.drain(), max(0.0, timeout - min(2.0, timeout / 4)))
    except TimeoutError:
        streams, requests = server.busy()
        log.warning(
            "shutdown: closing %d streams and %d requests that did not finish in time", streams, requests
        )
    await server.stop()
    watchdog.cancel()
    log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        from .gate import keys

        sys.exit(keys.main(argv[1:]))
    settings = parse_args(argv)
    logs.configure(settings.log_level, settings.log_format)
    memory.tune()  # before the first decode and any decode thread: RSS that levels off
    try:
        asyncio.run(_run(settings))
    except StartupError as exc:
        print(f"whisper-live-server: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
