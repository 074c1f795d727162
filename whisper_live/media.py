"""Media through PyAV: files, URLs, live streams and arrays at any rate, to 16 kHz mono float32.

The one place audio is decoded and resampled, for the REST faces (uploads), the Python
client (files, RTSP, HLS, microphones) and the benchmarks. PyAV's resampler filters, so a
rate change never aliases or drops samples.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np

from . import tensors
from .core.pcm import (  # noqa: F401  (headerless PCM: the core's, re-exported for the faces)
    COMPANDED,
    PCM_ENCODINGS,
    RAW_DTYPES,
    SAMPLE_RATE,
    PcmDecoder,
    pcm_frames,
    pcm_width,
    sniff_sample_format,
)
from .errors import InvalidAudio, InvalidRequest

AUDIO_FORMATS = ("auto", "file", "numpy", "tensor", "pcm")


def iter_decoded(
    source: str | BinaryIO, *, realtime_source: bool = False, options: dict | None = None
) -> Iterator[np.ndarray]:
    """Decode any container/codec PyAV opens (file, URL, RTSP, HLS) to 16 kHz mono float32.

    Blocks come out as the decoder produces them, so a live stream is transcribed as it
    plays; ``Resampler`` does the rate, channel and format conversion.
    """
    import av

    container = av.open(source, options=options or {}, timeout=(15.0, 15.0) if realtime_source else None)
    try:
        stream = next((s for s in container.streams if s.type == "audio"), None)
        if stream is None:
            raise ValueError("no audio stream found")
        resampler = Resampler()
        for frame in container.decode(stream):
            block = resampler.feed_frame(frame)
            if len(block):
                yield block
        tail = resampler.flush()
        if len(tail):
            yield tail
    finally:
        container.close()


def decode_audio(source: str | BinaryIO) -> np.ndarray:
    """Whole-file decode; raises ValueError for anything PyAV cannot read as audio."""
    import av

    try:
        blocks = list(iter_decoded(source))
    except (av.error.FFmpegError, StopIteration) as exc:
        raise ValueError(f"could not decode audio: {exc}") from exc
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


class Resampler:
    """The one resampling path: anything at any rate and channel layout to 16 kHz mono float32.

    Decoded frames (``feed_frame``: files, URLs) and raw arrays (``feed``: a sound card, a
    client's PCM) go through the same PyAV resampler, which filters, so a rate change never
    aliases or drops samples. It is streaming: the filter state is kept between blocks so
    block edges do not click or drift; ``flush`` returns what the filter still holds.
    ``rate``/``channels`` describe the arrays given to ``feed``.
    """

    def __init__(self, rate: int = SAMPLE_RATE, channels: int = 1):
        import av

        self.rate = int(rate)
        self.channels = int(channels)
        self._layout = {1: "mono", 2: "stereo"}.get(self.channels)
        if self._layout is None:
            raise ValueError(f"{channels} channels: only mono and stereo input are supported")
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """``samples``: float32 in [-1, 1], shape (n,) (interleaved when several channels) or
        (n, channels), at ``rate``."""
        import av

        block = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1, self.channels))
        if block.shape[0] == 0:
            return np.zeros(0, np.float32)
        # packed float: one plane with the channels interleaved
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout=self._layout)
        frame.sample_rate = self.rate
        return self.feed_frame(frame)

    def feed_frame(self, frame) -> np.ndarray:
        """A decoded ``av.AudioFrame`` in any format, layout and rate."""
        frame.pts = None  # timestamps of a demuxed stream would make the resampler pad or drop
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames) -> np.ndarray:
        blocks = [f.to_ndarray().reshape(-1).astype(np.float32, copy=False) for f in frames]
        return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def probe_duration(source: str, *, strict: bool = False) -> float | None:
    """Seconds of audio a file holds according to its container, or None when unknown (live).

    ``strict``: a file PyAV cannot open, or one without an audio stream, raises ValueError
    (else None)."""
    import av

    try:
        with av.open(source) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                if strict:
                    raise ValueError("no audio stream in this file")
                return None
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return container.duration / 1_000_000 if container.duration else None
    except (av.error.FFmpegError, OSError) as exc:
        if strict:
            raise ValueError(f"not an audio or video file ({getattr(exc, 'strerror', None) or exc})") from exc
        return None


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono float32 at ``rate`` → 16 kHz, the whole array at once."""
    if rate == SAMPLE_RATE or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    resampler = Resampler(rate)
    return np.concatenate((resampler.feed(samples), resampler.flush()))


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
    dtype: str | None = None,
) -> np.ndarray:
    """Bytes of an upload → 16 kHz mono float32; blocking (PyAV), so run it in a thread.

    ``auto`` recognises NumPy files and ``torch.save`` tensors by their magic bytes and
    hands everything else to PyAV, which finds the container and codec itself. Raw inputs
    (``pcm``, ``numpy``, ``tensor``) carry no rate, so ``sample_rate`` says what it is.
    Headerless PCM without a ``dtype`` is sniffed as int16 or float32, as streams are
    (``core.pcm.sniff_sample_format``): float32 read as int16 would be noise, transcribed as
    nothing. Tensors are read without torch and without running their pickle
    (``whisper_live.tensors``). Raises InvalidRequest or InvalidAudio.
    """
    if audio_format not in AUDIO_FORMATS:
        raise InvalidRequest(f"audio_format must be one of {', '.join(AUDIO_FORMATS)}", param="audio_format")
    if audio_format == "auto":
        if data[:6] == b"\x93NUMPY" or filename.lower().endswith(".npy"):
            audio_format = "numpy"
        elif tensors.is_tensor_file(data):
            audio_format = "tensor"
        else:
            audio_format = "file"
    if not 1000 <= sample_rate <= 384_000:
        raise InvalidRequest("sample_rate must be between 1000 and 384000", param="sample_rate")
    try:
        if audio_format == "file":
            return decode_audio(io.BytesIO(data))
        if audio_format == "numpy":
            array = np.load(io.BytesIO(data), allow_pickle=False)
        elif audio_format == "tensor":
            array = tensors.load_tensor(data, max_bytes=16 * len(data) + (1 << 20))
        else:
            dtype = dtype or sniff_sample_format(data) or "int16"
            if dtype not in RAW_DTYPES:
                raise InvalidRequest(f"dtype must be one of {', '.join(RAW_DTYPES)}", param="dtype")
            width = np.dtype(RAW_DTYPES[dtype]).itemsize
            array = np.frombuffer(data[: len(data) - len(data) % width], dtype=RAW_DTYPES[dtype])
        return resample(_to_float_mono(np.asarray(array)), sample_rate)
    except InvalidRequest:
        raise
    except (ValueError, EOFError, OSError, TypeError) as exc:
        raise InvalidAudio(f"could not decode audio ({audio_format}): {exc}", param="file") from exc


