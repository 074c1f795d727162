"""What an operator meets running the server behind a balancer: ``--max-frame-mb`` answered
in the protocol on both WebSocket transports, and ``--trusted-proxies`` naming the real
client in log lines on both ports (and only when the peer is a trusted proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.request

import pytest
import websockets
from harness import evaluation as ev
from harness.server_thread import ServerThread, free_port

from whisper_live.media import decode_audio
from whisper_live.settings import ServerSettings


@pytest.fixture(scope="module")
def small_frames():
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        http_port=free_port(),
        max_clients=4,
        capacity_admission=False,
        max_frame_mb=0.25,
    )
    with ServerThread(settings) as running:
        yield running


@pytest.mark.parametrize("transport", ["own port", "/ws"])
def test_a_frame_over_max_frame_mb_gets_the_protocols_error(small_frames, librispeech, transport):
    """Under the cap audio streams as usual; one frame over it gets ``ERROR`` (the stream's
    uid, the limit, what to do) and then close 1009, instead of the library's bare 1009."""
    url = small_frames.ws_url if transport == "own port" else small_frames.ws_http_url
    speech = ev.to_pcm(decode_audio(str(librispeech[0].path)))
    assert len(speech) < 2**18  # one frame under the 256 KiB cap

    async def run() -> tuple[list[dict], int | None]:
        messages = []
        async with websockets.connect(url, max_size=2**24) as ws:
            await ws.send(json.dumps({"uid": "big-frames", "language": "en"}))
            messages.append(json.loads(await ws.recv()))
            await ws.send(speech)
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(bytes(2**18 + 2))
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    messages.append(json.loads(raw))
            return messages, ws.close_code

    messages, code = asyncio.run(asyncio.wait_for(run(), 120))
    assert messages[0]["message"] == "SERVER_READY"
    assert code == 1009, (code, messages[-1])
    error = messages[-1]
    assert error["status"] == "ERROR" and error["uid"] == "big-frames", error
    assert "--max-frame-mb" in error["message"] and "smaller frames" in error["message"], error


def test_the_forwarded_client_is_logged_only_from_trusted_proxies(librispeech, caplog):
    """The connection comes from 127.0.0.1 (standing in for HAProxy). Trusted, its
    ``X-Forwarded-For`` / ``Forwarded`` name the client in the stream's and the request's log
    lines, on port 9090, on ``/ws`` and on REST; untrusted, they are ignored."""
    caplog.set_level(logging.DEBUG, logger="whisper_live")  # an open server logs requests at debug
    clip = ev.to_pcm(decode_audio(str(min(librispeech, key=lambda u: u.path.stat().st_size).path)))

    def peers(trusted: str) -> dict[str, str]:
        caplog.clear()
        settings = ServerSettings(
            host="127.0.0.1", port=0, http_port=free_port(), capacity_admission=False, trusted_proxies=trusted
        )
        with ServerThread(settings) as running:

            async def stream(url: str, uid: str, headers: dict) -> None:
                async with websockets.connect(url, additional_headers=headers) as ws:
                    await ws.send(json.dumps({"uid": uid, "language": "en"}))
                    await ws.recv()
                    await ws.send(clip)
                    await ws.send(b"END_OF_AUDIO")
                    with contextlib.suppress(websockets.ConnectionClosed):
                        async for _ in ws:
                            pass

            asyncio.run(stream(running.ws_url, "own", {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}))
            asyncio.run(
                stream(running.ws_http_url, "ws", {"Forwarded": 'for="[2001:db8::7]:4711";proto=https'})
            )
            request = urllib.request.Request(
                running.http_url + "/v1/models", headers={"X-Forwarded-For": "203.0.113.8"}
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status == 200
        found = {}
        for record in caplog.records:
            fields = getattr(record, "fields", {})
            if getattr(record, "event", None) in ("stream ended", "request"):
                found[str(fields.get("path") or fields.get("uid"))] = str(fields.get("peer"))
        return found

    trusted = peers("127.0.0.0/8, ::1")
    # the address our proxy saw connect, not what the client wrote in front of it
    assert trusted["own"] == "203.0.113.7" and trusted["ws"] == "2001:db8::7", trusted
    assert trusted["/v1/models"] == "203.0.113.8", trusted
    untrusted = peers("10.0.0.0/8")
    assert untrusted["own"].startswith("127.0.0.1:") and untrusted["ws"].startswith("127.0.0.1:"), untrusted
    assert untrusted["/v1/models"] == "127.0.0.1", untrusted


def test_wait_says_when_a_slot_is_expected_not_the_time_limit(librispeech):
    """Streams here last seconds; the time limit is ten minutes. A client refused while one
    stream runs is told about when that stream should end (from how long the others
    lasted), not the ten minutes the old estimate gave, and a slot does free about then."""
    clip = decode_audio(str(min(librispeech, key=lambda u: u.path.stat().st_size).path))
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        http_port=0,
        max_clients=1,
        max_connection_time=600,
        capacity_admission=False,
    )
    with ServerThread(settings) as running:

        async def scenario() -> tuple[dict, float, float]:
            for _ in range(3):  # the history: streams of a few seconds
                await ev.stream(running.ws_url, clip, speed=2.0)
            async with websockets.connect(running.ws_url) as holder:
                await holder.send(json.dumps({"uid": "holder", "language": "en"}))
                await holder.recv()
                async with websockets.connect(running.ws_url) as refused:
                    await refused.send(json.dumps({"uid": "refused", "language": "en"}))
                    reply = json.loads(await refused.recv())
                told = asyncio.get_running_loop().time()
                await holder.send(ev.to_pcm(clip))
                await asyncio.sleep(clip.size / 16000 / 2)  # as long as the others streamed
                await holder.send(b"END_OF_AUDIO")
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for _ in holder:
                        pass
            return reply, told, asyncio.get_running_loop().time()

        reply, told, freed = asyncio.run(asyncio.wait_for(scenario(), 300))
    assert reply["status"] == "WAIT" and reply["uid"] == "refused", reply
    assert 0 < reply["message"] < 1.0, reply  # minutes: the time limit alone would say 10
    assert freed - told < 60 * 1.0 + 30, "the slot freed about when the estimate said"
