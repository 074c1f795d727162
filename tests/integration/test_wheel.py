"""A wheel built from the repository, installed into a fresh venv, serves the page and streams.

Everything else runs from the checkout (an editable install), where ``client/`` sits beside
the package; only a real wheel shows that the page, the entry points and the package list
in setup.cfg make a working install. The venv is a fresh one without system site-packages:
its dependencies come from the configured indexes (pip's cache makes a second run quick).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import evaluation as ev
from harness.server_thread import free_port

import whisper_live

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(cmd: list, timeout: float, **kwargs) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _tracked_copy(dest: Path) -> Path:
    """The files git tracks (as they are on disk): what a clean checkout builds from, so
    neither a stray local file nor a previous build's leftovers can make the wheel work."""
    names = _run(["git", "-C", ROOT, "ls-files", "-z"], 60).split("\0")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@dataclass
class Installed:
    venv: Path
    wheel: Path
    env: dict[str, str]
    cwd: Path

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    source = _tracked_copy(work / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", work / "dist", source], 600)
    (wheel,) = (work / "dist").glob("*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", venv], 300)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], 1200)
    # nothing of the checkout may leak in: no PYTHONPATH, a working directory of its own
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    cwd = work / "run"
    cwd.mkdir()
    return Installed(venv, wheel, env, cwd)


def test_the_venv_runs_the_wheel_not_the_checkout(installed):
    probe = (
        "import json, whisper_live; from importlib.metadata import distribution; "
        "from whisper_live.faces.http.app import PAGE_DIR; d = distribution('whisper-live-daemon'); "
        "print(json.dumps({'file': whisper_live.__file__, 'page': str(PAGE_DIR), "
        "'direct_url': d.read_text('direct_url.json')}))"
    )
    found = json.loads(
        _run([installed.bin("python"), "-c", probe], 120, cwd=installed.cwd, env=installed.env)
    )
    site = installed.venv / "lib"
    assert Path(found["file"]).is_relative_to(site), found
    assert Path(found["page"]) == Path(found["file"]).parent / "page"
    assert '"editable"' not in (found["direct_url"] or ""), found["direct_url"]
    shipped = sorted(p.name for p in Path(found["page"]).iterdir() if p.suffix in {".html", ".js", ".css"})
    assert shipped == sorted(
        p.name for p in (ROOT / "client").iterdir() if p.suffix in {".html", ".js", ".css"}
    )


def test_installed_commands_report_the_version(installed):
    for cmd in (
        [installed.bin("whisper-live-server")],
        [installed.bin("whisper-live-client")],
        [installed.bin("python"), "-m", "whisper_live"],
    ):
        out = _run([*cmd, "--version"], 120, cwd=installed.cwd, env=installed.env)
        assert out.strip().endswith(f" {whisper_live.__version__}"), (cmd, out)


@pytest.fixture(scope="module")
def served(installed):
    """``whisper-live-server`` from the venv as a subprocess on free ports."""
    port, http_port = free_port(), free_port()
    log = (installed.cwd / "server.log").open("w")
    proc = subprocess.Popen(
        [
            installed.bin("whisper-live-server"),
            "--host=127.0.0.1",
            f"--port={port}",
            f"--http-port={http_port}",
            "--model=tiny.en",
            "--max-clients=2",
            "--no-capacity-admission",
            "--log-level=warning",
        ],
        cwd=installed.cwd,
        env=installed.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    http = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 300
    try:
        while True:
            assert proc.poll() is None, (installed.cwd / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{http}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the installed server did not start"
            time.sleep(0.5)
        yield f"ws://127.0.0.1:{port}", http
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def test_installed_server_serves_the_page(served):
    _ws, http = served
    status, kind, body = _get(f"{http}/")
    assert status == 200 and kind.startswith("text/html")
    assert body == (ROOT / "client" / "index.html").read_bytes()
    status, kind, body = _get(f"{http}/client/app.js")
    assert status == 200 and "javascript" in kind
    assert body == (ROOT / "client" / "app.js").read_bytes()


def test_installed_server_streams_librispeech(served, librispeech):
    ws, _http = served
    utt = librispeech[1]  # 7.9 s
    audio = ev.conversation([utt], gap=1.0).audio
    trace = asyncio.run(
        ev.stream(ws, audio, {"language": "en"}, speed=2.0, frame=ev.FRAME_WHISPERLIVE, timeout=120)
    )
    assert trace.status("SERVER_READY"), trace.messages[:2]
    assert ev.wer(utt.reference, trace.transcript) < 0.15, trace.transcript
