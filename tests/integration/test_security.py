"""API keys, per-key limits, origins, CORS, TLS, metrics and logs, over real sockets with the
clients people use (OpenAI's SDK, websockets, urllib, a raw socket) and the real model.

The server here (``secured_server``) requires keys; the shared ``server`` stays open. TLS
gets a server of its own with a certificate made in the test.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import httpx
import openai
import pytest
import websockets
from harness import certificates, evaluation
from harness.server_thread import ServerThread, free_port
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus

from whisper_live.media import decode_audio
from whisper_live.settings import ServerSettings

AUDIO = evaluation.audio_root()
JFK = AUDIO / "jfk" / "jfk.flac"
JFK_TEXT = evaluation.manifest("jfk")[0].reference
SONNET = AUDIO / "longform" / "shakespeare_sonnet001_librivox.mp3"


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def fetch(
    url: str, headers: dict | None = None, method: str = "GET", context=None
) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request, errors included."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def sdk(server: ServerThread, key: str, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.http_url + "/v1", api_key=key, max_retries=0, timeout=300, **kwargs)


def handshake(url: str, **connect) -> tuple[str | None, dict]:
    """Open a stream; (the subprotocol the server chose, its first message)."""

    async def run():
        async with websockets.connect(url, open_timeout=30, **connect) as ws:
            await ws.send(json.dumps({"uid": "handshake", "language": "en"}))
            first = json.loads(await asyncio.wait_for(ws.recv(), 60))
            return ws.subprotocol, first

    return asyncio.run(run())


def refusal(url: str, **connect) -> tuple[int, str]:
    """The HTTP status and body of a refused WebSocket handshake."""
    with pytest.raises(InvalidStatus) as refused:
        handshake(url, **connect)
    response = refused.value.response
    return response.status_code, response.body.decode()


# The WhisperLive face on its own port and at /ws on the HTTP port: the same checks on both.
TRANSPORTS = pytest.mark.parametrize("transport", ["own port", "http /ws"])


def ws_url(server: ServerThread, transport: str, query: str = "") -> str:
    if transport == "own port":
        return server.ws_url + (f"/?{query}" if query else "")
    return server.ws_http_url + (f"?{query}" if query else "")


def scrape(server: ServerThread, key: str) -> dict[tuple, float]:
    """/metrics parsed by prometheus-client's own parser: {(sample name, labels): value}."""
    status, headers, body = fetch(server.http_url + "/metrics", bearer(key))
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


# ----------------------------------------------------------------------------- REST


def test_openai_sdk_with_and_without_a_key(secured_server, api_keys):
    text = sdk(secured_server, api_keys.alice).audio.transcriptions.create(
        model="whisper-1", file=JFK.open("rb"), response_format="text"
    )
    assert evaluation.wer(JFK_TEXT, text) < 0.15, text
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk(secured_server, "sk-not-a-key").audio.transcriptions.create(
            model="whisper-1", file=JFK.open("rb")
        )
    assert refused.value.status_code == 401
    assert refused.value.body["code"] == "unauthorized" and "not valid" in refused.value.body["message"]
    # No key at all: OpenAI's envelope, saying where a key goes.
    status, _, body = fetch(secured_server.http_url + "/v1/models")
    error = json.loads(body)["error"]
    assert status == 401 and error["type"] == "invalid_request_error" and "Bearer" in error["message"]
    # Deepgram's scheme and the query string work as well as OpenAI's bearer token.
    for url, headers in (
        ("/v1/models", {"Authorization": f"Token {api_keys.alice}"}),
        (f"/v1/models?token={api_keys.alice}", {}),
    ):
        status, _, body = fetch(secured_server.http_url + url, headers)
        assert status == 200 and json.loads(body)["object"] == "list"


