"""The browser client (client/) in real headless Chromium against the real server.

Chromium's fake capture device plays a WAV made from LibriSpeech recordings as the
microphone, so the page runs its whole path: getUserMedia -> AudioWorklet (resampling to
16 kHz int16) -> WebSocket -> the server's model -> segments on the page.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from harness import evaluation

from whisper_live.core.pcm import SAMPLE_RATE

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CLIENT = Path(__file__).resolve().parents[2] / "client"
# Two LibriSpeech dev-clean utterances, with silence around them (see fake_microphone).
UTTERANCES = ("1988-24833-0000", "1988-24833-0002")
LEAD, GAP = 1.0, 1.5
# Chromium loops the fake-capture file: a long silent tail keeps the test from hearing it twice.
TAIL = 60.0

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium')", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the 'playwright' Python package is missing")
srt = pytest.importorskip("srt")
webvtt = pytest.importorskip("webvtt")


@pytest.fixture(scope="module")
def fake_microphone(tmp_path_factory, librispeech):
    """A 16 kHz mono 16-bit WAV for --use-file-for-fake-audio-capture, and what it says."""
    by_id = {u.id: u for u in librispeech}
    utterances = [by_id[i] for i in UTTERANCES]
    conv = evaluation.conversation(utterances, gap=GAP, lead=LEAD)
    samples = np.concatenate([conv.audio, np.zeros(int(TAIL * SAMPLE_RATE), np.float32)])
    path = tmp_path_factory.mktemp("fake-mic") / "speech.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path, conv


def chromium_args(wav: Path) -> list[str]:
    """Headless Chromium whose microphone plays ``wav``."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]


