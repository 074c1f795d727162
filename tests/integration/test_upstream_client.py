"""WhisperLive compatibility of the clients, against the real server on real speech.

Our ``TranscriptionClient`` built as WhisperLive's ``run_client.py`` and README build it
(every 0.10 argument, by keyword); WhisperLive's own 0.10 client from PyPI, unchanged, in a
venv of its own; our CLI with ``run_client.py``'s flags, its errors, WAIT, ``--rest``; a
44.1 kHz stereo stream the server resamples; ``use_wss`` through a real TLS endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import pty
import re
import shutil
import ssl
import struct
import subprocess
import sys
import termios
import textwrap
import threading
import warnings
from pathlib import Path

import av
import numpy as np
import pyte
import pytest
import srt
from harness import evaluation
from harness.server_thread import free_port

from whisper_live.client import StreamingClient, StreamOptions, TranscriptionClient

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = "whisper-live==0.10.0"


def utterance(folder: str, uid: str) -> evaluation.Utterance:
    return next(u for u in evaluation.manifest(folder) if u.id == uid)


def srt_text(path: Path) -> str:
    return " ".join(s.content for s in srt.parse(path.read_text(encoding="utf-8")))


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "whisper_live.client", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


# ---- our TranscriptionClient, built as WhisperLive's users build it ----------------------


def test_run_client_style_construction_on_real_speech(server, tmp_path, capsys, caplog):
    utt = utterance("librispeech_dev_clean", "1988-24833-0001")  # 7.9 s, sent in real time
    callbacks = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = TranscriptionClient(
            host="127.0.0.1",
            port=server.server.port,
            lang="en",
            translate=False,
            model=server.server.pool.default_model,
            use_vad=True,
            use_wss=False,
            save_output_recording=False,
            output_recording_filename=str(tmp_path / "output_recording.wav"),
            output_transcription_path=str(tmp_path / "output.srt"),
            log_transcription=True,
            mute_audio_playback=False,
            send_last_n_segments=10,
            no_speech_thresh=0.45,
            clip_audio=False,
            same_output_threshold=10,
            transcription_callback=lambda text, segments: callbacks.append((text, segments)),
            enable_translation=True,
            target_language="fr",
            translation_callback=print,
            translation_srt_file_path=str(tmp_path / "output_translated.srt"),
            enable_timestamps=True,
            display_segments=4,
            hotwords="Knight",
            enable_diarization=True,
            max_speakers=2,
            word_timestamps=True,
            initial_prompt="A passage read from a book.",
            vad_parameters={"threshold": 0.5, "min_silence_duration_ms": 500},
        )
    assert [str(w.message) for w in caught if "enable_translation" in str(w.message)], (
        "no translation warning"
    )
    with caplog.at_level(logging.WARNING, logger="whisper_live.client.stream"):
        transcript = client(str(utt.path))
    assert transcript.final and client.ended == "end of audio"
    assert evaluation.wer(utt.reference, transcript.text) <= 0.2, transcript.text
    assert evaluation.wer(utt.reference, srt_text(tmp_path / "output.srt")) <= 0.2
    assert not (tmp_path / "output_translated.srt").exists()
    # enable_diarization: every completed segment carries its speaker (one reader here)
    assert {segment.speaker for segment in transcript.segments} == {"SPEAKER_00"}
    # word timestamps: inside each segment, in order, within it
    for segment in transcript.segments:
        assert segment.words, segment
        assert segment.start - 0.5 <= segment.words[0].start <= segment.words[-1].end <= segment.end + 0.5
    # the console: the transcript's lines (its segments grouped) with [start -> end], each once
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    lines = transcript.lines
    assert len(printed) == len(lines) and printed[-1].endswith(lines[-1].text)
    assert printed[0].startswith(f"[{lines[0].start:.3f} -> {lines[0].end:.3f}]")
    # WhisperLive's transcription_callback(text, segments): segments as dicts, the last call has it all
    text, segments = callbacks[-1]
    assert evaluation.wer(utt.reference, text) <= 0.2 and all("start" in s and "text" in s for s in segments)


def test_display_segments_window_on_a_terminal(server, tmp_path):
    """On a terminal (a real pty) ``display_segments=N`` keeps the text in a window of N lines,
    redrawn in place: a terminal emulator's screen ends with the last lines only."""
    utt = utterance("librispeech_dev_clean", "1988-24833-0001")
    script = textwrap.dedent(f"""
        from whisper_live.client import TranscriptionClient
        client = TranscriptionClient("127.0.0.1", {server.server.port}, lang="en", enable_timestamps=True,
                                     display_segments=2, speed=None, progress=False)
        client({str(utt.path)!r})
    """)
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))  # 30 rows, 100 columns
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=secondary, stderr=subprocess.PIPE, close_fds=True
    )
    os.close(secondary)
    output = bytearray()
    with contextlib.suppress(OSError):
        while chunk := os.read(primary, 4096):
            output += chunk
    os.close(primary)
    assert proc.wait(120) == 0, proc.stderr.read()
    screen = pyte.Screen(100, 30)
    pyte.Stream(screen).feed(output.decode())
    shown = [line.rstrip() for line in screen.display if line.strip()]
    # at most two lines stay on the screen: the end of the text, timestamped (wrapped lines indented)
    assert 1 <= len(shown) <= 2 and shown[0].startswith(("[", " ")), shown
    assert all(line.startswith("[") or line.startswith(" " * 10) for line in shown), shown
    last_words = evaluation.normalize(utt.reference).split()[-3:]
    assert evaluation.normalize(" ".join(shown)).split()[-3:] == last_words, shown
    assert b"\x1b[2J" not in output  # the screen is never cleared: what was there stays