# ----------------------------------------------------------------------------- channels, PCM


class PcmIntake:
    """The one way raw PCM from a live client becomes what the streaming core reads: bytes
    cut anywhere (inside a sample, between a frame's channels), in ``encoding`` (int16,
    int32, float32, float64, mulaw, alaw; None: int16 or float32, sniffed from the first
    non-silent audio), at ``rate`` with ``channels`` interleaved, to 16 kHz mono float32.

    Every live face uses it (WhisperLive's ``audio_format``/``sample_rate``/``channels``,
    Deepgram's ``encoding``/``sample_rate``/``channels``, G.711 for the next face). The bytes
    of an incomplete frame wait in one place, the core's ``PcmDecoder``; other rates and
    stereo go through the one ``Resampler`` (filtered, PyAV's downmix, as files are decoded).
    """

    # Sound is smooth from one sample to the next (speech at 16 kHz: lag-1 correlation 0.87
    # to 0.99 on the recordings of ../shared/audio, shouted or not); bytes that are no PCM
    # of the declared encoding (random bytes, float32 read as int16, a container sent raw)
    # read as loud white noise (correlation about 0, level 0.3 to 1). Judged once, on the
    # first second that is not silence, at the client's own rate (before resampling).
    JUDGED_SECONDS = 1.0
    SMOOTH = 0.3  # lag-1 correlation under which the sound is white noise
    LOUD = 0.1  # RMS over which white noise is no microphone's hiss

    def __init__(self, encoding: str | None = None, rate: int = SAMPLE_RATE, channels: int = 1):
        self._decoder = PcmDecoder(encoding, channels)
        self._resampler = Resampler(rate, channels) if rate != SAMPLE_RATE or channels != 1 else None
        self._rate, self._channels = int(rate), int(channels)
        self._judged: list[np.ndarray] = []
        self._judged_samples = 0
        # Set once the first second of sound is judged not to be audio: what to tell the client.
        self.not_audio: str | None = None
        self._verdict_given = False

    @property
    def encoding(self) -> str | None:
        return self._decoder.sample_format

    def feed(self, data: bytes) -> np.ndarray:
        decoded = self._decoder.feed(data)
        if not self._verdict_given and len(decoded):
            self._judge(decoded[:: self._channels])
        return self._resample(decoded)

    def _judge(self, samples: np.ndarray) -> None:
        sound = samples[np.abs(samples) > 1e-3]
        if len(sound):
            self._judged.append(sound)
            self._judged_samples += len(sound)
        if self._judged_samples < self.JUDGED_SECONDS * self._rate:
            return
        self._verdict_given = True
        heard = np.concatenate(self._judged).astype(np.float64)
        self._judged = []
        level = float(np.sqrt(np.mean(heard**2)))
        smooth = float(np.corrcoef(heard[:-1], heard[1:])[0, 1]) if heard.std() > 0 else 1.0
        if level > self.LOUD and smooth < self.SMOOTH:
            self.not_audio = (
                f"these bytes do not read as {self.encoding} PCM audio at {self._rate} Hz: the first"
                f" second of sound is loud white noise (level {level:.2f}, sample-to-sample correlation"
                f" {smooth:.2f}; speech has 0.85 or more). A wrong encoding or sample format, or not"
                " audio at all: speech is unlikely to be recognised"
            )

    def flush(self) -> np.ndarray:
        """End of stream: everything the decoder and the resampler's filter still hold
        (only a trailing partial frame goes)."""
        samples = self._resample(self._decoder.flush())
        if self._resampler is not None:
            samples = np.concatenate([samples, self._resampler.flush()])
        return samples

    def _resample(self, samples: np.ndarray) -> np.ndarray:
        if self._resampler is None or not len(samples):
            return samples
        return self._resampler.feed(samples)


