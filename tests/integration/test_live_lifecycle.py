"""The promises of the one live-stream lifecycle (``engine/live.py``), on every live face,
over real sockets with real speech and the real model.

Each face is driven by a small client of its own wire format (``LiveClient``): the
WhisperLive face on its own port and at ``/ws`` on the HTTP port, Deepgram's live
``/v1/listen``. The same test then holds each face to the same promise: a stream cut short
(END_OF_AUDIO, CloseStream, Finalize, the time limit) gives only words that were said and
never restates a segment; a Spanish clip with the language left to detection stays Spanish;
a client that closes at once after ending its stream leaves no error behind; every stream
is admitted, counted and logged the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import websockets
from harness import evaluation as ev
from harness.transcripts import inserted_words, repeated_segments

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.media import decode_audio

FACES = ["whisperlive", "whisperlive-http", "deepgram"]
FRAME = SAMPLE_RATE // 10


@dataclass
class Outcome:
    finals: list[str] = field(default_factory=list)  # completed text, in order, each once
    messages: list[dict] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    uid: str = ""

    @property
    def transcript(self) -> str:
        return "".join(self.finals)


class LiveClient:
    """A face's wire format, from the client's side: open, send audio, end, read it all."""

    def __init__(self, server, face: str):
        self.server, self.face = server, face

    def url(self, model: str, language: str | None) -> str:
        if self.face == "deepgram":
            base = self.server.http_url.replace("http", "ws")
            lang = f"language={language}" if language else "detect_language=true"
            return f"{base}/v1/listen?encoding=linear16&sample_rate=16000&model={model}&{lang}"
        return self.server.ws_url if self.face == "whisperlive" else self.server.ws_http_url

    async def run(
        self,
        samples: np.ndarray,
        *,
        model: str = "tiny.en",
        language: str | None = "en",
        end: str = "end",  # "end" (END_OF_AUDIO / CloseStream), "finalize", "none" (wait for the server)
        speed: float = 0.0,  # × real time; 0: as fast as the socket takes it
        close_at_once: bool = False,
        timeout: float = 120.0,
        config: dict | None = None,  # more of the WhisperLive configuration
    ) -> Outcome:
        out = Outcome(uid=f"live-{time.monotonic_ns()}")
        pcm = ev.to_pcm(samples)
        async with websockets.connect(self.url(model, language), max_size=2**24) as ws:
            if self.face != "deepgram":
                await ws.send(
                    json.dumps({"uid": out.uid, "language": language, "model": model, **(config or {})})
                )
            first = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            out.messages.append(first)
            if self.face == "deepgram":
                out.uid = first["request_id"]
            else:
                assert first.get("message") == "SERVER_READY", first
            with contextlib.suppress(websockets.ConnectionClosed):  # the server may stop it first
                async for begin, stop in ev.paced(len(samples), FRAME, speed=speed):
                    await ws.send(pcm[begin * 2 : stop * 2])
                if end == "finalize":
                    await ws.send(json.dumps({"type": "Finalize"}))
                if end in ("end", "finalize"):
                    ending = (
                        json.dumps({"type": "CloseStream"}) if self.face == "deepgram" else b"END_OF_AUDIO"
                    )
                    await ws.send(ending)
            if close_at_once:
                return out
            seen: set[tuple[float, str]] = set()
            with contextlib.suppress(websockets.ConnectionClosed):
                async with asyncio.timeout(timeout):
                    async for raw in ws:
                        message = json.loads(raw)
                        out.messages.append(message)
                        if message.get("type") == "Results" and message.get("is_final"):
                            out.finals.append(" " + message["channel"]["alternatives"][0]["transcript"])
                        for segment in message.get("segments", []):
                            key = (round(float(segment["start"]), 2), segment["text"])
                            if segment["completed"] and key not in seen:
                                seen.add(key)
                                out.finals.append(segment["text"])
            out.close_code, out.close_reason = ws.close_code, ws.close_reason or ""
        out.finals = [f for f in out.finals if f.strip()]
        return out


def wait_until(condition, timeout: float = 60.0) -> None:
    """The server logs and counts a stream's end just after its socket closes: wait for it."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def ended_lines(caplog, uids: list[str]) -> list[dict]:
    return [
        r.fields
        for r in caplog.records
        if getattr(r, "event", None) == "stream ended" and r.fields["uid"] in uids
    ]


