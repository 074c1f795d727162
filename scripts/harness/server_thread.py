"""The real ``Server`` on its own event loop in a background thread.

Tests and in-process benchmarks talk to it over real sockets while the calling thread
stays free to run blocking clients; ``call`` runs a coroutine on the server's loop to look
at its state safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from typing import Any

from whisper_live.server import Server
from whisper_live.settings import ServerSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """``with ServerThread(settings) as running:`` serves until the block ends."""

    def __init__(self, settings: ServerSettings, start_timeout: float = 300):
        self.server = Server(settings)
        self.loop = asyncio.new_event_loop()
        self._start_timeout = start_timeout
        self._thread = threading.Thread(target=self._run, name="server-thread", daemon=True)
        self._started = threading.Event()
        self._failure: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:  # surface start-up errors to the caller, not a hang
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._started.wait(self._start_timeout):
            raise TimeoutError("the server did not start")
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        if self.loop.is_running():
            self.call(self.server.stop(), timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}"

    @property
    def ws_http_url(self) -> str:
        """The same WebSocket face on the HTTP port (what a proxy in front of one port uses)."""
        return f"ws://127.0.0.1:{self.server.http_port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    @property
    def settings(self) -> ServerSettings:
        return self.server.settings

    @contextlib.contextmanager
    def configured(self, **changes: Any) -> Iterator[ServerThread]:
        """Change settings (max_clients, max_connection_time, max_upload_mb, ...) for a while.

        The one settings object is changed in place, so every part of the server that holds
        it (the WebSocket face, admission, the HTTP app) sees the change.
        """
        settings = self.server.settings
        replace(settings, **changes)  # a misspelt name fails here, before anything changed
        before = {name: getattr(settings, name) for name in changes}
        for name, value in changes.items():
            setattr(settings, name, value)
        try:
            yield self
        finally:
            for name, value in before.items():
                setattr(settings, name, value)

    def call(self, coro: Coroutine, timeout: float = 60) -> Any:
        """Run a coroutine on the server's own loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)
