"""What a client keeps of a stream: the completed segments once each, the partial, the language,
and the lines a person reads.

The server re-sends the last N completed segments with every update (as WhisperLive does),
so the client has to recognise the ones it already holds; it does it the way WhisperLive's
client does (a completed segment counts only if it starts at or after the last one's end),
plus an exact-duplicate check for zero-length segments.

Lines: the client streams word by word (``commit_after`` 0), and over WhisperLive's protocol
every commit is a completed segment of its own ("The two", "stray kittens gradually", "make
themselves at home."). What a person reads (the console, SRT/VTT, ``Transcript.text``) is
lines, grouped by the browser page's rules (``client/transcript.js``, ``Transcript.group``;
``group_lines`` here): consecutive segments join one line until one ends a sentence, the
speaker changes, the next starts after a pause, or the line would outgrow a caption. The raw
segments stay as they came (``Transcript.segments``, ``on_completed``).

The last line is still being written ("open") while its sentence is; it is also finished when
its utterance is over, though the model left it without a full stop (tiny.en often does on a
short phrase): ``close_lines``, the page's ``Transcript.close``, with the stream's progress
from ``StreamClock``. The server sends nothing in silence, so a clock, not a message, tells
that a line is over.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import formats

_EPSILON = 1e-3

# The page's constants (client/transcript.js); tests/unit/test_client_lines.py runs both.
# A line's most characters: a caption of two subtitle lines of 42 characters (the usual
# broadcast limit), so a line fits one caption and a long sentence is cut into caption-sized lines.
LINE_CHARS = 84
# A pause (seconds between a line's end and the next segment's start) that ends a line: a
# sentence the model left without a full stop still breaks where the speaker paused, and a
# line the stream has moved this far past with nothing pending (the server quiet meanwhile)
# is finished (``close_lines``).
LINE_PAUSE = 1.0
# Seconds without a message from the server after which it has stopped hearing speech. While
# an utterance is open the server sends an update about every second of speech, and some of
# them complete words with nothing left pending (it commits words a second or so after they
# were spoken); after an utterance's final it sends nothing until the next one. Measured for
# the page (tiny.en, word by word, a loaded 2-core machine): 0.2 to 1.0 s between updates
# inside utterances, 0.9 to 2.7 s after a final. Twice the cadence: a late partial does not
# finish a line, an utterance's end does within two seconds.
SERVER_QUIET = 2.0
# A sentence's end: . ? ! or … (or their CJK full-width forms), possibly followed by closing
# quotes or brackets.
SENTENCE_END = re.compile("[.?!\u2026\u3002\uff01\uff1f][\"'\u201d\u2019\u00bb)\\]\u300d\u300f]*$")
# Scripts written without spaces between words (Thai, kana, CJK ideographs and punctuation,
# full-width forms): two pieces of a line that meet in them join without one.
UNSPACED = re.compile("[\u0e00-\u0e7f\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float | None = None


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    completed: bool
    words: tuple[Word, ...] | None = None  # with word_timestamps
    speaker: str | None = None  # with enable_diarization, on a server that labels speakers

    def shifted(self, seconds: float) -> Segment:
        """The segment ``seconds`` later: a stream resumed on a new connection starts its clock
        at 0 where the audio it replays began."""
        if not seconds:
            return self
        words = (
            None
            if self.words is None
            else tuple(
                dataclasses.replace(w, start=w.start + seconds, end=w.end + seconds) for w in self.words
            )
        )
        return dataclasses.replace(self, start=self.start + seconds, end=self.end + seconds, words=words)

    @classmethod
    def from_message(cls, raw: dict[str, Any]) -> Segment:
        # WhisperLive sends times as strings ("12.340"); ours sends numbers.
        words = raw.get("words")
        return cls(
            float(raw["start"]),
            float(raw["end"]),
            str(raw.get("text", "")),
            bool(raw.get("completed")),
            None
            if words is None
            else tuple(
                Word(float(w["start"]), float(w["end"]), str(w.get("word", "")), w.get("probability"))
                for w in words
            ),
            raw.get("speaker"),
        )


@dataclass(frozen=True)
class Line:
    """Consecutive completed segments read as one line (see ``group_lines``): a sentence, or
    what a speaker said up to a pause, at most a caption long."""

    start: float
    end: float
    text: str
    speaker: str | None = None
    words: tuple[Word, ...] | None = None  # its segments' words, in order (with word_timestamps)
    open: bool = True  # no sentence end yet: the next segment may join it
    segments: tuple[Segment, ...] = ()  # the pieces, as the server completed them

    def as_dict(self, completed: bool = True) -> dict[str, Any]:
        """A WhisperLive-shaped segment (``transcription_callback``): start, end, text, completed,
        words, speaker."""
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "completed": completed,
            "words": None if self.words is None else [dataclasses.asdict(w) for w in self.words],
            "speaker": self.speaker,
        }


def _continues(line: Line | None, seg: Segment | Line, partial: bool = False) -> bool:
    """Whether ``seg`` (a completed segment, or with ``partial`` the partial) joins ``line``: the
    line has no sentence end yet, the speaker is the same, no pause between them and the line
    stays a caption long. A partial carries no speaker (the server labels completed segments
    only), so it never continues a speaker's line: its words may be the next speaker's."""
    text = seg.text.strip()
    if line is None or not line.open or not text:
        return False
    if (line.speaker or "") != ((not partial and seg.speaker) or ""):
        return False
    if seg.start - line.end >= LINE_PAUSE:
        return False
    return len(line.text) + 1 + len(text) <= LINE_CHARS


def _joined(line: Line, seg: Segment | Line) -> Line:
    text = seg.text.strip()
    tight = bool(UNSPACED.match(line.text[-1])) and bool(UNSPACED.match(text[0]))
    words = line.words if seg.words is None else (line.words or ()) + seg.words
    return dataclasses.replace(
        line,
        end=max(line.end, seg.end),
        text=line.text + text if tight else f"{line.text} {text}",
        words=words,
        open=not SENTENCE_END.search(text),
        segments=line.segments + _pieces(seg),
    )


def _pieces(seg: Segment | Line) -> tuple[Segment, ...]:
    return seg.segments if isinstance(seg, Line) else (seg,)


def _line_of(seg: Segment | Line) -> Line:
    text = seg.text.strip()
    return Line(
        seg.start, seg.end, text, seg.speaker or None, seg.words, not SENTENCE_END.search(text), _pieces(seg)
    )


def _add(lines: list[Line], seg: Segment | Line) -> None:
    """Group one more segment (in time order) onto ``lines``."""
    if not seg.text.strip():
        return
    last = lines[-1] if lines else None
    if last is not None and _continues(last, seg):
        lines[-1] = _joined(last, seg)
    else:
        lines.append(_line_of(seg))


def group_lines(segments: Iterable[Segment | Line]) -> list[Line]:
    """Completed segments (in time order) grouped into lines, by the page's rules
    (``client/transcript.js``, ``Transcript.group``): a segment joins the line before it unless
    that line ended a sentence (``SENTENCE_END``), the speaker changed, the segment starts
    ``LINE_PAUSE`` or more after the line's end, or the line would pass ``LINE_CHARS``. A
    segment longer than that stays one line (segments are never cut); pieces in scripts
    without spaces (``UNSPACED``) join without one. Grouping lines again gives the same lines."""
    lines: list[Line] = []
    for seg in segments:
        _add(lines, seg)
    return lines


class StreamClock:
    """What the client knows of a live stream's progress from the server's messages, for
    ``close_lines`` (the page's ``StreamClock``). ``position``: how far the stream has surely
    moved (seconds, the transcript's time): when a message arrives, the stream is at least at
    the furthest end it shows, and a live stream moves on at least as fast as the clock, so
    the furthest (end - arrival) plus the time now; at most ``cap``, the audio the client has
    sent (after the last audio nothing follows). ``quiet``: seconds since the last message.
    Times are ``time.monotonic()`` unless given."""

    def __init__(self) -> None:
        self.lead = -math.inf
        self.cap = math.inf
        self.last: float | None = None  # when the last message arrived

    def heard(self, segments: Iterable[Segment], now: float | None = None) -> None:
        """A server message showing ``segments`` (times in the transcript's time) arrived ``now``."""
        now = time.monotonic() if now is None else now
        self.last = now
        for seg in segments:
            if math.isfinite(seg.end):
                self.lead = max(self.lead, seg.end - now)

    def read(self, now: float | None = None) -> tuple[float | None, float | None]:
        """(position, quiet) in seconds; None each before anything was heard."""
        if self.last is None:
            return None, None
        now = time.monotonic() if now is None else now
        return min(self.cap, now + self.lead), now - self.last


def utterance_ended(
    line: Line,
    partial: Segment | None = None,
    position: float | None = None,
    quiet: float | None = None,
    ended: bool = False,
) -> bool:
    """Whether the utterance ``line`` (the last line, open: its sentence has not ended) belongs
    to is over, so that the line can grow no more and is finished: the stream has ended (no
    more text will come); or no partial is pending, the stream has moved ``LINE_PAUSE`` or
    more past the line's end (a piece starting there would begin a line of its own anyway)
    and the server has been quiet for ``SERVER_QUIET``; or the partial pending starts
    ``LINE_PAUSE`` or more after the line's end (the speaker went on after a pause: those
    words stand apart, and so will they once completed). ``position`` and ``quiet`` come from
    ``StreamClock`` (None: not known). The page's ``Transcript.utteranceEnded``.

    The quiet is needed because mid-utterance the server may complete words with nothing
    left pending, a second or so after they were spoken: by position alone, lines would close
    between two words."""
    if ended:
        return True
    if partial is not None and partial.text.strip():
        return partial.start - line.end >= LINE_PAUSE
    if position is None or quiet is None:
        return False
    return position - line.end >= LINE_PAUSE and quiet >= SERVER_QUIET


def close_lines(
    lines: list[Line],
    partial: Segment | None = None,
    position: float | None = None,
    quiet: float | None = None,
    ended: bool = False,
) -> list[Line]:
    """``lines`` (from ``group_lines``), the last one closed (``open`` False) if its utterance
    is over (``utterance_ended``): the one rule for the console, ``closed_lines`` and
    ``transcription_callback`` (the page's ``Transcript.close``). Returns a new list; closing
    never changes how segments group: a late piece that continues the line (it started
    within ``LINE_PAUSE``) opens it again."""
    if lines and lines[-1].open and utterance_ended(lines[-1], partial, position, quiet, ended):
        return [*lines[:-1], dataclasses.replace(lines[-1], open=False)]
    return list(lines)


@dataclass
class Transcript:
    segments: list[Segment] = field(default_factory=list)  # completed, in order
    partial: Segment | None = None
    language: str | None = None
    language_probability: float | None = None
    disconnected: bool = False  # the server ended the stream (time limit) before the audio did
    final: bool = False  # the server closed normally after END_OF_AUDIO: nothing more will come
    # How far the stream has moved and how long the server has been quiet (see close_lines).
    clock: StreamClock = field(default_factory=StreamClock, repr=False, compare=False)
    # ``lines`` grouped so far: segments are only appended, so only new ones are grouped.
    _lines: list[Line] = field(default_factory=list, init=False, repr=False, compare=False)
    _grouped: tuple[int, Segment | None] = field(default=(0, None), init=False, repr=False, compare=False)

    def update(self, raw_segments: list[dict[str, Any]], offset: float = 0.0) -> list[Segment]:
        """Take one ``segments`` message; returns the completed segments that are new.
        ``offset``: where the connection's stream time 0 is in the whole stream (after a resume)."""
        new: list[Segment] = []
        partial = None
        heard = [Segment.from_message(raw).shifted(offset) for raw in raw_segments]
        self.clock.heard(heard)
        for seg in heard:
            if not seg.completed:
                partial = seg
                continue
            last = self.segments[-1] if self.segments else None
            if last is None or (seg.start >= last.end - _EPSILON and seg != last):
                self.segments.append(seg)
                new.append(seg)
        self.partial = partial
        return new

    @property
    def lines(self) -> list[Line]:
        """The completed segments grouped into lines (``group_lines``): what the console, the
        subtitles and ``text`` are made of."""
        count, last = self._grouped
        if count > len(self.segments) or (count and self.segments[count - 1] is not last):
            count, self._lines = 0, []  # the segments were replaced, not appended to
        for seg in self.segments[count:]:
            _add(self._lines, seg)
        self._grouped = (len(self.segments), self.segments[-1] if self.segments else None)
        return list(self._lines)

    @property
    def ended(self) -> bool:
        """The stream is over (``final`` or ``disconnected``): no more text will come."""
        return self.final or self.disconnected

    def closed_lines_at(self, now: float | None = None) -> list[Line]:
        """``closed_lines`` at the time ``now`` (``time.monotonic()``; a test gives its own)."""
        position, quiet = self.clock.read(now)
        lines = close_lines(self.lines, self.partial, position, quiet, self.ended)
        return lines[:-1] if lines and lines[-1].open else lines

    @property
    def closed_lines(self) -> list[Line]:
        """The lines that are finished: all but an open last one, and that one too once its
        utterance is over (``close_lines``: the stream ended, or it paused with the server
        quiet, or the pending partial comes after a pause). A line before the last never
        changes; the last, closed by a pause, opens again in the rare case a late piece
        continues it (the console prints that piece as a continuation)."""
        return self.closed_lines_at()

    @property
    def lines_with_partial(self) -> list[Line]:
        """The lines and the partial as a person sees them live: the partial on the open last
        line when it continues it (as the page shows it), else on a line of its own."""
        lines = self.lines
        partial = self.partial
        if partial is None or not partial.text.strip():
            return lines
        if lines and _continues(lines[-1], partial, partial=True):
            return [*lines[:-1], _joined(lines[-1], partial)]
        return [*lines, _line_of(partial)]

    @property
    def text(self) -> str:
        return " ".join(line.text for line in self.lines)

    @property
    def text_with_partial(self) -> str:
        """What has been said so far, including words the server may still revise."""
        return " ".join(line.text for line in self.lines_with_partial)

    def to_srt(self) -> str:
        """SubRip, a cue per line (not per word-by-word piece)."""
        return formats.to_srt(self.lines)

    def to_vtt(self) -> str:
        """WebVTT, a cue per line."""
        return formats.to_vtt(self.lines)

    def __str__(self) -> str:
        return self.text
