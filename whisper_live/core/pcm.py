"""Raw PCM as it arrives on a socket: frames cut anywhere, int16 or float32, sniffed if undeclared."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidRequest

SAMPLE_RATE = 16000

# Bytes of non-silent audio the sniffer looks at before it decides int16 vs float32.
SNIFF_BYTES = 4096


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
    """Turns arbitrarily cut PCM frames into float32 samples, interleaved when ``channels``
    > 1: the only place the bytes of an incomplete frame wait (``media.PcmIntake`` adds the
    resampling every live face needs).

    Frames may split a sample anywhere (odd lengths, any size): the leftover bytes wait for
    the next frame. With no declared format, bytes are held back (not lost) until
    ``SNIFF_BYTES`` of non-zero audio decide between int16 and float32.
    """

    def __init__(self, sample_format: str | None = None, channels: int = 1):
        if sample_format is not None:
            pcm_width(sample_format)
        self.sample_format = sample_format
        self.channels = int(channels)
        self._pending = bytearray()

    def feed(self, data: bytes) -> np.ndarray:
        self._pending += data
        if self.sample_format is None:
            if len(self._pending.strip(b"\0")) < SNIFF_BYTES:
                return np.zeros(0, np.float32)
            self.sample_format = sniff_sample_format(bytes(self._pending)) or "int16"
        return self._drain()

    def flush(self) -> np.ndarray:
        """End of stream: decide with what there is and drop only a trailing partial frame."""
        if self.sample_format is None:
            self.sample_format = sniff_sample_format(bytes(self._pending)) or "int16"
        samples = self._drain()
        self._pending.clear()
        return samples

    def _drain(self) -> np.ndarray:
        frame = pcm_width(self.sample_format) * self.channels
        usable = len(self._pending) - len(self._pending) % frame
        if usable == 0:
            return np.zeros(0, np.float32)
        chunk = bytes(self._pending[:usable])
        del self._pending[:usable]
        return pcm_frames(chunk, self.sample_format, self.channels).reshape(-1)


# Raw sample types a client may declare for headerless PCM.
RAW_DTYPES = {"int16": "<i2", "int32": "<i4", "float32": "<f4", "float64": "<f8"}
# ... and the G.711 companded encodings telephony sends (one byte a sample).
COMPANDED = ("mulaw", "alaw")
PCM_ENCODINGS = (*RAW_DTYPES, *COMPANDED)


def g711_table(law: str) -> np.ndarray:
    """The 256 sample values of G.711 mu-law or A-law bytes, as float32 in +-1 (ITU-T G.711)."""
    codes = np.arange(256, dtype=np.int32)
    if law == "mulaw":
        u = ~codes & 0xFF
        magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 7)
        values = np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84)
    else:
        a = codes ^ 0x55
        exponent, mantissa = (a >> 4) & 7, (a & 0x0F) << 4
        magnitude = np.where(exponent == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(exponent - 1, 0))
        values = np.where(a & 0x80, magnitude, -magnitude)
    return (values / 32768.0).astype(np.float32)


def pcm_width(encoding: str) -> int:
    """Bytes per sample of a headerless encoding."""
    if encoding in COMPANDED:
        return 1
    if encoding not in RAW_DTYPES:
        raise InvalidRequest(f"encoding must be one of {', '.join(PCM_ENCODINGS)}", param="encoding")
    return np.dtype(RAW_DTYPES[encoding]).itemsize


def pcm_frames(data: bytes, encoding: str, channels: int = 1) -> np.ndarray:
    """Headerless interleaved PCM → float32 frames (samples × channels) in ±1.

    Bytes past the last whole frame are ignored; a stream that cuts frames anywhere keeps
    them for the next call (``PcmIntake``).
    """
    frame = pcm_width(encoding) * channels
    usable = data[: len(data) - len(data) % frame]
    if encoding in COMPANDED:
        samples = g711_table(encoding)[np.frombuffer(usable, np.uint8)]
    else:
        samples = _to_float(np.frombuffer(usable, dtype=RAW_DTYPES[encoding]))
    return samples.reshape(-1, channels)


def _to_float(samples: np.ndarray) -> np.ndarray:
    """Integer or float samples → float32 in ±1 (NaN and infinities never come out)."""
    if samples.dtype.kind == "i":
        return (samples.astype(np.float64) / float(-np.iinfo(samples.dtype).min)).astype(np.float32)
    out = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(out, -1.0, 1.0)


def to_int16_bytes(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
