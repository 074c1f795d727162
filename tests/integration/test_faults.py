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
    assert huge[1] == 1009 and huge[0][-1]["status"] == "ERROR" and huge[0][-1]["uid"] == "huge", huge
    assert "--max-frame-mb" in huge[0][-1]["message"]  # the protocol's ERROR before the close
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
            for conn, client in server.server.streams.clients.items():
                if client.uid == "never-reads":
                    return client.runner.events.qsize(), conn.ws.transport.get_write_buffer_size()
            return -1, -1

        return server.call(look())

    async def narrow_send_buffer() -> bool:
        """A slow network path: without it the kernel's send buffer, autotuned up to
        tcp_wmem's 4 MB, takes a whole test's worth of messages and nothing here is tested."""
        for conn, client in server.server.streams.clients.items():
            if client.uid == "never-reads":
                conn.ws.transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
                )
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


# Finals are what these tests break, so each utterance is left to its final whole: with
# word-by-word commits (the default) a final decodes only the words no partial committed,
# and a retry after a commit is another array.
WHOLE = {"commit_after": 10}


def two_lengths(librispeech) -> tuple[float, ev.Utterance, ev.Conversation]:
    """The shortest utterance, then one at least 4 s longer but under the 10 s of ``WHOLE``
    (every final of it is then longer than the first's); returns a length (samples) between
    the two utterances' finals."""
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
        trace = _run(ev.stream(fragile.ws_url, conv.audio, WHOLE, speed=2.0, timeout=180))
    assert seen, "no final was decoded"
    assert trace.status("WARNING") is None, trace.status("WARNING")
    assert trace.close_code == 1000
    assert ev.wer(conv.reference, trace.transcript) < HEALTHY_WER


def test_a_final_that_fails_twice_is_a_warning_naming_the_lost_span(fragile, librispeech):
    cutoff, long_, conv = two_lengths(librispeech)
    with failing_finals(fragile, lambda audio: len(audio) < cutoff):  # every final of the short one
        trace = _run(ev.stream(fragile.ws_url, conv.audio, WHOLE, speed=2.0, timeout=180))
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


WARM_START = """
import asyncio
from whisper_live.engine import vad
from whisper_live.server import Server
from whisper_live.settings import ServerSettings

async def main():
    server = Server(ServerSettings(host="127.0.0.1", port=0, http_port=0))
    await server.start()
    print(vad.shared_session.cache_info().currsize)
    await server.stop()

asyncio.run(main())
"""


