"""The Python client and CLI against the real server (real model), with real audio and real
stream servers: files in several formats, HLS over HTTP, RTSP from GStreamer, a PulseAudio
microphone, and WAIT/retry."""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import srt
import webvtt
from harness import evaluation
from harness.server_thread import free_port

from whisper_live.client import (
    AsyncStreamingClient,
    RetryPolicy,
    ServerBusy,
    ServerError,
    StreamingClient,
    StreamOptions,
    TranscriptionClient,
)
from whisper_live.client.sources import Source
from whisper_live.client.transcript import LINE_CHARS, LINE_PAUSE, SENTENCE_END
from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.media import decode_audio

REPO = Path(__file__).resolve().parents[2]
AUDIO = evaluation.audio_root()


def utterance(folder: str, uid: str) -> evaluation.Utterance:
    return next(u for u in evaluation.manifest(folder) if u.id == uid)


LIBRI = functools.partial(utterance, "librispeech_dev_clean")


def make_client(server, **kwargs) -> TranscriptionClient:
    kwargs.setdefault("speed", None)  # as fast as the server takes it, unless pacing is tested
    kwargs.setdefault("lang", "en")
    kwargs.setdefault("log_transcription", False)
    return TranscriptionClient(url=server.ws_url, progress=False, **kwargs)


def check_subtitles(srt_path: Path, vtt_path: Path, duration: float, reference: str, max_wer: float):
    """Parse both files with real parsers; cues in order, inside the audio, saying the text."""
    subs = list(srt.parse(srt_path.read_text(encoding="utf-8")))
    assert subs, "empty SRT"
    starts = [s.start.total_seconds() for s in subs]
    assert starts == sorted(starts)
    assert all(s.end >= s.start for s in subs)
    assert subs[-1].end.total_seconds() <= duration + 1.0
    assert evaluation.wer(reference, " ".join(s.content for s in subs)) <= max_wer
    cues = webvtt.read(str(vtt_path))
    assert len(cues) == len(subs)
    for cue, sub in zip(cues, subs, strict=True):
        assert cue.text.strip() == sub.content.strip()
        assert cue.start == srt.timedelta_to_srt_timestamp(sub.start).replace(",", ".")
        assert cue.end == srt.timedelta_to_srt_timestamp(sub.end).replace(",", ".")


def mp3_of(src: Path, tmp_path: Path) -> Path:
    """An MP3 made from a shared recording (48 kHz stereo: both rate and layout need converting)."""
    out = tmp_path / (src.stem + ".mp3")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(src), "-ar", "48000", "-ac", "2",
         "-b:a", "96k", str(out)],
        check=True,
    )  # fmt: skip
    return out


FILES = {
    # id: (folder, utterance id, max WER, make the file)
    "flac-16k": ("librispeech_dev_clean", "1988-24833-0001", 0.2, None),
    "flac-44k-stereo": ("jfk", "jfk", 0.15, None),
    "wav-22k": ("ljspeech", "LJ001-0001", 0.25, None),
    "mp3-48k-stereo": ("librispeech_dev_clean", "2412-153948-0001", 0.25, mp3_of),
}


@pytest.mark.parametrize("kind", FILES)
def test_file_formats_give_transcript_and_subtitles(server, tmp_path, kind):
    folder, uid, max_wer, convert = FILES[kind]
    utt = utterance(folder, uid)
    path = convert(utt.path, tmp_path) if convert else utt.path
    completed = []
    client = make_client(
        server,
        srt_path=str(tmp_path / "out.srt"),
        vtt_path=str(tmp_path / "out.vtt"),
        on_completed=completed.append,
    )
    transcript = client(str(path))
    assert transcript.final
    assert evaluation.wer(utt.reference, transcript.text) <= max_wer, transcript.text
    assert completed == transcript.segments
    duration = len(decode_audio(str(utt.path))) / SAMPLE_RATE
    check_subtitles(tmp_path / "out.srt", tmp_path / "out.vtt", duration, utt.reference, max_wer)