def metric(server, name: str, **labels) -> float:
    return server.server.metrics.registry.get_sample_value(name, labels) or 0.0


def metric_face(face: str) -> str:
    return "deepgram" if face == "deepgram" else "whisperlive"


@pytest.fixture(scope="module")
def sonnet() -> ev.Utterance:
    return ev.manifest("longform")[0]


@pytest.fixture(scope="module")
def cut_clips(librispeech, sonnet) -> list[tuple[ev.Utterance, float]]:
    """Speech cut mid-sentence and mid-word (where Whisper likes to finish the sentence)."""
    return [(sonnet, 5.0), (librispeech[3], 3.0), (librispeech[2], 3.0)]


# ---------------------------------------------------------------- forced finals


@pytest.mark.parametrize("face", FACES)
def test_a_stream_cut_mid_sentence_gets_only_words_that_were_said(server, face, cut_clips, caplog):
    caplog.set_level(logging.INFO, logger="whisper_live")
    mface = metric_face(face)
    admitted = metric(server, "whisper_live_streams_admitted_total", face=mface)
    ended = metric(server, "whisper_live_streams_ended_total", face=mface, how="end of audio")
    audio = metric(server, "whisper_live_audio_seconds_total", face=mface)
    inserted, words = 0, 0
    uids = []
    for clip, cut in cut_clips:
        samples = decode_audio(str(clip.path))[: int(cut * SAMPLE_RATE)]
        out = asyncio.run(LiveClient(server, face).run(samples))
        assert out.close_code == 1000, (out.close_code, out.close_reason)
        assert repeated_segments(out.finals) == 0, out.finals
        inserted += inserted_words(clip.reference, out.transcript)
        words += len(ev.normalize(out.transcript).split())
        uids.append(out.uid)
    # Every cut keeps what was said (about 2.5 words a second) and invents nothing; one
    # word of margin for a misheard one.
    assert words >= 0.6 * 2.5 * sum(cut for _, cut in cut_clips), words
    assert inserted <= 1, inserted
    # The lifecycle counted and logged each stream the same way on every face.
    wait_until(lambda: len(ended_lines(caplog, uids)) == len(uids))
    assert metric(server, "whisper_live_streams_admitted_total", face=mface) == admitted + len(cut_clips)
    assert metric(server, "whisper_live_streams_ended_total", face=mface, how="end of audio") == ended + len(
        cut_clips
    )
    assert metric(server, "whisper_live_audio_seconds_total", face=mface) == pytest.approx(
        audio + sum(cut for _, cut in cut_clips), abs=0.3
    )
    for line in ended_lines(caplog, uids):
        assert line["face"] == mface and line["how"] == "end of audio" and line["finals"] >= 1, line


def test_finalize_mid_sentence_gives_only_words_said_and_the_stream_goes_on(server, librispeech):
    clip = librispeech[3]
    samples = decode_audio(str(clip.path))
    cut = int(3.0 * SAMPLE_RATE)

    async def go():
        client = LiveClient(server, "deepgram")
        out = Outcome()
        async with websockets.connect(client.url("tiny.en", "en")) as ws:
            await ws.recv()
            await ws.send(ev.to_pcm(samples[:cut]))
            await ws.send(json.dumps({"type": "Finalize"}))
            async for raw in ws:
                message = json.loads(raw)
                if message.get("from_finalize"):
                    out.finals.append(" " + message["channel"]["alternatives"][0]["transcript"])
                    break
            await ws.send(ev.to_pcm(samples[cut:]))
            await ws.send(json.dumps({"type": "CloseStream"}))
            async for raw in ws:
                message = json.loads(raw)
                if message.get("is_final"):
                    out.finals.append(" " + message["channel"]["alternatives"][0]["transcript"])
            out.close_code = ws.close_code
        return out

    out = asyncio.run(asyncio.wait_for(go(), 120))
    finalized = out.finals[0]
    assert len(ev.normalize(finalized).split()) >= 4, finalized
    assert inserted_words(clip.reference, finalized) <= 1, finalized
    assert ev.wer(clip.reference, out.transcript) < 0.35, out.finals
    assert out.close_code == 1000


