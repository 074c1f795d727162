"""``whisper-live-client``: transcribe files, the microphone, RTSP or HLS on a whisper-live server."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .. import __version__
from .stream import ClientError, RetryPolicy, server_url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whisper-live-client",
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
        "--server", default="localhost:9090", help="host[:port] or ws:// URL (default localhost:9090)"
    )
    parser.add_argument("--lang", help="language code (default: detect)")
    parser.add_argument("--translate", action="store_true", help="translate to English")
    parser.add_argument("--model", help="model the server should use (default: the server's)")
    parser.add_argument("--no-vad", action="store_true", help="turn voice activity detection off")
    parser.add_argument("--prompt", help="initial prompt (vocabulary, spelling)")
    parser.add_argument("--srt", metavar="OUT", help="write SRT here (a directory when several files)")
    parser.add_argument("--vtt", metavar="OUT", help="write WebVTT here (a directory when several files)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, help="file sending speed × real time (default 1)")
    pace.add_argument("--fast", action="store_true", help="send files as fast as the server takes them")
    parser.add_argument("--retries", type=int, default=20, help="reconnect attempts while the server is full")
    parser.add_argument("--max-wait", type=float, default=30.0, help="longest backoff between retries (s)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no partial text or progress bar")
    return parser


def _output(option: str | None, source: str, suffix: str, several: bool) -> str | None:
    """With several inputs (or an existing directory) OUT is a directory: OUT/<name>.srt."""
    if not option:
        return None
    out = Path(option)
    if several or out.is_dir():
        out.mkdir(parents=True, exist_ok=True)
        return str(out / (Path(source.split("?")[0]).stem or "stream")) + suffix
    return option


class _Console:
    """Completed lines on stdout (through tqdm, so a progress bar is redrawn below them); for
    live sources, which have no bar, the partial text on one rewritten stderr line."""

    def __init__(self, show_partial: bool):
        self.show_partial = show_partial
        self._shown = False

    def partial(self, text: str) -> None:
        if self.show_partial:
            sys.stderr.write("\r\033[K" + text[-200:])
            sys.stderr.flush()
            self._shown = True

    def completed(self, segment) -> None:
        from tqdm import tqdm

        if self._shown:
            sys.stderr.write("\r\033[K")
            self._shown = False
        tqdm.write(segment.text.strip(), file=sys.stdout)
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    chosen = sum(bool(x) for x in (args.files, args.mic, args.rtsp, args.hls))
    if chosen != 1:
        build_parser().error("give FILE..., --mic, --rtsp URL or --hls URL (one kind)")
    from .transcription import TranscriptionClient

    terminal = sys.stderr.isatty() and not args.quiet
    console = _Console(show_partial=terminal and not args.files)
    client = TranscriptionClient(
        url=server_url(args.server),
        lang=args.lang,
        translate=args.translate,
        model=args.model,
        use_vad=not args.no_vad,
        initial_prompt=args.prompt,
        log_transcription=False,
        on_partial=console.partial,
        on_completed=console.completed,
        speed=None if args.fast else args.speed,
        retry=RetryPolicy(max_attempts=args.retries, max_delay=args.max_wait),
        progress=terminal and bool(args.files),
        max_duration=args.duration,
        input_device=int(args.device) if args.device and args.device.isdigit() else args.device,
    )
    if args.mic:
        jobs = [("microphone", {})]
        client.on_audio_start = lambda: print(
            "listening on the microphone (Ctrl-C to stop)", file=sys.stderr, flush=True
        )
    elif args.rtsp:
        jobs = [(args.rtsp, {"rtsp_url": args.rtsp})]
    elif args.hls:
        jobs = [(args.hls, {"hls_url": args.hls})]
    else:
        jobs = [(f, {"audio": f}) for f in args.files]
    several = len(jobs) > 1
    status = 0
    for name, kwargs in jobs:
        client.srt_path = _output(args.srt, name, ".srt", several)
        client.vtt_path = _output(args.vtt, name, ".vtt", several)
        if several:
            print(f"== {name}", flush=True)
        try:
            client(save_file=args.save_audio, **kwargs)
        except KeyboardInterrupt:
            sys.exit(130)
        except (ClientError, OSError, ValueError) as exc:
            print(f"whisper-live-client: {name}: {exc}", file=sys.stderr)
            status = 1
    sys.exit(status)