def test_whisperlive_style_construction(server, tmp_path, capsys):
    """Called as WhisperLive's users call it: positional host and port, its model names, its
    server-side arguments, output_transcription_path; prints the text as it goes."""
    utt = utterance("ljspeech", "LJ001-0002")  # 1.9 s, sent in real time as WhisperLive does
    statuses = []
    client = TranscriptionClient(
        "127.0.0.1",
        server.server.port,
        lang="en",
        translate=False,
        model="small",  # not on this server: it warns and serves its default model
        use_vad=True,
        save_output_recording=True,
        output_recording_filename=str(tmp_path / "recording.wav"),
        output_transcription_path=str(tmp_path / "out.srt"),
        max_clients=4,
        max_connection_time=600,
        on_status=statuses.append,
        progress=False,
    )
    transcript = client(str(utt.path))
    assert evaluation.wer(utt.reference, transcript.text) <= 0.25
    assert evaluation.wer(utt.reference, capsys.readouterr().out) <= 0.25
    assert any(m.get("status") == "WARNING" and "small" in m.get("message", "") for m in statuses), statuses
    assert list(srt.parse((tmp_path / "out.srt").read_text()))
    source, record_to = client.source_for()  # client() with no source: the microphone, recorded
    assert source.live and source.name == "microphone" and record_to == str(tmp_path / "recording.wav")
    with pytest.raises(TypeError, match="no_such_option"):
        TranscriptionClient(no_such_option=1)


def test_file_sent_in_real_time_shows_partials_before_the_end(server):
    utt = LIBRI("1988-24833-0001")  # 7.9 s
    duration = len(decode_audio(str(utt.path))) / SAMPLE_RATE
    partials: list[tuple[float, str]] = []
    started = time.monotonic()
    client = make_client(server, speed=1.0, on_partial=lambda text: partials.append((time.monotonic(), text)))
    transcript = client(str(utt.path))
    assert client.sent_seconds == pytest.approx(duration, abs=0.01)
    assert duration - 0.3 <= client.send_duration <= duration + 1.0, "not sent at real-time pace"
    early = [text for at, text in partials if at - started < duration - 1.0 and text]
    assert early, "no partial text while the audio was still being sent"
    assert evaluation.wer(utt.reference, transcript.text) <= 0.2


def test_faster_than_real_time_sending(server):
    utt = utterance("jfk", "jfk")  # 11 s
    client = make_client(server, speed=4.0)
    transcript = client(str(utt.path))
    assert client.sent_seconds == pytest.approx(11.0, abs=0.05)
    assert 11.0 / 4 - 0.3 <= client.send_duration <= 11.0 / 4 + 1.5
    assert evaluation.wer(utt.reference, transcript.text) <= 0.15


def test_max_duration_cuts_the_audio(server, tmp_path):
    saved = tmp_path / "first3s.wav"
    client = make_client(server, max_duration=3.0)
    transcript = client(str(utterance("jfk", "jfk").path), save_file=str(saved))
    with wave.open(str(saved)) as wav:
        assert wav.getnframes() == 3 * SAMPLE_RATE
    words = evaluation.normalize(transcript.text).split()
    assert "americans" in words and "country" not in words, transcript.text


def test_streaming_client_sends_arrays_and_bytes(server):
    utts = [LIBRI("1988-24833-0000"), LIBRI("1988-24833-0002")]
    conv = evaluation.conversation(utts, gap=1.5, lead=0.5)
    half = len(conv.audio) // 2
    partials, completed = [], []
    with StreamingClient(
        server.ws_url, StreamOptions(language="en"), on_partial=partials.append, on_completed=completed.append
    ) as stream:
        for pos in range(0, half, 4096):  # float32 NumPy blocks, converted to int16 on the way
            assert stream.send(conv.audio[pos : min(pos + 4096, half)])
        pcm = evaluation.to_pcm(conv.audio[half:])  # raw int16 bytes, cut at odd sizes
        for pos in range(0, len(pcm), 5001):
            assert stream.send(pcm[pos : pos + 5001])
    transcript = stream.transcript
    assert transcript.final
    assert completed == transcript.segments and len(completed) >= 2
    assert evaluation.wer(conv.reference, transcript.text) <= 0.2, transcript.text
    assert transcript.segments[0].end <= conv.starts[1] + 0.5 < transcript.segments[-1].start + 1.0


