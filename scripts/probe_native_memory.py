#!/usr/bin/env python3
"""Where does the server's native memory go? The server's model calls without the server.

Two threads (the server's two decode workers) run the decode mix a busy server runs, as fast
as they can, on real LibriSpeech clips: partials (a random prefix of an utterance, greedy,
fitted window), finals (the whole utterance, beam 5, fitted, after a prompt of varying
length), padded 30 s decodes (REST pieces) and Silero over a long file (how REST cuts it).
RSS is sampled every ``--sample-every`` decodes, so the curve is a function of the work done,
not of wall time: it reads the same on an idle machine and on a shared, loaded one (a soak's
growth per minute does not). Allocator candidates are set from outside, e.g.

    python scripts/probe_native_memory.py --decodes 1200
    MALLOC_ARENA_MAX=2 python scripts/probe_native_memory.py --decodes 1200
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 python scripts/probe_native_memory.py
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=1024 python scripts/probe_native_memory.py --new-widths

``--new-widths`` replaces the mix with finals of a long conversation cut at ever new lengths
(8-28 s, so fitted windows of 10-30 s, each new): what a stream of long utterances sends.
The mix's clips are mostly under 8 s, so their fitted windows are mostly the 10 s minimum.
    python scripts/probe_native_memory.py --trim 10      # glibc malloc_trim(0) every 10 s
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import threading
import time
from pathlib import Path

from faster_whisper import WhisperModel
from faster_whisper.vad import VadOptions, get_speech_timestamps
from harness import evaluation as ev

from whisper_live.core.decodes import DecodeOptions
from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.engine import models
from whisper_live.engine.decoding import run_decode
from whisper_live.media import decode_audio


def memory() -> dict:
    """RSS, its anonymous part, and the main arena ([heap]) from /proc/self."""
    status = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon"):
            status[key] = round(int(value.split()[0]) / 1024, 1)
    heap, in_heap = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if not line[0].isupper() or line.startswith("VmFlags"):
            in_heap = line.rstrip().endswith("[heap]")
        elif in_heap and line.startswith("Rss:"):
            heap += int(line.split()[1])
    return {"rss_mb": status["VmRSS"], "anon_mb": status["RssAnon"], "brk_heap_mb": round(heap / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decodes", type=int, default=1200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sample-every", type=int, default=50, help="decodes between RSS samples")
    parser.add_argument("--trim", type=float, default=0.0, help="malloc_trim(0) every this many seconds")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--new-widths", action="store_true", help="every decode a new window length")
    parser.add_argument("--json")
    args = parser.parse_args()

    model = WhisperModel(models.resolve(args.model).path, device="cpu", compute_type="int8", cpu_threads=1)
    utts = ev.manifest("librispeech_dev_clean")
    clips = [decode_audio(str(u.path)) for u in utts]
    long_audio = ev.conversation(utts[:8], gap=1.0).audio
    prompts = [" ".join(u.reference.lower().split()[:n]) for u in utts for n in (0, 8, 30)]

    lock = threading.Lock()
    done = [0]
    samples = [{"decodes": 0, "seconds": 0.0, **memory()}]
    stop = threading.Event()
    started = time.monotonic()

    def one(rng: random.Random) -> None:
        if args.new_widths:  # steps of 107 ms over 20 s: a window length in frames seldom recurs
            seconds = 8.0 + (done[0] * 0.107) % 20.0
            opts = DecodeOptions(language="en", fit_window=True)
            run_decode(model, long_audio[: int(seconds * SAMPLE_RATE)], opts)
            return
        clip = clips[rng.randrange(len(clips))]
        kind = rng.random()
        if kind < 0.55:  # partial: the utterance so far
            end = rng.randint(SAMPLE_RATE, len(clip))
            opts = DecodeOptions(
                language="en", beam_size=1, best_of=1, without_timestamps=True, fit_window=True
            )
            run_decode(model, clip[:end], opts)
        elif kind < 0.85:  # final
            opts = DecodeOptions(language="en", initial_prompt=rng.choice(prompts) or None, fit_window=True)
            run_decode(model, clip, opts)
        elif kind < 0.95:  # a REST piece: the padded window
            run_decode(model, clip, DecodeOptions(language="en"))
        else:  # how REST cuts a long file
            get_speech_timestamps(long_audio, VadOptions(min_silence_duration_ms=300, speech_pad_ms=300))

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while True:
            with lock:
                if done[0] >= args.decodes:
                    return
                done[0] += 1
            one(rng)
            with lock:
                if done[0] % args.sample_every == 0:
                    samples.append(
                        {"decodes": done[0], "seconds": round(time.monotonic() - started, 1), **memory()}
                    )
                    print(samples[-1], flush=True)

    def trimmer() -> None:
        libc = ctypes.CDLL("libc.so.6")
        while not stop.wait(args.trim):
            libc.malloc_trim(0)

    if args.trim > 0:
        threading.Thread(target=trimmer, daemon=True).start()
    threads = [threading.Thread(target=worker, args=(args.seed + i,)) for i in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    samples.append({"decodes": done[0], "seconds": round(time.monotonic() - started, 1), **memory()})
    n = len(samples)
    report = {
        "env": {
            k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "LD_PRELOAD", "ONEDNN_", "CT2_"))
        },
        "trim_seconds": args.trim,
        "new_widths": args.new_widths,
        "decodes": done[0],
        "rss_mb_by_third": [samples[min(n - 1, n * k // 3)]["rss_mb"] for k in (1, 2, 3)],
        "rss_mb_max": max(s["rss_mb"] for s in samples),
        "samples": samples,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
