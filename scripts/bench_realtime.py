#!/usr/bin/env python3
"""Completed-transcript latency through the Realtime face vs the WhisperLive face: same audio,
same run; and the Realtime face's delta cadence.

One server (a child process); for each stream count, N real-time clients stream the same
conversations (real utterances with silences, client i rotated by i) first through the
WhisperLive WebSocket, then through ``/v1/realtime?intent=transcription`` (24 kHz pcm16 in
base64 ``input_audio_buffer.append`` events, ``server_vad`` with the WhisperLive face's
speech pad, 500 ms silence). Latency is measured the same way for both
(``evaluation.final_latencies``: end of an utterance's speech -> its final text arrives;
for the Realtime face the item's ``completed`` event, placed by its ``speech_started`` /
``speech_stopped`` times). Delta cadence: the median gap between successive deltas of an
item. Machine load is recorded around each round: it needs an idle machine to mean much.

    python scripts/bench_realtime.py --streams 1,8 --utterances 6
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import time

import av
import numpy as np
from bench_listen import summary
from bench_streaming import ServerProcess, conversations, run_clients
from harness import evaluation as ev

from whisper_live.core.pcm import SAMPLE_RATE

TURN = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 500, "silence_duration_ms": 500}


def pcm24(samples: np.ndarray) -> bytes:
    """16 kHz float32 -> 24 kHz int16 bytes (PyAV's filtered resampler), as OpenAI's clients send."""
    frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    resampler = av.AudioResampler(format="s16", layout="mono", rate=24000)
    frames = [*resampler.resample(frame), *resampler.resample(None)]
    return b"".join(bytes(f.planes[0])[: f.samples * 2] for f in frames)


async def stream_realtime(url: str, samples: np.ndarray, frame: int) -> tuple[ev.StreamTrace, list[float]]:
    """``evaluation.stream`` for the Realtime face; also the gaps between an item's deltas."""
    import websockets

    trace, gaps = ev.StreamTrace(), []
    audio = pcm24(samples)
    started = time.monotonic()
    async with websockets.connect(url + "/v1/realtime?intent=transcription", max_size=2**24) as ws:
        trace.messages.append(json.loads(await ws.recv()))
        session = {"type": "transcription", "audio": {"input": {"turn_detection": TURN}}}
        session["audio"]["input"]["transcription"] = {"language": "en"}
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        trace.ready_after = time.monotonic() - started
        t0 = time.monotonic()

        async def sender():
            async for begin, end in ev.paced(len(samples), frame, start=t0):
                chunk = audio[begin * 3 : end * 3]  # 16 kHz sample bounds -> 24 kHz int16 bytes
                await ws.send(
                    json.dumps(
                        {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}
                    )
                )

        spans: dict[str, list[float]] = {}
        last_delta: dict[str, float] = {}
        done: set[str] = set()

        async def receiver():
            async for raw in ws:
                now = time.monotonic() - t0
                event = json.loads(raw)
                trace.messages.append(event)
                trace.arrivals.append(now)
                kind, item = event["type"], event.get("item_id")
                if kind == "input_audio_buffer.speech_started":
                    spans[item] = [event["audio_start_ms"] / 1000, len(samples) / SAMPLE_RATE]
                elif kind == "input_audio_buffer.speech_stopped":
                    spans.setdefault(item, [0.0, 0.0])[1] = event["audio_end_ms"] / 1000
                elif kind.endswith("transcription.delta"):
                    if item in last_delta:
                        gaps.append(now - last_delta[item])
                    last_delta[item] = now
                elif kind.endswith("transcription.completed"):
                    start, end = spans.get(item, [0.0, now])
                    trace.completed.append({"start": start, "end": end, "text": " " + event["transcript"]})
                    trace.completed_at.append(now)
                    done.add(item)

        task = asyncio.create_task(receiver())
        try:
            await sender()
            async with asyncio.timeout(120):  # every item heard is completed
                while not set(spans) <= done:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pass
        finally:
            task.cancel()
    return trace, gaps


async def run_realtime(url: str, convs: list[ev.Conversation], arrival_gap: float, frame: int):
    async def one(i: int, conv: ev.Conversation):
        await asyncio.sleep(i * arrival_gap)
        return await stream_realtime(url, conv.audio, frame)

    return await asyncio.gather(*(one(i, c) for i, c in enumerate(convs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,8", help="stream counts to run, comma-separated")
    parser.add_argument("--utterances", type=int, default=6)
    parser.add_argument("--gap", type=float, default=1.5, help="seconds of silence between utterances")
    parser.add_argument("--arrival-gap", type=float, default=0.7)
    parser.add_argument("--frame", type=ev.parse_frame, default=ev.FRAME_100MS, help="audio per message")
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
            for face in ("whisperlive", "realtime"):
                load_before, cpu_before, t0 = os.getloadavg()[0], server.cpu_seconds(), time.monotonic()
                if face == "whisperlive":
                    traces = asyncio.run(run_clients(server.url, convs, "en", args.arrival_gap, args.frame))
                    extra = {}
                else:
                    results = asyncio.run(run_realtime(http_ws, convs, args.arrival_gap, args.frame))
                    traces = [t for t, _ in results]
                    gaps = [g for _, gs in results for g in gs]
                    extra = {
                        "delta_gap_median_s": round(statistics.median(gaps), 3) if gaps else None,
                        "deltas": len(gaps) + sum(1 for t in traces for _ in t.completed),
                    }
                cpu = (server.cpu_seconds() - cpu_before) / (time.monotonic() - t0)
                row[face] = {
                    **summary(convs, traces),
                    **extra,
                    "server_cpu_cores": round(cpu, 2),
                    "load_1min_before": round(load_before, 2),
                    "load_1min_after": round(os.getloadavg()[0], 2),
                }
                print(json.dumps({"streams": n, "face": face, **row[face]}), flush=True)
            wl, rt = row["whisperlive"]["final_p50"], row["realtime"]["final_p50"]
            row["p50_difference_s"] = round(rt - wl, 3) if wl is not None and rt is not None else None
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
