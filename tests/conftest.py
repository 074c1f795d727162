"""Shared fixtures: one real server (one loaded model) for the whole test session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from whisper_live import evaluation
from whisper_live.server import Server
from whisper_live.settings import ServerSettings

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    server: Server
    loop: asyncio.AbstractEventLoop

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    @property
    def settings(self) -> ServerSettings:
        return self.server.streams.settings

    @contextlib.contextmanager
    def configured(self, **changes):
        """Change streaming settings (max_clients, max_connection_time, ...) for one test."""
        before = self.server.streams.settings
        self.server.streams.settings = replace(before, **changes)
        try:
            yield self
        finally:
            self.server.streams.settings = before

    def call(self, coro, timeout: float = 60):
        """Run a coroutine on the server's own loop (to look at its state safely)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@pytest.fixture(scope="session")
def server() -> RunningServer:
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    # Admission by measured capacity is off: other processes on a test machine make the
    # estimate (correctly) low, and these tests check behaviour, not throughput.
    # Cross-stream batching is on, although a CPU server's default is off: it is the one
    # path a CI machine cannot otherwise exercise, and every stream test runs through it.
    settings = ServerSettings(
        host="127.0.0.1", port=0, http_port=free_port(), max_clients=4, capacity_admission=False, max_batch=8
    )
    srv = Server(settings)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(srv.start())
        except BaseException as exc:  # surface start-up errors in the test, not a hang
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="test-server", daemon=True)
    thread.start()
    started.wait(300)
    if failure:
        raise failure[0]
    yield RunningServer(srv, loop)
    asyncio.run_coroutine_threadsafe(srv.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="session")
def librispeech():
    return evaluation.manifest("librispeech_dev_clean")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
