#!/usr/bin/env python3
"""Soak: N real-time streams with churn plus periodic REST uploads for M minutes.

The server runs as a child process (``ServerProcess`` of bench_streaming.py) so that its RSS,
file descriptors and threads are its own. Each of the N stream slots plays short
conversations of real LibriSpeech utterances (``harness.evaluation``: paced, no audio sent
before it exists), one after another: a conversation ends with END_OF_AUDIO and the
connection closes, and after a short pause the slot opens a new one (churn). Beside them an
uploader posts a file through the REST client (``whisper_live.client.rest``) every few
seconds, alternating a short clip and a file longer than one window (cut by Silero into
pieces). Slots stop starting conversations after M minutes and the run ends when the last
one has finished: every loop is bounded by the deadline and every request by a timeout.

Reported over time (a sample every ``--sample-every`` seconds, and by thirds of the run):

- finals: every utterance sent must come back as a completed segment covering its end
  (``missing``) whose text matches its reference (``garbled``: WER >= 0.5 on the
  utterance); both count as lost. WER of each conversation against its references.
- final latency p50/p90 (end of speech -> completed segment), by the third its speech ended in;
- the server's RSS (and its anonymous part), open fds, threads, CPU, its asyncio tasks and
  active streams (from /status), and this machine's load average (the cores are shared);
- uploads: how long each took, its WER, errors.

At the end: the acceptance figures (0 lost finals; final p90 of the last third within 10 %
of the first; RSS growth over the last ``--rss-window`` minutes under 5 %), and the fds and
tasks once every client has gone, against the idle server's.

    python scripts/soak.py --streams 8 --minutes 30 --json docs/soak_30min.json -- --no-capacity-admission
    python scripts/soak.py --streams 8 --minutes 8 --env MALLOC_ARENA_MAX=2 --json /tmp/arena2.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from bench_streaming import ServerProcess, pct, report_header
from harness import evaluation as ev

from whisper_live.client import rest
from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.media import decode_audio


@dataclass
class Conversation:
    """One connection's audio: utterances ``first, first+1, ...`` (cyclic) of the set."""

    slot: int
    started: float  # seconds into the run the connection was opened
    utterances: int
    audio_seconds: float
    ready: bool = True  # False: the server answered WAIT or failed before SERVER_READY
    wer: float | None = None
    latencies: list[float | None] = field(default_factory=list)
    speech_ends: list[float] = field(default_factory=list)  # seconds into the run
    utterance_wers: list[float] = field(default_factory=list)
    error: str | None = None


@dataclass
class Upload:
    started: float
    file: str
    audio_seconds: float
    seconds: float | None = None
    wer: float | None = None
    error: str | None = None


@dataclass
class Sample:
    t: float  # seconds into the run
    rss_mb: float
    rss_anon_mb: float
    fds: int
    threads: int
    cpu_seconds: float
    load_1min: float
    asyncio_tasks: int | None
    active_streams: int | None


