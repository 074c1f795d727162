"""Live captions of another client's stream (``/v1/streams/{id}/captions``, server-sent
events) and their viewer tokens, on the server that requires keys, with real speech
streamed by a WhisperLive client and read by an aiohttp client (no browser).

Assertions are WER bounds with a margin and the token's scope: never an exact word.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
import websockets
from harness import evaluation
from websockets.exceptions import InvalidStatus

from whisper_live.gate import secrets

pytestmark = pytest.mark.integration


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


async def mint(http: aiohttp.ClientSession, base: str, stream_id: str, key: str, **body) -> tuple[int, dict]:
    async with http.post(f"{base}/v1/streams/{stream_id}/viewer_tokens", json=body, headers=bearer(key)) as r:
        return r.status, await r.json()


async def mint_when_running(http, base: str, stream_id: str, key: str, timeout: float = 60) -> dict:
    """A viewer token as soon as the stream is running (404 until then)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = await mint(http, base, stream_id, key)
        if status == 200:
            return body
        assert status == 404 and time.monotonic() < deadline, (status, body)
        await asyncio.sleep(0.1)


async def read_captions(http, url: str, timeout: float = 180) -> list[dict]:
    """Every SSE event of a captions feed until its end message."""
    events: list[dict] = []
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == "end":
                    break
    return events


def completed_text(events: list[dict]) -> str:
    seen: dict[float, str] = {}
    for event in events:
        for segment in event.get("segments", []):
            if segment["completed"]:
                seen[round(segment["start"], 2)] = segment["text"]
    return " ".join(seen[k] for k in sorted(seen))


def test_viewer_follows_another_clients_stream(secured_server, api_keys, librispeech):
    conv = evaluation.conversation(sorted(librispeech, key=lambda u: u.path.stat().st_size)[4:6], gap=1.5)
    stream_id = f"captions-{time.monotonic_ns()}"
    base = secured_server.http_url

    async def run():
        streaming = asyncio.create_task(
            evaluation.stream(
                secured_server.ws_url,
                conv.audio,
                {"uid": stream_id},
                connect={"additional_headers": bearer(api_keys.alice)},
            )
        )
        async with aiohttp.ClientSession() as http:
            minted = await mint_when_running(http, base, stream_id, api_keys.alice)
            assert minted["url"] == f"/captions?stream={stream_id}&token={minted['token']}"
            assert 3 * 3600 < minted["expires_at"] - time.time() <= 4 * 3600 + 5  # a broadcast's length
            url = f"{base}/v1/streams/{stream_id}/captions?token={minted['token']}"
            events = await read_captions(http, url)
        return await streaming, events

    trace, events = asyncio.run(run())
    assert events[-1] == {"type": "end", "how": "end of audio"}
    captions = [e for e in events if e["type"] == "captions"]
    assert len(captions) >= 2
    for event in captions:
        for segment in event["segments"]:
            assert segment["end"] >= segment["start"] >= 0 and isinstance(segment["text"], str)
    assert any(not s["completed"] for e in captions for s in e["segments"]), "no partial shown"
    text = completed_text(events)
    assert evaluation.wer(conv.reference, text) < 0.3, text
    # what the viewer saw is what the stream's own client got
    assert evaluation.wer(trace.transcript, text) < 0.1, (trace.transcript, text)


