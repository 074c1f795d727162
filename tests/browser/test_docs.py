"""The API docs in real headless Chromium: Swagger UI and ReDoc render /openapi.json from the
server's own assets (no network), listing every face's paths."""

from __future__ import annotations

import os

import pytest
import requests

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium')", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the 'playwright' Python package is missing")

pytestmark = pytest.mark.browser

# One path of each face, as Swagger UI shows them.
FACE_PATHS = {
    "OpenAI": "/v1/audio/transcriptions",
    "WhisperKit": "/whisperkit/v1/audio/transcriptions",
    "WhisperX": "/whisperx/v1/audio/transcriptions",
    "Transcriber": "/transcribe",
    "Deepgram": "/v1/listen",
    "Realtime": "/v1/realtime/client_secrets",
    "Server": "/health",
}


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            timeout=60000,
        )
        try:
            yield browser
        finally:
            browser.close()


def open_offline(chromium, server):
    """A page that may fetch only from the server itself: any other request fails the test."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    foreign: list[str] = []
    errors: list[str] = []

    def route(r):
        if r.request.url.startswith(server.http_url):
            r.continue_()
        else:
            foreign.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, foreign, errors


def test_swagger_ui_lists_every_faces_paths(server, chromium, artifacts):
    spec_paths = requests.get(server.http_url + "/openapi.json", timeout=10).json()["paths"]
    context, page, foreign, errors = open_offline(chromium, server)
    try:
        page.goto(server.http_url + "/docs")
        page.wait_for_selector(".opblock-tag", timeout=60000)
        tags = page.eval_on_selector_all(".opblock-tag", "els => els.map(e => e.getAttribute('data-tag'))")
        assert set(FACE_PATHS) <= set(tags), tags
        shown = set(page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.dataset.path)"))
        assert set(FACE_PATHS.values()) <= shown
        assert shown == set(spec_paths), set(spec_paths) ^ shown  # every documented path is rendered
        # Open WhisperKit's transcription: its defaults are shown (verbose_json).
        page.click("#operations-WhisperKit-post_whisperkit_v1_audio_transcriptions .opblock-summary")
        page.wait_for_selector("text=verbose_json", timeout=30000)
        page.screenshot(path=str(artifacts / "api-docs-swagger-ui.png"), full_page=True)
        assert not foreign, foreign
        assert not errors, errors
    finally:
        context.close()


def test_redoc_renders_the_same_document(server, chromium, artifacts):
    context, page, foreign, errors = open_offline(chromium, server)
    try:
        page.goto(server.http_url + "/redoc")
        page.wait_for_selector("[data-section-id='tag/WhisperKit']", timeout=60000)
        text = page.inner_text("body")
        assert all(name in text for name in FACE_PATHS), text[:500]
        page.screenshot(path=str(artifacts / "api-docs-redoc.png"))
        assert not foreign, foreign
        assert not errors, errors
    finally:
        context.close()
