"""Each system's clients as they ship, against its own base URL on the real server (issue 24).

WhisperKit's clients (``../shared/clients/whisperkit/SOURCE.md``) are reproduced request for
request with only the server address changed to ``/whisperkit``; a WhisperX-style script
posts WhisperX's field names and nothing else to ``/whisperx``; Deepgram bodies come without
a usable Content-Type. Real speech and the bundled models throughout; texts are judged by
WER, logprobs against the tokens the model decoded, VTT by webvtt-py.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from dataclasses import replace

import pytest
import requests
import webvtt
from harness import evaluation
from openai import NotFoundError, OpenAI

AUDIO = evaluation.audio_root()
JFK = AUDIO / "jfk" / "jfk.flac"
JFK_TEXT = evaluation.manifest("jfk")[0].reference
LJ = {u.id: u for u in evaluation.manifest("ljspeech")}
NUMBERS = LJ["LJ001-0007"]  # "... forty-two line Bible of about fourteen fifty-five ..."
SPANISH = AUDIO / "multilingual" / "picovoice_test_es.wav"
SPANISH_IN_ENGLISH = "The sands are whitish, of medium grain, and have very little assistance."
EOT = 50257  # token ids at and above this are Whisper's special and timestamp tokens
MODEL_HEADER = "Whisper-Live-Model"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def whisperkit(server) -> str:
    """What WhisperKit's Python client is given as --server: everything else is its own."""
    return server.http_url + "/whisperkit"


def text_tokens(segments: list[dict]) -> list[int]:
    return [t for s in segments for t in s["tokens"] if t < EOT]


# ----------------------------------------------------------------------------- WhisperKit


def test_whisperkit_connection_test(server):
    """whisperkit_client.py's test_connection: the OpenAI SDK, model tiny, 4 bytes as test.wav;
    any answer without an exception is success."""
    client = OpenAI(base_url=whisperkit(server) + "/v1", api_key="dummy-key", max_retries=0, timeout=300)
    response = client.audio.transcriptions.with_raw_response.create(
        model="tiny", file=("test.wav", b"test", "audio/wav"), language="en"
    )
    assert response.http_request.url.path == "/whisperkit/v1/audio/transcriptions"
    body = response.parse()
    assert body.text == ""  # no speech in 4 bytes, and no error either
    # The same 4 bytes on OpenAI's own path are still a clear error (not audio).
    plain = OpenAI(base_url=server.http_url + "/v1", api_key="x", max_retries=0, timeout=300)
    with pytest.raises(Exception, match="(?i)audio"):
        plain.audio.transcriptions.create(model="whisper-1", file=("test.wav", b"test", "audio/wav"))


def test_whisperkit_transcribe_verbose_json_by_default_with_comma_joined_granularities(server):
    """_transcribe_non_streaming: file, model tiny, response_format, language, and the
    granularities as ONE field holding "word,segment"; then it reads what it prints."""
    with open(JFK, "rb") as audio_file:
        response = requests.post(
            whisperkit(server) + "/v1/audio/transcriptions",
            files={"file": audio_file},
            data={
                "model": "tiny",
                "response_format": "verbose_json",
                "language": "en",
                "timestamp_granularities[]": "word,segment",
            },
            timeout=300,
        )
    assert response.status_code == 200, response.text
    result = response.json()
    assert evaluation.wer(JFK_TEXT, result["text"]) < 0.15
    assert result["language"] == "en" and 10 < result["duration"] < 12
    assert result["segments"] and all(
        {"start", "end", "text", "avg_logprob"} <= set(s) for s in result["segments"]
    )
    words = result["words"]
    assert len(words) >= 20 and all({"start", "end", "word"} <= set(w) for w in words)
    assert evaluation.wer(JFK_TEXT, " ".join(w["word"] for w in words)) < 0.15
    # tiny is an alias: the answer says which model served it.
    assert response.headers[MODEL_HEADER] == result["model"] == "base"
    # Without response_format WhisperKit's server answers verbose_json; so does its prefix
    # (OpenAI's own path keeps json).
    with open(JFK, "rb") as audio_file:
        bare = requests.post(
            whisperkit(server) + "/v1/audio/transcriptions",
            files={"file": audio_file},
            data={"model": "tiny"},
            timeout=300,
        ).json()
    assert {"task", "language", "duration", "segments"} <= set(bare)
    with open(JFK, "rb") as audio_file:
        openai_json = requests.post(
            server.http_url + "/v1/audio/transcriptions", files={"file": audio_file}, data={}, timeout=300
        ).json()
    assert "segments" not in openai_json and openai_json["model"] == "tiny.en"


