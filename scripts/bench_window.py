"""Fitted vs padded encoder windows, one by one and batched: WER and decode time on the
English clips of ../shared/audio.

Each clip is decoded as one streamed utterance would be (language set, no previous text):
with faster-whisper's padded 30 s window (``WhisperModel.transcribe``); with a fitted window
one clip at a time; and with fitted windows in batches of ``--batch`` clips of the same
window step, as the server's scheduler forms them across streams. Fitted decodes that the
guards decline fall back to the padded window, inside the timing. Same model, same run.

    python scripts/bench_window.py --model tiny.en --beam-size 5 --json docs/bench_window.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict

from faster_whisper import WhisperModel
from harness import evaluation as ev

from whisper_live.engine import models
from whisper_live.engine.decoding import DecodeOptions, batch_key, run_decodes
from whisper_live.media import decode_audio

SETS = ("librispeech_dev_clean", "ljspeech", "english_misc", "jfk")


def main() -> None:
    ev.use_benchmark_audio()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--without-timestamps", action="store_true", help="as partials decode")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--json")
    args = parser.parse_args()

    model = WhisperModel(
        models.resolve(args.model).path, device="cpu", compute_type=args.compute_type, cpu_threads=1
    )
    utts = [u for name in SETS for u in ev.manifest(name)]
    clips = [decode_audio(str(u.path)) for u in utts]
    reference = " ".join(u.reference for u in utts)
    report = {
        "model": args.model,
        "beam_size": args.beam_size,
        "without_timestamps": args.without_timestamps,
        "clips": len(utts),
        "audio_seconds": round(sum(len(c) for c in clips) / 16000, 1),
        "machine": platform.platform(),
    }

    def options(fit: bool) -> DecodeOptions:
        return DecodeOptions(
            language="en",
            beam_size=args.beam_size,
            best_of=args.beam_size,
            without_timestamps=args.without_timestamps,
            condition_on_previous_text=False,
            fit_window=fit,
        )

    def batches(size: int) -> list[list[int]]:
        groups = defaultdict(list)
        for i, clip in enumerate(clips):
            groups[batch_key(model, clip, options(True))].append(i)
        return [g[k : k + size] for g in groups.values() for k in range(0, len(g), size)]

    runs = {"padded": (False, [[i] for i in range(len(clips))])}
    runs["fitted"] = (True, [[i] for i in range(len(clips))])
    runs[f"fitted, batches of {args.batch}"] = (True, batches(args.batch))
    for name, (fit, groups) in runs.items():
        texts = [""] * len(clips)
        started = time.perf_counter()
        for group in groups:
            results = run_decodes(model, [clips[i] for i in group], [options(fit)] * len(group))
            for i, result in zip(group, results):
                texts[i] = result.text
        elapsed = time.perf_counter() - started
        report[name] = {"wer": round(ev.wer(reference, " ".join(texts)), 4), "seconds": round(elapsed, 2)}
        print(f"{name:>22}: WER {report[name]['wer']:.2%}  {elapsed:.1f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
