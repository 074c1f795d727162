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
