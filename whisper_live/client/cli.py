"""``whisper-live-client``: transcribe files, the microphone, RTSP or HLS on a whisper-live server.

It also takes WhisperLive's ``run_client.py`` flags (``-s HOST -p PORT -f FILE...``,
``--enable_timestamps``, ``--n_display_segments`` ...), so its documented commands work.
Output is for a person: the text on stdout, everything else on stderr in one line each
(WAIT retries with the server's estimate, errors, a summary per source).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import warnings
from pathlib import Path

from .. import __version__
from ..core.options import MAX_COMMIT_AFTER
from .stream import ClientError, RetryPolicy, server_url

PROG = "whisper-live-client"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Stream audio to a whisper-live (WhisperLive-compatible) server and print the text.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("files", nargs="*", metavar="FILE", help="audio/video files (anything FFmpeg reads)")
    source = parser.add_argument_group("other sources (instead of files)")
    source.add_argument("--mic", action="store_true", help="the default microphone (Ctrl-C to stop)")
    source.add_argument("--rtsp", metavar="URL", help="an RTSP stream")
    source.add_argument("--hls", metavar="URL", help="an HLS stream (.m3u8)")
    source.add_argument("--device", help="input device for --mic (sounddevice name or index)")
    source.add_argument("--duration", type=float, help="stop a live source after this many seconds")
    source.add_argument("--save-audio", metavar="WAV", help="keep the audio sent (16 kHz mono WAV)")
    parser.add_argument(
        "--server", "-s", default="localhost", help="host[:port] or ws:// URL (default localhost:9090)"
    )
    parser.add_argument("--port", "-p", type=int, help="WebSocket port when --server has none (default 9090)")
    parser.add_argument("--lang", "-l", help="language code (default: detect)")
    parser.add_argument("--translate", "-t", action="store_true", help="translate to English")
    parser.add_argument("--model", "-m", help="model the server should use (default: the server's)")
    parser.add_argument("--no-vad", action="store_true", help="turn voice activity detection off")
    parser.add_argument("--prompt", help="initial prompt (vocabulary, spelling)")
    parser.add_argument("--hotwords", help="words to favour (names, jargon)")
    parser.add_argument(
        "--srt", metavar="OUT", help="write SRT here (OUT/<name>.srt when OUT/ or several files)"
    )
    parser.add_argument("--vtt", metavar="OUT", help="write WebVTT here (OUT/<name>.vtt likewise)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, help="file sending speed × real time (default 1)")
    pace.add_argument("--fast", action="store_true", help="send files as fast as the server takes them")
    pace.add_argument(
        "--rest", action="store_true", help="send files through the REST API: whole-file accuracy, in seconds"
    )
    parser.add_argument("--http-url", metavar="URL", help="REST API for --rest (default http://HOST:8001)")
    parser.add_argument("--retries", type=int, default=20, help="reconnect attempts while the server is full")
    parser.add_argument("--max-wait", type=float, default=30.0, help="longest backoff between retries (s)")
    parser.add_argument(
        "--no-reconnect",
        action="store_true",
        help="end with an error when the connection drops, instead of resuming the stream on a new one",
    )
    parser.add_argument(
        "--commit-after",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="how old an utterance must be before the server commits any of it (default 0: word by"
        " word, printed as lines; 8: whole utterances, completed at their pause)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no partial text, progress or summary")
    upstream = parser.add_argument_group("WhisperLive run_client.py flags")
    upstream.add_argument("--files", "-f", nargs="+", default=[], dest="more_files", metavar="FILE",
                          help="files to transcribe (as the positional FILE)")  # fmt: skip
    upstream.add_argument("--output_file", "-o", default="./output_recording.wav",
                          help="where --save_output_recording keeps the microphone's audio")  # fmt: skip
    upstream.add_argument("--save_output_recording", "-r", action="store_true",
                          help="keep the microphone's audio in --output_file")  # fmt: skip
    upstream.add_argument("--mute_audio_playback", "-a", action="store_true",
                          help="accepted: files are never played aloud here")  # fmt: skip
    upstream.add_argument("--enable_translation", action="store_true",
                          help="not supported (no translation model): a warning")  # fmt: skip
    upstream.add_argument("--target_language", "-tl", default="fr", help="for --enable_translation")
    upstream.add_argument("--enable_timestamps", "--timestamps", action="store_true",
                          help="print [start -> end] before each line")  # fmt: skip
    upstream.add_argument("--n_display_segments", "--display-segments", type=int, metavar="N",
                          help="on a terminal: a window of the last N lines, redrawn in place")  # fmt: skip
    return parser


def _seconds(text: str) -> float:
    """A number of seconds from 0 to ``MAX_COMMIT_AFTER`` (what the server accepts), else a
    usage error."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= MAX_COMMIT_AFTER:
        raise argparse.ArgumentTypeError(f"seconds from 0 to {MAX_COMMIT_AFTER:g}, not {text!r}")
    return value


def _output(option: str | None, source: str, suffix: str, several: bool) -> str | None:
    """OUT is a directory (OUT/<name><suffix>) when it ends with a slash, already is one, or
    there are several inputs."""
    if not option:
        return None
    out = Path(option)
    if several or option.endswith(("/", "\\")) or out.is_dir():
        out.mkdir(parents=True, exist_ok=True)
        return str(out / (Path(source.split("?")[0]).stem or "stream")) + suffix
    return option


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _failed(name: str, exc: Exception) -> None:
    """One line naming the source once (errors about a file often name it already)."""
    text = str(exc) or type(exc).__name__
    _say(text if text.startswith(f"{name}:") else f"{name}: {text}")


