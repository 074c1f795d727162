"""What a streaming session tells its client; each face puts these in its own wire format."""

from __future__ import annotations

from dataclasses import dataclass

from .transcript import StreamSegment


@dataclass
class SegmentsChanged:
    """The last N completed segments plus the current partial, as clients expect them."""

    segments: list[StreamSegment]


@dataclass
class LanguageDetected:
    language: str
    probability: float


Event = SegmentsChanged | LanguageDetected
