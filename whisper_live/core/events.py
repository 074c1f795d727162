"""What a streaming session tells its client; each face puts these in its own wire format."""

from __future__ import annotations

from dataclasses import dataclass, field

from .transcript import StreamSegment


@dataclass
class SegmentsChanged:
    """The last N completed segments plus the current partial, as clients expect them."""

    segments: list[StreamSegment]
    # Where the speech of each final this update delivers ended (stream seconds): with the
    # time that audio arrived, a transport measures the latency its users feel.
    speech_ended: list[float] = field(default_factory=list)
    # How many completed segments this update shows for the first time (0: only the partial
    # changed). A transport that cannot send every update may drop one only if a later one
    # still shows what it completed.
    completed_added: int = 0

    def absorb(self, older: SegmentsChanged) -> bool:
        """Take the place of ``older``, not yet sent, if nothing it completed is lost by that:
        its new completed segments are still among the ones this update shows."""
        shown = sum(1 for s in self.segments if s.completed)
        if older.completed_added + self.completed_added > shown:
            return False
        self.completed_added += older.completed_added
        self.speech_ended = older.speech_ended + self.speech_ended
        return True


@dataclass
class LanguageDetected:
    language: str
    probability: float


@dataclass
class AudioLost:
    """A final decode failed even when tried again: this span of the stream (seconds) has no
    text. The client is told; a transcript with a silent hole would be a lie."""

    start: float
    end: float
    reason: str

    def describe(self) -> str:
        return (
            f"the speech from {self.start:.2f} s to {self.end:.2f} s could not be transcribed"
            f" ({self.reason}); it is missing from the transcript"
        )


Event = SegmentsChanged | LanguageDetected | AudioLost
