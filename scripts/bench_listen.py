#!/usr/bin/env python3
"""Live final latency through the Deepgram face vs the WhisperLive face: same audio, same run.

One server (a child process); for each stream count, N real-time clients stream the same
conversations (real utterances with silences, client i rotated by i) first through the
WhisperLive WebSocket, then through ``WebSocket /v1/listen`` (linear16, interim results on).
Final latency is measured the same way for both (``evaluation.final_latencies``: end of an
utterance's speech → its final text arrives); the Deepgram face's finals also carry word
timings, which the WhisperLive clients do not ask for. Machine load is recorded around
each round, since other processes share the CPU.

    python scripts/bench_listen.py --streams 1,2,4 --utterances 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import numpy as np
from bench_streaming import ServerProcess, conversations, pct, run_clients
from harness import evaluation as ev


async def stream_listen(url: str, samples: np.ndarray, frame: int) -> ev.StreamTrace:
    """``evaluation.stream`` for the Deepgram face: final Results become completed segments.
    Frames leave on the same schedule as the WhisperLive clients' (``evaluation.paced``)."""
    import websockets

    trace = ev.StreamTrace()
    pcm = ev.to_pcm(samples)
    query = "?encoding=linear16&sample_rate=16000&interim_results=true&punctuate=true"
    started = time.monotonic()
    async with websockets.connect(url + "/v1/listen" + query, max_size=2**24) as ws:
        trace.messages.append(json.loads(await ws.recv()))
        trace.ready_after = time.monotonic() - started
        t0 = time.monotonic()

        async def sender():
            async for begin, end in ev.paced(len(samples), frame, start=t0):
                await ws.send(pcm[begin * 2 : end * 2])
            await ws.send(json.dumps({"type": "CloseStream"}))

        task = asyncio.create_task(sender())
        async for raw in ws:
            now = time.monotonic() - t0
            message = json.loads(raw)
            trace.messages.append(message)
            trace.arrivals.append(now)
            if message.get("type") == "Results" and message["is_final"]:
                text = message["channel"]["alternatives"][0]["transcript"]
                start = message["start"]
                trace.completed.append(
                    {"start": start, "end": start + message["duration"], "text": " " + text}
                )
                trace.completed_at.append(now)
        task.cancel()
        trace.close_code = ws.close_code
    return trace


async def run_listen(
    url: str, convs: list[ev.Conversation], arrival_gap: float, frame: int
) -> list[ev.StreamTrace]:
    async def one(i: int, conv: ev.Conversation):
        await asyncio.sleep(i * arrival_gap)
        return await stream_listen(url, conv.audio, frame)

    return await asyncio.gather(*(one(i, c) for i, c in enumerate(convs)))


def summary(convs: list[ev.Conversation], traces: list[ev.StreamTrace]) -> dict:
    latencies = [x for c, t in zip(convs, traces, strict=True) for x in ev.final_latencies(c, t)]
    wers = [ev.wer(c.reference, t.transcript) for c, t in zip(convs, traces, strict=True)]
    return {
        "final_p50": pct(latencies, 50),
        "final_p90": pct(latencies, 90),
        "final_max": pct(latencies, 100),
        "missing_finals": sum(x is None for x in latencies),
        "wer": round(float(np.mean(wers)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,2,4", help="stream counts to run, comma-separated")
    parser.add_argument("--utterances", type=int, default=6)
    parser.add_argument("--gap", type=float, default=1.5, help="seconds of silence between utterances")
    parser.add_argument("--arrival-gap", type=float, default=0.7)
    parser.add_argument(
        "--frame",
        type=ev.parse_frame,
        default=ev.FRAME_100MS,
        help="audio per message: samples or e.g. 100ms",
    )
    parser.add_argument("--server-args", default="", help="extra whisper-live-server flags")
    parser.add_argument("--output", help="write the figures as JSON here")
    args = parser.parse_args()

    utts = ev.manifest("librispeech_dev_clean")[: args.utterances]
    server = ServerProcess(["--no-capacity-admission", *args.server_args.split()])
    rounds = []
    try:
        http_ws = f"ws://127.0.0.1:{server.http_port}"
        for n in [int(x) for x in args.streams.split(",")]:
            convs = conversations(utts, n, args.gap, lockstep=False)
            row: dict = {"streams": n}
            for face, run in (
                ("whisperlive", lambda c: run_clients(server.url, c, "en", args.arrival_gap, args.frame)),
                ("deepgram", lambda c: run_listen(http_ws, c, args.arrival_gap, args.frame)),
            ):
                load_before, cpu_before, t0 = os.getloadavg()[0], server.cpu_seconds(), time.monotonic()
                traces = asyncio.run(run(convs))
                cpu = (server.cpu_seconds() - cpu_before) / (time.monotonic() - t0)
                row[face] = {
                    **summary(convs, traces),
                    "server_cpu_cores": round(cpu, 2),
                    "load_1min_before": round(load_before, 2),
                    "load_1min_after": round(os.getloadavg()[0], 2),
                }
                print(json.dumps({"streams": n, "face": face, **row[face]}), flush=True)
            wl, dg = row["whisperlive"]["final_p50"], row["deepgram"]["final_p50"]
            row["p50_difference_s"] = round(dg - wl, 3) if wl is not None and dg is not None else None
            rounds.append(row)
    finally:
        server.stop()
    result = {"cores": os.cpu_count(), "utterances": args.utterances, "rounds": rounds}
    print(json.dumps(result, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
