"""Three replicas behind a real HAProxy (Debian's), all real processes on loopback.

Each replica is ``python -m whisper_live`` on free ports with its own small
``--max-clients``; HAProxy runs ``docker/haproxy.cfg`` as it is, with only the lines marked
"rendered by the tests" replaced (the bind ports and one ``server`` line per replica).
Streams are real LibriSpeech speech paced in real time by our Python client
(``AsyncStreamingClient`` with ``reconnect``), through the balancer's ``/ws`` on the HTTP
port and its WhisperLive port.

- 12 streams spread over the replicas (each gets some), REST requests too (leastconn);
  a replica SIGKILLed mid-run: only its streams resume (through the balancer, on the
  others) and they lose at most the utterance in flight; the others never notice.
- A replica sent SIGTERM drains: its streams get their finals and continue elsewhere with
  nothing lost; HAProxy takes it out of rotation (``/ready`` 503) and new streams go to the
  others without a single WAIT.
- A full replica (``/ready`` 503) gets no new streams; it returns when a slot frees.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from harness import evaluation
from harness.server_thread import free_port
from test_security import fetch

from whisper_live.client import RetryPolicy, StreamOptions
from whisper_live.client.stream import AsyncStreamingClient

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "docker" / "haproxy.cfg"
MAX_CLIENTS = 6  # per replica: 12 streams fit on two of the three

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("haproxy") is None, reason="haproxy not installed (scripts/install-system-deps.sh)"
    ),
]


# ----------------------------------------------------------------------------- the processes


class Replica:
    """One ``python -m whisper_live`` process, as an operator runs it."""

    def __init__(self, name: str, tmp_path: Path, max_clients: int = MAX_CLIENTS):
        self.name = name
        self.ws_port, self.http_port = free_port(), free_port()
        self.log_path = tmp_path / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "whisper_live", "--host", "127.0.0.1", "--model", "tiny.en"]
            + ["--port", str(self.ws_port), "--http-port", str(self.http_port)]
            + ["--max-clients", str(max_clients), "--no-capacity-admission", "--workers", "1"]
            + ["--log-format", "json", "--shutdown-timeout", "60"],
            cwd=ROOT,  # this checkout's whisper_live
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )

    def wait_started(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers():
            assert self.proc.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, f"{self.name} did not start"
            time.sleep(0.2)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def answers(self) -> bool:
        try:
            return fetch(self.http_url + "/health")[0] == 200
        except OSError:
            return False

    def status(self) -> dict:
        return json.loads(fetch(self.http_url + "/status")[2])

    def metric(self, name: str, **labels: str) -> float:
        """One sample of this replica's /metrics (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        body = fetch(self.http_url + "/metrics")[2].decode()
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._log.close()


def render_haproxy(replicas: list, http_port: int, ws_port: int, stats_port: int) -> str:
    """docker/haproxy.cfg with its "rendered by the tests" lines pointed at local processes."""
    out = []
    for line in HAPROXY_CFG.read_text().splitlines():
        if "# rendered by the tests" not in line:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if line.strip().startswith("bind"):
            port = {":8001": http_port, ":9090": ws_port, ":8404": stats_port}[line.split()[1]]
            out.append(f"{indent}bind 127.0.0.1:{port}")
        elif "whisper-live:8001" in line:
            out += [f"{indent}server {r.name} 127.0.0.1:{r.http_port}" for r in replicas]
        elif "whisper-live:9090" in line:
            out += [f"{indent}server {r.name} 127.0.0.1:{r.ws_port} port {r.http_port}" for r in replicas]
        else:
            raise AssertionError(f"a rendered line the tests do not know: {line}")
    return "\n".join(out) + "\n"


