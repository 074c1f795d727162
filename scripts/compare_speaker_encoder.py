"""One-off check of the numpy speaker encoder against resemblyzer's own (torch) code.

Not part of the test suite: it needs torch, librosa and resemblyzer, which the project does
not depend on. Run it in a throwaway venv that has them, with this checkout on the path:

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0 librosa webrtcvad-wheels
    /tmp/refvenv/bin/pip install --no-deps resemblyzer==0.1.4
    PYTHONPATH=. /tmp/refvenv/bin/python scripts/compare_speaker_encoder.py

It prints the largest differences of mel frames, partial d-vectors and utterance embeddings
over the WAV files of the shared conversations and LibriSpeech clips.
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import librosa
import numpy as np
import resemblyzer
import torch

from whisper_live.engine.speaker_encoder import SpeakerEncoder, mel_frames, normalize_volume

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import evaluation  # noqa: E402

AUDIO = evaluation.use_benchmark_audio()


def read_audio(path: Path) -> np.ndarray:
    if path.suffix == ".wav":
        with wave.open(str(path)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
    audio, _ = librosa.load(str(path), sr=16000)
    return audio.astype(np.float32)


def main() -> None:
    torch.set_num_threads(1)
    reference = resemblyzer.VoiceEncoder("cpu", verbose=False)
    ours = SpeakerEncoder.load()
    files = (
        sorted((AUDIO / "conversations").glob("*.wav"))
        + sorted((AUDIO / "librispeech_dev_clean").glob("*.flac"))[:6]
    )
    worst = {"mel (relative)": 0.0, "partials": 0.0, "utterance": 0.0, "cosine": 1.0}
    for path in files:
        audio = normalize_volume(read_audio(path)[: 16000 * 20])
        ref_mel = resemblyzer.wav_to_mel_spectrogram(audio)
        our_mel = mel_frames(audio)
        rel = np.abs(ref_mel - our_mel).max() / np.abs(ref_mel).max()
        ref_embed, ref_partials, _ = reference.embed_utterance(audio, return_partials=True)
        starts = [s.start for s in reference.compute_partial_slices(len(audio), 1.3, 0.75)[0]]
        our_partials = ours.embed_windows(audio, starts)
        our_embed = ours.embed_utterance(audio)
        worst["mel (relative)"] = max(worst["mel (relative)"], float(rel))
        worst["partials"] = max(worst["partials"], float(np.abs(ref_partials - our_partials).max()))
        worst["utterance"] = max(worst["utterance"], float(np.abs(ref_embed - our_embed).max()))
        worst["cosine"] = min(worst["cosine"], float(ref_embed @ our_embed))
        print(f"{path.name}: {len(starts)} partials, max |diff| {np.abs(ref_embed - our_embed).max():.2e}")
    for name, value in worst.items():
        print(f"worst {name}: {value:.3e}" if name != "cosine" else f"lowest cosine similarity: {value:.7f}")


if __name__ == "__main__":
    main()
