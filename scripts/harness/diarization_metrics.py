"""Scoring speaker diarization: DER from RTTM turns and speaker-attributed WER (cpWER).

Written here rather than taken from ``pyannote.metrics``, which pulls pandas, scipy and
scikit-learn into the test environment; tests/unit/test_diarization.py checks it against
hand-computed cases, and it agreed with pyannote.metrics 4.2 within 0.002 on perturbed
hypotheses of the shared conversations (scripts/compare_der_pyannote.py, run once in a
separate venv).

DER follows NIST's definition on 10 ms frames: (missed speech + false alarm + speaker
confusion) / total reference speech, with the one-to-one speaker mapping that maximises
agreement. ``collar`` seconds on each side of every reference boundary are not scored
(md-eval's ``-c``; pyannote's ``collar`` is the total width, i.e. twice this).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME = 0.01
Turn = tuple[float, float, str]  # start, end, speaker


def read_rttm(path: str | Path) -> list[Turn]:
    turns = []
    for line in Path(path).read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append((start, start + duration, fields[7]))
    return turns


def read_turns(path: str | Path) -> list[tuple[float, float, str, str]]:
    """A conversation's TSV: (start, end, speaker, reference transcript) per turn."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(float(r["start"]), float(r["end"]), r["speaker"], r["reference_transcript"]) for r in rows]


@dataclass
class DerResult:
    total: float  # seconds of reference speech scored (a frame with two speakers counts twice)
    missed: float
    false_alarm: float
    confusion: float
    mapping: dict[str, str]  # hypothesis speaker -> reference speaker

    @property
    def der(self) -> float:
        return (self.missed + self.false_alarm + self.confusion) / self.total if self.total else 0.0


def _activity(turns: Sequence[Turn], frames: int) -> tuple[list[str], np.ndarray]:
    speakers = sorted({t[2] for t in turns})
    active = np.zeros((len(speakers), frames), bool)
    for start, end, speaker in turns:
        active[speakers.index(speaker), int(round(start / FRAME)) : int(round(end / FRAME))] = True
    return speakers, active


def best_mapping(agreement: np.ndarray) -> list[tuple[int, int]]:
    """(hyp, ref) pairs, one-to-one, maximising the summed agreement: exhaustive for up to 8
    speakers on the smaller side, greedy beyond (never reached by our test data)."""
    n_hyp, n_ref = agreement.shape
    if min(n_hyp, n_ref) == 0:
        return []
    if max(n_hyp, n_ref) <= 8:
        best, best_pairs = -np.inf, []
        if n_hyp <= n_ref:
            for refs in itertools.permutations(range(n_ref), n_hyp):
                score = sum(agreement[h, r] for h, r in enumerate(refs))
                if score > best:
                    best, best_pairs = score, list(enumerate(refs))
        else:
            for hyps in itertools.permutations(range(n_hyp), n_ref):
                score = sum(agreement[h, r] for r, h in enumerate(hyps))
                if score > best:
                    best, best_pairs = score, [(h, r) for r, h in enumerate(hyps)]
        return best_pairs
    pairs, used_h, used_r = [], set(), set()
    for flat in np.argsort(-agreement, axis=None):
        h, r = np.unravel_index(flat, agreement.shape)
        if h not in used_h and r not in used_r:
            pairs.append((int(h), int(r)))
            used_h.add(h)
            used_r.add(r)
    return pairs


def der(reference: Sequence[Turn], hypothesis: Sequence[Turn], collar: float = 0.0) -> DerResult:
    end = max([t[1] for t in [*reference, *hypothesis]], default=0.0)
    frames = int(round(end / FRAME)) + 1
    ref_speakers, ref = _activity(reference, frames)
    hyp_speakers, hyp = _activity(hypothesis, frames)
    scored = np.ones(frames, bool)
    if collar > 0:
        width = int(round(collar / FRAME))
        for start, stop, _ in reference:
            for edge in (int(round(start / FRAME)), int(round(stop / FRAME))):
                scored[max(edge - width, 0) : edge + width] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    agreement = (hyp[:, None, :] & ref[None, :, :]).sum(axis=2).astype(float)
    pairs = best_mapping(agreement)
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    mapped = hyp[[h for h, _ in pairs]] & ref[[r for _, r in pairs]] if pairs else np.zeros_like(ref[:0])
    correct = mapped.sum(axis=0)
    return DerResult(
        total=float(n_ref.sum()) * FRAME,
        missed=float(np.maximum(n_ref - n_hyp, 0).sum()) * FRAME,
        false_alarm=float(np.maximum(n_hyp - n_ref, 0).sum()) * FRAME,
        confusion=float((np.minimum(n_ref, n_hyp) - correct).sum()) * FRAME,
        mapping={hyp_speakers[h]: ref_speakers[r] for h, r in pairs},
    )


