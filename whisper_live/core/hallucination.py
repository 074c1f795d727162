"""Which decoded segments are Whisper talking over silence or looping rather than speech."""

from __future__ import annotations

import re

from .decodes import Segment

# Whisper's rule for "this window is silence", as in faster-whisper and OpenAI's whisper.
LOGPROB_SILENCE = -1.0
# Text repeated so often that gzip shrinks it this much is a decoding loop, not speech.
COMPRESSION_LOOP = 2.4

_WORD_CHARACTER = re.compile(r"[\w']")


def is_silence(segment: Segment, no_speech_threshold: float) -> bool:
    """Whisper's own test for a hallucinated segment over silence or noise."""
    return (
        segment.no_speech_prob > no_speech_threshold and segment.avg_logprob < LOGPROB_SILENCE
    ) or segment.compression_ratio > COMPRESSION_LOOP


def is_speech(segment: Segment, no_speech_threshold: float) -> bool:
    """Worth showing: it has a word (not only punctuation, as in " ..." over noise) and passes
    Whisper's silence and loop test."""
    return _WORD_CHARACTER.search(segment.text) is not None and not is_silence(segment, no_speech_threshold)


# A stream cut short (Finalize, CloseStream, END_OF_AUDIO, a time limit, a shutdown) ends
# its last utterance wherever the speaker was, often mid-word. Whisper then completes the
# sentence it expects ("... I'm not fixing the stuff.", "... Thank you."): words past the
# speech, squeezed into the last instant, or guessed from half a word.
# A word this unlikely at the cut is a guess at a half-spoken word.
CUT_WORD_PROBABILITY = 0.5
# Words starting this long after the VAD's last speech were not heard.
AFTER_SPEECH = 0.2
# A word this short ending at the cut is squeezed into the last instant: invented.
SQUEEZED_WORD = 0.04
_NEAR_CUT = 0.1


def trim_cut(segments: list[Segment], speech_end: float, cut: float) -> list[Segment]:
    """The segments of a final forced at ``cut`` (stream seconds, the audio's end), minus
    the words that were not said: any word starting more than ``AFTER_SPEECH`` after the
    VAD's last speech (``speech_end``), then, from the end, each word near the cut that is
    squeezed (shorter than ``SQUEEZED_WORD``) or unlikely (below ``CUT_WORD_PROBABILITY``).
    Segments without word times are kept as they are; segments left with no word go."""
    kept: list[Segment] = []
    for segment in segments:
        if segment.words is None:
            kept.append(segment)
            continue
        words = [w for w in segment.words if w.start <= speech_end + AFTER_SPEECH]
        kept.append(_with_words(segment, words))
    while kept and kept[-1].words is not None:
        words = kept[-1].words
        while words and _doubtful_at_cut(words[-1], cut):
            words = words[:-1]
        kept[-1] = _with_words(kept[-1], words)
        if words:
            break
        kept.pop()
    return [s for s in kept if s.words is None or s.words]


def _doubtful_at_cut(word, cut: float) -> bool:
    near = word.end >= cut - _NEAR_CUT
    return near and (word.probability < CUT_WORD_PROBABILITY or word.end - word.start < SQUEEZED_WORD)


def _with_words(segment: Segment, words: list) -> Segment:
    if segment.words is not None and len(words) == len(segment.words):
        return segment
    text = "".join(w.word for w in words)
    end = words[-1].end if words else segment.start
    return Segment(**{**segment.__dict__, "text": text, "end": end, "words": list(words)})


def _normalized_words(text: str) -> list[str]:
    return [w for w in (_NON_WORD.sub("", word.lower()) for word in text.split()) if w]


_NON_WORD = re.compile(r"[^\w']")
# Restating this many words of the transcript's end (or all of its last segment) is a repeat.
REPEAT_WORDS = 3


def drop_repeat(segments: list[Segment], before: list[str]) -> list[Segment]:
    """A forced final that begins by restating the text before it (Whisper echoing its
    prompt: " 1." then " 1. From fairest creatures ..."), without that restatement.

    ``before`` is the completed text, oldest first, by segment. A repeat is the final's
    first words equal to the transcript's last words, at least ``REPEAT_WORDS`` of them, or
    its whole last segment followed by more words (a final that only says again a short
    segment, "Yes." after "Yes.", may well have been said twice)."""
    if not segments or not before:
        return segments
    last = _normalized_words(before[-1])
    tail = _normalized_words(" ".join(before[-4:]))
    words = [w for s in segments for w in (s.words or [])]
    head = _normalized_words("".join(s.text for s in segments))
    overlap = 0
    for n in range(min(len(tail), len(head)), 0, -1):
        if head[:n] == tail[-n:]:
            overlap = n
            break
    if overlap == 0 or (overlap < REPEAT_WORDS and (overlap < len(last) or overlap == len(head))):
        return segments
    if len(words) != len(head):  # no word times to cut at: drop whole segments that repeat
        out, dropped = [], 0
        for segment in segments:
            count = len(_normalized_words(segment.text))
            if dropped + count <= overlap and not out:
                dropped += count
                continue
            out.append(segment)
        return out
    out = []
    skip = overlap
    for segment in segments:
        seg_words = segment.words or []
        take = min(skip, len(seg_words))
        skip -= take
        if take == len(seg_words):
            continue
        rest = seg_words[take:]
        trimmed = _with_words(segment, rest)
        out.append(Segment(**{**trimmed.__dict__, "start": rest[0].start}))
    return out