def test_async_client_float32_in_a_running_loop(server):
    utt = LIBRI("2412-153948-0000")
    audio = decode_audio(str(utt.path))
    languages = []

    async def run():
        on_language = asyncio.Event()

        async def language(code, probability):  # async callbacks are awaited
            languages.append((code, probability))
            on_language.set()

        options = StreamOptions(audio_format="float32")  # no language: the server detects it
        async with AsyncStreamingClient(server.ws_url, options, on_language=language) as stream:
            for pos in range(0, len(audio), 8000):
                await stream.send(audio[pos : pos + 8000])
        return stream.transcript

    transcript = asyncio.run(run())
    assert evaluation.wer(utt.reference, transcript.text) <= 0.25, transcript.text
    assert languages and languages[0][0] == "en" and transcript.language == "en"


def test_word_by_word_pieces_are_printed_and_written_as_lines(server, tmp_path, capsys):
    """The real model, in real time, on five LJ Speech clips (three sentences, one of them
    longer than a caption): the client asks for word by word, the server completes more
    segments than the transcript has lines, and the console, the SRT and the text are the
    lines, each break between them with a reason (a sentence's end, a pause, a caption's length)."""
    clips = ("LJ001-0001", "LJ001-0002", "LJ001-0005", "LJ001-0006", "LJ001-0008")
    conv = evaluation.conversation([utterance("ljspeech", uid) for uid in clips], gap=0.4, lead=0.5)
    wav = evaluation.write_wav(tmp_path / "talk.wav", conv.audio)
    completed = []
    client = make_client(
        server,
        speed=1.0,
        log_transcription=True,
        srt_path=str(tmp_path / "talk.srt"),
        on_completed=completed.append,
    )
    assert client.options.config()["commit_after"] == 0
    transcript = client(str(wav))
    assert transcript.final and completed == transcript.segments
    lines = transcript.lines
    assert len(completed) > len(lines) >= 3, [s.text for s in completed]  # word by word happened
    assert evaluation.wer(conv.reference, transcript.text) <= 0.2, transcript.text
    assert transcript.text == " ".join(line.text for line in lines)
    for line in lines:
        assert len(line.text) <= LINE_CHARS or len(line.segments) == 1, line
    for line, following in zip(lines, lines[1:], strict=False):
        reason = (
            SENTENCE_END.search(line.text)
            or following.start - line.end >= LINE_PAUSE
            or len(line.text) + 1 + len(following.text) > LINE_CHARS
            or following.speaker != line.speaker
        )
        assert reason, (line.text, following.text)
    assert any(SENTENCE_END.search(line.text) for line in lines), [line.text for line in lines]
    # printed once each, as lines, not pieces
    assert capsys.readouterr().out.splitlines() == [line.text for line in lines]
    cues = list(srt.parse((tmp_path / "talk.srt").read_text(encoding="utf-8")))
    assert [c.content for c in cues] == [line.text for line in lines]
    assert [(c.start.total_seconds(), c.end.total_seconds()) for c in cues] == [
        (pytest.approx(line.start, abs=0.002), pytest.approx(line.end, abs=0.002)) for line in lines
    ]