def test_a_viewer_token_views_one_stream_only(secured_server, api_keys, librispeech):
    conv = evaluation.conversation(sorted(librispeech, key=lambda u: u.path.stat().st_size)[4:5], gap=1.5)
    stream_id = f"scoped-{time.monotonic_ns()}"
    base = secured_server.http_url
    alice = next(k for k in api_keys.store.entries() if k.name == "alice")

    async def run():
        streaming = asyncio.create_task(
            evaluation.stream(
                secured_server.ws_url,
                conv.audio,
                {"uid": stream_id},
                speed=0.5,  # long enough for every check below
                connect={"additional_headers": bearer(api_keys.alice)},
            )
        )
        async with aiohttp.ClientSession() as http:
            token = (await mint_when_running(http, base, stream_id, api_keys.alice))["token"]

            async def status(path: str, token: str | None, method: str = "GET") -> int:
                query = f"?token={token}" if token else ""
                async with http.request(method, f"{base}{path}{query}") as r:
                    return r.status

            captions = f"/v1/streams/{stream_id}/captions"
            # another stream's captions, an expired token, none, a forged one
            assert await status("/v1/streams/someone-else/captions", token) == 401
            expired, _ = secrets.issue(alice, 60, now=time.time() - 120, view=stream_id)
            assert await status(captions, expired) == 401
            assert await status(captions, None) == 401
            assert await status(captions, token[:-4] + "AAAA") == 401
            # an unscoped client secret of the same key is no viewer token
            assert await status(captions, secrets.issue(alice)[0]) == 401
            # a viewer token calls no REST path and mints nothing
            assert await status("/v1/models", token) == 401
            assert await status("/status", token) == 401
            assert (await mint(http, base, stream_id, token))[0] == 401
            # another key cannot share alice's stream; nobody can share a stream not running
            assert (await mint(http, base, stream_id, api_keys.limited))[0] == 401
            assert (await mint(http, base, "not-running", api_keys.alice))[0] == 404
            assert (await mint(http, base, stream_id, api_keys.alice, expires_in=10**6))[0] == 400
            # the owner's key may watch directly; the token too (both see the end)
            assert await status(captions, api_keys.alice) == 200
            assert await status(captions, api_keys.limited) == 401  # another key's stream
            async with http.get(f"{base}{captions}?token={token}") as r:
                assert r.status == 200
            # a viewer token opens no stream, on either transport
            for url in (secured_server.ws_url, secured_server.ws_http_url):
                with pytest.raises(InvalidStatus) as refused:
                    async with websockets.connect(url, additional_headers=bearer(token)) as ws:
                        await ws.send(json.dumps({"uid": "intruder", "language": "en"}))
                        await ws.recv()
                assert refused.value.response.status_code == 401
        await streaming

    asyncio.run(run())


def test_a_realtime_session_is_viewed_by_its_session_id(server, librispeech):
    """The Realtime face shares its captions too (the lifecycle feeds viewers, not the face),
    here on the open server, where anyone may mint a viewer token."""
    from test_realtime import at_rate, b64, int16

    conv = evaluation.conversation(sorted(librispeech, key=lambda u: u.path.stat().st_size)[4:6], gap=1.5)
    pcm24 = int16(at_rate(conv.audio, 24000))
    base = server.http_url
    url = base.replace("http", "ws", 1) + "/v1/realtime?intent=transcription"

    async def run():
        async with websockets.connect(url) as ws, aiohttp.ClientSession() as http:
            created = json.loads(await ws.recv())
            assert created["type"] == "session.created"
            stream_id = created["session"]["id"]
            status, minted = await mint(http, base, stream_id, "no key needed")
            assert status == 200, minted
            viewer = asyncio.create_task(
                read_captions(http, f"{base}/v1/streams/{stream_id}/captions?token={minted['token']}")
            )
            completed = 0
            async for first, end in evaluation.paced(len(pcm24) // 3, evaluation.FRAME_100MS, speed=2):
                await ws.send(
                    json.dumps(
                        {"type": "input_audio_buffer.append", "audio": b64(pcm24[first * 3 : end * 3])}
                    )
                )
            async with asyncio.timeout(120):
                while completed < 2:
                    event = json.loads(await ws.recv())
                    completed += event["type"] == "conversation.item.input_audio_transcription.completed"
            await ws.close()
            return await asyncio.wait_for(viewer, 60)  # the session closed: the viewer gets its end

    events = asyncio.run(run())
    assert events[-1]["type"] == "end"
    text = completed_text(events)
    assert evaluation.wer(conv.reference, text) < 0.35, text


def test_a_deepgram_live_stream_is_viewed_by_its_request_id(server, librispeech):
    """Deepgram's live face: the id is the request_id of the handshake's dg-request-id."""
    conv = evaluation.conversation(sorted(librispeech, key=lambda u: u.path.stat().st_size)[4:6], gap=1.5)
    pcm = evaluation.to_pcm(conv.audio)
    base = server.http_url
    url = base.replace("http", "ws", 1) + "/v1/listen?encoding=linear16&sample_rate=16000"

    async def run():
        async with websockets.connect(url) as ws, aiohttp.ClientSession() as http:
            stream_id = ws.response.headers["dg-request-id"]
            token = (await mint_when_running(http, base, stream_id, "open server"))["token"]
            viewer = asyncio.create_task(
                read_captions(http, f"{base}/v1/streams/{stream_id}/captions?token={token}")
            )
            async for first, end in evaluation.paced(len(conv.audio), evaluation.FRAME_100MS, speed=2):
                await ws.send(pcm[first * 2 : end * 2])
            await ws.send(json.dumps({"type": "CloseStream"}))
            async with asyncio.timeout(120):
                async for _ in ws:  # its results, until the server closes
                    pass
            return await asyncio.wait_for(viewer, 60)

    events = asyncio.run(run())
    assert events[-1] == {"type": "end", "how": "end of audio"}
    text = completed_text(events)
    assert evaluation.wer(conv.reference, text) < 0.35, text
