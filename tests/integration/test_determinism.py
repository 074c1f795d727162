"""A REST transcription of the same file with the same parameters gives the same text
whatever the load.

Why it can: a REST decode never shares a model call with a stream (uploads are not
fitted-window decodes, the only ones the scheduler batches across streams), the batched
pipeline's batches are made from the file alone (its VAD chunks), and a decode runs on
``--cpu-threads`` threads whatever else runs. What may still differ is a window that falls
back to a sampled decode (temperature > 0): CTranslate2 draws samples from per-thread
generators that ``ctranslate2.set_random_seed`` does not reset once a model is loaded, so
those windows depend on what was sampled before. They show ``temperature > 0`` in
``verbose_json``; the premise is checked here so a machine where this file falls back says
so instead of failing for the wrong reason.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid

import pytest
from harness import evaluation
from harness.server_thread import ServerThread, free_port

from whisper_live.settings import ServerSettings

AUDIO = evaluation.audio_root()
SONNET = AUDIO / "longform" / "shakespeare_sonnet001_librivox.mp3"
STREAMS = 8


@pytest.fixture(scope="module")
def roomy_server():
    """Room for 8 streams plus uploads, and cross-stream batching on (the one batching a
    CPU server can turn on), so streams batch together while the uploads run."""
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        http_port=free_port(),
        max_clients=STREAMS + 2,
        capacity_admission=False,
        max_batch=8,
    )
    with ServerThread(settings) as running:
        yield running


def transcribe(server: ServerThread, path, **fields) -> dict:
    boundary = uuid.uuid4().hex
    parts = [("model", "whisper-1"), ("response_format", "verbose_json"), *fields.items()]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in parts
    )
    body += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        server.http_url + "/v1/audio/transcriptions",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("fields", [{}, {"batch_size": "4"}], ids=["sequential", "batched-pipeline"])
def test_same_file_same_text_idle_and_under_streams(roomy_server, librispeech, fields):
    idle = [transcribe(roomy_server, SONNET, **fields) for _ in range(3)]
    sampled = [s for r in idle for s in r["segments"] if s.get("temperature", 0) > 0]
    if sampled:
        pytest.skip(
            f"{len(sampled)} segment(s) fell back to sampling on this machine: those may differ by design"
        )
    assert evaluation.wer(evaluation.manifest("longform")[0].reference, idle[0]["text"]) < 0.5

    talk = evaluation.conversation(librispeech[:4], gap=1.0).audio  # ~25 s of speech and pauses

    async def loaded() -> tuple[list[dict], list[evaluation.StreamTrace]]:
        streams = [
            asyncio.create_task(evaluation.stream(roomy_server.ws_url, talk, timeout=300))
            for _ in range(STREAMS)
        ]
        await asyncio.sleep(3)  # every stream admitted and decoding
        uploads = [await asyncio.to_thread(transcribe, roomy_server, SONNET, **fields) for _ in range(2)]
        uploads += await asyncio.gather(
            *(asyncio.to_thread(transcribe, roomy_server, SONNET, **fields) for _ in range(2))
        )
        return uploads, await asyncio.gather(*streams)

    busy, traces = asyncio.run(loaded())
    assert all(trace.transcript for trace in traces), "every stream ran meanwhile"
    texts = {r["text"] for r in idle + busy}
    assert len(texts) == 1, texts
    assert {json.dumps([(s["start"], s["end"]) for s in r["segments"]]) for r in idle + busy} == {
        json.dumps([(s["start"], s["end"]) for s in idle[0]["segments"]])
    }
