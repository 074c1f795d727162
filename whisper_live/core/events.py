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


@dataclass
class LanguageDetected:
    language: str
    probability: float


Event = SegmentsChanged | LanguageDetected
