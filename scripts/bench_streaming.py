#!/usr/bin/env python3
"""Streaming benchmark: N concurrent real-time clients against a real server.

Each client streams a conversation (real utterances from ../shared/audio with silences
between them) at real-time pace; client i plays the utterances rotated by i, so streams end
their utterances at unrelated times as independent speakers do (``--lockstep``: all play
the same order, a burst of simultaneous finals every utterance). Reported per client and in aggregate: WER of
the completed text, final latency (end of an utterance's speech → its completed text
arrives), live latency (→ text covering its end is first shown, partials included) at
p50/p90, time to SERVER_READY; for the server process: CPU seconds, CPU while a client
sends only silence, and peak RSS. Plain faster-whisper decodes the same clips offline in
the same run, for the WER reference.

Audio goes out as a live source sends it: a frame covering [t, t+d) leaves at t+d after the
stream started, never earlier (``harness.evaluation.paced``); ``--frame`` sets d: 100 ms (our
browser page and Python client) or 4096 samples (WhisperLive's own client).

    python scripts/bench_streaming.py --clients 1 --utterances 15
    python scripts/bench_streaming.py --clients 1 --frame 4096
    python scripts/bench_streaming.py --sweep 1,2,4,8 --plot docs/latency_vs_streams.png
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from harness import evaluation as ev

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.media import decode_audio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report_header() -> dict:
    """When, where and how a benchmark ran: the first fields of every JSON report."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": " ".join(sys.argv),
    }


class ServerProcess:
    """The server as a child process, so its CPU time and memory are its own."""

    def __init__(
        self,
        extra_args: list[str],
        env: dict[str, str] | None = None,
        log: Path | None = None,
        root: Path | None = None,
    ):
        """``env`` is added to this process's environment (allocator settings, LD_PRELOAD);
        ``log`` receives the server's stderr (else it shares ours); ``root``: run the server
        of another checkout (its ``whisper_live`` first on the path), e.g. the code before a
        change, so that before and after are measured in one run."""
        if root is not None:  # and its directory is the server's: `python -m` puts that first
            env = {
                **(env or {}),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
            }
        self.port = free_port()
        self.http_port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "whisper_live.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(self.http_port),
            "--log-level",
            "warning",
            *extra_args,
        ]
        self._log = open(log, "w") if log else None  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stderr=self._log, cwd=root)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("server exited during start-up") from None
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def status(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/status", timeout=10) as r:
            return json.load(r)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self, peak: bool = False) -> float:
        key = "VmHWM:" if peak else "VmRSS:"
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._log:
            self._log.close()


def live_latencies(
    conv: ev.Conversation, trace: ev.StreamTrace, final: list[float | None]
) -> list[float | None]:
    """For each utterance: seconds from the end of its speech until text reaching the end of
    its audio (within 0.3 s) is first on screen, as a partial, or else its final latency."""
    out = []
    for end, speech_end, final_latency in zip(conv.ends, conv.speech_ends, final, strict=True):
        shown = [
            at - speech_end
            for msg, at in zip(trace.messages[1:], trace.arrivals, strict=False)
            if any(
                float(seg["end"]) >= end - 0.3 and float(seg["start"]) < end + 0.5 and seg["text"].strip()
                for seg in msg.get("segments") or []
            )
        ]
        if final_latency is not None:
            shown.append(final_latency)
        out.append(min(shown) if shown else None)
    return out


def drift(timeline: list[tuple[float, float]]) -> dict:
    """Does final latency creep up over the run? p90 of the first and last thirds, and the
    least-squares slope of latency against stream time."""
    if len(timeline) < 6:
        return {}
    timeline.sort()
    ends, lats = np.array(timeline).T
    third = len(lats) // 3
    return {
        "final_p90_first_third": pct(list(lats[:third]), 90),
        "final_p90_last_third": pct(list(lats[-third:]), 90),
        "drift_s_per_minute": round(float(np.polyfit(ends / 60.0, lats, 1)[0]), 4),
    }


