"""Raw PCM as it arrives on a socket: frames cut anywhere, int16 or float32, sniffed if undeclared."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000

# Bytes of non-silent audio the sniffer looks at before it decides int16 vs float32.
_SNIFF_BYTES = 4096


def sniff_sample_format(data: bytes) -> str | None:
    """Guess whether little-endian PCM bytes are float32 or int16 samples.

    Float32 speech is finite and stays within about ±1. The same bytes read from an int16
    stream pair two samples into one float whose exponent comes from the second sample's
    high bits: quiet samples give denormals (~1e-39), negative ones NaN or ±1e38. So a
    block is float32 when nearly every value is finite, in range and either zero or of a
    normal audio magnitude. Returns None while the bytes are all zero (either reading works).
    """
    usable = len(data) - len(data) % 4
    words = np.frombuffer(data[:usable], dtype="<u4")
    # Zero words read as 0.0 either way: they are no evidence, and a stream that opens with
    # digital silence must not outvote the speech that follows.
    values = words[words != 0].view("<f4")
    if len(values) == 0:
        return None
    with np.errstate(all="ignore"):
        finite = np.isfinite(values)
        magnitude = np.abs(np.where(finite, values, 0.0))
    plausible = finite & (magnitude <= 4.0) & (magnitude >= 1e-12)
    return "float32" if plausible.mean() >= 0.99 else "int16"


class PcmDecoder:
    """Turns arbitrarily cut PCM frames into float32 samples.

    Frames may split a sample anywhere (odd lengths, any size): the leftover bytes wait for
    the next frame. With no declared format, bytes are held back (not lost) until
    ``_SNIFF_BYTES`` of non-zero audio decide between int16 and float32.
    """

    def __init__(self, sample_format: str | None = None):
        if sample_format not in (None, "int16", "float32"):
            raise ValueError(f"audio_format must be 'int16' or 'float32', not {sample_format!r}")
        self.sample_format = sample_format
        self._pending = bytearray()

    def feed(self, data: bytes) -> np.ndarray:
        self._pending += data
        if self.sample_format is None:
            if len(self._pending.strip(b"\0")) < _SNIFF_BYTES:
                return np.zeros(0, np.float32)
            self.sample_format = sniff_sample_format(bytes(self._pending)) or "int16"
        return self._drain()

    def flush(self) -> np.ndarray:
        """End of stream: decide with what there is and drop only a trailing partial sample."""
        if self.sample_format is None:
            self.sample_format = sniff_sample_format(bytes(self._pending)) or "int16"
        return self._drain()

    def _drain(self) -> np.ndarray:
        width = 4 if self.sample_format == "float32" else 2
        usable = len(self._pending) - len(self._pending) % width
        if usable == 0:
            return np.zeros(0, np.float32)
        chunk = bytes(self._pending[:usable])
        del self._pending[:usable]
        if width == 4:
            samples = np.frombuffer(chunk, dtype="<f4").astype(np.float32)
            np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
            return np.clip(samples, -1.0, 1.0)
        return np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0


def to_int16_bytes(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
