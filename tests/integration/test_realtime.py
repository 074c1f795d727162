"""OpenAI's Realtime transcription face (``/v1/realtime``) with the official ``openai`` SDK
and a raw WebSocket client, against the real server and model on real speech.

Audio is LibriSpeech / JFK from tests/audio resampled to 24 kHz (what OpenAI's clients
send) and, for server_vad, sent at real time (``evaluation.paced``). Assertions are WER
bounds with a margin, counts of items and event shapes: never an exact word.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import av
import numpy as np
import pytest
import websockets
from harness import evaluation as ev
from harness.diarization_metrics import conversation_truth, read_turns
from openai import AsyncOpenAI, OpenAI

from whisper_live.core.pcm import SAMPLE_RATE, g711_table
from whisper_live.media import decode_audio

pytestmark = pytest.mark.integration

UTTERANCES = ("1272-128104-0000", "1988-24833-0000", "1988-24833-0002")
DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"


def at_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """16 kHz float32 samples resampled (PyAV, filtered) to ``rate``, as float32."""
    if rate == SAMPLE_RATE:
        return samples
    frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    out = [f.to_ndarray()[0] for f in resampler.resample(frame)] + [
        f.to_ndarray()[0] for f in resampler.resample(None)
    ]
    return np.concatenate(out).astype(np.float32)


def int16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def g711(samples: np.ndarray, law: str) -> bytes:
    """G.711 bytes: each sample's nearest code in the standard's own table."""
    table = g711_table(law)
    order = np.argsort(table)
    ranked = table[order]
    idx = np.clip(np.searchsorted(ranked, samples), 1, 255)
    nearer = np.where(np.abs(ranked[idx - 1] - samples) < np.abs(ranked[idx] - samples), idx - 1, idx)
    return order[nearer].astype(np.uint8).tobytes()


@pytest.fixture(scope="module")
def conversation(librispeech):
    by_id = {u.id: u for u in librispeech}
    return ev.conversation([by_id[i] for i in UTTERANCES], gap=1.5, lead=1.0)


@pytest.fixture(scope="module")
def jfk():
    (utt,) = ev.manifest("jfk")
    return decode_audio(str(utt.path)), utt.reference


def sdk(server) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key="unused",
        base_url=server.http_url + "/v1",
        websocket_base_url=server.http_url.replace("http", "ws", 1) + "/v1",
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def sdk_stream(server, pcm24: bytes, turn_detection: dict, language: str = "en") -> list[dict]:
    """Stream 24 kHz int16 at real time through the SDK; every server event, as dicts."""
    events: list[dict] = []
    async with sdk(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "whisper-1", "language": language},
                        "turn_detection": turn_detection,
                    }
                },
            }
        )

        async def send():
            width = 2
            async for first, end in ev.paced(len(pcm24) // width * 2 // 3, ev.FRAME_100MS):
                a, b = first * 3 // 2, end * 3 // 2  # 16 kHz frame bounds -> 24 kHz samples
                await conn.input_audio_buffer.append(audio=b64(pcm24[a * width : b * width]))

        async def receive():
            async for event in conn:
                events.append(event.model_dump(exclude_none=True))

        receiver = asyncio.create_task(receive())
        try:
            await send()
            async with asyncio.timeout(120):  # every item heard is transcribed
                while not _all_completed(events):
                    await asyncio.sleep(0.05)
        finally:
            receiver.cancel()
    return events


def _all_completed(events: list[dict]) -> bool:
    committed = {e["item_id"] for e in events if e["type"] == "input_audio_buffer.committed"}
    done = {e["item_id"] for e in events if e["type"] == COMPLETED}
    started = {e["item_id"] for e in events if e["type"] == "input_audio_buffer.speech_started"}
    return bool(committed) and committed == done and started <= done


def items(events: list[dict]) -> list[tuple[str, str, str]]:
    """(item id, the deltas concatenated, the completed transcript), in completion order."""
    out = []
    for e in events:
        if e["type"] == COMPLETED:
            deltas = "".join(
                d["delta"] for d in events if d["type"] == DELTA and d["item_id"] == e["item_id"]
            )
            out.append((e["item_id"], deltas, e["transcript"]))
    return out


def test_server_vad_items_and_deltas_with_the_sdk_match_the_whisperlive_face(server, conversation):
    """One item per utterance; deltas that build each transcript; the same WER as the
    WhisperLive face on the same audio in the same run (both streams at once)."""
    pcm24 = int16(at_rate(conversation.audio, 24000))
    # prefix_padding_ms 500: the WhisperLive face's default speech pad, so both faces cut alike.
    turn = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 500, "silence_duration_ms": 500}

    async def both():
        return await asyncio.gather(
            sdk_stream(server, pcm24, turn),
            ev.stream(server.ws_url, conversation.audio, speed=1.0, timeout=180),
        )

    events, trace = asyncio.run(both())
    kinds = [e["type"] for e in events]
    assert kinds[0] == "session.created" and "session.updated" in kinds
    done = items(events)
    assert len(done) == len(UTTERANCES), [t for _, _, t in done]
    committed = [e for e in events if e["type"] == "input_audio_buffer.committed"]
    assert [c.get("previous_item_id") for c in committed] == [None, *[c["item_id"] for c in committed[:-1]]]
    for started in (e for e in events if e["type"] == "input_audio_buffer.speech_started"):
        stopped = next(
            e
            for e in events
            if e["type"] == "input_audio_buffer.speech_stopped" and e["item_id"] == started["item_id"]
        )
        assert stopped["audio_end_ms"] > started["audio_start_ms"]
    # Deltas are a preview: each is appended for good, so they must read as the transcript
    # (exactly, unless the final revised a word the partials had agreed on).
    assert sum(1 for _, deltas, _ in done if deltas) >= 2
    exact = sum(1 for _, deltas, text in done if deltas == text)
    assert exact >= 1, done
    for _, deltas, text in done:
        assert ev.wer(text, deltas) <= 0.35, (deltas, text)
    realtime_text = " ".join(t for _, _, t in done)
    ours, theirs = (
        ev.wer(conversation.reference, realtime_text),
        ev.wer(conversation.reference, trace.transcript),
    )
    one_word = 1 / len(ev.normalize(conversation.reference).split())
    print(f"realtime WER {ours:.3f}, WhisperLive WER {theirs:.3f}; deltas exact on {exact}/{len(done)} items")
    assert ours <= 0.25, realtime_text
    assert ours <= theirs + 0.005 + one_word, (ours, theirs, realtime_text, trace.transcript)


def raw_url(server) -> str:
    return server.http_url.replace("http", "ws", 1) + "/v1/realtime?intent=transcription"


async def recv_until(ws, kind: str, timeout: float = 120) -> list[dict]:
    """Events up to and including the first of ``kind``."""
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            seen.append(event)
            if event["type"] == kind:
                return seen


async def manual_session(ws, fmt: dict, include: list[str] | None = None) -> None:
    await recv_until(ws, "session.created")
    await ws.send(
        json.dumps(
            {
                "type": "session.update",
                "session": {
                    "type": "transcription",
                    "audio": {
                        "input": {"format": fmt, "turn_detection": None, "transcription": {"language": "en"}}
                    },
                    **({"include": include} if include else {}),
                },
            }
        )
    )
    updated = (await recv_until(ws, "session.updated"))[-1]
    assert updated["session"]["audio"]["input"]["turn_detection"] is None


async def append(ws, data: bytes, chunk: int = 9600) -> None:
    for i in range(0, len(data), chunk):
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(data[i : i + chunk])}))


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "audio/pcm", "rate": 24000},
        {"type": "audio/pcm", "rate": 16000},
        {"type": "audio/pcmu"},
        {"type": "audio/pcma"},
    ],
    ids=["pcm24k", "pcm16k", "mulaw", "alaw"],
)
def test_manual_commits_in_each_audio_format(server, jfk, fmt):
    """turn_detection null: nothing happens until commit; each commit is one item, chained."""
    samples, reference = jfk
    if fmt["type"] == "audio/pcm":
        data = int16(at_rate(samples, fmt["rate"]))
    else:
        data = g711(at_rate(samples, 8000), "mulaw" if fmt["type"] == "audio/pcmu" else "alaw")

    async def run():
        async with websockets.connect(raw_url(server), max_size=2**24) as ws:
            await manual_session(ws, fmt)
            first = []
            for _ in range(2):
                await append(ws, data)
                await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
                first.append(await recv_until(ws, COMPLETED))
            return first

    rounds = asyncio.run(run())
    (c1,), (c2,) = ([e for e in r if e["type"] == "input_audio_buffer.committed"] for r in rounds)
    assert c1.get("previous_item_id") is None and c2["previous_item_id"] == c1["item_id"]
    for r in rounds:
        assert not any(e["type"].startswith("input_audio_buffer.speech_") for e in r)  # no VAD events
        assert ev.wer(reference, r[-1]["transcript"]) <= 0.2, r[-1]["transcript"]
        assert r[-1]["usage"]["type"] == "duration"


def test_a_long_manual_item_is_one_item_with_all_its_speech(server, conversation):
    """Manual commits over 25 s of speech and pauses sent at real time: the session commits
    words during it (LocalAgreement), and still the one commit makes one item of it all."""
    data = int16(at_rate(conversation.audio, 24000))

    async def run():
        async with websockets.connect(raw_url(server), max_size=2**24) as ws:
            await manual_session(ws, {"type": "audio/pcm", "rate": 24000})
            seen: list[dict] = []

            async def receive():
                async for raw in ws:
                    seen.append(json.loads(raw))

            receiver = asyncio.create_task(receive())
            async for first, end in ev.paced(len(conversation.audio), ev.FRAME_100MS):
                chunk = data[first * 3 : end * 3]
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": b64(chunk)}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            async with asyncio.timeout(120):
                while not any(e["type"] == COMPLETED for e in seen):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # nothing else may follow
            receiver.cancel()
            return seen

    seen = asyncio.run(run())
    completed = [e for e in seen if e["type"] == COMPLETED]
    committed = [e for e in seen if e["type"] == "input_audio_buffer.committed"]
    assert len(completed) == 1 and len(committed) == 1, [e["type"] for e in seen]
    assert completed[0]["item_id"] == committed[0]["item_id"]
    assert ev.wer(conversation.reference, completed[0]["transcript"]) <= 0.25, completed[0]["transcript"]


def test_clear_drops_uncommitted_audio_and_logprobs_come_when_asked(server, jfk, librispeech):
    samples, jfk_reference = jfk
    other = next(u for u in librispeech if u.id == "1988-24833-0000")
    other_audio = int16(at_rate(decode_audio(str(other.path)), 24000))

    async def run():
        async with websockets.connect(raw_url(server), max_size=2**24) as ws:
            await manual_session(
                ws, {"type": "audio/pcm", "rate": 24000}, include=["item.input_audio_transcription.logprobs"]
            )
            await append(ws, int16(at_rate(samples, 24000)))
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            cleared = await recv_until(ws, "input_audio_buffer.cleared")
            await append(ws, other_audio)
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            return cleared, await recv_until(ws, COMPLETED)

    cleared, after = asyncio.run(run())
    assert not any(e["type"] == COMPLETED for e in cleared)
    completed = after[-1]
    assert ev.wer(other.reference, completed["transcript"]) <= 0.3, completed["transcript"]
    assert "americans" not in completed["transcript"].lower()
    logprobs = completed["logprobs"]
    assert len(logprobs) >= len(ev.normalize(other.reference).split()) // 2
    assert all(p["logprob"] <= 0 and p["bytes"] == list(p["token"].encode()) for p in logprobs)
    assert ev.wer(completed["transcript"], "".join(p["token"] for p in logprobs)) <= 0.1


MALFORMED = [
    ("not json", "invalid_json", None),
    (json.dumps([1, 2]), "invalid_json", None),
    (json.dumps({"type": "response.create"}), "invalid_value", "type"),
    (json.dumps({"type": "input_audio_buffer.append"}), "invalid_value", "audio"),
    (json.dumps({"type": "input_audio_buffer.append", "audio": "***"}), "invalid_value", "audio"),
    (
        json.dumps({"type": "input_audio_buffer.commit", "event_id": "mine"}),
        "input_audio_buffer_commit_empty",
        None,
    ),
    (json.dumps({"type": "session.update", "session": "x"}), "invalid_value", "session"),
    (
        json.dumps({"type": "session.update", "session": {"type": "realtime"}}),
        "invalid_value",
        "session.type",
    ),
    (
        json.dumps(
            {"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/opus"}}}}}
        ),
        "invalid_value",
        "session.audio.input.format.type",
    ),
    (
        json.dumps(
            {
                "type": "session.update",
                "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 44100}}}},
            }
        ),
        "invalid_value",
        "session.audio.input.format.rate",
    ),
    (
        json.dumps(
            {
                "type": "session.update",
                "session": {
                    "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": "high"}}}
                },
            }
        ),
        "invalid_value",
        "session.audio.input.turn_detection.threshold",
    ),
    (
        json.dumps(
            {"type": "session.update", "session": {"audio": {"input": {"transcription": {"language": 7}}}}}
        ),
        "invalid_value",
        "session.audio.input.transcription.language",
    ),
    (
        json.dumps({"type": "session.update", "session": {"include": ["everything"]}}),
        "invalid_value",
        "session.include",
    ),
]


def test_each_malformed_event_gets_an_error_event_and_the_socket_stays_usable(server, jfk):
    samples, reference = jfk

    async def run():
        answers = []
        async with websockets.connect(raw_url(server), max_size=2**24) as ws:
            await manual_session(ws, {"type": "audio/pcm", "rate": 24000})
            for text, _, _ in MALFORMED:
                await ws.send(text)
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            await ws.send(b"\x00\x01")  # a binary frame: events are text
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            await append(ws, int16(at_rate(samples, 24000)))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            return answers, (await recv_until(ws, COMPLETED))[-1]

    answers, completed = asyncio.run(run())
    for (text, code, param), answer in zip(MALFORMED, answers, strict=False):
        assert answer["type"] == "error", (text, answer)
        assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["message"]
        assert (answer["error"]["code"], answer["error"]["param"]) == (code, param), (text, answer)
    assert answers[5]["error"]["event_id"] == "mine"
    assert answers[-1]["type"] == "error"
    assert ev.wer(reference, completed["transcript"]) <= 0.2


def test_the_beta_session_shape_is_read(server, jfk):
    samples, reference = jfk

    async def run():
        async with websockets.connect(raw_url(server), max_size=2**24) as ws:
            await recv_until(ws, "session.created")
            await ws.send(
                json.dumps(
                    {
                        "type": "transcription_session.update",
                        "session": {
                            "input_audio_format": "pcm16",
                            "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                            "turn_detection": None,
                        },
                    }
                )
            )
            updated = (await recv_until(ws, "transcription_session.updated"))[-1]
            await append(ws, int16(at_rate(samples, 24000)))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            return updated, (await recv_until(ws, COMPLETED))[-1]

    updated, completed = asyncio.run(run())
    assert updated["session"]["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"
    assert ev.wer(reference, completed["transcript"]) <= 0.2


def _connect_with_secret(server, secret: str):
    async def run():
        async with websockets.connect(
            raw_url(server), subprotocols=["realtime", f"openai-insecure-api-key.{secret}"]
        ) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            return ws.subprotocol, first

    return asyncio.run(run())


def test_client_secrets_work_once_issued_and_are_refused_expired_or_revoked(secured_server, api_keys):
    store = api_keys.store
    key = store.create(f"browser-backend-{time.monotonic_ns()}")
    name = store.entries()[-1].name
    backend = OpenAI(api_key=key, base_url=secured_server.http_url + "/v1")
    short = backend.realtime.client_secrets.create(expires_after={"anchor": "created_at", "seconds": 10})
    lasting = backend.realtime.client_secrets.create(
        session={"type": "transcription", "audio": {"input": {"turn_detection": None}}}
    )
    assert lasting.session.type == "transcription" and lasting.expires_at - time.time() > 30
    protocol, short_first = _connect_with_secret(secured_server, short.value)
    assert protocol == "realtime" and short_first["type"] == "session.created"
    # The same secret on another live face: Deepgram's /v1/listen (browser subprotocols).
    dg_url = (
        secured_server.http_url.replace("http", "ws", 1) + "/v1/listen?encoding=linear16&sample_rate=16000"
    )

    async def deepgram():
        async with websockets.connect(
            dg_url, subprotocols=["realtime", f"openai-insecure-api-key.{lasting.value}"]
        ) as ws:
            return ws.subprotocol, json.loads(await asyncio.wait_for(ws.recv(), 30))["type"]

    assert asyncio.run(deepgram()) == ("realtime", "Metadata")
    # A client secret cannot mint more of itself; a forged one is refused.
    with pytest.raises(Exception) as refused:
        OpenAI(
            api_key=lasting.value, base_url=secured_server.http_url + "/v1"
        ).realtime.client_secrets.create()
    assert getattr(refused.value, "status_code", None) == 401
    forged = lasting.value[:-4] + ("AAAA" if not lasting.value.endswith("AAAA") else "BBBB")
    with pytest.raises(websockets.InvalidStatus) as bad:
        _connect_with_secret(secured_server, forged)
    assert bad.value.response.status_code == 401
    time.sleep(max(0.0, short.expires_at - time.time()) + 1.5)
    with pytest.raises(websockets.InvalidStatus) as expired:
        _connect_with_secret(secured_server, short.value)
    assert expired.value.response.status_code == 401
    protocol, first = _connect_with_secret(secured_server, lasting.value)
    assert protocol == "realtime"
    # The session configuration the backend issued the secret with is where the stream starts.
    assert first["session"]["audio"]["input"]["turn_detection"] is None
    assert short_first["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    store.revoke(name)
    with pytest.raises(websockets.InvalidStatus) as revoked:
        _connect_with_secret(secured_server, lasting.value)
    assert revoked.value.response.status_code == 401


def test_a_full_server_answers_with_an_error_event(server):
    """Admission is the engine's: over its limit, an error event, then the close."""

    async def run():
        opened = []
        try:
            for _ in range(8):  # the shared server admits 4
                ws = await websockets.connect(raw_url(server))
                opened.append(ws)
                first = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if first["type"] == "error":
                    await asyncio.wait_for(ws.wait_closed(), 30)
                    return first, ws.close_code
            return None, None
        finally:
            for ws in opened:
                await ws.close()

    error, code = asyncio.run(run())
    assert error is not None and error["error"]["code"] == "server_busy"
    assert code == 1013