def pct(values: list[float | None], q: float) -> float | None:
    vals = [v for v in values if v is not None]
    return round(float(np.percentile(vals, q)), 3) if vals else None


def conversations(
    utts: list[ev.Utterance], clients: int, gap: float, lockstep: bool
) -> list[ev.Conversation]:
    """Client i's conversation: the utterances rotated by i (all the same with lockstep)."""
    orders = [utts if lockstep else utts[i % len(utts) :] + utts[: i % len(utts)] for i in range(clients)]
    made: dict[str, ev.Conversation] = {}
    for order in orders:
        made.setdefault(order[0].id, ev.conversation(order, gap=gap))
    return [made[order[0].id] for order in orders]


async def run_clients(
    url: str,
    convs: list[ev.Conversation],
    language: str | None,
    arrival_gap: float,
    frame: int,
    commit_after: float | None = None,
) -> list[ev.StreamTrace]:
    config: dict = {"language": language}
    if commit_after is not None:  # our WhisperLive extension (SessionOptions.commit_after)
        config["commit_after"] = commit_after

    async def one(i: int, conv: ev.Conversation):
        await asyncio.sleep(i * arrival_gap)  # clients do not connect at the same instant
        return await ev.stream(
            url,
            conv.audio,
            config,
            speed=1.0,
            frame=frame,
            timeout=len(conv.audio) / SAMPLE_RATE + 120,
        )

    return await asyncio.gather(*(one(i, c) for i, c in enumerate(convs)))


async def silence_cpu(server: ServerProcess, seconds: float, frame: int) -> float:
    """Server CPU (% of one core) while one connected client streams digital silence."""
    quiet = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    task = asyncio.create_task(ev.stream(server.url, quiet, speed=1.0, frame=frame, timeout=seconds + 30))
    await asyncio.sleep(2.0)
    before, t0 = server.cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds - 3.0)
    used = server.cpu_seconds() - before
    elapsed = time.monotonic() - t0
    await task
    return round(100 * used / elapsed, 2)


def offline_baseline(conv: ev.Conversation, model: str, compute_type: str) -> dict:
    from faster_whisper import WhisperModel

    from whisper_live.engine.models import resolve

    wm = WhisperModel(resolve(model).path, device="cpu", compute_type=compute_type)
    started = time.monotonic()
    texts = []
    for utt in conv.utterances:
        segments, _ = wm.transcribe(
            decode_audio(str(utt.path)), language=utt.language if model.endswith(".en") else None
        )
        texts.append("".join(s.text for s in segments))
    return {
        "wer": round(ev.wer(conv.reference, " ".join(texts)), 4),
        "seconds": round(time.monotonic() - started, 2),
    }


# Where a server's CPU goes, by the shared object perf finds it in (the first that matches).
CPU_PARTS = (
    ("the model (CTranslate2 and its JIT kernels)", ("ctranslate2", "[JIT]", "libgomp")),
    ("numpy's BLAS (OpenBLAS threads)", ("openblas",)),
    ("the VAD (onnxruntime)", ("onnxruntime",)),
    ("features (numpy, FFT)", ("_multiarray", "_pocketfft", "_umath")),
    ("the Python interpreter (sessions, protocol, JSON, asyncio)", ("libpython", "cpython-3", ".abi3.so")),
    ("the kernel (sockets, scheduling, page faults)", ("[kernel", "[vdso]")),
    ("the C library (allocation, copies)", ("libc.so", "libm.so", "libstdc++", "ld-linux", "libz.so")),
)