def test_what_stays_open_without_a_key(secured_server, api_keys):
    base = secured_server.http_url
    for path in ("/health", "/ready", "/", "/client/app.js"):
        assert fetch(base + path)[0] == 200, path
    for path in ("/status", "/metrics", "/docs", "/openapi.json", "/nowhere"):
        assert fetch(base + path)[0] == 401, path
        assert fetch(base + path, bearer(api_keys.alice))[0] == (404 if path == "/nowhere" else 200), path


def test_refused_before_the_body_is_read(secured_server):
    """A 50 MB upload announced without a key is answered at once: nothing waits for the body."""
    host, port = "127.0.0.1", secured_server.server.http_port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 50000000\r\n\r\n"
        )
        started = time.monotonic()
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 401"), answer
    assert time.monotonic() - started < 5


def test_revoked_key_is_refused_without_a_restart(secured_server, api_keys):
    secret = api_keys.store.create("doomed")
    assert sdk(secured_server, secret).models.list().data
    assert handshake(secured_server.ws_url, additional_headers=bearer(secret))[1]["message"] == "SERVER_READY"
    revoked = subprocess.run(
        [
            sys.executable,
            "-m",
            "whisper_live.server",
            "keys",
            "--keys-file",
            str(api_keys.path),
            "revoke",
            "doomed",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert revoked.returncode == 0, revoked.stderr
    with pytest.raises(openai.AuthenticationError):
        sdk(secured_server, secret).models.list()
    assert refusal(secured_server.ws_url, additional_headers=bearer(secret))[0] == 401
    assert sdk(secured_server, api_keys.alice).models.list().data  # the others still work


# ----------------------------------------------------------------------------- WebSocket


@TRANSPORTS
def test_websocket_key_in_header_query_or_subprotocols(secured_server, api_keys, librispeech, transport):
    key = api_keys.alice
    url = ws_url(secured_server, transport)
    assert handshake(url, additional_headers=bearer(key)) == (
        None,
        {"uid": "handshake", "message": "SERVER_READY", "backend": "faster_whisper", "model": "tiny.en"},
    )
    assert handshake(ws_url(secured_server, transport, f"token={key}"))[1]["message"] == "SERVER_READY"
    # Browsers: the key as the second subprotocol; the server must answer "token".
    clip = min(librispeech, key=lambda u: u.path.stat().st_size)
    trace = asyncio.run(
        evaluation.stream(
            url,
            decode_audio(str(clip.path)),
            speed=0,
            connect={"subprotocols": ["token", key]},
        )
    )
    assert trace.messages[0]["message"] == "SERVER_READY" and trace.close_code == 1000
    assert evaluation.wer(clip.reference, trace.transcript) < 0.3, trace.transcript
    # Missing, wrong: HTTP 401 before any upgrade, saying why.
    assert handshake(url, subprotocols=["token", key])[0] == "token"  # a browser drops it otherwise
    status, body = refusal(url)
    assert status == 401 and "API key is required" in body
    for connect in ({"additional_headers": bearer("wl_wrong")}, {"subprotocols": ["token", "wl_wrong"]}):
        status, body = refusal(url, **connect)
        assert status == 401 and "not valid" in body


def test_per_key_limits_on_streams_and_uploads(secured_server, api_keys):
    key = api_keys.limited

    async def two_streams():
        async with websockets.connect(secured_server.ws_url, additional_headers=bearer(key)) as first:
            await first.send(json.dumps({"uid": "first"}))
            assert json.loads(await first.recv())["message"] == "SERVER_READY"
            # on the other transport: the limit is the key's, whichever port its streams use
            async with websockets.connect(
                secured_server.ws_http_url, additional_headers=bearer(key)
            ) as second:
                await second.send(json.dumps({"uid": "second"}))
                refused = json.loads(await second.recv())
                await second.wait_closed()
                return refused, second.close_code

    refused, code = asyncio.run(two_streams())
    assert refused["status"] == "ERROR" and "limit is 1" in refused["message"] and code == 1008
    # The first stream's slot is free again once it closed.
    assert handshake(secured_server.ws_url, additional_headers=bearer(key))[1]["message"] == "SERVER_READY"

    results: dict = {}

    def long_upload():
        results["text"] = sdk(secured_server, key).audio.transcriptions.create(
            model="whisper-1", file=SONNET.open("rb"), response_format="text"
        )

    worker = threading.Thread(target=long_upload)
    worker.start()
    deadline = time.monotonic() + 60
    while not json.loads(fetch(secured_server.http_url + "/status", bearer(api_keys.alice))[2])["uploads"][
        "jobs"
    ]:
        assert time.monotonic() < deadline and worker.is_alive(), "the first upload never started"
        time.sleep(0.05)
    with pytest.raises(openai.RateLimitError) as limited:
        sdk(secured_server, key).audio.transcriptions.create(model="whisper-1", file=JFK.open("rb"))
    assert limited.value.body["code"] == "limit_reached"
    # Another key is not held back by this one's limit.
    assert sdk(secured_server, api_keys.alice).models.list().data
    worker.join(300)
    assert "beauteous" in results["text"].lower() or "increase" in results["text"].lower(), results


# ----------------------------------------------------------------------------- origins


def test_browser_origins_on_both_ports(secured_server, api_keys):
    key = bearer(api_keys.alice)
    own_page = f"http://127.0.0.1:{secured_server.server.http_port}"
    for url in (secured_server.ws_url, secured_server.ws_http_url):
        for origin in (None, own_page, "https://app.example"):
            connect = {"additional_headers": key} | ({"origin": origin} if origin else {})
            assert handshake(url, **connect)[1]["message"] == "SERVER_READY", (url, origin)
        status, body = refusal(url, additional_headers=key, origin="https://evil.example")
        assert status == 403 and "--cors-origins" in body, url
    # /ws without an upgrade: says what it is (after the same key check as an upgrade)
    assert fetch(secured_server.ws_http_url.replace("ws://", "http://"))[0] == 401
    assert fetch(secured_server.ws_http_url.replace("ws://", "http://"), key)[0] == 426
    # REST: preflights answered for allowed origins only, and the answers carry CORS headers.
    url = secured_server.http_url + "/v1/audio/transcriptions"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    status, headers, _ = fetch(url, {"Origin": "https://app.example", **preflight}, "OPTIONS")
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "authorization" in headers["Access-Control-Allow-Headers"].lower()
    assert fetch(url, {"Origin": "https://evil.example", **preflight}, "OPTIONS")[0] == 403
    status, headers, _ = fetch(
        secured_server.http_url + "/v1/models", {"Origin": "https://app.example", **key}
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    status, headers, body = fetch(
        secured_server.http_url + "/v1/models", {"Origin": "https://evil.example", **key}
    )
    assert status == 403 and json.loads(body)["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in headers


# ----------------------------------------------------------------------------- metrics and logs


@TRANSPORTS
def test_metrics_during_a_real_stream_and_its_log_line(
    secured_server, api_keys, librispeech, caplog, transport
):
    url = ws_url(secured_server, transport)
    caplog.set_level(logging.INFO, logger="whisper_live")
    conv = evaluation.conversation(sorted(librispeech, key=lambda u: u.path.stat().st_size)[4:6], gap=1.5)
    before = scrape(secured_server, api_keys.alice)
    finals = ("whisper_live_final_latency_seconds_count", (("face", "whisperlive"),))
    ended = ("whisper_live_streams_ended_total", (("face", "whisperlive"), ("how", "end of audio")))
    result: dict = {}
    streamer = threading.Thread(
        target=lambda: result.update(
            trace=asyncio.run(
                evaluation.stream(url, conv.audio, connect={"additional_headers": bearer(api_keys.alice)})
            )
        )
    )
    streamer.start()
    # Scrape while it runs, until its first final has been sent.
    deadline = time.monotonic() + 120
    while (live := scrape(secured_server, api_keys.alice)).get(finals, 0) <= before.get(finals, 0):
        assert time.monotonic() < deadline and streamer.is_alive(), "no final while streaming"
        time.sleep(0.2)
    assert live[("whisper_live_streams_open", ())] >= 1
    assert live[("whisper_live_streams_admitted_total", (("face", "whisperlive"),))] >= 1
    assert live[("whisper_live_audio_seconds_total", (("face", "whisperlive"),))] > 1.0
    assert live[("whisper_live_decode_seconds_count", (("priority", "final"),))] >= 1
    assert live[("whisper_live_models_loaded", (("model", "tiny.en"),))] == 1
    assert ("whisper_live_decode_queue_depth", (("priority", "final"),)) in live
    total = ("whisper_live_final_latency_seconds_sum", finals[1])
    latency = (live[total] - before.get(total, 0)) / (live[finals] - before.get(finals, 0))
    assert 0.0 < latency < 15.0, latency
    streamer.join(180)
    trace = result["trace"]
    assert evaluation.wer(conv.reference, trace.transcript) < 0.3, trace.transcript
    after = scrape(secured_server, api_keys.alice)
    assert after[ended] == before.get(ended, 0) + 1
    assert after[finals] >= before.get(finals, 0) + 2  # one final per utterance
    assert after[("whisper_live_streams_open", ())] == 0
    assert (
        after[
            (
                "whisper_live_http_requests_total",
                (("method", "GET"), ("route", "/metrics"), ("status", "200")),
            )
        ]
        >= 2
    )
    # A full server's WAIT is counted as a refusal.
    refused = ("whisper_live_streams_refused_total", (("face", "whisperlive"), ("reason", "wait")))
    with secured_server.configured(max_clients=0):
        assert handshake(url, additional_headers=bearer(api_keys.alice))[1]["status"] == "WAIT"
    assert scrape(secured_server, api_keys.alice)[refused] == after.get(refused, 0) + 1
    # One line for the stream, naming the key but never its secret.
    (line,) = [
        r
        for r in caplog.records
        if getattr(r, "event", None) == "stream ended" and r.fields["uid"] == trace.messages[0]["uid"]
    ]
    fields = line.fields
    assert fields["key"] == api_keys.label("alice") and fields["how"] == "end of audio"
    assert fields["model"] == "tiny.en" and fields["finals"] >= 2
    assert fields["audio_seconds"] == pytest.approx(len(conv.audio) / 16000, abs=0.2)
    assert fields["peer"].startswith("127.0.0.1:") and fields["seconds"] > 0
    assert all(api_keys.alice not in r.getMessage() for r in caplog.records)
    # And one for each REST request (scrapes only at debug level: they come every few seconds).
    assert sdk(secured_server, api_keys.alice).models.list().data
    (request,) = [r for r in caplog.records if getattr(r, "event", None) == "request"]
    assert request.fields["path"] == "/v1/models" and request.fields["status"] == 200
    assert request.fields["key"] == api_keys.label("alice")


# ----------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, api_keys):
    cert, key = certificates.self_signed(tmp_path_factory.mktemp("tls"))
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        http_port=free_port(),
        capacity_admission=False,
        keys_file=str(api_keys.path),
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    with ServerThread(settings) as running:
        yield running, cert


def test_tls_on_both_ports(tls_server, api_keys, librispeech):
    running, cert = tls_server
    trusted = ssl.create_default_context(cafile=cert)
    https = running.http_url.replace("http://", "https://")
    wss = running.ws_url.replace("ws://", "wss://")
    # ssl-module clients: urllib and websockets, verifying the certificate.
    assert fetch(https + "/health", context=trusted)[0] == 200
    with pytest.raises(urllib.error.URLError):  # not trusted without the certificate
        urllib.request.urlopen(https + "/health", timeout=30)
    clip = min(librispeech, key=lambda u: u.path.stat().st_size)
    trace = asyncio.run(
        evaluation.stream(
            wss,
            decode_audio(str(clip.path)),
            speed=0,
            connect={"ssl": trusted, "additional_headers": bearer(api_keys.alice)},
        )
    )
    assert evaluation.wer(clip.reference, trace.transcript) < 0.3, trace.transcript
    # OpenAI's SDK over https, trusting the certificate through its httpx client.
    client = openai.OpenAI(
        base_url=https + "/v1",
        api_key=api_keys.alice,
        max_retries=0,
        http_client=httpx.Client(verify=trusted),
    )
    text = client.audio.transcriptions.create(model="whisper-1", file=JFK.open("rb"), response_format="text")
    assert evaluation.wer(JFK_TEXT, text) < 0.15, text
    # Plain HTTP to the TLS port gets nowhere.
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(running.http_url + "/health", timeout=30)


def test_one_startup_warning_when_open_beyond_loopback(tmp_path, api_keys, caplog, monkeypatch):
    monkeypatch.delenv("WHISPER_LIVE_API_KEY", raising=False)
    caplog.set_level(logging.WARNING, logger="whisper_live")

    def warnings(host: str, keys_file) -> list[str]:
        caplog.clear()
        settings = ServerSettings(host=host, port=0, http_port=0, preload=False, keys_file=str(keys_file))
        with ServerThread(settings):
            pass
        return [r.getMessage() for r in caplog.records if "no API keys" in r.getMessage()]

    (warning,) = warnings("0.0.0.0", tmp_path / "no-keys.json")
    assert "keys create" in warning
    assert warnings("127.0.0.1", tmp_path / "no-keys.json") == []
    assert warnings("0.0.0.0", api_keys.path) == []


def test_revoking_the_last_key_keeps_the_server_closed_until_no_auth(tmp_path, caplog, monkeypatch):
    """Keys fail closed: with the only key revoked, neither it nor no key at all gets in, on
    either WebSocket transport or HTTP; only an explicit ``--no-auth`` opens the server, and
    the start-up line says which mode it runs in."""
    monkeypatch.delenv("WHISPER_LIVE_API_KEY", raising=False)
    monkeypatch.delenv("WHISPER_LIVE_NO_AUTH", raising=False)
    caplog.set_level(logging.INFO, logger="whisper_live")
    path = tmp_path / "keys.json"
    from whisper_live.gate.keys import KeyStore

    secret = KeyStore(path).create("only")
    settings = ServerSettings(
        host="127.0.0.1", port=0, http_port=free_port(), max_clients=2, keys_file=str(path)
    )
    with ServerThread(settings) as running:
        assert fetch(running.http_url + "/v1/models", bearer(secret))[0] == 200
        assert handshake(running.ws_url, additional_headers=bearer(secret))[1]["message"] == "SERVER_READY"
        revoked = subprocess.run(
            [sys.executable, "-m", "whisper_live.server", "keys", "--keys-file", str(path), "revoke", "only"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert revoked.returncode == 0, revoked.stderr
        for headers in (bearer(secret), {}):
            assert fetch(running.http_url + "/v1/models", headers)[0] == 401
            assert fetch(running.http_url + "/status", headers)[0] == 401
            with pytest.raises(openai.AuthenticationError):
                sdk(running, secret).audio.transcriptions.create(model="whisper-1", file=JFK.open("rb"))
            for transport in ("own port", "/ws"):
                assert refusal(ws_url(running, transport), additional_headers=headers)[0] == 401
        path.unlink()  # deleting the file opens the server only after a restart
        assert fetch(running.http_url + "/v1/models")[0] == 401
    started = [r.getMessage() for r in caplog.records if r.getMessage().startswith("listening")]
    assert "API keys required" in started[-1] and "0 usable keys" not in started[-1], started

    KeyStore(path).create("again")
    caplog.clear()
    opened = ServerSettings(
        host="127.0.0.1", port=0, http_port=free_port(), keys_file=str(path), no_auth=True
    )
    with ServerThread(opened) as running:
        assert fetch(running.http_url + "/v1/models")[0] == 200
        assert handshake(running.ws_url)[1]["message"] == "SERVER_READY"
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("listening") and "open: --no-auth" in m for m in messages), messages
    assert any("keys are ignored" in m for m in messages), messages
