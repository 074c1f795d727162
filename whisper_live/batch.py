"""Whole-file (batch) transcription over the shared pool, independent of HTTP.

A long upload is cut at VAD boundaries into pieces of at most 30 s, Whisper's own
window, and the pieces go through ``pool.decode`` one at a time at ``Priority.BATCH``. A
live stream's final therefore never waits behind more than one piece, and since each
upload has at most one piece queued, concurrent uploads take turns (the scheduler is
first come, first served within a priority). A file of one window is one plain
faster-whisper call, so short requests cost exactly what faster-whisper costs.
"""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .audio import SAMPLE_RATE, decode_audio
from .decoding import DecodeOptions, DecodeResult, Segment, Word
from .pool import LoadedModel, ModelPool, Priority

PIECE_SECONDS = 30.0
# With batch_size > 1 faster-whisper batches 30 s windows itself; a piece must hold
# several windows for that to help, but stay short enough to let streams in between.
BATCHED_PIECE_SECONDS = 120.0
# Whisper's timestamp unit: ``seek`` counts 10 ms mel frames.
FRAMES_PER_SECOND = 100
# The prompt carried from one piece to the next (faster-whisper keeps only ~223 tokens).
CARRIED_PROMPT_CHARS = 400

RAW_DTYPES = {"int16": "<i2", "int32": "<i4", "float32": "<f4", "float64": "<f8"}
AUDIO_FORMATS = ("auto", "file", "numpy", "pcm")


class BatchError(Exception):
    """A failure the client should see, with OpenAI's error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",  # noqa: A002 - OpenAI's field name
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type


# ----------------------------------------------------------------------------- audio in


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono float32 at ``rate`` → 16 kHz with PyAV's (filtered) resampler, as for files."""
    if rate == SAMPLE_RATE or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    import av

    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32)[None, :], format="flt", layout="mono"
    )
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    blocks = [out.to_ndarray().reshape(-1) for out in [*resampler.resample(frame), *resampler.resample(None)]]
    return np.concatenate(blocks).astype(np.float32, copy=False) if blocks else np.zeros(0, np.float32)


def _to_float_mono(array: np.ndarray) -> np.ndarray:
    """Any numeric array (samples × channels either way round) → mono float32 in ±1."""
    if array.ndim not in (1, 2):
        raise ValueError(f"audio array must be 1-D or 2-D, not {array.ndim}-D")
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        scale = float(max(abs(info.min), info.max))
        offset = 0.0 if array.dtype.kind == "i" else (info.max + 1) / 2
        array = (array.astype(np.float64) - offset) / scale
    elif array.dtype.kind != "f":
        raise ValueError(f"audio array must be numeric, not {array.dtype}")
    if array.ndim == 2:
        # The channel axis is the short one: (n, 2) and (2, n) are both stereo.
        array = array.mean(axis=int(np.argmin(array.shape)))
    samples = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(samples, -1.0, 1.0)


def load_audio(
    data: bytes,
    *,
    filename: str = "",
    audio_format: str = "auto",
    sample_rate: int = SAMPLE_RATE,
    dtype: str = "int16",
) -> np.ndarray:
    """Bytes of an upload → 16 kHz mono float32; blocking (PyAV), so run it in a thread.

    ``auto`` recognises NumPy files by their magic bytes and hands everything else to
    PyAV, which finds the container and codec itself. Raw inputs (``pcm``, ``numpy``)
    carry no rate, so ``sample_rate`` says what it is. Raises BatchError(400).
    """
    if audio_format not in AUDIO_FORMATS:
        raise BatchError(400, f"audio_format must be one of {', '.join(AUDIO_FORMATS)}", param="audio_format")
    if audio_format == "auto":
        is_npy = data[:6] == b"\x93NUMPY" or filename.lower().endswith(".npy")
        audio_format = "numpy" if is_npy else "file"
    if not 1000 <= sample_rate <= 384_000:
        raise BatchError(400, "sample_rate must be between 1000 and 384000", param="sample_rate")
    try:
        if audio_format == "file":
            return decode_audio(io.BytesIO(data))
        if audio_format == "numpy":
            array = np.load(io.BytesIO(data), allow_pickle=False)
        else:
            if dtype not in RAW_DTYPES:
                raise BatchError(400, f"dtype must be one of {', '.join(RAW_DTYPES)}", param="dtype")
            width = np.dtype(RAW_DTYPES[dtype]).itemsize
            array = np.frombuffer(data[: len(data) - len(data) % width], dtype=RAW_DTYPES[dtype])
        return resample(_to_float_mono(np.asarray(array)), sample_rate)
    except BatchError:
        raise
    except (ValueError, EOFError, OSError, TypeError) as exc:
        raise BatchError(400, f"could not decode audio ({audio_format}): {exc}", param="file") from exc


