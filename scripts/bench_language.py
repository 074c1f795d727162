"""One language per stream, checked: the Spanish recordings of ../shared/audio streamed
through the WhisperLive face with ``language: null`` and the multilingual ``base`` model;
what the stream announced, and the WER of what it wrote (a final in another language
shows as a high WER).

    python scripts/bench_language.py [--speed 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import evaluation as ev  # noqa: E402
from harness.server_thread import ServerThread, free_port  # noqa: E402

from whisper_live.media import decode_audio  # noqa: E402
from whisper_live.settings import ServerSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--speed", type=float, default=3.0, help="x real time")
    args = parser.parse_args()
    clips = [u for u in ev.manifest("longform") + ev.manifest("multilingual") if u.language == "es"]
    settings = ServerSettings(host="127.0.0.1", port=0, http_port=free_port(), capacity_admission=False)
    with ServerThread(settings) as server:
        for clip in clips:
            audio = decode_audio(str(clip.path))
            config = {"language": None, "model": "base"}
            trace = asyncio.run(ev.stream(server.ws_url, audio, config, speed=args.speed, timeout=600))
            announced = [
                (m["language"], round(m["language_prob"], 2))
                for m in trace.messages
                if "language" in m and "segments" not in m
            ]
            wer = ev.wer(clip.reference, trace.transcript)
            print(f"{clip.id:40} announced={announced} finals={len(trace.completed)} wer={wer:.3f}")


if __name__ == "__main__":
    main()
