"""Tools to measure a running server with real recordings: used by the tests and scripts/.

A "conversation" is several recorded utterances with silence between them, so the true
end of each utterance is known and the latency of its final text can be measured from it.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import sys
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.media import decode_audio

# The recordings the suite uses travel with the code (tests/audio, with their manifests,
# sources and licences). Benchmarks may use a wider set: ../shared/audio beside the checkout
# when present. WHISPER_LIVE_AUDIO points both elsewhere.
REPO_AUDIO = Path(__file__).resolve().parents[2] / "tests" / "audio"
SHARED_AUDIO = Path(__file__).resolve().parents[3] / "shared" / "audio"
_benchmark_root: Path | None = None


@dataclass
class Utterance:
    id: str
    path: Path
    reference: str
    language: str


@dataclass
class Conversation:
    audio: np.ndarray
    utterances: list[Utterance]
    ends: list[float]  # seconds into the stream where each utterance's audio ends
    starts: list[float]

    @property
    def reference(self) -> str:
        return " ".join(u.reference for u in self.utterances)

    @cached_property
    def speech_ends(self) -> list[float]:
        """Where each utterance's speech ends (Silero, no padding): recordings carry up to
        ~1 s of silence after the last word, and a speaker waits from the last word."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        out = []
        for start, end in zip(self.starts, self.ends, strict=True):
            clip = self.audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
            spans = get_speech_timestamps(clip, VadOptions(speech_pad_ms=0, min_silence_duration_ms=100))
            out.append(start + spans[-1]["end"] / SAMPLE_RATE if spans else end)
        return out


def audio_root() -> Path:
    """Where recordings are read from: ``WHISPER_LIVE_AUDIO`` when set, else the repository's
    own ``tests/audio`` (a fresh clone has everything the suite needs), or the wider set a
    benchmark chose with ``use_benchmark_audio``."""
    if os.environ.get("WHISPER_LIVE_AUDIO"):
        return Path(os.environ["WHISPER_LIVE_AUDIO"])
    return _benchmark_root or REPO_AUDIO


def use_benchmark_audio() -> Path:
    """For benchmarks: the wider ``../shared/audio`` when it sits beside the checkout (more
    sets and files than the suite keeps), else the repository's recordings, saying so on
    stderr (results then come from fewer clips and are not comparable with published ones)."""
    global _benchmark_root
    if not os.environ.get("WHISPER_LIVE_AUDIO"):
        if (SHARED_AUDIO / "README.md").exists():
            _benchmark_root = SHARED_AUDIO
        else:
            print(
                f"note: {SHARED_AUDIO} is missing: benchmarking with the repository's recordings "
                f"({REPO_AUDIO}), a smaller set; set WHISPER_LIVE_AUDIO to use another",
                file=sys.stderr,
            )
    return audio_root()