def decode_channels(source: str | BinaryIO) -> np.ndarray:
    """Whole-file decode keeping the channels apart: float32 (channels × samples) at 16 kHz.

    For requests that transcribe each channel on its own (call-centre recordings with one
    speaker per channel). Raises ValueError for anything PyAV cannot read as audio.
    """
    import av

    try:
        with av.open(source) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise ValueError("no audio stream found")
            resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=SAMPLE_RATE)
            blocks = []
            for frame in container.decode(stream):
                frame.pts = None
                blocks += [out.to_ndarray() for out in resampler.resample(frame)]
            blocks += [out.to_ndarray() for out in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise ValueError(f"could not decode audio: {exc}") from exc
    if not blocks:
        return np.zeros((1, 0), np.float32)
    return np.concatenate(blocks, axis=1).astype(np.float32, copy=False)


def load_channels(
    data: bytes, *, encoding: str | None = None, sample_rate: int = SAMPLE_RATE, channels: int = 1
) -> np.ndarray:
    """Bytes of an upload → float32 (channels × samples) at 16 kHz, each channel on its own.

    ``encoding`` None: a container PyAV reads (its own channel count); otherwise headerless
    PCM in that encoding with ``channels`` interleaved at ``sample_rate``. Blocking; raises
    InvalidRequest or InvalidAudio.
    """
    if not 1000 <= sample_rate <= 384_000:
        raise InvalidRequest("sample_rate must be between 1000 and 384000", param="sample_rate")
    try:
        if encoding is None:
            return decode_channels(io.BytesIO(data))
        frames = pcm_frames(data, encoding, channels)
        return np.stack([resample(np.ascontiguousarray(frames[:, c]), sample_rate) for c in range(channels)])
    except InvalidRequest:
        raise
    except (ValueError, EOFError, OSError, TypeError) as exc:
        raise InvalidAudio(f"could not decode audio: {exc}", param="file") from exc


# ----------------------------------------------------------------------------- live containers


class _QueueReader:
    """A non-seekable file for PyAV whose bytes arrive through a queue (None: end)."""

    def __init__(self, chunks: queue.Queue[bytes | None], idle: threading.Event):
        self._chunks = chunks
        self._idle = idle
        self._buffer = b""
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        while not self._buffer and not self._ended:
            if self._chunks.empty():
                self._idle.set()  # everything fed so far has been handed to the decoder
            chunk = self._chunks.get()
            if chunk is None:
                self._ended = True
            else:
                self._buffer = chunk
        size = len(self._buffer) if size is None or size < 0 else size
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class StreamDecoder:
    """Container audio that arrives in pieces (WAV, WebM or Ogg Opus as a browser's
    MediaRecorder produces them) decoded as it comes, to 16 kHz mono float32.

    PyAV blocks on its input, so it runs in its own thread reading from a queue;
    ``on_samples`` gets each decoded block and ``on_end`` the error that stopped decoding
    (None at a clean end). Both are called in the decoding thread.
    """

    # Probe little before the first packet is decoded: a live stream's container header
    # comes first, and the default (5 s of analysis) would hold the first words back;
    # bytes that are no container are refused after 64 KiB, not 1 MiB.
    OPTIONS = {"probesize": "4096", "formatprobesize": "65536", "analyzeduration": "0"}

    def __init__(
        self,
        on_samples: Callable[[np.ndarray], object],
        on_end: Callable[[BaseException | None], object],
    ):
        self._chunks: queue.Queue[bytes | None] = queue.Queue()
        self._idle = threading.Event()
        self._on_samples, self._on_end = on_samples, on_end
        self._thread = threading.Thread(target=self._run, name="stream-decoder", daemon=True)
        self._thread.start()

    def feed(self, data: bytes) -> None:
        self._idle.clear()
        self._chunks.put(bytes(data))

    def close(self) -> None:
        """End of input: the decoder flushes what it holds, then ``on_end`` is called."""
        self._idle.clear()
        self._chunks.put(None)

    @property
    def idle(self) -> bool:
        """Every byte fed so far went through the decoder (or it stopped)."""
        return self._idle.is_set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        error: BaseException | None = None
        reader = _QueueReader(self._chunks, self._idle)
        try:
            for block in iter_decoded(reader, options=self.OPTIONS):
                self._on_samples(block)
        except Exception as exc:  # whatever PyAV raised goes to the caller
            error = exc
        finally:
            self._idle.set()
            self._on_end(error)
