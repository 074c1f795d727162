"""The sans-I/O streaming session with scripted decodes and a scripted VAD: no model, no socket.

The VAD here reads each 32 ms chunk's speech probability from the chunk's own samples, so a
test writes what the VAD hears as the audio itself (``audio(20)`` is 20 chunks of speech,
``audio(16, SILENCE)`` 16 of silence) and can check which samples a decode covered.
Decodes are answered by hand, in whatever order a test needs.
"""

from __future__ import annotations

import numpy as np
import pytest

from whisper_live.core.decodes import DecodeResult, Segment, Word
from whisper_live.core.events import AudioLost, LanguageDetected, SegmentsChanged
from whisper_live.core.options import SessionOptions
from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.core.requests import DecodeKind, DecodeRequest
from whisper_live.core.session import CONFIRM_READINGS, StreamingSession
from whisper_live.core.transcript import StreamSegment
from whisper_live.core.vad import CHUNK, VadParameters

SPEECH, HESITANT, SILENCE = 0.9, 0.4, 0.0  # thresholds: 0.5 opens and continues, 0.35 continues
PAD = 8000  # speech_pad_ms=500
ENDPOINT_CHUNKS = 16  # min_silence_duration_ms=500: 16 chunks of 512 samples
SPECULATE_CHUNKS = 7  # speculate_silence_ms=200


def audio(chunks: int, probability: float = SPEECH) -> np.ndarray:
    return np.full(chunks * CHUNK, probability, np.float32)


class LevelVad:
    """Each chunk's speech probability is its first sample."""

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        return samples.reshape(-1, CHUNK)[:, 0].copy()


class Budget:
    """A scripted DecodeBudget that counts how often it was asked."""

    def __init__(self, partial: bool = True, speculative: bool = True):
        self.partial = partial
        self.speculative = speculative
        self.asked = 0

    def allows_partial(self) -> bool:
        self.asked += 1
        return self.partial

    def allows_speculative_final(self) -> bool:
        self.asked += 1
        return self.speculative


def finals_only() -> Budget:
    return Budget(partial=False, speculative=False)


def make(budget: Budget | None = None, **options) -> StreamingSession:
    options.setdefault("language", "en")
    return StreamingSession(SessionOptions(**options), vad=LevelVad(), budget=budget or Budget())


def result(
    text: str = " Hello there.", duration: float = 1.0, language: str = "en", **fields
) -> DecodeResult:
    return DecodeResult([Segment(0.0, duration, text, avg_logprob=-0.2, **fields)], language, 0.99, duration)


def of_kind(requests: list[DecodeRequest], kind: DecodeKind) -> list[DecodeRequest]:
    return [r for r in requests if r.kind is kind]


def shown(session: StreamingSession) -> list[StreamSegment] | None:
    """The segments of the pending SegmentsChanged, None when nothing changed."""
    changes = [e for e in session.take_events() if isinstance(e, SegmentsChanged)]
    assert len(changes) <= 1, "segment updates are coalesced until taken"
    return changes[0].segments if changes else None


def texts(segments: list[StreamSegment] | None) -> list[tuple[str, bool]]:
    return [(s.text, s.completed) for s in segments or []]


# ---------------------------------------------------------------- endpointing


def test_an_utterance_opens_on_speech_and_closes_after_min_silence_with_the_speech_pad():
    session = make(finals_only())
    session.feed(audio(40, SILENCE))
    session.feed(audio(20))
    session.feed(audio(ENDPOINT_CHUNKS - 1, SILENCE))
    assert session.take_requests() == [], "no endpoint before min_silence_duration_ms"
    session.feed(audio(1, SILENCE))
    (final,) = session.take_requests()
    speech_start, speech_end = 40 * CHUNK, 60 * CHUNK
    assert final.kind is DecodeKind.FINAL and final.utterance == 1
    assert (final.start_sample, final.end_sample) == (speech_start - PAD, speech_end + PAD)
    assert np.all(final.audio[:PAD] == SILENCE) and np.all(final.audio[-PAD:] == SILENCE)
    assert np.all(final.audio[PAD:-PAD] == SPEECH)
    assert final.options.beam_size == 5 and final.options.language == "en"