@pytest.mark.parametrize("face", ["whisperlive", "deepgram"])
def test_the_time_limit_mid_sentence_sends_only_words_that_were_said(server, face, sonnet):
    samples = decode_audio(str(sonnet.path))[: 12 * SAMPLE_RATE]
    with server.configured(max_connection_time=5.0):
        out = asyncio.run(LiveClient(server, face).run(samples, speed=1.0, end="none", timeout=60))
    assert out.close_code == 1000
    if face == "deepgram":
        assert "maximum connection time" in out.close_reason
    else:
        assert out.messages[-1]["message"] == "DISCONNECT" and out.messages[-1]["reason"] == "time limit"
    assert out.finals and repeated_segments(out.finals) == 0, out.finals
    assert inserted_words(sonnet.reference, out.transcript) <= 1, out.finals


# ---------------------------------------------------------------- one language per stream


@pytest.mark.parametrize("face", ["whisperlive", "deepgram"])
def test_a_spanish_stream_with_detection_stays_spanish(server, face):
    (clip,) = [u for u in ev.manifest("multilingual") if u.id == "picovoice_test_es"]
    samples = decode_audio(str(clip.path))
    out = asyncio.run(LiveClient(server, face).run(samples, model="base", language=None, speed=2.0))
    assert out.close_code == 1000
    if face != "deepgram":
        announced = [m for m in out.messages if "language" in m and "segments" not in m]
        assert [m["language"] for m in announced] == ["es"], announced
    # Spanish words throughout: a final in Portuguese or English would miss most of them.
    assert out.finals and ev.wer(clip.reference, out.transcript) < 0.5, out.finals


def test_a_stream_that_asks_for_redetection_announces_each_language(server, librispeech):
    """Spanish, then English, in one stream with ``redetect_language``: both announced, in
    order, and the English is transcribed as English (not forced into the first language)."""
    (clip,) = [u for u in ev.manifest("multilingual") if u.id == "picovoice_test_es"]
    english = librispeech[0]
    gap = np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.float32)
    samples = np.concatenate([decode_audio(str(clip.path)), gap, decode_audio(str(english.path)), gap])
    client = LiveClient(server, "whisperlive")
    out = asyncio.run(
        client.run(samples, model="base", language=None, speed=2.0, config={"redetect_language": True})
    )
    announced = [m["language"] for m in out.messages if "language" in m and "segments" not in m]
    assert announced[0] == "es" and announced[-1] == "en", announced
    said = set(ev.normalize(english.reference).split())
    heard = set(ev.normalize(out.transcript).split())
    assert len(said & heard) >= 0.7 * len(said), out.finals


# ---------------------------------------------------------------- the client that leaves at once


@pytest.mark.parametrize("face", FACES)
def test_a_client_that_closes_at_once_after_ending_leaves_no_error(server, face, librispeech, caplog):
    caplog.set_level(logging.INFO, logger="whisper_live")
    samples = decode_audio(str(librispeech[1].path))
    uids = [asyncio.run(LiveClient(server, face).run(samples, close_at_once=True)).uid for _ in range(2)]
    wait_until(lambda: len(ended_lines(caplog, uids)) == 2)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    # The client ended the stream: that is how it ended, whether or not it stayed to read.
    assert [f["how"] for f in ended_lines(caplog, uids)] == ["end of audio"] * 2
    requests = [r.fields for r in caplog.records if getattr(r, "event", None) == "request"]
    assert all(f["status"] < 500 for f in requests), requests
    # and the server goes on serving
    out = asyncio.run(LiveClient(server, face).run(samples))
    assert ev.wer(librispeech[1].reference, out.transcript) < 0.3


# ---------------------------------------------------------------- audio that is not audio


