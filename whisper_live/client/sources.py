"""Where the client's audio comes from: files and network streams (PyAV), or the microphone.

Every source is a blocking iterator of 16 kHz mono float32 blocks, run in a thread by
``BlockPump`` so that a slow decoder, a network stream or a sound card never blocks the
event loop that talks to the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.pcm import SAMPLE_RATE, to_int16_bytes
from ..media import Resampler, iter_decoded, probe_duration
from .stream import ClientError


@dataclass
class Source:
    name: str
    open: Callable[[], Iterator[np.ndarray]]  # called in the pump's thread
    live: bool  # produced in real time: pacing it again would only add delay
    duration: float | None = None  # seconds, when known (for the progress bar)


def file_source(path: str | Path) -> Source:
    """Any file PyAV opens: any rate, channel layout or codec, resampled by PyAV.

    Checked before any connection is made, so a typo or a file without sound is one clear
    error rather than a stream opened for nothing."""
    path = str(path)
    if not Path(path).is_file():
        raise ClientError(f"{path}: no such file")
    try:
        duration = probe_duration(path, strict=True)
    except ValueError as exc:
        raise ClientError(f"{path}: {exc}") from exc
    return Source(path, lambda: iter_decoded(path), live=False, duration=duration)


def url_source(url: str, *, live: bool = True) -> Source:
    """RTSP, HLS or any other URL FFmpeg understands, decoded *and resampled* like a file
    (WhisperLive forwards these frames without resampling, which garbles them)."""
    options = {"rtsp_transport": "tcp"} if url.startswith(("rtsp://", "rtsps://")) else {}
    return Source(url, lambda: iter_decoded(url, realtime_source=True, options=options), live=live)


def microphone_source(device: int | str | None = None, block_seconds: float = 0.1) -> Source:
    """The default (or given) input device through sounddevice/PortAudio.

    The device is opened at its own rate and PyAV resamples: many cards and sound servers do
    not offer 16 kHz, or offer it through a poor converter.
    """

    def blocks() -> Iterator[np.ndarray]:
        try:
            import sounddevice as sd
        except ImportError as exc:
            raise ClientError(
                "the microphone needs sounddevice: pip install 'whisper-live-daemon[mic]'"
            ) from exc

        try:
            rate = int(sd.query_devices(device, "input")["default_samplerate"])
            stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32", device=device)
        except (sd.PortAudioError, ValueError) as exc:
            raise ClientError(f"cannot open the microphone: {exc}") from exc
        resampler = Resampler(rate, 1)
        frames = max(1, int(rate * block_seconds))
        with stream:
            while True:
                data, _overflowed = stream.read(frames)
                yield resampler.feed(data)

    name = "microphone" if device is None else f"microphone {device}"
    return Source(name, blocks, live=True)


class WavRecorder:
    """Keeps the audio exactly as it was sent (16 kHz mono 16-bit), written as it arrives so
    an interrupted session still leaves a valid file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - open for the whole stream
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)

    def write(self, samples: np.ndarray) -> None:
        self._wav.writeframes(to_int16_bytes(samples))

    def close(self) -> None:
        self._wav.close()


_DONE = object()


class BlockPump:
    """Runs a source's blocking iterator in a daemon thread; ``async for`` gets its blocks.

    The queue is bounded, so a file is decoded only a little ahead of what has been sent.
    ``stop()`` makes the thread close the iterator (which releases the device or stream)
    at its next block.
    """

    def __init__(self, source: Source, maxsize: int = 64):
        self.source = source
        self._queue: asyncio.Queue = asyncio.Queue(maxsize)
        self._stop = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=f"source {source.name}", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        while not self._stop.is_set():
            with contextlib.suppress(concurrent.futures.TimeoutError):  # not builtin before 3.11
                future.result(0.2)
                return True
        future.cancel()
        return False

    def _run(self) -> None:
        blocks = None
        try:
            blocks = self.source.open()
            for block in blocks:
                if self._stop.is_set() or not self._put(block):
                    break
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
        finally:
            if blocks is not None and hasattr(blocks, "close"):
                with contextlib.suppress(Exception):
                    blocks.close()

    def stop(self) -> None:
        """End the stream now (call on the event loop's thread): what is queued is dropped."""
        self._stop.set()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_DONE)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop, and wait until the thread has closed the source: a thread still inside
        PortAudio or FFmpeg when the interpreter exits can crash it (SIGSEGV, SIGABRT)."""
        self.stop()
        await asyncio.to_thread(self._thread.join, timeout)

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        while True:
            item = await self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