@dataclass
class Cluster:
    replicas: list[Replica]
    haproxy: subprocess.Popen
    http_port: int
    ws_port: int
    stats_port: int
    config: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def urls(self) -> list[str]:
        """The balancer's two WebSocket doors: /ws on its HTTP port, and the WhisperLive port."""
        return [f"ws://127.0.0.1:{self.http_port}/ws", f"ws://127.0.0.1:{self.ws_port}"]

    def servers(self) -> dict[tuple[str, str], str]:
        """HAProxy's own view: (backend, server) -> UP / DOWN / MAINT..., from its stats CSV."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/;csv", timeout=10) as response:
            text = response.read().decode().lstrip("# ")
        return {
            (row["pxname"], row["svname"]): row["status"]
            for row in csv.DictReader(io.StringIO(text))
            if row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def wait_for(self, replica: str, state: str, timeout: float = 30) -> None:
        """Until both backends say ``state`` (UP or DOWN) for the replica."""
        deadline = time.monotonic() + timeout
        while True:
            states = {b: s for (b, name), s in self.servers().items() if name == replica}
            if states and all(s.startswith(state) for s in states.values()):
                return
            assert time.monotonic() < deadline, f"{replica} never {state} in HAProxy: {states}"
            time.sleep(0.2)


@pytest.fixture
def cluster(tmp_path):
    replicas = [Replica(name, tmp_path) for name in ("a", "b", "c")]
    haproxy = None
    try:
        for replica in replicas:
            replica.wait_started()
        http_port, ws_port, stats_port = free_port(), free_port(), free_port()
        config = tmp_path / "haproxy.cfg"
        config.write_text(render_haproxy(replicas, http_port, ws_port, stats_port))
        check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        log = (tmp_path / "haproxy.log").open("w")
        haproxy = subprocess.Popen(
            ["haproxy", "-W", "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        running = Cluster(replicas, haproxy, http_port, ws_port, stats_port, config)
        deadline = time.monotonic() + 30
        while True:
            try:
                for replica in replicas:
                    running.wait_for(replica.name, "UP")
                break
            except OSError:
                assert haproxy.poll() is None and time.monotonic() < deadline, "haproxy did not start"
                time.sleep(0.2)
        yield running
    finally:
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(30)
        for replica in replicas:
            replica.stop()


# ----------------------------------------------------------------------------- the streams


@dataclass
class Outcome:
    reference: str
    text: str = ""
    reconnects: list[tuple] = field(default_factory=list)
    waits: int = 0
    error: BaseException | None = None

    @property
    def wer(self) -> float:
        return evaluation.wer(self.reference, self.text)

    @property
    def word_ratio(self) -> float:
        """Words heard per word said: above 1 means text repeated (a replay decoded twice)."""
        return len(evaluation.normalize(self.text).split()) / len(
            evaluation.normalize(self.reference).split()
        )


async def stream(url: str, conv: evaluation.Conversation, outcome: Outcome, speed: float = 1.0) -> Outcome:
    """One real-time stream with the client users run, reconnecting through the balancer."""
    client = AsyncStreamingClient(
        url,
        StreamOptions(language="en"),
        retry=RetryPolicy(initial_delay=0.5, max_attempts=20),
        reconnect=True,
        on_reconnect=lambda *args: outcome.reconnects.append(args),
    )
    try:
        await client.connect()
        async for first, end in evaluation.paced(len(conv.audio), evaluation.FRAME_100MS, speed=speed):
            await client.send(conv.audio[first:end])
        transcript = await client.finish(240)
        outcome.text = transcript.text
    except BaseException as exc:  # noqa: BLE001 - reported by the test, with the others
        outcome.error = exc
        outcome.text = client.transcript.text
    outcome.waits = client.waits
    return outcome


def conversations(librispeech, n: int, per_stream: int = 3) -> list[evaluation.Conversation]:
    """``n`` talks of ``per_stream`` LibriSpeech utterances (~20 s), each a different mix."""
    clips = sorted(librispeech, key=lambda u: u.path.stat().st_size)[:12]
    return [
        evaluation.conversation([clips[(i + k * 5) % len(clips)] for k in range(per_stream)], gap=1.5)
        for i in range(n)
    ]


def report(what: str, outcomes: list[Outcome]) -> None:
    """The figures of a run (shown with ``pytest -s``): what each fault cost each stream."""
    print(f"\n{what}")
    for i, o in enumerate(outcomes):
        resumed = ", ".join(f"resumed from {at:.1f} s ({why})" for _, at, why in o.reconnects) or "-"
        print(f"  stream {i:2d}: WER {o.wer:.3f}, words {o.word_ratio:.2f}x, waits {o.waits}, {resumed}")


def active(cluster: Cluster) -> dict[str, int]:
    return {r.name: r.status()["active_streams"] for r in cluster.replicas if r.proc.poll() is None}


async def until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


# ----------------------------------------------------------------------------- the tests


def test_twelve_streams_spread_rest_balanced_and_a_killed_replica_costs_only_its_streams(
    cluster, librispeech
):
    talks = conversations(librispeech, 12)
    outcomes = [Outcome(talk.reference) for talk in talks]
    seen: dict = {}

    async def run():
        tasks = []
        for i, (talk, outcome) in enumerate(zip(talks, outcomes, strict=True)):
            tasks.append(asyncio.create_task(stream(cluster.urls[i % 2], talk, outcome)))
            await asyncio.sleep(0.15)  # clients arrive one after another, as they would
        await until(lambda: sum(active(cluster).values()) == 12, 60, "the 12 streams never all opened")
        seen["spread"] = spread = active(cluster)
        await asyncio.sleep(5.0)  # everyone mid-talk
        victim = max(cluster.replicas, key=lambda r: spread[r.name])
        seen["victim"] = victim.name
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        await asyncio.gather(*tasks)

    asyncio.run(run())
    spread, victim = seen["spread"], seen["victim"]
    report(f"streams per replica {spread}; SIGKILL {victim}", outcomes)
    assert all(spread[name] > 0 for name in ("a", "b", "c")), spread
    assert sum(spread.values()) == 12 and max(spread.values()) <= MAX_CLIENTS, spread
    errors = [o.error for o in outcomes if o.error is not None]
    assert not errors, errors
    resumed = [o for o in outcomes if o.reconnects]
    untouched = [o for o in outcomes if not o.reconnects]
    # Only the killed replica's streams noticed; each resumed once, where the audio was acknowledged.
    assert len(resumed) == spread[victim], (spread, victim, [o.reconnects for o in outcomes])
    assert all(len(o.reconnects) == 1 and "connection lost" in o.reconnects[0][2] for o in resumed)
    for o in untouched:
        assert o.wer < 0.25, (o.wer, o.text)
    for o in resumed:
        # At most the utterance in flight (one of three) lost, and nothing said twice.
        assert o.wer < 0.25 + 1 / 3, (o.wer, o.text, o.reconnects)
        assert o.word_ratio < 1.15, (o.word_ratio, o.text)
    survivors = [r for r in cluster.replicas if r.name != victim]
    admitted = {
        r.name: r.metric("whisper_live_streams_admitted_total", face="whisperlive") for r in survivors
    }
    assert sum(admitted.values()) == 12 - spread[victim] + len(resumed), admitted
    cluster.wait_for(victim, "DOWN")

    # REST through the balancer: leastconn spreads them over the live replicas.
    jfk = evaluation.audio_root() / "jfk" / "jfk.flac"
    before = {r.name: _uploads(r) for r in survivors}
    for _ in range(6):
        with jfk.open("rb") as audio:
            body, content_type = _multipart({"model": "whisper-1", "response_format": "text"}, audio.read())
        request = urllib.request.Request(
            cluster.http_url + "/v1/audio/transcriptions",
            data=body,
            headers={"Content-Type": content_type},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            assert "country" in response.read().decode().lower()
    served = {r.name: _uploads(r) - before[r.name] for r in survivors}
    print(f"REST requests per replica {served}")
    assert sum(served.values()) == 6 and all(n >= 1 for n in served.values()), served


def test_sigterm_drains_with_nothing_lost_while_new_streams_go_elsewhere(cluster, librispeech):
    talks = conversations(librispeech, 5)
    first, later = talks[:3], talks[3:]
    outcomes = [Outcome(t.reference) for t in talks]
    seen: dict = {}

    async def run():
        tasks = [
            asyncio.create_task(stream(cluster.urls[i % 2], t, o))
            for i, (t, o) in enumerate(zip(first, outcomes, strict=False))
        ]
        await until(lambda: sum(active(cluster).values()) == 3, 60, "the streams never opened")
        spread = active(cluster)
        await asyncio.sleep(6.0)
        draining = next(r for r in cluster.replicas if spread[r.name] > 0)
        seen["draining"], seen["spread"] = draining.name, spread
        draining.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(cluster.wait_for, draining.name, "DOWN")
        seen["ready"] = fetch(draining.http_url + "/ready")[0] if draining.proc.poll() is None else None
        # New streams while it drains (or once it is gone): elsewhere, never a WAIT.
        tasks += [
            asyncio.create_task(stream(cluster.urls[i % 2], t, o))
            for i, (t, o) in enumerate(zip(later, outcomes[3:], strict=True))
        ]
        await asyncio.gather(*tasks)
        seen["exit"] = await asyncio.to_thread(draining.proc.wait, 60)

    asyncio.run(run())
    report(f"streams per replica {seen['spread']}; SIGTERM {seen['draining']}", outcomes)
    assert seen["exit"] == 0, "the drained replica did not exit cleanly"
    assert seen["ready"] in (503, None)
    errors = [o.error for o in outcomes if o.error is not None]
    assert not errors, errors
    moved = [o for o in outcomes[:3] if o.reconnects]
    assert len(moved) == seen["spread"][seen["draining"]], seen
    assert all("shutting down" in o.reconnects[0][2] for o in moved)
    for o in outcomes:
        assert o.wer < 0.25, (o.wer, o.text)  # nothing lost, drained or not
        assert o.word_ratio < 1.15, (o.word_ratio, o.text)
    assert all(o.waits == 0 and not o.reconnects for o in outcomes[3:])


def test_a_full_replica_gets_no_new_streams(cluster, librispeech):
    full = cluster.replicas[2]

    async def run():
        import websockets

        holders = []
        for i in range(MAX_CLIENTS):  # straight to the replica, not through the balancer
            ws = await websockets.connect(f"ws://127.0.0.1:{full.ws_port}")
            await ws.send(json.dumps({"uid": f"holder-{i}", "language": "en"}))
            assert json.loads(await ws.recv())["message"] == "SERVER_READY"
            holders.append(ws)
        assert fetch(full.http_url + "/ready")[0] == 503
        status = full.status()
        assert (status["active_streams"], status["free_streams"], status["admits_new_streams"]) == (
            MAX_CLIENTS,
            0,
            False,
        ), status
        await asyncio.to_thread(cluster.wait_for, full.name, "DOWN")
        talks = conversations(librispeech, 4, per_stream=1)
        outcomes = [Outcome(t.reference) for t in talks]
        await asyncio.gather(
            *(
                stream(cluster.urls[i % 2], t, o, speed=2.0)
                for i, (t, o) in enumerate(zip(talks, outcomes, strict=True))
            )
        )
        assert full.status()["active_streams"] == MAX_CLIENTS  # none of them came here
        assert all(o.error is None and o.waits == 0 and o.wer < 0.3 for o in outcomes), outcomes
        await holders[0].close()
        await asyncio.to_thread(cluster.wait_for, full.name, "UP")  # a slot freed: back in rotation
        for ws in holders[1:]:
            await ws.close()

    asyncio.run(run())
    assert full.metric("whisper_live_streams_admitted_total", face="whisperlive") == MAX_CLIENTS


def test_the_cli_rides_out_a_balancer_reload_and_a_replica_kill(cluster, librispeech, tmp_path):
    """whisper-live-client on a ~25 s file through the balancer's /ws: HAProxy reloads its
    config mid-stream (master-worker, USR2) and the stream does not notice; then its replica
    is killed, and the CLI says it reconnects, resumes and prints the whole text."""
    talk = conversations(librispeech, 1)[0]
    wav = evaluation.write_wav(tmp_path / "talk.wav", talk.audio)
    cli = subprocess.Popen(
        [sys.executable, "-m", "whisper_live.client", "--server", cluster.urls[0], "--lang", "en", str(wav)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while sum((spread := active(cluster)).values()) != 1:
            assert time.monotonic() < deadline and cli.poll() is None, "the CLI's stream never opened"
            time.sleep(0.2)
        time.sleep(3.0)
        cluster.haproxy.send_signal(signal.SIGUSR2)  # graceful reload: the old worker keeps the stream
        time.sleep(3.0)
        assert sum(active(cluster).values()) == 1, "the reload cut the stream"
        host = next(r for r in cluster.replicas if spread[r.name] == 1)
        host.proc.send_signal(signal.SIGKILL)
        host.proc.wait(10)
        out, err = cli.communicate(timeout=240)
    finally:
        if cli.poll() is None:
            cli.kill()
    print(err)
    assert cli.returncode == 0, err
    assert "connection lost (code 1006): reconnecting (#1), resuming the stream from" in err
    assert "resumed 1x on a new connection" in err and "reconnecting (#2)" not in err
    assert evaluation.wer(talk.reference, out) < 0.25, out
    assert cluster.haproxy.poll() is None  # the master survived its reload


# ----------------------------------------------------------------------------- helpers


def _uploads(replica: Replica) -> float:
    return replica.metric(
        "whisper_live_http_requests_total", route="/v1/audio/transcriptions", method="POST", status="200"
    )


def _multipart(fields: dict[str, str], audio: bytes) -> tuple[bytes, str]:
    boundary = f"scaleout{time.monotonic_ns()}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="jfk.flac"\r\n'
        "Content-Type: audio/flac\r\n\r\n".encode()
        + audio
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_the_rendered_config_keeps_everything_but_the_marked_lines(tmp_path):
    """The file in the repo is the source: only bind ports and server lines change."""
    replicas = [SimpleNamespace(name=f"r{i}", ws_port=9100 + i, http_port=8100 + i) for i in range(2)]
    rendered = render_haproxy(replicas, 18001, 19090, 18404)
    source = HAPROXY_CFG.read_text()
    kept = [line for line in source.splitlines() if "# rendered by the tests" not in line]
    assert [line for line in rendered.splitlines() if line in kept] == kept
    assert re.findall(r"server r\d 127\.0\.0\.1:(\d+)", rendered) == ["8100", "8101", "9100", "9101"]
    assert "balance leastconn" in source and "option httpchk GET /ready" in source
    assert "timeout tunnel" in source and "master-worker" in source
    assert all(p in rendered for p in ("127.0.0.1:18001", "127.0.0.1:19090", "127.0.0.1:18404"))