def test_start_up_loads_the_streaming_vad_not_the_first_stream():
    """Building the VAD's onnxruntime session took the first stream's SERVER_READY to
    0.4-0.6 s, on the event loop, where every other stream waited for it too."""
    result = subprocess.run([sys.executable, "-c", WARM_START], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["1"]


# ----------------------------------------------------------------------------- REST


def _post(
    server: ServerThread, path: str, body: bytes, content_type: str | None, **query
) -> tuple[int, dict]:
    from urllib.parse import urlencode

    url = server.http_url + path + (f"?{urlencode(query)}" if query else "")
    request = urllib.request.Request(url, data=body, method="POST")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _multipart(fields: dict[str, str], data: bytes | None, filename: str = "a.mp3") -> tuple[bytes, str]:
    boundary = "faultsboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    if data is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_rest_faults_are_errors_in_each_faces_shape(server, healthy):
    sonnet = (ev.audio_root() / "longform" / "shakespeare_sonnet001_librivox.mp3").read_bytes()
    openai, listen = "/v1/audio/transcriptions", "/v1/listen"
    cases = {
        "empty body": (openai, b"", None, {}),
        "empty multipart": (openai, *_multipart({"model": "whisper-1"}, None), {}),
        "zero-length file": (openai, *_multipart({}, b""), {}),
        "non-audio": (openai, *_multipart({}, b"%PDF-1.4 not audio at all" * 100, "doc.pdf"), {}),
        "wrong content type": (openai, b"hello", "text/plain", {}),
        "json, not audio": (openai, b'{"hello": 1}', "application/json", {}),
        "bad temperature": (openai, *_multipart({"temperature": "nan"}, sonnet[:50_000]), {}),
        "bad granularity": (openai, *_multipart({"timestamp_granularities[]": "frame"}, sonnet[:50_000]), {}),
        "bad response_format": (openai, *_multipart({"response_format": "xml"}, sonnet[:50_000]), {}),
        "bad beam_size": (openai, *_multipart({"beam_size": "1000000"}, sonnet[:50_000]), {}),
        "bad language": (openai, *_multipart({"language": "xx"}, sonnet[:50_000]), {}),
        "deepgram: empty body": (listen, b"", "audio/wav", {}),
        "deepgram: text": (listen, b"hello", "text/plain", {}),
        "deepgram: bad encoding": (listen, b"\0" * 3200, "audio/raw", {"encoding": "opus9"}),
        "deepgram: bad start": (listen, sonnet[:50_000], "audio/mpeg", {"start": "-5"}),
    }

    async def faults():
        out = {}
        for name, (path, body, content_type, query) in cases.items():
            out[name] = await asyncio.to_thread(_post, server, path, body, content_type, **query)
        # a truncated mp3: what is there is transcribed (or refused), never a 500
        out["truncated mp3"] = await asyncio.to_thread(
            _post, server, openai, *_multipart({"response_format": "json"}, sonnet[: len(sonnet) // 3])
        )
        return out

    results, trace = _run(beside_healthy(server, healthy, faults()))
    for name, (status, body) in results.items():
        if name == "truncated mp3":  # what is there is transcribed, or a clear 400
            assert (status == 200 and body["text"].strip()) or status == 400, body
            continue
        assert 400 <= status < 500, (name, status, body)
        if name.startswith("deepgram"):
            assert set(body) >= {"err_code", "err_msg"}, (name, body)
        else:
            assert set(body["error"]) == {"message", "type", "param", "code"}, (name, body)
    assert_healthy(healthy, trace)
    assert http_get(server, "/status")["uploads"]["running"] == 0


def test_an_oversized_upload_is_413_before_it_is_read(server):
    """The limit is judged from Content-Length: the answer comes while almost nothing was sent."""
    with server.configured(max_upload_mb=1):
        sock = socket.create_connection(("127.0.0.1", server.server.http_port), timeout=30)
        try:
            sock.sendall(
                b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1073741824\r\n\r\n"
                + b"--b\r\n"
            )
            reply = sock.recv(65536).decode(errors="replace")
        finally:
            sock.close()
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert "MiB" in reply


@pytest.mark.slow
def test_an_hour_of_silence_is_skipped_not_decoded(server, tmp_path):
    """An hour of (generated) silence as Opus: VAD finds no speech, nothing is decoded, the
    server answers in reasonable time and keeps serving."""
    import av

    path = tmp_path / "hour.ogg"
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=16000, layout="mono")
        stream.bit_rate = 6000
        block = np.zeros((1, 16000 * 10), np.int16)
        for i in range(360):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 16000 * 10
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    decodes = server.server.pool.scheduler.completed
    started = time.monotonic()
    status, body = _post(
        server,
        "/v1/audio/transcriptions",
        *_multipart({"response_format": "verbose_json"}, path.read_bytes(), "hour.ogg"),
    )
    took = time.monotonic() - started
    assert status == 200, body
    assert body["text"].strip() == "" and abs(body["duration"] - 3600) < 1
    assert server.server.pool.scheduler.completed - decodes <= 1, "silence was sent to the model"
    assert took < 300, took
    assert http_get(server, "/health")["status"] == "ok"


@pytest.mark.slow
def test_20_uploads_at_once_beside_8_live_streams(server, librispeech):
    clips = sorted(librispeech, key=lambda u: u.path.stat().st_size)[:4]
    conv = ev.conversation(librispeech[:3], gap=1.0)

    async def go():
        streams = [
            asyncio.create_task(ev.stream(server.ws_url, conv.audio, speed=1.0, timeout=600))
            for _ in range(8)
        ]
        await asyncio.sleep(1.0)
        uploads = [
            asyncio.to_thread(
                _post,
                server,
                "/v1/audio/transcriptions",
                *_multipart({"language": "en"}, clips[i % 4].path.read_bytes(), clips[i % 4].path.name),
            )
            for i in range(20)
        ]
        return await asyncio.gather(*uploads), await asyncio.gather(*streams)

    with server.configured(max_clients=8):
        uploads, traces = _run(go())
    for i, (status, body) in enumerate(uploads):
        assert status == 200, body
        assert ev.wer(clips[i % 4].reference, body["text"]) < 0.2
    for trace in traces:
        assert_healthy(conv, trace)
