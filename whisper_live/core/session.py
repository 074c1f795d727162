"""The per-client streaming session, with no sockets and no model in it.

Feed it PCM bytes; it decides when a decode is worth doing and hands out
``DecodeRequest``s; give it each ``DecodeResult`` back and it produces events (segments to
show, the detected language). Whoever drives it (the engine's ``StreamRunner`` in
production, a plain loop in tests) owns the I/O and the model, as h11 leaves sockets to
its caller.

It composes the parts of the core: ``SpeechChunks`` (VAD per 32 ms), ``Endpointer``
(utterances), ``LocalAgreement`` (committing long speech), ``OrderedFinals``, the
hallucination filter and the ``SessionTranscript``; what is left here is the decode policy:
- Silence is never decoded: only open utterances are.
- While one is open, a greedy decode of the utterance so far refreshes the partial text
  every ``partial_interval`` seconds of new audio, if the ``DecodeBudget`` allows it.
- After ``speculate_silence_ms`` of silence the final decode (beam search) starts at once,
  if the budget allows it; if the endpoint follows with no new speech, that result is the
  final and is sent the moment it exists, so a final costs max(endpoint wait, decode)
  instead of the sum. If the speaker goes on, the result just serves as a fresher partial.
- In long speech with no pause, every partial carries word times, and the words two
  successive partials agree on (LocalAgreement-2) are committed at once: completed text,
  word by word, while the speaker goes on; the partial shows only the words after them.
  Committed words stay in the window as context until their sentence ends; then the
  window is cut there (or at the last committed word once it is ``cut_after`` long), and
  the text before the window is the prompt. The final leaves out the committed words.
  Agreed words Whisper doubts, or one word two partials read differently, are decoded
  once more with the beam before they are committed (``_confirm``), as an optional partial,
  and committed once two readings agree.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .agreement import DOUBTFUL, Committed, LocalAgreement, ends_sentence, reading_of, word_key
from .buffer import SampleBuffer
from .decodes import DecodeResult, Segment, Word
from .endpointing import Activity, Endpointer, samples
from .events import AudioLost, Event, LanguageDetected, SegmentsChanged
from .finals import OrderedFinals
from .hallucination import drop_repeat, is_speech, trim_cut
from .options import SessionOptions
from .pcm import SAMPLE_RATE
from .requests import DecodeBudget, DecodeKind, DecodeRequest, UnlimitedBudget, decode_options
from .transcript import SessionTranscript, StreamSegment
from .vad import CHUNK, SpeechChunks

# Each partial's hypothesis and what it committed, at DEBUG: how a word by word transcript
# came to read as it does (docs/BENCHMARKS.md, "with the thousands").
log = logging.getLogger(__name__)

# A partial is not started this deep into a pause: the speculative final will cover it.
_PAUSE_BEFORE_FINAL = 3 * CHUNK
# A partial's last word ending this close to the end of its audio may be cut off mid-word.
_CUT_WORD = 0.25
# A partial shows no word from the first one Whisper is this unsure of (see ``_showable``);
# where words may be committed, from the first one a beam decode would confirm before its
# commit (``agreement.DOUBTFUL``): at 0.3 the greedy and the beam readings of such a word
# took turns on screen (docs/BENCHMARKS.md, "Beam confirms"). Not in an utterance whose
# final decides it all (``commit_after``): there 0.5 left short ones without any partial.
_SHOW_BELOW = 0.3
_SHOW_BELOW_COMMITTING = DOUBTFUL
# Readings of held words (the greedy agreement's, then beam decodes' that differ from every
# earlier one) after which a beam decode's reading is committed whatever it reads: words
# are held for at most this many beam decodes (``_confirm``).
CONFIRM_READINGS = 3


@dataclass
class _Speculation:
    """The final started at a pause, before the endpoint, and its result once it is in."""

    request: DecodeRequest
    result: DecodeResult | None = None


class StreamingSession:
    def __init__(
        self,
        options: SessionOptions | None = None,
        vad: Callable[[np.ndarray], np.ndarray] | None = None,
        budget: DecodeBudget | None = None,
    ):
        self.options = options or SessionOptions()
        # Asked before each optional decode; the StreamRunner installs its scheduler's.
        self.budget: DecodeBudget = budget if budget is not None else UnlimitedBudget()
        if vad is None and self.options.use_vad:
            # The core loads no model: the VAD is handed in (engine.streams.new_session).
            raise ValueError("a session with use_vad needs a vad (see engine.streams.new_session)")
        self._chunks = SpeechChunks(vad)
        self._audio = SampleBuffer()
        self._endpoint = Endpointer(self.options.vad)
        self._agreement = LocalAgreement()
        # Completed segments at the end of the transcript that lie inside the open window
        # (committed, not yet cut): the audio holds them, so the prompt must not.
        self._window_committed = 0
        # Finals whose window holds committed words: where those end, to leave them out.
        self._committed_before: dict[int, Committed] = {}
        self._transcript = SessionTranscript()
        self._finals = OrderedFinals()
        self._speech_ended: list[float] = []  # of finals delivered since the last update
        self._completed_emitted = 0  # completed segments some update has shown
        self._failures: dict[int, str] = {}  # request id -> why that final failed
        self._forced: set[int] = set()  # ids of finals forced by the end of the stream
        self._ids = itertools.count(1)
        self.language = self.options.language
        self._language_sent = self.options.language is not None
        self._language_votes: dict[str, float] = {}  # detected language -> seconds x probability
        self._language_seconds = 0.0  # of finals that voted
        self._announced: str | None = None  # with redetect_language: the last one announced
        self.ended = False
        # Where the open utterance's next decode begins: its start, or past its committed words.
        self._window_start = 0
        self._last_partial_at = 0
        self._speculation: _Speculation | None = None
        self._partial_inflight: DecodeRequest | None = None
        # A beam decode settling words greedy partials agreed on but one doubted (``_confirm``).
        self._confirm_request: DecodeRequest | None = None
        self._confirm_held: list[Word] = []
        # The readings of the held words so far (word keys): the greedy agreement's, then
        # those of beam decodes that read them otherwise (``LocalAgreement.confirmed``).
        self._confirm_readings: list[list[str]] = []
        self._partial_seq = 0  # id of the request behind the partial on screen
        self._partial_utt = 0  # and the utterance it belongs to
        self._on_screen: list[str] = []  # the partial's words, as ``word_key`` compares them
        self._screen_words: list[Word] = []  # and as they were shown, when from word times
        self._requests: list[DecodeRequest] = []
        self._events: list[Event] = []

    # ---------------------------------------------------------------- input
    def feed(self, samples: np.ndarray) -> None:
        """16 kHz mono float32 samples, in blocks of any size. Bytes from a socket become
        samples before this, in the one PCM intake (``media.PcmIntake``)."""
        if self.ended:
            raise RuntimeError("audio after end of stream")
        self._ingest(np.asarray(samples, np.float32))

    def end_of_audio(self, last: np.ndarray | None = None) -> None:
        """No more audio: whatever is buffered becomes a final, nothing is dropped. ``last``:
        the stream's last samples (what the PCM intake held back until its end)."""
        if self.ended:
            return
        if last is not None and len(last):
            self._ingest(np.asarray(last, np.float32), partials=False)  # a partial could only be discarded
        if self._endpoint.is_open:
            self._close_utterance(self._audio.end, forced=True)
        self.ended = True
        self._partial_inflight = None
        self._set_partial(None)

    # ---------------------------------------------------------------- output
    def take_requests(self) -> list[DecodeRequest]:
        out, self._requests = self._requests, []
        return out

    def take_events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    @property
    def finished(self) -> bool:
        """Ended and every final delivered: the transport may close."""
        return self.ended and not self._finals and not self._requests

    @property
    def speech_open(self) -> bool:
        """The VAD heard speech that no endpoint has closed yet."""
        return self._endpoint.is_open

    @property
    def speech_start(self) -> float | None:
        """Where the open utterance began (stream seconds, its VAD pad included); None
        when no speech is open. Faces that name utterances (OpenAI's items) key them by it."""
        return self._endpoint.start / SAMPLE_RATE if self._endpoint.is_open else None

    @property
    def stream_seconds(self) -> float:
        return self._audio.end / SAMPLE_RATE

    @property
    def completed(self) -> list[StreamSegment]:
        return self._transcript.completed

    @property
    def partial(self) -> StreamSegment | None:
        return self._transcript.partial

    def transcript(self) -> str:
        return self._transcript.text()

    # ---------------------------------------------------------------- results
    def decode_done(self, request: DecodeRequest, result: DecodeResult) -> None:
        self._maybe_language(request, result)
        if request.kind is DecodeKind.PARTIAL:
            if self._partial_inflight is request:
                self._partial_inflight = None
            self._on_partial(request, result)
        else:
            self._on_final(request, result)

    def decode_failed(self, request: DecodeRequest, error: BaseException) -> None:
        """A failed partial is forgotten. A failed final is skipped in order (it never blocks
        the rest) and reported as ``AudioLost``: the client learns which span has no text."""
        if request.kind is DecodeKind.PARTIAL:
            if self._partial_inflight is request:
                self._partial_inflight = None
            return
        if self._speculation is not None and self._speculation.request is request:
            self._speculation = None
        if request in self._finals:
            self._failures[request.id] = (
                f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            )
        self._finals.fail(request)
        self._deliver_finals()

    # ---------------------------------------------------------------- audio in
    def _ingest(self, samples: np.ndarray, partials: bool = True) -> None:
        self._audio.append(samples)
        chunks = self._chunks.feed(samples)
        for start, probability in chunks:
            self._on_chunk(start, probability)
        if chunks:
            if partials:
                self._maybe_partial()
            self._trim()

    def _on_chunk(self, start: int, probability: float) -> None:
        activity = self._endpoint.step(start, probability)
        if activity is Activity.OPENED:
            self._window_start = max(self._audio.start, self._endpoint.start)
            self._last_partial_at = self._window_start
            self._agreement.reset()
            self._window_committed = 0
            self._speculation = None
        elif activity is Activity.SPEECH:
            self._speculation = None  # the speaker went on: that decode is only a partial now
        elif activity is Activity.ENDPOINT:
            self._close_utterance(self._endpoint.end)
        elif activity is Activity.PAUSE and self._speculation_due():
            self._speculation = _Speculation(self._request(DecodeKind.FINAL, start + CHUNK))

    def _speculation_due(self) -> bool:
        return (
            self._speculation is None
            and self._endpoint.silence_samples >= samples(self.options.speculate_silence_ms)
            and self._endpoint.long_enough
            and self.budget.allows_speculative_final()
        )

    def _close_utterance(self, end: int, forced: bool = False) -> None:
        """The open utterance is over at ``end``: at its endpoint, or ``forced`` by the end
        of the stream wherever the speaker was (see ``_request`` and ``_truthful_cut``)."""
        endpoint, speculation = self._endpoint, self._speculation
        if endpoint.long_enough:
            if speculation is not None and speculation.request.end_sample >= endpoint.speech_end:
                request = speculation.request
                self._finals.add(request, endpoint.speech_end, speculation.result)
            else:
                request = self._request(DecodeKind.FINAL, end, forced=forced)
                self._finals.add(request, endpoint.speech_end)
            if forced:
                self._forced.add(request.id)
        endpoint.close()
        self._speculation = None
        self._agreement.reset()
        self._window_committed = 0
        self._deliver_finals()
        if not endpoint.long_enough:
            self._set_partial(None)

    def _maybe_partial(self) -> None:
        endpoint = self._endpoint
        if not endpoint.is_open or self._partial_inflight is not None or self.ended:
            return
        if self._speculation is not None:
            return  # a decode of this very audio is already under way
        if not endpoint.long_enough:
            return
        if self._audio.end - self._last_partial_at < self.options.partial_interval * SAMPLE_RATE:
            return
        if endpoint.silence_samples >= _PAUSE_BEFORE_FINAL:
            return
        if not self.budget.allows_partial():
            return
        self._last_partial_at = self._audio.end
        self._partial_inflight = self._request(DecodeKind.PARTIAL, self._audio.end)

    def _trim(self) -> None:
        """Keep only what an open utterance, a pending decode or the speech pad still needs."""
        keep_from = self._audio.end - samples(self.options.vad.speech_pad_ms)
        if self._endpoint.is_open:
            keep_from = min(keep_from, self._window_start)
        self._audio.drop_before(keep_from)

    # ---------------------------------------------------------------- decode requests
    def _request(self, kind: DecodeKind, end: int, forced: bool = False) -> DecodeRequest:
        """A decode of the open utterance's window up to ``end``. A ``forced`` final (the
        stream ended mid-utterance) gets word times, for ``trim_cut``, and one temperature:
        Whisper's fallback to sampling costs a decode per step (Finalize waited seconds)
        and is where a half-spoken word grows into an invented sentence."""
        begin = self._window_start
        committed = self._agreement.committed
        # this utterance committed words: the window may say them again (or, just after a
        # cut, restate the last of them), and word times let the final leave them out
        after_commits = committed.end != float("-inf")
        options = decode_options(kind, self.options, self.language, self._prompt(), after_commits)
        if forced:
            options.word_timestamps = True
            options.temperature = 0.0
        audio = self._audio.slice(begin, end)
        request = DecodeRequest(next(self._ids), kind, self._endpoint.utterance, audio, begin, options)
        if kind is DecodeKind.FINAL and after_commits:
            self._committed_before[request.id] = committed.copy()
        self._requests.append(request)
        return request

    def _prompt(self) -> str | None:
        parts = []
        if self.options.initial_prompt:
            parts.append(self.options.initial_prompt.strip())
        before = self.completed[: len(self.completed) - self._window_committed]
        if self.options.condition_on_previous_text and before:
            history = "".join(s.text for s in before).strip()[-self.options.prompt_chars :]
            parts.append(
                history[history.find(" ") + 1 :] if len(history) == self.options.prompt_chars else history
            )
        return " ".join(parts) or None

    # ---------------------------------------------------------------- results in
    def _is_current(self, request: DecodeRequest) -> bool:
        """Decoded from the start of the open utterance's present window."""
        return (
            not self.ended
            and self._endpoint.is_open
            and request.utterance == self._endpoint.utterance
            and request.start_sample == self._window_start
        )

    def _on_partial(self, request: DecodeRequest, result: DecodeResult) -> None:
        if not self._is_current(request):
            return
        segments = self._usable(request, result)
        words = [w for s in segments for w in (s.words or [])]
        if not words:
            self._show_partial(request, segments)
            return
        young = self._young(request)
        end = request.end_sample / SAMPLE_RATE
        held: list[Word] = []
        committed: list[Word] = []
        if self._finals or young:
            # an earlier utterance's final is still out (commit after it, in order), or this
            # utterance is too young to commit from (``commit_after``): agree, do not commit
            self._agreement.observe(words)
        else:
            if request is self._confirm_request:
                last = len(self._confirm_readings) >= CONFIRM_READINGS
                committed, disputed = self._agreement.confirmed(
                    words, self._confirm_held, None if last else self._confirm_readings
                )
                if disputed:
                    self._confirm_readings.append([word_key(w.word) for w in disputed])
                    held = disputed
            else:
                new, count, agreed = self._agreement.agreed(words, end)
                change = self._agreement.change
                if change is not None and change[0] < count and self._may_confirm():
                    count = change[0]  # two readings of one word: a beam decode's to settle
                committed = self._agreement.commit(new, count)
                held = new[count:agreed]
                self._confirm_readings = [[word_key(w.word) for w in held]]
                if change is not None and change[0] >= count and held:
                    # the previous hypothesis' reading of the held words
                    self._confirm_readings.append(
                        [word_key(w.word) for w in new[count : change[0]]] + change[1]
                    )
            window = (request.end_sample - self._window_start) / SAMPLE_RATE
            if not committed and window >= self.options.max_window:
                committed = self._agreement.force(words, end - self.options.max_window / 2)
                held = []
            if committed:
                self._commit(committed)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "session %x partial %d (utterance %d%s) %.2f-%.2f s: %r; committed %r",
                id(self) & 0xFFFFFF,
                request.id,
                request.utterance,
                ", beam" if request is self._confirm_request else "",
                request.start_sample / SAMPLE_RATE,
                end,
                " ".join(f"{w.word.strip()}/{w.probability:.2f}" for w in words),
                "".join(w.word for w in committed),
            )
        if request is self._confirm_request:
            self._confirm_request = None
            # the beam's reading of the rest differs from the greedy one on screen as often
            # as not, and the next greedy partial would take it back: the screen only loses
            # what is now committed (docs/BENCHMARKS.md, "Beam confirms")
            self._show_partial(request, segments, self._screen_after(committed))
        else:
            self._show_partial(request, segments, self._showable(self._agreement.pending, end, young))
        if held and self.options.confirm_doubtful:
            self._confirm(held)

    def _screen_after(self, committed: list[Word]) -> list[Word]:
        """The partial's words on screen less its first ones, which ``committed`` (a beam
        reading of them) has just completed."""
        partial, screen = self._transcript.partial, self._screen_words
        if partial is None or partial.text != "".join(w.word for w in screen):
            return []
        return screen[reading_of(committed, screen) :]

    def _confirm(self, held: list[Word]) -> None:
        """Decode the window again with the client's beam, now, to settle ``held``: words
        two greedy partials agreed on, among them one Whisper doubts (``DOUBTFUL``), which
        would otherwise wait ``DOUBT_HOLD`` seconds and be committed in the greedy reading
        (``LocalAgreement.confirmed``). It takes the partial's turn (one decode in flight),
        and is optional like any partial: with a busy decoder the word is held as before.
        A beam decode that reads ``held`` otherwise than the greedy agreement (and any beam
        before it) asks for one more, up to ``CONFIRM_READINGS`` readings: its reading is
        committed once two readings agree."""
        if not self._may_confirm():
            return
        self._last_partial_at = self._audio.end
        request = self._request(DecodeKind.PARTIAL, self._audio.end)
        request.options.beam_size = request.options.best_of = self.options.beam_size
        self._partial_inflight = self._confirm_request = request
        self._confirm_held = list(held)

    def _may_confirm(self) -> bool:
        """A beam decode of the window may start now (``_confirm``)."""
        return (
            self.options.confirm_doubtful
            and self._partial_inflight is None
            and self._speculation is None
            and not self.ended
            and self._endpoint.is_open
            and self.budget.allows_partial()
        )

    def _young(self, request: DecodeRequest) -> bool:
        """The request's utterance is too young to commit from (``commit_after``)."""
        return request.end_sample - self._endpoint.start < self.options.commit_after * SAMPLE_RATE

    def _showable(self, pending: list[Word], audio_end: float, young: bool) -> list[Word]:
        """The words of a partial worth showing: its uncommitted words up to the first one
        of probability below ``_SHOW_BELOW`` (``_SHOW_BELOW_COMMITTING`` when the utterance
        is not ``young``), and without a last word the audio (ending at
        ``audio_end``) may end inside. Those are the words the next hypothesis takes back
        ("to eat the world's do" then "to each the world's due"); each is shown once a
        hypothesis is sure of it, or when committed. But words already on screen that this
        hypothesis says again stay, sure or not: hiding them would be flicker too.
        (docs/BENCHMARKS.md, "Flicker".)"""
        shown = list(pending)
        below = _SHOW_BELOW if young else _SHOW_BELOW_COMMITTING
        for i, word in enumerate(shown):
            if word.probability < below:
                shown = shown[:i]
                break
        if shown and shown[-1].end > audio_end - _CUT_WORD:
            # Whisper guessed the rest of a word the audio ends inside ("exhibit." for
            # "exhib-"); it shows one refresh later
            shown = shown[:-1]
        kept = 0
        for on_screen, word in zip(self._on_screen, pending, strict=False):
            if on_screen != word_key(word.word):
                break
            kept += 1
        return pending[: max(len(shown), kept)]

    def _commit(self, words: list[Word]) -> None:
        """Complete ``words`` (one segment per sentence), then cut the window after the last
        sentence they end, or after them all once the window is ``cut_after`` long."""
        sentences: list[list[Word]] = [[]]
        for word in words:
            sentences[-1].append(word)
            if ends_sentence(word):
                sentences.append([])
        sentences = [s for s in sentences if s]
        self._on_screen = self._on_screen[len(words) :]  # the partial's first words, now completed
        self._transcript.complete(
            [
                StreamSegment(
                    sentence[0].start,
                    sentence[-1].end,
                    "".join(w.word for w in sentence),
                    True,
                    sentence if self.options.word_timestamps else None,
                )
                for sentence in sentences
            ]
        )
        self._window_committed += len(sentences)
        ended = [i for i, sentence in enumerate(sentences) if ends_sentence(sentence[-1])]
        cut_at = None
        if ended:
            cut_at = sentences[ended[-1]][-1].end
            self._window_committed = len(sentences) - ended[-1] - 1
        elif self._audio.end - self._window_start >= self.options.cut_after * SAMPLE_RATE:
            cut_at = words[-1].end
            self._window_committed = 0
        if cut_at is not None:
            new_start = max(self._window_start, int(round(cut_at * SAMPLE_RATE)))
            self._window_start = min(new_start, self._audio.end)
            self._agreement.committed.cut(cut_at)
        speculation = self._speculation
        if speculation is not None:
            if cut_at is None and speculation.request.options.word_timestamps:
                # the final started at the pause decodes the same window: it leaves out
                # these words too, and stays the final (a new one would cost the wait)
                self._committed_before[speculation.request.id] = self._agreement.committed.copy()
            else:
                self._speculation = None
        self._emit_segments()

    def _show_partial(
        self, request: DecodeRequest, segments: list[Segment], words: list[Word] | None = None
    ) -> None:
        """Show a hypothesis: its ``words`` past the committed ones when it has word times
        (none left: no partial), else its segments' text."""
        if request.id < self._partial_seq:
            return  # an older hypothesis finished after a newer one
        self._partial_seq = request.id
        self._partial_utt = request.utterance
        self._screen_words = list(words) if words else []
        if words is not None:
            if not words:
                self._set_partial(None)
                return
            text, start, end = "".join(w.word for w in words), words[0].start, words[-1].end
        else:
            text = "".join(s.text for s in segments)
            start = segments[0].start if segments else request.start_sample / SAMPLE_RATE
            end = request.end_sample / SAMPLE_RATE
        if not text.strip():
            return
        floor = self._transcript.end
        self._set_partial(StreamSegment(max(start, floor), max(end, floor), text, False))

    def _on_final(self, request: DecodeRequest, result: DecodeResult) -> None:
        if self._in_another_language(request, result):
            self._decode_again(request)
            return
        if self._speculation is not None and self._speculation.request is request:
            self._speculation.result = result
        if request in self._finals:
            self._finals.resolve(request, result)
            self._deliver_finals()
            return
        if self._speculation is None or self._speculation.request is not request:
            self._committed_before.pop(request.id, None)  # no longer a final
        if self._is_current(request):
            # a speculative final the speaker talked past: still the freshest partial
            usable = self._usable(request, result)
            words = [w for s in usable for w in (s.words or [])]
            shown = self._showable(
                self._agreement.committed.new_words(words),
                request.end_sample / SAMPLE_RATE,
                self._young(request),
            )
            self._show_partial(request, usable, shown if words else None)

    def _in_another_language(self, request: DecodeRequest, result: DecodeResult) -> bool:
        """A final asked for before the stream's language was settled, that came back in
        another one: it is decoded again in the stream's language (once, at most)."""
        return (
            self._language_sent
            and self.language is not None
            and request.options.language is None
            and bool(result.language)
            and result.language != self.language
            and request in self._finals
        )

    def _decode_again(self, request: DecodeRequest) -> None:
        options = dataclasses.replace(request.options, language=self.language)
        again = DecodeRequest(
            next(self._ids), request.kind, request.utterance, request.audio, request.start_sample, options
        )
        self._finals.replace(request, again)
        if request.id in self._committed_before:
            self._committed_before[again.id] = self._committed_before.pop(request.id)
        if request.id in self._forced:
            self._forced.discard(request.id)
            self._forced.add(again.id)
        if self._speculation is not None and self._speculation.request is request:
            self._speculation = _Speculation(again)
        self._requests.append(again)

    def _deliver_finals(self) -> None:
        ready = self._finals.ready()
        for request, result, speech_end in ready:
            if self._partial_utt <= request.utterance:
                self._transcript.partial = None
                self._on_screen = []
            if result is None:
                self._committed_before.pop(request.id, None)
                reason = self._failures.pop(request.id, "decode failed")
                self._events.append(
                    AudioLost(request.start_sample / SAMPLE_RATE, speech_end / SAMPLE_RATE, reason)
                )
            else:
                self._speech_ended.append(speech_end / SAMPLE_RATE)
                usable = self._usable(request, result)
                if request.id in self._committed_before:
                    usable = self._without_committed(usable, self._committed_before.pop(request.id))
                if request.id in self._forced:
                    self._forced.discard(request.id)
                    usable = self._truthful_cut(request, usable, speech_end)
                self._transcript.complete(
                    [
                        StreamSegment(
                            s.start,
                            s.end,
                            s.text,
                            True,
                            s.words if self.options.word_timestamps else None,
                            ends_utterance=s is usable[-1],
                        )
                        for s in usable
                    ]
                )
        if ready:
            self._emit_segments()

    @staticmethod
    def _without_committed(segments: list[Segment], committed: Committed) -> list[Segment]:
        """A final's segments less the words its window held that were committed already."""
        keep = {id(w) for w in committed.new_words([w for s in segments for w in (s.words or [])])}
        out = []
        for seg in segments:
            if seg.words is None:  # no word times after all: whole segments, by time
                if seg.end > committed.end:
                    out.append(seg)
                continue
            words = [w for w in seg.words if id(w) in keep]
            if words:
                text = "".join(w.word for w in words)
                out.append(dataclasses.replace(seg, start=words[0].start, text=text, words=words))
        return out

    def _truthful_cut(self, request: DecodeRequest, usable: list[Segment], speech_end: int) -> list[Segment]:
        """A forced final passes the guards of every final (``_usable``), then loses what
        Whisper guessed past the cut and what restates the text already completed."""
        usable = trim_cut(usable, speech_end / SAMPLE_RATE, request.end_sample / SAMPLE_RATE)
        return drop_repeat(usable, [s.text for s in self.completed[-4:]])

    def _usable(self, request: DecodeRequest, result: DecodeResult) -> list[Segment]:
        """Result segments in stream time, minus Whisper's silence and loop hallucinations."""
        offset = request.start_sample / SAMPLE_RATE
        limit = request.end_sample / SAMPLE_RATE
        out = []
        for seg in result.segments:
            if not is_speech(seg, self.options.no_speech_thresh):
                continue
            seg = seg.shifted(offset)
            seg.end = min(max(seg.end, seg.start), limit)
            out.append(seg)
        return out

    # ---------------------------------------------------------------- events out
    def _set_partial(self, segment: StreamSegment | None) -> None:
        if segment == self._transcript.partial:
            return
        self._transcript.partial = segment
        self._on_screen = [word_key(w) for w in segment.text.split()] if segment is not None else []
        self._emit_segments()

    def _emit_segments(self) -> None:
        """Queue the segments to show; a newer list replaces one not yet taken."""
        replaced = [e for e in self._events if isinstance(e, SegmentsChanged)]
        self._events = [e for e in self._events if not isinstance(e, SegmentsChanged)]
        ended = [t for e in replaced for t in e.speech_ended] + self._speech_ended
        self._speech_ended = []
        shown = self._transcript.shown(self.options.send_last_n_segments)
        added = len(self.completed) - self._completed_emitted
        self._completed_emitted = len(self.completed)
        self._events.append(SegmentsChanged(shown, ended, added + sum(e.completed_added for e in replaced)))

    def _maybe_language(self, request: DecodeRequest, result: DecodeResult) -> None:
        """One language per stream: until it is settled, each final's detection votes,
        weighted by its seconds of audio; once finals of ``language_detect_seconds`` have
        voted (or the stream ends), the winner is announced once and every later decode of
        the stream uses it. Partials, a second of audio or less, never vote: a language
        detected from so little flips from one decode to the next (``es`` then ``pt``).

        Only when the client asks (``redetect_language``, a stream that changes language)
        does every final detect its own, and each change is announced."""
        if self._language_sent or not result.language or request.kind is not DecodeKind.FINAL:
            return
        if self.options.redetect_language:
            if result.language != self._announced:
                self._announced = result.language
                self._events.append(LanguageDetected(result.language, round(result.language_probability, 4)))
            return
        seconds = len(request.audio) / SAMPLE_RATE
        self._language_votes[result.language] = (
            self._language_votes.get(result.language, 0.0) + seconds * result.language_probability
        )
        self._language_seconds += seconds
        if self._language_seconds < self.options.language_detect_seconds and not self.ended:
            return
        language = max(self._language_votes, key=self._language_votes.__getitem__)
        probability = self._language_votes[language] / max(self._language_seconds, 1e-9)
        self._language_sent = True
        self.language = language
        self._events.append(LanguageDetected(language, round(probability, 4)))
