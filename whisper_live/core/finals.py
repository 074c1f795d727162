"""Final decodes delivered in utterance order, whatever order they finish in.

Finals of successive utterances may run at once (several decode workers, batches): a
later one that finishes first waits for those before it, so completed text never comes
out of order. A failed final is skipped, never waited for.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .decodes import DecodeResult
from .requests import DecodeRequest


@dataclass
class _Final:
    request: DecodeRequest
    result: DecodeResult | None = None
    failed: bool = False
    speech_end: int = 0  # sample where the utterance's speech ended

    @property
    def done(self) -> bool:
        return self.result is not None or self.failed


class OrderedFinals:
    def __init__(self):
        self._queue: deque[_Final] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def __contains__(self, request: DecodeRequest) -> bool:
        return any(final.request is request for final in self._queue)

    def add(self, request: DecodeRequest, speech_end: int, result: DecodeResult | None = None) -> None:
        """The next utterance's final (its speech ended at sample ``speech_end``), already
        decoded when ``result`` is given."""
        self._queue.append(_Final(request, result, speech_end=speech_end))

    def resolve(self, request: DecodeRequest, result: DecodeResult) -> None:
        for final in self._queue:
            if final.request is request:
                final.result = result

    def replace(self, request: DecodeRequest, again: DecodeRequest) -> None:
        """``again`` takes the place of ``request`` (decoded anew), awaiting its result."""
        for final in self._queue:
            if final.request is request:
                final.request, final.result = again, None

    def fail(self, request: DecodeRequest) -> None:
        for final in self._queue:
            if final.request is request:
                final.failed = True

    def ready(self) -> list[tuple[DecodeRequest, DecodeResult | None, int]]:
        """Take the finals now deliverable, in order, each with the sample its speech ended
        at; a failed one comes with no result."""
        out = []
        while self._queue and self._queue[0].done:
            final = self._queue.popleft()
            out.append((final.request, final.result, final.speech_end))
        return out
