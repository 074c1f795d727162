"""The Deepgram face against the real server: Deepgram's own Python SDK, real speech, real parsers.

The SDK (``deepgram-sdk``) is pointed at the test server by its environment option (its
self-hosted base URL); srt/vtt go through ``httpx`` as the reference's examples do and are
parsed by ``srt`` and ``webvtt-py``; a raw ``websockets`` client does what the reference's
streaming example does. Text is checked by WER against the manifests' references.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import io
import json
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import srt
import websockets
import webvtt
from deepgram import DeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from harness import evaluation as ev
from openai import OpenAI

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.faces.deepgram import live
from whisper_live.media import decode_audio

AUDIO = ev.audio_root()
JFK = AUDIO / "jfk" / "jfk.flac"
JFK_TEXT = ev.manifest("jfk")[0].reference
JFK_SECONDS = 11.0


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def dg(server) -> DeepgramClient:
    ws_url = server.http_url.replace("http://", "ws://")
    environment = DeepgramClientEnvironment(
        base=server.http_url, production=ws_url, agent=ws_url, agent_rest=server.http_url
    )
    return DeepgramClient(api_key="test-key", environment=environment)


@pytest.fixture
def private_urls(server, monkeypatch):
    """The server may fetch from 127.0.0.1 (off by default: tests serve their files locally)."""
    monkeypatch.setattr(server.server.settings, "listen_allow_private_urls", True)  # what the app reads


@pytest.fixture(scope="module")
def file_server():
    """The recordings folder (tests/audio, or WHISPER_LIVE_AUDIO) over HTTP on 127.0.0.1, in a thread."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(AUDIO))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def ffmpeg(source: Path, target: Path, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *args, str(target)], check=True
    )
    return target


def alternative(response) -> dict:
    """The first alternative of channel 0, from an SDK response object or a dict."""
    body = response if isinstance(response, dict) else response.model_dump()
    return body["results"]["channels"][0]["alternatives"][0]


def listen(server, body: bytes, content_type: str = "audio/flac", **params) -> httpx.Response:
    """A plain HTTP request, as the reference's httpx example sends it."""
    headers = {"Authorization": "Token x", "Content-Type": content_type}
    return httpx.post(
        server.http_url + "/v1/listen", params=params, headers=headers, content=body, timeout=300
    )


# ----------------------------------------------------------------------------- prerecorded


def test_prerecorded_file_with_the_sdk_gives_words_with_timings(dg):
    response = dg.listen.v1.media.transcribe_file(
        request=JFK.read_bytes(),
        model="tiny.en",
        punctuate=True,
        utterances=True,
        paragraphs=True,
        diarize=True,
    )
    alt = alternative(response)
    assert ev.wer(JFK_TEXT, alt["transcript"]) < 0.1, alt["transcript"]
    assert alt["transcript"][0].isupper() and "," in alt["transcript"], (
        "punctuate=true: Whisper's punctuation"
    )
    words = alt["words"]
    assert len(words) >= 20
    assert ev.wer(JFK_TEXT, " ".join(w["word"] for w in words)) < 0.1
    assert all(w["word"] == w["word"].lower() and w["punctuated_word"] for w in words)
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(0 <= w["start"] <= w["end"] <= JFK_SECONDS + 0.5 for w in words)
    assert all(0 < w["confidence"] <= 1 for w in words) and 0 < alt["confidence"] <= 1
    # "ask not what your country can do for you" is spoken in the second half of the clip
    ask = next(w for w in words if w["word"] == "ask")
    assert 2.0 < ask["start"] < 6.0
    metadata = response.metadata
    assert metadata.request_id and metadata.channels == 1 and abs(metadata.duration - JFK_SECONDS) < 0.1
    assert metadata.models and metadata.models[0] in metadata.model_info
    # diarize=true: every word has a speaker number (how well one speaker stays one is
    # measured on the conversations, below and in scripts/bench_diarization.py)
    assert all(isinstance(w["speaker"], int) for w in words) and 0 in {w["speaker"] for w in words}
    utterances = response.results.utterances
    assert utterances and ev.wer(JFK_TEXT, " ".join(u.transcript for u in utterances)) < 0.1
    paragraphs = alt["paragraphs"]["paragraphs"]
    assert paragraphs and sum(p["num_words"] for p in paragraphs) == len(words)