def cp_wer(reference: dict[str, str], hypothesis: dict[str, str]) -> tuple[float, dict[str, str]]:
    """Concatenated minimum-permutation WER (CHiME-6's cpWER): each speaker's words joined
    in order, hypothesis speakers mapped one-to-one onto reference speakers (unmatched ones
    against nothing) so that the total errors are fewest; errors / reference words.

    Returns the rate and the mapping (hypothesis -> reference speaker).
    """
    import jiwer

    from harness.evaluation import normalize

    refs = {k: normalize(v) for k, v in reference.items()}
    hyps = {k: normalize(v) for k, v in hypothesis.items()}
    ref_keys, hyp_keys = list(refs), list(hyps)
    size = max(len(ref_keys), len(hyp_keys))
    ref_keys += [None] * (size - len(ref_keys))
    hyp_keys += [None] * (size - len(hyp_keys))

    def errors(ref_key, hyp_key) -> int:
        ref, hyp = refs.get(ref_key, ""), hyps.get(hyp_key, "")
        if not ref:
            return len(hyp.split())
        if not hyp:
            return len(ref.split())
        out = jiwer.process_words(ref, hyp)
        return out.substitutions + out.deletions + out.insertions

    cost = np.array([[errors(r, h) for r in ref_keys] for h in hyp_keys], float)
    pairs = best_mapping(-cost)
    total_words = sum(len(v.split()) for v in refs.values())
    total_errors = sum(cost[h, r] for h, r in pairs)
    mapping = {
        hyp_keys[h]: ref_keys[r] for h, r in pairs if hyp_keys[h] is not None and ref_keys[r] is not None
    }
    return total_errors / max(total_words, 1), mapping


# ----------------------------------------------------------------------------- the shared conversations


@dataclass
class ConversationTruth:
    name: str
    wav: Path
    turns: list[Turn]  # from the RTTM
    texts: dict[str, str]  # reference transcript per speaker, turns joined in order
    reference: str  # every turn's transcript in order, for WER ignoring speakers

    @property
    def speakers(self) -> int:
        return len(self.texts)


def conversation_truth(name: str) -> ConversationTruth:
    from harness.evaluation import audio_root

    folder = audio_root() / "conversations"
    texts: dict[str, list[str]] = {}
    rows = read_turns(folder / f"{name}.tsv")
    for _, _, speaker, text in rows:
        texts.setdefault(speaker, []).append(text)
    return ConversationTruth(
        name,
        folder / f"{name}.wav",
        read_rttm(folder / f"{name}.rttm"),
        {k: " ".join(v) for k, v in texts.items()},
        " ".join(row[3] for row in rows),
    )


def labelled_spans(items: Sequence[dict], bridge: float = 0.0) -> tuple[list[Turn], dict[str, str]]:
    """Turns and per-speaker text from labelled items as a client receives them (verbose_json
    words or segments, WebSocket segments: ``start``, ``end``, ``speaker`` and ``word`` or
    ``text``); items without a speaker count as an unknown speaker.

    Consecutive items of one speaker less than ``bridge`` seconds apart make one turn, as a
    client building turns from words would join them (the pauses between words are speech
    for DER; the conversations' turns are 0.6 s apart).
    """
    turns: list[Turn] = []
    texts: dict[str, list[str]] = {}
    for item in items:
        speaker = item.get("speaker") or "?"
        start, end = float(item["start"]), float(item["end"])
        if turns and turns[-1][2] == speaker and start - turns[-1][1] < bridge:
            turns[-1] = (turns[-1][0], max(end, turns[-1][1]), speaker)
        else:
            turns.append((start, end, speaker))
        texts.setdefault(speaker, []).append(item.get("word", item.get("text", "")).strip())
    return turns, {k: " ".join(v) for k, v in texts.items()}
