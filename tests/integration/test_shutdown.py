"""SIGTERM on the real server process (``python -m whisper_live.server``) in the middle of real work.

The first SIGTERM stops admitting (``/ready`` 503, new streams WAIT, new REST requests 503
in OpenAI's envelope), delivers every stream's finals then DISCONNECT, lets in-flight
uploads finish, and exits; the Python client still writes its SRT. A second SIGTERM exits
at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import openai
import pytest
import srt
from harness import evaluation
from harness.server_thread import free_port
from test_security import fetch, handshake

from whisper_live.client import TranscriptionClient
from whisper_live.media import decode_audio

ROOT = Path(__file__).resolve().parents[2]
SONNET = evaluation.audio_root() / "longform" / "shakespeare_sonnet001_librivox.mp3"


class ServerProcess:
    """The server as its operators run it, on free ports, logging JSON to a file."""

    def __init__(self, tmp_path: Path, keys_file: Path, *flags: str):
        self.ws_port, self.http_port = free_port(), free_port()
        self.log_path = tmp_path / "server.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "whisper_live.server", "--host", "127.0.0.1"]
            + ["--port", str(self.ws_port), "--http-port", str(self.http_port)]
            + ["--keys-file", str(keys_file), "--log-format", "json", "--no-capacity-admission", *flags],
            cwd=ROOT,  # this checkout's whisper_live
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        self.while_starting: list[tuple[int, dict]] = []  # what /ready said before its first 200
        self.has_been_ready = False
        deadline = time.monotonic() + 180
        while not self.ready():
            assert self.proc.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def ready(self) -> bool:
        """Whether /ready says 200 now; until it first does, every other answer is kept."""
        try:
            status, _, body = fetch(self.http_url + "/ready")
        except OSError:  # not listening yet
            return False
        if status != 200 and not self.has_been_ready:
            self.while_starting.append((status, json.loads(body)))
        self.has_been_ready = self.has_been_ready or status == 200
        return status == 200

    def log(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._log.close()


@pytest.fixture
def make_server(tmp_path, api_keys):
    started: list[ServerProcess] = []

    def make(*flags: str) -> ServerProcess:
        started.append(ServerProcess(tmp_path, api_keys.path, *flags))
        return started[-1]

    yield make
    for each in started:
        each.close()


def test_ready_says_starting_until_the_model_has_loaded(make_server):
    """The ports are bound before the model loads (a port in use fails fast), so a balancer
    can reach /ready meanwhile: it must not send streams to a replica still loading."""
    server = make_server()
    assert server.while_starting, "/ready was never asked before the model had loaded"
    assert {(status, body["status"]) for status, body in server.while_starting} == {(503, "starting")}


def test_sigterm_mid_stream_delivers_the_text_and_finishes_uploads(
    make_server, api_keys, librispeech, tmp_path
):
    server = make_server("--shutdown-timeout", "300")
    key = api_keys.alice
    conv = evaluation.conversation(sorted(librispeech, key=lambda u: u.path.stat().st_size)[6:9], gap=1.5)
    talk = evaluation.write_wav(tmp_path / "talk.wav", conv.audio)
    long_file = evaluation.write_wav(tmp_path / "long.wav", np.tile(decode_audio(str(SONNET)), 8))
    sdk = openai.OpenAI(base_url=server.http_url + "/v1", api_key=key, max_retries=0, timeout=300)

    outcome: dict = {}
    jobs = lambda: json.loads(fetch(server.http_url + "/status", {"Authorization": f"Bearer {key}"})[2])  # noqa: E731
    # A live stream with the Python client (its key in the URL), paced in real time...
    audio_started = threading.Event()
    completed = []
    client = TranscriptionClient(
        url=f"ws://127.0.0.1:{server.ws_port}/?token={key}",
        srt_path=str(tmp_path / "talk.srt"),
        log_transcription=False,
        progress=False,
        on_audio_start=audio_started.set,
        on_completed=completed.append,
    )
    streaming = threading.Thread(target=lambda: outcome.update(transcript=client(str(talk))))
    streaming.start()
    assert audio_started.wait(120)
    t_audio = time.monotonic()
    # ...and, once the first utterance is final, a long upload over OpenAI's SDK.
    deadline = t_audio + 60
    while not completed:
        assert time.monotonic() < deadline, "no final for the first utterance"
        time.sleep(0.05)
    uploading = threading.Thread(
        target=lambda: outcome.update(
            upload=sdk.audio.transcriptions.create(
                model="whisper-1", file=long_file.open("rb"), response_format="text"
            )
        )
    )
    uploading.start()
    while not jobs()["uploads"]["jobs"]:
        assert time.monotonic() < deadline and uploading.is_alive(), "the upload never started"
        time.sleep(0.05)
    # SIGTERM two seconds into the second utterance: its first words are said, not yet final.
    while time.monotonic() - t_audio < conv.starts[1] + 2.0:
        time.sleep(0.05)
    status = jobs()
    assert status["uploads"]["jobs"] == 1 and status["active_streams"] == 1, status
    cut = time.monotonic() - t_audio
    assert cut < conv.ends[1] - 1.0, "too late: the second utterance was over"
    server.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()

    # Draining: not ready, new streams WAIT, new REST work 503 in OpenAI's shape.
    deadline = time.monotonic() + 10
    while fetch(server.http_url + "/ready")[0] != 503:
        assert time.monotonic() < deadline, "/ready never said 503"
        time.sleep(0.05)
    url = f"ws://127.0.0.1:{server.ws_port}/?token={key}"
    assert handshake(url)[1]["status"] == "WAIT"
    with pytest.raises(openai.InternalServerError) as refused:
        sdk.models.list()
    assert refused.value.status_code == 503 and refused.value.body["code"] == "shutting_down"
    assert uploading.is_alive(), "the upload finished before the drain could be observed"

    streaming.join(120)
    uploading.join(400)
    assert server.proc.wait(300) == 0
    assert time.monotonic() - signalled < 300
    # The stream: DISCONNECT after every final, and an SRT with what was said up to the cut.
    transcript = outcome["transcript"]
    assert transcript.disconnected
    # It tried to resume (reconnect is on), found only this draining server, and ended as before.
    assert client.reconnects == 1 and client.ended == "server shutting down"
    cues = list(srt.parse((tmp_path / "talk.srt").read_text()))
    assert [c.content for c in cues] == [line.text for line in transcript.lines]
    first = " ".join(c.content for c in cues if c.start.total_seconds() < conv.ends[0])
    assert evaluation.wer(conv.utterances[0].reference, first) < 0.3, first
    # The second utterance's first words, cut off by the shutdown, came back as final text.
    second = " ".join(c.content for c in cues if c.start.total_seconds() >= conv.ends[0])
    reference_words = set(evaluation.normalize(conv.utterances[1].reference).split())
    said = evaluation.normalize(second).split()
    assert said and sum(w in reference_words for w in said) >= 0.6 * len(said), (second, conv.utterances[1])
    assert cues[-1].end.total_seconds() <= cut + 1.0
    # The upload in flight finished, whole.
    reference = " ".join([evaluation.manifest("longform")[0].reference] * 8)
    assert evaluation.wer(reference, outcome["upload"]) < 0.4, outcome["upload"]
    # The log: JSON lines; the stream's says it ended by the shutdown and names the key, never its secret.
    log = server.log()
    assert key not in server.log_path.read_text()
    (ended,) = [line for line in log if line["message"] == "stream ended"]
    assert ended["how"] == "shutdown" and ended["key"] == api_keys.label("alice") and ended["finals"] >= 2
    assert any(
        line["message"].startswith("shutting down: finishing 1 streams and 1 requests") for line in log
    )
    assert any(line["message"] == "request" and line["status"] == 503 for line in log)


def test_second_sigterm_exits_at_once(make_server, api_keys, tmp_path):
    server = make_server("--shutdown-timeout", "120")
    long_file = evaluation.write_wav(tmp_path / "long.wav", np.tile(decode_audio(str(SONNET)), 8))
    sdk = openai.OpenAI(base_url=server.http_url + "/v1", api_key=api_keys.alice, max_retries=0, timeout=300)
    outcome: dict = {}

    def upload():
        try:
            sdk.audio.transcriptions.create(model="whisper-1", file=long_file.open("rb"))
        except openai.APIError as exc:
            outcome["error"] = exc

    uploading = threading.Thread(target=upload)
    uploading.start()
    deadline = time.monotonic() + 60
    while not json.loads(
        fetch(server.http_url + "/status", {"Authorization": f"Bearer {api_keys.alice}"})[2]
    )["uploads"]["jobs"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGTERM)
    while fetch(server.http_url + "/ready")[0] != 503:
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert server.proc.wait(10) != 0
    assert time.monotonic() - signalled < 5
    uploading.join(30)
    assert isinstance(outcome.get("error"), openai.APIConnectionError)
    assert any(line["message"] == "second SIGTERM: exiting now" for line in server.log())
