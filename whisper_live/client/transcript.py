"""What a client keeps of a stream: the completed segments once each, the partial, the language.

The server re-sends the last N completed segments with every update (as WhisperLive does),
so the client has to recognise the ones it already holds; it does it the way WhisperLive's
client does (a completed segment counts only if it starts at or after the last one's end),
plus an exact-duplicate check for zero-length segments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .. import formats

_EPSILON = 1e-3


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


@dataclass
class Transcript:
    segments: list[Segment] = field(default_factory=list)  # completed, in order
    partial: Segment | None = None
    language: str | None = None
    language_probability: float | None = None
    disconnected: bool = False  # the server ended the stream (time limit) before the audio did
    final: bool = False  # the server closed normally after END_OF_AUDIO: nothing more will come

    def update(self, raw_segments: list[dict[str, Any]], offset: float = 0.0) -> list[Segment]:
        """Take one ``segments`` message; returns the completed segments that are new.
        ``offset``: where the connection's stream time 0 is in the whole stream (after a resume)."""
        new: list[Segment] = []
        partial = None
        for seg in (Segment.from_message(raw).shifted(offset) for raw in raw_segments):
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
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def text_with_partial(self) -> str:
        """What has been said so far, including words the server may still revise."""
        tail = self.partial.text.strip() if self.partial else ""
        return f"{self.text} {tail}".strip()

    def to_srt(self) -> str:
        return formats.to_srt(self.segments)

    def to_vtt(self) -> str:
        return formats.to_vtt(self.segments)

    def __str__(self) -> str:
        return self.text
