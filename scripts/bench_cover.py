#!/usr/bin/env python3
"""How the upload guard against skipped speech (``DecodeOptions.cover_speech``) changes the
text of clean English recordings: WER without and with it, and how often it fires.

Each file is decoded as ``engine.files.transcribe`` decodes an upload (VAD pieces of at most
30 s, the previous piece's tokens as the prompt, the OpenAI face's defaults: beam 5,
temperature fallback), in process, once; the guard (``decoding._cover``) is then applied to
that same result, so "before" and "after" differ only by what it re-decoded. With
``--batch-size`` > 1 the batched pipeline decodes (pieces of 120 s), its own guard held
back for "before".

    WHISPER_LIVE_AUDIO=/work/shared/audio python scripts/bench_cover.py [--batch-size 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from dataclasses import replace
from unittest import mock

from harness import evaluation as ev

from whisper_live.core.decodes import DecodeOptions
from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.engine import decoding
from whisper_live.engine.decoding import _cover, run_decode, uncovered_speech
from whisper_live.engine.files import BATCHED_PIECE_SECONDS, PIECE_SECONDS, carried_prompt, plan_pieces
from whisper_live.media import decode_audio

SETS = ("librispeech_dev_clean", "jfk", "ljspeech", "english_misc", "longform", "conversations")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    from whisper_live.engine.models import resolve

    model = WhisperModel(resolve(args.model).path, device="cpu", compute_type="int8")
    ev.use_benchmark_audio()
    rows = []
    for name in SETS:
        try:
            utts = ev.manifest(name)
        except Exception as exc:  # a set the audio root does not have
            print(f"skipping {name}: {exc}")
            continue
        for utt in utts:
            if utt.language not in ("en", "english"):
                continue
            audio = decode_audio(str(utt.path))
            before, after, fired, plain_s, cover_s = [], [], 0, 0.0, 0.0
            prompt, previous = None, ()
            batched = args.batch_size > 1
            for first, last in plan_pieces(audio, BATCHED_PIECE_SECONDS if batched else PIECE_SECONDS):
                piece = audio[first:last]
                options = DecodeOptions(
                    language="en",
                    initial_prompt=prompt,
                    previous_tokens=previous,
                    batch_size=args.batch_size,
                    vad_filter=batched,
                )
                started = time.perf_counter()
                # the batched pipeline's own guard held back: "before" is the result without it
                hold = mock.patch.object(decoding, "_cover", lambda m, a, o, r: r)
                with hold if batched else contextlib.nullcontext():
                    result = run_decode(model, piece, options)
                plain_s += time.perf_counter() - started
                spans = uncovered_speech(piece, SAMPLE_RATE, result.segments)
                before.append(result.text)
                if spans:
                    fired += len(spans)
                    started = time.perf_counter()
                    result = _cover(model, piece, replace(options, cover_speech=True), result)
                    cover_s += time.perf_counter() - started
                after.append(result.text)
                if result.text:
                    prompt, previous = carried_prompt(result, batched)
            row = {
                "set": name,
                "id": utt.id,
                "seconds": round(len(audio) / SAMPLE_RATE, 1),
                "wer_before": round(ev.wer(utt.reference, " ".join(before)), 4),
                "wer_after": round(ev.wer(utt.reference, " ".join(after)), 4),
                "spans_redone": fired,
                "decode_seconds": round(plain_s, 2),
                "cover_seconds": round(cover_s, 2),
            }
            rows.append(row)
            print(json.dumps(row))
    refs = [u for u in rows]
    summary = {
        "files": len(rows),
        "audio_seconds": round(sum(r["seconds"] for r in rows), 1),
        "wer_before_mean": round(sum(r["wer_before"] for r in refs) / max(len(refs), 1), 4),
        "wer_after_mean": round(sum(r["wer_after"] for r in refs) / max(len(refs), 1), 4),
        "files_where_it_fired": sum(1 for r in rows if r["spans_redone"]),
        "spans_redone": sum(r["spans_redone"] for r in rows),
        "cover_seconds": round(sum(r["cover_seconds"] for r in rows), 2),
        "decode_seconds": round(sum(r["decode_seconds"] for r in rows), 2),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "files": rows}, f, indent=2)


if __name__ == "__main__":
    main()
