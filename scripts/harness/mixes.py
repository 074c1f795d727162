"""Generated multi-speaker mixes with RTTM references, for evaluating diarization.

Two shared conversations are too few to tune a speaker-count rule on without fitting it
to them, so this builds many mixes from the shared recordings of single readers:
LibriSpeech dev-clean (five readers), LJ Speech, the Sense and Sensibility reader, JFK
and the Sonnet reader (nine voices). Each mix is 1 to 4 speakers taking turns of short
(1-3 s) or long (4-10 s) speech, with 0.4-1.0 s pauses, or with ~0.3 s overlaps where the
next speaker starts before the last one ends. "Similar" mixes take the speakers whose
mean d-vectors are closest to each other, "different" ones the farthest.

A speaker's turns are consecutive slices of its recordings (joined with 0.3 s gaps, cut
at the quietest 20 ms within 0.3 s of the planned cut, and reused from the start when a
reader runs out); a turn's reference is where its energy exceeds -40 dB of the speaker's peak,
joined across pauses shorter than 0.5 s, so the silence that begins and ends each
recording is not "speech". A second reference (``Mix.quiet_turns``) also asks for
``NOISE_MARGIN`` dB over the reader's noise floor: in JFK's, the Sonnet's and the Sense and
Sensibility recordings the room noise (-39, -43, -48 dBFS) is above -40 dB of the peak, so
the first reference marks their pauses (JFK's 1 s between "Americans" and "ask not", 30 dB
below his speech) as speech; the other readers' references are the same under both. The
mixes themselves (audio, turn placement) are the same under both.

Everything is seeded: the same ``build_mixes(count, seed)`` gives the same mixes on any
machine. Mixes alternate between the ``tune`` and ``test`` splits within each kind, so
that each split holds every kind.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.media import decode_audio

from .diarization_metrics import Turn
from .evaluation import manifest

GAP_IN_READER = 0.3
SHORT_TURNS = (1.0, 3.0)
LONG_TURNS = (4.0, 10.0)
OVERLAP = 0.3
# A quiet stretch this long inside a turn is a pause, not speech, in the reference (the
# readers' recordings begin and end with silence, and a turn may span two of them).
PAUSE = 0.5
# The noise-aware reference: speech is also this far above the reader's noise floor (the
# 5th percentile of its 20 ms frames' energy, digital silence left out).
NOISE_MARGIN = 6.0


@dataclass
class Mix:
    name: str
    split: str  # "tune" or "test"
    kind: str  # e.g. "2spk-long-similar-overlap"
    speakers: list[str]  # those who speak in it (every one asked for, unless it is too short)
    audio: np.ndarray
    turns: list[Turn] = field(default_factory=list)  # the reference
    quiet_turns: list[Turn] = field(default_factory=list)  # the noise-aware reference

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def rttm(self) -> str:
        return "".join(
            f"SPEAKER {self.name} 1 {s:.3f} {e - s:.3f} <NA> <NA> {spk} <NA> <NA>\n"
            for s, e, spk in self.turns
        )


def reader_files() -> dict[str, list[Path]]:
    """The shared recordings of each single reader, keyed by a speaker name."""
    files: dict[str, list[Path]] = {}
    for utterance in manifest("librispeech_dev_clean"):
        files.setdefault("ls" + utterance.id.split("-")[0], []).append(utterance.path)
    files["lj"] = [u.path for u in manifest("ljspeech")]
    files["austen"] = [u.path for u in manifest("english_misc")]
    files["jfk"] = [u.path for u in manifest("jfk")]
    files["sonnet"] = [u.path for u in manifest("longform") if u.id.startswith("shakespeare")]
    return files


def reader_audio(files: dict[str, list[Path]] | None = None) -> dict[str, np.ndarray]:
    """Each reader's recordings joined (16 kHz, 0.3 s apart), by speaker name."""
    gap = np.zeros(int(GAP_IN_READER * SAMPLE_RATE), np.float32)
    out = {}
    for speaker, paths in sorted((files or reader_files()).items()):
        pieces = []
        for path in sorted(paths):
            pieces += [decode_audio(str(path)), gap]
        out[speaker] = np.concatenate(pieces)
    return out


