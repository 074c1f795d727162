#!/usr/bin/env python3
"""Long-form streaming, word by word: continuous speech through the real server.

One client streams a long reading at real-time pace over the WebSocket (each frame leaves
when its last sample exists: ``harness.evaluation.paced``) and every server message is
recorded with its arrival time. Cases (``--cases``):

- ``ljspeech``: the 32 LJ Speech clips joined with 0.2 s gaps (~4 min, one reader);
- ``sonnet``: the LibriVox Sonnet 1 (53 s, one recording);
- ``devclean``: the 15 LibriSpeech dev-clean utterances joined with 0.2 s gaps (changing
  readers, nearly no pause);
- ``utterances`` (not run unless asked): the same 15 between 1.5 s pauses, as
  ``bench_streaming.py --clients 1`` plays them: what ``commit_after`` costs there.
- ``ljutterances`` (not run unless asked): the 32 LJ Speech clips between 1.5 s pauses.

Reported per case, with plain faster-whisper (``WhisperModel.transcribe``, same model, same
run) on the same audio as the reference point:
- WER of the final committed text and of the offline transcript;
- word emission latency: for each spoken word (its end from the offline pass with word
  times), seconds until it first appears in the committed text, and in the displayed text
  (committed + partial), words lined up by a word-level edit alignment; p50 / p90;
- flicker: normalised erasure, characters the display takes back over the final length;
- model calls per second of audio (the server's ``/status`` batch counts).

``--simulate COST`` runs no server: a ``StreamingSession`` of the code on ``sys.path``
(``PYTHONPATH=<checkout>`` picks another) is fed the audio in 100 ms steps of stream time,
and every decode it asks for runs with the real model at once but counts ``COST`` seconds
of stream time on one decoder, queued as on an idle server. The same audio and code give
the same numbers on any machine, however loaded: for tuning and A/B of the policy; the
real-time server run is what a client gets.

``--server-root`` runs the server from other checkouts (PYTHONPATH), so a before/after
comparison is one invocation:

    python scripts/bench_longform.py --json /tmp/longform.json
    python scripts/bench_longform.py --server-root /work/main --server-root . --cases sonnet
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import time
from pathlib import Path

import numpy as np
from bench_streaming import ServerProcess, pct, report_header
from harness import evaluation as ev
from harness import longform_metrics as lm

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.media import decode_audio

GAP = 0.2


def case_audio(name: str) -> tuple[np.ndarray, str]:
    """The audio (16 kHz mono) and reference text of a case."""
    if name == "ljspeech":
        conv = ev.conversation(ev.manifest("ljspeech")[:32], gap=GAP, lead=0.5)
    elif name == "devclean":
        conv = ev.conversation(ev.manifest("librispeech_dev_clean")[:15], gap=GAP, lead=0.5)
    elif name == "utterances":
        # not long-form: bench_streaming's one stream of utterances between 1.5 s pauses, to
        # see what word-by-word commits (``--commit-after 0``) cost where a final would do
        conv = ev.conversation(ev.manifest("librispeech_dev_clean")[:15], gap=1.5)
    elif name == "ljutterances":
        # the same with one reader's 32 sentences (1.3-10 s each): more words to tell one
        # setting of ``commit_after`` from another than the 15 clips' 232
        conv = ev.conversation(ev.manifest("ljspeech")[:32], gap=1.5)
    elif name == "sonnet":
        utt = next(u for u in ev.manifest("longform") if u.id.startswith("shakespeare"))
        return decode_audio(str(utt.path)), utt.reference
    else:
        raise ValueError(f"unknown case {name!r}")
    return conv.audio, conv.reference


def offline(audio: np.ndarray, model: str, compute_type: str) -> dict:
    """Plain faster-whisper on the whole recording, with word times: the spoken words' ends."""
    from faster_whisper import WhisperModel

    from whisper_live.engine.models import resolve

    wm = WhisperModel(resolve(model).path, device="cpu", compute_type=compute_type)
    started = time.monotonic()
    segments, _ = wm.transcribe(audio, language="en", word_timestamps=True)
    segments = list(segments)
    spoken = [(w, word.end) for s in segments for word in s.words for w in lm.words(word.word)]
    return {
        "text": "".join(s.text for s in segments).strip(),
        "spoken": spoken,
        "seconds": round(time.monotonic() - started, 2),
    }


@functools.cache
def _whisper(name: str, compute_type: str):
    """One model for every simulated case, on one thread as a server's decoder."""
    from faster_whisper import WhisperModel

    from whisper_live.engine.models import resolve

    return WhisperModel(resolve(name).path, device="cpu", compute_type=compute_type, cpu_threads=1)