def test_prerecorded_diarization_numbers_the_speakers_of_a_conversation(dg):
    """Two LibriSpeech readers taking turns: words and utterances carry Deepgram's speaker numbers."""
    conversation = ev.audio_root() / "conversations" / "two_speakers.wav"
    response = dg.listen.v1.media.transcribe_file(
        request=conversation.read_bytes(), model="tiny.en", diarize=True, utterances=True
    )
    words = alternative(response)["words"]
    assert {w["speaker"] for w in words} == {0, 1}
    utterances = response.model_dump()["results"]["utterances"]
    assert {u["speaker"] for u in utterances} == {0, 1}
    # the RTTM's first turn belongs to one reader: its words share one number
    _, _, _, start, length, *_ = conversation.with_suffix(".rttm").read_text().split()
    first_turn_end = float(start) + float(length)
    early = {w["speaker"] for w in words if w["end"] < first_turn_end - 0.5}
    assert len(early) == 1, early


def test_prerecorded_default_is_deepgrams_plain_transcript(server):
    body = listen(server, JFK.read_bytes()).json()
    transcript = alternative(body)["transcript"]
    assert transcript == transcript.lower() and "," not in transcript and "." not in transcript
    assert ev.wer(JFK_TEXT, transcript) < 0.1
    assert "punctuated_word" not in alternative(body)["words"][0]


def test_prerecorded_url_served_from_loopback(dg, file_server, private_urls):
    response = dg.listen.v1.media.transcribe_url(url=f"{file_server}/jfk/jfk.flac", model="tiny.en")
    assert ev.wer(JFK_TEXT, alternative(response)["transcript"]) < 0.1


def test_loopback_urls_are_refused_unless_the_server_allows_them(dg, server, file_server):
    assert not server.server.settings.listen_allow_private_urls
    with pytest.raises(ApiError) as refused:
        dg.listen.v1.media.transcribe_url(url=f"{file_server}/jfk/jfk.flac")
    assert refused.value.status_code == 400
    assert refused.value.body["err_code"] == "REMOTE_CONTENT_ERROR" and refused.value.body["request_id"]


def test_srt_and_vtt_parse_with_real_parsers(server):
    cues = list(srt.parse(listen(server, JFK.read_bytes(), response_format="srt").text))
    assert cues and ev.wer(JFK_TEXT, " ".join(c.content for c in cues)) < 0.1
    assert all(c.start < c.end for c in cues) and cues[-1].end.total_seconds() <= JFK_SECONDS + 0.5
    response = listen(server, JFK.read_bytes(), response_format="vtt")
    assert response.headers["Content-Type"].startswith("text/vtt")
    captions = webvtt.from_buffer(io.StringIO(response.text))
    assert ev.wer(JFK_TEXT, " ".join(c.text for c in captions)) < 0.1


def test_crop_transcribes_only_the_window_in_file_time(dg):
    full = alternative(dg.listen.v1.media.transcribe_file(request=JFK.read_bytes(), model="tiny.en"))
    cropped = alternative(
        dg.listen.v1.media.transcribe_file(
            request=JFK.read_bytes(),
            model="tiny.en",
            request_options={"additional_query_parameters": {"start": 3000, "duration": 4000}},
        )
    )
    assert len(cropped["words"]) < len(full["words"]) / 2
    assert "ask" in cropped["transcript"] and "americans" not in cropped["transcript"]
    assert all(w["start"] >= 2.9 and w["end"] <= 7.1 for w in cropped["words"]), cropped["words"]


def test_prompt_carries_custom_vocabulary(server, librispeech):
    clip = next(u for u in librispeech if "FRERE" in u.reference)
    plain = alternative(listen(server, clip.path.read_bytes(), punctuate="true").json())["transcript"]
    prompted = alternative(
        listen(server, clip.path.read_bytes(), punctuate="true", prompt="FRERE,MUTTON,KUBERNETES").json()
    )["transcript"]
    assert "frere" not in plain.lower(), "tiny.en hears another spelling without the prompt"
    assert "frere" in prompted.lower()


def test_keywords_and_keyterms_are_accepted(dg, librispeech):
    clip = next(u for u in librispeech if "QUILTER" in u.reference)
    response = dg.listen.v1.media.transcribe_file(
        request=clip.path.read_bytes(), model="tiny.en", keywords=["Quilter:2"], keyterm=["apostle"]
    )
    assert ev.wer(clip.reference, alternative(response)["transcript"]) < 0.2


