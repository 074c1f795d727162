"""What one model call costs on this machine: the encoder on a padded 30 s window and on a
fitted 10 s one, and generate (greedy, beam 5), alone and batched, on one CPU thread.

These are the figures behind the server's design: the encoder dominates a padded decode,
a fitted window removes most of it, and batching pays in generate but not in the encoder
on a CPU (so ``decoding.decode_fitted_batch`` encodes members one by one and batches only
generate). Best of ``--repeat`` for single calls.

    python scripts/bench_model_calls.py --model tiny.en --json docs/bench_model_calls.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from harness import evaluation as ev

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.engine import models
from whisper_live.media import decode_audio


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def measure_window(model, clips: list[np.ndarray], prompt: list[int], window: float, repeat: int) -> dict:
    features = []
    for clip in clips:
        padded = np.zeros(int(window * SAMPLE_RATE), np.float32)
        take = min(len(clip), len(padded))
        padded[:take] = clip[:take]
        features.append(
            model.feature_extractor(padded, padding=0)[:, : model.feature_extractor.nb_max_frames]
        )
    encoded = [model.encode(f) for f in features]
    stacked = ctranslate2.StorageView.from_array(np.concatenate([np.asarray(e) for e in encoded]))
    row = {
        "encode_one": best(lambda: model.encode(features[0]), repeat),
        "encode_batch_one_by_one": best(lambda: [model.encode(f) for f in features], 1),
        "encode_batch_at_once": best(
            lambda: model.model.encode(ctranslate2.StorageView.from_array(np.stack(features))), 1
        ),
    }
    for beam in (1, 5):
        row[f"generate_beam{beam}_one"] = best(
            lambda beam=beam: model.model.generate(encoded[0], [prompt], beam_size=beam, max_length=100),
            repeat,
        )
        row[f"generate_beam{beam}_batch_one_by_one"] = best(
            lambda beam=beam: [
                model.model.generate(e, [prompt], beam_size=beam, max_length=100) for e in encoded
            ],
            1,
        )
        row[f"generate_beam{beam}_batch_at_once"] = best(
            lambda beam=beam: model.model.generate(
                stacked, [prompt] * len(encoded), beam_size=beam, max_length=100
            ),
            1,
        )
    return {k: round(v, 3) for k, v in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()

    model = WhisperModel(
        models.resolve(args.model).path, device="cpu", compute_type=args.compute_type, cpu_threads=1
    )
    clips = [decode_audio(str(u.path)) for u in ev.manifest("librispeech_dev_clean")[: args.batch]]
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
    prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
    report: dict = {"model": args.model, "batch": args.batch, "machine": platform.platform(), "windows": {}}
    for window in (30.0, 10.0):
        row = measure_window(model, clips, prompt, window, args.repeat)
        report["windows"][f"{window:g}s"] = row
        print(f"{window:g} s window, {len(clips)} clips:")
        for key, value in row.items():
            print(f"  {key:<36} {value:.3f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
