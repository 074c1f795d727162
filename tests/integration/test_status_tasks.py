"""/status counts the event loop's tasks, so a soak can tell a leak of them from load.

Real server, a real stream of LibriSpeech speech over a WebSocket: the count rises while the
stream is open and falls back once it has closed.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

from harness import evaluation


def tasks(server) -> int:
    with urllib.request.urlopen(server.http_url + "/status", timeout=10) as response:
        return json.load(response)["asyncio_tasks"]


def test_status_counts_tasks_of_open_streams_only(server):
    before = tasks(server)
    assert before >= 1  # at least the servers' own
    utterance = evaluation.manifest("librispeech_dev_clean")[0]
    conv = evaluation.conversation([utterance], gap=1.0)
    during: list[int] = []

    async def watch_while_streaming():
        stream = asyncio.create_task(
            evaluation.stream(server.ws_url, conv.audio, {"language": "en"}, speed=2.0)
        )
        while not stream.done():
            during.append(await asyncio.to_thread(tasks, server))
            await asyncio.sleep(0.3)
        return await stream

    trace = asyncio.run(watch_while_streaming())
    assert evaluation.wer(utterance.reference, trace.transcript) < 0.3
    assert max(during) > before  # the open stream's tasks show
    deadline = time.monotonic() + 15  # generous: the session closes after the client has gone
    while tasks(server) > before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert tasks(server) <= before
