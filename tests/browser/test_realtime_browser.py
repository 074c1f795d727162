"""A browser page on OpenAI's Realtime face with a short-lived client secret, as OpenAI's
browser clients do: the page never holds the API key, only the secret its backend asked
``/v1/realtime/client_secrets`` for, sent as the WebSocket subprotocols
``realtime, openai-insecure-api-key.<secret>``. Real Chromium, the real server and model,
JFK's recording at 24 kHz sent from the page as base64 ``input_audio_buffer.append``."""

from __future__ import annotations

import base64
import os

import av
import numpy as np
import pytest
from harness import evaluation
from openai import OpenAI

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.media import decode_audio

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium')", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the 'playwright' Python package is missing")

# What a page does with OpenAI's Realtime API in transcription mode, in plain browser JS.
PAGE_SCRIPT = """
async ([url, secret, chunks]) => {
  const ws = new WebSocket(url, ["realtime", "openai-insecure-api-key." + secret]);
  const events = [];
  const done = new Promise((resolve, reject) => {
    ws.onmessage = (m) => {
      const e = JSON.parse(m.data);
      events.push(e.type);
      if (e.type === "conversation.item.input_audio_transcription.completed") resolve(e.transcript);
    };
    ws.onerror = () => reject(new Error("websocket error"));
    ws.onclose = (c) => reject(new Error("closed " + c.code));
  });
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  ws.send(JSON.stringify({type: "session.update", session: {type: "transcription", audio: {input: {
    format: {type: "audio/pcm", rate: 24000}, turn_detection: null, transcription: {language: "en"}}}}}));
  for (const audio of chunks) ws.send(JSON.stringify({type: "input_audio_buffer.append", audio}));
  ws.send(JSON.stringify({type: "input_audio_buffer.commit"}));
  const transcript = await done;
  const protocol = ws.protocol;
  ws.close();
  return {transcript, protocol, events};
}
"""


def jfk_chunks() -> tuple[list[str], str]:
    (utt,) = evaluation.manifest("jfk")
    samples = decode_audio(str(utt.path))
    frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    resampler = av.AudioResampler(format="s16", layout="mono", rate=24000)
    pcm = b"".join(
        bytes(f.planes[0])[: f.samples * 2] for f in [*resampler.resample(frame), *resampler.resample(None)]
    )
    step = 4800 * 2  # 200 ms
    return [base64.b64encode(pcm[i : i + step]).decode() for i in range(0, len(pcm), step)], utt.reference


def test_page_transcribes_with_a_client_secret_in_the_subprotocol(secured_server, api_keys):
    backend = OpenAI(api_key=api_keys.alice, base_url=secured_server.http_url + "/v1")
    secret = backend.realtime.client_secrets.create(
        expires_after={"anchor": "created_at", "seconds": 120}
    ).value
    chunks, reference = jfk_chunks()
    url = secured_server.http_url.replace("http", "ws", 1) + "/v1/realtime?intent=transcription"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox"], timeout=60000
        )
        try:
            page = browser.new_page()
            page.goto(secured_server.http_url + "/health")  # a page of the server's own origin
            result = page.evaluate(PAGE_SCRIPT, [url, secret, chunks])
        finally:
            browser.close()
    assert result["protocol"] == "realtime"
    assert result["events"][0] == "session.created"
    assert "input_audio_buffer.committed" in result["events"]
    assert evaluation.wer(reference, result["transcript"]) <= 0.2, result["transcript"]