def test_whisperkit_logprobs_one_per_decoded_token(server):
    """include[]=logprobs (the client sends it as include[]): one entry per text token the
    model decoded (not per word), each a text piece whose concatenation is the text."""
    with open(JFK, "rb") as audio_file:
        response = requests.post(
            whisperkit(server) + "/v1/audio/transcriptions",
            files={"file": audio_file},
            data={"model": "tiny", "response_format": "verbose_json", "include[]": "logprobs"},
            timeout=300,
        )
    assert response.status_code == 200, response.text
    result = response.json()
    logprobs, tokens = result["logprobs"], text_tokens(result["segments"])
    assert len(logprobs) == len(tokens) > len(result["text"].split())  # tokens, not words
    assert all(
        lp["logprob"] <= 0 and bytes(lp["bytes"]).decode("utf-8", "replace") == lp["token"] for lp in logprobs
    )
    assert "".join(lp["token"] for lp in logprobs).strip() == result["text"]
    # The same count through OpenAI's path with OpenAI's SDK (json), and its model's tokenizer.
    client = OpenAI(base_url=server.http_url + "/v1", api_key="x", max_retries=0, timeout=300)
    with open(JFK, "rb") as f:
        verbose = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="verbose_json"
        )
    with open(JFK, "rb") as f:
        sdk = client.audio.transcriptions.create(file=f, model="whisper-1", include=["logprobs"])
    assert len(sdk.logprobs) == len([t for s in verbose.segments for t in s.tokens if t < EOT])
    assert "".join(lp.token for lp in sdk.logprobs).strip() == sdk.text


def test_whisperkit_curl_script(server):
    """transcribe.sh's curl command, field for field (its defaults, --logprobs and
    --timestamp-granularities word,segment), with the address changed."""
    command = [
        "curl", "-s", "-S", "-X", "POST", whisperkit(server) + "/v1/audio/transcriptions",
        "-F", f"file=@{JFK}",
        "-F", "model=tiny",
        "-F", "response_format=verbose_json",
        "-F", "timestamp_granularities[]=word,segment",
        "-F", "temperature=0.0",
        "-F", "stream=false",
        "-F", "include[]=logprobs",
        "-F", "language=en",
    ]  # fmt: skip
    result = json.loads(subprocess.run(command, capture_output=True, check=True, timeout=300).stdout)
    assert evaluation.wer(JFK_TEXT, result["text"]) < 0.15 and result["words"] and result["segments"]
    assert len(result["logprobs"]) == len(text_tokens(result["segments"]))


def sse_events(response: requests.Response) -> list[dict]:
    """The client's own parsing: lines starting with "data: ", each one JSON event."""
    events = []
    for line in response.iter_lines():
        if line and line.decode("utf-8").startswith("data: "):
            events.append(json.loads(line.decode("utf-8")[6:]))
    return events


def test_whisperkit_streaming_with_logprobs_on_every_delta(server):
    """_transcribe_streaming: stream=true, Accept: text/event-stream, deltas appended, the
    done event's text taken; with include[]=logprobs each delta carries its tokens'."""
    utterance = LJ["LJ001-0007"]
    with open(utterance.path, "rb") as audio_file:
        response = requests.post(
            whisperkit(server) + "/v1/audio/transcriptions",
            files={"file": audio_file},
            data={
                "model": "tiny",
                "response_format": "verbose_json",
                "stream": "true",
                "timestamp_granularities[]": "word,segment",
                "include[]": "logprobs",
            },
            headers={"Accept": "text/event-stream"},
            stream=True,
            timeout=300,
        )
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(response)
    deltas = [e for e in events if e.get("type") == "transcript.text.delta"]
    done = events[-1]
    assert deltas and done["type"] == "transcript.text.done"
    final_text = ""
    for delta in deltas:
        final_text += re.sub(r"\s+", " ", re.sub(r"<\|[^>]+\|>", "", delta["delta"])).strip()
        assert (
            delta["logprobs"]
            and "".join(lp["token"] for lp in delta["logprobs"]).strip() == delta["delta"].strip()
        )
    assert evaluation.wer(utterance.reference, done["text"]) < 0.3 and final_text
    assert len(done["logprobs"]) == sum(len(d["logprobs"]) for d in deltas)
    assert response.headers[MODEL_HEADER] == "base"