def test_raw_pcm_encodings_with_sample_rate(server, tmp_path):
    for encoding, fmt in [("linear16", "s16le"), ("mulaw", "mulaw"), ("alaw", "alaw")]:
        raw = ffmpeg(JFK, tmp_path / f"jfk.{fmt}", "-ac", "1", "-ar", "8000", "-f", fmt).read_bytes()
        body = listen(server, raw, "application/octet-stream", encoding=encoding, sample_rate=8000).json()
        assert ev.wer(JFK_TEXT, alternative(body)["transcript"]) < 0.15, encoding
        assert abs(body["metadata"]["duration"] - JFK_SECONDS) < 0.1


def test_multichannel_transcribes_each_channel(server, librispeech, tmp_path):
    clip = librispeech[0]
    stereo = tmp_path / "two.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(JFK), "-i", str(clip.path),
         "-filter_complex", "[0:a]pan=mono|c0=c0,aresample=16000,aformat=sample_fmts=fltp:channel_layouts=mono[l];"
         "[1:a]aresample=16000,aformat=sample_fmts=fltp:channel_layouts=mono,apad[r];[l][r]amerge=inputs=2[a]",
         "-map", "[a]", str(stereo)],
        check=True,
    )  # fmt: skip
    body = listen(server, stereo.read_bytes(), "audio/wav", multichannel="true", utterances="true").json()
    channels = body["results"]["channels"]
    assert body["metadata"]["channels"] == len(channels) == 2
    assert ev.wer(JFK_TEXT, channels[0]["alternatives"][0]["transcript"]) < 0.1
    assert ev.wer(clip.reference, channels[1]["alternatives"][0]["transcript"]) < 0.2
    assert {u["channel"] for u in body["results"]["utterances"]} == {0, 1}


def test_models_listing_fits_both_sdks_and_ping(dg, server):
    stt = dg.manage.v1.models.list().stt
    assert "tiny.en" in [m.name for m in stt] and all(m.batch and m.streaming for m in stt)
    openai = OpenAI(base_url=server.http_url + "/v1", api_key="x", max_retries=0)
    assert "tiny.en" in [m.id for m in openai.models.list()]
    assert httpx.get(server.http_url + "/ping").status_code == 200


def test_wer_matches_the_openai_endpoint_on_the_same_audio(dg, server, librispeech):
    """Same audio, same model, same pool: the face must not cost accuracy."""
    clips = librispeech[:8]
    openai = OpenAI(base_url=server.http_url + "/v1", api_key="x", max_retries=0, timeout=300)
    reference = " ".join(c.reference for c in clips)
    ours = " ".join(
        alternative(dg.listen.v1.media.transcribe_file(request=c.path.read_bytes(), model="tiny.en"))[
            "transcript"
        ]
        for c in clips
    )
    theirs = " ".join(
        openai.audio.transcriptions.create(model="whisper-1", file=(c.path.name, c.path.read_bytes())).text
        for c in clips
    )
    ours_wer, theirs_wer = ev.wer(reference, ours), ev.wer(reference, theirs)
    print(f"WER deepgram face {ours_wer:.4f}, openai face {theirs_wer:.4f}")
    assert ours_wer < 0.15
    assert abs(ours_wer - theirs_wer) <= 0.005


@pytest.mark.parametrize(
    ("params", "body", "content_type", "status", "code"),
    [
        ({}, b"RIFF\x00\x00garbage that is no audio at all" * 50, "audio/wav", 400, "INVALID_AUDIO"),
        ({"model": "nova-3"}, None, "audio/flac", 400, "MODEL_NOT_FOUND"),
        ({"start": "60000"}, None, "audio/flac", 400, "INVALID_REQUEST"),
        ({"start": "-5"}, None, "audio/flac", 400, "INVALID_REQUEST"),
        ({"duration": "abc"}, None, "audio/flac", 400, "INVALID_REQUEST"),
        ({"encoding": "speex", "sample_rate": "16000"}, None, "audio/flac", 400, "INVALID_REQUEST"),
        ({"encoding": "linear16"}, None, "audio/flac", 400, "INVALID_REQUEST"),
        ({"language": "xx"}, None, "audio/flac", 400, "INVALID_REQUEST"),
        ({"language": "es"}, None, "audio/flac", 400, "MODEL_CANNOT_TRANSCRIBE_LANGUAGE"),
        ({"punctuate": "maybe"}, None, "audio/flac", 400, "INVALID_REQUEST"),
        ({}, b"hello", "text/plain", 400, "INVALID_AUDIO"),  # sniffed like any body: not audio
        ({}, b"", "audio/wav", 422, "MISSING_AUDIO"),
        ({}, b'{"uri": "x"}', "application/json", 400, "INVALID_REQUEST"),
    ],
)
def test_bad_requests_get_deepgram_shaped_errors(server, params, body, content_type, status, code):
    response = listen(server, JFK.read_bytes() if body is None else body, content_type, **params)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["err_code"] == code and error["err_msg"] and error["request_id"]
    assert response.headers["dg-request-id"] == error["request_id"]