class Soak:
    def __init__(self, args, server: ServerProcess):
        self.args = args
        self.server = server
        self.utterances = ev.manifest(args.set)
        self._conversations: dict[tuple[int, int], ev.Conversation] = {}
        self.conversations: list[Conversation] = []
        self.uploads: list[Upload] = []
        self.samples: list[Sample] = []
        self.t0 = 0.0
        self.deadline = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def conversation(self, first: int, count: int) -> ev.Conversation:
        key = (first % len(self.utterances), count)
        if key not in self._conversations:
            order = self.utterances[key[0] :] + self.utterances[: key[0]]
            conv = ev.conversation(order[:count], gap=self.args.gap)
            conv.speech_ends  # noqa: B018 (Silero on the clips, once, before it is timed)
            self._conversations[key] = conv
        return self._conversations[key]

    async def slot(self, slot: int) -> None:
        """One stream slot: conversation after conversation until the deadline."""
        await asyncio.sleep(slot * self.args.arrival_gap)
        k = 0
        while time.monotonic() < self.deadline:
            # 3-6 utterances (about 20-45 s), each slot and round starting elsewhere
            count = 3 + (slot + k) % 4
            conv = self.conversation(slot * 3 + k * 5, count)
            record = Conversation(slot, round(self.now(), 2), count, round(len(conv.audio) / SAMPLE_RATE, 1))
            opened = time.monotonic()
            try:
                trace = await ev.stream(
                    self.server.url,
                    conv.audio,
                    {"language": self.args.language},
                    timeout=len(conv.audio) / SAMPLE_RATE + 120,
                )
            except Exception as exc:  # a failed connection is a finding, not the end of the soak
                record.ready, record.error = False, f"{type(exc).__name__}: {exc}"
                self.conversations.append(record)
                await asyncio.sleep(5.0)
                continue
            self.conversations.append(record)
            if not trace.status("SERVER_READY"):
                record.ready, record.error = False, json.dumps(trace.messages[:1])
                await asyncio.sleep(5.0)  # answered WAIT: try again a little later
                continue
            stream_t0 = opened - self.t0 + trace.ready_after
            record.latencies = [None if v is None else round(v, 3) for v in ev.final_latencies(conv, trace)]
            record.speech_ends = [round(stream_t0 + e, 2) for e in conv.speech_ends]
            record.wer = round(ev.wer(conv.reference, trace.transcript), 4)
            record.utterance_wers = [
                round(ev.wer(utt.reference, utterance_text(trace, start, end)), 3)
                for utt, start, end in zip(conv.utterances, conv.starts, conv.ends, strict=True)
            ]
            k += 1
            await asyncio.sleep(self.args.churn_pause)

    async def uploader(self, files: list[tuple[Path, str, float]]) -> None:
        """A REST upload every ``--upload-every`` seconds (one at a time), alternating files."""
        http_url = f"http://127.0.0.1:{self.server.http_port}"
        i = 0
        await asyncio.sleep(min(self.args.upload_every, 10.0))
        while time.monotonic() < self.deadline:
            path, reference, seconds = files[i % len(files)]
            record = Upload(round(self.now(), 2), path.name, round(seconds, 1))
            started = time.monotonic()
            try:
                transcript, _ = await rest.transcribe_file(
                    http_url, path, language=self.args.language, timeout=600
                )
                record.seconds = round(time.monotonic() - started, 2)
                record.wer = round(ev.wer(reference, transcript.text), 4)
            except Exception as exc:
                record.error = f"{type(exc).__name__}: {exc}"
            self.uploads.append(record)
            i += 1
            await asyncio.sleep(max(0.0, self.args.upload_every - (time.monotonic() - started)))

    async def sampler(self, stop: asyncio.Event) -> None:
        while True:
            self.samples.append(await asyncio.to_thread(self.sample))
            try:
                await asyncio.wait_for(stop.wait(), self.args.sample_every)
                return
            except TimeoutError:
                pass

    def sample(self) -> Sample:
        try:
            status = self.server.status()
        except OSError:
            status = {}
        return Sample(
            t=round(self.now(), 1),
            rss_mb=round(self.server.rss_mb(), 1),
            rss_anon_mb=round(proc_status_kb(self.server.proc.pid, "RssAnon:") / 1024, 1),
            fds=len(os.listdir(f"/proc/{self.server.proc.pid}/fd")),
            threads=int(proc_status_kb(self.server.proc.pid, "Threads:")),
            cpu_seconds=round(self.server.cpu_seconds(), 1),
            load_1min=round(os.getloadavg()[0], 2),
            asyncio_tasks=status.get("asyncio_tasks"),
            active_streams=status.get("active_streams"),
        )

    async def run(self) -> None:
        files = upload_files(self.utterances, Path(self.args.workdir))
        idle = self.sample_idle()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + self.args.minutes * 60
        stop = asyncio.Event()
        sampler = asyncio.create_task(self.sampler(stop))
        await asyncio.gather(
            *(self.slot(i) for i in range(self.args.streams)),
            *([self.uploader(files)] if self.args.upload_every > 0 else []),
        )
        stop.set()
        await sampler
        self.idle_before = idle
        self.idle_after = await self.settle(idle)

    def sample_idle(self) -> Sample:
        self.t0 = time.monotonic()
        return self.sample()

    async def settle(self, idle: Sample) -> Sample:
        """Once every client has gone: give the server a few seconds to close what it holds."""
        after = self.sample()
        for _ in range(20):
            if after.fds <= idle.fds and (after.asyncio_tasks or 0) <= (idle.asyncio_tasks or 0):
                break
            await asyncio.sleep(1.0)
            after = self.sample()
        return after


def proc_status_kb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return float(line.split()[1])
    return 0.0


def utterance_text(trace: ev.StreamTrace, start: float, end: float) -> str:
    """The completed text of the segments that lie mostly inside [start, end + 0.5)."""
    return " ".join(
        s["text"]
        for s in trace.completed
        if (float(s["start"]) + float(s["end"])) / 2 >= start - 0.5
        and (float(s["start"]) + float(s["end"])) / 2 < end + 0.5
    )


