"""One faster-whisper call, and the plain data that goes in and comes out of it.

Both the streaming sessions and the REST API describe work as ``DecodeOptions`` plus an
array, and read ``DecodeResult``; only ``run_decode`` touches faster-whisper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Whisper's rule for "this window is silence", as in faster-whisper and OpenAI's whisper.
LOGPROB_SILENCE = -1.0
# Text repeated so often that gzip shrinks it this much is a decoding loop, not speech.
COMPRESSION_LOOP = 2.4


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float = 0.0


@dataclass
class Segment:
    start: float
    end: float
    text: str
    id: int = 0
    seek: int = 0
    tokens: list[int] = field(default_factory=list)
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: list[Word] | None = None

    def shifted(self, offset: float) -> Segment:
        words = (
            [Word(w.start + offset, w.end + offset, w.word, w.probability) for w in self.words]
            if self.words is not None
            else None
        )
        return Segment(
            **{**self.__dict__, "start": self.start + offset, "end": self.end + offset, "words": words}
        )


@dataclass
class DecodeOptions:
    language: str | None = None
    task: str = "transcribe"
    beam_size: int = 5
    best_of: int = 5
    temperature: float | tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    initial_prompt: str | None = None
    hotwords: str | None = None
    word_timestamps: bool = False
    without_timestamps: bool = False
    condition_on_previous_text: bool = True
    vad_filter: bool = False
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    batch_size: int = 1


@dataclass
class DecodeResult:
    segments: list[Segment]
    language: str
    language_probability: float
    duration: float

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()


def is_silence(segment: Segment, no_speech_threshold: float) -> bool:
    """Whisper's own test for a hallucinated segment over silence or noise."""
    return (
        segment.no_speech_prob > no_speech_threshold and segment.avg_logprob < LOGPROB_SILENCE
    ) or segment.compression_ratio > COMPRESSION_LOOP


def run_decode(model, audio: np.ndarray, options: DecodeOptions) -> DecodeResult:
    """Decode ``audio`` (16 kHz float32) with a loaded ``WhisperModel``; blocking."""
    kwargs = dict(
        language=options.language,
        task=options.task,
        beam_size=options.beam_size,
        best_of=options.best_of,
        temperature=options.temperature,
        initial_prompt=options.initial_prompt or None,
        hotwords=options.hotwords or None,
        word_timestamps=options.word_timestamps,
        without_timestamps=options.without_timestamps,
        condition_on_previous_text=options.condition_on_previous_text,
        vad_filter=options.vad_filter,
        no_speech_threshold=options.no_speech_threshold,
        log_prob_threshold=options.log_prob_threshold,
        compression_ratio_threshold=options.compression_ratio_threshold,
    )
    if options.batch_size > 1:
        from faster_whisper import BatchedInferencePipeline

        pipeline = BatchedInferencePipeline(model)
        kwargs.pop("condition_on_previous_text")
        kwargs["vad_filter"] = True
        segments_iter, info = pipeline.transcribe(audio, batch_size=options.batch_size, **kwargs)
    else:
        segments_iter, info = model.transcribe(audio, **kwargs)
    segments = []
    for i, seg in enumerate(segments_iter):
        words = (
            [Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in seg.words]
            if seg.words is not None
            else None
        )
        segments.append(
            Segment(
                id=i,
                seek=int(seg.seek),
                start=float(seg.start),
                end=float(seg.end),
                text=seg.text,
                tokens=list(seg.tokens),
                temperature=float(seg.temperature or 0.0),
                avg_logprob=float(seg.avg_logprob),
                compression_ratio=float(seg.compression_ratio),
                no_speech_prob=float(seg.no_speech_prob),
                words=words,
            )
        )
    return DecodeResult(
        segments=segments,
        language=info.language,
        language_probability=float(info.language_probability),
        duration=float(info.duration),
    )
