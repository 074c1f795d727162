"""The fault matrix (issue 15): bad input, broken clients and failing decodes against the real
server, over real sockets, each beside a healthy stream that must keep its transcript.

For every case: a clear error in the face's shape, the server keeps serving, the healthy
stream's WER holds, and nothing already transcribed is lost. docs/RELIABILITY.md lists the
cases with their results. Cases that need other settings (fast keepalive pings, a decoder
that fails on purpose) run on a server of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import websockets
from harness import evaluation as ev
from harness.server_thread import ServerThread, free_port
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.engine.scheduler import Priority
from whisper_live.settings import ServerSettings

HEALTHY_WER = 0.15


def _run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def healthy(librispeech) -> ev.Conversation:
    """What the stream beside each fault says: four utterances with pauses (~25 s)."""
    return ev.conversation(librispeech[:4], gap=1.0)


async def beside_healthy(server: ServerThread, conv: ev.Conversation, faults, speed: float = 1.5):
    """Run ``faults`` (a coroutine) while a healthy stream plays; return both results."""
    good = asyncio.create_task(ev.stream(server.ws_url, conv.audio, speed=speed, timeout=240))
    await asyncio.sleep(1.0)
    try:
        result = await faults
    finally:
        trace = await good
    return result, trace


def assert_healthy(conv: ev.Conversation, trace: ev.StreamTrace) -> None:
    assert trace.close_code == 1000, trace.messages[-3:]
    error = ev.wer(conv.reference, trace.transcript)
    assert error < HEALTHY_WER, (error, trace.transcript)


def http_get(server: ServerThread, path: str) -> dict:
    with urllib.request.urlopen(server.http_url + path, timeout=30) as response:
        return json.loads(response.read())


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def no_streams(server: ServerThread) -> bool:
    return not server.server.streams.clients and server.server.admission.active == 0


async def first_frame_refused(url: str, first: str | bytes) -> tuple[dict, int]:
    """Send one frame as the configuration; return the server's reply and its close code."""
    async with websockets.connect(url, max_size=2**24) as ws:
        await ws.send(first)
        reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
        with contextlib.suppress(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        return reply, ws.close_code


BAD_CONFIGURATIONS = {
    "not json": "this is not json",
    "json array": "[1, 2, 3]",
    "json number": "42",
    "json null": "null",
    "a 1 MB configuration": json.dumps({"uid": "big", "initial_prompt": "word " * 200_000}),
    "uid a number": json.dumps({"uid": 5}),
    "language a number": json.dumps({"uid": "x", "language": 5}),
    "unknown language": json.dumps({"uid": "x", "language": "xx"}),
    "language the model lacks": json.dumps({"uid": "x", "language": "de"}),  # tiny.en
    "send_last_n_segments a word": json.dumps({"uid": "x", "send_last_n_segments": "many"}),
    "send_last_n_segments Infinity": '{"uid": "x", "send_last_n_segments": Infinity}',
    "use_vad a word": json.dumps({"uid": "x", "use_vad": "maybe"}),
    "vad_parameters a list": json.dumps({"uid": "x", "vad_parameters": [1]}),
    "speech_pad_ms a day": json.dumps({"uid": "x", "vad_parameters": {"speech_pad_ms": 86_400_000}}),
    "audio_format unknown": json.dumps({"uid": "x", "audio_format": "mp3"}),
    "channels 6": json.dumps({"uid": "x", "channels": 6}),
    "audio before the configuration": b"\x00\x01" * 2000,
}


def test_bad_configurations_are_errors_while_a_healthy_stream_is_served(server, healthy):
    async def faults():
        return {
            name: await first_frame_refused(server.ws_url, raw) for name, raw in BAD_CONFIGURATIONS.items()
        }

    replies, trace = _run(beside_healthy(server, healthy, faults()))
    for name, (reply, code) in replies.items():
        assert reply["status"] == "ERROR" and reply["message"], (name, reply)
        assert code == 1008, (name, code)
        assert "Traceback" not in reply["message"] and len(reply["message"]) < 300, (name, reply)
    assert "larger than 64 KiB" in replies["a 1 MB configuration"][0]["message"]
    assert "unsupported language 'xx'" in replies["unknown language"][0]["message"]
    assert "English-only" in replies["language the model lacks"][0]["message"]
    assert_healthy(healthy, trace)


def _speech(utterance: ev.Utterance, silence: float = 1.0) -> np.ndarray:
    from whisper_live.media import decode_audio

    return np.concatenate(
        [decode_audio(str(utterance.path)), np.zeros(int(silence * SAMPLE_RATE), np.float32)]
    )


async def _collect(ws) -> tuple[list[dict], int | None]:
    messages = []
    with contextlib.suppress(websockets.ConnectionClosed):
        async for raw in ws:
            messages.append(json.loads(raw))
    return messages, ws.close_code


def _completed_text(messages: list[dict]) -> str:
    seen, out = set(), []
    for message in messages:
        for seg in message.get("segments", []):
            key = (round(seg["start"], 2), seg["text"])
            if seg["completed"] and key not in seen:
                seen.add(key)
                out.append(seg["text"])
    return "".join(out)


def test_broken_frames_mid_stream(server, healthy, librispeech):
    """NaN/Inf samples, odd and empty frames, END_OF_AUDIO twice, a text frame, an oversized
    frame: each stream gets what its audio said (or a clear close), the healthy one too."""
    utt = librispeech[5]
    speech = _speech(utt)

    async def nan_and_inf():
        noisy = speech.copy()
        noisy[::997] = np.nan
        noisy[1::1999] = np.inf
        noisy[2::2999] = -np.inf
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"uid": "nan", "language": "en", "audio_format": "float32"}))
            await ws.recv()
            data = noisy.astype("<f4").tobytes()
            for i in range(0, len(data), 6400):
                await ws.send(data[i : i + 6400])
            await ws.send(b"END_OF_AUDIO")
            return await _collect(ws)

    async def odd_and_empty_frames_then_end_twice():
        pcm = ev.to_pcm(speech)
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"uid": "odd", "language": "en"}))
            await ws.recv()
            position, sizes = 0, itertools.cycle([1, 0, 3333, 0, 7, 4097])
            while position < len(pcm):
                size = next(sizes)
                await ws.send(pcm[position : position + size])
                position += size
                await asyncio.sleep(0)
            await ws.send(b"END_OF_AUDIO")
            await ws.send("END_OF_AUDIO")
            return await _collect(ws)

    async def text_frame_mid_stream():
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"uid": "chatty", "language": "en"}))
            await ws.recv()
            await ws.send(ev.to_pcm(speech))
            await ws.send("hello?")
            return await _collect(ws)

    async def frame_over_the_size_limit():
        async with websockets.connect(server.ws_url, max_size=2**24) as ws:
            await ws.send(json.dumps({"uid": "huge", "language": "en"}))
            await ws.recv()
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(bytes(2**24 + 2))
            return await _collect(ws)

    async def faults():
        return [
            await nan_and_inf(),
            await odd_and_empty_frames_then_end_twice(),
            await text_frame_mid_stream(),
            await frame_over_the_size_limit(),
        ]

    (nan, odd, text, huge), trace = _run(beside_healthy(server, healthy, faults()))
    for messages, code in (nan, odd):
        assert code == 1000
        assert ev.wer(utt.reference, _completed_text(messages)) < 0.2, _completed_text(messages)
    messages, code = text
    assert code == 1008 and messages[-1]["status"] == "ERROR"
    assert ev.wer(utt.reference, _completed_text(messages)) < 0.2, "the finals come before the ERROR"
    assert huge[1] == 1009  # websockets' own "message too big"
    assert_healthy(healthy, trace)
    wait_until(lambda: no_streams(server), 30, "every stream to end")


