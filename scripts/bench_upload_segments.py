#!/usr/bin/env python3
"""How long an upload's segments are, and how good its text, by what one 30 s piece passes
to the next as its prompt (``engine.files.carried_prompt``).

Each recording is transcribed as the REST faces transcribe an upload (``files.transcribe``
on a one-worker pool: VAD pieces of at most 30 s, beam 5, temperature fallback, skipped
speech decoded again), in process, once per way of prompting:

- ``tokens``: the previous piece's tokens, timestamps included (what uploads do now, and
  what faster-whisper's own seek loop carries from window to window);
- ``text``: its last ``CARRIED_PROMPT_CHARS`` characters of text (what uploads did);
- ``none``: no prompt;
- ``whole``: no pieces: faster-whisper's own ``transcribe`` over the whole file
  (``condition_on_previous_text``), with the same guard against skipped speech.

Recordings: the LJ Speech clips joined (0.5 s apart), the LibriSpeech ones (0.8 s), the
Sense and Sensibility clips, the sonnet, the two conversations, and with ``--mixes N``
the first N test mixes of ``harness.mixes`` (no reference text: segment lengths only).
Reported per recording and way: WER, segments, longest and 90th percentile segment
seconds, segments over 12 s, and model calls (``generate``: pieces, fallbacks, redos).

    WHISPER_LIVE_AUDIO=/work/shared/audio python scripts/bench_upload_segments.py \\
        [--model tiny.en] [--ways tokens,text,none,whole] [--mixes 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import time
from dataclasses import replace
from unittest import mock

import numpy as np
from harness import evaluation as ev

from whisper_live.core.decodes import DecodeOptions, DecodeResult
from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.engine import files
from whisper_live.engine.decoding import run_decode
from whisper_live.media import decode_audio

LONG = 12.0  # seconds: longer than Whisper's segments on read speech usually are


def recordings(mixes: int) -> list[tuple[str, np.ndarray, str | None]]:
    out = []
    for name, gap in (("ljspeech", 0.5), ("librispeech_dev_clean", 0.8), ("english_misc", 0.8)):
        try:
            joined = ev.conversation(ev.manifest(name), gap=gap, lead=0.5)
        except FileNotFoundError as exc:
            print(f"skipping {name}: {exc}")
            continue
        out.append((name, joined.audio, joined.reference))
    for utt in ev.manifest("longform"):
        if utt.language in ("en", "english"):
            out.append((utt.id, decode_audio(str(utt.path)), utt.reference))
    folder = ev.audio_root() / "conversations"
    for name in ("two_speakers", "three_speakers"):
        with open(folder / f"{name}.tsv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        reference = " ".join(r["reference_transcript"] for r in rows)
        out.append((name, decode_audio(str(folder / f"{name}.wav")), reference))
    if mixes:
        from harness.mixes import build_mixes

        out += [(m.name, m.audio, None) for m in build_mixes() if m.split == "test"][:mixes]
    return out


def text_prompt(result: DecodeResult, batched: bool = False) -> tuple[str | None, tuple[int, ...]]:
    """The way uploads carried a prompt before: the text's last characters."""
    return result.text[-files.CARRIED_PROMPT_CHARS :], ()


def transcribe(pool, loaded, audio: np.ndarray, options: DecodeOptions, way: str) -> DecodeResult:
    if way == "whole":
        return run_decode(loaded.model, audio, replace(options, cover_speech=True))
    carry = {"tokens": files.carried_prompt, "text": text_prompt, "none": lambda r, batched=False: (None, ())}
    jobs = files.UploadJobs()
    job = jobs.open(loaded.name, "transcribe", len(audio) / SAMPLE_RATE)
    with mock.patch.object(files, "carried_prompt", carry[way]):
        return asyncio.run(files.transcribe(pool, loaded, audio, options, job, jobs))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--ways", default="tokens,text,none,whole")
    parser.add_argument("--mixes", type=int, default=0)
    parser.add_argument("--word-timestamps", action="store_true", help="as the diarization mixes decode")
    parser.add_argument("--json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from whisper_live.engine.pool import ModelPool

    ev.use_benchmark_audio()
    pool = ModelPool(default_model=args.model, workers=1)
    loaded = pool.get(args.model)
    inner = loaded.model.model
    calls = [0]

    class Counting:  # CTranslate2's model, counting ``generate`` calls
        def __getattr__(self, name):
            return getattr(inner, name)

        def generate(self, *a, **k):
            calls[0] += 1
            return inner.generate(*a, **k)

    loaded.model.model = Counting()
    options = DecodeOptions(language="en", word_timestamps=args.word_timestamps)
    rows = []
    lengths_of: dict[str, list[float]] = {}
    for name, audio, reference in recordings(args.mixes):
        for way in args.ways.split(","):
            calls[0] = 0
            started = time.perf_counter()
            result = transcribe(pool, loaded, audio, options, way)
            seconds = time.perf_counter() - started
            lengths = np.array([s.end - s.start for s in result.segments] or [0.0])
            row = {
                "recording": name,
                "way": way,
                "seconds": round(len(audio) / SAMPLE_RATE, 1),
                "wer": None if reference is None else round(ev.wer(reference, result.text), 4),
                "reference_words": 0 if reference is None else len(ev.normalize(reference).split()),
                "segments": len(result.segments),
                "longest": round(float(lengths.max()), 2),
                "p90": round(float(np.percentile(lengths, 90)), 2),
                "over_12s": int((lengths > LONG).sum()),
                "generate_calls": calls[0],
                "wall_seconds": round(seconds, 2),
            }
            rows.append(row)
            lengths_of.setdefault(way, []).extend(float(x) for x in lengths)
            print(json.dumps(row), flush=True)
    summary = {}
    for way in args.ways.split(","):
        mine = [r for r in rows if r["way"] == way]
        scored = [r for r in mine if r["wer"] is not None]
        summary[way] = {
            "wer_mean": round(sum(r["wer"] for r in scored) / max(len(scored), 1), 4),
            "wer_pooled": round(
                sum(r["wer"] * r["reference_words"] for r in scored)
                / max(sum(r["reference_words"] for r in scored), 1),
                4,
            ),
            "segments": sum(r["segments"] for r in mine),
            "over_12s": sum(r["over_12s"] for r in mine),
            "longest": max(r["longest"] for r in mine),
            "p90": round(float(np.percentile(lengths_of[way], 90)), 2),
            "generate_calls": sum(r["generate_calls"] for r in mine),
            "wall_seconds": round(sum(r["wall_seconds"] for r in mine), 1),
        }
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "summary": summary, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