def test_whisperkit_translation(server):
    """translate(): file, model tiny, response_format; tiny's alias is multilingual, so it
    translates as WhisperKit's tiny would."""
    with open(SPANISH, "rb") as audio_file:
        response = requests.post(
            whisperkit(server) + "/v1/audio/translations",
            files={"file": audio_file},
            data={"model": "tiny", "response_format": "verbose_json"},
            timeout=300,
        )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["task"] == "translate" and result["segments"]
    assert evaluation.wer(SPANISH_IN_ENGLISH, result["text"]) < 0.5, result["text"]


def test_unknown_model_is_a_404_listing_names_and_aliases(server):
    client = OpenAI(base_url=whisperkit(server) + "/v1", api_key="x", max_retries=0, timeout=300)
    with pytest.raises(NotFoundError) as missing, open(JFK, "rb") as f:
        client.audio.transcriptions.create(model="large-v9", file=f)
    message = missing.value.body["message"]
    assert "large-v9" in message and "tiny.en" in message and "tiny" in message.split("tiny.en", 1)[1]
    listing = requests.get(server.http_url + "/whisperkit/v1/models", timeout=60).json()
    assert listing["aliases"]["tiny"] == "base" and listing["aliases"]["whisper-1"] == "tiny.en"
    assert {m["id"] for m in listing["data"]} >= {"tiny.en", "base"}


# ----------------------------------------------------------------------------- WhisperX


def whisperx_post(server, audio, **fields) -> requests.Response:
    """A WhisperX user's script: its field names, no extras, base URL .../whisperx."""
    with open(audio, "rb") as f:
        return requests.post(
            server.http_url + "/whisperx/v1/audio/transcriptions",
            files={"file": (audio.name, f)},
            data={"model": "whisper-1", **fields},
            timeout=300,
        )


def test_whisperx_defaults_on_its_prefix(server):
    """suppress_numerals and align default to true there: numbers spelled out, word timings
    in the segments; stream=true is accepted and answered as one JSON body."""
    spelled = whisperx_post(server, NUMBERS.path)
    assert spelled.status_code == 200, spelled.text
    assert not re.search(r"\d", spelled.json()["text"]) and "fourteen" in spelled.json()["text"].lower()
    assert evaluation.wer(NUMBERS.reference, spelled.json()["text"]) < 0.25
    digits = requests.post(  # the same file on OpenAI's path keeps OpenAI's default
        server.http_url + "/v1/audio/transcriptions",
        files={"file": (NUMBERS.path.name, NUMBERS.path.read_bytes())},
        data={"model": "whisper-1"},
        timeout=300,
    ).json()["text"]
    assert re.search(r"\d", digits), digits
    verbose = whisperx_post(server, JFK, response_format="verbose_json", stream="true")
    assert verbose.headers["Content-Type"].startswith("application/json")
    segments = verbose.json()["segments"]
    assert segments and all(s["words"] for s in segments)  # align: word timings
    assert evaluation.wer(JFK_TEXT, " ".join(w["word"] for s in segments for w in s["words"])) < 0.15
    # Explicit values still win, and errors are FastAPI's shape on this prefix.
    off = whisperx_post(server, JFK, response_format="verbose_json", align="false", suppress_numerals="false")
    assert "words" not in off.json()["segments"][0]
    bad = whisperx_post(server, JFK, response_format="xml")
    assert bad.status_code == 400 and "response_format" in bad.json()["detail"]
    assert requests.get(server.http_url + "/whisperx/healthcheck", timeout=10).json() == {"status": "healthy"}


def test_highlight_words_vtt_keeps_its_markup(server):
    """highlight_words in VTT: real <u> cue markup (webvtt-py parses it as such), not escaped
    tags; the word inside each <u> is what was said."""
    response = whisperx_post(server, JFK, response_format="vtt", highlight_words="true")
    assert response.status_code == 200 and "&lt;u&gt;" not in response.text
    captions = webvtt.from_string(response.text).captions
    underlined = [re.findall(r"<u>(.*?)</u>", c.raw_text) for c in captions]
    assert all(len(u) <= 1 for u in underlined) and sum(len(u) for u in underlined) >= 20
    assert evaluation.wer(JFK_TEXT, " ".join(u[0] for u in underlined if u)) < 0.15
    assert all("<u>" not in c.text for c in captions)  # webvtt-py strips real tags from .text


# ----------------------------------------------------------------------------- Deepgram