def test_time_limit_transcribes_what_was_heard_then_says_why(server, jfk):
    """--max-connection-time through the engine's lifecycle: audio appended but never
    committed is transcribed, then an error event names the reason and the socket closes."""
    samples, reference = jfk

    async def run():
        async with websockets.connect(raw_url(server), max_size=2**24) as ws:
            await manual_session(ws, {"type": "audio/pcm", "rate": 24000})
            await append(ws, int16(at_rate(samples, 24000)))
            seen = []
            async with asyncio.timeout(120):
                async for raw in ws:
                    seen.append(json.loads(raw))
            return seen, ws.close_code

    with server.configured(max_connection_time=6.0):
        seen, code = asyncio.run(run())
    kinds = [e["type"] for e in seen]
    assert kinds[-1] == "error" and seen[-1]["error"]["code"] == "time_limit", kinds
    completed = [e for e in seen if e["type"] == COMPLETED]
    assert len(completed) == 1 and ev.wer(reference, completed[0]["transcript"]) <= 0.2
    assert kinds.index("input_audio_buffer.committed") < kinds.index(COMPLETED)
    assert code == 1000


def test_a_session_update_after_audio_commits_it_under_the_old_settings(server, jfk, librispeech):
    """Language and VAD settings apply to what is heard after the update; what was heard
    before becomes an item at once (manual mode: no commit needed)."""
    samples, reference = jfk
    other = next(u for u in librispeech if u.id == "1988-24833-0000")

    async def run():
        async with websockets.connect(raw_url(server), max_size=2**24) as ws:
            await manual_session(ws, {"type": "audio/pcm", "rate": 24000})
            await append(ws, int16(at_rate(samples, 24000)))
            await ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {"audio": {"input": {"transcription": {"prompt": "Kat"}}}},
                    }
                )
            )
            first = await recv_until(ws, "session.updated")
            await append(ws, int16(at_rate(decode_audio(str(other.path)), 24000)))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            return first, await recv_until(ws, COMPLETED)

    first, second = asyncio.run(run())
    before = [e for e in first if e["type"] == COMPLETED]
    assert len(before) == 1 and ev.wer(reference, before[0]["transcript"]) <= 0.2
    assert first[-1]["session"]["audio"]["input"]["transcription"]["prompt"] == "Kat"
    assert ev.wer(other.reference, second[-1]["transcript"]) <= 0.3


