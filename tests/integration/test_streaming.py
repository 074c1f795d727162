"""End to end over a real WebSocket with the real model and real recorded speech."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import websockets
from harness import evaluation as ev

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.media import decode_audio


def _run(coro):
    return asyncio.run(coro)


def _assert_well_formed(trace: ev.StreamTrace) -> None:
    previous_end = 0.0
    for seg in trace.completed:
        assert isinstance(seg["start"], float | int) and isinstance(seg["end"], float | int)
        assert float(seg["start"]) >= previous_end - 1e-6, "completed segments overlap"
        assert float(seg["end"]) >= float(seg["start"])
        previous_end = float(seg["end"])
    for msg in trace.messages:
        for seg in msg.get("segments", [])[:-1]:
            assert seg["completed"], "only the last segment of a message may be partial"


def test_realtime_stream_of_utterances(server, librispeech):
    """Six utterances with silences, at real-time pace, language detected by the server."""
    conv = ev.conversation(librispeech[:6], gap=1.5)
    trace = _run(ev.stream(server.ws_url, conv.audio, {"language": None}, speed=1.0, timeout=180))
    assert trace.messages[0] == {
        "uid": trace.messages[0]["uid"],
        "message": "SERVER_READY",
        "backend": "faster_whisper",
        "model": "tiny.en",  # the model serving the stream (ours; WhisperLive's clients ignore it)
    }
    assert trace.close_code == 1000
    _assert_well_formed(trace)
    error = ev.wer(conv.reference, trace.transcript)
    assert error < 0.10, (error, trace.transcript)
    languages = [m for m in trace.messages if "language" in m]
    assert len(languages) == 1 and languages[0]["language"] == "en"
    latencies = ev.final_latencies(conv, trace)
    assert all(lat is not None for lat in latencies), latencies
    # utterances were completed while the stream was still running, not only at its end
    # (how fast is measured by scripts/bench_streaming.py, not here)
    assert trace.completed_at[0] < conv.ends[-1], (trace.completed_at, conv.ends)
    partials = [m for m in trace.messages if m.get("segments") and not m["segments"][-1]["completed"]]
    assert partials, "no partial results were shown while speaking"


def test_float32_sender_is_detected(server, librispeech):
    """WhisperLive's own client sends float32 without saying so."""
    conv = ev.conversation(librispeech[6:9], gap=1.0)
    config = {"model": "small"}  # what WhisperLive's client sends by default
    trace = _run(ev.stream(server.ws_url, conv.audio, config, speed=3.0, sample_format="float32"))
    assert ev.wer(conv.reference, trace.transcript) < 0.15, trace.transcript
    assert any(m.get("status") == "WARNING" and "small" in m["message"] for m in trace.messages)


def test_int16_with_odd_frame_sizes(server, librispeech):
    """Frames that split samples anywhere: the stream must come out intact."""
    conv = ev.conversation(librispeech[9:11], gap=1.0)
    pcm = ev.to_pcm(conv.audio)

    async def go():
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"uid": "odd", "language": "en", "audio_format": "int16"}))
            assert json.loads(await ws.recv())["message"] == "SERVER_READY"
            rng = np.random.default_rng(7)
            pos = 0
            while pos < len(pcm):
                size = int(rng.integers(1, 9000)) | 1  # odd sizes only
                await ws.send(pcm[pos : pos + size])
                pos += size
            await ws.send(b"END_OF_AUDIO")
            completed = {}
            async for raw in ws:
                for seg in json.loads(raw).get("segments", []):
                    if seg["completed"]:
                        completed[(seg["start"], seg["text"])] = seg["text"]
            return "".join(completed.values()), ws.close_code

    # Sent far faster than real time, this overloads the decoders; judge the framing with
    # the padded window only (the fitted one's accuracy is tested in test_decoding.py).
    with server.configured(fit_window=False):
        text, code = _run(go())
    assert code == 1000
    assert ev.wer(conv.reference, text) < 0.15, text


def test_end_of_audio_right_after_speech_keeps_the_tail(server, librispeech):
    utt = librispeech[4]  # 11.7 s, ends mid-breath after the last word
    clip = decode_audio(str(utt.path))
    trace = _run(ev.stream(server.ws_url, clip, {"language": "en"}, speed=4.0))
    assert trace.close_code == 1000
    assert ev.wer(utt.reference, trace.transcript) < 0.15, trace.transcript
    assert "myself" in ev.normalize(trace.transcript).split()[-3:]
    last = trace.messages[-1]
    assert last["segments"] and all(s["completed"] for s in last["segments"])


def test_wait_when_full_then_slot_frees(server, librispeech):
    async def go():
        async with websockets.connect(server.ws_url) as holder:
            await holder.send(json.dumps({"uid": "holder"}))
            assert json.loads(await holder.recv())["message"] == "SERVER_READY"
            async with websockets.connect(server.ws_url) as second:
                await second.send(json.dumps({"uid": "second"}))
                reply = json.loads(await second.recv())
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(second.recv(), 5)
        return reply

    with server.configured(max_clients=1, max_connection_time=120):
        reply = _run(go())
        assert reply["status"] == "WAIT" and reply["uid"] == "second"
        assert isinstance(reply["message"], float) and 0 <= reply["message"] <= 2.0  # within its limit
        # the holder left: a new client is admitted
        clip = decode_audio(str(librispeech[0].path))
        trace = _run(ev.stream(server.ws_url, clip, speed=4.0))
        assert ev.wer(librispeech[0].reference, trace.transcript) < 0.2


