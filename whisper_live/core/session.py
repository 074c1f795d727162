"""The per-client streaming state machine, with no sockets and no model in it.

Feed it PCM bytes; it runs the VAD, decides when a decode is worth doing and hands out
``DecodeRequest``s; give it each ``DecodeResult`` back and it produces events (segments to
show, the detected language). Whoever drives it (the WebSocket transport in production, a
plain loop in tests) owns the I/O and the model, as h11 leaves sockets to its caller.

How text is produced:
- Silence is never decoded: an utterance opens when Silero says speech and closes after
  ``min_silence_duration_ms`` of silence (the endpoint).
- While it is open, a greedy decode of the utterance so far refreshes the partial text
  every ``partial_interval`` seconds of new audio.
- After ``speculate_silence_ms`` of silence the final decode (beam search) starts at once;
  if the endpoint follows with no new speech, that result is the final and is sent the
  moment it exists, so a final costs max(endpoint wait, decode) instead of the sum. If the
  speaker goes on, the result just serves as a fresher partial.
- In long speech with no pause, words two successive partials agree on (up to a sentence
  end) are committed as completed segments and cut from the window (LocalAgreement, as in
  whisper_streaming), so the window and the cost of each update stay bounded.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .decodes import DecodeOptions, DecodeResult, Segment, Word, is_silence
from .pcm import SAMPLE_RATE, PcmDecoder
from .vad import CHUNK, StreamingVad, VadParameters

_SENTENCE_END = re.compile(r"[.!?。！？]['\"»”)]*$")
_WORD_KEY = re.compile(r"[^\w']+")


@dataclass
class SessionOptions:
    language: str | None = None
    task: str = "transcribe"
    use_vad: bool = True
    send_last_n_segments: int = 10
    no_speech_thresh: float = 0.45
    initial_prompt: str | None = None
    hotwords: str | None = None
    word_timestamps: bool = False
    vad: VadParameters = field(default_factory=VadParameters)
    audio_format: str | None = None
    beam_size: int = 5
    partial_interval: float = 1.0
    speculate_silence_ms: int = 200
    commit_after: float = 10.0
    max_window: float = 24.0
    prompt_chars: int = 200
    condition_on_previous_text: bool = True
    language_lock_probability: float = 0.5
    fit_window: bool = True  # encode at the utterance's own length (decoding.decode_fitted_batch)


@dataclass
class DecodeRequest:
    id: int
    kind: str  # "partial" or "final"
    utterance: int
    audio: np.ndarray
    start_sample: int  # absolute index of audio[0] in the stream
    options: DecodeOptions

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.audio)


@dataclass
class StreamSegment:
    start: float
    end: float
    text: str
    completed: bool
    words: list[Word] | None = None
    # The last segment of an utterance's final, delivered after its endpoint (Deepgram's
    # speech_final); segments committed during long speech do not end an utterance.
    ends_utterance: bool = False

    def to_dict(self) -> dict:
        out = {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "text": self.text,
            "completed": self.completed,
        }
        if self.words is not None:
            out["words"] = [
                {
                    "start": round(w.start, 3),
                    "end": round(w.end, 3),
                    "word": w.word,
                    "probability": round(w.probability, 3),
                }
                for w in self.words
            ]
        return out


@dataclass
class SegmentsChanged:
    """The last N completed segments plus the current partial, as clients expect them."""

    segments: list[StreamSegment]


@dataclass
class LanguageDetected:
    language: str
    probability: float


Event = SegmentsChanged | LanguageDetected


@dataclass
class _Final:
    request: DecodeRequest | None
    result: DecodeResult | None = None
    failed: bool = False


class StreamingSession:
    def __init__(self, options: SessionOptions | None = None, vad: StreamingVad | None = None):
        self.options = options or SessionOptions()
        self._pcm = PcmDecoder(self.options.audio_format)
        self._vad = vad if vad is not None else (StreamingVad() if self.options.use_vad else None)
        self._ids = itertools.count(1)
        self._utterances = itertools.count(1)
        self.language = self.options.language
        self._language_sent = self.options.language is not None
        self.completed: list[StreamSegment] = []
        self.partial: StreamSegment | None = None
        self.ended = False
        # Set by the driver: whether a partial decode would run now. When the decoders are
        # busy, partials are skipped rather than queued (finals are never skipped).
        self.partials_allowed = True
        # Likewise for starting the final early at the first pause: only worth it when a
        # decoder is idle, since the speaker may go on and waste it.
        self.speculation_allowed = True
        # audio buffer: samples from absolute index _buf_start to _total
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0
        self._total = 0
        self._unvadded = np.zeros(0, np.float32)
        # the open utterance
        self._utt: int | None = None
        self._utt_start = 0
        self._last_speech_end = 0
        self._speech_samples = 0
        self._silence_run = 0
        self._last_partial_at = 0
        self._prev_words: list[Word] = []
        self._speculative: DecodeRequest | None = None
        self._speculative_result: DecodeResult | None = None
        # decode bookkeeping
        self._partial_inflight: DecodeRequest | None = None
        self._finals: deque[_Final] = deque()
        self._outbox: list[DecodeRequest] = []
        self._events: list[Event] = []
        self._partial_seq = 0  # id of the request behind the partial on screen
        self._partial_utt = 0  # and the utterance it belongs to

    # ---------------------------------------------------------------- input
    def feed(self, data: bytes) -> None:
        if self.ended:
            raise RuntimeError("audio after end of stream")
        self._ingest(self._pcm.feed(data))

    def feed_samples(self, samples: np.ndarray) -> None:
        """Float32 samples at 16 kHz, bypassing byte decoding (in-process callers, tests)."""
        self._ingest(np.asarray(samples, np.float32))

    def end_of_audio(self) -> None:
        """No more audio: whatever is buffered becomes a final, nothing is dropped."""
        if self.ended:
            return
        self._ingest(self._pcm.flush(), flush=True)
        if self._utt is not None and self._speech_samples > 0:
            self._close_utterance(self._total)
        self.ended = True
        self._partial_inflight = None
        self._set_partial(None)

    # ---------------------------------------------------------------- output
    def take_requests(self) -> list[DecodeRequest]:
        out, self._outbox = self._outbox, []
        return out

    def take_events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    @property
    def finished(self) -> bool:
        """Ended and every final delivered: the transport may close."""
        return self.ended and not self._finals and not self._outbox

    @property
    def stream_seconds(self) -> float:
        return self._total / SAMPLE_RATE

    @property
    def pending_finals(self) -> int:
        return len(self._finals)

    @property
    def speech_open(self) -> bool:
        """The VAD heard speech that no endpoint has closed yet."""
        return self._utt is not None

    def transcript(self) -> str:
        return "".join(s.text for s in self.completed).strip()

    # ---------------------------------------------------------------- results
    def decode_done(self, request: DecodeRequest, result: DecodeResult) -> None:
        self._maybe_language(result)
        if request.kind == "partial":
            if self._partial_inflight is request:
                self._partial_inflight = None
            self._on_partial(request, result)
        else:
            self._on_final(request, result)

    def decode_failed(self, request: DecodeRequest, error: BaseException) -> None:
        """A failed partial is forgotten; a failed final is dropped in order (never blocks the rest)."""
        if request.kind == "partial":
            if self._partial_inflight is request:
                self._partial_inflight = None
            return
        if request is self._speculative:
            self._speculative = None
        for final in self._finals:
            if final.request is request:
                final.failed = True
        self._deliver_finals()

    # ---------------------------------------------------------------- internals
    def _ingest(self, samples: np.ndarray, flush: bool = False) -> None:
        if len(samples):
            self._buf = np.concatenate([self._buf, samples]) if len(self._buf) else samples.copy()
            self._total += len(samples)
            self._unvadded = np.concatenate([self._unvadded, samples]) if len(self._unvadded) else samples
        usable = len(self._unvadded) // CHUNK * CHUNK
        if flush:
            usable = len(self._unvadded)
        if usable == 0:
            return
        block, self._unvadded = self._unvadded[:usable], self._unvadded[usable:]
        chunk_start = self._total - len(self._unvadded) - usable
        if self._vad is not None:
            probs = self._vad(block[: len(block) // CHUNK * CHUNK]) if len(block) >= CHUNK else np.zeros(0)
        else:
            probs = np.ones(len(block) // CHUNK, np.float32)
        for i, p in enumerate(probs):
            self._on_chunk(chunk_start + i * CHUNK, float(p))
        self._maybe_partial()
        self._trim()

    def _on_chunk(self, start: int, prob: float) -> None:
        vad = self.options.vad
        end = start + CHUNK
        if self._utt is None:
            if prob >= vad.threshold:
                self._utt = next(self._utterances)
                pad = vad.speech_pad_ms * SAMPLE_RATE // 1000
                self._utt_start = max(self._buf_start, start - pad)
                self._speech_samples = CHUNK
                self._last_speech_end = end
                self._silence_run = 0
                self._last_partial_at = self._utt_start
                self._prev_words = []
                self._speculative = None
                self._speculative_result = None
            return
        if prob >= vad.silence_threshold:
            self._speech_samples += CHUNK
            self._last_speech_end = end
            self._silence_run = 0
            if self._speculative is not None and prob >= vad.threshold:
                self._speculative = None  # the speaker went on: that decode is only a partial now
            return
        self._silence_run += CHUNK
        if self._silence_run >= vad.min_silence_duration_ms * SAMPLE_RATE // 1000:
            self._close_utterance(min(end, self._last_speech_end + vad.speech_pad_ms * SAMPLE_RATE // 1000))
        elif (
            self._speculative is None
            and self.speculation_allowed
            and self._silence_run >= self.options.speculate_silence_ms * SAMPLE_RATE // 1000
            and self._speech_samples >= vad.min_speech_duration_ms * SAMPLE_RATE // 1000
        ):
            self._speculative = self._request("final", end)
            self._speculative_result = None

    def _close_utterance(self, end: int) -> None:
        vad = self.options.vad
        long_enough = self._speech_samples >= vad.min_speech_duration_ms * SAMPLE_RATE // 1000
        spec = self._speculative
        if long_enough:
            if spec is not None and spec.end_sample >= self._last_speech_end:
                final = _Final(spec, self._speculative_result)
            else:
                final = _Final(self._request("final", end))
            self._finals.append(final)
        self._utt = None
        self._speculative = None
        self._speculative_result = None
        self._prev_words = []
        self._deliver_finals()
        if not long_enough:
            self._set_partial(None)

    def _request(self, kind: str, end: int) -> DecodeRequest:
        opts = self.options
        begin = self._utt_start
        audio = self._buf[begin - self._buf_start : end - self._buf_start]
        long_window = (end - begin) / SAMPLE_RATE >= opts.commit_after
        decode = DecodeOptions(
            language=self.language,
            task=opts.task,
            initial_prompt=self._prompt(),
            hotwords=opts.hotwords,
            condition_on_previous_text=False,
            no_speech_threshold=opts.no_speech_thresh,
            fit_window=opts.fit_window,
        )
        if kind == "partial":
            decode.beam_size = decode.best_of = 1
            decode.temperature = 0.0
            decode.word_timestamps = long_window
            decode.without_timestamps = not long_window
            # Long windows, whose agreed words become completed text, keep the padded 30 s
            # window; fitted windows are tuned for whole utterances.
            decode.fit_window = opts.fit_window and not long_window
        else:
            decode.beam_size = opts.beam_size
            decode.word_timestamps = opts.word_timestamps or long_window
        req = DecodeRequest(next(self._ids), kind, self._utt or 0, audio.copy(), begin, decode)
        self._outbox.append(req)
        return req

    def _prompt(self) -> str | None:
        parts = []
        if self.options.initial_prompt:
            parts.append(self.options.initial_prompt.strip())
        if self.options.condition_on_previous_text and self.completed:
            history = self.transcript()[-self.options.prompt_chars :]
            parts.append(
                history[history.find(" ") + 1 :] if len(history) == self.options.prompt_chars else history
            )
        return " ".join(parts) or None

    def _maybe_partial(self) -> None:
        if self._utt is None or self._partial_inflight is not None or self.ended or not self.partials_allowed:
            return
        opts = self.options
        if self._speculative is not None:
            return  # a decode of this very audio is already under way
        if self._speech_samples < opts.vad.min_speech_duration_ms * SAMPLE_RATE // 1000:
            return
        if self._total - self._last_partial_at < opts.partial_interval * SAMPLE_RATE:
            return
        if self._silence_run >= CHUNK * 3:
            return  # a pause: the speculative final is about to cover it
        self._last_partial_at = self._total
        self._partial_inflight = self._request("partial", self._total)

    def _trim(self) -> None:
        """Keep only what an open utterance, a pending decode or the speech pad still needs."""
        keep_from = self._total - self.options.vad.speech_pad_ms * SAMPLE_RATE // 1000
        if self._utt is not None:
            keep_from = min(keep_from, self._utt_start)
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start = keep_from

    def _on_partial(self, request: DecodeRequest, result: DecodeResult) -> None:
        if self.ended or request.utterance != self._utt or request.start_sample != self._utt_start:
            return
        segments = self._usable(request, result)
        if request.options.word_timestamps:
            self._commit_agreed(request, segments)
            if request.start_sample != self._utt_start:
                segments = [s for s in segments if s.start >= self._utt_start / SAMPLE_RATE]
                # the commit consumed part of this hypothesis; the rest stays a partial
                words = [
                    w for s in segments for w in (s.words or []) if w.start * SAMPLE_RATE >= self._utt_start
                ]
                self._show_partial(request, segments, words)
                return
        self._show_partial(request, segments)

    def _show_partial(
        self, request: DecodeRequest, segments: list[Segment], words: list[Word] | None = None
    ) -> None:
        if request.id < self._partial_seq:
            return  # an older hypothesis finished after a newer one
        self._partial_seq = request.id
        self._partial_utt = request.utterance
        if words:
            text, start, end = "".join(w.word for w in words), words[0].start, words[-1].end
        else:
            text = "".join(s.text for s in segments)
            start = segments[0].start if segments else request.start_sample / SAMPLE_RATE
            end = request.end_sample / SAMPLE_RATE
        if not text.strip():
            return
        floor = self.completed[-1].end if self.completed else 0.0
        self._set_partial(StreamSegment(max(start, floor), max(end, floor), text, False))

    def _commit_agreed(self, request: DecodeRequest, segments: list[Segment]) -> None:
        words = [w for s in segments for w in (s.words or [])]
        prev, self._prev_words = self._prev_words, words
        agreed = 0
        for a, b in zip(prev, words, strict=False):
            if _word_key(a.word) != _word_key(b.word):
                break
            agreed += 1
        # commit up to the last sentence end both hypotheses share, never the final word
        cut = 0
        for i in range(min(agreed, len(words) - 1)):
            if _SENTENCE_END.search(words[i].word.strip()):
                cut = i + 1
        window = (request.end_sample - self._utt_start) / SAMPLE_RATE
        if cut == 0 and window >= self.options.max_window:
            # no sentence end in sight: commit what is old enough to be stable regardless
            horizon = (request.end_sample / SAMPLE_RATE) - self.options.max_window / 2
            cut = max((i + 1 for i, w in enumerate(words[:-1]) if w.end <= horizon), default=0)
            cut = max(cut, min(agreed, len(words) - 2))
        if cut <= 0:
            return
        committed = words[:cut]
        self._append_completed(
            [
                StreamSegment(
                    committed[0].start,
                    committed[-1].end,
                    "".join(w.word for w in committed),
                    True,
                    committed if self.options.word_timestamps else None,
                )
            ]
        )
        new_start = max(self._utt_start, int(round(committed[-1].end * SAMPLE_RATE)))
        self._utt_start = min(new_start, self._total)
        self._prev_words = words[cut:]
        self._speculative = None
        self._speculative_result = None
        self._emit_segments()

    def _on_final(self, request: DecodeRequest, result: DecodeResult) -> None:
        if request is self._speculative:
            self._speculative_result = result
        if any(final.request is request for final in self._finals):
            for final in self._finals:
                if final.request is request:
                    final.result = result
            self._deliver_finals()
        elif not self.ended and request.utterance == self._utt and request.start_sample == self._utt_start:
            # a speculative final the speaker talked past: still the freshest partial
            self._show_partial(request, self._usable(request, result))

    def _deliver_finals(self) -> None:
        delivered = False
        while self._finals and (self._finals[0].result is not None or self._finals[0].failed):
            final = self._finals.popleft()
            if final.request is not None and self._partial_utt <= final.request.utterance:
                self.partial = None
            if final.result is not None and final.request is not None:
                segments = self._usable(final.request, final.result)
                self._append_completed(
                    [
                        StreamSegment(
                            s.start,
                            s.end,
                            s.text,
                            True,
                            s.words if self.options.word_timestamps else None,
                            ends_utterance=s is segments[-1],
                        )
                        for s in segments
                    ]
                )
            delivered = True
        if delivered:
            self._emit_segments()

    def _usable(self, request: DecodeRequest, result: DecodeResult) -> list[Segment]:
        """Result segments in stream time, minus Whisper's silence and loop hallucinations."""
        offset = request.start_sample / SAMPLE_RATE
        limit = request.end_sample / SAMPLE_RATE
        out = []
        for seg in result.segments:
            if not seg.text.strip() or not _WORD_KEY.sub("", seg.text):
                continue
            if is_silence(seg, self.options.no_speech_thresh):
                continue
            seg = seg.shifted(offset)
            seg.end = min(max(seg.end, seg.start), limit)
            out.append(seg)
        return out

    def _append_completed(self, segments: list[StreamSegment]) -> None:
        for seg in segments:
            floor = self.completed[-1].end if self.completed else 0.0
            seg.start = max(seg.start, floor)
            seg.end = max(seg.end, seg.start)
            self.completed.append(seg)

    def _set_partial(self, segment: StreamSegment | None) -> None:
        if segment == self.partial:
            return
        self.partial = segment
        self._emit_segments()

    def _emit_segments(self) -> None:
        n = self.options.send_last_n_segments
        shown = self.completed[-n:] if n > 0 else []
        if self.partial is not None:
            shown = [*shown, self.partial]
        self._events = [e for e in self._events if not isinstance(e, SegmentsChanged)]
        self._events.append(SegmentsChanged(shown))

    def _maybe_language(self, result: DecodeResult) -> None:
        if self._language_sent or not result.language:
            return
        self._language_sent = True
        if result.language_probability >= self.options.language_lock_probability:
            self.language = result.language
        self._events.append(LanguageDetected(result.language, result.language_probability))


def _word_key(word: str) -> str:
    return _WORD_KEY.sub("", word.lower())
