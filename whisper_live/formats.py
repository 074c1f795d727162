"""Transcript files: SRT, WebVTT and plain text, from anything with start, end and text (and
a speaker, when diarized, written before the text as WhisperX does)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _field(segment: Any, name: str):
    return segment[name] if isinstance(segment, dict) else getattr(segment, name)


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, int(round(float(seconds) * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _clean(text: str) -> str:
    # A blank line ends a cue in both formats, so a cue's text may not contain one.
    text = "\n".join(line.strip() for line in text.splitlines() if line.strip())
    return text.replace("-->", "->")


def _speaker(segment: Any) -> str | None:
    return segment.get("speaker") if isinstance(segment, dict) else getattr(segment, "speaker", None)


def _cues(segments: Iterable[Any], vtt: bool = False):
    """(start, end, text) per cue; for WebVTT the text is escaped, except the underline of a
    highlighted cue (``highlighted_cues``), which is WebVTT markup (``<u>``) as in SRT. A
    diarized segment's text starts with its speaker as WhisperX writes it
    (``[SPEAKER_00]: ...``)."""
    for seg in segments:
        marked = seg.get(HIGHLIGHT) if isinstance(seg, dict) else None
        if marked is not None and vtt:
            before, word, after = marked
            text = _clean(f"{_vtt_escape(before)}<u>{_vtt_escape(word)}</u>{_vtt_escape(after)}")
        else:
            text = _clean(str(_field(seg, "text")))
            text = _vtt_escape(text) if vtt else text
        if text and _speaker(seg):
            text = f"[{_speaker(seg)}]: {text}"
        if text:
            start = float(_field(seg, "start"))
            yield start, max(start, float(_field(seg, "end"))), text


def to_srt(segments: Iterable[Any]) -> str:
    blocks = [
        f"{i}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{text}\n"
        for i, (start, end, text) in enumerate(_cues(segments), 1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    """WebVTT cue text is markup: ``<`` opens a tag and ``&`` an entity, so literal ones are
    written as entities (``>`` too, for parsers that are strict about it). SRT has no such
    rule: players show its text as it is."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(segments: Iterable[Any]) -> str:
    blocks = [
        f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{text}\n"
        for start, end, text in _cues(segments, vtt=True)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_text(segments: Iterable[Any]) -> str:
    return " ".join(text for _, _, text in _cues(segments)) + "\n"


def to_audacity(segments: Iterable[Any]) -> str:
    """Audacity's label track: one ``start<TAB>end<TAB>label`` line per segment, in seconds."""
    return "".join(
        f"{start:.6f}\t{end:.6f}\t{' '.join(text.splitlines())}\n" for start, end, text in _cues(segments)
    )


# A highlighted cue's (text before, the word, text after), for formats with markup to write.
HIGHLIGHT = "highlight"


def highlighted_cues(segments: Iterable[Any]) -> list[dict]:
    """Word-by-word cues for ``to_srt``/``to_vtt``, as WhisperX's ``highlight_words`` writes
    them: each word's cue shows its segment's text with that word underlined (``<u>``), and a
    gap between words shows the text plain. A segment without word timings is one cue."""
    cues = []
    for seg in segments:
        words = _field(seg, "words") if isinstance(seg, dict) else getattr(seg, "words", None)
        if not words:
            cues.append(
                {
                    "start": _field(seg, "start"),
                    "end": _field(seg, "end"),
                    "text": _field(seg, "text"),
                    "speaker": _speaker(seg),
                }
            )
            continue
        texts = [str(_field(w, "word")) for w in words]
        plain = "".join(texts)
        previous_end = float(_field(seg, "start"))
        for i, word in enumerate(words):
            start, end = float(_field(word, "start")), float(_field(word, "end"))
            if start > previous_end:
                cues.append({"start": previous_end, "end": start, "text": plain, "speaker": _speaker(seg)})
            spoken = texts[i].strip()
            lead = texts[i][: len(texts[i]) - len(texts[i].lstrip())]
            before, after = "".join(texts[:i]) + lead, "".join(texts[i + 1 :])
            cues.append(
                {
                    "start": start,
                    "end": end,
                    "text": f"{before}<u>{spoken}</u>{after}",
                    "speaker": _speaker(seg),
                    HIGHLIGHT: (before, spoken, after),
                }
            )
            previous_end = max(previous_end, end)
    return cues
