"""Fitted vs padded encoder windows: WER and decode time on the English clips of ../shared/audio.

Each clip is decoded as one streamed utterance would be (language set, no previous text),
once with faster-whisper's padded 30 s window (``WhisperModel.transcribe``) and once with
``decode_fitted`` falling back to the padded window when it declines. Same model, same run.

    python scripts/bench_window.py --model tiny.en --beam-size 5 --json docs/bench_window.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

from faster_whisper import WhisperModel

from whisper_live import evaluation as ev
from whisper_live import models
from whisper_live.audio import decode_audio
from whisper_live.decoding import DecodeOptions, decode_fitted, run_decode

SETS = ("librispeech_dev_clean", "ljspeech", "english_misc", "jfk")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--beam-size", type=int, default=5)
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
        "clips": len(utts),
        "machine": platform.platform(),
    }
    for fit in (False, True):
        texts, declined, started = [], 0, time.perf_counter()
        for audio in clips:
            options = DecodeOptions(
                language="en",
                beam_size=args.beam_size,
                best_of=args.beam_size,
                condition_on_previous_text=False,
            )
            result = decode_fitted(model, audio, options) if fit else None
            if result is None:
                declined += fit
                result = run_decode(model, audio, options)
            texts.append(result.text)
        elapsed = time.perf_counter() - started
        key = "fitted" if fit else "padded"
        report[key] = {
            "wer": round(ev.wer(reference, " ".join(texts)), 4),
            "seconds": round(elapsed, 1),
            "fell_back": declined,
        }
        print(
            f"{key:>7}: WER {report[key]['wer']:.2%}  {elapsed:.1f} s  fell back {declined}/{len(utts)}",
            flush=True,
        )
    report["speedup"] = round(report["padded"]["seconds"] / report["fitted"]["seconds"], 2)
    print(f"speed-up {report['speedup']}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