def test_random_bytes_then_closestream_are_an_error_not_a_clean_close(server):
    """200 KB of random bytes with no ``encoding`` (a container is expected), then
    CloseStream: the client is told the audio cannot be decoded (a silent recording and a
    broken one must not look alike)."""
    import os

    async def go():
        url = server.http_url.replace("http", "ws") + "/v1/listen"
        async with websockets.connect(url) as ws:
            await ws.recv()
            await ws.send(os.urandom(200_000))
            await ws.send(json.dumps({"type": "CloseStream"}))
            messages = []
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    messages.append(json.loads(raw))
            return messages, ws.close_code, ws.close_reason

    messages, code, reason = asyncio.run(asyncio.wait_for(go(), 60))
    assert [m for m in messages if m["type"] == "Error"], messages
    assert code == 1008 and "DATA-0000" in reason


# ---------------------------------------------------------------- UtteranceEnd


def test_utterance_end_comes_after_the_gap_and_never_once_the_next_utterance_began(server, librispeech):
    """Deepgram's rule: UtteranceEnd once ``utterance_end_ms`` have passed since the last
    final word with no new word. Three utterances 1.5 s apart at real time, interim results
    on: each UtteranceEnd follows the words of its utterance and comes before any word of
    the next one."""
    conv = ev.conversation(librispeech[:3], gap=1.5)
    url = (
        server.http_url.replace("http", "ws")
        + "/v1/listen?encoding=linear16&sample_rate=16000&model=tiny.en&interim_results=true&utterance_end_ms=1000"
    )

    async def go():
        pcm = ev.to_pcm(conv.audio)
        messages = []
        async with websockets.connect(url) as ws:
            await ws.recv()

            async def send():
                async for begin, stop in ev.paced(len(conv.audio), FRAME):
                    await ws.send(pcm[begin * 2 : stop * 2])
                await ws.send(json.dumps({"type": "CloseStream"}))

            sender = asyncio.create_task(send())
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    messages.append(json.loads(raw))
            await sender
        return messages

    messages = asyncio.run(asyncio.wait_for(go(), 180))
    ends = [i for i, m in enumerate(messages) if m["type"] == "UtteranceEnd"]
    assert len(ends) >= 2, [m["type"] for m in messages]
    for i in ends:
        last_word_end = messages[i]["last_word_end"]
        before = [
            m for m in messages[:i] if m["type"] == "Results" and m["channel"]["alternatives"][0]["words"]
        ]
        # no word of a later utterance was sent before it
        assert all(m["start"] < last_word_end + 1.0 for m in before), (last_word_end, before[-1]["start"])
        # and it follows a final word, with no later word within the gap
        words = [w for m in before if m["is_final"] for w in m["channel"]["alternatives"][0]["words"]]
        assert words and words[-1]["end"] == pytest.approx(last_word_end, abs=0.01)


@pytest.mark.parametrize("face", FACES)
def test_raw_bytes_that_are_no_audio_are_said_to_be_so(server, face):
    """Random bytes declared as 16 kHz int16 PCM: not a silent recording, and the client is
    told so (a WARNING, Deepgram's Warning) while the stream goes on."""
    rng = np.random.default_rng(11)
    noise = np.frombuffer(rng.bytes(64_000), "<i2").astype(np.float32) / 32768.0
    out = asyncio.run(LiveClient(server, face).run(noise, timeout=60))
    told = [
        m
        for m in out.messages
        if (m.get("status") == "WARNING" and m.get("code") == "not_audio")
        or (m.get("type") == "Warning" and m.get("variant") == "DATA-0001")
    ]
    assert len(told) == 1, out.messages
    assert out.close_code == 1000


# ---------------------------------------------------------------- admission, key slot, drain


def with_token(url: str, face: str, token: str | None) -> str:
    if token is None:
        return url
    return url + {"deepgram": "&", "whisperlive": "/?", "whisperlive-http": "?"}[face] + f"token={token}"


def _handshake(server, face: str, token: str | None = None) -> tuple[object, int | None]:
    """Open a stream on ``face``: (its first message, or the HTTP status that refused it)."""

    async def go():
        url = with_token(LiveClient(server, face).url("tiny.en", "en"), face, token)
        try:
            async with websockets.connect(url) as ws:
                if face != "deepgram":
                    await ws.send(json.dumps({"uid": "h", "language": "en"}))
                first = json.loads(await asyncio.wait_for(ws.recv(), 30))
                with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
                    await asyncio.wait_for(ws.recv(), 3)
                return first, ws.close_code
        except websockets.InvalidStatus as refused:
            return None, refused.response.status_code

    return asyncio.run(go())


