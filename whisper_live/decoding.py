"""One faster-whisper call, and the plain data that goes in and comes out of it.

Both the streaming sessions and the REST API describe work as ``DecodeOptions`` plus an
array, and read ``DecodeResult``; only ``run_decode`` touches faster-whisper.
"""

from __future__ import annotations

import re
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
    # Encode only the audio plus a margin instead of a padded 30 s window (streaming
    # utterances); see ``decode_fitted``.
    fit_window: bool = False


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
    if options.fit_window:
        result = decode_fitted(model, audio, options)
        if result is not None:
            return result
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


# A fitted window: the utterance plus this much padding, never less than FIT_MIN_WINDOW.
# Measured on 53 English clips (docs/BENCHMARKS.md): shorter margins make tiny.en loop more.
FIT_MARGIN = 2.0
FIT_MIN_WINDOW = 10.0
FULL_WINDOW = 30.0
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"


def decode_fitted(model, audio: np.ndarray, options: DecodeOptions) -> DecodeResult | None:
    """One decode of a short utterance with the encoder run on its own length.

    CTranslate2 encodes whatever length it is given, and the encoder is most of a decode's
    cost: for tiny.en on one core a 30 s window takes ~0.7 s and a 10 s one ~0.1 s. Whisper
    was trained on 30 s windows only, so on a shorter one it does not know where the audio
    ends and may run on past it or repeat itself. Three guards keep that out: timestamps
    past the audio are suppressed, output is capped near what the duration can hold, and a
    result that still looks like a loop (or scores below the log-prob threshold) returns
    None so the caller decodes the padded window, with temperature fallback, as usual.
    Also None when the language must still be detected (that uses the full window).
    """
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

    sample_rate = model.feature_extractor.sampling_rate
    duration = len(audio) / sample_rate
    window = max(FIT_MIN_WINDOW, duration + FIT_MARGIN)
    multilingual = model.model.is_multilingual
    language = options.language or (None if multilingual else "en")
    if window > FULL_WINDOW or language is None or options.batch_size > 1:
        return None
    padded = np.zeros(int(window * sample_rate), np.float32)
    padded[: len(audio)] = audio
    features = model.feature_extractor(padded, padding=0)[:, : model.feature_extractor.nb_max_frames]
    encoder_output = model.encode(features)

    tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task=options.task, language=language)
    previous = tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
    prompt = model.get_prompt(
        tokenizer, previous, without_timestamps=options.without_timestamps, hotwords=options.hotwords
    )
    content_frames = int(round(duration * model.frames_per_second))
    last_timestamp = int(np.ceil(duration / model.time_precision))
    suppress = get_suppressed_tokens(tokenizer, [-1])
    if not options.without_timestamps:
        first = tokenizer.timestamp_begin
        suppress = [
            *suppress,
            *range(first + last_timestamp + 1, first + int(FULL_WINDOW / model.time_precision) + 1),
        ]
    cap = min(model.max_length, len(prompt) + int(10 + 8 * duration))
    result = model.model.generate(
        encoder_output,
        [prompt],
        beam_size=options.beam_size,
        max_length=cap,
        suppress_blank=True,
        suppress_tokens=suppress,
        max_initial_timestamp_index=int(round(1.0 / model.time_precision)),
        return_scores=True,
        return_no_speech_prob=True,
    )[0]
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    text = tokenizer.decode(tokens)
    silent = result.no_speech_prob > options.no_speech_threshold
    if not silent and (
        len(prompt) + len(tokens) >= cap - 1
        or _repeats(text)
        or get_compression_ratio(text) > 2.0
        or avg_logprob < options.log_prob_threshold
    ):
        return None

    pieces, _, _ = model._split_segments_by_timestamps(
        tokenizer=tokenizer,
        tokens=tokens,
        time_offset=0.0,
        segment_size=content_frames,
        segment_duration=duration,
        seek=0,
    )
    pieces = [p for p in pieces if any(t < tokenizer.eot for t in p["tokens"])]
    if options.word_timestamps and pieces:
        model.add_word_timestamps([pieces], tokenizer, encoder_output, content_frames, _PREPEND, _APPEND, 0.0)
    segments = []
    for i, piece in enumerate(pieces):
        piece_text = tokenizer.decode(piece["tokens"])
        words = (
            [
                Word(float(w["start"]), float(w["end"]), w["word"], float(w["probability"]))
                for w in piece["words"]
            ]
            if options.word_timestamps
            else None
        )
        segments.append(
            Segment(
                id=i,
                start=float(min(piece["start"], duration)),
                end=float(min(piece["end"], duration)),
                text=piece_text,
                tokens=list(piece["tokens"]),
                avg_logprob=float(avg_logprob),
                compression_ratio=float(get_compression_ratio(piece_text)),
                no_speech_prob=float(result.no_speech_prob),
                words=words,
            )
        )
    return DecodeResult(segments, language, 1.0, duration)


def _repeats(text: str, n: int = 4) -> bool:
    """Does any run of ``n`` words occur twice? The usual shape of a decoding loop."""
    words = re.sub(r"[^\w' ]+", " ", text.lower()).split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))
