"""LocalAgreement-2: which words of a growing window are settled, as in whisper_streaming.

In speech without a pause every partial decodes the open utterance's window again, one
second longer. Words that two successive hypotheses agree on, after what is already
committed, will not change any more: they are committed at once (completed text, never
taken back), so the client gets long speech word by word instead of at the next pause.

Committed words stay in the window, as context for Whisper, until a sentence ends (the
session then cuts the audio there); so each hypothesis starts with words already
committed. Those are recognised by time (they start before the committed ones end) and,
where word times jitter, by text (a hypothesis that restates the last committed words).
The same filter takes committed words out of the utterance's final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .decodes import Word

_SENTENCE_END = re.compile(r"[.!?。！？]['\"»”)]*$")
_NOT_WORD = re.compile(r"[^\w']+")

# A word of a new hypothesis that starts this much before the committed words end is one of
# them (word times move a little from one decode to the next).
_TIME_SLACK = 0.1
# Longest run of committed words a hypothesis may restate at its start, and how close in
# time it must begin to the committed end for that to count as a restatement.
_MAX_RESTATED = 5
_RESTATE_WITHIN = 1.0


def word_key(word: str) -> str:
    """A word as hypotheses are compared: case, spacing and punctuation do not count."""
    return _NOT_WORD.sub("", word.lower())


def ends_sentence(word: Word) -> bool:
    return bool(_SENTENCE_END.search(word.word.strip()))


@dataclass
class Committed:
    """Where the words committed so far end: what a hypothesis' new words come after."""

    end: float = float("-inf")  # stream seconds; -inf: nothing committed in this utterance
    tail: list[str] = field(default_factory=list)  # keys of the last committed words

    def new_words(self, words: list[Word]) -> list[Word]:
        """The words of a hypothesis (stream times) that are not committed yet."""
        if self.end == float("-inf"):
            return list(words)
        new = [w for w in words if w.start > self.end - _TIME_SLACK]
        if new and abs(new[0].start - self.end) < _RESTATE_WITHIN:
            keys = [word_key(w.word) for w in new]
            for n in range(min(_MAX_RESTATED, len(self.tail), len(new)), 0, -1):
                if keys[:n] == self.tail[-n:]:
                    return new[n:]
        return new

    def add(self, words: list[Word]) -> None:
        if words:
            self.end = max(self.end, words[-1].end)
            self.tail = (self.tail + [word_key(w.word) for w in words])[-_MAX_RESTATED:]


class LocalAgreement:
    def __init__(self) -> None:
        self.committed = Committed()
        self._previous: list[Word] = []  # the last hypothesis' words not committed yet

    def reset(self) -> None:
        """A new utterance: nothing committed in it, nothing to agree with yet."""
        self.committed = Committed()
        self._previous = []

    @property
    def pending(self) -> list[Word]:
        """The latest hypothesis' words past the committed ones: the partial to show."""
        return list(self._previous)

    def settled(self, words: list[Word]) -> list[Word]:
        """The words of this hypothesis (stream times) to commit now: the longest prefix of
        its new words that the previous hypothesis' new words share."""
        new = self.committed.new_words(words)
        agreed = 0
        for a, b in zip(self._previous, new, strict=False):
            if word_key(a.word) != word_key(b.word):
                break
            agreed += 1
        return self._commit(new, agreed)

    def observe(self, words: list[Word]) -> None:
        """Take a hypothesis without committing from it (commits wait): the next one is
        compared with this."""
        self._previous = self.committed.new_words(words)

    def force(self, words: list[Word], horizon: float) -> list[Word]:
        """Commit the new words that end by ``horizon`` whether or not they were agreed on
        (a window that grew too long without agreement), never the last one."""
        new = self.committed.new_words(words)
        count = sum(1 for w in new[:-1] if w.end <= horizon)
        return self._commit(new, count)

    def _commit(self, new: list[Word], count: int) -> list[Word]:
        commit, self._previous = new[:count], new[count:]
        self.committed.add(commit)
        return commit