@pytest.mark.parametrize("face", FACES)
def test_a_full_server_refuses_a_new_stream_in_the_faces_own_way_and_counts_it(server, face):
    mface = metric_face(face)
    refused = metric(server, "whisper_live_streams_refused_total", face=mface, reason="wait")
    with server.configured(max_clients=0):
        first, code = _handshake(server, face)
    if face == "deepgram":
        assert first is None and code == 429
    else:
        assert first["status"] == "WAIT" and code == 1013
    wait_until(
        lambda: metric(server, "whisper_live_streams_refused_total", face=mface, reason="wait") == refused + 1
    )


@pytest.mark.parametrize("face", FACES)
def test_a_keys_stream_slot_is_one_across_faces(secured_server, api_keys, face, librispeech):
    """The limited key has one stream: held on the WhisperLive face, a second on any face is
    refused; once it is closed, the key streams again."""
    token = api_keys.limited
    samples = decode_audio(str(librispeech[0].path))

    async def hold(opened: asyncio.Event, release: asyncio.Event):
        async with websockets.connect(f"{secured_server.ws_url}/?token={token}") as ws:
            await ws.send(json.dumps({"uid": "holder", "language": "en"}))
            assert json.loads(await ws.recv())["message"] == "SERVER_READY"
            opened.set()
            await release.wait()
            await ws.send(b"END_OF_AUDIO")
            async for _ in ws:
                pass

    async def go():
        opened, release = asyncio.Event(), asyncio.Event()
        holder = asyncio.create_task(hold(opened, release))
        await asyncio.wait_for(opened.wait(), 30)
        second = await asyncio.to_thread(_handshake, secured_server, face, token)
        release.set()
        await holder
        return second

    first, code = asyncio.run(go())
    if face == "deepgram":
        assert first is None and code == 429
    else:
        assert first["status"] == "ERROR" and "limit" in first["message"] and code == 1008
    wait_until(lambda: not secured_server.server.live.streams)
    client = LiveClient(secured_server, face)
    base = client.url
    client.url = lambda model, language: with_token(base(model, language), face, token)
    out = asyncio.run(client.run(samples))
    assert ev.wer(librispeech[0].reference, out.transcript) < 0.3


@pytest.mark.parametrize("face", ["whisperlive", "deepgram"])
def test_a_drain_delivers_what_was_said_then_closes_saying_why(face, librispeech):
    """SIGTERM's drain on a server of its own: the stream under way gets its finals (the cut
    utterance forced, only words said), then the face's close for a shutdown; a new stream
    is refused."""
    from harness.server_thread import ServerThread, free_port

    from whisper_live.settings import ServerSettings

    conv = ev.conversation(librispeech[:3], gap=1.5)
    settings = ServerSettings(
        host="127.0.0.1", port=0, http_port=free_port(), max_clients=4, capacity_admission=False
    )
    with ServerThread(settings) as own:
        result: dict = {}

        def stream():
            result["out"] = asyncio.run(
                LiveClient(own, face).run(conv.audio, speed=1.0, end="none", timeout=120)
            )

        streaming = threading.Thread(target=stream)
        streaming.start()
        cut = conv.starts[1] + 1.5  # into the second utterance
        time.sleep(cut)
        own.call(own.server.drain(), timeout=120)
        streaming.join(120)
        out = result["out"]
        first, code = _handshake(own, face)
    if face == "deepgram":
        assert out.close_code == 1001 and "shutting down" in out.close_reason
        assert first is None and code == 503
    else:
        assert out.messages[-1] == {"uid": out.uid, "message": "DISCONNECT", "reason": "shutdown"}
        assert out.close_code == 1001
        assert first["status"] == "WAIT"
    reference = " ".join(u.reference for u in conv.utterances[:2])
    assert out.finals and inserted_words(reference, out.transcript) <= 1, out.finals
    # the first utterance was delivered whole (in one final, or word by word as it was said)
    first_words = len(ev.normalize(conv.utterances[0].reference).split())
    said_first = " ".join(ev.normalize(out.transcript).split()[:first_words])
    assert ev.wer(conv.utterances[0].reference, said_first) < 0.3, out.finals
