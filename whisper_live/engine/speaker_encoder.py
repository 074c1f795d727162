"""Resemblyzer's speaker encoder (a GE2E d-vector network) run with numpy.

The network is small: 40-channel mel power frames (25 ms Hann window, 10 ms step, 16 kHz)
through a 3-layer LSTM of 256 units; the last layer's final hidden state goes through a
256x256 linear layer and a ReLU and is L2-normalised. Its weights (``pretrained.pt``,
Apache-2.0) ship inside the ``resemblyzer`` wheel on PyPI, which is installed without its
dependencies (it would pull torch and librosa): we only read the file, with
``whisper_live.tensors`` (no unpickling of code), so nothing is downloaded at run time and
torch is not needed. The mel filterbank reproduces librosa's defaults (Slaney scale and
normalisation, centred frames zero-padded), which resemblyzer uses.
"""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path

import numpy as np

from .. import tensors
from ..core.pcm import SAMPLE_RATE
from ..errors import Unsupported

N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # one d-vector covers 1.6 s
PARTIAL_SAMPLES = PARTIAL_FRAMES * HOP
EMBEDDING_SIZE = 256
TARGET_DBFS = -30.0  # resemblyzer raises quieter audio to this level before embedding
WEIGHTS_DISTRIBUTION = "resemblyzer"
WEIGHTS_FILE = "resemblyzer/pretrained.pt"
# Windows per LSTM call: enough for BLAS to be efficient, little enough to bound memory.
BATCH = 64


def weights_path() -> Path:
    """Where the installed resemblyzer wheel keeps its encoder weights, without importing it
    (its ``__init__`` imports torch)."""
    try:
        path = Path(str(importlib.metadata.distribution(WEIGHTS_DISTRIBUTION).locate_file(WEIGHTS_FILE)))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise Unsupported(
            "speaker diarization is not available on this server: the speaker-encoder weights"
            " are not installed (pip install --no-deps resemblyzer)",
            param="diarize",
        )
    return path


@functools.cache
def mel_filterbank() -> np.ndarray:
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=40): Slaney mel scale, area-normalised."""

    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        linear = f / (200.0 / 3)
        log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log_part, linear)

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        linear = m * (200.0 / 3)
        log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log_part, linear)

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    return weights.astype(np.float32)


@functools.cache
def _window() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def mel_frames(audio: np.ndarray) -> np.ndarray:
    """Mel power frames (n_frames, 40) of 16 kHz audio, as librosa.feature.melspectrogram
    computes them (centred, zero-padded): frame i covers samples around i * 160."""
    audio = np.asarray(audio, np.float32)
    padded = np.pad(audio, N_FFT // 2)
    count = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, N_FFT), strides=(padded.strides[0] * HOP, padded.strides[0]), writeable=False
    )
    power = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2
    return (power.astype(np.float32) @ mel_filterbank().T).astype(np.float32)


def volume_gain(audio: np.ndarray) -> float:
    """The factor that raises (never lowers) ``audio`` to -30 dBFS, as resemblyzer's
    preprocessing does."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    if rms <= 0.0:
        return 1.0
    change = TARGET_DBFS - 20 * np.log10(rms)
    return 1.0 if change < 0 else float(10 ** (change / 20))


def normalize_volume(audio: np.ndarray) -> np.ndarray:
    gain = volume_gain(audio)
    return audio if gain == 1.0 else (audio * gain).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free