def test_disconnect_after_time_limit_even_when_client_goes_quiet(server, librispeech):
    clip = decode_audio(str(librispeech[7].path))  # "Captain Frere says that the scenery is delightful"

    async def go():
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"uid": "slow", "language": "en"}))
            assert json.loads(await ws.recv())["message"] == "SERVER_READY"
            await ws.send(ev.to_pcm(clip))  # then nothing: no more frames, no END_OF_AUDIO
            messages = []
            async for raw in ws:
                messages.append(json.loads(raw))
            return messages, ws.close_code

    with server.configured(max_connection_time=5.0):
        messages, code = _run(asyncio.wait_for(go(), 60))
    assert messages[-1] == {"uid": "slow", "message": "DISCONNECT", "reason": "time limit"}
    completed = [s for m in messages for s in m.get("segments", []) if s["completed"]]
    assert completed and "scenery" in ev.normalize(completed[-1]["text"])
    assert code == 1000


def test_bad_clients_get_errors_while_a_good_one_is_served(server, librispeech):
    conv = ev.conversation(librispeech[:2], gap=1.0)

    async def bad(first):
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(first)
            reply = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return reply

    async def go():
        good = asyncio.create_task(ev.stream(server.ws_url, conv.audio, speed=2.0))
        await asyncio.sleep(1.0)
        replies = [
            await bad("this is not json"),
            await bad(b"\x00\x01" * 2000),  # audio before the configuration
            await bad(json.dumps({"language": "en"})),  # no uid
            await bad(json.dumps({"uid": "x", "task": "dance"})),
            await bad(json.dumps({"uid": "x", "task": "translate"})),  # tiny.en cannot translate
            await bad(json.dumps({"uid": "x", "vad_parameters": {"threshold": 7}})),
        ]
        return replies, await good

    replies, trace = _run(go())
    for reply in replies:
        assert reply["status"] == "ERROR" and reply["message"], reply
    assert "English-only" in replies[4]["message"]
    assert ev.wer(conv.reference, trace.transcript) < 0.15
    assert trace.close_code == 1000


def test_silence_and_noise_produce_no_text_and_no_decodes(server):
    rng = np.random.default_rng(3)
    seconds = 8
    silence = np.zeros(seconds * SAMPLE_RATE, np.float32)
    white = (rng.standard_normal(seconds * SAMPLE_RATE) * 0.05).astype(np.float32)
    hum = (0.1 * np.sin(2 * np.pi * 50 * np.arange(seconds * SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32)
    audio = np.concatenate([silence, white, hum, silence])
    before = server.server.pool.scheduler.completed
    trace = _run(ev.stream(server.ws_url, audio, {"language": "en"}, speed=8.0))
    texts = [s["text"] for m in trace.messages for s in m.get("segments", []) if s["text"].strip()]
    assert texts == []
    assert trace.close_code == 1000
    assert server.server.pool.scheduler.completed - before <= 1, "silence or noise was sent to the model"


def test_text_frame_mid_stream_is_an_error_and_keeps_the_transcript(server, librispeech):
    clip = decode_audio(str(librispeech[0].path))

    async def go():
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"uid": "chatty", "language": "en"}))
            await ws.recv()
            await ws.send(ev.to_pcm(np.concatenate([clip, np.zeros(SAMPLE_RATE, np.float32)])))
            await ws.send("hello?")
            messages = []
            with pytest.raises(websockets.ConnectionClosedError):
                async for raw in ws:
                    messages.append(json.loads(raw))
            assert ws.close_code == 1008
            return messages

    messages = _run(go())
    assert messages[-1]["status"] == "ERROR"
    completed = [s for m in messages for s in m.get("segments", []) if s["completed"]]
    assert completed and ev.wer(librispeech[0].reference, completed[-1]["text"]) < 0.2


def test_one_model_is_shared_by_all_streams(server, librispeech):
    pool = server.server.pool
    clip = decode_audio(str(librispeech[1].path))

    async def go():
        return await asyncio.gather(*(ev.stream(server.ws_url, clip, speed=4.0) for _ in range(3)))

    traces = _run(go())
    for trace in traces:
        assert ev.wer(librispeech[1].reference, trace.transcript) < 0.2
    assert [m.name for m in pool.loaded()].count("tiny.en") == 1


def test_concurrent_streams_share_batched_decodes(server, librispeech):
    """Four streams at 3x real time keep both decoders busy: waiting decodes of different
    streams run as one model call, and each stream still gets its own text."""
    scheduler = server.server.pool.scheduler

    def batched_calls() -> int:
        return sum(n for sizes in scheduler.batch_sizes.values() for size, n in sizes.items() if size > 1)

    before = batched_calls()
    convs = [ev.conversation(librispeech[i : i + 3], gap=1.0) for i in (0, 3, 6, 9)]

    async def go():
        return await asyncio.gather(
            *(ev.stream(server.ws_url, c.audio, speed=3.0, timeout=120) for c in convs)
        )

    traces = _run(go())
    assert batched_calls() > before, scheduler.batch_sizes
    for conv, trace in zip(convs, traces):
        assert trace.close_code == 1000
        assert ev.wer(conv.reference, trace.transcript) < 0.15, trace.transcript