def test_sdk_reports_a_bad_request(dg):
    with pytest.raises(ApiError) as failed:
        dg.listen.v1.media.transcribe_file(request=b"\x00\x01garbage" * 100, model="tiny.en")
    assert failed.value.status_code == 400 and failed.value.body["err_code"] == "INVALID_AUDIO"


def test_oversized_upload_is_413(server):
    settings = server.server.settings
    before, settings.max_upload_mb = settings.max_upload_mb, 0.1
    try:
        response = listen(server, JFK.read_bytes())
    finally:
        settings.max_upload_mb = before
    assert response.status_code == 413 and response.json()["err_code"] == "FILE_TOO_LARGE"


# ----------------------------------------------------------------------------- live


def stream_with_sdk(dg, pcm: bytes, *, pace: float = 1.0, after=None, chunk: float = 0.1, **options) -> list:
    """Stream int16 PCM at ``pace`` × real time with the SDK's sync client; every message back.

    ``after(socket)`` runs once the audio is sent (default: CloseStream)."""
    messages: list = []
    step = int(chunk * SAMPLE_RATE) * 2
    with dg.listen.v1.connect(model="tiny.en", encoding="linear16", sample_rate=16000, **options) as socket:
        reader = threading.Thread(target=lambda: messages.extend(iter(socket)), daemon=True)
        reader.start()
        started = time.monotonic()
        for i, pos in enumerate(range(0, len(pcm), step)):
            time.sleep(max(0.0, started + i * chunk / pace - time.monotonic()))
            socket.send_media(pcm[pos : pos + step])
        (after or (lambda s: s.send_close_stream()))(socket)
        reader.join(120)
    assert not reader.is_alive(), "the server closed the stream"
    return messages


def kind(message) -> str:
    return getattr(message, "type", None) or message.get("type")


def finals(messages: list) -> list:
    return [m for m in messages if kind(m) == "Results" and m.is_final]


def text_of(results: list) -> str:
    return " ".join(r.channel.alternatives[0].transcript for r in results)


@pytest.fixture(scope="module")
def conversation(librispeech) -> ev.Conversation:
    return ev.conversation(librispeech[:3], gap=1.5)


def test_live_sdk_streams_real_speech_in_real_time(dg, conversation):
    messages = stream_with_sdk(
        dg,
        ev.to_pcm(conversation.audio),
        interim_results=True,
        vad_events=True,
        utterance_end_ms=1000,
        punctuate=True,
    )
    kinds = [kind(m) for m in messages]
    assert kinds[0] == "Metadata" and messages[0].request_id, "the request id comes first"
    assert (
        kinds[-1] == "Metadata" and abs(messages[-1].duration - len(conversation.audio) / SAMPLE_RATE) < 0.2
    )
    done = finals(messages)
    interim = [m for m in messages if kind(m) == "Results" and not m.is_final]
    assert ev.wer(conversation.reference, text_of(done)) < 0.15, text_of(done)
    assert len(interim) >= 3, "partials map to interim results"
    assert sum(r.speech_final for r in done) == 3, "one endpoint per utterance"
    for result, start, end in zip(
        [r for r in done if r.speech_final], conversation.starts, conversation.ends
    ):
        assert start - 0.6 <= result.start and result.start + result.duration <= end + 0.6
        words = result.channel.alternatives[0].words
        assert words and start - 0.6 <= words[0].start and words[-1].end <= end + 0.6
    first_interim = kinds.index("Results")
    assert not messages[first_interim].is_final, "interim text shows before the first final"
    assert kinds.count("SpeechStarted") == 3 and kinds.count("UtteranceEnd") >= 2
    assert all(r.metadata.request_id == messages[0].request_id for r in done)


