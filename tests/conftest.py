"""Shared fixtures: one real server (one loaded model) for the whole test session.

Tests are grouped by what they need: ``unit/`` runs without a Whisper model or a server
(``make test-fast``), ``integration/`` drives the real server over real sockets, and
``browser/`` also needs Debian's Chromium. Each folder's tests carry its marker.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import evaluation
from harness.server_thread import ServerThread, free_port

from whisper_live.gate.keys import KeyStore
from whisper_live.settings import ServerSettings

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FOLDER_MARKERS = {"unit": "unit", "integration": "integration", "browser": "browser"}


@pytest.fixture(scope="session")
def server() -> ServerThread:
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    # Admission by measured capacity is off: other processes on a test machine make the
    # estimate (correctly) low, and these tests check behaviour, not throughput.
    # Cross-stream batching is on, although a CPU server's default is off: it is the one
    # path a CI machine cannot otherwise exercise, and every stream test runs through it.
    settings = ServerSettings(
        host="127.0.0.1", port=0, http_port=free_port(), max_clients=4, capacity_admission=False, max_batch=8
    )
    with ServerThread(settings) as running:
        yield running


@dataclass
class ApiKeys:
    """A keys file with a key for each kind of test; secrets as ``create`` printed them."""

    path: Path
    alice: str  # no per-key limits
    limited: str  # one stream and one upload at a time
    store: KeyStore

    def label(self, name: str) -> str:
        return next(k.label for k in self.store.entries() if k.name == name)


@pytest.fixture(scope="session")
def api_keys(tmp_path_factory) -> ApiKeys:
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    store = KeyStore(path)
    return ApiKeys(path, store.create("alice"), store.create("limited", max_streams=1, max_uploads=1), store)


@pytest.fixture(scope="session")
def secured_server(api_keys) -> ServerThread:
    """A server of its own that requires keys and allows one foreign origin (the shared
    ``server`` stays open)."""
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        http_port=free_port(),
        max_clients=4,
        capacity_admission=False,
        keys_file=str(api_keys.path),
        cors_origins="https://app.example",
    )
    with ServerThread(settings) as running:
        yield running


@pytest.fixture(scope="session")
def librispeech():
    return evaluation.manifest("librispeech_dev_clean")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parent
    for item in items:
        folder = Path(item.fspath).resolve().relative_to(root).parts[0]
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])