def test_server_vad_with_audio_sent_faster_than_real_time(server, conversation):
    """A client that uploads a recording as fast as it can (appends of 2 s): utterances the
    VAD opens and closes within one append still become one item each, each event in order."""
    data = int16(at_rate(conversation.audio, 24000))

    async def run():
        async with websockets.connect(raw_url(server), max_size=2**24) as ws:
            await recv_until(ws, "session.created")
            await append(ws, data, chunk=24000 * 2 * 2)
            seen: list[dict] = []
            async with asyncio.timeout(120):
                while sum(e["type"] == COMPLETED for e in seen) < len(UTTERANCES):
                    seen.append(json.loads(await ws.recv()))
            return seen

    seen = asyncio.run(run())
    done = items(seen)
    assert len(done) == len(UTTERANCES), [t for _, _, t in done]
    for item_id, _, _ in done:
        order = [e["type"] for e in seen if e.get("item_id") == item_id]
        assert order[0] == "input_audio_buffer.speech_started" and order[-1] == COMPLETED, order
        assert order.index("input_audio_buffer.committed") < order.index(COMPLETED)
    assert ev.wer(conversation.reference, " ".join(t for _, _, t in done)) <= 0.25


def test_diarize_extension_puts_a_speaker_on_each_completed_item(server):
    """Two readers taking turns (50 s, gaps of 0.6 s), streamed at real time with
    ``transcription.diarize``: each completed item carries a speaker, both readers are
    told apart, and the items of the first reader's first turn share one label."""
    truth = conversation_truth("two_speakers")
    data = int16(at_rate(decode_audio(str(truth.wav)), 24000))
    # a short silence and pad, so that the VAD closes an item at each 0.6 s change of reader
    turn = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 100, "silence_duration_ms": 300}
    transcription = {"language": "en", "diarize": True, "max_speakers": 4}

    async def run():
        async with websockets.connect(raw_url(server), max_size=2**24) as ws:
            await recv_until(ws, "session.created")
            audio = {"input": {"transcription": transcription, "turn_detection": turn}}
            await ws.send(
                json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": audio}})
            )
            updated = (await recv_until(ws, "session.updated"))[-1]
            assert updated["session"]["audio"]["input"]["transcription"]["diarize"] is True
            seen: list[dict] = []

            async def receive():
                async for message in ws:
                    seen.append(json.loads(message))

            receiver = asyncio.create_task(receive())
            async for first, end in ev.paced(len(data) // 2 * 2 // 3, ev.FRAME_100MS):
                await append(ws, data[first * 3 : end * 3])  # 16 kHz frame bounds -> 24 kHz bytes
            await append(ws, bytes(2 * 24000 * 2))  # 2 s of silence
            # The silence let the VAD close every item, so this commit is refused; events
            # come in order, so every item has been opened and committed before the error.
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "last"}))
            async with asyncio.timeout(300):
                while not any(e["type"] == "error" for e in seen) or not _all_completed(seen):
                    await asyncio.sleep(0.05)
            receiver.cancel()
            error = next(e for e in seen if e["type"] == "error")
            assert error["error"]["code"] == "input_audio_buffer_commit_empty", error
            return seen

    seen = asyncio.run(run())
    completed = [e for e in seen if e["type"] == COMPLETED]
    spoken = [e for e in completed if e["transcript"].strip()]
    assert len(spoken) >= len(truth.turns) - 2, [e["transcript"] for e in completed]
    assert all(e.get("speaker", "").startswith("SPEAKER_") for e in spoken), spoken
    assert len({e["speaker"] for e in spoken}) >= 2, [(e["speaker"], e["transcript"]) for e in spoken]
    started = {
        e["item_id"]: e["audio_start_ms"] / 1000
        for e in seen
        if e["type"] == "input_audio_buffer.speech_started"
    }

    def reader(item: dict) -> str | None:
        """The reader of the RTTM turn where the item's speech begins (after its pad)."""
        t = started[item["item_id"]] + 0.3
        return next((who for start, end, who in truth.turns if start <= t <= end), None)

    _, first_end, first_reader = truth.turns[0]
    first_turn = [e for e in spoken if started[e["item_id"]] + 0.3 <= first_end]
    labels = [(e["speaker"], started[e["item_id"]], e["transcript"]) for e in spoken]
    print(f"{len(spoken)} items, speakers per item: {[e['speaker'][-2:] for e in spoken]}")
    assert first_turn and len({e["speaker"] for e in first_turn}) == 1, labels
    # most of the first reader's items carry the first turn's label, most of the other's do not
    label = first_turn[0]["speaker"]
    by_reader: dict[str, list[str]] = {}
    for e in spoken:
        if (who := reader(e)) is not None:
            by_reader.setdefault(who, []).append(e["speaker"])
    other = next(who for who in by_reader if who != first_reader)
    assert sum(s == label for s in by_reader[first_reader]) > len(by_reader[first_reader]) / 2, labels
    assert sum(s != label for s in by_reader[other]) > len(by_reader[other]) / 2, labels