def test_live_finalize_flushes_and_the_stream_goes_on(dg, librispeech):
    first, second = (decode_audio(str(u.path)) for u in librispeech[4:6])
    lead = np.zeros(SAMPLE_RATE // 2, np.float32)

    def finalize_then_more(socket):
        socket.send_finalize()  # mid-stream, right after speech: no endpoint seen yet
        time.sleep(3.0)
        for _ in range(3):
            socket.send_keep_alive()
            time.sleep(1.0)
        socket.send_media(ev.to_pcm(np.concatenate([lead, second])))
        socket.send_close_stream()

    messages = stream_with_sdk(
        dg, ev.to_pcm(np.concatenate([lead, first[: int(len(first) * 0.98)]])), after=finalize_then_more
    )
    done = finals(messages)
    boundary = (len(lead) + len(first)) / SAMPLE_RATE
    before = [r for r in done if r.start < boundary]
    assert ev.wer(librispeech[4].reference, text_of(before)) < 0.2, text_of(done)
    flushed = [r for r in done if r.from_finalize]
    assert flushed and flushed == before[-len(flushed) :], "Finalize flushes the speech it interrupted"
    assert flushed[-1].start + flushed[-1].duration > boundary - 1.5
    later = [r for r in done if r.start >= boundary]
    assert ev.wer(librispeech[5].reference, text_of(later)) < 0.2, "audio after Finalize and KeepAlive"
    assert kind(messages[-1]) == "Metadata"


def test_live_idle_stream_is_closed_with_a_reason_after_what_was_said(server, librispeech, monkeypatch):
    monkeypatch.setattr(live, "IDLE_TIMEOUT", 2.0)
    clip = librispeech[2]
    pcm = ev.to_pcm(decode_audio(str(clip.path)))

    async def run():
        url = server.http_url.replace("http", "ws") + "/v1/listen?encoding=linear16&sample_rate=16000"
        async with websockets.connect(url) as ws:
            await ws.recv()
            for pos in range(0, len(pcm), 6400):  # fast, then silence on the wire
                await ws.send(pcm[pos : pos + 6400])
            received = []
            with contextlib.suppress(websockets.exceptions.ConnectionClosedError):  # closed with 1011
                async for message in ws:
                    received.append(json.loads(message))
            return received, ws.close_code, ws.close_reason

    received, code, reason = asyncio.run(run())
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in received if m.get("is_final"))
    assert ev.wer(clip.reference, text) < 0.2, "what was said arrives before the close"
    assert received[-1]["type"] == "Metadata"
    assert code == 1011 and "NET-0001" in reason


def test_live_reference_example_with_raw_websockets(server, tmp_path):
    """The reference's Python example: token and model in the query, the first message's
    request_id, a WAV file's bytes 8000 at a time every 0.25 s, CloseStream, then results."""
    wav = ffmpeg(JFK, tmp_path / "jfk.wav", "-ac", "1", "-ar", "16000")

    async def stream_file(file_path: Path, token: str, model: str = "tiny.en") -> tuple[str, list[str]]:
        uri = server.http_url.replace("http", "ws") + f"/v1/listen?token={token}&model={model}"
        texts = []
        async with websockets.connect(uri) as ws:
            metadata = json.loads(await ws.recv())
            with open(file_path, "rb") as f:
                while chunk := f.read(8000):
                    await ws.send(chunk)
                    await asyncio.sleep(0.25)
            await ws.send(json.dumps({"type": "CloseStream"}))
            async for msg in ws:
                result = json.loads(msg)
                if result.get("type") == "Results":
                    text = result["channel"]["alternatives"][0]["transcript"]
                    if text.strip():
                        texts.append(text)
        return metadata["request_id"], texts

    request_id, texts = asyncio.run(stream_file(wav, "YOUR_API_KEY"))
    assert request_id and ev.wer(JFK_TEXT, " ".join(texts)) < 0.15, texts


