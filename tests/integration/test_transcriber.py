"""The Faster-Whisper Transcriber's server API against the real server, with ``requests``
and ``aiohttp`` as its users' scripts call it, on real speech.

Every request shape its guide shows is sent as shown (files, .npy, torch tensors, raw
PCM, base64 JSON); transcripts are compared with the references (WER), and errors are
checked for its FastAPI shape ({"detail": ...}, its statuses).
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import requests
from harness import evaluation

AUDIO = evaluation.audio_root()
JFK = AUDIO / "jfk" / "jfk.flac"
JFK_TEXT = evaluation.manifest("jfk")[0].reference
TENSORS = AUDIO / "tensors"
FRENCH = AUDIO / "multilingual" / "picovoice_test_fr.wav"
FRENCH_TEXT = "Sous le consulat il devient conservateur des eaux et forêts et conseiller général."
RESPONSE_KEYS = {"text", "segments", "language", "duration", "task", "model_used", "processing_time_seconds"}


def pcm(path: Path, codec: str, rate: int) -> bytes:
    return subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-f",
            codec,
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout


def transcribe(server, **kwargs) -> requests.Response:
    return requests.post(server.http_url + "/transcribe", timeout=300, **kwargs)


def detail(response: requests.Response, status: int, says: str = "") -> str:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    assert says.lower() in body["detail"].lower(), body["detail"]
    return body["detail"]


# ----------------------------------------------------------------------------- requests


def test_simplest_request_returns_text_only_fields(server):
    with open(JFK, "rb") as f:
        response = transcribe(server, files={"audio": f})
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == RESPONSE_KEYS
    assert evaluation.wer(JFK_TEXT, result["text"]) < 0.1, result["text"]
    assert result["segments"] == []  # include_timestamps defaults to false
    assert result["language"] == "en" and result["task"] == "transcribe"
    assert abs(result["duration"] - 11.0) < 0.1
    assert result["model_used"] == "tiny.en - int8"
    assert 0 < result["processing_time_seconds"] < 300


def test_timestamps_words_and_settings(server):
    with open(JFK, "rb") as f:
        response = transcribe(
            server,
            files={"audio": ("jfk.flac", f, "audio/flac")},
            data={
                "model": "tiny.en",
                "language": "en",
                "include_timestamps": "true",
                "word_timestamps": "true",
                "beam_size": "2",
                "vad_filter": "true",
                "condition_on_previous_text": "false",
            },
        )
    result = response.json()
    assert response.status_code == 200, result
    segments = result["segments"]
    assert segments and evaluation.wer(JFK_TEXT, "".join(s["text"] for s in segments)) < 0.1
    for seg in segments:
        assert set(seg) >= {"start", "end", "text"} and 0 <= seg["start"] <= seg["end"] <= result["duration"]
        assert seg["start"] == round(seg["start"], 3)
        assert seg["words"] and all(seg["start"] - 0.5 <= w["start"] <= w["end"] for w in seg["words"])
    assert segments[-1]["end"] > 8.0


def test_quantization_loads_that_variant(server):
    """float32 is another CTranslate2 variant of the same model, loaded through the pool."""
    with open(JFK, "rb") as f:
        response = transcribe(server, files={"audio": f}, data={"quantization": "float32", "device": "cpu"})
    result = response.json()
    assert response.status_code == 200, result
    assert result["model_used"] == "tiny.en - float32"
    assert evaluation.wer(JFK_TEXT, result["text"]) < 0.1
    variants = {(m.name, m.compute_type) for m in server.server.pool.loaded()}
    assert {("tiny.en", "int8"), ("tiny.en", "float32")} <= variants
    server.server.pool._models.pop((server.server.pool.resolve("tiny.en").path, "cpu", "float32"))


def test_translate_with_multilingual_model(server):
    with open(FRENCH, "rb") as f:
        original = transcribe(server, files={"audio": f}, data={"model": "base"}).json()
    with open(FRENCH, "rb") as f:
        english = transcribe(
            server, files={"audio": f}, data={"model": "base", "task_mode": "translate"}
        ).json()
    assert original["language"] == "fr" and evaluation.wer(FRENCH_TEXT, original["text"]) < 0.4, original
    assert english["task"] == "translate" and english["model_used"] == "base - int8"
    assert "consul" in english["text"].lower() and evaluation.wer(FRENCH_TEXT, english["text"]) > 0.7, english


def test_language_auto_is_detection(server):
    with open(FRENCH, "rb") as f:
        result = transcribe(server, files={"audio": f}, data={"model": "base", "language": "auto"}).json()
    assert result["language"] == "fr", result


def test_batched_request_as_the_guide_shows(server):
    with open(AUDIO / "longform" / "shakespeare_sonnet001_librivox.mp3", "rb") as f:
        response = transcribe(
            server,
            files={"audio": ("sonnet.mp3", f, "audio/mpeg")},
            data={"include_timestamps": "true", "batch_size": "4", "vad_filter": "false", "beam_size": "1"},
        )
    result = response.json()
    assert response.status_code == 200, result
    assert evaluation.wer(evaluation.manifest("longform")[0].reference, result["text"]) < 0.35
    starts = [s["start"] for s in result["segments"]]
    assert len(starts) > 3 and starts == sorted(starts) and starts[-1] > 30


# ----------------------------------------------------------------------------- audio formats


def test_numpy_upload_and_resampling(server):
    buffer = io.BytesIO()
    np.save(buffer, np.load(TENSORS / "jfk_16k_float32.npy"))
    buffer.seek(0)
    response = transcribe(
        server,
        files={"audio": ("audio.npy", buffer, "application/octet-stream")},
        data={"sample_rate": "16000"},
    )
    assert evaluation.wer(JFK_TEXT, response.json()["text"]) < 0.1
    samples = np.frombuffer(pcm(JFK, "f32le", 44100), "<f4")
    buffer = io.BytesIO()
    np.save(buffer, samples)
    response = transcribe(
        server, files={"audio": ("audio.npy", buffer.getvalue())}, data={"sample_rate": "44100"}
    )
    result = response.json()
    assert evaluation.wer(JFK_TEXT, result["text"]) < 0.1 and abs(result["duration"] - 11.0) < 0.1


@pytest.mark.parametrize(
    ("name", "rate"),
    [("jfk_16k_float32.pt", 16000), ("jfk_16k_int16.pt", 16000), ("jfk_44k1_float32_1xN.pt", 44100)],
)
def test_torch_tensor_files(server, name, rate):
    """torch.save output read without torch, as audio_format auto and as tensor."""
    data = (TENSORS / name).read_bytes()
    for fields in ({"sample_rate": str(rate)}, {"sample_rate": str(rate), "audio_format": "tensor"}):
        response = transcribe(
            server, files={"audio": ("audio.pt", data, "application/octet-stream")}, data=fields
        )
        result = response.json()
        assert response.status_code == 200, result
        assert evaluation.wer(JFK_TEXT, result["text"]) < 0.15, result["text"]
        assert abs(result["duration"] - 11.0) < 0.1


@pytest.mark.parametrize(
    ("dtype", "codec", "rate"),
    [
        ("float32", "f32le", 16000),
        ("int16", "s16le", 22050),
        ("int32", "s32le", 8000),
        ("float64", "f64le", 48000),
    ],
)
def test_raw_pcm_dtypes(server, dtype, codec, rate):
    raw = pcm(JFK, codec, rate)
    response = transcribe(
        server,
        files={"audio": ("audio.raw", raw, "application/octet-stream")},
        data={"audio_format": "pcm", "sample_rate": str(rate), "dtype": dtype},
    )
    result = response.json()
    assert evaluation.wer(JFK_TEXT, result["text"]) < 0.15, result
    assert abs(result["duration"] - 11.0) < 0.1


def test_raw_float32_pcm_without_dtype_is_sniffed(server):
    """Once read as int16 (noise) and answered {"text": ""}: now told apart from the bytes."""
    response = transcribe(
        server,
        files={"audio": ("audio.raw", pcm(JFK, "f32le", 16000))},
        data={"audio_format": "pcm", "sample_rate": "16000"},
    )
    assert evaluation.wer(JFK_TEXT, response.json()["text"]) < 0.15, response.text
    response = transcribe(
        server, files={"audio": ("a.raw", pcm(JFK, "s16le", 16000))}, data={"audio_format": "pcm"}
    )
    assert evaluation.wer(JFK_TEXT, response.json()["text"]) < 0.15, response.text


def test_raw_json_bodies_every_format(server):
    npy = io.BytesIO()
    np.save(npy, np.load(TENSORS / "jfk_16k_float32.npy"))
    bodies = [
        {"audio_data": npy.getvalue(), "audio_format": "numpy", "sample_rate": 16000},
        {"audio_data": JFK.read_bytes(), "audio_format": "file"},
        {
            "audio_data": (TENSORS / "jfk_16k_int16.pt").read_bytes(),
            "audio_format": "tensor",
            "sample_rate": 16000,
        },
        {
            "audio_data": pcm(JFK, "s16le", 16000),
            "audio_format": "pcm",
            "sample_rate": 16000,
            "dtype": "int16",
        },
        {"audio_data": JFK.read_bytes(), "audio_format": "auto", "include_timestamps": True},
    ]
    for body in bodies:
        body["audio_data"] = base64.b64encode(body["audio_data"]).decode("utf-8")
        response = requests.post(server.http_url + "/transcribe/raw", json=body, timeout=300)
        result = response.json()
        assert response.status_code == 200, (body["audio_format"], result)
        assert evaluation.wer(JFK_TEXT, result["text"]) < 0.15, (body["audio_format"], result["text"])
        assert bool(result["segments"]) == bool(body.get("include_timestamps"))


# ----------------------------------------------------------------------------- tensor safety


class _Exploit:
    """What a malicious .pt carries: unpickling it would call os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious_pt(marker: Path, legacy: bool) -> bytes:
    payload = pickle.dumps(_Exploit(marker), protocol=2)
    if legacy:
        from whisper_live.tensors import LEGACY_MAGIC, LEGACY_PROTOCOL

        return (
            b"".join(
                pickle.dumps(x, protocol=2) for x in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True})
            )
            + payload
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("evil/data.pkl", payload)
        archive.writestr("evil/version", "3\n")
    return buffer.getvalue()


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_tensor_is_refused_and_never_run(server, tmp_path, legacy):
    marker = tmp_path / "pwned"
    data = _malicious_pt(marker, legacy)
    response = transcribe(server, files={"audio": ("audio.pt", data)})
    message = detail(response, 400, says="refused")
    assert "system" in message
    body = {"audio_data": base64.b64encode(data).decode(), "audio_format": "tensor"}
    detail(requests.post(server.http_url + "/transcribe/raw", json=body, timeout=60), 400, says="refused")
    assert not marker.exists()
    assert requests.get(server.http_url + "/health", timeout=10).json() == {"status": "ok"}


