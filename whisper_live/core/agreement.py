"""LocalAgreement-2: which words of a growing window are settled, as in whisper_streaming.

In speech without a pause every partial decodes the open utterance's window again, one
second longer. Words that two successive hypotheses agree on, after what is already
committed, will not change any more: they are committed at once (completed text, never
taken back), so the client gets long speech word by word instead of at the next pause.

Committed words stay in the window, as context for Whisper, until a sentence ends (the
session then cuts the audio there); so each hypothesis starts with words already
committed. Those are recognised by text (the prefix that best matches the committed words
still in the window), as word times near a window's edge jitter; after a cut, a
hypothesis that begins by restating the last committed words loses them. The same filter
takes committed words out of the utterance's final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .decodes import Word

_SENTENCE_END = re.compile(r"[.!?。！？]['\"»”)]*$")
_NOT_WORD = re.compile(r"[^\w']+")

# Longest run of committed words a hypothesis may restate at its start, and how close in
# time it must begin to the committed end for that to count as a restatement.
_MAX_RESTATED = 5
# A word of lower probability is committed only once it ends this many seconds before the
# audio a hypothesis heard.
DOUBTFUL = 0.5
DOUBT_HOLD = 2.0
_RESTATE_WITHIN = 1.0
# Words two hypotheses must agree on right after one word they do not (see ``_past_one_change``).
AGREE_AFTER_CHANGE = 2
# A word this sure, ending this many seconds before the audio a hypothesis heard, is
# settled without a second hypothesis (``LocalAgreement.agreed``).
SURE = 0.9
SURE_BEFORE = 0.8


def _past_one_change(before: list[str], now: list[str], start: int) -> tuple[int, int]:
    """How many words of ``now`` two hypotheses agree on when one word at ``start`` may
    differ: replaced, dropped or added, followed by at least ``AGREE_AFTER_CHANGE`` words
    both say alike; ``start`` when there is no such run. Second: the words of ``before``
    that agreement covers.

    Whisper often changes its mind about one word in the middle of a window ("aforesaid",
    "aforementioned", "a force said") and agrees on everything around it. Prefix agreement
    then stalls until the window is forced, and the partial rewrites the whole tail after
    that word at every refresh. The newer hypothesis' reading is taken: it heard more
    (unless a beam decode settles it: ``LocalAgreement.change``)."""
    best = best_before = start
    for skip_before, skip_now in ((1, 1), (1, 0), (0, 1)):
        i, j = start + skip_before, start + skip_now
        run = 0
        while i + run < len(before) and j + run < len(now) and before[i + run] == now[j + run]:
            run += 1
        if run >= AGREE_AFTER_CHANGE and j + run > best:
            best, best_before = j + run, i + run
    return best, best_before


def reading_of(said: list[Word], words: list[Word], end: float | None = None) -> int:
    """How many leading ``words`` read ``said`` (another hypothesis' words for the same
    audio, ending at ``end``; by default its last word's end), whatever their count: the
    prefix closest to them by word edit distance, ties broken by where it ends in time.
    Text decides, not word times: those of a word near a window's edge can be off by more
    than a word."""
    if not said or not words:
        return 0
    end = said[-1].end if end is None else end
    keys = [word_key(w.word) for w in said]
    heard = [word_key(w.word) for w in words]
    row = list(range(len(heard) + 1))  # edit distance of keys[:i] and heard[:j], over j
    for i, key in enumerate(keys, 1):
        prev, row = row, [i] + [0] * len(heard)
        for j in range(1, len(heard) + 1):
            row[j] = min(prev[j - 1] + (key != heard[j - 1]), prev[j] + 1, row[j - 1] + 1)
    best = min(row)

    def distance_in_time(j: int) -> float:
        return abs((words[j - 1].end if j else words[0].start) - end)

    return min((j for j, d in enumerate(row) if d == best), key=distance_in_time)


def word_key(word: str) -> str:
    """A word as hypotheses are compared: case, spacing and punctuation do not count."""
    return _NOT_WORD.sub("", word.lower())


def ends_sentence(word: Word) -> bool:
    return bool(_SENTENCE_END.search(word.word.strip()))


@dataclass
class Committed:
    """The words committed so far in an utterance: what a hypothesis' new words come after."""

    # Committed words whose audio is still in the window: every hypothesis says them again.
    words: list[Word] = field(default_factory=list)
    end: float = float("-inf")  # stream seconds; -inf: nothing committed in this utterance
    tail: list[str] = field(default_factory=list)  # keys of the last committed words

    def new_words(self, words: list[Word]) -> list[Word]:
        """The words of a hypothesis (stream times) that are not committed yet."""
        if self.words:
            return words[self._restated(words) :]
        new = list(words)
        if self.tail and new and abs(new[0].start - self.end) < _RESTATE_WITHIN:
            # the window was cut after the committed words: a hypothesis may still begin
            # by saying the last of them again
            keys = [word_key(w.word) for w in new]
            for n in range(min(_MAX_RESTATED, len(self.tail), len(new)), 0, -1):
                if keys[:n] == self.tail[-n:]:
                    return new[n:]
        return new

    def _restated(self, words: list[Word]) -> int:
        """How many leading words of a hypothesis say the committed words in the window
        again (``reading_of``)."""
        return reading_of(self.words, words, self.end) if words else 0

    def add(self, words: list[Word]) -> None:
        if words:
            self.words = self.words + list(words)
            self.end = max(self.end, words[-1].end)
            self.tail = (self.tail + [word_key(w.word) for w in words])[-_MAX_RESTATED:]

    def cut(self, at: float) -> None:
        """The window now starts at ``at`` (stream seconds): the committed words before it
        are no longer in its audio."""
        self.words = [w for w in self.words if w.end > at + 1e-3]

    def copy(self) -> Committed:
        return Committed(list(self.words), self.end, list(self.tail))


class LocalAgreement:
    def __init__(self) -> None:
        self.committed = Committed()
        self._previous: list[Word] = []  # the last hypothesis' words not committed yet
        # Where ``agreed`` passed one word the two hypotheses read differently: its index
        # in the new words, and the previous hypothesis' reading (word keys) from there to
        # the end of the agreement; None when they agreed word for word.
        self.change: tuple[int, list[str]] | None = None

    def reset(self) -> None:
        """A new utterance: nothing committed in it, nothing to agree with yet."""
        self.committed = Committed()
        self._previous = []

    @property
    def pending(self) -> list[Word]:
        """The latest hypothesis' words past the committed ones: the partial to show."""
        return list(self._previous)

    def settled(self, words: list[Word], end: float | None = None) -> list[Word]:
        """The words of this hypothesis (stream times) to commit now (``agreed``), committed."""
        new, count, _ = self.agreed(words, end)
        return self._commit(new, count)

    def agreed(self, words: list[Word], end: float | None = None) -> tuple[list[Word], int, int]:
        """The new words of this hypothesis (stream times), how many of them are settled, and
        how many two hypotheses agree on (more than settled when a doubtful word is held):
        the longest prefix that the previous hypothesis' new words share (one changed word
        inside it allowed, ``_past_one_change``), up to a doubtful word (probability below
        ``DOUBTFUL``) that ends within ``DOUBT_HOLD`` seconds of ``end`` (the hypothesis'
        audio end; None: no hold). Greedy partials agree on a rare word the utterance's
        beam final would read better ("kat" for "cat"); held a little, it is the final's to
        decide when the speaker stops soon, and committed all the same when they go on.

        Past the agreement, when the previous hypothesis said no more, words Whisper is
        sure of (``SURE``) that end ``SURE_BEFORE`` seconds before ``end`` are settled too,
        on this one hypothesis: a word needs no second reading when the first is certain
        and heard whole, and waiting for the next partial is most of a committed word's
        latency. A word the previous hypothesis read otherwise waits for a second.

        Nothing is committed here: the caller does (``settled``, or ``commit``; or
        ``confirmed`` for the held words)."""
        new = self.committed.new_words(words)
        before = [word_key(w.word) for w in self._previous]
        now = [word_key(w.word) for w in new]
        agreed = 0
        for a, b in zip(before, now, strict=False):
            if a != b:
                break
            agreed += 1
        self.change = None
        if agreed < len(now):
            past, past_before = _past_one_change(before, now, agreed)
            if past > agreed:
                self.change = (agreed, before[agreed:past_before])
            agreed = past
        if end is None:
            return new, agreed, agreed
        for k, b in enumerate(new[:agreed]):
            if b.probability < DOUBTFUL and b.end > end - DOUBT_HOLD:
                return new, k, agreed
        if agreed >= len(before):  # past what the previous hypothesis said: heard once
            horizon = end - SURE_BEFORE
            while agreed < len(new) and new[agreed].probability >= SURE and new[agreed].end <= horizon:
                agreed += 1
        return new, agreed, agreed

    def confirmed(
        self, words: list[Word], held: list[Word], readings: list[list[str]] | None = None
    ) -> tuple[list[Word], list[Word]]:
        """Commit a beam decode's reading of ``held``: words greedy hypotheses agreed on
        but that were not committed, as a doubtful word was among them. The beam's reading
        is the prefix of its new words that best matches them (``reading_of``). Greedy
        partials agree on "there for" where the beam reads "therefore", as the utterance's
        final would; one beam decode of the window settles the doubt, instead of holding the
        word 2 s and committing the greedy reading anyway.

        Unless the beam reads them otherwise than every earlier reading in ``readings``
        (word keys; None: commit whatever it reads): then nothing is committed, and the
        beam's reading is returned second, for another beam decode with more audio to
        settle. A beam decode near the audio's edge drops a short doubtful word that the
        greedy partials and the utterance's final both read ("with the thousands" as "with
        thousands", docs/BENCHMARKS.md "with the thousands"): one reading against two is not
        settled. Returns (the words committed, the beam's disputed reading)."""
        new = self.committed.new_words(words)
        count = reading_of(held, new)
        reading = new[:count]
        if readings is not None and reading and [word_key(w.word) for w in reading] not in readings:
            self._commit(new, 0)
            return [], reading
        return self._commit(new, count), []

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

    def commit(self, new: list[Word], count: int) -> list[Word]:
        """Commit the first ``count`` of ``new`` (the new words of a hypothesis, as
        ``agreed`` returned them); the rest are what the next hypothesis is compared with."""
        return self._commit(new, count)

    def _commit(self, new: list[Word], count: int) -> list[Word]:
        commit, self._previous = new[:count], new[count:]
        self.committed.add(commit)
        return commit
