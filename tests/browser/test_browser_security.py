"""The browser page against servers that require keys, check origins and speak TLS, in real
headless Chromium with the fake microphone of test_browser.py."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
import time
import urllib.request

import pytest
from harness import certificates, evaluation
from harness.server_thread import ServerThread, free_port
from prometheus_client.parser import text_string_to_metric_families
from test_browser import (  # noqa: F401  (fixtures)
    CHROMIUM,
    CLIENT,
    browser,
    chromium_args,
    completed_text,
    fake_microphone,
    open_page,
    state,
)

from whisper_live.settings import ServerSettings

pytestmark = pytest.mark.browser


def first_utterance_then_stop(page, conv) -> None:
    """Stream until the first utterance is final text on the page, then Stop and finish."""
    page.click("#start")
    page.wait_for_function("document.body.dataset.state === 'streaming'", timeout=60000)
    first = conv.utterances[0].reference
    deadline = time.monotonic() + 60
    while evaluation.wer(first, completed_text(page)) > 0.35:
        assert time.monotonic() < deadline, f"no completed segment for {first!r}: {completed_text(page)!r}"
        assert state(page) == "streaming", page.inner_text("#status")
        time.sleep(0.25)
    page.click("#stop")
    page.wait_for_function("document.body.dataset.state === 'done'", timeout=120000)


def test_page_with_an_api_key(secured_server, browser, fake_microphone, api_keys):  # noqa: F811
    _, conv = fake_microphone
    url = f"{secured_server.http_url}/?server={secured_server.ws_url}"
    with open_page(browser, url) as (page, errors):
        # Without a key the server refuses the handshake; the page says what may be wrong.
        page.click("#start")
        page.wait_for_function("document.body.dataset.state === 'error'", timeout=60000)
        assert "API key" in page.inner_text("#status")
        page.fill("#token", api_keys.alice)
        protocol = []
        page.on("websocket", lambda ws: protocol.append(ws.url))
        page.click("#start")
        page.wait_for_function("document.body.dataset.state === 'streaming'", timeout=60000)
        # The key went as the subprotocols "token, <key>" and the server chose "token".
        assert page.evaluate("window.whisperLive.stream.ws.protocol") == "token"
        assert api_keys.alice not in protocol[-1]  # not in the URL
        page.click("#stop")
        page.wait_for_function("document.body.dataset.state === 'done'", timeout=120000)
        assert page.is_enabled("#token")
        assert api_keys.alice not in page.evaluate("JSON.stringify(localStorage)")
        # Only the refusals: the keyless handshake and the page's /status (which needs a key here).
        assert all("WebSocket" in e or "401" in e for e in errors), errors


@contextlib.contextmanager
def foreign_site():
    """The same page served by another origin (http://localhost:<port>/client/index.html)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(CLIENT.parent))
    handler.log_message = lambda *args: None
    site = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()


def refused_for_origin(server: ServerThread, key: str) -> float:
    request = urllib.request.Request(server.http_url + "/metrics", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "whisper_live_streams_refused_total" and sample.labels.get("reason") == "origin"
    )


def test_cross_origin_page_is_refused_unless_allowed(secured_server, browser, fake_microphone, api_keys):  # noqa: F811
    _, conv = fake_microphone
    with foreign_site() as origin:
        url = f"{origin}/client/index.html?server={secured_server.ws_url}"
        before = refused_for_origin(secured_server, api_keys.alice)
        with open_page(browser, url) as (page, errors):
            page.fill("#token", api_keys.alice)  # a valid key does not make a foreign page welcome
            page.click("#start")
            page.wait_for_function("document.body.dataset.state === 'error'", timeout=60000)
            assert "Could not connect" in page.inner_text("#status")
        assert refused_for_origin(secured_server, api_keys.alice) == before + 1
        # Listed in --cors-origins, the same page streams.
        with (
            secured_server.configured(cors_origins=f"https://app.example,{origin}"),
            open_page(browser, url) as (page, errors),
        ):
            page.fill("#token", api_keys.alice)
            first_utterance_then_stop(page, conv)


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
        yield running


def test_page_over_https_and_wss(tls_server, browser, fake_microphone, api_keys):  # noqa: F811
    wav, conv = fake_microphone
    https = tls_server.http_url.replace("http://", "https://")
    wss = tls_server.ws_url.replace("ws://", "wss://")
    # A second Chromium from the same Playwright, told to accept the self-signed certificate.
    tls_browser = browser.browser_type.launch(
        executable_path=CHROMIUM, args=[*chromium_args(wav), "--ignore-certificate-errors"], timeout=60000
    )
    try:
        with open_page(tls_browser, f"{https}/?server={wss}") as (page, errors):
            assert page.evaluate("window.isSecureContext")
            assert page.input_value("#server") == wss
            page.fill("#token", api_keys.alice)
            first_utterance_then_stop(page, conv)
            assert evaluation.wer(conv.utterances[0].reference, completed_text(page)) <= 0.35
            assert all("401" in e for e in errors), errors  # the page's /status, which needs a key here
    finally:
        tls_browser.close()