class _Reader:
    """Hands out consecutive slices of one reader's audio, cut at quiet points."""

    def __init__(self, audio: np.ndarray):
        self.audio = audio
        self.position = 0
        frame = SAMPLE_RATE // 50
        usable = len(audio) // frame * frame
        self.energy = 10 * np.log10(np.mean(audio[:usable].reshape(-1, frame) ** 2, axis=1) + 1e-10)
        self.floor = self.energy.max() - 40.0
        sound = self.energy[self.energy > -90.0]  # not the zeros joining two recordings
        noise = float(np.percentile(sound, 5)) if len(sound) else -100.0
        self.quiet_floor = max(self.floor, noise + NOISE_MARGIN)
        self.frame = frame

    def _quiet(self, sample: int) -> int:
        reach = int(0.3 * SAMPLE_RATE) // self.frame
        centre = min(sample // self.frame, len(self.energy) - 1)
        lo, hi = max(centre - reach, 0), min(centre + reach + 1, len(self.energy))
        return (lo + int(np.argmin(self.energy[lo:hi]))) * self.frame

    def take(self, seconds: float) -> tuple[np.ndarray, list[tuple[float, float]], list[tuple[float, float]]]:
        """A slice of about ``seconds`` and its speech within it: spans of frames above
        the floor, split at quiet stretches of ``PAUSE`` seconds or more; and the same
        above the noise-aware floor."""
        want = int(seconds * SAMPLE_RATE)
        if self.position + want > len(self.audio):
            self.position = 0
        end = self._quiet(self.position + want)
        if end <= self.position + SAMPLE_RATE // 2:
            end = min(self.position + want, len(self.audio))
        piece = self.audio[self.position : end]
        self.position = end
        frames = len(piece) // self.frame
        energy = 10 * np.log10(
            np.mean(piece[: frames * self.frame].reshape(-1, self.frame) ** 2, axis=1) + 1e-10
        )
        return piece, self._spans(energy, self.floor), self._spans(energy, self.quiet_floor)

    def _spans(self, energy: np.ndarray, floor: float) -> list[tuple[float, float]]:
        spans: list[tuple[float, float]] = []
        step = self.frame / SAMPLE_RATE
        for index in np.flatnonzero(energy > floor):
            if spans and index * step - spans[-1][1] < PAUSE:
                spans[-1] = (spans[-1][0], (index + 1) * step)
            else:
                spans.append((index * step, (index + 1) * step))
        return spans


def _compose(
    name: str,
    split: str,
    kind: str,
    readers: dict[str, np.ndarray],
    order: list[str],
    rng: random.Random,
    turn_range: tuple[float, float],
    overlap: bool,
    total: float,
) -> Mix:
    sources = {s: _Reader(readers[s]) for s in set(order)}
    cursor = 0.0
    placed: list[tuple[float, np.ndarray]] = []
    turns: list[Turn] = []
    quiet_turns: list[Turn] = []
    speaker = order[0]
    while cursor < total:
        piece, spans, quiet = sources[speaker].take(rng.uniform(*turn_range))
        if not spans:
            continue  # a silent slice: the same speaker takes the next one
        speech_start = spans[0][0]
        if turns and overlap and len(order) > 1:
            start = turns[-1][1] - OVERLAP - speech_start
        else:
            start = (turns[-1][1] if turns else 0.0) + rng.uniform(0.4, 1.0) - speech_start
        start = max(start, 0.0)
        placed.append((start, piece))
        turns += [(start + a, start + b, speaker) for a, b in spans]
        quiet_turns += [(start + a, start + b, speaker) for a, b in quiet]
        cursor = start + len(piece) / SAMPLE_RATE
        others = [s for s in order if s != speaker]
        unheard = [s for s in others if s not in {t[2] for t in turns}]
        speaker = rng.choice(unheard or others) if others else speaker
    length = int((max(s + len(p) / SAMPLE_RATE for s, p in placed) + 0.5) * SAMPLE_RATE)
    audio = np.zeros(length, np.float32)
    for start, piece in placed:
        first = int(start * SAMPLE_RATE)
        audio[first : first + len(piece)] += piece
    peak = float(np.abs(audio).max())
    if peak > 0.99:
        audio *= 0.99 / peak
    return Mix(name, split, kind, sorted({t[2] for t in turns}), audio, turns, quiet_turns)


def voice_distances(readers: dict[str, np.ndarray]) -> dict[tuple[str, str], float]:
    """Cosine distance between readers' mean d-vectors (over 1.6 s windows of their speech)."""
    from whisper_live.engine import diarization

    means = {}
    for speaker, audio in readers.items():
        _, _, embeddings = diarization.window_embeddings(audio[: 40 * SAMPLE_RATE])
        mean = embeddings.mean(axis=0)
        means[speaker] = mean / np.linalg.norm(mean)
    return {(a, b): float(1 - means[a] @ means[b]) for a, b in itertools.combinations(sorted(means), 2)}


def build_mixes(seed: int = 23, repeats: int = 2, readers: dict[str, np.ndarray] | None = None) -> list[Mix]:
    """The evaluation set: each reader alone (9) and ``repeats`` times 28 mixes of 2-4
    speakers (16 of two, similar and different voices; 6 of three; 6 of four)."""
    readers = readers or reader_audio()
    rng = random.Random(seed)
    distances = voice_distances(readers)
    names = sorted(readers)
    mixes: list[Mix] = []

    def add(kind: str, order: list[str], turn_range, overlap: bool, total: float) -> None:
        index = sum(1 for m in mixes if m.kind == kind)
        split = "tune" if index % 2 == 0 else "test"
        mixes.append(
            _compose(f"{kind}-{index}", split, kind, readers, order, rng, turn_range, overlap, total)
        )

    # One voice: a long stretch of each reader (all of it for those who read little).
    for speaker in names:
        seconds = min(50.0, len(readers[speaker]) / SAMPLE_RATE - 1)
        add("1spk", [speaker], (seconds, seconds), False, seconds)
    pairs = sorted(distances, key=distances.__getitem__)
    for _ in range(repeats):
        _mixes_of_many(add, rng, names, pairs)
    return mixes


def _mixes_of_many(add, rng: random.Random, names: list[str], pairs: list[tuple[str, str]]) -> None:
    for kind_voices, chosen in (("similar", pairs[:4]), ("different", pairs[-4:])):
        for pair in chosen:
            for turns, overlap in (("long", False), ("short", True)):
                order = list(pair) if rng.random() < 0.5 else list(pair[::-1])
                add(
                    f"2spk-{turns}-{kind_voices}{'-overlap' if overlap else ''}",
                    order,
                    LONG_TURNS if turns == "long" else SHORT_TURNS,
                    overlap,
                    rng.uniform(30, 60),
                )
    for count in (3, 4):
        for variant in range(6):
            order = rng.sample(names, count)
            long_turns = variant % 2 == 0
            add(
                f"{count}spk-{'long' if long_turns else 'short'}{'-overlap' if variant % 3 == 2 else ''}",
                order,
                LONG_TURNS if long_turns else SHORT_TURNS,
                variant % 3 == 2,
                rng.uniform(40, 75),
            )