class CpuProfile:
    """``perf record`` attached to the server while the clients run, summed by ``CPU_PARTS``:
    sampling CPU time (not wall time), it sees the native threads that a Python profiler
    cannot (the decoders, OpenBLAS's, onnxruntime's)."""

    def __init__(self, pid: int, path: Path):
        self.path = path
        self.proc = subprocess.Popen(
            ["perf", "record", "-F", "499", "-p", str(pid), "-o", str(path), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> dict[str, float]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)
        report = subprocess.run(
            [
                "perf",
                "report",
                "-i",
                str(self.path),
                "--no-children",
                "--sort",
                "dso",
                "--stdio",
                "-g",
                "none",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        shares: dict[str, float] = {}
        for share, dso in re.findall(r"^\s+([\d.]+)%\s+(\S.*)$", report, re.MULTILINE):
            part = next((name for name, keys in CPU_PARTS if any(k in dso for k in keys)), "other")
            shares[part] = shares.get(part, 0.0) + float(share)
        return {part: round(share, 1) for part, share in sorted(shares.items(), key=lambda kv: -kv[1])}


def measure(args, clients: int, utts: list[ev.Utterance], root: Path | None = None) -> dict:
    convs = conversations(utts, clients, args.gap, args.lockstep)
    server = ServerProcess(args.server_arg, root=root)
    try:
        rss_idle = server.rss_mb()
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        samples: list[tuple[float, float]] = []  # (seconds into the run, RSS MB)
        done = threading.Event()

        def sample_rss() -> None:
            while not done.wait(5.0):
                samples.append((round(time.monotonic() - t0, 1), round(server.rss_mb(), 1)))

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        profile = (
            CpuProfile(
                server.proc.pid,
                Path(args.profile).resolve() / f"perf-{clients}-{(root or Path.cwd()).name}.data",
            )
            if args.profile
            else None
        )
        traces = asyncio.run(
            run_clients(server.url, convs, args.language, args.arrival_gap, args.frame, args.commit_after)
        )
        cpu_parts = profile.stop() if profile else None
        done.set()
        sampler.join()
        cpu_used, wall = server.cpu_seconds() - cpu0, time.monotonic() - t0
        result = {
            "clients": clients,
            "frame_samples": args.frame,
            "audio_seconds": round(len(convs[0].audio) / SAMPLE_RATE, 1),
            "server_cpu_seconds": round(cpu_used, 1),
            "server_cpu_percent_of_one_core": round(100 * cpu_used / wall, 1),
            "rss_idle_mb": round(rss_idle, 1),
            "rss_peak_mb": round(server.rss_mb(peak=True), 1),
            # RSS at the end of each third of the run: growth that levels off is the
            # allocator's; growth that keeps its pace is a leak
            "rss_mb_by_third": [samples[min(len(samples) - 1, len(samples) * k // 3)][1] for k in (1, 2, 3)]
            if samples
            else None,
            "rss_timeline": samples,
        }
        if cpu_parts:
            result["cpu_percent_by_part"] = cpu_parts  # of the server's CPU samples
        status = server.status()
        result |= {
            "batch_sizes": status.get("batch_sizes"),  # model calls by how many decodes shared one
            "capacity_estimate": status.get("capacity_estimate"),  # the server's own, for admission
            "per_client": [],
        }
        served = [(c, t) for c, t in zip(convs, traces, strict=True) if t.status("SERVER_READY")]
        result["refused"] = len(traces) - len(served)  # answered WAIT: not in the figures below
        all_final, all_live, timeline = [], [], []
        for conv, trace in served:
            final = ev.final_latencies(conv, trace)
            live = live_latencies(conv, trace, final)
            all_final += final
            timeline += [
                (end, lat) for end, lat in zip(conv.speech_ends, final, strict=True) if lat is not None
            ]
            all_live += live
            result["per_client"].append(
                {
                    "wer": round(ev.wer(conv.reference, trace.transcript), 4),
                    "final_p50": pct(final, 50),
                    "final_p90": pct(final, 90),
                    "live_p50": pct(live, 50),
                    "live_p90": pct(live, 90),
                    "missing_finals": sum(v is None for v in final),
                    # how often the text on screen was refreshed while speaking
                    "partials_per_speech_second": round(
                        sum(
                            1
                            for m in trace.messages
                            if m.get("segments") and not m["segments"][-1]["completed"]
                        )
                        / sum(e - s for s, e in zip(conv.starts, conv.speech_ends, strict=True)),
                        3,
                    ),
                    "ready_s": round(trace.ready_after, 3),
                    "closed": trace.close_code,
                    "transcript": trace.transcript,
                }
            )
        result["aggregate"] = {
            "wer_mean": round(float(np.mean([c["wer"] for c in result["per_client"]])), 4),
            "final_p50": pct(all_final, 50),
            "final_p90": pct(all_final, 90),
            "live_p50": pct(all_live, 50),
            "live_p90": pct(all_live, 90),
            "ready_p90": round(float(np.percentile([t.ready_after for _, t in served], 90)), 3),
            "partials_per_speech_second": round(
                float(np.mean([c["partials_per_speech_second"] for c in result["per_client"]])), 3
            ),
            **drift(timeline),
        }
        if args.silence_seconds and clients == 1:
            result["silence_cpu_percent_of_one_core"] = asyncio.run(
                silence_cpu(server, args.silence_seconds, args.frame)
            )
        return result
    finally:
        server.stop()


def print_table(results: list[dict], baseline: dict | None) -> None:
    print(
        f"\n{'streams':>7} {'WER':>7} {'final p50':>9} {'final p90':>9} {'live p50':>8} {'live p90':>8} "
        f"{'CPU %':>6} {'RSS MB':>7} {'ready':>6}"
    )
    for r in results:
        a = r["aggregate"]
        if "server" in r:
            print(f"  {r['server']}")
        print(
            f"{r['clients']:>7} {a['wer_mean']:>7.4f} {a['final_p50']:>9} {a['final_p90']:>9} {a['live_p50']:>8} "
            f"{a['live_p90']:>8} {r['server_cpu_percent_of_one_core']:>6} {r['rss_peak_mb']:>7} {a['ready_p90']:>6}"
        )
        print(
            f"        batches {r['batch_sizes']}; capacity estimate {r['capacity_estimate']}; "
            f"refused (WAIT) {r['refused']}"
        )
        print(f"        partial refreshes per second of speech: {a.get('partials_per_speech_second')}")
        if r.get("rss_mb_by_third"):
            print(f"        RSS MB at the end of each third: {r['rss_mb_by_third']}")
        if "drift_s_per_minute" in a:
            print(
                f"        final p90 first third {a['final_p90_first_third']} s, last third "
                f"{a['final_p90_last_third']} s, trend {a['drift_s_per_minute']:+} s/min"
            )
        if r.get("cpu_percent_by_part"):
            print("        server CPU by part (% of its samples):")
            for part, share in r["cpu_percent_by_part"].items():
                print(f"          {share:>5.1f}  {part}")
        if "silence_cpu_percent_of_one_core" in r:
            print(
                f"        server CPU with one client sending silence: {r['silence_cpu_percent_of_one_core']}% of a core"
            )
    if baseline:
        print(
            f"plain faster-whisper offline, same clips and model: WER {baseline['wer']:.4f} ({baseline['seconds']} s)"
        )


def main() -> None:
    ev.use_benchmark_audio()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--sweep", help="comma-separated client counts, e.g. 1,2,4,8")
    parser.add_argument("--set", default="librispeech_dev_clean")
    parser.add_argument("--utterances", type=int, default=15)
    parser.add_argument("--gap", type=float, default=1.5, help="seconds of silence between utterances")
    parser.add_argument(
        "--repeat", type=int, default=1, help="play the conversation this many times (long runs)"
    )
    parser.add_argument("--lockstep", action="store_true", help="every client plays the same order")
    parser.add_argument("--arrival-gap", type=float, default=0.37, help="seconds between client connects")
    parser.add_argument(
        "--frame",
        type=ev.parse_frame,
        default=ev.FRAME_100MS,
        help="audio per message: samples (4096, WhisperLive's client) or milliseconds (100ms, the default)",
    )
    parser.add_argument("--language", default="en")
    parser.add_argument(
        "--commit-after",
        type=float,
        help="each client's commit_after (0: long speech committed word by word); default: the server's",
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--silence-seconds", type=float, default=20.0, help="0 skips the idle CPU check")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--before",
        type=Path,
        metavar="CHECKOUT",
        help="also run every row against the server of this checkout (e.g. a git worktree of the "
        "commit before a change), alternating with this one, so both sides share the run",
    )
    parser.add_argument("--json", help="write results here")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="attach `perf record` to the server during each run (perf data kept in DIR) and "
        "report where its CPU goes",
    )
    parser.add_argument("--plot", help="PNG of latency vs number of streams (with --sweep)")
    parser.add_argument("--replot", nargs="+", metavar="JSON", help="only plot these results to --plot")
    parser.add_argument("server_arg", nargs="*", help="extra server flags after --")
    args = parser.parse_args()
    if args.replot:
        replot(args.replot, args.plot)
        return
    args.server_arg = ["--model", args.model, "--compute-type", args.compute_type, *args.server_arg]

    utts = ev.manifest(args.set)[: args.utterances] * args.repeat
    seconds = len(ev.conversation(utts, gap=args.gap).audio) / SAMPLE_RATE
    counts = [int(n) for n in args.sweep.split(",")] if args.sweep else [args.clients]
    results = []
    sides: list[tuple[str | None, Path | None]] = [("after", None)]
    if args.before:
        sides.insert(0, ("before", args.before.resolve()))
    for n in counts:
        for side, root in sides:
            print(
                f"running {n} stream(s) of {seconds:.0f} s, {args.frame} samples per frame"
                + (f", {side}" if args.before else "")
                + " ...",
                flush=True,
            )
            result = measure(args, n, utts, root)
            if args.before:
                result["server"] = f"{side}: {root or Path.cwd()}"
            results.append(result)
    baseline = (
        None
        if args.no_baseline
        else offline_baseline(
            ev.conversation(ev.manifest(args.set)[: args.utterances], gap=args.gap),
            args.model,
            args.compute_type,
        )
    )
    print_table(results, baseline)
    report = {
        **report_header(),
        "model": args.model,
        "compute_type": args.compute_type,
        "frame_samples": args.frame,
        "pacing": "each frame sent when its last sample exists",
        "results": results,
        "offline_baseline": baseline,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.plot and len(results) > 1:
        plot(
            [r for r in results if not r.get("server", "").startswith("before")],
            args.plot,
            f"{args.model} {args.compute_type}, {os.cpu_count()} CPU cores",
        )


def plot(results: list[dict], path: str, title: str) -> None:
    """Latency and WER against the number of streams, so the knee shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    results = sorted(results, key=lambda r: r["clients"])
    xs = [r["clients"] for r in results]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for key, label in (("final_p50", "final p50"), ("final_p90", "final p90"), ("live_p90", "live p90")):
        ax.plot(xs, [r["aggregate"][key] for r in results], marker="o", label=label)
    ax.axhline(2.0, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("concurrent real-time streams")
    ax.set_ylabel("latency from end of speech (s)")
    ax.set_yscale("log")
    top = max(r["aggregate"]["final_p90"] for r in results)
    ax.set_yticks([t for t in (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64) if t <= 2 * top])
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    wers = [100 * r["aggregate"]["wer_mean"] for r in results]
    wer = ax.twinx()
    wer.plot(xs, wers, color="black", linestyle=":", label="WER")
    wer.set_ylim(0, max(10, max(wers) + 2))
    wer.set_ylabel("WER % (dotted)")
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def replot(paths: list[str], out: str) -> None:
    """One plot from several result files (e.g. a sweep and a run past the knee)."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    results = [r for report in reports for r in report["results"]]
    first = reports[0]
    model = f"{first.get('model', '')} {first.get('compute_type', '')}".strip()
    plot(results, out, f"{model}, {first['machine']['cpus']} CPU cores")


if __name__ == "__main__":
    main()
