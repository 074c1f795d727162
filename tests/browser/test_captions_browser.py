"""The captions view of another client's stream, as OBS's browser source would show it:
headless Chromium renders ``/captions?stream=ID&token=T`` while a Python client streams
real speech over the WhisperLive face to the server that requires keys. The screenshot is
kept under test-artifacts/ (captions-stream.png)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.request

import pytest
from harness import evaluation
from test_browser import browser, completed_text, fake_microphone, open_page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium')", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the 'playwright' Python package is missing")

# Every line the page shows, as it shows it (the view keeps only the last `lines`).
WATCH_LINES_JS = """
() => {
  window.__shown = [];
  const box = document.getElementById("captions");
  new MutationObserver(() => {
    for (const p of box.querySelectorAll("p:not(.provisional)")) window.__shown.push(p.textContent);
  }).observe(box, { subtree: true, childList: true, characterData: true });
}
"""


def mint(base: str, stream_id: str, key: str) -> dict:
    """A viewer token as soon as the stream runs (404 until then)."""
    deadline = time.monotonic() + 60
    while True:
        request = urllib.request.Request(
            f"{base}/v1/streams/{stream_id}/viewer_tokens",
            data=b"{}",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            assert exc.code == 404 and time.monotonic() < deadline, exc.code
            time.sleep(0.1)


def test_captions_of_another_clients_stream(secured_server, api_keys, librispeech, artifacts):
    conv = evaluation.conversation(sorted(librispeech, key=lambda u: u.path.stat().st_size)[4:7], gap=1.5)
    stream_id = f"obs-{time.monotonic_ns()}"
    base = secured_server.http_url
    result: dict = {}
    streamer = threading.Thread(
        target=lambda: result.update(
            trace=asyncio.run(
                evaluation.stream(
                    secured_server.ws_url,
                    conv.audio,
                    {"uid": stream_id},
                    connect={"additional_headers": {"Authorization": f"Bearer {api_keys.alice}"}},
                )
            )
        )
    )
    streamer.start()
    try:
        minted = mint(base, stream_id, api_keys.alice)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"], timeout=60000
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 360})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"{base}{minted['url']}&lines=2&size=40&bg=00a000")
                page.evaluate(WATCH_LINES_JS)
                # completed lines on screen while the stream runs: the broadcast's picture
                page.wait_for_function(
                    "document.querySelectorAll('#captions p:not(.provisional)').length >= 1", timeout=120000
                )
                page.screenshot(path=str(artifacts / "captions-stream.png"))
                page.wait_for_function("window.whisperLiveCaptions.stream.ended !== null", timeout=180000)
                ended = page.evaluate("window.whisperLiveCaptions.stream.ended")
                shown = page.evaluate("window.__shown")
                last = page.locator("#captions p").all_inner_texts()
                page.screenshot(path=str(artifacts / "captions-stream-ended.png"))
                assert page.locator("#waiting").is_hidden()
            finally:
                browser.close()
    finally:
        streamer.join(180)
    assert not errors, errors
    assert ended == "end of audio"
    assert 1 <= len(last) <= 2, last  # lines=2
    transcript = result["trace"].transcript
    assert evaluation.wer(conv.reference, transcript) < 0.3, transcript
    # every completed line the page showed is the stream's own text
    seen = " ".join(dict.fromkeys(shown))
    words = evaluation.normalize(seen).split()
    known = set(evaluation.normalize(transcript).split())
    assert words and sum(w in known for w in words) >= 0.9 * len(words), (seen, transcript)
    # and together they cover most of what was said
    assert len(set(words) & known) >= 0.6 * len(known), (seen, transcript)


def test_the_page_shares_its_own_streams_captions(
    secured_server,
    api_keys,
    browser,  # noqa: F811
    fake_microphone,  # noqa: F811
    artifacts,
):
    """Share captions on the main page (with its API key) gives a /captions URL that another
    page (no key) follows until the stream stops."""
    _, conv = fake_microphone
    url = f"{secured_server.http_url}/?server={secured_server.ws_url}"
    with open_page(browser, url) as (page, errors):
        assert page.is_disabled("#share-captions")
        page.fill("#token", api_keys.alice)
        page.click("#start")
        page.wait_for_function("document.body.dataset.state === 'streaming'", timeout=60000)
        page.click("#share-captions")
        page.wait_for_selector("#share-url", state="visible", timeout=30000)
        shared = page.input_value("#share-url")
        uid = page.evaluate("window.whisperLive.stream.uid")
        assert shared.startswith(f"{secured_server.http_url}/captions?stream={uid}&token=ek_"), shared
        assert api_keys.alice not in shared
        with open_page(browser, shared + "&lines=1&size=36") as (view, view_errors):
            view.wait_for_function(
                "document.querySelectorAll('#captions p:not(.provisional)').length >= 1", timeout=120000
            )
            view.screenshot(path=str(artifacts / "captions-shared.png"))
            page.click("#stop")
            page.wait_for_function("document.body.dataset.state === 'done'", timeout=120000)
            view.wait_for_function("window.whisperLiveCaptions.stream.ended !== null", timeout=60000)
            assert view.evaluate("window.whisperLiveCaptions.stream.ended") == "end of audio"
            shown = " ".join(view.locator("#captions p").all_inner_texts())
        transcript = completed_text(page)
    assert not view_errors, view_errors
    assert not [e for e in errors if "401" not in e], errors  # the page's /status needs a key here
    words = evaluation.normalize(shown).split()
    known = set(evaluation.normalize(transcript).split())
    assert words and sum(w in known for w in words) >= 0.8 * len(words), (shown, transcript)