class SpeakerEncoder:
    """The d-vector network; ``embed_mels`` is pure numpy and safe to call from any thread."""

    def __init__(self, state: dict[str, np.ndarray]):
        self.layers = []
        for n in range(3):
            w_ih = np.ascontiguousarray(state[f"lstm.weight_ih_l{n}"].T, np.float32)
            w_hh = np.ascontiguousarray(state[f"lstm.weight_hh_l{n}"].T, np.float32)
            bias = (state[f"lstm.bias_ih_l{n}"] + state[f"lstm.bias_hh_l{n}"]).astype(np.float32)
            self.layers.append((w_ih, w_hh, bias))
        self.linear_w = np.ascontiguousarray(state["linear.weight"].T, np.float32)
        self.linear_b = state["linear.bias"].astype(np.float32)

    @classmethod
    def load(cls, path: str | Path | None = None) -> SpeakerEncoder:
        checkpoint = tensors.load(Path(path or weights_path()).read_bytes())
        return cls(checkpoint["model_state"])

    def embed_mels(self, mels: np.ndarray) -> np.ndarray:
        """d-vectors (batch, 256) of mel frames (batch, frames, 40), each L2-normalised."""
        mels = np.asarray(mels, np.float32)
        out = [self._forward(mels[i : i + BATCH]) for i in range(0, len(mels), BATCH)]
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING_SIZE), np.float32)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        batch, steps, _ = x.shape
        hidden = 256
        for w_ih, w_hh, bias in self.layers:
            # Input projections for every step at once; only the recurrence is sequential.
            projected = (x.reshape(batch * steps, -1) @ w_ih + bias).reshape(batch, steps, 4 * hidden)
            h = np.zeros((batch, hidden), np.float32)
            c = np.zeros((batch, hidden), np.float32)
            outputs = np.empty((batch, steps, hidden), np.float32)
            for t in range(steps):
                gates = projected[:, t] + h @ w_hh
                i = _sigmoid(gates[:, :hidden])
                f = _sigmoid(gates[:, hidden : 2 * hidden])
                g = np.tanh(gates[:, 2 * hidden : 3 * hidden])
                o = _sigmoid(gates[:, 3 * hidden :])
                c = f * c + i * g
                h = o * np.tanh(c)
                outputs[:, t] = h
            x = outputs
        embeds = np.maximum(h @ self.linear_w + self.linear_b, 0.0)
        return embeds / np.maximum(np.linalg.norm(embeds, axis=1, keepdims=True), 1e-12)

    def embed_windows(self, audio: np.ndarray, starts: list[int] | np.ndarray) -> np.ndarray:
        """One d-vector per 1.6 s window of ``audio`` starting at each sample index (windows
        running past the end are zero-padded, as resemblyzer pads its last partial)."""
        starts = np.asarray(starts, int)
        if len(starts) == 0:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        need = int(starts.max()) + PARTIAL_SAMPLES
        if need > len(audio):
            audio = np.pad(audio, (0, need - len(audio)))
        mels = mel_frames(audio)
        first = starts // HOP
        return self.embed_mels(np.stack([mels[s : s + PARTIAL_FRAMES] for s in first]))

    def embed_utterance(self, audio: np.ndarray, rate: float = 1.3, min_coverage: float = 0.75) -> np.ndarray:
        """Resemblyzer's ``embed_utterance``: partials at ``rate`` a second, averaged, normalised."""
        frame_step = int(round(SAMPLE_RATE / rate / HOP))
        n_frames = int(np.ceil((len(audio) + 1) / HOP))
        starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + frame_step + 1), frame_step))
        last = starts[-1] * HOP
        if len(starts) > 1 and (len(audio) - last) / PARTIAL_SAMPLES < min_coverage:
            starts.pop()
        partials = self.embed_windows(audio, [s * HOP for s in starts])
        mean = partials.mean(axis=0)
        return mean / np.linalg.norm(mean)


@functools.cache
def shared_encoder() -> SpeakerEncoder:
    """The process's one encoder (4 MB of weights), loaded on first use.

    It keeps numpy's BLAS to one thread, as every decode does (``pool.one_blas_thread``): 62
    windows took 0.46 s of CPU single-threaded, 1.4-2 s with two BLAS threads on a loaded
    2-core machine.
    """
    from .pool import one_blas_thread

    one_blas_thread()
    return SpeakerEncoder.load()
