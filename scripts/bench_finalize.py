"""Deepgram ``Finalize`` → final latency on a real server, and what the final says.

For each clip, its first ``--cut`` seconds are streamed at real time (100 ms frames of
linear16) to ``/v1/listen``, then ``Finalize``; the time from sending it to the first
``from_finalize`` result is the latency. A server in a thread (tiny.en, one worker) unless
``--url`` names one.

    python scripts/bench_finalize.py --clips 8 --cut 3.0 [--json out.json]

Latency wants an idle machine; the words (invented ones: not in the reference) do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import websockets  # noqa: E402
from harness import evaluation as ev  # noqa: E402
from harness.server_thread import ServerThread, free_port  # noqa: E402
from harness.transcripts import inserted_words  # noqa: E402

from whisper_live.core.pcm import SAMPLE_RATE  # noqa: E402
from whisper_live.media import decode_audio  # noqa: E402
from whisper_live.settings import ServerSettings  # noqa: E402

FRAME = SAMPLE_RATE // 10


async def finalize_once(url: str, samples, cut: float) -> tuple[float, str]:
    pcm = ev.to_pcm(samples[: int(cut * SAMPLE_RATE)])
    async with websockets.connect(url + "/v1/listen?encoding=linear16&sample_rate=16000&model=tiny.en") as ws:
        await ws.recv()
        async for begin, end in ev.paced(len(pcm) // 2, FRAME):
            await ws.send(pcm[begin * 2 : end * 2])
        sent = time.monotonic()
        await ws.send(json.dumps({"type": "Finalize"}))
        text, latency = "", None
        async for raw in ws:
            message = json.loads(raw)
            if message.get("is_final"):
                text += " " + message["channel"]["alternatives"][0]["transcript"]
            if message.get("from_finalize"):
                latency = time.monotonic() - sent
                break
        await ws.send(json.dumps({"type": "CloseStream"}))
        return latency if latency is not None else float("nan"), text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--cut", type=float, default=3.0)
    parser.add_argument("--url", help="ws://host:port of a running server (default: one in a thread)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    clips = ev.manifest("librispeech_dev_clean")[: args.clips]

    def run(url: str) -> list[dict]:
        out = []
        for clip in clips:
            latency, text = asyncio.run(finalize_once(url, decode_audio(str(clip.path)), args.cut))
            out.append(
                {
                    "id": clip.id,
                    "latency": round(latency, 3),
                    "text": text,
                    "inserted": inserted_words(clip.reference, text),
                }
            )
            print(f"{clip.id:20} {latency:6.2f} s  inserted={out[-1]['inserted']}  {text!r}")
        return out

    if args.url:
        rows = run(args.url)
    else:
        settings = ServerSettings(
            host="127.0.0.1", port=0, http_port=free_port(), workers=1, capacity_admission=False
        )
        with ServerThread(settings) as server:
            rows = run(server.http_url.replace("http", "ws"))
    latencies = [r["latency"] for r in rows]
    summary = {
        "clips": len(rows),
        "median_s": round(statistics.median(latencies), 3),
        "max_s": round(max(latencies), 3),
        "inserted": sum(r["inserted"] for r in rows),
    }
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
