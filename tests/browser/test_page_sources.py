"""The page beyond the microphone, in real headless Chromium against the real server: a tab's
audio (getDisplayMedia), microphone + tab mixed, a file through the REST face, speakers.

The "tab" is a second page of the same browser playing LibriSpeech speech from an
``<audio>`` element; ``--auto-select-tab-capture-source-by-title`` makes Chromium pick it in
getDisplayMedia without a dialog. Playwright launches Chromium with ``--mute-audio``, which
silences tab capture too (the track exists but carries zeros), so it is left out here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import json
import shutil
import subprocess
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
from harness import evaluation
from test_browser import (
    CHROMIUM,
    chromium_args,
    completed_text,
    record_frames,
    scripted_server,
    srt,
    sync_api,
    webvtt,
)
from test_browser import open_page as _open_page

from whisper_live.core.pcm import SAMPLE_RATE

pytestmark = pytest.mark.browser

TAB_TITLE = "Speech clip"
# The microphone: one utterance of speaker 1988, then silence (Chromium loops the file).
MIC_UTTERANCES = ("1988-24833-0000",)
# The tab: other speakers, ~30 s and ~85 words, so 2 WER points are more than one word.
TAB_UTTERANCES = ("2412-153948-0000", "2412-153948-0001", "3853-163249-0037")
# In the mixed test the tab speaks after the microphone has finished (two people taking turns).
MIXED_TAB_UTTERANCES = ("3752-4944-0000", "3752-4944-0002")
CONVERSATION = "two_speakers"  # conversations/: 1988 and 2412 taking turns, 50 s


def open_page(browser, url: str, **context_options):
    """test_browser's open_page, with the microphone granted (there is no fake prompt UI)."""
    return _open_page(browser, url, permissions=["microphone"], **context_options)


@pytest.fixture(scope="module")
def media(tmp_path_factory, librispeech):
    """The fake microphone's WAV, and the tab pages' clips (conversations of utterances)."""
    folder = tmp_path_factory.mktemp("page-sources")
    by_id = {u.id: u for u in librispeech}
    mic = evaluation.conversation([by_id[i] for i in MIC_UTTERANCES], lead=1.0)
    mic_audio = np.concatenate([mic.audio, np.zeros(90 * SAMPLE_RATE, np.float32)])
    tab = evaluation.conversation([by_id[i] for i in TAB_UTTERANCES], gap=1.2, lead=0.5)
    mixed_tab = evaluation.conversation([by_id[i] for i in MIXED_TAB_UTTERANCES], gap=1.2, lead=0.3)
    return {
        "folder": folder,
        "mic_wav": evaluation.write_wav(folder / "mic.wav", mic_audio),
        "mic": mic,
        "tab": tab,
        "tab_wav": evaluation.write_wav(
            folder / "tab.wav", np.concatenate([tab.audio, np.zeros(SAMPLE_RATE, np.float32)])
        ),
        "mixed_tab": mixed_tab,
        "mixed_tab_wav": evaluation.write_wav(folder / "mixed-tab.wav", mixed_tab.audio),
    }


@pytest.fixture(scope="module")
def browser(media):
    # Without --use-fake-ui-for-media-stream: it would answer getDisplayMedia with a fake
    # screen whose "audio" is the fake microphone. The microphone is granted per context.
    args = [a for a in chromium_args(media["mic_wav"]) if a != "--use-fake-ui-for-media-stream"]
    args.append(f"--auto-select-tab-capture-source-by-title={TAB_TITLE}")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=args, ignore_default_args=["--mute-audio"], timeout=60000
        )
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def playing_tab(context, wav: Path):
    """A second page in ``context`` titled TAB_TITLE, with an <audio> element of ``wav``."""
    html = wav.with_suffix(".html")
    html.write_text(
        f'<!doctype html><title>{TAB_TITLE}</title><audio id="clip" src="{wav.name}" preload="auto"></audio>'
        '<script>window.ended = false; document.getElementById("clip").onended = () => (window.ended = true);</script>'
    )
    tab = context.new_page()
    tab.goto(html.as_uri())
    tab.wait_for_function("document.getElementById('clip').readyState >= 3")
    try:
        yield tab
    finally:
        tab.close()