# ---- WhisperLive's own client ------------------------------------------------------------


@pytest.fixture(scope="session")
def upstream_python(artifacts) -> Path:
    """A venv holding WhisperLive 0.10 from PyPI (its sdist, no dependencies) and only what its
    client module imports: numpy, websocket-client, av, scipy and PyAudio (built against
    Debian's portaudio19-dev). Kept between runs."""
    venv = artifacts / "upstream-whisper-live-0.10.0"
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    if not ready.exists():
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "-q", "--no-deps", UPSTREAM],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "numpy",
                "websocket-client",
                "av",
                "scipy",
                "PyAudio",
            ],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, timeout=1200)
            if result.returncode != 0:
                pytest.fail(f"{' '.join(step)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
        ready.touch()
    return python


@pytest.mark.slow
def test_whisperlive_own_client_against_our_server(server, upstream_python, tmp_path):
    utt = utterance("librispeech_dev_clean", "1988-24833-0001")
    out = tmp_path / "output.srt"
    script = textwrap.dedent(f"""
        import whisper_live, whisper_live.client
        print("MODULE", whisper_live.__file__, flush=True)
        client = whisper_live.client.TranscriptionClient(
            "127.0.0.1", {server.server.port}, lang="en", translate=False, model="small", use_vad=True,
            mute_audio_playback=True, output_transcription_path={str(out)!r}, enable_timestamps=True,
            display_segments=2, enable_diarization=True, max_speakers=2,
        )
        print("RESULT", client({str(utt.path)!r}), flush=True)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(upstream_python), "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    module = next(line for line in lines if line.startswith("MODULE"))
    assert str(upstream_python.parent.parent) in module, "not WhisperLive's own package"
    # its backend check passed (it keeps segments and writes SRT only for faster_whisper)
    assert "Server Running with backend faster_whisper" in result.stdout
    # our server's warning, printed by its status handler: the model it lacks ("small")
    assert "Message from Server:" in result.stdout and "'small'" in result.stdout
    text = next(line for line in lines if line.startswith("RESULT"))[len("RESULT") :]
    assert evaluation.wer(utt.reference, text) <= 0.2, result.stdout[-3000:]
    assert evaluation.wer(utt.reference, srt_text(out)) <= 0.2
    assert "[0.0" in result.stdout  # enable_timestamps: its own timestamped display


# ---- our CLI with run_client.py's flags ----------------------------------------------------


def test_cli_with_run_client_flags(server, tmp_path):
    utt = utterance("librispeech_dev_clean", "1988-24833-0000")
    model = server.server.pool.default_model
    result = cli(
        "-s", "127.0.0.1", "-p", str(server.server.port), "-f", str(utt.path), "-l", "en", "-m", model, "-a",
        "--enable_timestamps", "--n_display_segments", "2", "--enable_translation", "-tl", "de", "--fast",
        "--srt", f"{tmp_path}/subs/",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("[") and " -> " in line for line in lines), result.stdout
    assert evaluation.wer(utt.reference, " ".join(line.split("] ", 1)[1] for line in lines)) <= 0.2
    assert evaluation.wer(utt.reference, srt_text(tmp_path / "subs" / f"{utt.path.stem}.srt")) <= 0.2
    assert "enable_translation" in result.stderr and "'de'" in result.stderr
    summary = result.stderr.strip().splitlines()[-1]
    words = len(evaluation.normalize(utt.reference).split())
    assert f"{utt.path}: " in summary and "ended: end of audio" in summary
    assert abs(int(summary.split(" words")[0].rsplit(" ", 1)[1]) - words) <= 3, summary


@pytest.mark.parametrize(
    "case", ["missing file", "not audio", "http port", "closed port", "model not served", "bad language"]
)
def test_cli_errors_are_one_line_and_fail(server, tmp_path, case):
    audio = str(utterance("jfk", "jfk").path)
    host_port = ["--server", server.ws_url]
    language = "en"
    if case == "bad language":  # issue 15: once nothing on stdout, exit 0, tracebacks in the server's log
        args, expect, language = [audio, *host_port, "--fast"], "unsupported language 'xx'", "xx"
    elif case == "closed port":
        args, expect = [audio, "--server", f"ws://127.0.0.1:{free_port()}"], "cannot connect to"
    elif case == "missing file":
        args, expect = [str(tmp_path / "nope.wav"), *host_port], "no such file"
    elif case == "not audio":
        (tmp_path / "notes.wav").write_text("not audio at all\n")
        args, expect = [str(tmp_path / "notes.wav"), *host_port], "not an audio or video file"
    elif case == "http port":
        args, expect = [audio, "-s", "127.0.0.1", "-p", str(server.server.http_port)], "the HTTP port?"
    else:
        args, expect = (
            [audio, *host_port, "-m", "no-such-model", "--fast"],
            "model 'no-such-model' is not served",
        )
    result = cli(*args, "--lang", language)
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expect in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count(Path(args[0]).name) <= 1, result.stderr  # the file named once


def test_cli_shows_wait_retries_with_the_servers_estimate(server):
    audio = str(utterance("jfk", "jfk").path)
    with server.configured(max_clients=1, max_connection_time=120):
        holder = StreamingClient(server.ws_url, StreamOptions(language="en")).connect()
        try:
            result = cli(
                audio, "--server", server.ws_url, "--retries", "2", "--max-wait", "0.5", "--lang", "en"
            )
        finally:
            holder.close()
    assert result.returncode == 1
    waits = [line for line in result.stderr.splitlines() if "server full (WAIT)" in line]
    assert len(waits) == 2, result.stderr
    assert "retry 1/2" in waits[0] and "retry 2/2" in waits[1]
    # the server's estimate as it sent it: when the holder is expected to end (from how long
    # this session's streams lasted), never past its 2-minute time limit
    said = re.search(r"free slot within (\d+\.\d) min", waits[0])
    assert said and 0.0 <= float(said.group(1)) <= 2.0, waits[0]
    assert "still WAIT after 3 attempts" in result.stderr


def test_cli_rest_mode(server, tmp_path):
    utts = [utterance("jfk", "jfk"), utterance("ljspeech", "LJ001-0002")]
    result = cli(
        "--rest", *(str(u.path) for u in utts), "--server", f"127.0.0.1:{server.server.port}",
        "--http-url", server.http_url, "--lang", "en", "--srt", str(tmp_path / "srt"), "--enable_timestamps",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for utt in utts:
        assert evaluation.wer(utt.reference, srt_text(tmp_path / "srt" / f"{utt.path.stem}.srt")) <= 0.15
        assert f"{utt.path}: " in result.stderr and "(REST)" in result.stderr
    assert "11.0 s of audio" in result.stderr  # jfk, as the server measured it
    wrong = cli("--rest", str(utts[0].path), "--http-url", server.ws_url.replace("ws://", "http://"))
    assert wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr


# ---- a client that cannot resample ---------------------------------------------------------


def test_44k_stereo_stream_declared_with_sample_rate(server):
    utt = utterance("jfk", "jfk")  # stored as 44.1 kHz stereo
    with av.open(str(utt.path)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.rate, stream.channels
        frames = [f.to_ndarray() for f in container.decode(stream)]
    assert (rate, channels) == (44100, 2) and not stream.format.is_planar
    pcm = np.concatenate([f.reshape(-1) for f in frames])  # packed s32: interleaved L R L R
    stereo = (pcm.reshape(-1, 2) / 2**31 * 32767).astype(np.int16)  # (n, 2) int16 as a sound card gives
    options = StreamOptions(language="en", sample_rate=rate, channels=channels)
    with StreamingClient(server.ws_url, options) as client:
        for pos in range(0, len(stereo), 4096):
            assert client.send(stereo[pos : pos + 4096])
    transcript = client.transcript
    assert transcript.final
    assert evaluation.wer(utt.reference, transcript.text) <= 0.15, transcript.text
    assert 10.0 <= transcript.segments[-1].end <= 11.5  # times are in the 16 kHz timeline


# ---- use_wss --------------------------------------------------------------------------------


@pytest.fixture
def wss_port(server, tmp_path, monkeypatch):
    """A real TLS endpoint in front of the server (as a reverse proxy would be), with a
    self-signed certificate the client is told to trust through SSL_CERT_FILE."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    loop = asyncio.new_event_loop()

    async def pipe(reader, writer):
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader, writer):
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", server.server.port)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    proxy = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0, ssl=context))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield proxy.sockets[0].getsockname()[1]
    loop.call_soon_threadsafe(proxy.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_use_wss_connects_over_tls(server, wss_port):
    utt = utterance("ljspeech", "LJ001-0002")
    client = TranscriptionClient(
        "127.0.0.1", wss_port, lang="en", use_wss=True, log_transcription=False, speed=None, progress=False
    )
    assert client.url.startswith("wss://")
    transcript = client(str(utt.path))
    assert evaluation.wer(utt.reference, transcript.text) <= 0.25, transcript.text