class _WaitReporter:
    """Makes WAIT visible: the server's estimate (a status message) and our retry (on_wait)."""

    def __init__(self, attempts: int):
        self.attempts = attempts
        self.estimate: float | None = None

    def status(self, message: dict) -> None:
        if message.get("status") == "WAIT":
            try:
                self.estimate = float(message.get("message"))
            except (TypeError, ValueError):
                self.estimate = None

    def wait(self, attempt: int, delay: float) -> None:
        estimate = (
            f"; it expects a free slot within {self.estimate:.1f} min" if self.estimate is not None else ""
        )
        _say(f"server full (WAIT){estimate}: retry {attempt}/{self.attempts} in {delay:.1f} s")


def _reconnecting(count: int, resume_seconds: float, reason: str) -> None:
    _say(f"{reason}: reconnecting (#{count}), resuming the stream from {resume_seconds:.1f} s")


def _summary(
    name: str, transcript, seconds: float | None, ended: str, took: float, reconnects: int = 0
) -> str:
    words = len(transcript.text.split())
    audio = f"{seconds:.1f} s of audio" if seconds is not None else "audio"
    language = f", {transcript.language}" if transcript.language else ""
    resumed = f", resumed {reconnects}x on a new connection" if reconnects else ""
    return f"{name}: {audio}, {words} words{language}, ended: {ended}{resumed} (took {took:.1f} s)"


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.files = [*args.files, *args.more_files]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    warnings.simplefilter("default")
    warnings.showwarning = lambda message, *_rest, **_kw: _say(f"warning: {message}")
    chosen = sum(bool(x) for x in (args.files, args.mic, args.rtsp, args.hls))
    if chosen != 1:
        parser.error("give FILE... (or -f FILE...), --mic, --rtsp URL or --hls URL (one kind)")
    if args.rest and not args.files:
        parser.error("--rest sends files: give FILE...")
    server = args.server
    if args.port is not None and "://" not in server and ":" not in server:
        server = f"{server}:{args.port}"
    url = server_url(server)
    if args.rest:
        sys.exit(_main_rest(args, url))

    from .transcription import TranscriptionClient

    terminal = sys.stderr.isatty() and not args.quiet
    waits = _WaitReporter(args.retries)
    client = TranscriptionClient(
        url=url,
        lang=args.lang,
        translate=args.translate,
        model=args.model,
        use_vad=not args.no_vad,
        initial_prompt=args.prompt,
        hotwords=args.hotwords,
        enable_translation=args.enable_translation,
        target_language=args.target_language,
        enable_timestamps=args.enable_timestamps,
        display_segments=args.n_display_segments,
        show_partial=terminal and not args.files,
        on_wait=waits.wait,
        on_status=waits.status,
        speed=None if args.fast else args.speed,
        retry=RetryPolicy(max_attempts=args.retries, max_delay=args.max_wait),
        progress=terminal and bool(args.files),
        max_duration=args.duration,
        input_device=int(args.device) if args.device and args.device.isdigit() else args.device,
        strict_model=args.model is not None,  # asked for by name: another model is not an answer
        reconnect=not args.no_reconnect,
        on_reconnect=_reconnecting,
        commit_after=args.commit_after,
    )
    save_audio = args.save_audio
    if args.mic:
        jobs = [("microphone", {})]
        client.callbacks.on_audio_start = lambda: _say("listening on the microphone (Ctrl-C to stop)")
        if args.save_output_recording:
            save_audio = save_audio or args.output_file
    elif args.rtsp:
        jobs = [(args.rtsp, {"rtsp_url": args.rtsp})]
    elif args.hls:
        jobs = [(args.hls, {"hls_url": args.hls})]
    else:
        jobs = [(f, {"audio": f}) for f in args.files]
    several = len(jobs) > 1
    status = 0
    for name, kwargs in jobs:
        client.output.srt_path = _output(args.srt, name, ".srt", several)
        client.output.vtt_path = _output(args.vtt, name, ".vtt", several)
        if several:
            print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            transcript = client(save_file=save_audio, **kwargs)
        except KeyboardInterrupt:
            sys.exit(130)
        except (ClientError, OSError, ValueError) as exc:
            _failed(name, exc)
            status = 1
            continue
        if not args.quiet:
            took = time.monotonic() - started
            _say(_summary(name, transcript, client.sent_seconds, client.ended, took, client.reconnects))
    sys.exit(status)


def _main_rest(args: argparse.Namespace, ws_url: str) -> int:
    """``--rest``: each file uploaded whole; the same console, subtitles and summary."""
    from .console import Console
    from .rest import http_url_for, transcribe_file

    http_url = args.http_url or http_url_for(ws_url)
    if args.enable_translation:
        _say(
            f"warning: --enable_translation (to {args.target_language!r}) is not supported: no translation model"
        )
    several = len(args.files) > 1
    status = 0
    for name in args.files:
        if several:
            print(f"== {name}", flush=True)
        if not args.quiet and sys.stderr.isatty():
            _say(f"{name}: uploading to {http_url} ...")
        started = time.monotonic()
        try:
            transcript, seconds = asyncio.run(
                transcribe_file(
                    http_url, name, model=args.model, language=args.lang, translate=args.translate,
                    prompt=args.prompt, hotwords=args.hotwords,
                )
            )  # fmt: skip
        except KeyboardInterrupt:
            return 130
        except (ClientError, OSError) as exc:
            _failed(name, exc)
            status = 1
            continue
        Console(timestamps=args.enable_timestamps).finish(transcript)
        for option, suffix, render in (
            (args.srt, ".srt", transcript.to_srt),
            (args.vtt, ".vtt", transcript.to_vtt),
        ):
            path = _output(option, name, suffix, several)
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(render(), encoding="utf-8")
        if not args.quiet:
            _say(_summary(name, transcript, seconds, "end of file (REST)", time.monotonic() - started))
    return status