def wait_state(page, wanted: str, timeout: float = 120000) -> None:
    page.wait_for_function(f"document.body.dataset.state === {wanted!r}", timeout=timeout)


def stop_and_finish(page) -> None:
    page.click("#stop")
    wait_state(page, "done", 180000)


def downloads(page, formats=("srt", "vtt", "txt", "json")) -> dict[str, str]:
    out = {}
    for fmt in formats:
        with page.expect_download() as download:
            page.click(f"#download-{fmt}")
        assert download.value.suggested_filename.endswith(f".{fmt}")
        out[fmt] = Path(download.value.path()).read_text(encoding="utf-8")
    return out


# Records each source's meter while it moves.
WATCH_LEVELS_JS = """
() => {
  window.__levels = { microphone: 0, tab: 0 };
  setInterval(() => {
    for (const name of ["microphone", "tab"]) {
      const v = document.getElementById(`level-${name}`).value;
      window.__levels[name] = Math.max(window.__levels[name], v);
    }
  }, 50);
}
"""


def test_tab_audio_matches_python_stream(server, browser, media, artifacts):
    """A tab playing speech, captured with getDisplayMedia (video dropped), transcribes within
    2 WER points of the same clip streamed from Python at the same pace."""
    tab_conv = media["tab"]
    python: dict = {}

    def python_stream():
        python["trace"] = asyncio.run(
            evaluation.stream(server.ws_url, tab_conv.audio, {"model": "tiny.en", "language": None})
        )

    url = f"{server.http_url}/?source=tab"
    with open_page(browser, url, viewport={"width": 1000, "height": 800}) as (page, errors):
        context = page.context
        with playing_tab(context, media["tab_wav"]) as tab:
            page.bring_to_front()
            page.evaluate(WATCH_LEVELS_JS)
            assert page.is_visible("#meter-tab") and page.is_hidden("#meter-microphone")
            page.click("#start")
            wait_state(page, "streaming", 60000)
            # The video track was stopped at once; the stream holds the tab's audio only.
            kinds = page.evaluate(
                "window.whisperLive.stream.sources.map((s) => [s.name, s.media.getTracks().map((t) => t.kind)])"
            )
            assert kinds == [["tab", ["audio"]]]
            thread = threading.Thread(target=python_stream)
            tab.evaluate("document.getElementById('clip').play()")
            thread.start()
            tab.wait_for_function("window.ended", timeout=120000)
            page.wait_for_timeout(1000)
            stop_and_finish(page)
            thread.join(timeout=240)
        page_text = completed_text(page)
        page.screenshot(path=str(artifacts / "page-tab-capture.png"), full_page=True)
        assert page.evaluate("window.__levels.tab") > 0.05
        assert not errors, errors
    reference_text = python["trace"].transcript
    page_wer = evaluation.wer(tab_conv.reference, page_text)
    python_wer = evaluation.wer(tab_conv.reference, reference_text)
    (artifacts / "page-tab-capture.json").write_text(
        json.dumps(
            {"page_wer": page_wer, "python_wer": python_wer, "page": page_text, "python": reference_text},
            indent=1,
        )
    )
    assert python_wer <= 0.3, reference_text
    assert page_wer <= python_wer + 0.02, (page_wer, python_wer, page_text, reference_text)