@pytest.mark.parametrize("suffix", ["webm", "ogg"])
def test_live_browser_opus_container_is_decoded_as_it_arrives(server, tmp_path, suffix):
    """MediaRecorder's WebM/Ogg Opus, sent in pieces at real-time pace without an encoding."""
    path = ffmpeg(JFK, tmp_path / f"jfk.{suffix}", "-c:a", "libopus", "-b:a", "32k")
    data = path.read_bytes()
    pieces = 44  # 0.25 s of audio a piece, as MediaRecorder.start(250) would send

    async def run():
        url = server.http_url.replace("http", "ws") + "/v1/listen?interim_results=true&punctuate=true"
        async with websockets.connect(url) as ws:
            await ws.recv()
            step = -(-len(data) // pieces)
            for pos in range(0, len(data), step):
                await ws.send(data[pos : pos + step])
                await asyncio.sleep(0.25)
            await ws.send(json.dumps({"type": "CloseStream"}))
            return [json.loads(m) async for m in ws]

    messages = asyncio.run(run())
    results = [m for m in messages if m["type"] == "Results"]
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in results if m["is_final"])
    assert ev.wer(JFK_TEXT, text) < 0.15, text
    assert any(not m["is_final"] for m in results), "interim results while the audio was arriving"


def test_live_bad_inputs_get_errors_and_leave_other_streams_alone(dg, server, conversation):
    """A healthy stream runs while other clients send a bad encoding, an unknown model and
    garbage bytes; each gets a Deepgram-shaped refusal and the healthy stream is intact."""
    healthy: list = []
    thread = threading.Thread(
        target=lambda: healthy.extend(stream_with_sdk(dg, ev.to_pcm(conversation.audio))), daemon=True
    )
    thread.start()
    time.sleep(2.0)
    base = server.http_url.replace("http", "ws") + "/v1/listen"
    for query, status in [
        ("?encoding=speex&sample_rate=8000", 400),
        ("?model=nova-3", 400),
        ("?channels=99", 400),
    ]:
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            asyncio.run(_handshake(base + query))
        assert refused.value.response.status_code == status
        assert json.loads(refused.value.response.body)["err_code"]
    for params, body in [({}, b"\x00garbage" * 500), ({"start": "60000"}, JFK.read_bytes())]:
        assert listen(server, body, **params).json()["err_code"] in ("INVALID_AUDIO", "INVALID_REQUEST")
    # deepgram-sdk 7.17's sync client lets websockets' own InvalidStatus through (it converts
    # only the legacy InvalidStatusCode into its ApiError): either way, a 400.
    with (
        pytest.raises((ApiError, websockets.exceptions.InvalidStatus)) as sdk_refused,
        dg.listen.v1.connect(model="nova-3"),
    ):
        pass
    error = sdk_refused.value
    assert (error.status_code if isinstance(error, ApiError) else error.response.status_code) == 400

    async def garbage():
        async with websockets.connect(base) as ws:  # no encoding: a container is expected
            await ws.recv()
            await ws.send(b"\x07\x01 not a container " * 4000)
            messages = []
            with contextlib.suppress(websockets.exceptions.ConnectionClosedError):  # closed with 1008
                async for message in ws:
                    messages.append(json.loads(message))
            return messages, ws.close_code

    messages, code = asyncio.run(garbage())
    assert any(m["type"] == "Error" for m in messages) and code == 1008
    thread.join(120)
    assert ev.wer(conversation.reference, text_of(finals(healthy))) < 0.15
    assert kind(healthy[-1]) == "Metadata"
    assert server.call(_streams_left(server)) == 0, "every stream was released"


async def _streams_left(server) -> int:
    return len(server.server.streams.clients)


async def _handshake(url: str) -> None:
    async with websockets.connect(url):
        pass


def test_live_streams_share_admission_with_the_whisperlive_face(server, librispeech):
    """max_clients counts streams of both faces: when full, /v1/listen answers 429 and a
    WhisperLive client WAIT."""
    pcm = ev.to_pcm(decode_audio(str(librispeech[0].path)))

    async def run():
        url = server.http_url.replace("http", "ws") + "/v1/listen?encoding=linear16&sample_rate=16000"
        async with websockets.connect(url) as first:
            await first.recv()
            await first.send(pcm[:32000])
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                await _handshake(url)
            waited = await ev.stream(server.ws_url, np.zeros(SAMPLE_RATE, np.float32), timeout=10)
            await first.send(json.dumps({"type": "CloseStream"}))
            async for _ in first:
                pass
        return refused.value.response, waited

    with server.configured(max_clients=1):
        response, waited = asyncio.run(run())
    assert response.status_code == 429 and json.loads(response.body)["err_code"] == "TOO_MANY_REQUESTS"
    assert waited.status("WAIT") is not None