def simulate(
    audio: np.ndarray,
    reference: str,
    base: dict,
    config: dict,
    model_name: str,
    compute_type: str,
    cost: float,
) -> dict:
    """One stream through an in-process ``StreamingSession`` on a simulated decoder (see
    the module's docstring): the same measures as ``measure``, with stream time for arrival."""
    import heapq
    import itertools

    from whisper_live.core.events import SegmentsChanged
    from whisper_live.core.options import SessionOptions
    from whisper_live.core.requests import DecodeKind
    from whisper_live.core.session import StreamingSession
    from whisper_live.engine.decoding import run_decode
    from whisper_live.engine.vad import StreamingVad

    model = _whisper(model_name, compute_type)
    options = SessionOptions(language=config.get("language"))
    if config.get("commit_after") is not None:
        options.commit_after = float(config["commit_after"])
    if config.get("partial_interval") is not None:
        options.partial_interval = float(config["partial_interval"])
    session = StreamingSession(options, vad=StreamingVad())
    queue: list = []  # (done at, order, request, result)
    order = itertools.count()
    free_at = 0.0
    calls = {"final": 0, "partial": 0}
    shown: list[lm.Display] = []

    def collect(at: float) -> None:
        if any(isinstance(e, SegmentsChanged) for e in session.take_events()):
            completed = "".join(s.text for s in session.completed)
            shown.append(lm.Display(at, completed, session.partial.text if session.partial else ""))

    def submit(at: float) -> None:
        nonlocal free_at
        for request in session.take_requests():
            result = run_decode(model, request.audio, request.options)
            # a partial with the beam settles words greedy partials doubted (session._confirm)
            confirm = request.kind is DecodeKind.PARTIAL and request.options.beam_size > 1
            kind = "confirm" if confirm else request.kind.name.lower()
            calls[kind] = calls.get(kind, 0) + 1
            free_at = max(at, free_at) + cost
            heapq.heappush(queue, (free_at, next(order), request, result))

    def deliver(until: float) -> None:
        while queue and queue[0][0] <= until:
            at, _, request, result = heapq.heappop(queue)
            session.decode_done(request, result)
            collect(at)
            submit(at)

    frame = SAMPLE_RATE // 10
    for pos in range(0, len(audio), frame):
        now = min(pos + frame, len(audio)) / SAMPLE_RATE
        deliver(now)
        session.feed(audio[pos : pos + frame])
        collect(now)
        submit(now)
    now = len(audio) / SAMPLE_RATE
    deliver(now)
    session.end_of_audio()
    collect(now)
    submit(now)
    while queue:
        deliver(queue[0][0])
    transcript = "".join(s.text for s in session.completed).strip()
    return _measures(None, audio, reference, base, shown, transcript, calls) | {
        "simulated_decode_seconds": cost
    }


def _measures(
    root: Path | None,
    audio: np.ndarray,
    reference: str,
    base: dict,
    shown: list[lm.Display],
    transcript: str,
    calls: dict[str, int],
) -> dict:
    """The word-by-word measures of one run from what its client showed."""
    final = lm.words(transcript)
    committed_lat, committed_missing = lm.emission_latencies(
        base["spoken"], final, lm.first_committed(final, shown)
    )
    displayed_lat, _ = lm.emission_latencies(base["spoken"], final, lm.first_displayed(final, shown))
    texts = [d.text for d in shown]
    seconds = len(audio) / SAMPLE_RATE
    return {
        "server_root": str(root) if root else None,
        "wer": round(ev.wer(reference, transcript), 4),
        "committed_p50": pct(committed_lat, 50),
        "committed_p90": pct(committed_lat, 90),
        "displayed_p50": pct(displayed_lat, 50),
        "displayed_p90": pct(displayed_lat, 90),
        "spoken_words_not_in_final": committed_missing,
        "normalized_erasure": round(lm.normalized_erasure(texts), 4),
        "display_updates": len(texts),
        "model_calls": calls,
        "model_calls_per_audio_second": round(sum(calls.values()) / seconds, 3),
        "transcript": transcript,
        # every display: [arrival s, characters of completed text shown, the partial]; the
        # completed text is ``completed_text``'s first characters (what flickered, and when)
        "completed_text": shown[-1].completed if shown else "",
        "displays": [[round(d.at, 3), len(d.completed), d.partial] for d in shown],
    }


