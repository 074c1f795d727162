"""Whole-file transcription over the shared pool: what every REST face runs for an upload.

A long upload is cut at VAD boundaries into pieces of at most 30 s, Whisper's own
window, and the pieces go through ``pool.decode`` one at a time at ``Priority.UPLOAD``. A
live stream's final therefore never waits behind more than one piece, and since each
upload has at most one piece queued, concurrent uploads take turns (the scheduler is
first come, first served within a priority). A file of one window is one plain
faster-whisper call, so short requests cost exactly what faster-whisper costs.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ..core.decodes import DecodeOptions, DecodeResult, Segment, Word
from ..core.pcm import SAMPLE_RATE
from ..errors import ClientGone, ShuttingDown
from .pool import LoadedModel, ModelPool
from .scheduler import Priority

PIECE_SECONDS = 30.0
# With batch_size > 1 faster-whisper batches 30 s windows itself; a piece must hold
# several windows for that to help, but stay short enough to let streams in between.
BATCHED_PIECE_SECONDS = 120.0
# Whisper's timestamp unit: ``seek`` counts 10 ms mel frames.
FRAMES_PER_SECOND = 100
# What one piece passes to the next as its prompt. Sequential decodes carry the piece's own
# tokens, timestamps included, as faster-whisper's seek loop does from window to window (it
# keeps the last max_length // 2 - 1 = 223): carried as text, the next piece often came
# back as one 20-30 s segment without a timestamp inside (63 of the 65 diarization mixes'
# 610 upload segments were over 12 s; a shorter text prompt, 100 characters, did the same).
# The batched pipeline takes only text, its last CARRIED_PROMPT_CHARS.
CARRIED_PROMPT_TOKENS = 223
CARRIED_PROMPT_CHARS = 400
# A piece decoded only at a temperature above this passes nothing on: its text is a guess
# (faster-whisper's ``prompt_reset_on_temperature``).
PROMPT_RESET_TEMPERATURE = 0.5


def plan_pieces(audio: np.ndarray, limit: float = PIECE_SECONDS) -> list[tuple[int, int]]:
    """Sample ranges to decode: the whole file if it fits one window, else VAD-cut pieces.

    Pieces hold whole speech regions (Silero, padded) greedily merged up to ``limit``
    seconds; silence between pieces is skipped, as faster-whisper's ``vad_filter`` does.
    """
    limit_samples = int(limit * SAMPLE_RATE)
    if len(audio) <= limit_samples:
        return [(0, len(audio))]
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    regions = get_speech_timestamps(
        audio,
        VadOptions(min_silence_duration_ms=300, speech_pad_ms=300, max_speech_duration_s=max(limit - 1, 1)),
    )
    pieces: list[tuple[int, int]] = []
    for region in regions:
        start, end = int(region["start"]), min(int(region["end"]), len(audio))
        if pieces and end - pieces[-1][0] <= limit_samples:
            pieces[-1] = (pieces[-1][0], end)
        else:
            pieces.append((start, end))
    return pieces


def _place(segment: Segment, start: float, end: float, previous_start: float) -> Segment:
    """Move a piece's segment to file time and keep its timestamps inside the piece.

    Whisper may put a last timestamp past the audio it was given; clamping keeps words
    monotonic across piece boundaries and inside the file.
    """
    placed = segment.shifted(start)
    placed.seek = segment.seek + int(round(start * FRAMES_PER_SECOND))
    placed.start = min(max(placed.start, start), end)
    placed.end = min(max(placed.end, placed.start), end)
    if placed.words is not None:
        words = []
        for word in placed.words:
            w_start = min(max(word.start, previous_start, start), end)
            w_end = min(max(word.end, w_start), end)
            words.append(Word(w_start, w_end, word.word, word.probability))
            previous_start = w_start
        placed.words = words
    return placed


# ----------------------------------------------------------------------------- jobs


@dataclass
class UploadJob:
    """One upload in progress, as /status shows it."""

    id: str
    model: str
    task: str
    duration: float
    pieces: int = 0
    pieces_done: int = 0
    created: float = field(default_factory=time.time)
    started: float | None = None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "model": self.model,
            "task": self.task,
            "duration": round(self.duration, 3),
            "pieces": self.pieces,
            "pieces_done": self.pieces_done,
            "state": "running" if self.started is not None else "queued",
            "age": round(time.time() - self.created, 3),
        }


class UploadJobs:
    """The uploads being transcribed, and a flag that refuses new work at shutdown."""

    def __init__(self, on_audio: Callable[[float], object] | None = None):
        self.jobs: dict[str, UploadJob] = {}
        self.shutting_down = False
        self._ids = itertools.count(1)
        self.on_audio = on_audio  # called with the seconds of audio of every piece decoded

    def processed(self, seconds: float) -> None:
        if self.on_audio is not None:
            self.on_audio(seconds)

    def open(self, model: str, task: str, duration: float) -> UploadJob:
        self.check()
        job = UploadJob(f"batch-{next(self._ids)}", model, task, duration)
        self.jobs[job.id] = job
        return job

    def close(self, job: UploadJob) -> None:
        self.jobs.pop(job.id, None)

    def check(self) -> None:
        if self.shutting_down:
            raise ShuttingDown("the server is shutting down")

    def status(self) -> dict:
        jobs = [job.as_dict() for job in self.jobs.values()]
        return {"jobs": len(jobs), "running": sum(j["state"] == "running" for j in jobs), "active": jobs}


async def transcribe(
    pool: ModelPool,
    loaded: LoadedModel,
    audio: np.ndarray,
    options: DecodeOptions,
    job: UploadJob,
    queue: UploadJobs,
    on_segment: Callable[[Segment], object] | None = None,
    client_gone: Callable[[], bool] = lambda: False,
) -> DecodeResult:
    """Decode ``audio`` piece by piece at batch priority; timestamps in file time.

    The language detected in the first piece with speech is kept for the rest, so a file
    is one language throughout (and later pieces skip detection). Unless the caller gave
    a prompt, each piece is prompted with the previous piece's tokens (``carried_prompt``), as
    Whisper conditions one window on the last when ``condition_on_previous_text`` is on. A client that hung
    up stops the work at the next piece instead of holding a worker for nobody.
    """
    # The batched pipeline merges VAD chunks up to ``chunk_length`` itself; otherwise the
    # pieces are those chunks.
    limit = BATCHED_PIECE_SECONDS if options.batch_size > 1 else options.chunk_length or PIECE_SECONDS
    if len(audio) > limit * SAMPLE_RATE:
        queue.check()
        pieces = await pool.scheduler.run(lambda: plan_pieces(audio, limit), Priority.UPLOAD)
    else:
        pieces = [(0, len(audio))]
    job.pieces = len(pieces)
    segments: list[Segment] = []
    language, probability = options.language, 1.0 if options.language else 0.0
    prompt, previous = options.initial_prompt, ()
    word_end = 0.0
    for first, last in pieces:
        queue.check()
        if client_gone():
            raise ClientGone("the client closed the connection")
        piece_options = replace(
            options, language=language, initial_prompt=prompt, previous_tokens=previous, cover_speech=True
        )
        job.started = job.started or time.time()
        result = await pool.decode(loaded, audio[first:last], piece_options, Priority.UPLOAD)
        if previous and _temperature(result) > 0:
            # The carried prompt can lead a piece astray (a phrase repeated at temperature
            # 0.4 in place of 7 s of speech): decoded again without it, the calmer decode kept.
            fresh = await pool.decode(
                loaded, audio[first:last], replace(piece_options, previous_tokens=()), Priority.UPLOAD
            )
            if _temperature(fresh) < _temperature(result):
                result = fresh
        job.pieces_done += 1
        queue.processed((last - first) / SAMPLE_RATE)
        for segment in result.segments:
            placed = _place(segment, first / SAMPLE_RATE, last / SAMPLE_RATE, word_end)
            placed.id = len(segments)
            if placed.words:
                word_end = placed.words[-1].start
            segments.append(placed)
            if on_segment is not None:
                on_segment(placed)
        if language is None and result.text:
            language, probability = result.language, result.language_probability
        if not options.initial_prompt and options.condition_on_previous_text and result.text:
            prompt, previous = carried_prompt(result, batched=options.batch_size > 1)
        if len(pieces) == 1:
            language, probability = result.language, result.language_probability
    return DecodeResult(segments, language or "en", probability, len(audio) / SAMPLE_RATE)


def _temperature(result: DecodeResult) -> float:
    """The highest temperature a decode's segments needed (0: none fell back)."""
    return max((s.temperature for s in result.segments), default=0.0)


def carried_prompt(result: DecodeResult, batched: bool = False) -> tuple[str | None, tuple[int, ...]]:
    """What a piece's decode passes to the next piece: ``(initial_prompt, previous_tokens)``.

    Whisper was trained with the previous window's tokens, timestamps and all, before
    ``<|startoftranscript|>``; given only words there, it tends to answer in words only,
    and a 26 s piece comes back as one segment spanning every pause in it. So the tokens
    are carried as they were decoded; the batched pipeline, which takes text only, gets
    the text. Nothing is carried after a decode that needed a high temperature.
    """
    if any(s.temperature > PROMPT_RESET_TEMPERATURE for s in result.segments):
        return None, ()
    if batched:
        return result.text[-CARRIED_PROMPT_CHARS:], ()
    tokens = [t for segment in result.segments for t in segment.tokens]
    return None, tuple(tokens[-CARRIED_PROMPT_TOKENS:])