def test_a_line_closed_by_silence_is_printed_while_the_stream_is_still_open(server, capsys):
    """The real model over a real socket: a sentence cut short ("Somehow or other cat has
    taught them that he's", where tiny.en puts no full stop), then ten seconds of silence on
    a live source (the stream open, no END_OF_AUDIO yet): the last line is on the console
    before the stream ends, whatever its punctuation (close_lines: the stream moved on and
    the server went quiet). Without the rule a line without a full stop waited for the next
    speech or the end of the stream, and this failed with nothing printed."""
    audio = decode_audio(str(LIBRI("1988-24833-0001").path))
    sent = np.concatenate((audio[: int(2.8 * SAMPLE_RATE)], np.zeros(10 * SAMPLE_RATE, np.float32)))
    block = SAMPLE_RATE // 10
    before_the_end: list[str] = []
    callbacks: list[list[dict]] = []
    called_before_the_end: list[dict] = []

    def blocks():  # in real time, as a microphone would deliver them
        started = time.monotonic()
        for i, pos in enumerate(range(0, len(sent), block)):
            yield sent[pos : pos + block]
            time.sleep(max(0.0, started + (i + 1) * 0.1 - time.monotonic()))
        # the audio has not ended yet: what the console and the callback have shown so far
        before_the_end.extend(capsys.readouterr().out.splitlines())
        called_before_the_end.extend(callbacks[-1] if callbacks else [])

    client = make_client(
        server, log_transcription=True, transcription_callback=lambda text, segs: callbacks.append(segs)
    )
    transcript = asyncio.run(client.transcribe(Source("live speech", blocks, live=True)))
    after = capsys.readouterr().out.splitlines()
    lines = [line.text for line in transcript.lines]
    assert transcript.final and lines, transcript.segments
    assert before_the_end == lines and after == [], (before_the_end, after)
    assert [(s["text"], s["completed"]) for s in called_before_the_end] == [(line, True) for line in lines]
    words = evaluation.normalize(transcript.text).split()
    assert "somehow" in words and "sleeping" not in words, transcript.text


def test_transcript_counts_resent_segments_once():
    """WhisperLive's server re-sends completed segments, with times as strings."""
    from whisper_live.client import Transcript

    transcript = Transcript()
    first = {"start": "0.000", "end": "1.500", "text": " Hello", "completed": True}
    second = {"start": "1.500", "end": "2.000", "text": " there", "completed": True}
    partial = {"start": "2.000", "end": "2.400", "text": " gen", "completed": False}
    assert [s.text for s in transcript.update([first, partial])] == [" Hello"]
    assert transcript.partial.text == " gen"
    assert [s.text for s in transcript.update([first, second])] == [" there"]
    assert transcript.partial is None
    assert transcript.update([first, second, partial]) == []
    assert transcript.text == "Hello there" and transcript.text_with_partial == "Hello there gen"
    # the subtitles are lines: the two pieces read as one (no sentence end, no pause between)
    assert transcript.to_srt() == "1\n00:00:00,000 --> 00:00:02,000\nHello there\n"


def test_server_error_is_raised(server):
    # The test server's default model is English-only: asking it to translate is refused.
    client = make_client(server, translate=True, lang="de")
    with pytest.raises(ServerError, match="English-only"):
        client(str(utterance("jfk", "jfk").path))


# ---- WAIT -------------------------------------------------------------------------------


def test_wait_then_retry_succeeds_once_a_slot_frees(server):
    utt = LIBRI("1988-24833-0000")
    waits, released, audio_started = [], [], []

    with server.configured(max_clients=1):
        holder = StreamingClient(server.ws_url, StreamOptions(language="en")).connect()

        def release():
            released.append(time.monotonic())
            holder.finish()

        releaser = threading.Timer(2.5, release)
        releaser.start()
        try:
            client = make_client(
                server,
                retry=RetryPolicy(initial_delay=0.5, factor=1.5, max_delay=2.0, max_attempts=15),
                on_wait=lambda attempt, delay: waits.append(delay),
                on_audio_start=lambda: audio_started.append(time.monotonic()),
            )
            transcript = client(str(utt.path))
        finally:
            releaser.join()
    assert client.waits == len(waits) >= 2, "the server should have answered WAIT while the slot was held"
    assert waits[1] > waits[0], "backoff should grow"
    assert audio_started[0] >= released[0], "the stream started before the slot was free"
    assert audio_started[0] - released[0] < 3.5, "the retry came much later than the backoff allows"
    assert evaluation.wer(utt.reference, transcript.text) <= 0.2