# ----------------------------------------------------------------------------- pieces


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
        audio, VadOptions(min_silence_duration_ms=300, speech_pad_ms=300, max_speech_duration_s=limit - 1)
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
class BatchJob:
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


class BatchQueue:
    """The uploads being transcribed, and a flag that refuses new work at shutdown."""

    def __init__(self):
        self.jobs: dict[str, BatchJob] = {}
        self.shutting_down = False
        self._ids = itertools.count(1)

    def open(self, model: str, task: str, duration: float) -> BatchJob:
        self.check()
        job = BatchJob(f"batch-{next(self._ids)}", model, task, duration)
        self.jobs[job.id] = job
        return job

    def close(self, job: BatchJob) -> None:
        self.jobs.pop(job.id, None)

    def check(self) -> None:
        if self.shutting_down:
            raise BatchError(503, "the server is shutting down", code="shutting_down", type="server_error")

    def status(self) -> dict:
        jobs = [job.as_dict() for job in self.jobs.values()]
        return {"jobs": len(jobs), "running": sum(j["state"] == "running" for j in jobs), "active": jobs}


async def transcribe(
    pool: ModelPool,
    loaded: LoadedModel,
    audio: np.ndarray,
    options: DecodeOptions,
    job: BatchJob,
    queue: BatchQueue,
    on_segment: Callable[[Segment], object] | None = None,
    client_gone: Callable[[], bool] = lambda: False,
) -> DecodeResult:
    """Decode ``audio`` piece by piece at batch priority; timestamps in file time.

    The language detected in the first piece with speech is kept for the rest, so a file
    is one language throughout (and later pieces skip detection). Unless the caller gave
    a prompt, each piece is prompted with the previous piece's text, as Whisper conditions
    one window on the last when ``condition_on_previous_text`` is on. A client that hung
    up stops the work at the next piece instead of holding a worker for nobody.
    """
    limit = BATCHED_PIECE_SECONDS if options.batch_size > 1 else PIECE_SECONDS
    if len(audio) > limit * SAMPLE_RATE:
        queue.check()
        pieces = await pool.scheduler.run(lambda: plan_pieces(audio, limit), Priority.BATCH)
    else:
        pieces = [(0, len(audio))]
    job.pieces = len(pieces)
    segments: list[Segment] = []
    language, probability = options.language, 1.0 if options.language else 0.0
    prompt = options.initial_prompt
    word_end = 0.0
    for first, last in pieces:
        queue.check()
        if client_gone():
            raise BatchError(499, "the client closed the connection", code="client_closed_request")
        piece_options = replace(options, language=language, initial_prompt=prompt)
        job.started = job.started or time.time()
        result = await pool.decode(loaded, audio[first:last], piece_options, Priority.BATCH)
        job.pieces_done += 1
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
            prompt = result.text[-CARRIED_PROMPT_CHARS:]
        if len(pieces) == 1:
            language, probability = result.language, result.language_probability
    return DecodeResult(segments, language or "en", probability, len(audio) / SAMPLE_RATE)
