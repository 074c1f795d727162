"""Which model: accuracy and per-call cost of each Whisper model this server can serve, in
one run so they compare (the streams a machine holds per model: ``bench_streaming.py
--model NAME --sweep ...`` on an idle machine; see docs/BENCHMARKS.md).

Per model, offline with plain faster-whisper (int8, one CPU thread, beam 5, language
``en``, no VAD), each model found through the server's resolver (``models.resolve``):

- the memory one loaded model adds to the process (RSS, after decoding);
- WER on the 15 LibriSpeech dev-clean utterances, each transcribed alone (corpus WER);
- WER on long-form audio: the 32 LJ Speech clips joined with 1.5 s pauses (~4.5 min), and
  Sonnet I (53 s, mp3): one ``transcribe`` call each, so Whisper's 30 s windows and its
  conditioning on previous text are exercised;
- the calls a streamed utterance costs (``bench_model_calls.measure_window``): a fitted
  10 s encode and a beam-5 generate, best of ``--repeat`` rounds in which the models take
  turns.

The load average (lowest–highest over the rounds) is printed beside the per-call costs:
on a shared machine only the comparison within one run holds. A model that does not resolve here (``small`` without
its wheels) is reported as skipped, with the resolver's reason.

    python scripts/bench_models.py --models tiny.en,base,small --json docs/bench_models.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jiwer
from bench_model_calls import measure_window
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from harness import evaluation as ev
from probe_memory import rss_mb

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.engine import models
from whisper_live.media import decode_audio

SONNET = "shakespeare_sonnet001_librivox"


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    """Errors over reference words across all items (not the mean of per-item WERs)."""
    return jiwer.wer([ev.normalize(r) for r in references], [ev.normalize(h) for h in hypotheses])


def transcribe(model: WhisperModel, audio) -> str:
    segments, _ = model.transcribe(audio, language="en", beam_size=5, vad_filter=False)
    return " ".join(s.text.strip() for s in segments)


def accuracy(name: str, sets: dict, compute_type: str) -> tuple[dict, WhisperModel]:
    """The WER columns of one model, and the model (kept for the per-call rounds)."""
    info = models.resolve(name)
    rss_before = rss_mb()
    model = WhisperModel(info.path, device="cpu", compute_type=compute_type, cpu_threads=1)
    row: dict = {
        "model": name,
        "source": info.source,
        "multilingual": info.multilingual,
        "model_bin_mb": round(Path(info.path, "model.bin").stat().st_size / 1e6),
    }
    started = time.perf_counter()
    hyps = [transcribe(model, audio) for audio in sets["dev_clean"]["audio"]]
    row["dev_clean_wer"] = round(corpus_wer(sets["dev_clean"]["references"], hyps), 4)
    row["dev_clean_seconds"] = round(time.perf_counter() - started, 1)
    # what one loaded replica adds to a process, weights and the buffers of a decode (a
    # server holds one per worker): roughly, since the allocator keeps what it freed
    row["rss_added_mb"] = round(rss_mb() - rss_before)
    for key in ("ljspeech_joined", "sonnet"):
        started = time.perf_counter()
        hyp = transcribe(model, sets[key]["audio"])
        row[f"{key}_wer"] = round(corpus_wer([sets[key]["reference"]], [hyp]), 4)
        row[f"{key}_seconds"] = round(time.perf_counter() - started, 1)
    return row, model


def call_costs(loaded: dict[str, WhisperModel], clip, rounds: int) -> dict[str, dict]:
    """A fitted 10 s encode and a beam-5 generate per model, the models taking turns in
    each round (best of ``rounds``), so a change in the machine's load hits them alike."""
    best: dict[str, dict] = {}
    for _ in range(rounds):
        for name, model in loaded.items():
            tokenizer = Tokenizer(
                model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
            )
            prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
            load = os.getloadavg()[0]
            calls = measure_window(model, [clip], prompt, 10.0, 1)
            costs = {"encode_fitted_10s": calls["encode_one"], "generate_beam5": calls["generate_beam5_one"]}
            row = best.setdefault(name, {**costs, "load_average": [load, load]})
            for key, value in costs.items():
                row[key] = min(row[key], value)
            row["load_average"] = [
                round(min(row["load_average"][0], load), 2),
                round(max(row["load_average"][1], load), 2),
            ]
    return best


def audio_sets() -> dict:
    dev = ev.manifest("librispeech_dev_clean")
    lj = ev.conversation(ev.manifest("ljspeech"))
    sonnet = next(u for u in ev.manifest("longform") if u.id == SONNET)
    return {
        "dev_clean": {
            "audio": [decode_audio(str(u.path)) for u in dev],
            "references": [u.reference for u in dev],
        },
        "ljspeech_joined": {"audio": lj.audio, "reference": lj.reference, "clips": len(lj.utterances)},
        "sonnet": {"audio": decode_audio(str(sonnet.path)), "reference": sonnet.reference},
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| model | model.bin | RSS added | dev-clean WER (15) | LJ joined WER | Sonnet WER"
        " | encode, fitted 10 s | generate, beam 5 | load avg | streams on 2 cores |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['model']} | not here ({r['skipped'].split(':')[0]}) ||||||||")
            continue
        lines.append(
            f"| {r['model']} | {r['model_bin_mb']} MB | {r['rss_added_mb']} MB | {r['dev_clean_wer']:.1%} | {r['ljspeech_joined_wer']:.1%}"
            f" | {r['sonnet_wer']:.1%} | {r['encode_fitted_10s']:.3f} s | {r['generate_beam5']:.3f} s"
            f" | {r['load_average'][0]}–{r['load_average'][1]} | to be measured |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", default="tiny.en,base,small", help="comma-separated model names or directories"
    )
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of the per-call measurement")
    parser.add_argument("--json")
    args = parser.parse_args()

    ev.use_benchmark_audio()
    sets = audio_sets()
    print(
        f"audio: {len(sets['dev_clean']['audio'])} dev-clean clips, "
        f"{len(sets['ljspeech_joined']['audio']) / SAMPLE_RATE:.0f} s of {sets['ljspeech_joined']['clips']} LJ clips joined, "
        f"{len(sets['sonnet']['audio']) / SAMPLE_RATE:.0f} s of Sonnet I"
    )
    rows, loaded = [], {}
    for name in (n.strip() for n in args.models.split(",") if n.strip()):
        try:
            row, loaded[name] = accuracy(name, sets, args.compute_type)
        except models.ModelNotFound as exc:
            row = {"model": name, "skipped": exc.message}
        rows.append(row)
        print(json.dumps(row), flush=True)
    costs = call_costs(loaded, sets["dev_clean"]["audio"][0], args.repeat)
    for row in rows:
        row.update(costs.get(row["model"], {}))
    print(table(rows))
    if args.json:
        report = {
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "compute_type": args.compute_type,
            "clips": {
                "dev_clean": len(sets["dev_clean"]["audio"]),
                "ljspeech": sets["ljspeech_joined"]["clips"],
            },
            "rows": rows,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