@pytest.fixture(scope="module")
def browser(fake_microphone):
    wav, _ = fake_microphone
    args = chromium_args(wav)
    with sync_api.sync_playwright() as p:
        # Playwright gives every launch a fresh temporary profile (its own --user-data-dir).
        b = p.chromium.launch(executable_path=CHROMIUM, args=args, timeout=60000)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def open_page(browser, url: str, **context_options):
    context = browser.new_context(**context_options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.goto(url)
    try:
        yield page, errors
    finally:
        context.close()


def record_frames(page, direction: str = "framesent") -> list:
    """Every WebSocket frame the page sends (or receives: "framereceived"); str or bytes."""
    frames: list = []
    page.on("websocket", lambda ws: ws.on(direction, lambda payload: frames.append(payload)))
    return frames


# Records what the provisional line shows (and how it is styled) every time it changes.
WATCH_PARTIAL_JS = """
() => {
  window.__partials = [];
  const box = document.getElementById("partial");
  new MutationObserver(() => {
    const text = document.getElementById("partial-text").textContent;
    if (!box.hidden && text) window.__partials.push({ text, fontStyle: getComputedStyle(box).fontStyle });
  }).observe(box, { subtree: true, childList: true, characterData: true, attributes: true });
}
"""


def state(page) -> str:
    return page.get_attribute("body", "data-state")


def completed_text(page) -> str:
    return " ".join(page.locator("#segments .segment .text").all_inner_texts())


def test_live_transcription_from_fake_microphone(server, browser, fake_microphone, artifacts):
    """Start, speak two utterances, see completed segments, Stop: END_OF_AUDIO, final text kept.

    With no ``?server=``, the page served by the server streams to its own origin's ``/ws``."""
    _, conv = fake_microphone
    url = f"{server.http_url}/"
    with open_page(browser, url, viewport={"width": 1000, "height": 800}) as (page, errors):
        assert page.input_value("#server") == server.ws_http_url
        page.evaluate(WATCH_PARTIAL_JS)
        frames = record_frames(page)
        received = record_frames(page, "framereceived")
        page.click("#start")
        page.wait_for_function("document.body.dataset.state === 'streaming'", timeout=60000)

        # The first utterance is followed by a pause: it must come back as a completed,
        # timed segment while the stream is still live.
        first = conv.utterances[0].reference
        deadline = time.monotonic() + 60
        live_shot = False
        while evaluation.wer(first, completed_text(page)) > 0.35:
            assert time.monotonic() < deadline, (
                f"no completed segment for {first!r}: {completed_text(page)!r}"
            )
            assert state(page) == "streaming", page.inner_text("#status")
            if not live_shot and page.is_visible("#partial"):
                page.screenshot(path=str(artifacts / "browser-client-live.png"))
                live_shot = True
            time.sleep(0.25)
        first_time = page.locator("#segments .segment .time").first.inner_text()
        assert "–" in first_time and ":" in first_time

        # Stop shortly after the second utterance ends, before the server has had a pause
        # long enough to complete it: only END_OF_AUDIO makes it final.
        page.wait_for_function(
            f"window.whisperLive.stream.secondsSent >= {conv.ends[-1] + 0.6}", timeout=60000
        )
        page.click("#stop")
        page.wait_for_function("document.body.dataset.state === 'done'", timeout=120000)

        final = completed_text(page)
        assert evaluation.wer(conv.reference, final) <= 0.3, final
        assert page.is_hidden("#partial")  # nothing provisional is left once the server closed
        # Whenever the server sent provisional text, the page showed it, looking provisional.
        # (Whether it sends any depends on its timing; test_page_renders_server_messages
        # covers the rendering with a scripted server.)
        partials = page.evaluate("window.__partials")
        sent_partial = any(
            not seg["completed"] and seg["text"].strip()
            for message in map(json.loads, received)
            for seg in message.get("segments", [])
        )
        assert bool(partials) == sent_partial
        assert all(p["fontStyle"] == "italic" for p in partials)
        # The transcript stays on the page and can be downloaded in each format.
        subtitles = {}
        for fmt in ("srt", "vtt", "txt"):
            with page.expect_download() as download:
                page.click(f"#download-{fmt}")
            assert download.value.suggested_filename.endswith(f".{fmt}")
            subtitles[fmt] = Path(download.value.path()).read_text(encoding="utf-8")
        cues = list(srt.parse(subtitles["srt"]))
        assert evaluation.wer(conv.reference, " ".join(c.content for c in cues)) <= 0.3
        assert 0 < cues[0].start.total_seconds() < conv.ends[0]
        vtt = webvtt.from_string(subtitles["vtt"])
        assert [c.text for c in vtt] == [c.content for c in cues]
        assert evaluation.wer(conv.reference, subtitles["txt"]) <= 0.3

        # On the wire: the configuration first, ~100 ms int16 frames, END_OF_AUDIO last.
        config = json.loads(frames[0])
        assert {k: config[k] for k in ("language", "task", "model", "use_vad", "audio_format")} == {
            "language": None,
            "task": "transcribe",
            "model": "tiny.en",
            "use_vad": True,
            "audio_format": "int16",
        }
        assert config["uid"]
        assert frames[-1] == b"END_OF_AUDIO"
        audio = frames[1:-1]
        assert all(isinstance(f, bytes) and len(f) % 2 == 0 for f in audio)
        assert sum(len(f) == 3200 for f in audio) >= len(audio) - 1
        pcm = np.frombuffer(b"".join(audio), "<i2")
        assert len(pcm) / SAMPLE_RATE == pytest.approx(page.evaluate("window.whisperLive.stream.secondsSent"))
        # It is the recording: loud where the speech is, near silence in the lead-in.
        lead = pcm[int(0.2 * SAMPLE_RATE) : int(0.8 * SAMPLE_RATE)]
        speech = pcm[int(conv.starts[0] * SAMPLE_RATE) + 3200 : int(conv.ends[0] * SAMPLE_RATE)]
        assert np.abs(speech).max() > 3000 > 10 * np.abs(lead).max()
        page.screenshot(path=str(artifacts / "browser-client.png"), full_page=True)
        assert not errors, errors


@contextlib.contextmanager
def scripted_server(script):
    """A WebSocket server that answers the config with a fixed list of messages (JSON)."""
    import threading

    from websockets.sync.server import serve

    def handler(ws):
        ws.recv(timeout=30)  # the configuration
        for message in script:
            if isinstance(message, float):
                time.sleep(message)
            else:
                ws.send(json.dumps(message))
        with contextlib.suppress(Exception):
            while ws.recv(timeout=30) != b"END_OF_AUDIO":
                pass
        ws.close()

    with serve(handler, "127.0.0.1", 0) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{srv.socket.getsockname()[1]}"
        finally:
            srv.shutdown()


def test_page_renders_server_messages(server, browser, artifacts):
    """Partial vs completed text, times (also WhisperLive's string times), language, warnings."""
    script = [
        {"uid": "u", "message": "SERVER_READY", "backend": "faster_whisper"},
        {"uid": "u", "status": "WARNING", "message": "model small is not available; using tiny.en"},
        {"uid": "u", "language": "de", "language_prob": 0.87},
        {"uid": "u", "segments": [{"start": 0.5, "end": 1.5, "text": " Guten", "completed": False}]},
        {
            "uid": "u",
            "segments": [
                {"start": "0.500", "end": "2.250", "text": " Guten Morgen.", "completed": True},
                {"start": 2.5, "end": 3.0, "text": " Wie geht", "completed": False},
            ],
        },
    ]
    with (
        scripted_server(script) as url,
        open_page(browser, f"{server.http_url}/?server={url}") as (page, errors),
    ):
        page.click("#start")
        page.wait_for_function("document.getElementById('partial-text').textContent === 'Wie geht'")
        assert completed_text(page) == "Guten Morgen."
        assert page.inner_text("#segments .segment .time") == "0:00.5 – 0:02.3"
        assert page.inner_text("#partial-time") == "0:02.5 – …"
        style = page.evaluate("getComputedStyle(document.getElementById('partial')).fontStyle")
        assert style == "italic"
        assert page.inner_text("#detected-language") == "de (87%)"
        assert "using tiny.en" in page.inner_text("#messages")
        assert page.get_attribute("#segments", "aria-live") == "polite"
        page.screenshot(path=str(artifacts / "browser-client-partial.png"))
        page.click("#stop")
        page.wait_for_function("document.body.dataset.state === 'done'", timeout=30000)
        # The scripted server never completed "Wie geht": the page keeps it, still marked provisional.
        assert completed_text(page) == "Guten Morgen."
        assert not errors, errors


def test_phone_layout_screenshot(server, browser, artifacts):
    """The page fits a phone screen, with a transcript on it: no horizontal scrolling."""
    long_text = " Somehow or other cat has taught them that he's in charge here and he just chases them"
    script = [
        {"uid": "u", "message": "SERVER_READY", "backend": "faster_whisper"},
        {"uid": "u", "language": "en", "language_prob": 0.99},
        {
            "uid": "u",
            "segments": [
                {
                    "start": 0.9,
                    "end": 3.9,
                    "text": " The two stray kittens gradually make themselves at home.",
                    "completed": True,
                },
                {"start": 5.7, "end": 11.2, "text": long_text, "completed": False},
            ],
        },
    ]
    with (
        scripted_server(script) as url,
        open_page(
            browser,
            f"{server.http_url}/?server={url}",
            viewport={"width": 390, "height": 844},
            is_mobile=True,
        ) as (page, errors),
    ):
        page.click("#start")
        page.wait_for_function("document.getElementById('partial-text').textContent.startsWith('Somehow')")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # Touch-sized controls.
        assert page.locator("#start").bounding_box()["height"] >= 44
        page.screenshot(path=str(artifacts / "browser-client-phone.png"), full_page=True)
        assert not errors, errors


def test_wait_state_when_server_full(server, browser, artifacts):
    url = f"{server.http_url}/?server={server.ws_url}"
    with server.configured(max_clients=0), open_page(browser, url) as (page, errors):
        page.click("#start")
        page.wait_for_function("document.body.dataset.state === 'wait'", timeout=60000)
        status = page.inner_text("#status")
        assert "WAIT" in status and "estimated wait" in status and "min" in status, status
        assert float(page.get_attribute("#status", "data-wait-minutes")) >= 0
        # The server closes after WAIT; the page keeps saying why and lets the user retry.
        time.sleep(0.5)
        assert state(page) == "wait"
        assert page.is_enabled("#start")
        page.screenshot(path=str(artifacts / "browser-client-wait.png"))
        assert not errors, errors


def wait_until_idle(server, timeout: float = 60) -> None:
    """No stream left over from an earlier test (their slots would change the WAIT estimate)."""
    deadline = time.monotonic() + timeout
    while len(server.server.streams.clients):
        assert time.monotonic() < deadline, "streams from earlier tests are still open"
        time.sleep(0.2)


def test_wait_shows_the_servers_estimate(server, browser):
    """One stream holds the only slot: the page shows the server's estimate (when the holder
    is expected to end, from how long this session's streams lasted; never past its limit)."""
    from websockets.sync.client import connect

    url = f"{server.http_url}/?server={server.ws_url}"
    wait_until_idle(server)
    with (
        server.configured(max_clients=1, max_connection_time=150.0),
        connect(server.ws_url) as holder,
        open_page(browser, url) as (page, errors),
    ):
        holder.send('{"uid": "holder", "use_vad": true, "audio_format": "int16"}')
        assert "SERVER_READY" in holder.recv(timeout=60)
        page.click("#start")
        page.wait_for_function("document.body.dataset.state === 'wait'", timeout=60000)
        minutes = float(page.get_attribute("#status", "data-wait-minutes"))
        assert 0.0 <= minutes <= 2.5
        status = page.inner_text("#status")
        assert "estimated wait" in status and f"{minutes:.1f} min" in status, status
        assert page.inner_text("#detected-language") == "—"
        assert not errors, errors


def test_server_error_is_shown(server, browser):
    # An English-only model cannot translate: the server answers ERROR and closes.
    url = f"{server.http_url}/?server={server.ws_url}&model=tiny.en&task=translate"
    with open_page(browser, url) as (page, errors):
        assert page.is_visible("#model-hint")  # the page warns before Start, too
        frames = record_frames(page)
        page.click("#start")
        page.wait_for_function("document.body.dataset.state === 'error'", timeout=60000)
        assert json.loads(frames[0])["task"] == "translate"
        assert "English-only" in page.inner_text("#status")
        assert page.is_enabled("#start")
        assert not errors, errors


def test_time_limit_disconnect_keeps_text(server, browser):
    url = f"{server.http_url}/?server={server.ws_url}"
    with server.configured(max_connection_time=4.0), open_page(browser, url) as (page, errors):
        page.click("#start")
        page.wait_for_function("document.body.dataset.state === 'disconnected'", timeout=90000)
        assert "time limit" in page.inner_text("#status")
        # What was said before the cut is transcribed and kept (the clip starts at 1 s).
        assert "kitten" in completed_text(page).lower()
        assert page.is_enabled("#start")
        assert not errors, errors


def test_page_from_disk_streams_to_server(server, browser):
    """Opened as a file (no HTTP server involved), the page still captures and streams."""
    url = (CLIENT / "index.html").as_uri() + f"?server={server.ws_url}"
    with open_page(browser, url) as (page, errors):
        frames = record_frames(page)
        page.click("#start")
        page.wait_for_function("document.body.dataset.state === 'streaming'", timeout=60000)
        page.wait_for_function("window.whisperLive.stream.secondsSent >= 1.5", timeout=30000)
        page.click("#stop")
        page.wait_for_function("document.body.dataset.state === 'done'", timeout=60000)
        assert sum(len(f) for f in frames if isinstance(f, bytes)) >= 1.5 * SAMPLE_RATE * 2
        assert frames[-1] == b"END_OF_AUDIO"
        assert not errors, errors


def test_unreachable_server_is_an_error(browser):
    with open_page(browser, (CLIENT / "index.html").as_uri() + "?server=ws://127.0.0.1:9") as (page, errors):
        page.click("#start")
        page.wait_for_function("document.body.dataset.state === 'error'", timeout=30000)
        assert "Could not connect" in page.inner_text("#status")


# ---- the audio maths, on known signals ------------------------------------------------------

RESAMPLE_JS = """
([rate, freq, amp, seconds, block]) => {
  // Feed the Resampler exactly as the worklet does: small blocks, then flush.
  const r = new Resampler(rate, 16000);
  const n = Math.round(rate * seconds);
  const out = [];
  for (let i = 0; i < n; i += block) {
    const x = new Float32Array(Math.min(block, n - i));
    for (let j = 0; j < x.length; j++) x[j] = amp * Math.sin(2 * Math.PI * freq * (i + j) / rate);
    out.push(...floatToInt16(r.process(x)));
  }
  out.push(...floatToInt16(r.flush()));
  return out;
}
"""


def spectrum(pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = pcm.astype(np.float64) / 32767
    window = np.hanning(len(x))
    power = np.abs(np.fft.rfft(x * window)) ** 2
    return np.fft.rfftfreq(len(x), 1 / 16000), power


@pytest.fixture(scope="module")
def file_page(browser):
    """The page opened from disk (file://): it must load and run without the server."""
    with open_page(browser, (CLIENT / "index.html").as_uri()) as (page, errors):
        page.wait_for_function("window.whisperLive !== undefined")
        yield page, errors


MERGE_JS = """
() => {
  // Messages as the server sends them: completed segments repeat, one partial at the end.
  const t = new Transcript();
  t.merge([{ start: 0.5, end: 1.5, text: " Hello", completed: false }]);
  const partial = t.partial && t.partial.text;
  t.merge([{ start: 0.5, end: 1.8, text: " Hello there.", completed: true },
           { start: 2.0, end: 2.4, text: " How", completed: false }]);
  t.merge([{ start: 0.5, end: 1.8, text: " Hello there.", completed: true },
           { start: "2.000", end: "3.250", text: " How are you?", completed: true }]);
  t.merge([{ start: 0.5, end: 1.8, text: " Hello there.", completed: true },
           { start: 2.0, end: 3.25, text: " How are you?", completed: true }]);
  const clocks = [0, 59.96, 61.25, 3725.4].map((x) => Transcript.short(x));
  const result = { clocks, partial, after: t.partial, segments: t.segments.slice(), srt: t.toSRT(), vtt: t.toVTT(),
                   txt: t.toText() };
  // Clear in mid-session: the repeats of cleared segments must not come back.
  t.discard();
  t.merge([{ start: 2.0, end: 3.25, text: " How are you?", completed: true },
           { start: 4.0, end: 5.0, text: " Fine.", completed: true }]);
  result.afterDiscard = t.segments.slice();
  // Start again: the old text stays and the new session's times follow it.
  t.beginSession();
  t.merge([{ start: 0.2, end: 1.0, text: " Again.", completed: true }]);
  result.nextSession = t.segments;
  return result;
}
"""


def test_transcript_merge_and_formats(file_page):
    page, _ = file_page
    result = page.evaluate(MERGE_JS)
    assert result["partial"] == "Hello"
    assert result["clocks"] == ["0:00.0", "1:00.0", "1:01.3", "1:02:05"]
    assert result["after"] is None
    assert result["segments"] == [
        {"start": 0.5, "end": 1.8, "text": "Hello there."},
        {"start": 2.0, "end": 3.25, "text": "How are you?"},
    ]
    cues = list(srt.parse(result["srt"]))
    assert [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in cues] == [
        (0.5, 1.8, "Hello there."),
        (2.0, 3.25, "How are you?"),
    ]
    vtt = list(webvtt.from_string(result["vtt"]))
    assert [(c.start, c.end, c.text) for c in vtt] == [
        ("00:00:00.500", "00:00:01.800", "Hello there."),
        ("00:00:02.000", "00:00:03.250", "How are you?"),
    ]
    assert result["txt"] == "Hello there.\nHow are you?\n"
    assert result["afterDiscard"] == [{"start": 4.0, "end": 5.0, "text": "Fine."}]
    assert result["nextSession"] == [
        {"start": 4.0, "end": 5.0, "text": "Fine."},
        {"start": 6.2, "end": 7.0, "text": "Again."},
    ]


def test_page_from_disk_defaults_to_localhost(file_page):
    page, errors = file_page
    assert page.input_value("#server") == "ws://localhost:9090"
    assert page.input_value("#model") == "tiny.en"
    assert not errors, errors


@pytest.mark.parametrize("rate", [48000, 44100])
def test_resampler_sine_frequency_and_amplitude(file_page, rate):
    page, _ = file_page
    pcm = np.array(page.evaluate(RESAMPLE_JS, [rate, 1000, 0.5, 1.0, 128]), np.int16)
    assert abs(len(pcm) - 16000) <= 1
    steady = pcm[400:-400]  # away from the filter's start-up and flush edges
    freqs, power = spectrum(steady)
    peak = freqs[np.argmax(power)]
    assert abs(peak - 1000) <= 2, peak
    amplitude = np.sqrt(2) * np.sqrt(np.mean((steady / 32767.0) ** 2))
    assert amplitude == pytest.approx(0.5, rel=0.01)
    # Everything that is not the tone (aliases, filter ripple, rounding) stays 60 dB down.
    near = np.abs(freqs - 1000) <= 30
    assert 10 * np.log10(power[~near].sum() / power[near].sum()) < -60
    # Times are exact: output n is the input at n / 16000 s (no drift, no offset).
    t = np.arange(len(pcm)) / 16000
    ideal = 0.5 * np.sin(2 * np.pi * 1000 * t) * 32767
    assert np.max(np.abs(pcm[400:-400] - ideal[400:-400])) < 0.002 * 32767


def test_resampler_rejects_frequencies_above_8khz(file_page):
    # 12 kHz cannot exist at 16 kHz; naive decimation would fold it onto 4 kHz at full level.
    page, _ = file_page
    pcm = np.array(page.evaluate(RESAMPLE_JS, [48000, 12000, 0.5, 0.5, 128]), np.int16)
    rms = np.sqrt(np.mean((pcm[200:-200] / 32767.0) ** 2))
    assert rms < 0.5 / np.sqrt(2) * 10 ** (-60 / 20), rms


def test_int16_conversion_clips_instead_of_wrapping(file_page):
    page, _ = file_page
    assert page.evaluate("Array.from(floatToInt16(new Float32Array([0, 0.5, -0.5, 1, -1, 2, -3, NaN])))") == [
        0,
        16384,
        -16384,
        32767,
        -32767,
        32767,
        -32767,
        0,
    ]
    # An overdriven 1 kHz sine comes out flat-topped at full scale, never wrapped to the other sign.
    pcm = np.array(page.evaluate(RESAMPLE_JS, [48000, 1000, 1.5, 0.5, 128]), np.int16).astype(np.int32)
    t = np.arange(len(pcm)) / 16000
    ideal = np.clip(1.5 * np.sin(2 * np.pi * 1000 * t), -1, 1) * 32767
    inner = slice(200, -200)
    assert pcm.max() == 32767 and pcm.min() == -32767
    assert np.max(np.abs(pcm[inner] - ideal[inner])) < 0.002 * 32767


WORKLET_JS = """
async ([rate, seconds]) => {
  // The real capture worklet (same code the page streams with) on a 1 kHz oscillator.
  const context = new AudioContext({ sampleRate: rate });
  const node = await PcmWorklet.create(context);
  const chunks = [];
  let frames = 0;
  const flushed = new Promise((resolve) => {
    node.port.onmessage = ({ data }) => {
      if (data.type === "audio") { chunks.push(...new Int16Array(data.pcm)); frames++; }
      if (data.type === "flushed") resolve();
    };
  });
  const osc = new OscillatorNode(context, { frequency: 1000 });
  const gain = new GainNode(context, { gain: 0.5 });
  osc.connect(gain).connect(node);
  osc.start();
  await context.resume();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  node.port.postMessage({ type: "flush" });
  await flushed;
  await context.close();
  return { pcm: chunks, frames, rate: context.sampleRate };
}
"""


def test_capture_worklet_outputs_16khz_int16(file_page):
    page, errors = file_page
    result = page.evaluate(WORKLET_JS, [48000, 1.0])
    assert result["rate"] == 48000
    pcm = np.array(result["pcm"], np.int16)
    # About a second of audio, in ~100 ms frames (not one message per 128-sample quantum).
    assert 12000 <= len(pcm) <= 20000, len(pcm)
    assert len(pcm) / result["frames"] >= 1000
    nonzero = np.flatnonzero(pcm)
    steady = pcm[nonzero[0] + 400 : nonzero[-1] - 400]
    freqs, power = spectrum(steady)
    assert abs(freqs[np.argmax(power)] - 1000) <= 3
    amplitude = np.sqrt(2) * np.sqrt(np.mean((steady / 32767.0) ** 2))
    assert amplitude == pytest.approx(0.5, rel=0.02)
    assert not errors, errors


def test_page_loads_only_its_own_files(server, browser):
    """No CDN, no build step: the page fetches nothing but its own files from its own server."""
    requests: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{server.http_url}/?server={server.ws_url}")
        page.wait_for_function("window.whisperLive !== undefined")
    finally:
        context.close()
    files = {u.removeprefix(server.http_url) for u in requests if u.startswith(server.http_url)}
    assert files >= {
        f"/client/{n}" for n in ("resampler.js", "pcm-worklet.js", "stream.js", "app.js", "style.css")
    }
    assert all(u.startswith((server.http_url + "/", "data:")) for u in requests), requests
    assert "/status" in files  # the model choices include what the server has loaded


def test_captions_view_loads_only_its_own_files(server, browser):
    """The captions view (/captions) is offline too: its own scripts and nothing else."""
    requests: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{server.http_url}/captions?lines=3")
        page.wait_for_function("window.whisperLiveCaptions && window.whisperLiveCaptions.lines === 3")
    finally:
        context.close()
    files = {u.removeprefix(server.http_url) for u in requests if u.startswith(server.http_url)}
    # transcript.js: the view groups segments into lines as the page does.
    assert files == {"/captions?lines=3", "/client/transcript.js", "/client/captions.js"}, requests
    assert all(u.startswith((server.http_url + "/", "data:")) for u in requests), requests