def test_server_vad_items_keep_their_own_turns_when_uploaded_faster_than_real_time(server):
    """Two readers taking turns (gaps of 0.6 s) uploaded as fast as possible in appends of
    2 s, with server_vad's silence shorter than the gaps: several utterances begin and end
    inside one append, yet each item is one utterance with its own text. No item of a turn
    is empty, none holds the words of two turns, and the items together read the recording."""
    truth = conversation_truth("two_speakers")
    turns = read_turns(truth.wav.with_suffix(".tsv"))  # (start, end, speaker, transcript)
    data = int16(at_rate(decode_audio(str(truth.wav)), 24000))
    turn = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 100, "silence_duration_ms": 300}

    async def run():
        async with websockets.connect(raw_url(server), max_size=2**24) as ws:
            await recv_until(ws, "session.created")
            audio = {"input": {"transcription": {"language": "en"}, "turn_detection": turn}}
            await ws.send(
                json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": audio}})
            )
            await recv_until(ws, "session.updated")
            await append(ws, data + bytes(2 * 24000 * 2), chunk=24000 * 2 * 2)  # then 2 s of silence
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "last"}))
            seen: list[dict] = []
            async with asyncio.timeout(300):
                while not any(e["type"] == "error" for e in seen) or not _all_completed(seen):
                    seen.append(json.loads(await ws.recv()))
            return seen

    seen = asyncio.run(run())
    error = next(e for e in seen if e["type"] == "error")
    assert error["error"]["code"] == "input_audio_buffer_commit_empty", error  # the VAD closed every item
    started = {
        e["item_id"]: e["audio_start_ms"] / 1000
        for e in seen
        if e["type"] == "input_audio_buffer.speech_started"
    }
    stopped = {
        e["item_id"]: e["audio_end_ms"] / 1000
        for e in seen
        if e["type"] == "input_audio_buffer.speech_stopped"
    }
    completed = [e for e in seen if e["type"] == COMPLETED]
    # (an item the VAD did not stop would span the rest of the audio: it fails below)
    spans = {e["item_id"]: (started[e["item_id"]], stopped.get(e["item_id"], 1e9)) for e in completed}

    def turns_in(item: dict) -> list[int]:
        """The reference turns the item's audio overlaps by more than 0.3 s."""
        start, end = spans[item["item_id"]]
        return [i for i, (a, b, _, _) in enumerate(turns) if min(b, end) - max(a, start) > 0.3]

    words = [len(ev.normalize(t).split()) for *_, t in turns]
    report = [(spans[e["item_id"]], turns_in(e), e["transcript"]) for e in completed]
    empty = [r for r in report if r[1] and not r[2].strip()]
    text = " ".join(e["transcript"] for e in completed)
    wer = ev.wer(truth.reference, text)
    print(f"{len(completed)} items, {len(empty)} empty with speech in them; WER {wer:.3f}")
    assert not empty, report
    assert set(started) == {e["item_id"] for e in completed} == set(stopped), report
    assert all(start < end for start, end in spans.values()), report
    for _, inside, transcript in report:
        assert len(inside) <= 1, report  # the 0.6 s gaps are longer than silence_duration_ms
        if inside:  # an item's words come from its own turn (with margin for Whisper's reading)
            assert len(ev.normalize(transcript).split()) <= words[inside[0]] + 3, report
    assert {t for _, inside, _ in report for t in inside} == set(range(len(turns))), report
    assert wer <= 0.35, text
