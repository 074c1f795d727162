"""Speaker diarization on the shared conversations: DER, speaker-attributed WER, cost.

For each conversation in ../shared/audio/conversations (two and three LibriSpeech speakers
joined turn by turn, with RTTM and per-turn references):

- engine: ``diarize()`` in process on the file (its VAD regions as the only input): DER of
  its turns, with no collar and with md-eval's 0.25 s collar; its wall and CPU time;
- rest: the real server's OpenAI endpoint with the OpenAI SDK, once without and once with
  ``diarize=true`` (verbose_json, word timestamps): speakers found, DER of the labelled
  words (words of one speaker less than 0.5 s apart joined into a turn) and of the labelled
  segments, cpWER of the words by speaker, WER ignoring speakers, and the request times,
  wall and CPU (the server runs in this process), median of ``--repeats`` alternated runs:
  the diarization cost is the difference, as a fraction of the plain request;
- stream: the real WebSocket with ``enable_diarization``, at ``--speed`` x real time:
  speakers found, DER of the completed segments and cpWER by segment speaker.

cpWER (CHiME-6) joins each speaker's words and maps hypothesis speakers one-to-one onto
reference speakers so that the errors are fewest; a word given to the wrong speaker counts
as a deletion and an insertion. Also prints same/different-speaker window distances, the
evidence for the clustering threshold.

    python scripts/bench_diarization.py --json docs/bench_diarization.json

With ``--mixes`` it scores the engine instead over the generated mixes of
``harness.mixes`` (9 one-speaker recordings and 28 x ``--mix-repeats`` mixes of 2-4
speakers, in a tune and a test split), in process, with transcripts and d-vectors cached
in ``--cache`` (each mix transcribed as the REST faces transcribe an upload,
``engine.files``: VAD-cut pieces of at most 30 s; ``--whole`` decodes it in one call, as
before); ``--split`` picks the split reported (tune settings on ``tune``, report
``test``; ``--set NAME=VALUE`` overrides a constant of ``engine/diarization.py``, e.g. to
score the clustering as it was before the speaker-count rule, ``--unsplit`` without the
split at turns; ``--reference noise`` scores against the noise-aware reference,
``harness.mixes.NOISE_MARGIN``):

    python scripts/bench_diarization.py --mixes --split test --json docs/bench_diarization_mixes.json
    python scripts/bench_diarization.py --mixes --split test --unsplit --set MIN_CLUSTER_SHARE=0 \
        --set SEPARATION_DISTANCE=0 --set REFINE=false --set FLIP_SECONDS=0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time

import numpy as np
from harness import evaluation as ev
from harness.diarization_metrics import conversation_truth, cp_wer, der, labelled_spans
from harness.server_thread import ServerThread, free_port

from whisper_live.engine import diarization
from whisper_live.engine.speaker_encoder import shared_encoder
from whisper_live.media import decode_audio
from whisper_live.settings import ServerSettings

NAMES = ("two_speakers", "three_speakers")


def window_distances(audio: np.ndarray, truth) -> dict:
    """Cosine distances of window pairs by whether the RTTM says one speaker or two."""
    _, spans, embeddings = diarization.window_embeddings(audio)
    owners = []
    for start, end in spans:
        centre = (start + end) / 2
        owners.append(min(truth.turns, key=lambda t: max(t[0] - centre, centre - t[1], 0.0))[2])
    owners = np.array(owners)
    distances = diarization.cosine_distances(embeddings)
    upper = np.triu_indices(len(owners), 1)
    same = (owners[:, None] == owners[None, :])[upper]
    values = distances[upper]
    return {
        "same_p50_p90_p99": np.percentile(values[same], [50, 90, 99]).round(3).tolist(),
        "different_p1_p10_p50": np.percentile(values[~same], [1, 10, 50]).round(3).tolist(),
    }


def engine_figures(name: str) -> dict:
    truth = conversation_truth(name)
    audio = decode_audio(str(truth.wav))
    shared_encoder()
    wall, cpu = time.perf_counter(), time.process_time()
    result = diarization.diarize(audio, [])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    turns = [(t.start, t.end, t.speaker) for t in result.turns]
    plain, collar = der(truth.turns, turns), der(truth.turns, turns, collar=0.25)
    return {
        "audio_seconds": round(len(audio) / 16000, 2),
        "speakers_true": truth.speakers,
        "speakers_found": len(result.speakers),
        "der": round(plain.der, 4),
        "der_missed_fa_confusion_s": [
            round(plain.missed, 2),
            round(plain.false_alarm, 2),
            round(plain.confusion, 2),
        ],
        "der_collar_0.25": round(collar.der, 4),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "window_distances": window_distances(audio, truth),
    }


def rest_figures(server: ServerThread, name: str, model: str | None, repeats: int) -> dict:
    from openai import OpenAI

    truth = conversation_truth(name)
    client = OpenAI(base_url=server.http_url + "/v1", api_key="x", max_retries=0, timeout=600)

    def request(**extra) -> tuple[dict, float, float]:
        wall, cpu = time.perf_counter(), time.process_time()  # the server runs in this process
        with open(truth.wav, "rb") as f:
            body = client.audio.transcriptions.create(
                model=model or "whisper-1",
                file=f,
                language="en",
                response_format="verbose_json",
                timestamp_granularities=["word", "segment"],
                extra_body=extra,
            )
        return body.model_dump(), time.perf_counter() - wall, time.process_time() - cpu

    request()  # warm-up: model loaded, encoder weights read
    plain_runs, labelled_runs = [], []
    for _ in range(repeats):  # alternated, so that load changes hit both alike
        plain_runs.append(request())
        labelled_runs.append(request(diarize="true"))
    plain, labelled = plain_runs[0][0], labelled_runs[0][0]
    plain_wall, plain_cpu = (float(np.median([r[i] for r in plain_runs])) for i in (1, 2))
    labelled_wall, labelled_cpu = (float(np.median([r[i] for r in labelled_runs])) for i in (1, 2))
    words, segments = labelled["words"], labelled["segments"]
    turns, texts = labelled_spans(words, bridge=0.5)
    cp, _ = cp_wer(truth.texts, texts)
    return {
        "speakers_found": len({w.get("speaker") for w in words}),
        "der_words": round(der(truth.turns, turns).der, 4),
        "der_words_collar_0.25": round(der(truth.turns, turns, collar=0.25).der, 4),
        "der_segments_collar_0.25": round(der(truth.turns, labelled_spans(segments)[0], collar=0.25).der, 4),
        "cpwer_words": round(cp, 4),
        "wer": round(ev.wer(truth.reference, plain["text"]), 4),
        "median_of": repeats,
        "wall_s_plain_diarized": [round(plain_wall, 2), round(labelled_wall, 2)],
        "cpu_s_plain_diarized": [round(plain_cpu, 2), round(labelled_cpu, 2)],
        "diarization_fraction_wall": round((labelled_wall - plain_wall) / plain_wall, 3),
        "diarization_fraction_cpu": round((labelled_cpu - plain_cpu) / plain_cpu, 3),
    }


def stream_figures(server: ServerThread, name: str, speed: float) -> dict:
    truth = conversation_truth(name)
    audio = decode_audio(str(truth.wav))
    trace = asyncio.run(
        ev.stream(server.ws_url, audio, {"enable_diarization": True}, speed=speed, timeout=600)
    )
    turns, texts = labelled_spans(trace.completed)
    bridged, _ = labelled_spans(trace.completed, bridge=0.5)  # as the mixes are scored
    cp, _ = cp_wer(truth.texts, texts)
    return {
        "speakers_found": len({s.get("speaker") for s in trace.completed}),
        "segments": len(trace.completed),
        "der_segments": round(der(truth.turns, turns).der, 4),
        "der_segments_collar_0.25": round(der(truth.turns, turns, collar=0.25).der, 4),
        "der_segments_bridged_collar_0.25": round(der(truth.turns, bridged, collar=0.25).der, 4),
        "cpwer": round(cp, 4),
        "wer": round(ev.wer(truth.reference, trace.transcript), 4),
    }


def mixes_report(args) -> dict:
    from pathlib import Path

    from harness import mix_evaluation
    from harness.mixes import build_mixes

    for setting in args.set:  # e.g. SEPARATION_DISTANCE=0.39: try an engine constant
        name, value = setting.split("=", 1)
        if not hasattr(diarization, name):
            raise SystemExit(f"no constant {name} in whisper_live.engine.diarization")
        setattr(diarization, name, type(getattr(diarization, name))(json.loads(value)))
    if args.unsplit:  # segments as they were before splitting at turns
        diarization.split_at_turns = list
    mixes = [m for m in build_mixes(args.seed, args.mix_repeats) if args.split in ("all", m.split)]
    if args.reference == "noise":  # the noise-aware reference (``harness.mixes.NOISE_MARGIN``)
        for mix in mixes:
            mix.turns = mix.quiet_turns
    prepared = mix_evaluation.prepare(mixes, Path(args.cache), cover=not args.no_cover, upload=not args.whole)
    rows = [mix_evaluation.score(p) for p in prepared]
    for row in rows:
        print(
            f"{row['mix']:36s} {row['seconds']:5.1f}s speakers {row['speakers_true']}->{row['speakers_found']}"
            f" DER turns {row['der_turns']:.3f} words {row['der_words']:.3f} segments {row['der_segments']:.3f}"
        )
    report = {
        "split": args.split,
        "reference": args.reference,
        "seed": args.seed,
        "settings": args.set,
        "unsplit": args.unsplit,
        "cover": not args.no_cover,
        "upload": not args.whole,
        "summary": mix_evaluation.summary(rows),
        "mixes": rows,
    }
    by_kind: dict[str, list[dict]] = {}
    for row in rows:
        by_kind.setdefault(row["kind"].split("-")[0], []).append(row)
    report["by_speakers"] = {k: mix_evaluation.summary(v) for k, v in sorted(by_kind.items())}
    print(json.dumps({k: report[k] for k in ("summary", "by_speakers")}, indent=2))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="the server's default model if not given")
    parser.add_argument("--speed", type=float, default=1.0, help="streaming pace (x real time)")
    parser.add_argument("--repeats", type=int, default=3, help="REST timings: median of this many")
    parser.add_argument("--json")
    parser.add_argument("--mixes", action="store_true", help="score the generated mixes instead")
    parser.add_argument("--split", choices=("tune", "test", "all"), default="test")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--mix-repeats", type=int, default=2)
    parser.add_argument("--cache", default="/tmp/whisper_live_diarization_mixes")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE: a diarization constant")
    parser.add_argument(
        "--no-cover", action="store_true", help="transcripts without re-decoding skipped speech (as before)"
    )
    parser.add_argument(
        "--reference",
        choices=("level", "noise"),
        default="level",
        help="the mixes' reference: -40 dB of the reader's peak (level), or also 6 dB over its noise (noise)",
    )
    parser.add_argument("--unsplit", action="store_true", help="score segments without the split at turns")
    parser.add_argument(
        "--whole",
        action="store_true",
        help="decode each mix whole (as before), not as the REST faces decode an upload (engine.files)",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.mixes:
        report = {"machine": platform.platform(), **mixes_report(args)}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
        return
    report: dict = {"machine": platform.platform(), "load_before": os.getloadavg(), "conversations": {}}
    settings = ServerSettings(host="127.0.0.1", port=0, http_port=free_port(), capacity_admission=False)
    with ServerThread(settings) as server:
        for name in NAMES:
            figures = {"engine": engine_figures(name)}
            figures["rest"] = rest_figures(server, name, args.model, args.repeats)
            figures["stream"] = stream_figures(server, name, args.speed)
            report["conversations"][name] = figures
            print(name, json.dumps(figures, indent=2))
    report["load_after"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
