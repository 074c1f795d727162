#!/usr/bin/env python3
"""Batch (REST) benchmark: upload wall time against plain faster-whisper, and what a long
upload does to a live stream.

1. For each file, in the same run and alternating so machine noise hits both alike:
   ``POST /v1/audio/transcriptions`` wall time (upload, decode, VAD pieces, JSON) and
   ``WhisperModel.transcribe(path)`` with the same model and settings (in-process: the
   server pool's own model object). Prints ratio REST/plain, real-time factors and WER.
2. A live WebSocket stream of LibriSpeech utterances at real-time pace, alone and while a
   ~3-minute upload (the longform files concatenated) is transcribed: final latency p50/p90.

    python scripts/bench_batch.py                 # starts a server in-process
    python scripts/bench_batch.py --url http://127.0.0.1:8001 --ws-url ws://127.0.0.1:9090
    python scripts/bench_batch.py --json results.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from harness import evaluation as ev
from harness.server_thread import ServerThread, free_port

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.media import decode_audio
from whisper_live.settings import ServerSettings


async def rest_transcribe(url: str, path: Path, model: str) -> tuple[str, float]:
    started = time.perf_counter()
    form = aiohttp.FormData()
    form.add_field("model", model)
    form.add_field("file", path.read_bytes(), filename=path.name)
    timeout = aiohttp.ClientTimeout(total=3600)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url + "/v1/audio/transcriptions", data=form) as response,
    ):
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"{path.name}: HTTP {response.status}: {body}")
    return body["text"], time.perf_counter() - started


def plain_transcribe(model, path: Path) -> tuple[str, float]:
    """What a user of faster-whisper writes: the defaults our REST defaults mirror."""
    started = time.perf_counter()
    segments, _ = model.transcribe(str(path))
    text = "".join(s.text for s in segments).strip()
    return text, time.perf_counter() - started


def default_files() -> list[ev.Utterance]:
    longform = ev.manifest("longform")
    libri = sorted(ev.manifest("librispeech_dev_clean"), key=lambda u: u.id)[:4]
    return [*longform, ev.manifest("jfk")[0], *libri]


def compare(args, url: str, model) -> list[dict]:
    rows = []
    for utt in default_files():
        duration = len(decode_audio(str(utt.path))) / SAMPLE_RATE
        rest_times, plain_times = [], []
        rest_text = plain_text = ""
        for i in range(args.repeat):
            # Alternate which goes first, so a burst of load elsewhere hits both.
            if i % 2 == 0:
                rest_text, t = asyncio.run(rest_transcribe(url, utt.path, args.model))
                rest_times.append(t)
                plain_text, t = plain_transcribe(model, utt.path)
                plain_times.append(t)
            else:
                plain_text, t = plain_transcribe(model, utt.path)
                plain_times.append(t)
                rest_text, t = asyncio.run(rest_transcribe(url, utt.path, args.model))
                rest_times.append(t)
        rest, plain = min(rest_times), min(plain_times)
        english = utt.language == "en"
        rows.append(
            {
                "file": utt.path.name,
                "language": utt.language,
                "duration_s": round(duration, 2),
                "rest_s": round(rest, 3),
                "plain_s": round(plain, 3),
                "ratio": round(rest / plain, 3),
                "rest_rtf": round(rest / duration, 4),
                "plain_rtf": round(plain / duration, 4),
                "rest_wer": round(ev.wer(utt.reference, rest_text), 3) if english else None,
                "plain_wer": round(ev.wer(utt.reference, plain_text), 3) if english else None,
            }
        )
        print(f"  {utt.path.name}: REST {rest:.2f}s, plain {plain:.2f}s", file=sys.stderr)
    return rows


def long_upload(folder: Path) -> Path:
    """The longform recordings back to back (~3 min), as one 16 kHz wav."""
    audio = np.concatenate([decode_audio(str(u.path)) for u in ev.manifest("longform")])
    return ev.write_wav(folder / "longform_concatenated.wav", audio)


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


async def stream_with_upload(args, url: str, ws_url: str, conv: ev.Conversation, upload: Path | None) -> dict:
    upload_task = None
    if upload is not None:
        upload_task = asyncio.create_task(rest_transcribe(url, upload, args.model))
        await asyncio.sleep(1.0)  # the upload is decoded and its first piece queued
    trace = await ev.stream(ws_url, conv.audio, {"model": args.model}, timeout=600)
    stream_end = time.perf_counter()
    result: dict = {}
    if upload_task is not None:
        text, seconds = await upload_task
        result.update(
            upload_s=round(seconds, 2), upload_running_whole_stream=time.perf_counter() > stream_end + 0.5
        )
    latencies = ev.final_latencies(conv, trace)
    measured = [x for x in latencies if x is not None]
    result.update(
        utterances=len(conv.utterances),
        missing_finals=len(latencies) - len(measured),
        final_p50_s=pct(measured, 50),
        final_p90_s=pct(measured, 90),
        final_max_s=round(max(measured), 3) if measured else None,
        stream_wer=round(ev.wer(conv.reference, trace.transcript), 3),
    )
    return result


def latency(args, url: str, ws_url: str) -> dict:
    utterances = sorted(ev.manifest("librispeech_dev_clean"), key=lambda u: u.id)[: args.utterances]
    conv = ev.conversation(utterances, gap=2.0)
    with tempfile.TemporaryDirectory() as tmp:
        upload = long_upload(Path(tmp))
        upload_seconds = len(decode_audio(str(upload))) / SAMPLE_RATE
        alone = asyncio.run(stream_with_upload(args, url, ws_url, conv, None))
        loaded = asyncio.run(stream_with_upload(args, url, ws_url, conv, upload))
    return {
        "stream_audio_s": round(len(conv.audio) / SAMPLE_RATE, 1),
        "upload_audio_s": round(upload_seconds, 1),
        "alone": alone,
        "with_upload": loaded,
    }


def print_report(report: dict) -> None:
    header = f"{'file':44} {'dur s':>6} {'REST s':>7} {'plain s':>8} {'ratio':>6} {'RTF rest':>9} {'RTF plain':>9} {'WER r/p':>11}"
    print(header)
    print("-" * len(header))
    for r in report["files"]:
        wer = f"{r['rest_wer']:.2f}/{r['plain_wer']:.2f}" if r["rest_wer"] is not None else "-"
        print(
            f"{r['file'][:44]:44} {r['duration_s']:6.1f} {r['rest_s']:7.2f} {r['plain_s']:8.2f} {r['ratio']:6.2f} "
            f"{r['rest_rtf']:9.3f} {r['plain_rtf']:9.3f} {wer:>11}"
        )
    total = report["totals"]
    print(
        f"{'TOTAL':44} {total['duration_s']:6.1f} {total['rest_s']:7.2f} {total['plain_s']:8.2f} "
        f"{total['ratio']:6.2f} {total['rest_rtf']:9.3f} {total['plain_rtf']:9.3f}"
    )
    if "latency" in report:
        lat = report["latency"]
        print(
            f"\nLive stream ({lat['stream_audio_s']} s, real time) final latency; upload {lat['upload_audio_s']} s:"
        )
        for name in ("alone", "with_upload"):
            r = lat[name]
            extra = f", upload took {r['upload_s']} s" if "upload_s" in r else ""
            print(
                f"  {name:12} p50 {r['final_p50_s']} s  p90 {r['final_p90_s']} s  max {r['final_max_s']} s  "
                f"WER {r['stream_wer']}  missing {r['missing_finals']}{extra}"
            )


def main() -> None:
    ev.use_benchmark_audio()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running server's HTTP URL (default: start one in-process)")
    parser.add_argument("--ws-url", help="its WebSocket URL (for the latency part)")
    parser.add_argument("--model", default="tiny.en", help="model for both sides (default tiny.en)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per file; the fastest counts")
    parser.add_argument("--utterances", type=int, default=6, help="utterances in the live stream")
    parser.add_argument("--skip-latency", action="store_true", help="only the wall-time comparison")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-' for stdout)")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    server = None
    if args.url:
        from whisper_live.engine.pool import ModelPool

        url, ws_url = args.url.rstrip("/"), args.ws_url
        model = ModelPool(default_model=args.model).get(None).model  # same per-decode threads as the server
    else:
        server = ServerThread(
            ServerSettings(host="127.0.0.1", port=0, http_port=free_port(), model=args.model)
        ).start()
        url, ws_url = server.http_url, server.ws_url
        model = server.server.pool.get(None).model
    try:
        files = compare(args, url, model)
        totals = {k: round(sum(r[k] for r in files), 3) for k in ("duration_s", "rest_s", "plain_s")}
        totals.update(
            ratio=round(totals["rest_s"] / totals["plain_s"], 3),
            rest_rtf=round(totals["rest_s"] / totals["duration_s"], 4),
            plain_rtf=round(totals["plain_s"] / totals["duration_s"], 4),
        )
        report = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "load_avg_at_start": os.getloadavg(),
            },
            "model": args.model,
            "files": files,
            "totals": totals,
        }
        if not args.skip_latency and ws_url:
            report["latency"] = latency(args, url, ws_url)
        report["machine"]["load_avg_at_end"] = os.getloadavg()
    finally:
        if server is not None:
            server.stop()
    print_report(report)
    if args.json == "-":
        print(json.dumps(report, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