def raw_post(url: str, body: bytes, content_type: str | None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST")
    if content_type is None:
        request.remove_header("Content-type")
    else:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_deepgram_sniffs_bodies_without_an_audio_type(server, content_type):
    """curl --data-binary sends form-urlencoded; http.client sends none: both are audio."""
    status, body = raw_post(server.http_url + "/v1/listen?punctuate=true", JFK.read_bytes(), content_type)
    assert status == 200, body
    transcript = body["results"]["channels"][0]["alternatives"][0]["transcript"]
    assert evaluation.wer(JFK_TEXT, transcript) < 0.15
    status, body = raw_post(server.http_url + "/v1/listen", b"this is not audio at all" * 40, content_type)
    assert status == 400 and body["err_code"] == "INVALID_AUDIO", body
    # curl -d '{"url": ...}' without -H: still a URL request (here a loopback one, refused).
    status, body = raw_post(
        server.http_url + "/v1/listen", b'{"url": "http://127.0.0.1/a.wav"}', content_type
    )
    assert status == 400 and "loopback" in body["err_msg"], body


# ----------------------------------------------------------------------------- API docs


def test_openapi_lists_every_faces_paths_tagged(server):
    spec = requests.get(server.http_url + "/openapi.json", timeout=10).json()
    paths = spec["paths"]
    for path in (
        "/v1/audio/transcriptions",
        "/whisperkit/v1/audio/transcriptions",
        "/whisperx/v1/audio/transcriptions",
        "/whisperx/healthcheck",
        "/transcribe",
        "/transcribe/raw",
        "/v1/listen",
        "/ping",
        "/v1/realtime",
        "/v1/realtime/client_secrets",
        "/healthcheck",
    ):
        assert path in paths, path
    tags = {tag for ops in paths.values() for op in ops.values() for tag in op["tags"]}
    assert tags == {
        "OpenAI",
        "WhisperKit",
        "WhisperX",
        "Transcriber",
        "Deepgram",
        "Realtime",
        "Captions",
        "Server",
    }
    form = paths["/whisperkit/v1/audio/transcriptions"]["post"]["requestBody"]["content"][
        "multipart/form-data"
    ]
    assert form["schema"]["properties"]["response_format"]["default"] == "verbose_json"
    x_form = paths["/whisperx/v1/audio/transcriptions"]["post"]["requestBody"]["content"][
        "multipart/form-data"
    ]
    assert x_form["schema"]["properties"]["suppress_numerals"]["default"] is True
    # Every path the server routes is documented, but for the pages (the page, its captions
    # view) and the WebSocket.
    routed = {
        r.resource.canonical
        for r in server.server.app.router.routes()
        if r.resource is not None
        and r.method != "HEAD"
        and not r.resource.canonical.startswith(("/client", "/docs/"))
    }
    routed = {re.sub(r"\{model.*\}", "{model}", p) for p in routed}
    assert routed - set(paths) <= {"/", "/captions", "/ws"}, routed - set(paths)
    from openapi_spec_validator import validate

    validate(spec)


def test_docs_pages_are_swagger_ui_and_redoc_served_offline(server):
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = requests.get(server.http_url + page, timeout=10).text
        assert "/openapi.json" in html and "https://" not in html and "http://" not in html
        src = re.search(r'<script src="([^"]+)"', html).group(1)
        assert src.endswith(asset)
        script = requests.get(server.http_url + src, timeout=10)
        assert script.status_code == 200 and len(script.content) > 100_000


def test_public_docs_open_without_a_key(server, api_keys):
    """--public-docs: the docs answer without a key; every other route still wants one."""
    from aiohttp import web

    from whisper_live.faces.http.app import create_app
    from whisper_live.gate.gate import Gate
    from whisper_live.gate.keys import KeyStore
    from whisper_live.server import HTTP_FACES

    settings = replace(server.settings, public_docs=True)
    gate = Gate(KeyStore(api_keys.path))
    app = create_app(server.server.pool, server.server.admission, settings, gate, faces=HTTP_FACES)

    async def start():
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    runner, port = server.call(start())
    try:
        base = f"http://127.0.0.1:{port}"
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-dist/swagger-ui.css"):
            assert requests.get(base + path, timeout=10).status_code == 200, path
        assert requests.get(base + "/v1/models", timeout=10).status_code == 401
        keyed = requests.get(
            base + "/v1/models", headers={"Authorization": f"Bearer {api_keys.alice}"}, timeout=60
        )
        assert keyed.status_code == 200
    finally:
        server.call(runner.cleanup())
