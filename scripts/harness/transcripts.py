"""What a transcript says that the audio did not: words not in the reference, segments
that restate the one before. Shared by ``bench_forced_finals.py`` and the live tests."""

from __future__ import annotations

from .evaluation import normalize


def _lcs(a: list[str], b: list[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def inserted_words(reference: str, hypothesis: str) -> int:
    """Words of ``hypothesis`` outside its longest common subsequence with ``reference``:
    words the audio did not hold in that order (invented, or misheard)."""
    hyp = normalize(hypothesis).split()
    return len(hyp) - _lcs(hyp, normalize(reference).split())


def repeated_segments(segments: list[str]) -> int:
    """Segments that begin with every word of the segment before them (" 1." then
    " 1. From fairest creatures ...")."""
    words = [normalize(s).split() for s in segments]
    return sum(1 for before, after in zip(words, words[1:]) if before and after[: len(before)] == before)
