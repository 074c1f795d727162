"""Does the server leak? Rounds of streams against an in-process server, with tracemalloc.

Python objects that outlive their streams show up in the snapshot comparison; native
memory (CTranslate2, onnxruntime, the C allocator) shows only in RSS. Run long (more
rounds) to see whether RSS levels off.

    python scripts/probe_memory.py --streams 8 --rounds 4 --speed 3
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from pathlib import Path

from harness import evaluation as ev
from harness.server_thread import ServerThread

from whisper_live import memory
from whisper_live.settings import ServerSettings


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--speed", type=float, default=3.0, help="x real time")
    args = parser.parse_args()
    memory.cap_kernel_cache()  # as the server's main does

    settings = ServerSettings(host="127.0.0.1", port=0, http_port=0, capacity_admission=False)
    url = ServerThread(settings).start().ws_url
    utts = ev.manifest("librispeech_dev_clean")
    convs = [ev.conversation(utts[i:] + utts[:i], gap=1.0) for i in range(args.streams)]

    async def one_round() -> None:
        await asyncio.gather(*(ev.stream(url, c.audio, speed=args.speed, timeout=600) for c in convs))

    asyncio.run(one_round())  # warm-up: model, VAD and allocators
    gc.collect()
    tracemalloc.start(25)
    before, rss_before = tracemalloc.take_snapshot(), rss_mb()
    for i in range(args.rounds):
        started = time.monotonic()
        asyncio.run(one_round())
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] / 1e6
        print(
            f"round {i + 1}: {time.monotonic() - started:.0f} s, RSS {rss_mb():.0f} MB, Python objects {traced:.1f} MB"
        )
    print(f"RSS {rss_before:.0f} -> {rss_mb():.0f} MB; largest Python growth:")
    for stat in tracemalloc.take_snapshot().compare_to(before, "traceback")[:5]:
        print(" ", stat)


if __name__ == "__main__":
    main()