def test_wait_gives_up_after_the_configured_attempts(server):
    with server.configured(max_clients=1):
        holder = StreamingClient(server.ws_url).connect()
        try:
            client = make_client(server, retry=RetryPolicy(initial_delay=0.2, max_attempts=2))
            with pytest.raises(ServerBusy):
                client(str(utterance("jfk", "jfk").path))
            assert client.waits == 2
        finally:
            holder.close()


def test_disconnect_at_the_time_limit_keeps_what_was_said(server):
    utt = utterance("jfk", "jfk")  # 11 s, sent in real time; the server allows 4 s
    disconnect = []
    with server.configured(max_connection_time=4.0):
        client = make_client(
            server,
            speed=1.0,
            on_status=lambda m: (
                disconnect.append(time.monotonic()) if m.get("message") == "DISCONNECT" else None
            ),
        )
        transcript = client(str(utt.path))
    # The client must not hang on after DISCONNECT (e.g. in a send blocked on a server that no
    # longer reads, or in a close handshake).
    assert disconnect and time.monotonic() - disconnect[0] < 2.0
    assert transcript.disconnected and not transcript.final
    words = evaluation.normalize(transcript.text).split()
    assert "americans" in words and "country" not in words, transcript.text


# ---- HLS --------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path):
    """A real HTTP server on loopback serving tmp_path."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_hls_stream(server, http_dir, tmp_path_factory):
    folder, base = http_dir
    utt = utterance("jfk", "jfk")  # 44.1 kHz stereo in, AAC 48 kHz in the stream
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(utt.path), "-c:a", "aac", "-ar", "48000",
         "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", str(folder / "live.m3u8")],
        check=True,
    )  # fmt: skip
    assert len(list(folder.glob("*.ts"))) >= 4
    saved = tmp_path_factory.mktemp("hls") / "kept.wav"
    transcript = make_client(server)(hls_url=f"{base}/live.m3u8", save_file=str(saved))
    assert evaluation.wer(utt.reference, transcript.text) <= 0.15, transcript.text
    with wave.open(str(saved)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (SAMPLE_RATE, 1, 2)
        assert abs(wav.getnframes() / SAMPLE_RATE - 11.0) < 0.3


# ---- RTSP -------------------------------------------------------------------------------


def _system_python_has_rtsp_server() -> str | None:
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        result = subprocess.run(["/usr/bin/python3", "-c", probe], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if result.returncode == 0 else result.stderr.decode(errors="replace")[-300:]


@pytest.fixture
def rtsp_url():
    problem = _system_python_has_rtsp_server()
    if problem:
        pytest.skip(f"GStreamer RTSP server unavailable (run scripts/install-system-deps.sh): {problem}")
    utt = LIBRI("1988-24833-0003")  # 5.2 s
    port = free_port()
    proc = subprocess.Popen(
        [
            "/usr/bin/python3",
            str(REPO / "tests" / "integration" / "rtsp_server.py"),
            str(utt.path),
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    try:
        line = proc.stdout.readline()
        watchdog.cancel()
        assert line.startswith("READY "), f"RTSP server did not start: {line!r}"
        yield line.split()[1], utt
    finally:
        watchdog.cancel()
        proc.terminate()
        proc.wait(10)


def test_rtsp_stream(server, rtsp_url, tmp_path):
    url, utt = rtsp_url
    saved = tmp_path / "rtsp.wav"
    started = time.monotonic()
    transcript = make_client(server, srt_path=str(tmp_path / "rtsp.srt"))(rtsp_url=url, save_file=str(saved))
    assert time.monotonic() - started >= 4.5, "an RTSP stream plays in real time"
    assert evaluation.wer(utt.reference, transcript.text) <= 0.2, transcript.text
    assert list(srt.parse((tmp_path / "rtsp.srt").read_text()))
    # what was kept is the resampled stream: 16 kHz and as long as the recording
    kept = decode_audio(str(saved))
    assert abs(len(kept) / SAMPLE_RATE - 5.16) < 0.3


# ---- microphone -------------------------------------------------------------------------


@pytest.fixture
def pulse_env(tmp_path):
    """A real PulseAudio daemon with a null sink whose monitor is the default source, and an
    ALSA configuration that routes PortAudio's default device to it."""
    if not shutil.which("pulseaudio") or not shutil.which("paplay"):
        pytest.skip("pulseaudio/paplay not installed (run scripts/install-system-deps.sh)")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text("pcm.!default { type pulse }\nctl.!default { type pulse }\n")
    socket = tmp_path / "pulse.sock"
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(tmp_path), PULSE_SERVER=f"unix:{socket}")
    subprocess.run(
        ["pulseaudio", "--daemonize=yes", "--system=false", "--exit-idle-time=-1", "-n", "--use-pid-file=yes",
         f"--load=module-native-protocol-unix socket={socket} auth-anonymous=1",
         "--load=module-null-sink sink_name=virtual_mic", "--load=module-always-sink"],
        env=env, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    pid_file = tmp_path / "pulse" / "pid"
    try:
        info = subprocess.run(["pactl", "info"], env=env, capture_output=True, text=True, timeout=10)
        assert "Default Source: virtual_mic.monitor" in info.stdout, info.stdout + info.stderr
        yield env
    finally:
        if pid_file.exists():
            subprocess.run(["kill", pid_file.read_text().strip()], check=False)


def test_microphone_cli_until_ctrl_c(server, pulse_env, tmp_path):
    """``whisper-live-client --mic`` hears a recording played into the default input device;
    Ctrl-C ends the audio and the final text still arrives and is written."""
    utt = LIBRI("1988-24833-0001")  # 7.9 s
    out = tmp_path / "mic.srt"
    kept = tmp_path / "mic.wav"
    client = subprocess.Popen(
        [sys.executable, "-m", "whisper_live.client", "--mic", "--lang", "en", "--server", server.ws_url,
         "--srt", str(out), "--save-audio", str(kept)],
        env=pulse_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    watchdog = threading.Timer(90, client.kill)
    watchdog.start()
    try:
        line = client.stderr.readline()
        assert "listening on the microphone" in line, line + client.stderr.read()
        subprocess.run(["paplay", str(utt.path)], env=pulse_env, check=True, timeout=30)
        time.sleep(1.0)
        client.send_signal(signal.SIGINT)
        stdout, stderr = client.communicate(timeout=60)
    finally:
        watchdog.cancel()
        client.kill()
    assert client.returncode == 0, stderr
    assert evaluation.wer(utt.reference, stdout) <= 0.2, stdout + stderr
    assert evaluation.wer(utt.reference, " ".join(s.content for s in srt.parse(out.read_text()))) <= 0.2
    recording = decode_audio(str(kept))
    assert 8.0 < len(recording) / SAMPLE_RATE < 15.0
    assert np.sqrt(np.mean(recording**2)) > 0.01, "the recording is silent"


# ---- CLI --------------------------------------------------------------------------------


def test_cli_several_files_to_srt_and_vtt(server, tmp_path):
    utts = [LIBRI("1988-24833-0000"), utterance("ljspeech", "LJ001-0002")]
    result = subprocess.run(
        [sys.executable, "-m", "whisper_live.client", *(str(u.path) for u in utts), "--fast", "--lang", "en",
         "--server", server.ws_url, "--srt", str(tmp_path / "srt"), "--vtt", str(tmp_path / "vtt"),
         "--commit-after", "8"],  # whole utterances, as the server's default gives them
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for utt in utts:
        stem = utt.path.stem
        assert f"== {utt.path}" in result.stdout
        subs = list(srt.parse((tmp_path / "srt" / f"{stem}.srt").read_text()))
        assert evaluation.wer(utt.reference, " ".join(s.content for s in subs)) <= 0.25
        cues = webvtt.read(str(tmp_path / "vtt" / f"{stem}.vtt"))
        assert [c.text for c in cues] == [s.content for s in subs]


def test_cli_reports_unreachable_server(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "whisper_live.client", str(utterance("jfk", "jfk").path), "--server",
         f"127.0.0.1:{free_port()}"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "cannot connect" in result.stderr
