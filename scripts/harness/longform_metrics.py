"""Word-by-word measures of a stream of continuous speech (``bench_longform.py``, the tests).

A long reading has no utterance ends to measure finals from, so each spoken word is
followed instead: when it is first committed (completed text, which never changes) and when
it is first on screen at all (completed text plus the current partial), and how much text
the screen takes back on the way (the flicker a reader sees).

Everything here is pure: word lists, texts and times in, numbers out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NOT_WORD = re.compile(r"[^\w']+")


def words(text: str) -> list[str]:
    """Words as the alignments compare them: lower case, punctuation and spacing gone."""
    return [w for w in _NOT_WORD.sub(" ", text.lower().replace("’", "'")).split() if w.strip("'")]


def align(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """The ``(i, j)`` pairs with ``a[i] == b[j]`` on a minimum word-level edit alignment of
    ``a`` and ``b`` (substitutions, insertions and deletions cost 1; matches 0). Ties prefer
    a match, so equal words line up where the texts agree."""
    n, m = len(a), len(b)
    # cost[i][j]: edit distance of a[:i] and b[:j]
    cost = [list(range(m + 1))]
    for i in range(1, n + 1):
        row = [i] + [0] * m
        prev = cost[-1]
        ai = a[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (ai != b[j - 1]), prev[j] + 1, row[j - 1] + 1)
        cost.append(row)
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1] and cost[i][j] == cost[i - 1][j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j - 1] + 1:
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


@dataclass
class Display:
    """What the client showed after one message: completed text so far (append-only) and
    the partial after it."""

    at: float  # seconds since the stream started
    completed: str
    partial: str

    @property
    def text(self) -> str:
        return self.completed + self.partial


def displays(messages: list[dict], arrivals: list[float]) -> list[Display]:
    """What a WhisperLive client showed after each server message (``arrivals``: when each
    came), completed segments collected the way ``evaluation.stream`` (and WhisperLive's
    own client) collects them: a completed segment once, by its start and text."""
    out = []
    seen: set[tuple[float, str]] = set()
    completed = ""
    for msg, at in zip(messages, arrivals, strict=False):
        segments = msg.get("segments")
        if not segments:
            continue
        partial = ""
        for seg in segments:
            if seg["completed"]:
                key = (round(float(seg["start"]), 2), seg["text"])
                if key not in seen:
                    seen.add(key)
                    completed += seg["text"]
            else:
                partial = seg["text"]
        out.append(Display(at, completed, partial))
    return out


def first_committed(final: list[str], displays: list[Display]) -> list[float | None]:
    """For each word of the ``final`` committed text: when the completed text first held it.
    Completed text only grows, so word ``j`` is there once it has more than ``j`` words."""
    out: list[float | None] = [None] * len(final)
    done = 0
    for d in displays:
        count = min(len(words(d.completed)), len(final))
        for j in range(done, count):
            out[j] = d.at
        done = max(done, count)
    return out


def first_displayed(final: list[str], displays: list[Display], slack: int = 20) -> list[float | None]:
    """For each word of the ``final`` committed text: when it was first on screen, committed
    or as a word of a partial that lined up with it (the partial's words are aligned with
    the final words after the committed ones, ``slack`` words beyond the partial's length)."""
    out: list[float | None] = [None] * len(final)
    for d in displays:
        count = min(len(words(d.completed)), len(final))
        for j in range(count):
            if out[j] is None:
                out[j] = d.at
        tail = words(d.partial)
        if not tail:
            continue
        window = final[count : count + len(tail) + slack]
        for _, j in align(tail, window):
            if out[count + j] is None:
                out[count + j] = d.at
    return out


def emission_latencies(
    spoken: list[tuple[str, float]], final: list[str], first_seen: list[float | None]
) -> tuple[list[float], int]:
    """Seconds from the end of each spoken word (``(word, end)``, e.g. from an offline pass
    with word times) to its first appearance, for the spoken words that the ``final`` text
    holds (aligned word by word); and how many spoken words it does not hold."""
    pairs = align([w for w, _ in spoken], final)
    latencies = [first_seen[j] - spoken[i][1] for i, j in pairs if first_seen[j] is not None]
    return latencies, len(spoken) - len(latencies)


def erasure(texts: list[str]) -> int:
    """Characters the display takes back: over successive displayed texts, the length of
    each beyond its common prefix with the next one. Text that only grows costs nothing."""
    taken = 0
    for before, after in zip(texts, texts[1:]):
        common = 0
        for x, y in zip(before, after):
            if x != y:
                break
            common += 1
        taken += len(before) - common
    return taken


def normalized_erasure(texts: list[str]) -> float:
    """``erasure`` over the length of the final text (0: the display never took anything
    back; 1: as many characters as the whole transcript)."""
    final = len(texts[-1]) if texts else 0
    return erasure(texts) / final if final else 0.0