def model_calls(status: dict) -> dict[str, int]:
    """Model calls the server made by priority (``/status`` counts them by batch size)."""
    return {kind: sum(counts.values()) for kind, counts in (status.get("batch_sizes") or {}).items()}


def measure(
    root: Path | None, server_args: list[str], audio: np.ndarray, reference: str, base: dict, config: dict
) -> dict:
    env = {"PYTHONPATH": str(root)} if root else None
    with contextlib.chdir(root) if root else contextlib.nullcontext():
        # ``-m`` puts the working directory first on sys.path: the checkout's package wins
        server = ServerProcess(server_args, env=env)
    try:
        cpu0 = server.cpu_seconds()
        seconds = len(audio) / SAMPLE_RATE
        trace = asyncio.run(ev.stream(server.url, audio, config, timeout=seconds + 120))
        cpu = server.cpu_seconds() - cpu0
        status = server.status()
    finally:
        server.stop()
    shown = lm.displays(trace.messages[1:], trace.arrivals)
    seconds = len(audio) / SAMPLE_RATE
    return _measures(root, audio, reference, base, shown, trace.transcript, model_calls(status)) | {
        "completed_segments": len(trace.completed),
        "committed_before_audio_end": sum(1 for at in trace.completed_at if at < seconds),
        "server_cpu_seconds": round(cpu, 1),
        "closed": trace.close_code,
    }


def main() -> None:
    ev.use_benchmark_audio()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="ljspeech,sonnet,devclean")
    parser.add_argument(
        "--commit-after",
        type=float,
        help="the client's commit_after (seconds an utterance lasts before words are committed; "
        "0: word by word); default: the server's",
    )
    parser.add_argument(
        "--server-root",
        action="append",
        type=Path,
        help="run the server from this checkout (repeatable: one run each, same audio)",
    )
    parser.add_argument(
        "--partial-interval", type=float, help="seconds of audio between partials (with --simulate only)"
    )
    parser.add_argument(
        "--simulate",
        type=float,
        metavar="COST",
        help="no server: an in-process session whose every decode takes COST seconds of stream time",
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--json", help="write results here")
    parser.add_argument("server_arg", nargs="*", help="extra server flags after --")
    args = parser.parse_args()
    config = {"language": "en"} | ({} if args.commit_after is None else {"commit_after": args.commit_after})
    server_args = [
        "--model",
        args.model,
        "--compute-type",
        args.compute_type,
        "--no-capacity-admission",
        *args.server_arg,
    ]
    roots = [r.resolve() for r in args.server_root] if args.server_root else [None]
    cases = []
    for name in args.cases.split(","):
        audio, reference = case_audio(name)
        seconds = len(audio) / SAMPLE_RATE
        base = offline(audio, args.model, args.compute_type)
        case = {
            "case": name,
            "audio_seconds": round(seconds, 1),
            "offline_wer": round(ev.wer(reference, base["text"]), 4),
            "offline_seconds": base["seconds"],
            "spoken_words": len(base["spoken"]),
            "runs": [],
        }
        if args.simulate is not None:
            print(f"{name}: {seconds:.0f} s, simulated ({args.simulate} s a decode) ...", flush=True)
            sim_config = config | (
                {} if args.partial_interval is None else {"partial_interval": args.partial_interval}
            )
            run = simulate(audio, reference, base, sim_config, args.model, args.compute_type, args.simulate)
            case["runs"].append(run)
        for root in roots if args.simulate is None else []:
            print(f"{name}: {seconds:.0f} s, server from {root or 'this checkout'} ...", flush=True)
            case["runs"].append(measure(root, server_args, audio, reference, base, config))
        cases.append(case)
    print(
        f"\n{'case':<9} {'server':<24} {'WER':>6} {'offline':>7} {'commit p50':>10} {'p90':>6} "
        f"{'shown p50':>9} {'p90':>6} {'erasure':>7} {'calls/s':>7}"
    )
    for case in cases:
        for run in case["runs"]:
            root = (run["server_root"] or "this checkout")[-24:]
            print(
                f"{case['case']:<9} {root:<24} {run['wer']:>6.3f} {case['offline_wer']:>7.3f} "
                f"{run['committed_p50']!s:>10} {run['committed_p90']!s:>6} {run['displayed_p50']!s:>9} "
                f"{run['displayed_p90']!s:>6} {run['normalized_erasure']:>7.3f} "
                f"{run['model_calls_per_audio_second']:>7}"
            )
    report = {
        **report_header(),
        "model": args.model,
        "compute_type": args.compute_type,
        "pacing": "one client, each frame sent when its last sample exists",
        "cases": cases,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