def test_microphone_and_tab_mixed(server, browser, media, artifacts):
    """You (the fake microphone) then them (a tab) in one stream: both speakers' words, and a
    level meter that moved for each source."""
    mic_conv, tab_conv = media["mic"], media["mixed_tab"]
    url = f"{server.http_url}/?source=both"
    with open_page(browser, url, viewport={"width": 1000, "height": 800}) as (page, errors):
        with playing_tab(page.context, media["mixed_tab_wav"]) as tab:
            page.bring_to_front()
            page.evaluate(WATCH_LEVELS_JS)
            assert page.is_visible("#meter-tab") and page.is_visible("#meter-microphone")
            page.click("#start")
            wait_state(page, "streaming", 60000)
            names = page.evaluate("window.whisperLive.stream.sources.map((s) => s.name)")
            assert sorted(names) == ["microphone", "tab"]
            # The microphone's utterance first; then the tab speaks.
            page.wait_for_function(
                f"window.whisperLive.stream.secondsSent >= {mic_conv.ends[-1] + 1.0}", timeout=60000
            )
            tab.evaluate("document.getElementById('clip').play()")
            tab.wait_for_function("window.ended", timeout=120000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(artifacts / "page-mixed.png"), full_page=True)
            stop_and_finish(page)
        text = completed_text(page)
        assert evaluation.wer(mic_conv.reference + " " + tab_conv.reference, text) <= 0.3, text
        assert evaluation.wer(mic_conv.reference, text[: len(text) // 3]) <= 0.5, text
        levels = page.evaluate("window.__levels")
        assert levels["microphone"] > 0.05 and levels["tab"] > 0.05, levels
        assert not errors, errors


def test_tab_without_audio_says_so(server, browser):
    """A share without audio (a window, Firefox): a clear message, and nothing left capturing.

    The browser's answer is replaced by a video-only stream, as a window share gives."""
    with open_page(browser, f"{server.http_url}/?source=tab") as (page, errors):
        page.evaluate(
            """() => {
              window.__video = null;
              navigator.mediaDevices.getDisplayMedia = async () => {
                const canvas = document.createElement("canvas");
                const stream = canvas.captureStream(5);
                window.__video = stream.getVideoTracks()[0];
                return stream;
              };
            }"""
        )
        page.click("#start")
        wait_state(page, "error", 30000)
        status = page.inner_text("#status")
        assert "shared no audio" in status and "Share tab audio" in status, status
        assert page.evaluate("window.__video.readyState") == "ended"  # the video was stopped
        assert page.is_enabled("#start")
        assert not errors, errors


def conversation_reference() -> tuple[Path, list[dict]]:
    folder = evaluation.audio_root() / "conversations"
    with open(folder / f"{CONVERSATION}.tsv", newline="") as f:
        turns = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return folder / f"{CONVERSATION}.wav", turns


# Records the progress bar and the transcript while a file is transcribed.
WATCH_PROGRESS_JS = """
() => {
  // Every value the bar took (several deltas can land in one network read, and a
  // MutationObserver reports them together: their old values keep each step), and what the
  // page showed each time the observer ran.
  window.__values = [];
  window.__progress = [];
  const bar = document.getElementById("file-progress");
  new MutationObserver((records) => {
    for (const r of records) if (r.oldValue !== null) window.__values.push(Number(r.oldValue));
    window.__progress.push({
      value: bar.hasAttribute("value") ? bar.value : null,
      lines: document.querySelectorAll("#segments .segment").length,
      state: document.body.dataset.state,
    });
  }).observe(bar, { attributes: true, attributeFilter: ["value"], attributeOldValue: true });
}
"""


DROP_JS = """
([data, name]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "audio/wav" }));
  document.getElementById("transcript-box").dispatchEvent(
    new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }),
  );
}
"""


def test_dropped_file_shows_progress_then_transcript(server, browser, artifacts):
    """A file dropped on the page goes to /v1/audio/transcriptions as SSE: the bar advances and
    lines appear while it runs; then the transcript downloads like a live one."""
    wav, turns = conversation_reference()
    reference = " ".join(t["reference_transcript"] for t in turns)
    with open_page(browser, f"{server.http_url}/", viewport={"width": 1000, "height": 900}) as (page, errors):
        requests = []
        page.on("request", lambda r: requests.append((r.method, r.url)))
        page.evaluate(WATCH_PROGRESS_JS)
        page.evaluate(DROP_JS, [base64.b64encode(wav.read_bytes()).decode(), wav.name])
        wait_state(page, "file", 10000)
        wait_state(page, "file-done", 240000)
        assert ("POST", f"{server.http_url}/v1/audio/transcriptions") in requests
        progress = page.evaluate("window.__progress")
        # Several steps, in order (one per segment), and text on the page before the end.
        values = [*page.evaluate("window.__values"), progress[-1]["value"]]
        assert len(set(values)) >= 3 and values == sorted(values), values
        during = [p for p in progress if p["state"] == "file" and p["value"] is not None]
        assert any(0 < p["value"] < 0.9 and p["lines"] > 0 for p in during), progress
        assert page.evaluate("document.getElementById('file-progress').value") == 1
        text = completed_text(page)
        assert evaluation.wer(reference, text) <= 0.3, text
        page.screenshot(path=str(artifacts / "page-file.png"), full_page=True)
        files = downloads(page)
        assert_downloads(files, reference, duration=50.4)
        assert "Transcribed" in page.inner_text("#status")
        assert not errors, errors


def assert_downloads(files: dict[str, str], reference: str, duration: float, names: set[str] = frozenset()):
    """The four downloads parse, agree with each other, and carry the speakers' names."""
    cues = list(srt.parse(files["srt"]))
    assert len(cues) >= 3
    assert all(0 <= c.start.total_seconds() < c.end.total_seconds() <= duration + 1 for c in cues)
    vtt = list(webvtt.from_string(files["vtt"]))
    assert len(vtt) == len(cues)
    body = json.loads(files["json"])
    assert len(body["segments"]) == len(cues)
    assert [round(s["start"], 3) for s in body["segments"]] == [
        round(c.start.total_seconds(), 3) for c in cues
    ]
    if names:
        # SRT and text: "Name: words"; WebVTT: <v Name>; JSON: the name and the server's id.
        assert {c.content.split(":", 1)[0] for c in cues} <= names | {""}
        assert {c.voice for c in vtt} == {s["speaker"] for s in body["segments"]}
        assert {c.voice for c in vtt} & names
        assert set(body["speakers"].values()) >= {c.voice for c in vtt}
        words = " ".join(c.content.split(":", 1)[1] for c in cues)
    else:
        words = " ".join(c.content for c in cues)
        assert [c.text for c in vtt] == [c.content for c in cues]
    assert evaluation.wer(reference, words) <= 0.3, words
    assert evaluation.wer(reference, body["text"]) <= 0.3
    assert len(files["txt"].strip().splitlines()) == len(cues)


def test_file_with_speakers_renamed(server, browser, artifacts):
    """ "Label speakers" on a two-speaker file: lines coloured per speaker; renaming one changes
    the page and every download; the phone layout holds with speakers on it."""
    wav, turns = conversation_reference()
    reference = " ".join(t["reference_transcript"] for t in turns)
    with open_page(browser, f"{server.http_url}/?diarize=1", viewport={"width": 1000, "height": 900}) as (
        page,
        errors,
    ):
        assert page.is_checked("#diarize")
        page.set_input_files("#file", str(wav))
        wait_state(page, "file", 10000)
        wait_state(page, "file-done", 300000)
        fields = page.locator("#speakers .speaker-field")
        assert fields.count() >= 2
        lines = page.evaluate(
            """() => [...document.querySelectorAll('#segments .segment')].map((li) => ({
                 who: li.querySelector('.who').textContent, colour: getComputedStyle(li).borderLeftColor }))"""
        )
        # Two people, two labels and two colours (how well turns are split is diarization's
        # own test; this one is about the page).
        assert len({line["who"] for line in lines}) >= 2 and len({line["colour"] for line in lines}) >= 2, (
            lines
        )
        first = page.locator("#speakers input").first
        old_name = first.input_value()
        first.fill("Alice")
        first.press("Tab")  # keyboard: the next name field
        assert page.evaluate("document.activeElement.closest('.speaker-field') !== null")
        assert (
            "Alice" in page.inner_text("#segments") and old_name not in page.locator(".who").all_inner_texts()
        )
        page.screenshot(path=str(artifacts / "page-speakers.png"), full_page=True)
        names = set(page.locator("#speakers input").evaluate_all("(inputs) => inputs.map((i) => i.value)"))
        assert "Alice" in names
        files = downloads(page)
        assert_downloads(files, reference, duration=50.4, names=names)
        assert "Alice:" in files["srt"] and "Alice:" in files["txt"] and "<v Alice>" in files["vtt"]

        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.locator("#file-choose").bounding_box()["height"] >= 44
        page.screenshot(path=str(artifacts / "page-speakers-phone.png"), full_page=True)
        assert not errors, errors


def test_file_error_in_the_faces_shape(server, browser):
    """Not audio: the server's error text on the page, and the page usable again."""
    with open_page(browser, f"{server.http_url}/") as (page, errors):
        page.set_input_files(
            "#file",
            files=[{"name": "notes.wav", "mimeType": "audio/wav", "buffer": b"this is not audio" * 50}],
        )
        wait_state(page, "error", 60000)
        status = page.inner_text("#status")
        assert status.startswith("Error: Could not transcribe notes.wav:") and "audio" in status.lower(), (
            status
        )
        assert page.is_enabled("#start") and page.is_enabled("#file-choose")
        # Chromium logs the failed request itself as a console error; nothing else may fail.
        assert all("400" in e for e in errors), errors


def test_captions_view_shows_the_last_lines(server, browser, artifacts):
    """/captions with URL parameters: only the last N lines, large, placed and coloured as
    asked, following the page's stream (scripted here, so the lines are known)."""
    script = [
        {"uid": "u", "message": "SERVER_READY", "backend": "faster_whisper"},
        {
            "uid": "u",
            "segments": [
                {"start": 0.0, "end": 1.0, "text": " One.", "completed": True},
                {"start": 1.0, "end": 2.0, "text": " Two.", "completed": True},
                {"start": 2.0, "end": 3.0, "text": " Three.", "completed": True},
                {"start": 3.0, "end": 3.5, "text": " Four is still", "completed": False},
            ],
        },
    ]
    with (
        scripted_server(script) as url,
        open_page(browser, f"{server.http_url}/?server={url}") as (page, errors),
    ):
        page.click("#start")
        page.wait_for_function("document.getElementById('partial-text').textContent === 'Four is still'")
        captions = page.context.new_page()
        # Opened after the text arrived: it asks the page for what it has.
        captions.goto(
            f"{server.http_url}/captions?lines=2&size=64&position=top&bg=00ff00&color=ffeb3b&box=none"
        )
        captions.wait_for_function("document.querySelectorAll('#captions p').length === 2")
        assert captions.locator("#captions p").all_inner_texts() == ["Three.", "Four is still"]
        assert captions.get_attribute("#captions p >> nth=1", "class") == "provisional"
        style = captions.evaluate(
            """() => { const p = document.querySelector('#captions p');
                 return { size: getComputedStyle(p).fontSize, bg: getComputedStyle(document.body).backgroundColor,
                          color: getComputedStyle(p).color, top: p.getBoundingClientRect().top }; }"""
        )
        assert style == {
            "size": "64px",
            "bg": "rgb(0, 255, 0)",
            "color": "rgb(255, 235, 59)",
            "top": style["top"],
        }
        assert style["top"] < 100
        captions.screenshot(path=str(artifacts / "page-captions-scripted.png"))
        # Completed lines only, three of them, in the middle.
        final = page.context.new_page()
        final.goto(f"{server.http_url}/captions?lines=3&provisional=0&position=middle")
        final.wait_for_function("document.querySelectorAll('#captions p').length === 3")
        assert final.locator("#captions p").all_inner_texts() == ["One.", "Two.", "Three."]
        page.click("#stop")
        page.wait_for_function("document.body.dataset.state === 'done'", timeout=30000)
        assert not errors, errors


def test_captions_follow_a_live_stream(server, browser, media, artifacts):
    """The captions view, open before the stream starts, shows the live transcript of the page
    (the fake microphone) as it comes, on a transparent background. The microphone says one
    sentence, then is silent: every line is then finished (none provisional), whether or not
    the model ended the sentence with a full stop (Transcript.close)."""
    mic_conv = media["mic"]
    with open_page(browser, f"{server.http_url}/?source=microphone") as (page, errors):
        captions = page.context.new_page()
        captions.set_viewport_size({"width": 1280, "height": 720})
        captions.goto(f"{server.http_url}/captions?lines=2&size=56")
        # The page answered (nothing to show yet): no "waiting" notice over a broadcast.
        captions.wait_for_function("document.getElementById('waiting').hidden")
        assert captions.locator("#captions p").count() == 0
        page.bring_to_front()
        page.click("#start")
        wait_state(page, "streaming", 60000)
        # The sentence has been said (the text may still be on its way).
        page.wait_for_function(
            f"window.whisperLive.stream.secondsSent >= {mic_conv.ends[-1] + 1.5}", timeout=90000
        )
        captions.wait_for_function(
            "[...document.querySelectorAll('#captions p')].some((p) => /kitten/i.test(p.textContent))"
            " && !document.querySelector('#captions p.provisional')",
            timeout=90000,
        )
        assert page.evaluate("document.body.dataset.state") == "streaming"  # finished by silence
        shown = " ".join(captions.locator("#captions p").all_inner_texts())
        assert evaluation.wer(mic_conv.reference, shown) <= 0.35, shown
        box = captions.locator("#captions").bounding_box()
        assert box["y"] + box["height"] > 720 * 0.75  # at the bottom by default
        assert captions.evaluate("getComputedStyle(document.body).backgroundColor") == "rgba(0, 0, 0, 0)"
        captions.screenshot(path=str(artifacts / "page-captions-live.png"), omit_background=True)
        stop_and_finish(page)
        assert not errors, errors


def test_live_speakers_and_keyboard(server, browser, artifacts):
    """Live diarization on the page: the config asks for it (WhisperLive's
    enable_diarization), lines get a name and colour per speaker, and everything, renaming
    included, works from the keyboard alone. Scripted server: the labels are known."""
    script = [
        {"uid": "u", "message": "SERVER_READY", "backend": "faster_whisper"},
        {
            "uid": "u",
            "segments": [
                {
                    "start": 0.0,
                    "end": 1.5,
                    "text": " Hello there.",
                    "completed": True,
                    "speaker": "SPEAKER_00",
                },
                {
                    "start": 1.8,
                    "end": 3.0,
                    "text": " Hi, how are you?",
                    "completed": True,
                    "speaker": "SPEAKER_01",
                },
                {"start": 3.2, "end": 4.0, "text": " Fine.", "completed": True, "speaker": "SPEAKER_00"},
            ],
        },
    ]
    with (
        scripted_server(script) as url,
        open_page(browser, f"{server.http_url}/?server={url}") as (page, errors),
    ):
        frames = record_frames(page)
        page.bring_to_front()  # keyboard focus and the file chooser belong to the active tab
        # Tab order from the top of the page reaches every control. (Not further: tabbing out
        # of the document in headless Chromium leaves the page unable to open a file chooser.)
        focused = []
        for _ in range(10):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.id"))
        for control in (
            "server",
            "source",
            "model",
            "language",
            "task",
            "token",
            "diarize",
            "start",
            "file-choose",
        ):
            assert control in focused, focused
        page.focus("#diarize")
        page.keyboard.press("Space")
        assert page.is_checked("#diarize")
        # Enter on "Transcribe a file…" opens the file input. (Its click is caught and the
        # dialog itself left out: after other tests in this browser, headless Chromium does
        # not always report the chooser, and opening it is the browser's part.)
        page.evaluate(
            """() => document.getElementById("file").addEventListener("click", (event) => {
                 window.__chooser = true; event.preventDefault(); }, { once: true })"""
        )
        page.focus("#file-choose")
        page.keyboard.press("Enter")
        page.wait_for_function("window.__chooser === true", timeout=5000)
        page.focus("#start")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelectorAll('#segments .segment').length === 3")
        assert json.loads(frames[0])["enable_diarization"] is True
        assert page.locator("#segments .who").all_inner_texts() == ["Speaker 1", "Speaker 2", "Speaker 1"]
        colours = page.locator("#segments .segment").evaluate_all(
            "(lis) => lis.map((li) => getComputedStyle(li).borderLeftColor)"
        )
        assert colours[0] == colours[2] != colours[1]
        # Rename Speaker 2 by keyboard: Tab from the first name field into the second.
        page.focus("#speakers input >> nth=0")
        page.keyboard.press("Tab")
        page.keyboard.press("Control+A")
        page.keyboard.type("Bob")
        assert page.locator("#segments .who").all_inner_texts() == ["Speaker 1", "Bob", "Speaker 1"]
        page.keyboard.press("Control+A")
        page.keyboard.press("Backspace")  # emptied: back to the default name
        assert page.locator("#segments .who").all_inner_texts()[1] == "Speaker 2"
        page.keyboard.type("Bob")
        page.screenshot(path=str(artifacts / "page-live-speakers.png"))
        page.focus("#stop")
        page.keyboard.press("Enter")
        wait_state(page, "done", 30000)
        files = downloads(page)
        cues = list(srt.parse(files["srt"]))
        assert [c.content for c in cues] == [
            "Speaker 1: Hello there.",
            "Bob: Hi, how are you?",
            "Speaker 1: Fine.",
        ]
        assert [c.voice for c in webvtt.from_string(files["vtt"])] == ["Speaker 1", "Bob", "Speaker 1"]
        body = json.loads(files["json"])
        assert body["speakers"] == {"SPEAKER_00": "Speaker 1", "SPEAKER_01": "Bob"}
        assert [s["speaker"] for s in body["segments"]] == ["Speaker 1", "Bob", "Speaker 1"]
        assert files["txt"] == "Speaker 1: Hello there.\nBob: Hi, how are you?\nSpeaker 1: Fine.\n"
        assert not errors, errors


def copy_into(folder: Path, path: Path) -> Path:
    """A copy beside the module's other pages (playing_tab writes its HTML next to the clip)."""
    target = folder / path.name
    if not target.exists():
        shutil.copyfile(path, target)
    return target


def test_live_tab_with_speakers(server, browser, media, artifacts):
    """The real path of live speakers: a tab plays two LibriSpeech speakers taking turns and
    the page, with "Label speakers", shows at least two names in two colours."""
    wav, turns = conversation_reference()
    reference = " ".join(t["reference_transcript"] for t in turns)
    with open_page(browser, f"{server.http_url}/?source=tab&diarize=1") as (page, errors):
        frames = record_frames(page)
        with playing_tab(page.context, copy_into(media["folder"], wav)) as tab:
            page.bring_to_front()
            page.click("#start")
            wait_state(page, "streaming", 60000)
            tab.evaluate("document.getElementById('clip').play()")
            tab.wait_for_function("window.ended", timeout=180000)
            page.wait_for_timeout(1000)
            stop_and_finish(page)
        assert json.loads(frames[0])["enable_diarization"] is True
        text = completed_text(page)
        assert evaluation.wer(reference, text) <= 0.3, text
        lines = page.locator("#segments .segment").evaluate_all(
            "(lis) => lis.map((li) => [li.querySelector('.who').textContent, getComputedStyle(li).borderLeftColor])"
        )
        named = [line for line in lines if line[0]]
        assert len(named) >= len(lines) // 2, lines
        assert len({who for who, _ in named}) >= 2 and len({colour for _, colour in named}) >= 2, lines
        assert page.locator("#speakers input").count() == len({who for who, _ in named})
        page.screenshot(path=str(artifacts / "page-live-tab-speakers.png"), full_page=True)
        assert not errors, errors


SPEAKER_FORMATS_JS = """
() => {
  const t = new Transcript();
  t.merge([{ start: 0, end: 1, text: " a < b & c", completed: true, speaker: "SPEAKER_01" },
           { start: 1, end: 2, text: " Plain.", completed: true }]);
  t.renameSpeaker("SPEAKER_01", "Ann <host> & co");
  const renamed = { srt: t.toSRT(), vtt: t.toVTT(), json: t.toJSON() };
  t.renameSpeaker("SPEAKER_01", "  ");
  return { ...renamed, restored: t.speakerName("SPEAKER_01"), unknown: t.renameSpeaker("SPEAKER_09", "x") };
}
"""


def test_speaker_names_in_every_format(browser):
    """Names with markup characters stay text in WebVTT; a line without a speaker stays bare;
    an emptied name goes back to the default. (The page from disk: no server needed.)"""
    from test_browser import CLIENT

    with open_page(browser, (CLIENT / "index.html").as_uri()) as (page, errors):
        page.wait_for_function("window.whisperLive !== undefined")
        result = page.evaluate(SPEAKER_FORMATS_JS)
        assert [c.content for c in srt.parse(result["srt"])] == ["Ann <host> & co: a < b & c", "Plain."]
        cues = list(webvtt.from_string(result["vtt"]))
        assert "<v Ann &lt;host&gt; &amp; co>a &lt; b &amp; c" in result["vtt"]
        assert cues[1].voice is None and cues[1].text == "Plain."
        assert result["json"]["segments"][0] == {
            "start": 0,
            "end": 1,
            "text": "a < b & c",
            "speaker": "Ann <host> & co",
            "speaker_id": "SPEAKER_01",
        }
        assert "speaker" not in result["json"]["segments"][1]
        assert result["restored"] == "Speaker 1" and result["unknown"] is False
        assert not errors, errors


@pytest.fixture(scope="module")
def video_file(media):
    """The JFK recording as the sound of a small WebM video (VP8 + Opus), made with ffmpeg."""
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    jfk = evaluation.manifest("jfk")[0]
    path = media["folder"] / "jfk-video.webm"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=navy:s=160x120:r=5",
            "-i",
            str(jfk.path),
            "-shortest",
            "-c:v",
            "libvpx",
            "-b:v",
            "50k",
            "-c:a",
            "libopus",
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path, jfk


def test_video_file_is_transcribed(server, browser, video_file):
    """A video file: its length comes from the browser's own reading of the metadata, its
    sound goes through the REST face, the text comes back."""
    path, jfk = video_file
    with open_page(browser, f"{server.http_url}/") as (page, errors):
        page.set_input_files("#file", str(path))
        wait_state(page, "file-done", 180000)
        assert evaluation.wer(jfk.reference, completed_text(page)) <= 0.2, completed_text(page)
        # The duration the browser read from the WebM (JFK is 11.0 s) drove the bar.
        assert float(page.get_attribute("#file-job", "data-duration")) == pytest.approx(11.0, abs=0.3)
        assert page.inner_text("#file-detail").endswith("done")
        assert page.inner_text("#file-label") == path.name
        assert not errors, errors


def test_stop_cancels_a_file(server, browser, media):
    """Stop while a file is transcribed: the request is cancelled, the lines so far stay, and
    the page (and the server) take the next file."""
    # Both conversations, 100 s: the first lines come long before the end.
    folder = evaluation.audio_root() / "conversations"
    audio = []
    for name in ("two_speakers", "three_speakers"):
        with wave.open(str(folder / f"{name}.wav")) as w:
            audio.append(np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32767)
    long_file = evaluation.write_wav(media["folder"] / "long.wav", np.concatenate(audio))
    with open_page(browser, f"{server.http_url}/") as (page, errors):
        page.set_input_files("#file", str(long_file))
        page.wait_for_function("document.querySelectorAll('#segments .segment').length > 0", timeout=120000)
        kept = page.locator("#segments .segment").count()
        page.click("#stop")
        wait_state(page, "cancelled", 30000)
        assert page.locator("#segments .segment").count() >= kept
        assert page.evaluate("document.getElementById('file-progress').value") == 0
        assert "Cancelled" in page.inner_text("#status")
        assert page.inner_text("#file-detail") == "cancelled"
        page.click("#clear")
        jfk = evaluation.manifest("jfk")[0]
        page.set_input_files("#file", str(jfk.path))
        wait_state(page, "file-done", 120000)
        assert evaluation.wer(jfk.reference, completed_text(page)) <= 0.2
        assert not errors, errors


def test_no_tab_sharing_in_this_browser(server, browser):
    """A browser without getDisplayMedia (phones): the tab choices are marked and disabled,
    and a link asking for one falls back to the microphone."""
    with contextlib.ExitStack() as stack:
        context = browser.new_context(permissions=["microphone"])
        stack.callback(context.close)
        context.add_init_script("delete MediaDevices.prototype.getDisplayMedia")
        page = context.new_page()
        page.goto(f"{server.http_url}/?source=tab")
        page.wait_for_function("window.whisperLive !== undefined")
        assert page.input_value("#source") == "microphone"
        options = page.locator("#source option").evaluate_all(
            "(os) => os.map((o) => [o.value, o.disabled, o.text])"
        )
        assert [(v, d) for v, d, _ in options] == [("microphone", False), ("tab", True), ("both", True)]
        assert all(t.endswith("not in this browser") for _, d, t in options if d)