def upload_files(utterances: list[ev.Utterance], folder: Path) -> list[tuple[Path, str, float]]:
    """A short clip as recorded, and a WAV of many utterances (longer than one 30 s window,
    so the server cuts it into pieces with Silero): (path, reference, seconds)."""
    short = utterances[1]
    folder.mkdir(parents=True, exist_ok=True)
    long_conv = ev.conversation(utterances[5:14], gap=1.0)
    long_path = folder / "soak_upload_long.wav"
    with wave.open(str(long_path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(ev.to_pcm(long_conv.audio))
    return [
        (short.path, short.reference, len(decode_audio(str(short.path))) / SAMPLE_RATE),
        (long_path, long_conv.reference, len(long_conv.audio) / SAMPLE_RATE),
    ]


def finals_in(conversations: list[Conversation], lo: float, hi: float) -> list[tuple[float | None, float]]:
    """(latency or None, utterance WER) of every utterance whose speech ended in [lo, hi)."""
    return [
        (lat, w)
        for c in conversations
        for lat, end, w in zip(c.latencies, c.speech_ends, c.utterance_wers, strict=True)
        if lo <= end < hi
    ]


def window_median(samples: list[Sample], lo: float, hi: float, key: str = "rss_mb") -> float | None:
    values = [getattr(s, key) for s in samples if lo <= s.t < hi]
    return round(statistics.median(values), 1) if values else None


def summarize(
    conversations: list[Conversation],
    uploads: list[Upload],
    samples: list[Sample],
    run_seconds: float,
    rss_window: float,
) -> dict:
    """Thirds of the run and the acceptance figures."""
    served = [c for c in conversations if c.ready]
    thirds = []
    for k in range(3):
        lo, hi = run_seconds * k / 3, run_seconds * (k + 1) / 3
        finals = finals_in(served, lo, hi if k < 2 else float("inf"))
        latencies = [lat for lat, _ in finals if lat is not None]
        in_third = [c for c in served if lo <= c.started < hi]
        ups = [u for u in uploads if lo <= u.started < hi]
        last = [s for s in samples if lo <= s.t < hi]
        thirds.append(
            {
                "from_s": round(lo),
                "to_s": round(hi),
                "utterances": len(finals),
                "missing_finals": sum(lat is None for lat, _ in finals),
                "garbled_finals": sum(lat is not None and w >= 0.5 for lat, w in finals),
                "final_p50": pct(latencies, 50),
                "final_p90": pct(latencies, 90),
                "wer_mean": round(float(np.mean([c.wer for c in in_third])), 4) if in_third else None,
                "conversations": len(in_third),
                "uploads": len(ups),
                "upload_errors": sum(u.error is not None for u in ups),
                "rss_mb_median": window_median(samples, lo, hi),
                "rss_mb_end": last[-1].rss_mb if last else None,
                "fds_max": max((s.fds for s in last), default=None),
                "asyncio_tasks_max": max((s.asyncio_tasks or 0 for s in last), default=None),
                "load_1min_mean": round(float(np.mean([s.load_1min for s in last])), 2) if last else None,
                "server_cpu_percent_of_one_core": round(
                    100 * (last[-1].cpu_seconds - last[0].cpu_seconds) / max(last[-1].t - last[0].t, 1e-9), 1
                )
                if len(last) > 1
                else None,
            }
        )
    all_finals = finals_in(served, 0, float("inf"))
    window_start = max(0.0, run_seconds - rss_window)
    rss_start = window_median(samples, window_start, window_start + 60)
    rss_end = window_median(samples, run_seconds - 60, run_seconds + 1)
    rss_max = max((s.rss_mb for s in samples if s.t >= window_start), default=None)
    # growth: the least-squares line through the window's samples, end against start, so
    # that neither one noisy sample nor the choice of end points decides
    window = [(s.t, s.rss_mb) for s in samples if s.t >= window_start]
    growth = None
    if len(window) >= 3:
        slope, intercept = np.polyfit(*np.array(window).T, 1)
        fitted_start = slope * window_start + intercept
        growth = round(float(slope * (run_seconds - window_start) / fitted_start), 4)
    first, last = thirds[0]["final_p90"], thirds[2]["final_p90"]
    lost = sum(lat is None or w >= 0.5 for lat, w in all_finals)
    return {
        "thirds": thirds,
        "totals": {
            "conversations": len(served),
            "refused_or_failed": len(conversations) - len(served),
            "utterances": len(all_finals),
            "lost_finals": lost,
            "final_p50": pct([lat for lat, _ in all_finals], 50),
            "final_p90": pct([lat for lat, _ in all_finals], 90),
            "wer_mean": round(float(np.mean([c.wer for c in served])), 4) if served else None,
            "uploads": len(uploads),
            "upload_errors": sum(u.error is not None for u in uploads),
            "upload_wer_mean": round(float(np.mean([u.wer for u in uploads if u.wer is not None])), 4)
            if any(u.wer is not None for u in uploads)
            else None,
        },
        "criteria": {
            "lost_finals": lost,
            "lost_finals_ok": lost == 0,
            "final_p90_first_third": first,
            "final_p90_last_third": last,
            "final_p90_ratio": round(last / first, 3) if first and last else None,
            "final_p90_ok": bool(first and last and last <= 1.10 * first),
            "rss_window_minutes": round((run_seconds - window_start) / 60, 1),
            "rss_mb_window_start": rss_start,
            "rss_mb_window_end": rss_end,
            "rss_mb_window_max": rss_max,
            "rss_mb_per_minute": round(float(slope) * 60, 2) if growth is not None else None,
            "rss_growth": growth,
            "rss_growth_ok": growth is not None and growth < 0.05,
        },
    }


def print_report(summary: dict, before: Sample, after: Sample, log_problems: int) -> None:
    print(
        f"\n{'third':>5} {'utts':>5} {'lost':>5} {'p50':>6} {'p90':>6} {'WER':>7} {'RSS MB':>7} "
        f"{'fds':>4} {'tasks':>5} {'CPU %':>6} {'load':>5} {'uploads':>7}"
    )
    for k, t in enumerate(summary["thirds"]):
        print(
            f"{k + 1:>5} {t['utterances']:>5} {t['missing_finals'] + t['garbled_finals']:>5} {t['final_p50']!s:>6} "
            f"{t['final_p90']!s:>6} {t['wer_mean']!s:>7} {t['rss_mb_median']!s:>7} {t['fds_max']!s:>4} "
            f"{t['asyncio_tasks_max']!s:>5} {t['server_cpu_percent_of_one_core']!s:>6} {t['load_1min_mean']!s:>5} "
            f"{t['uploads']:>4}/{t['upload_errors']}err"
        )
    print("totals:", json.dumps(summary["totals"]))
    print("criteria:", json.dumps(summary["criteria"]))
    print(
        f"idle server before/after: fds {before.fds}/{after.fds}, asyncio tasks "
        f"{before.asyncio_tasks}/{after.asyncio_tasks}, threads {before.threads}/{after.threads}, "
        f"RSS {before.rss_mb}/{after.rss_mb} MB; server log lines with ERROR or Traceback: {log_problems}"
    )


def main() -> None:
    ev.use_benchmark_audio()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=8, help="concurrent stream slots")
    parser.add_argument("--minutes", type=float, default=10.0, help="no conversation starts after this")
    parser.add_argument(
        "--upload-every", type=float, default=30.0, help="seconds between REST uploads (0: none)"
    )
    parser.add_argument(
        "--churn-pause", type=float, default=1.0, help="seconds between a slot's conversations"
    )
    parser.add_argument(
        "--arrival-gap", type=float, default=0.37, help="seconds between the slots' first connects"
    )
    parser.add_argument("--gap", type=float, default=1.5, help="seconds of silence between utterances")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between server samples")
    parser.add_argument(
        "--rss-window", type=float, default=20.0, help="minutes at the end for the RSS criterion"
    )
    parser.add_argument("--set", default="librispeech_dev_clean")
    parser.add_argument("--language", default="en")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="server environment")
    parser.add_argument("--json", help="write the report here")
    parser.add_argument(
        "--workdir", default=tempfile.gettempdir(), help="where the long upload file is written"
    )
    parser.add_argument("server_arg", nargs="*", help="extra server flags after --")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    server_args = ["--model", args.model, "--compute-type", args.compute_type, *args.server_arg]
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    log_path = Path(args.workdir) / f"soak_server_{os.getpid()}.log"
    print(
        f"soak: {args.streams} streams for {args.minutes:g} min, server {server_args} env {env}", flush=True
    )
    server = ServerProcess(server_args, env=env, log=log_path)
    soak = Soak(args, server)
    try:
        asyncio.run(soak.run())
        # the deadline only stops new conversations: the run lasts until the last one ends
        run_seconds = args.minutes * 60
        rss_peak = server.rss_mb(peak=True)
    finally:
        server.stop()
    log_text = log_path.read_text(errors="replace")
    log_problems = sum(("ERROR" in line or "Traceback" in line) for line in log_text.splitlines())
    summary = summarize(soak.conversations, soak.uploads, soak.samples, run_seconds, args.rss_window * 60)
    print_report(summary, soak.idle_before, soak.idle_after, log_problems)
    if args.json:
        report = {
            **report_header(),
            "server_args": server_args,
            "server_env": env,
            "streams": args.streams,
            "minutes": args.minutes,
            "rss_peak_mb": round(rss_peak, 1),
            "idle_before": asdict(soak.idle_before),
            "idle_after": asdict(soak.idle_after),
            "server_log_errors": log_problems,
            "server_log_tail": log_text.splitlines()[-20:],
            **summary,
            "timeline": [asdict(s) for s in soak.samples],
            "uploads": [asdict(u) for u in soak.uploads],
            "conversations": [asdict(c) for c in soak.conversations],
        }
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