def manifest(name: str) -> list[Utterance]:
    folder = audio_root() / name
    if not (folder / "manifest.tsv").exists():
        raise FileNotFoundError(
            f"no recordings set {name!r} under {audio_root()} (tests/audio keeps only the sets the "
            "suite uses; point WHISPER_LIVE_AUDIO at the full set for the others)"
        )
    with open(folder / "manifest.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [Utterance(r["id"], folder / r["file"], r["reference_transcript"], r["language"]) for r in rows]


def conversation(utterances: list[Utterance], gap: float = 1.5, lead: float = 1.0) -> Conversation:
    gap_samples = np.zeros(int(gap * SAMPLE_RATE), np.float32)
    parts = [np.zeros(int(lead * SAMPLE_RATE), np.float32)]
    position = len(parts[0])
    starts, ends = [], []
    for utt in utterances:
        clip = decode_audio(str(utt.path))
        starts.append(position / SAMPLE_RATE)
        position += len(clip)
        ends.append(position / SAMPLE_RATE)
        parts += [clip, gap_samples]
        position += len(gap_samples)
    return Conversation(np.concatenate(parts), utterances, ends, starts)


_normalizer = None


def normalize(text: str) -> str:
    """Whisper's English normaliser when installed, else lower case without punctuation."""
    global _normalizer
    if _normalizer is None:
        try:
            from whisper_normalizer.english import EnglishTextNormalizer

            _normalizer = EnglishTextNormalizer()
        except ImportError:
            _normalizer = lambda s: re.sub(r"[^\w' ]+", " ", s.lower())  # noqa: E731
    return " ".join(_normalizer(text).split())


def wer(reference: str, hypothesis: str) -> float:
    import jiwer

    ref, hyp = normalize(reference), normalize(hypothesis)
    return jiwer.wer(ref, hyp) if ref else float(bool(hyp))


@dataclass
class StreamTrace:
    """What a client saw: every message with the stream time that had been sent when it came."""

    messages: list[dict] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # seconds since the stream started
    completed: list[dict] = field(default_factory=list)
    completed_at: list[float] = field(default_factory=list)
    first_seen: list[tuple[float, str]] = field(default_factory=list)  # (arrival, text) of any change
    ready_after: float = 0.0
    close_code: int | None = None

    @property
    def transcript(self) -> str:
        return "".join(s["text"] for s in self.completed).strip()

    def status(self, name: str) -> dict | None:
        return next((m for m in self.messages if m.get("status") == name or m.get("message") == name), None)


def to_pcm(samples: np.ndarray, sample_format: str = "int16") -> bytes:
    if sample_format == "float32":
        return samples.astype("<f4").tobytes()
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """Float samples at 16 kHz as a 16-bit mono WAV file, for uploads and players."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(to_pcm(samples))
    return path


# Audio per WebSocket message: our browser page and Python client send 100 ms;
# WhisperLive's own client sends 4096 samples (256 ms).
FRAME_100MS = SAMPLE_RATE // 10
FRAME_WHISPERLIVE = 4096


def parse_frame(text: str) -> int:
    """A frame size as samples: ``4096`` (samples) or ``100ms``."""
    text = text.strip().lower()
    samples = round(float(text[:-2]) * SAMPLE_RATE / 1000) if text.endswith("ms") else int(text)
    if samples <= 0:
        raise ValueError(f"frame size must be positive: {text!r}")
    return samples


async def paced(
    n_samples: int,
    frame: int,
    *,
    speed: float = 1.0,
    start: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> AsyncIterator[tuple[int, int]]:
    """Yield ``(first, end)`` sample bounds of each frame once its last sample exists.

    A live source has the audio covering [t, t+d) only at t+d after the stream started, so a
    benchmark that sent it earlier would report latencies a frame better than any real
    client gets. Each deadline is ``start + end / rate / speed`` on ``clock``, computed
    from the start rather than from the previous send, so late wake-ups never accumulate
    (a late frame goes out at once and the next keeps its own deadline). ``speed <= 0``
    sends everything at once.
    """
    start = clock() if start is None else start
    for first in range(0, n_samples, frame):
        end = min(first + frame, n_samples)
        if speed > 0:
            due = start + end / SAMPLE_RATE / speed
            # loop: a sleep may wake a hair early, and no sample may leave before it exists
            while (delay := due - clock()) > 0:
                await sleep(delay)
        yield first, end


async def stream(
    url: str,
    samples: np.ndarray,
    config: dict | None = None,
    *,
    speed: float = 1.0,
    frame: int = FRAME_100MS,
    sample_format: str = "int16",
    end_of_audio: bool = True,
    timeout: float = 120.0,
    connect: dict | None = None,
) -> StreamTrace:
    """Play ``samples`` as a live source at ``speed`` × real time, ``frame`` samples per
    message (see ``paced``), and record every message and when it arrived.

    Arrival times count from the start of the stream (the moment its first sample
    exists), so ``arrival - speech_end`` is the latency a real client sees. Completed
    segments are collected the way WhisperLive's client does (a completed segment counts
    once; later messages repeat it).

    ``connect`` goes to ``websockets.connect`` (an API key's headers or subprotocols, TLS).
    """
    import websockets

    trace = StreamTrace()
    cfg = {"uid": f"eval-{time.monotonic_ns()}", "language": "en", "task": "transcribe", "use_vad": True}
    cfg.update(config or {})
    pcm = to_pcm(samples, sample_format)
    width = 4 if sample_format == "float32" else 2
    started = time.monotonic()
    async with websockets.connect(url, max_size=2**24, **(connect or {})) as ws:
        await ws.send(json.dumps(cfg))
        first = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        trace.messages.append(first)
        trace.ready_after = time.monotonic() - started
        if first.get("message") != "SERVER_READY":
            with _suppress():
                await asyncio.wait_for(ws.recv(), 5)
            trace.close_code = ws.close_code
            return trace
        t0 = time.monotonic()

        async def sender():
            async for begin, end in paced(len(samples), frame, speed=speed, start=t0):
                await ws.send(pcm[begin * width : end * width])
            if end_of_audio:
                await ws.send(b"END_OF_AUDIO")

        send_task = asyncio.create_task(sender())
        seen_completed: set[tuple[float, str]] = set()
        last_text = None
        try:
            async with asyncio.timeout(timeout):
                async for raw in ws:
                    now = time.monotonic() - t0
                    msg = json.loads(raw)
                    trace.messages.append(msg)
                    trace.arrivals.append(now)
                    for seg in msg.get("segments", []):
                        if seg["completed"]:
                            key = (round(float(seg["start"]), 2), seg["text"])
                            if key not in seen_completed:
                                seen_completed.add(key)
                                trace.completed.append(seg)
                                trace.completed_at.append(now)
                    if msg.get("segments"):
                        text = "".join(s["text"] for s in msg["segments"])
                        if text != last_text:
                            trace.first_seen.append((now, text))
                            last_text = text
        except TimeoutError:
            pass
        finally:
            send_task.cancel()
        trace.close_code = ws.close_code
    return trace


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


def final_latencies(conv: Conversation, trace: StreamTrace) -> list[float | None]:
    """For each utterance: seconds from the end of its speech until a completed segment
    covering its last part arrived (None if it never did)."""
    out: list[float | None] = []
    for start, end, speech_end in zip(conv.starts, conv.ends, conv.speech_ends, strict=True):
        times = [
            at
            for seg, at in zip(trace.completed, trace.completed_at, strict=False)
            if float(seg["end"]) > start and float(seg["start"]) < end + 0.5
        ]
        covering = [
            at
            for seg, at in zip(trace.completed, trace.completed_at, strict=False)
            if float(seg["end"]) >= end - 1.0 and float(seg["start"]) < end + 0.5
        ]
        out.append(max(covering) - speech_end if covering else (max(times) - speech_end if times else None))
    return out
