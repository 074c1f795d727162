"""What a stream's client is shown: completed segments in time order, and one partial."""

from __future__ import annotations

from dataclasses import dataclass, field

from .decodes import Word


@dataclass
class StreamSegment:
    start: float  # seconds since the stream began
    end: float
    text: str
    completed: bool  # False: the partial, still subject to change
    words: list[Word] | None = None
    # The last segment of an utterance's final, delivered after its endpoint (Deepgram's
    # speech_final); segments committed during long speech do not end an utterance.
    ends_utterance: bool = False


@dataclass
class SessionTranscript:
    completed: list[StreamSegment] = field(default_factory=list)
    partial: StreamSegment | None = None

    @property
    def end(self) -> float:
        """Where completed text ends: nothing shown later may start before it."""
        return self.completed[-1].end if self.completed else 0.0

    def complete(self, segments: list[StreamSegment]) -> None:
        """Append completed segments, moved forward where a decode put them before the end."""
        for seg in segments:
            seg.start = max(seg.start, self.end)
            seg.end = max(seg.end, seg.start)
            self.completed.append(seg)

    def shown(self, last_n: int) -> list[StreamSegment]:
        """The last ``last_n`` completed segments and the partial, as clients expect them."""
        shown = self.completed[-last_n:] if last_n > 0 else []
        return [*shown, self.partial] if self.partial is not None else shown

    def text(self) -> str:
        return "".join(s.text for s in self.completed).strip()