# ----------------------------------------------------------------------------- errors


def test_errors_in_the_transcriber_shape(server):
    jfk = JFK.read_bytes()
    assert "tiny.en" in detail(
        transcribe(server, files={"audio": jfk}, data={"model": "FakeModel"}), 400, "FakeModel"
    )
    detail(transcribe(server, files={"audio": jfk}, data={"device": "cuda"}), 400, says="cuda")
    detail(transcribe(server, files={"audio": jfk}, data={"quantization": "float16"}), 400, says="float16")
    detail(transcribe(server, files={"audio": jfk}, data={"quantization": "int4"}), 400, says="quantization")
    detail(transcribe(server, files={"audio": jfk}, data={"beam_size": "21"}), 400, says="beam_size")
    detail(transcribe(server, files={"audio": jfk}, data={"batch_size": "129"}), 400, says="batch_size")
    detail(transcribe(server, files={"audio": jfk}, data={"dtype": "uint8"}), 400, says="dtype")
    detail(transcribe(server, files={"audio": jfk}, data={"audio_format": "mp3"}), 400, says="audio_format")
    detail(transcribe(server, files={"audio": jfk}, data={"language": "klingon"}), 400, says="klingon")
    detail(transcribe(server, files={"audio": jfk}, data={"task_mode": "summarize"}), 400, says="task_mode")
    detail(
        transcribe(server, files={"audio": jfk}, data={"task_mode": "translate"}), 400, says="english-only"
    )
    detail(transcribe(server, files={"audio": b""}), 400, says="empty audio data")
    noise = np.random.default_rng(0).bytes(20000)
    detail(transcribe(server, files={"audio": ("x.mp3", noise)}), 400, says="failed to process audio")
    missing = transcribe(server, data={"model": "tiny.en"})
    assert missing.status_code == 422
    assert (
        missing.json()["detail"][0]["loc"] == ["body", "audio"]
        and missing.json()["detail"][0]["type"] == "missing"
    )
    raw = requests.post(server.http_url + "/transcribe/raw", json={"audio_format": "file"}, timeout=60)
    assert raw.status_code == 422 and raw.json()["detail"][0]["loc"] == ["body", "audio_data"]
    bad_json = requests.post(
        server.http_url + "/transcribe/raw",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    detail(bad_json, 400, says="json")
    assert requests.get(server.http_url + "/health", timeout=10).status_code == 200


# ----------------------------------------------------------------------------- models, status, docs


def test_models_health_status_docs(server):
    models = requests.get(server.http_url + "/models", timeout=10).json()
    assert models["tiny.en"] == {"name": "tiny.en", "supports_translation": False}
    assert models["base"] == {"name": "base", "supports_translation": True}
    assert requests.get(server.http_url + "/health", timeout=10).json() == {"status": "ok"}
    status = requests.get(server.http_url + "/status", timeout=10).json()
    assert status["server_running"] is True and status["queue_depth"] >= 0
    assert isinstance(status["transcription_active"], bool)
    assert {"active_streams", "uploads", "models", "transcribing"} <= set(status)  # our own keys stay
    for page in ("/docs", "/redoc"):
        html = requests.get(server.http_url + page, timeout=10)
        assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
        # Swagger UI and ReDoc from this server's own assets (offline): no CDN address.
        assert "/openapi.json" in html.text and '<script src="/docs/assets/' in html.text
        assert "https://" not in html.text
    spec = requests.get(server.http_url + "/openapi.json", timeout=10).json()
    fields = spec["paths"]["/transcribe"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"audio", "quantization", "task_mode", "include_timestamps", "dtype"} <= set(fields["properties"])
    assert (
        "audio_data"
        in spec["paths"]["/transcribe/raw"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "properties"
        ]
    )


def test_status_while_requests_queue(server):
    """Three requests at once, as the guide's threading example sends them: /status shows
    the work, every client gets its own transcript, and the server is idle afterwards."""
    sonnet = AUDIO / "longform" / "shakespeare_sonnet001_librivox.mp3"

    async def scenario():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:

            async def one(path: Path) -> dict:
                form = aiohttp.FormData()
                form.add_field("audio", path.read_bytes(), filename=path.name)
                async with session.post(server.http_url + "/transcribe", data=form) as response:
                    assert response.status == 200
                    return await response.json()

            tasks = [asyncio.create_task(one(p)) for p in (sonnet, JFK, JFK)]
            seen = []
            while not all(t.done() for t in tasks):
                async with session.get(server.http_url + "/status") as response:
                    seen.append(await response.json())
                await asyncio.sleep(0.2)
            async with session.get(server.http_url + "/status") as response:
                idle = await response.json()
            return [t.result() for t in tasks], seen, idle

    results, seen, idle = asyncio.run(scenario())
    assert evaluation.wer(evaluation.manifest("longform")[0].reference, results[0]["text"]) < 0.3
    assert all(evaluation.wer(JFK_TEXT, r["text"]) < 0.1 for r in results[1:])
    assert any(s["transcription_active"] for s in seen)
    assert any(s["queue_depth"] >= 1 for s in seen)
    assert idle["queue_depth"] == 0 and idle["transcription_active"] is False
