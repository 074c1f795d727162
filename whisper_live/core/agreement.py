"""LocalAgreement: which words of a growing window are settled, as in whisper_streaming.

In long speech with no pause the window a partial decodes keeps growing, and so does its
cost. Words that two successive hypotheses of the same window agree on, up to a sentence
end they share, will not change any more: they are committed as completed text and cut
from the window. The last word is never committed (it may be cut off mid-word). When no
shared sentence end comes before the window reaches ``max_window`` seconds, what lies
more than half that limit in the past is committed regardless, so the window stays bounded.
"""

from __future__ import annotations

import re

from .decodes import Word

_SENTENCE_END = re.compile(r"[.!?。！？]['\"»”)]*$")
_NOT_WORD = re.compile(r"[^\w']+")


def word_key(word: str) -> str:
    """A word as hypotheses are compared: case, spacing and punctuation do not count."""
    return _NOT_WORD.sub("", word.lower())


class LocalAgreement:
    def __init__(self, max_window: float):
        self.max_window = max_window
        self._previous: list[Word] = []  # the last hypothesis, less what was committed of it

    def reset(self) -> None:
        """A new window (an utterance opened or closed): nothing to agree with yet."""
        self._previous = []

    def settled(self, words: list[Word], window: float, window_end: float) -> int:
        """How many leading ``words`` of this hypothesis to commit (0: none yet).

        ``window`` is the hypothesis' audio length and ``window_end`` its end in stream
        time, in seconds (word times are in stream time too). The rest is what the next
        hypothesis is compared with.
        """
        previous, self._previous = self._previous, words
        agreed = 0
        for a, b in zip(previous, words, strict=False):
            if word_key(a.word) != word_key(b.word):
                break
            agreed += 1
        cut = 0
        for i in range(min(agreed, len(words) - 1)):
            if _SENTENCE_END.search(words[i].word.strip()):
                cut = i + 1
        if cut == 0 and window >= self.max_window:
            horizon = window_end - self.max_window / 2
            cut = max((i + 1 for i, w in enumerate(words[:-1]) if w.end <= horizon), default=0)
            cut = max(cut, min(agreed, len(words) - 2))
        if cut > 0:
            self._previous = words[cut:]
        return cut