def test_the_speech_pad_stops_at_the_start_of_the_stream():
    session = make(finals_only())
    session.feed(np.concatenate([audio(3, SILENCE), audio(20), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (final,) = session.take_requests()
    assert final.start_sample == 0 and final.end_sample == 23 * CHUNK + PAD


def test_hesitant_speech_keeps_an_utterance_open_but_does_not_open_one():
    session = make(finals_only())
    session.feed(audio(40, HESITANT))
    session.feed(audio(ENDPOINT_CHUNKS, SILENCE))
    assert session.take_requests() == []
    session.feed(np.concatenate([audio(10), audio(30, HESITANT), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (final,) = session.take_requests()
    assert final.end_sample == (56 + 40) * CHUNK + PAD, "the hesitant chunks belong to the utterance"


@pytest.mark.parametrize(("speech_chunks", "decoded"), [(6, False), (7, True)])
def test_speech_shorter_than_min_speech_is_dropped(speech_chunks, decoded):
    """min_speech_duration_ms=200: 6 chunks (192 ms) are a click, 7 (224 ms) are speech."""
    session = make()
    session.feed(np.concatenate([audio(speech_chunks), audio(40, SILENCE)]))
    assert len(of_kind(session.take_requests(), DecodeKind.FINAL)) == int(decoded)


def test_utterances_are_numbered_and_decoded_separately():
    session = make(finals_only())
    utterance = np.concatenate([audio(20), audio(40, SILENCE)])
    session.feed(np.concatenate([utterance, utterance]))
    first, second = session.take_requests()
    assert (first.utterance, second.utterance) == (1, 2)
    assert first.end_sample <= second.start_sample


# ---------------------------------------------------------------- partials


def test_partials_refresh_the_text_every_partial_interval_of_new_audio():
    session = make(partial_interval=1.0)
    ends = []
    for n in range(16):  # 4.1 s of speech in 256 ms frames
        session.feed(audio(8))
        for request in session.take_requests():
            assert request.kind is DecodeKind.PARTIAL and request.start_sample == 0
            assert request.options.beam_size == 1 and request.options.without_timestamps
            ends.append(request.end_sample)
            session.decode_done(request, result(f" partial {n}"))
            assert texts(shown(session)) == [(f" partial {n}", False)]
    assert ends == [16384, 32768, 49152, 65536]


def test_only_one_partial_is_in_flight():
    session = make(partial_interval=0.5)
    session.feed(audio(32))
    (first,) = session.take_requests()
    for _ in range(5):
        session.feed(audio(32))
    assert session.take_requests() == [], "no second partial while the first is decoding"
    session.decode_done(first, result(" one"))
    session.feed(audio(8))
    (second,) = session.take_requests()
    assert second.kind is DecodeKind.PARTIAL and second.end_sample == 6 * 32 * CHUNK + 8 * CHUNK


def test_partials_are_skipped_while_the_budget_says_no_and_finals_are_not():
    budget = Budget(partial=False, speculative=False)
    session = make(budget, partial_interval=0.5)
    for _ in range(10):
        session.feed(audio(16))
    assert session.take_requests() == [] and budget.asked > 0
    budget.partial = True
    session.feed(audio(1))
    (partial,) = session.take_requests()
    assert partial.kind is DecodeKind.PARTIAL and partial.end_sample == 161 * CHUNK
    budget.partial = False
    session.feed(audio(ENDPOINT_CHUNKS, SILENCE))
    assert [r.kind for r in session.take_requests()] == [DecodeKind.FINAL]


def test_the_budget_is_asked_only_when_a_partial_is_due():
    budget = Budget(speculative=False)
    session = make(budget, partial_interval=1.0)
    session.feed(audio(30))  # 0.96 s: not due yet
    assert budget.asked == 0
    session.feed(audio(2))
    assert budget.asked == 1 and len(session.take_requests()) == 1


def test_a_partial_that_comes_back_after_its_utterance_ended_is_ignored():
    session = make(Budget(speculative=False))
    session.feed(audio(40))
    (partial,) = session.take_requests()
    session.feed(audio(ENDPOINT_CHUNKS, SILENCE))
    (final,) = session.take_requests()
    session.decode_done(partial, result(" stale"))
    assert shown(session) is None and session.partial is None
    session.decode_done(final, result(" Fresh."))
    assert texts(shown(session)) == [(" Fresh.", True)]


def test_an_older_hypothesis_that_finishes_after_a_newer_one_is_ignored():
    session = make()
    session.feed(audio(40))
    (partial,) = session.take_requests()
    session.feed(audio(SPECULATE_CHUNKS, SILENCE))
    (speculative,) = session.take_requests()
    session.feed(audio(4))  # the speaker goes on
    session.decode_done(speculative, result(" newer"))
    assert texts(shown(session)) == [(" newer", False)]
    session.decode_done(partial, result(" older"))
    assert shown(session) is None and session.partial.text == " newer"


@pytest.mark.parametrize(("speech", "pause", "partial"), [(14, 2, True), (13, 3, False)])
def test_no_partial_three_chunks_into_a_pause(speech, pause, partial):
    """The pause may be the endpoint coming: the final will decode this audio anyway."""
    session = make(Budget(speculative=False), partial_interval=0.5)
    session.feed(audio(40))
    (first,) = session.take_requests()
    session.decode_done(first, result(" one"))
    session.feed(np.concatenate([audio(speech), audio(pause, SILENCE)]))
    assert len(session.take_requests()) == int(partial)


def test_a_partial_never_starts_before_the_completed_text_ends():
    session = make(Budget(speculative=False))
    session.feed(np.concatenate([audio(20), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (final,) = session.take_requests()
    session.decode_done(final, result(" First.", duration=final.end_sample / SAMPLE_RATE + 5))
    session.feed(audio(40))
    (partial,) = session.take_requests()
    session.decode_done(partial, result(" second"))
    first, second = shown(session)
    assert second.start >= first.end and second.end >= second.start


# ---------------------------------------------------------------- the final started at a pause


def test_the_final_starts_at_the_first_pause_and_is_the_final_when_the_endpoint_follows():
    session = make(Budget(partial=False))
    session.feed(audio(40))
    session.feed(audio(SPECULATE_CHUNKS - 1, SILENCE))
    assert session.take_requests() == []
    session.feed(audio(1, SILENCE))
    (speculative,) = session.take_requests()
    assert speculative.kind is DecodeKind.FINAL
    assert speculative.end_sample == (40 + SPECULATE_CHUNKS) * CHUNK
    session.decode_done(speculative, result(" Hello there."))
    assert texts(shown(session)) == [(" Hello there.", False)], "shown at once, while the pause may end"
    session.feed(audio(ENDPOINT_CHUNKS - SPECULATE_CHUNKS, SILENCE))
    assert session.take_requests() == [], "no second decode of the same audio"
    assert texts(shown(session)) == [(" Hello there.", True)]


def test_an_endpoint_before_the_speculative_result_waits_for_it():
    session = make(Budget(partial=False))
    session.feed(np.concatenate([audio(40), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (speculative,) = session.take_requests()
    assert session.completed == []
    session.decode_done(speculative, result(" Hello."))
    assert texts(shown(session)) == [(" Hello.", True)]


def test_a_speculative_final_is_only_a_partial_when_the_speaker_goes_on():
    session = make(Budget(partial=False))
    session.feed(np.concatenate([audio(40), audio(SPECULATE_CHUNKS, SILENCE)]))
    (speculative,) = session.take_requests()
    session.feed(audio(20))
    session.decode_done(speculative, result(" Hello"))
    assert texts(shown(session)) == [(" Hello", False)]
    session.feed(audio(ENDPOINT_CHUNKS, SILENCE))
    (final,) = session.take_requests()  # started at the second pause
    assert final.start_sample == speculative.start_sample
    assert final.end_sample == (67 + SPECULATE_CHUNKS) * CHUNK, "it covers the speech that followed"
    session.decode_done(final, result(" Hello, and goodbye."))
    assert texts(shown(session)) == [(" Hello, and goodbye.", True)]


def test_no_speculative_final_when_the_budget_says_no():
    budget = Budget(partial=False, speculative=False)
    session = make(budget)
    session.feed(np.concatenate([audio(40), audio(ENDPOINT_CHUNKS - 1, SILENCE)]))
    assert session.take_requests() == [] and budget.asked > 0
    session.feed(audio(1, SILENCE))
    (final,) = session.take_requests()
    assert final.end_sample == 40 * CHUNK + PAD


def test_a_failed_speculative_final_is_replaced_at_the_endpoint():
    session = make(Budget(partial=False))
    session.feed(np.concatenate([audio(40), audio(SPECULATE_CHUNKS, SILENCE)]))
    (speculative,) = session.take_requests()
    session.decode_failed(speculative, RuntimeError("decoder crashed"))
    session.feed(audio(ENDPOINT_CHUNKS, SILENCE))
    finals = session.take_requests()
    assert [r.kind for r in finals] == [DecodeKind.FINAL] and finals[0] is not speculative
    session.decode_done(finals[0], result(" Recovered."))
    assert [s.text for s in session.completed] == [" Recovered."]


# ---------------------------------------------------------------- LocalAgreement in a session

SCRIPT = [(" One", 0.1, 0.4), (" two.", 0.5, 0.9), (" Three", 1.1, 1.4), (" four.", 1.5, 1.9)]
SCRIPT += [(" Five", 2.1, 2.4), (" six.", 2.5, 2.9), (" Seven", 3.1, 3.4), (" eight", 3.5, 3.9)]


# Sure enough to commit and show, not so sure that one hypothesis settles a word (``SURE``):
# these tests follow the agreement of two.
READING_PROBABILITY = 0.8


def reading(request: DecodeRequest, script=SCRIPT) -> DecodeResult:
    """What a steady reader said within the request's audio, in the request's own time,
    two words to a segment."""
    offset = request.start_sample / SAMPLE_RATE
    words = [
        Word(start - offset, end - offset, text, READING_PROBABILITY)
        for text, start, end in script
        if start >= offset and end <= request.end_sample / SAMPLE_RATE
    ]
    segments = []
    for pair in (words[i : i + 2] for i in range(0, len(words), 2)):
        text = "".join(w.word for w in pair)
        segment = Segment(pair[0].start, pair[-1].end, text, avg_logprob=-0.2)
        segment.words = pair if request.options.word_timestamps else None
        segments.append(segment)
    return DecodeResult(segments, "en", 0.99, len(request.audio) / SAMPLE_RATE)


def stream_without_vad(session: StreamingSession, seconds: int, script=SCRIPT) -> list[DecodeRequest]:
    """Feed one second at a time, decoding every request at once; returns the requests."""
    requests = []
    for _ in range(seconds):
        session.feed(np.zeros(SAMPLE_RATE, np.float32))
        for request in session.take_requests():
            requests.append(request)
            session.decode_done(request, reading(request, script))
    return requests


def test_long_speech_commits_what_two_partials_agree_on_and_cuts_the_window_at_sentence_ends():
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False))
    requests = stream_without_vad(session, 3)
    assert all(r.options.word_timestamps for r in requests), "every partial carries word times"
    # 1 s: " One two." (nothing to agree with); 2 s: agreed, committed; 3 s: " Three four." too
    assert [(s.text, s.start, s.end) for s in session.completed] == [
        (" One two.", 0.1, 0.9),
        (" Three four.", 1.1, 1.9),
    ]
    # "six." ends 0.1 s before the audio does: it may be cut off, and shows one refresh later
    assert session.partial.text == " Five" and not session.partial.completed
    assert [r.start_sample for r in requests] == [0, 0, round(0.9 * SAMPLE_RATE)]
    (next_partial,) = stream_without_vad(session, 1)
    assert next_partial.start_sample == round(1.9 * SAMPLE_RATE), (
        "committed sentences are cut from the window"
    )
    assert next_partial.options.initial_prompt == "One two. Three four."


def test_a_partial_holds_back_a_last_word_the_audio_may_end_inside():
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False))
    session.feed(np.zeros(SAMPLE_RATE, np.float32))
    (request,) = session.take_requests()
    cut = [Word(0.1, 0.4, " One", 0.9), Word(0.5, 0.9, " two", 0.9)]  # "two" ends 0.1 s before the audio
    session.decode_done(request, DecodeResult([Segment(0.1, 0.9, " One two", words=cut)], "en", 1.0, 1.0))
    assert session.partial.text == " One"
    session.feed(np.zeros(SAMPLE_RATE // 2, np.float32))
    session.feed(np.zeros(SAMPLE_RATE // 2, np.float32))
    (request,) = session.take_requests()
    whole = [*cut, Word(1.1, 1.4, " three", 0.9)]  # 0.6 s before the end of the audio
    session.decode_done(
        request, DecodeResult([Segment(0.1, 1.4, " One two three", words=whole)], "en", 1.0, 2.0)
    )
    assert session.transcript() == "One two"
    assert session.partial.text == " three"


def test_a_partial_shows_nothing_from_the_first_word_whisper_is_unsure_of():
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False))
    session.feed(np.zeros(2 * SAMPLE_RATE, np.float32))
    (request,) = session.take_requests()
    heard = [
        Word(0.1, 0.4, " to", 0.8),
        Word(0.5, 0.7, " eat", 0.2),  # "each", says the next hypothesis
        Word(0.8, 1.0, " the", 0.9),
        Word(1.1, 1.4, " world's", 0.8),
    ]
    session.decode_done(
        request, DecodeResult([Segment(0.1, 1.4, " to eat the world's", words=heard)], "en", 1.0, 2.0)
    )
    assert session.partial.text == " to"


def test_words_on_screen_stay_while_hypotheses_still_say_them_sure_or_not():
    session = StreamingSession(SessionOptions(commit_after=100, language="en", use_vad=False))
    said = [(" to", 0.1, 0.4), (" each", 0.5, 0.7), (" the", 0.8, 1.0), (" world's", 1.1, 1.4)]
    session.feed(np.zeros(2 * SAMPLE_RATE, np.float32))
    (request,) = session.take_requests()
    sure = [Word(start, end, text, 0.9) for text, start, end in said]
    session.decode_done(
        request, DecodeResult([Segment(0.1, 1.4, " to each the world's", words=sure)], "en", 1.0, 2.0)
    )
    assert session.partial.text == " to each the world's"
    session.feed(np.zeros(SAMPLE_RATE, np.float32))
    (request,) = session.take_requests()
    unsure = [Word(start, end, text, 0.2 if text == " each" else 0.9) for text, start, end in said]
    unsure += [Word(1.5, 1.8, " due", 0.2), Word(1.9, 2.2, " by", 0.9)]
    session.decode_done(
        request,
        DecodeResult([Segment(0.1, 2.2, " to each the world's due by", words=unsure)], "en", 1.0, 3.0),
    )
    assert session.partial.text == " to each the world's", "not taken back, and nothing unsure added"


UNPUNCTUATED = [(text.rstrip("."), start, end) for text, start, end in SCRIPT]


def test_committed_words_stay_in_the_window_until_their_sentence_ends():
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False))
    requests = stream_without_vad(session, 4, UNPUNCTUATED)
    assert [s.text for s in session.completed] == [" One two", " Three four", " Five six"]
    assert session.partial.text == " Seven"
    assert {r.start_sample for r in requests} == {0}, "no sentence end: the window keeps its start"
    assert all(r.options.initial_prompt is None for r in requests), "the window's own words are no prompt"


def test_a_window_cut_after_seconds_is_cut_at_the_last_committed_word():
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False, cut_after=2.0))
    requests = stream_without_vad(session, 4, UNPUNCTUATED)
    assert [r.start_sample for r in requests] == [0, 0, round(0.9 * SAMPLE_RATE), round(1.9 * SAMPLE_RATE)]
    assert session.transcript() == "One two Three four Five six"


def test_a_window_without_agreement_commits_its_older_half_at_the_max_window():
    def unsteady(request: DecodeRequest) -> DecodeResult:
        """Every decode hears each word differently: no two hypotheses agree."""
        result = reading(request, UNPUNCTUATED)
        for seg in result.segments:
            for w in seg.words:
                w.word += str(request.id)
            seg.text = "".join(w.word for w in seg.words)
        return result

    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False, max_window=4.0))
    for _ in range(4):
        session.feed(np.zeros(SAMPLE_RATE, np.float32))
        for request in session.take_requests():
            session.decode_done(request, unsteady(request))
    # at 4 s: the words ending by 4 - 4 / 2 = 2 s go, agreed or not
    assert session.transcript() == "One4 two4 Three4 four4"
    assert session.partial.text == " Five4 six4 Seven4"


def test_the_final_leaves_out_the_words_committed_from_its_window():
    session = make(Budget(speculative=False), commit_after=0)
    session.feed(audio(70))  # 2.24 s of speech
    (first,) = session.take_requests()
    session.decode_done(first, reading(first, UNPUNCTUATED))  # " One two" (ends 1.9 s)
    session.feed(audio(32))
    (second,) = session.take_requests()
    session.decode_done(second, reading(second, UNPUNCTUATED))
    assert session.transcript() == "One two Three four"
    session.feed(audio(ENDPOINT_CHUNKS, SILENCE))
    (final,) = session.take_requests()
    assert final.kind is DecodeKind.FINAL and final.start_sample == 0
    assert final.options.word_timestamps, "it needs word times to leave the committed words out"
    assert final.options.initial_prompt is None
    session.decode_done(final, reading(final, UNPUNCTUATED))
    # "eight" ends after the final's window (speech end + pad)
    assert session.transcript() == "One two Three four Five six Seven"
    assert session.completed[-1].ends_utterance and session.partial is None


def test_a_final_restating_the_committed_words_with_later_times_does_not_repeat_them():
    session = make(Budget(speculative=False), commit_after=0)
    session.feed(audio(70))
    (first,) = session.take_requests()
    session.decode_done(first, reading(first, UNPUNCTUATED))
    session.feed(audio(32))
    (second,) = session.take_requests()
    session.decode_done(second, reading(second, UNPUNCTUATED))  # committed " One two Three four"
    session.feed(audio(ENDPOINT_CHUNKS, SILENCE))
    (final,) = session.take_requests()
    late = [(" Three", 1.1, 1.4), (" four", 1.85, 2.0), (" Five", 2.1, 2.4)]  # " four" later
    words = [Word(a, b, t, 0.9) for t, a, b in late]
    session.decode_done(
        final, DecodeResult([Segment(1.1, 2.4, " Three four Five", words=words)], "en", 1.0, 3.0)
    )
    assert session.transcript() == "One two Three four Five"


def test_commits_wait_for_the_final_of_an_earlier_utterance():
    session = make(Budget(speculative=False), commit_after=0)
    session.feed(np.concatenate([audio(20), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (final,) = session.take_requests()
    session.feed(audio(70))
    (first,) = session.take_requests()
    shift = first.start_sample / SAMPLE_RATE
    script = [(t, a + shift, b + shift) for t, a, b in UNPUNCTUATED]
    session.decode_done(first, reading(first, script))
    session.feed(audio(32))
    (second,) = session.take_requests()
    session.decode_done(second, reading(second, script))
    assert session.completed == [], "the first utterance's text comes first"
    assert session.partial.text == " One two Three four Five six Seven"
    session.decode_done(final, result(" Before."))
    assert session.transcript() == "Before."
    session.feed(audio(32))
    (third,) = session.take_requests()
    session.decode_done(third, reading(third, script))
    assert session.transcript() == "Before. One two Three four Five six Seven"


# ---------------------------------------------------------------- ordered finals


def two_utterances(session: StreamingSession) -> tuple[DecodeRequest, DecodeRequest]:
    utterance = np.concatenate([audio(20), audio(40, SILENCE)])
    session.feed(np.concatenate([utterance, utterance]))
    first, second = of_kind(session.take_requests(), DecodeKind.FINAL)
    return first, second


def test_finals_are_delivered_in_order_even_when_decoded_out_of_order():
    session = make(finals_only())
    first, second = two_utterances(session)
    session.decode_done(second, result(" Second."))
    assert session.completed == [] and shown(session) is None
    session.decode_done(first, result(" First."))
    segments = shown(session)
    assert texts(segments) == [(" First.", True), (" Second.", True)]
    assert segments[0].start == first.start_sample / SAMPLE_RATE < segments[1].start


def test_an_utterance_final_says_it_ends_the_utterance_and_speech_open_follows_the_vad():
    session = make(finals_only())
    session.feed(audio(10, SILENCE))
    assert not session.speech_open
    session.feed(audio(20))
    assert session.speech_open
    session.feed(audio(40, SILENCE))
    assert not session.speech_open, "past the endpoint"
    (final,) = of_kind(session.take_requests(), DecodeKind.FINAL)
    two = DecodeResult(
        [Segment(0.0, 0.3, " one.", avg_logprob=-0.2), Segment(0.3, 0.6, " two.", avg_logprob=-0.2)],
        "en",
        1.0,
        0.6,
    )
    session.decode_done(final, two)
    assert [s.ends_utterance for s in session.completed] == [False, True]


def test_a_failed_final_does_not_block_the_ones_after_it():
    session = make(finals_only())
    first, second = two_utterances(session)
    session.decode_done(second, result(" Second."))
    assert session.completed == []  # waits for the first
    session.decode_failed(first, RuntimeError("decoder crashed"))
    assert [s.text for s in session.completed] == [" Second."]


def test_a_failed_final_is_reported_as_the_span_it_lost():
    session = make(finals_only())
    first, second = two_utterances(session)
    session.take_events()
    session.decode_failed(first, RuntimeError("decoder crashed"))
    (lost,) = [e for e in session.take_events() if isinstance(e, AudioLost)]
    # from where its decode began (the speech pad) to where its speech ended (20 chunks of speech)
    assert lost.start == first.start_sample / SAMPLE_RATE == 0.0
    assert lost.end == pytest.approx(20 * CHUNK / SAMPLE_RATE)
    assert "RuntimeError: decoder crashed" in lost.reason and "0.00 s to 0.64 s" in lost.describe()
    session.decode_done(second, result(" Second."))
    assert not [e for e in session.take_events() if isinstance(e, AudioLost)]
    assert [s.text for s in session.completed] == [" Second."]


def test_a_failed_speculative_final_the_speaker_talked_past_loses_nothing():
    session = make()
    session.feed(np.concatenate([audio(20), audio(SPECULATE_CHUNKS + 1, SILENCE)]))
    (speculative,) = of_kind(session.take_requests(), DecodeKind.FINAL)
    session.feed(audio(10))  # the speaker goes on: that decode is only a partial now
    session.decode_failed(speculative, RuntimeError("decoder crashed"))
    assert not [e for e in session.take_events() if isinstance(e, AudioLost)]


def test_updates_count_the_completed_segments_they_add():
    session = make(finals_only(), send_last_n_segments=1)
    first, second = two_utterances(session)
    session.take_events()
    session.decode_done(first, result(" First."))
    session.decode_done(second, result(" Second."))
    (update,) = [e for e in session.take_events() if isinstance(e, SegmentsChanged)]
    assert update.completed_added == 2  # coalesced before being taken: both counted


def test_completed_segments_never_overlap_even_where_speech_pads_do():
    session = make(finals_only())
    session.feed(np.concatenate([audio(20), audio(ENDPOINT_CHUNKS, SILENCE), audio(20)]))
    session.end_of_audio()
    first, second = session.take_requests()
    assert second.start_sample < first.end_sample, "the second utterance's pad reaches into the first"
    session.decode_done(first, result(" First.", duration=5.0))
    session.decode_done(second, result(" Second.", duration=5.0))
    one, two = session.completed
    assert one.end == first.end_sample / SAMPLE_RATE, "a segment ends where its audio does"
    assert two.start == one.end and two.end == second.end_sample / SAMPLE_RATE


def test_send_last_n_segments_limits_what_is_shown():
    session = make(finals_only(), send_last_n_segments=1)
    first, second = two_utterances(session)
    session.decode_done(first, result(" First."))
    session.decode_done(second, result(" Second."))
    assert texts(shown(session)) == [(" Second.", True)]
    assert len(session.completed) == 2


# ---------------------------------------------------------------- hallucination filter


@pytest.mark.parametrize(
    ("segment", "kept"),
    [
        (Segment(0, 1, " Thank you.", avg_logprob=-1.5, no_speech_prob=0.9), False),  # Whisper over silence
        (Segment(0, 1, " Thank you.", avg_logprob=-0.5, no_speech_prob=0.9), True),  # confident words
        (Segment(0, 1, " Thank you.", avg_logprob=-1.5, no_speech_prob=0.2), True),  # unsure, but speech
        (Segment(0, 1, " la la la la la la la la", compression_ratio=2.6), False),  # a decoding loop
        (Segment(0, 1, " ..."), False),
        (Segment(0, 1, " "), False),
        (Segment(0, 1, " 42"), True),
    ],
)
def test_the_hallucination_filter(segment, kept):
    session = make(finals_only())
    session.feed(np.concatenate([audio(20), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (final,) = session.take_requests()
    session.decode_done(final, DecodeResult([segment], "en", 0.99, 1.0))
    assert [s.text for s in session.completed] == ([segment.text] if kept else [])


def test_the_no_speech_threshold_is_the_clients():
    segment = Segment(0, 1, " Thank you.", avg_logprob=-1.2, no_speech_prob=0.5)
    kept = []
    for threshold in (0.45, 0.6):
        session = make(finals_only(), no_speech_thresh=threshold)
        session.feed(np.concatenate([audio(20), audio(ENDPOINT_CHUNKS, SILENCE)]))
        (final,) = session.take_requests()
        assert final.options.no_speech_threshold == threshold
        session.decode_done(final, DecodeResult([segment], "en", 0.99, 1.0))
        kept.append(len(session.completed))
    assert kept == [0, 1]


def test_only_the_hallucinated_segments_of_a_result_are_dropped():
    session = make(finals_only())
    session.feed(np.concatenate([audio(60), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (final,) = session.take_requests()
    segments = [
        Segment(0.0, 1.0, " Real words."),
        Segment(1.0, 2.0, " Thank you.", avg_logprob=-1.5, no_speech_prob=0.9),
        Segment(2.0, 2.5, " More."),
    ]
    session.decode_done(final, DecodeResult(segments, "en", 0.99, 2.5))
    assert [s.text for s in session.completed] == [" Real words.", " More."]


# ---------------------------------------------------------------- END_OF_AUDIO


def test_speech_still_going_at_end_of_audio_becomes_a_final_with_every_sample():
    session = make(finals_only())
    samples = np.concatenate([audio(3, SILENCE), audio(20), np.full(100, SPEECH, np.float32)])
    session.feed(samples)  # and 100 samples short of a VAD chunk
    assert session.take_requests() == []
    session.end_of_audio()
    (final,) = session.take_requests()
    assert final.start_sample == 0 and final.end_sample == len(samples), "nothing lost"
    assert not session.finished
    session.decode_done(final, result(" The end."))
    assert session.finished and session.transcript() == "The end."


def words_result(words: list[tuple[float, float, str, float]], **fields) -> DecodeResult:
    """A decode with word times (seconds from the start of the request's audio)."""
    ws = [Word(a, b, w, p) for a, b, w, p in words]
    text = "".join(w.word for w in ws)
    return DecodeResult(
        [Segment(ws[0].start, ws[-1].end, text, avg_logprob=-0.2, words=ws, **fields)], "en", 1, 1
    )


def forced_final(session: StreamingSession, chunks: int = 60) -> DecodeRequest:
    """Speech cut off by the end of the stream (Finalize, CloseStream, a time limit): its final."""
    session.feed(audio(chunks))
    session.take_requests()
    session.end_of_audio()
    (final,) = of_kind(session.take_requests(), DecodeKind.FINAL)
    return final


def test_a_forced_final_asks_for_word_times_and_drops_the_words_guessed_past_the_cut():
    session = make(finals_only())
    final = forced_final(session)
    assert final.options.word_timestamps, "word times tell what was heard before the cut"
    cut = len(final.audio) / SAMPLE_RATE  # 1.92 s
    session.decode_done(
        final,
        words_result(
            [
                (0.1, 0.5, " I'm", 0.95),
                (0.5, 0.9, " not", 0.96),
                (0.9, cut - 0.2, " fixing", 0.98),
                (cut - 0.2, cut - 0.02, " the", 0.28),  # half a word, guessed
                (cut - 0.01, cut - 0.01, " stuff.", 0.79),  # squeezed into the last instant
            ]
        ),
    )
    assert session.transcript() == "I'm not fixing"
    assert session.completed[-1].end == pytest.approx(cut - 0.2)


def test_a_forced_final_keeps_confident_words_and_drops_words_after_the_speech():
    session = make(finals_only())
    session.feed(audio(40))
    session.feed(audio(12, SILENCE))  # a pause, not yet an endpoint
    session.end_of_audio()
    (final,) = session.take_requests()
    speech_end = (40 * CHUNK) / SAMPLE_RATE  # 1.28 s
    session.decode_done(
        final,
        words_result(
            [
                (0.2, 1.1, " I will say nothing.", 0.9),
                (speech_end + 0.3, speech_end + 0.5, " Thank you.", 0.9),
            ]
        ),
    )
    assert session.transcript() == "I will say nothing."


def test_a_forced_final_does_not_restate_the_completed_text():
    session = make(finals_only())
    session.feed(np.concatenate([audio(20), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (first,) = session.take_requests()
    session.decode_done(first, result(" 1."))
    final = forced_final(session)
    session.decode_done(
        final, words_result([(0.0, 0.3, " 1.", 0.9), (0.6, 1.0, " From", 0.9), (1.0, 1.4, " fairest", 0.9)])
    )
    assert [s.text for s in session.completed] == [" 1.", " From fairest"]


def test_a_forced_final_of_nothing_said_adds_nothing():
    session = make(finals_only())
    final = forced_final(session)
    session.decode_done(final, words_result([(1.5, 1.9, " Thank", 0.3), (1.9, 1.91, " you.", 0.4)]))
    assert session.completed == [] and session.finished


def test_an_endpoint_final_is_not_trimmed():
    session = make(finals_only())
    session.feed(np.concatenate([audio(20), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (final,) = session.take_requests()
    session.decode_done(final, words_result([(0.0, 0.5, " Yes", 0.3), (0.5, 0.6, " no.", 0.2)]))
    assert session.transcript() == "Yes no."


def test_finished_only_when_every_final_is_delivered():
    session = make(finals_only())
    first, second = two_utterances(session)
    session.feed(audio(20))
    session.end_of_audio()
    assert not session.finished, "the last utterance's final is not even taken yet"
    (last,) = session.take_requests()
    for request in (second, last):
        session.decode_done(request, result(" words."))
        assert not session.finished
    session.decode_failed(first, RuntimeError("decoder crashed"))
    assert session.finished and len(session.completed) == 2


def test_end_of_audio_after_too_little_speech_has_nothing_to_decode():
    session = make()
    session.feed(np.concatenate([audio(20, SILENCE), audio(3)]))
    session.end_of_audio()
    assert session.take_requests() == [] and session.finished


def test_end_of_audio_clears_the_partial_and_ignores_partials_still_decoding():
    session = make(Budget(speculative=False))
    session.feed(audio(40))
    (partial,) = session.take_requests()
    session.decode_done(partial, result(" Hello"))
    session.feed(audio(40))
    (late,) = session.take_requests()
    session.end_of_audio()
    (final,) = session.take_requests()
    assert texts(shown(session)) == []
    session.decode_done(late, result(" Hello there"))
    assert shown(session) is None
    session.decode_done(final, result(" Hello there."))
    assert texts(shown(session)) == [(" Hello there.", True)] and session.finished


def test_end_of_audio_asks_for_no_partial():
    """The stream's last samples, given with its end (what the PCM intake held back), are
    judged: they may complete an utterance's worth of speech, but a partial of them could
    only be discarded."""
    vad = VadParameters(min_speech_duration_ms=50)
    session = make(partial_interval=0.05, vad=vad)
    session.end_of_audio(audio(3))  # e.g. what the PCM intake's sniffer held back
    (final,) = session.take_requests()
    assert final.kind is DecodeKind.FINAL and final.end_sample == 3 * CHUNK


def test_no_audio_after_end_of_audio():
    session = make()
    session.end_of_audio()
    session.end_of_audio()  # a repeated END_OF_AUDIO is harmless
    assert session.finished
    with pytest.raises(RuntimeError):
        session.feed(np.zeros(2, np.float32))


# ---------------------------------------------------------------- decode failures


def test_a_failed_partial_is_forgotten():
    session = make(Budget(speculative=False), partial_interval=0.5)
    session.feed(audio(32))
    (partial,) = session.take_requests()
    session.decode_failed(partial, RuntimeError("decoder crashed"))
    assert shown(session) is None
    session.feed(audio(16))
    (retry,) = session.take_requests()
    assert retry.kind is DecodeKind.PARTIAL and retry.id > partial.id


# ---------------------------------------------------------------- language and prompt


def test_one_language_per_stream_settled_by_finals_of_enough_speech_and_announced_once():
    session = make(finals_only(), language=None, language_detect_seconds=3.0)
    first, second = two_utterances(session)  # each final is 1.5 s of audio or so
    assert first.options.language is None and second.options.language is None
    session.decode_done(first, DecodeResult([Segment(0, 1, " Hola.")], "es", 0.9, 1.0))
    assert not [e for e in session.take_events() if isinstance(e, LanguageDetected)], "too little speech yet"
    session.feed(np.concatenate([audio(60), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (third,) = session.take_requests()
    assert third.options.language is None, "not settled: still detected per decode"
    session.decode_done(second, result(" Ola.", language="pt"))  # short: outvoted below
    session.decode_done(third, DecodeResult([Segment(0, 1, " Buenos días.")], "es", 0.8, 1.0))
    (announced,) = [e for e in session.take_events() if isinstance(e, LanguageDetected)]
    assert announced.language == "es" and 0 < announced.probability <= 1
    session.feed(np.concatenate([audio(20), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (fourth,) = session.take_requests()
    assert fourth.options.language == "es", "every later decode uses the stream's language"
    session.decode_done(fourth, result(" Bonjour.", language="fr"))
    assert not [e for e in session.take_events() if isinstance(e, LanguageDetected)], "announced once"


def test_a_final_asked_before_the_language_settled_is_decoded_again_when_it_comes_back_in_another():
    session = make(finals_only(), language=None, language_detect_seconds=2.0)
    first, second = two_utterances(session)
    session.decode_done(first, DecodeResult([Segment(0, 1, " las arenas son blancas")], "es", 0.9, 1.0))
    session.decode_done(second, DecodeResult([Segment(0, 1, " e tem muito pouca")], "pt", 0.6, 1.0))
    assert [e.language for e in session.take_events() if isinstance(e, LanguageDetected)] == ["es"]
    (again,) = session.take_requests()
    assert again.options.language == "es" and again.start_sample == second.start_sample
    assert np.array_equal(again.audio, second.audio)
    assert [s.text for s in session.completed] == [" las arenas son blancas"], (
        "the Portuguese one is not shown"
    )
    session.decode_done(again, DecodeResult([Segment(0, 1, " y tiene muy poca")], "es", 1.0, 1.0))
    assert [s.text for s in session.completed] == [" las arenas son blancas", " y tiene muy poca"]


def test_a_client_that_asks_gets_each_final_detected_and_each_change_announced():
    session = make(finals_only(), language=None, redetect_language=True)
    first, second = two_utterances(session)
    session.decode_done(first, DecodeResult([Segment(0, 1, " Hola.")], "es", 0.9, 1.0))
    session.decode_done(second, DecodeResult([Segment(0, 1, " Hola otra vez.")], "es", 0.8, 1.0))
    assert [e.language for e in session.take_events() if isinstance(e, LanguageDetected)] == ["es"]
    session.feed(np.concatenate([audio(60), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (third,) = session.take_requests()
    assert third.options.language is None, "never locked: every final detects"
    session.decode_done(third, DecodeResult([Segment(0, 1, " Good morning.")], "en", 0.95, 1.0))
    (change,) = [e for e in session.take_events() if isinstance(e, LanguageDetected)]
    assert change.language == "en"
    assert [s.text for s in session.completed][-1] == " Good morning.", "not decoded again in Spanish"


def test_partials_never_settle_the_language():
    session = make(Budget(speculative=False), language=None)
    session.feed(audio(40))
    (partial,) = session.take_requests()
    session.decode_done(partial, result(" Hola.", language="ar"))
    assert not [e for e in session.take_events() if isinstance(e, LanguageDetected)]
    assert session.language is None


def test_a_short_stream_announces_its_language_at_its_end():
    session = make(finals_only(), language=None)
    session.feed(audio(20))
    session.end_of_audio()
    (final,) = session.take_requests()
    session.decode_done(final, result(" Hallo.", language="de"))
    assert [e.language for e in session.take_events() if isinstance(e, LanguageDetected)] == ["de"]


def test_completed_text_prompts_later_decodes_from_a_word_boundary():
    session = make(finals_only(), initial_prompt="Names:", prompt_chars=10)
    first, second = two_utterances(session)
    assert first.options.initial_prompt == "Names:"
    session.decode_done(first, result(" hello there friends."))
    session.feed(np.concatenate([audio(20), audio(ENDPOINT_CHUNKS, SILENCE)]))
    (third,) = session.take_requests()
    assert third.options.initial_prompt == "Names: friends."
    assert not third.options.condition_on_previous_text


def test_a_restatement_without_word_times_drops_whole_segments():
    from whisper_live.core.hallucination import drop_repeat

    segments = [Segment(0.0, 0.5, " From fairest"), Segment(0.5, 1.0, " creatures we desire.")]
    restated = [Segment(0.0, 0.3, " 1."), *segments]
    assert drop_repeat(restated, [" 1."]) == segments
    assert drop_repeat(segments, [" 1."]) == segments, "nothing restated: nothing dropped"
    assert drop_repeat([Segment(0.0, 0.3, " Yes.")], [" Yes."]) == [Segment(0.0, 0.3, " Yes.")], "said twice"


def test_a_final_started_at_a_pause_survives_a_commit_and_leaves_its_words_out():
    session = make(Budget(), commit_after=0)
    session.feed(audio(70))
    (first,) = session.take_requests()
    session.decode_done(first, reading(first, UNPUNCTUATED))
    session.feed(audio(32))
    (second,) = session.take_requests()
    session.decode_done(second, reading(second, UNPUNCTUATED))
    assert session.transcript() == "One two Three four"
    session.feed(audio(32))
    (third,) = session.take_requests()  # a partial still decoding when the pause begins
    session.feed(audio(SPECULATE_CHUNKS, SILENCE))
    (speculative,) = session.take_requests()
    assert speculative.kind is DecodeKind.FINAL and speculative.options.word_timestamps
    session.decode_done(third, reading(third, UNPUNCTUATED))  # commits "Five six" (no sentence end)
    assert session.transcript() == "One two Three four Five six"
    session.feed(audio(ENDPOINT_CHUNKS - SPECULATE_CHUNKS, SILENCE))
    assert session.take_requests() == [], "the final started at the pause is the final"
    session.decode_done(speculative, reading(speculative, UNPUNCTUATED))
    assert session.transcript() == "One two Three four Five six Seven eight"


def test_an_utterance_younger_than_commit_after_commits_nothing():
    session = StreamingSession(SessionOptions(language="en", use_vad=False, commit_after=2.5))
    stream_without_vad(session, 2)
    assert session.completed == [] and session.partial.text == " One two. Three"
    stream_without_vad(session, 1)
    assert session.transcript() == "One two. Three four."


# "therefore", heard by greedy partials as "there for", "there" doubted (DOUBTFUL)
GREEDY = [(" Read", 0.1, 0.4, 0.8), (" there", 1.1, 1.3, 0.3), (" for", 1.35, 1.5, 0.8)]
GREEDY += [(" far", 1.6, 1.9, 0.8), (" away", 2.1, 2.4, 0.8)]
BEAM = [(" Read", 0.1, 0.4, 0.8), (" therefore", 1.1, 1.5, 0.6), (" far", 1.6, 1.9, 0.8)]
BEAM += [(" away", 2.1, 2.4, 0.8)]


def heard(request: DecodeRequest, script) -> DecodeResult:
    end = request.end_sample / SAMPLE_RATE
    said = [Word(a, b, t, p) for t, a, b, p in script if b <= end]
    return DecodeResult(
        [Segment(0.1, said[-1].end, "".join(w.word for w in said), words=said)], "en", 1.0, end
    )


def doubt_in_agreed_words(session: StreamingSession, busy: Budget | None = None) -> list[DecodeRequest]:
    """Three greedy partials (1, 2, 3 s); the last two agree on "there for far", doubting
    "there" 1.7 s before the audio's end. Returns what the session asked for next. ``busy``:
    the session's budget, which says no from the last result on."""
    return doubt_in_agreed_words_of(session, GREEDY, busy)


def doubt_in_agreed_words_of(
    session: StreamingSession, script, busy: Budget | None = None
) -> list[DecodeRequest]:
    for second in range(3):
        session.feed(np.zeros(SAMPLE_RATE, np.float32))
        (request,) = session.take_requests()
        assert request.options.beam_size == 1
        if busy is not None and second == 2:
            busy.partial = False
        session.decode_done(request, heard(request, script))
    return session.take_requests()


def test_words_greedy_partials_agree_on_but_doubt_are_settled_by_beam_decodes():
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False))
    (confirm,) = doubt_in_agreed_words(session)
    assert session.transcript() == "Read", "the doubted words wait for the beam"
    assert confirm.kind is DecodeKind.PARTIAL and confirm.options.beam_size == 5
    assert confirm.options.word_timestamps and confirm.start_sample == 0
    assert confirm.end_sample == 3 * SAMPLE_RATE, "the window up to the latest audio"
    session.feed(np.zeros(SAMPLE_RATE // 2, np.float32))  # audio goes on while it decodes
    session.decode_done(confirm, heard(confirm, BEAM))
    assert session.transcript() == "Read", "one beam reading against the greedy agreement's"
    (again,) = session.take_requests()
    assert again.options.beam_size == 5 and again.end_sample > confirm.end_sample, "another, with more audio"
    session.decode_done(again, heard(again, BEAM))
    assert session.transcript() == "Read therefore far", "two beam readings agree: committed"
    assert session.partial is None or "there" not in session.partial.text
    session.feed(np.zeros(SAMPLE_RATE, np.float32))
    (after,) = session.take_requests()
    assert after.options.beam_size == 1, "greedy partials again"


def test_a_beam_reading_as_the_greedy_agreement_is_committed_at_once():
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False))
    (confirm,) = doubt_in_agreed_words(session)
    session.decode_done(confirm, heard(confirm, GREEDY))
    assert session.transcript() == "Read there for far"


# "with the thousands of spectators": greedy partials agree on it, doubting "the"; a beam
# decode whose audio ends right after "spectators" drops "the", one with more audio keeps it
THOUSANDS = [(" with", 0.1, 0.4, 0.9), (" the", 1.1, 1.3, 0.4), (" thousands", 1.35, 1.5, 0.9)]
THOUSANDS += [(" of", 1.6, 1.9, 0.9), (" spectators", 2.1, 2.4, 0.9)]


def test_a_beam_decode_that_drops_a_doubted_word_is_checked_by_another():
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False))
    (confirm,) = doubt_in_agreed_words_of(session, THOUSANDS)
    assert session.transcript() == "with"
    dropped = [w for w in THOUSANDS if w[0] != " the"]
    session.feed(np.zeros(SAMPLE_RATE // 2, np.float32))
    session.decode_done(confirm, heard(confirm, dropped))
    assert session.transcript() == "with", '"thousands of" read against "the thousands of": held'
    (again,) = session.take_requests()
    assert again.options.beam_size == 5
    session.decode_done(again, heard(again, THOUSANDS))
    assert session.transcript() == "with the thousands of", "as the greedy agreement: two readings agree"


def test_beam_decodes_that_keep_disagreeing_are_committed_after_confirm_readings():
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False))
    (request,) = doubt_in_agreed_words_of(session, THOUSANDS)
    with_ = (" with", 0.1, 0.4, 0.9)
    of = (" of", 1.6, 1.9, 0.9)
    readings = [
        [with_, (" thousands", 1.1, 1.5, 0.9), of],
        [with_, (" a", 1.1, 1.3, 0.9), (" thousand", 1.35, 1.5, 0.9), of],
        [with_, (" these", 1.1, 1.3, 0.9), (" thousands", 1.35, 1.5, 0.9), of],
    ]
    assert len(readings) == CONFIRM_READINGS
    for script in readings[:-1]:
        session.feed(np.zeros(SAMPLE_RATE // 2, np.float32))
        session.decode_done(request, heard(request, script))
        assert session.transcript() == "with"
        (request,) = session.take_requests()
        assert request.options.beam_size == 5
    session.decode_done(request, heard(request, readings[-1]))
    assert session.transcript() == "with these thousands of", (
        f"after {CONFIRM_READINGS} readings that all differ, the last beam's is committed"
    )
    session.feed(np.zeros(SAMPLE_RATE, np.float32))
    (after,) = session.take_requests()
    assert after.options.beam_size == 1, "greedy partials again"


def test_without_a_beam_decode_a_doubted_word_is_held_as_before():
    session = StreamingSession(
        SessionOptions(commit_after=0, language="en", use_vad=False, confirm_doubtful=False)
    )
    assert doubt_in_agreed_words(session) == []
    assert session.transcript() == "Read"
    busy = Budget()
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False), budget=busy)
    assert doubt_in_agreed_words(session, busy) == [], "optional like any partial: not when busy"
    assert session.transcript() == "Read"
    busy.partial = True
    session.feed(np.zeros(SAMPLE_RATE, np.float32))
    (request,) = session.take_requests()
    session.decode_done(request, heard(request, GREEDY))
    assert session.transcript() == "Read there for far away", "old enough: committed all the same"


def test_where_words_may_be_committed_a_partial_hides_what_a_beam_would_confirm():
    heard = [
        Word(0.1, 0.4, " to", 0.8),
        Word(0.5, 0.7, " each", 0.4),  # doubted: a beam decode would settle it before its commit
        Word(0.8, 1.0, " the", 0.8),
        Word(1.1, 1.4, " world's", 0.8),
    ]
    for commit_after, partial in ((100, " to each the world's"), (0, " to")):
        session = StreamingSession(SessionOptions(commit_after=commit_after, language="en", use_vad=False))
        session.feed(np.zeros(2 * SAMPLE_RATE, np.float32))
        (request,) = session.take_requests()
        session.decode_done(
            request, DecodeResult([Segment(0.1, 1.4, " to each the world's", words=heard)], "en", 1.0, 2.0)
        )
        assert session.partial.text == partial, commit_after


# Greedy partials: one whose audio ends right after "thousands of" reads "the", the next,
# with "spectators" heard, drops it (tiny.en on LibriSpeech 1272-141231-0002)
EARLY = [(" with", 0.1, 0.4, 0.9), (" the", 1.1, 1.3, 0.8), (" thousands", 1.35, 1.5, 0.9)]
EARLY += [(" of", 1.6, 1.9, 0.9)]
LATE = [(" with", 0.1, 0.4, 0.9), (" thousands", 1.1, 1.5, 0.9), (" of", 1.6, 1.9, 0.9)]
LATE += [(" spectators", 2.1, 2.4, 0.9)]


def two_readings(session: StreamingSession) -> list[DecodeRequest]:
    """Partials at 1, 2 and 3 s: "with" committed, then "the thousands of" against
    "thousands of spectators". Returns what the session asked for next."""
    for script in (EARLY, EARLY, LATE):
        session.feed(np.zeros(SAMPLE_RATE, np.float32))
        (request,) = session.take_requests()
        assert request.options.beam_size == 1
        session.decode_done(request, heard(request, script))
    return session.take_requests()


def test_a_word_two_greedy_partials_read_differently_is_settled_by_a_beam_decode():
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False))
    (confirm,) = two_readings(session)
    assert session.transcript() == "with", "not the newer reading at once"
    assert confirm.options.beam_size == 5
    session.feed(np.zeros(SAMPLE_RATE // 2, np.float32))
    session.decode_done(confirm, heard(confirm, EARLY + LATE[-1:]))
    assert session.transcript() == "with the thousands of", "the beam reads as the older one: two agree"


def test_without_a_beam_decode_the_newer_reading_of_a_changed_word_is_committed():
    busy = Budget()
    session = StreamingSession(SessionOptions(commit_after=0, language="en", use_vad=False), budget=busy)
    for n, script in enumerate((EARLY, EARLY, LATE)):
        session.feed(np.zeros(SAMPLE_RATE, np.float32))
        (request,) = session.take_requests()
        busy.partial = n < 2  # busy from the last result on
        session.decode_done(request, heard(request, script))
    assert session.take_requests() == []
    assert session.transcript() == "with thousands of", "as before: it heard more"