def test_tcp_reset_mid_utterance_frees_the_stream(server, healthy, librispeech):
    speech = _speech(librispeech[5])

    async def reset():
        ws = await websockets.connect(server.ws_url)
        await ws.send(json.dumps({"uid": "reset", "language": "en"}))
        await ws.recv()
        pcm = ev.to_pcm(speech[: len(speech) // 2])  # stops in the middle of the utterance
        for i in range(0, len(pcm), 3200):
            await ws.send(pcm[i : i + 3200])
            await asyncio.sleep(0.02)
        sock = ws.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.transport.abort()  # RST, no close frame
        await asyncio.sleep(0.5)

    _, trace = _run(beside_healthy(server, healthy, reset()))
    assert_healthy(healthy, trace)
    wait_until(lambda: no_streams(server), 30, "the reset stream to be freed")
    assert http_get(server, "/status")["active_streams"] == 0


class RawClient:
    """A WebSocket client over a plain socket that never reads after the handshake: it
    neither takes the server's messages nor answers its pings (a stuck or half-open peer)."""

    def __init__(self, url: str):
        self.protocol = ClientProtocol(parse_uri(url))
        uri = parse_uri(url)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills fast
        self.sock.connect((uri.host, uri.port))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.state.name == "CONNECTING":
            self.protocol.receive_data(self.sock.recv(4096))
        assert self.protocol.handshake_exc is None

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def send_binary(self, data: bytes) -> None:
        self.protocol.send_binary(data)
        self._flush()

    def reset(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def test_a_client_that_never_reads_is_bounded_and_starves_no_one(server, healthy, librispeech):
    """Many finals for a client that reads nothing: the server's send blocks, the updates
    waiting for it stay few (stale partials dropped, finals kept), others are served."""
    utterances = np.concatenate([_speech(u, 0.8) for u in librispeech[:10]])
    stuck: dict = {}

    def outbox_sizes() -> tuple[int, int]:
        async def look():
            for ws, client in server.server.streams.clients.items():
                if client.uid == "never-reads":
                    return client.runner.events.qsize(), ws.transport.get_write_buffer_size()
            return -1, -1

        return server.call(look())

    async def narrow_send_buffer() -> bool:
        """A slow network path: without it the kernel's send buffer, autotuned up to
        tcp_wmem's 4 MB, takes a whole test's worth of messages and nothing here is tested."""
        for ws, client in server.server.streams.clients.items():
            if client.uid == "never-reads":
                ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                return True
        return False

    async def never_reads():
        raw = await asyncio.to_thread(RawClient, server.ws_url)
        stuck["client"] = raw
        config = {
            "uid": "never-reads",
            "language": "en",
            "send_last_n_segments": 1000,
            "word_timestamps": True,
        }
        await asyncio.to_thread(raw.send_text, json.dumps(config))
        await asyncio.to_thread(wait_until, lambda: server.call(narrow_send_buffer()), 30, "the stream")
        pcm = ev.to_pcm(utterances)
        sizes = []
        step = SAMPLE_RATE // 5 * 2  # 200 ms
        for i in range(0, len(pcm), step):
            await asyncio.to_thread(raw.send_binary, pcm[i : i + step])
            await asyncio.sleep(0.05)  # 4x real time
            if i % (step * 10) == 0:
                sizes.append(await asyncio.to_thread(outbox_sizes))
        await asyncio.to_thread(raw.send_binary, b"END_OF_AUDIO")
        await asyncio.sleep(3)
        sizes.append(await asyncio.to_thread(outbox_sizes))
        return sizes

    try:
        sizes, trace = _run(beside_healthy(server, healthy, never_reads()))
    finally:
        if "client" in stuck:
            stuck["client"].reset()
    queued = [q for q, _ in sizes if q >= 0]
    assert any(buffered > 0 for _, buffered in sizes), f"the server's send never blocked: {sizes}"
    # one update per send_last_n_segments finals (here 1000): a single one waits, however many come
    assert queued and max(queued) <= 2, f"updates pile up for a client that does not read: {sizes}"
    assert_healthy(healthy, trace)
    wait_until(lambda: no_streams(server), 30, "the stuck stream to be freed after its reset")


def test_200_rapid_connects_and_disconnects_leak_nothing(server):
    async def server_tasks() -> int:
        return len(asyncio.all_tasks())

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def churn():
        for i in range(200):
            ws = await websockets.connect(server.ws_url)
            if i % 2:  # half configure and leave right after SERVER_READY, half leave at once
                await ws.send(json.dumps({"uid": f"churn-{i}", "language": "en"}))
                await ws.recv()
                await ws.send(ev.to_pcm(np.zeros(1600, np.float32)))
            if i % 4 == 3:
                ws.transport.abort()
            else:
                await ws.close()

    wait_until(lambda: no_streams(server), 30, "a quiet server")
    tasks_before, fds_before = server.call(server_tasks()), fds()
    _run(churn())
    wait_until(lambda: no_streams(server), 30, "every churned stream to end")
    wait_until(lambda: server.call(server_tasks()) <= tasks_before, 30, "the server's tasks to end")
    wait_until(lambda: fds() <= fds_before + 2, 30, f"file descriptors back to {fds_before} (now {fds()})")
    status = http_get(server, "/status")
    assert status["active_streams"] == 0 and status["queue_depth"] == 0


# ----------------------------------------------------------------------------- a server of its own


@pytest.fixture(scope="module")
def fragile():
    """Keepalive in seconds (half-open peers found fast); tests make its decoder fail."""
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        http_port=free_port(),
        max_clients=4,
        capacity_admission=False,
        ping_interval=0.5,
        ping_timeout=1.0,
    )
    with ServerThread(settings) as running:
        yield running


def test_a_half_open_connection_is_dropped_by_the_ping_timeout(fragile, librispeech):
    raw = RawClient(fragile.ws_url)
    try:
        raw.send_text(json.dumps({"uid": "half-open", "language": "en"}))
        raw.send_binary(ev.to_pcm(_speech(librispeech[5])[: 2 * SAMPLE_RATE]))
        wait_until(lambda: fragile.server.admission.active == 1, 30, "the stream to open")
        # it answers no ping: gone within interval + timeout (1.5 s), with a generous margin
        wait_until(lambda: no_streams(fragile), 15, "the half-open stream to be dropped")
    finally:
        raw.reset()
    assert http_get(fragile, "/status")["active_streams"] == 0


@contextlib.contextmanager
def failing_finals(server: ServerThread, fails):
    """Make the pool's final decodes raise where ``fails(audio)`` says so (partials work)."""
    pool = server.server.pool
    real = pool.decode

    async def decode(model, audio, options, priority):
        if priority is Priority.FINAL and fails(audio):
            raise RuntimeError("decoder failed on purpose")
        return await real(model, audio, options, priority)

    pool.decode = decode
    try:
        yield
    finally:
        del pool.decode


def two_lengths(librispeech) -> tuple[float, ev.Utterance, ev.Conversation]:
    """The shortest utterance, then one at least 4 s longer but under the 10 s after which
    long speech is committed in pieces (every final of it is then longer than the first's);
    returns a length (samples) between the two utterances' finals."""
    from whisper_live.media import decode_audio

    lengths = {u.id: len(decode_audio(str(u.path))) / SAMPLE_RATE for u in librispeech}
    short = min(librispeech, key=lambda u: lengths[u.id])
    medium = max((u for u in librispeech if lengths[u.id] < 9.5), key=lambda u: lengths[u.id])
    assert lengths[medium.id] > lengths[short.id] + 4
    cutoff = (lengths[short.id] + 2.0) * SAMPLE_RATE  # its pad and endpoint silence fit in 2 s
    return cutoff, medium, ev.conversation([short, medium], gap=1.5)


def test_a_final_that_fails_once_is_retried_and_nothing_is_lost(fragile, librispeech):
    seen: set[int] = set()

    def first_attempt(audio) -> bool:
        new = id(audio) not in seen  # a retry decodes the very same array
        seen.add(id(audio))
        return new

    _, _, conv = two_lengths(librispeech)
    with failing_finals(fragile, first_attempt):
        trace = _run(ev.stream(fragile.ws_url, conv.audio, speed=2.0, timeout=180))
    assert seen, "no final was decoded"
    assert trace.status("WARNING") is None, trace.status("WARNING")
    assert trace.close_code == 1000
    assert ev.wer(conv.reference, trace.transcript) < HEALTHY_WER


def test_a_final_that_fails_twice_is_a_warning_naming_the_lost_span(fragile, librispeech):
    cutoff, long_, conv = two_lengths(librispeech)
    with failing_finals(fragile, lambda audio: len(audio) < cutoff):  # every final of the short one
        trace = _run(ev.stream(fragile.ws_url, conv.audio, speed=2.0, timeout=180))
    assert trace.close_code == 1000
    lost = [m for m in trace.messages if m.get("status") == "WARNING"]
    assert len(lost) == 1, lost
    warning = lost[0]
    assert warning["code"] == "audio_lost" and "could not be transcribed" in warning["message"]
    # the span is the short utterance's (its speech pad before, its end of speech after)
    assert warning["start"] <= conv.starts[0] + 0.1, (warning, conv.starts)
    assert abs(warning["end"] - conv.speech_ends[0]) < 0.6, (warning, conv.speech_ends)
    assert ev.wer(long_.reference, trace.transcript) < HEALTHY_WER  # the rest is all there


# ----------------------------------------------------------------------------- start-up


def _start(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "whisper_live", "--host", "127.0.0.1", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--model", "no-such-model"], {}, "unknown model 'no-such-model'"),
        (["--log-level", "verbose"], {}, "invalid choice: 'verbose'"),
        ([], {"WHISPER_LIVE_PORT": "abc"}, "WHISPER_LIVE_PORT='abc' is not an integer"),
        ([], {"WHISPER_LIVE_FIT_WINDOW": "maybe"}, "is not a boolean"),
        (["--device", "cuda"], {}, "--device cuda"),
    ],
)
def test_start_up_errors_are_one_line(args, env, says):
    result = _start("--port", str(free_port()), "--http-port", "0", *args, env=env)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr


def test_a_port_in_use_is_reported_before_the_model_loads():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        result = _start("--port", str(port), "--http-port", "0", "--model", "base")
        took = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"whisper-live-server: error: cannot listen on 127.0.0.1:{port}: address already in use"
        " (another server running? choose another port)"
    )
    assert "loaded" not in result.stderr, "the model was loaded before the port was tried"
    assert took < 60, took
