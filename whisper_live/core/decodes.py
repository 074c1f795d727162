"""The plain data of one decode: what is asked (``DecodeOptions``) and what comes back.

Streaming sessions, whole-file transcription and every face describe work in these
terms; only ``engine.decoding`` turns them into faster-whisper calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Word:
    start: float
    end: float
    word: str
    probability: float = 0.0
    speaker: str | None = None  # set by diarization


@dataclass
class TokenLogprob:
    """One decoded text token: its piece of text as the tokenizer yields it, the model's log
    probability of it, and its UTF-8 bytes (a character split across tokens is whole in none)."""

    token: str
    logprob: float
    bytes: bytes


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
    speaker: str | None = None  # set by diarization
    logprobs: list[TokenLogprob] | None = None  # per text token, when asked (token_logprobs)

    def shifted(self, offset: float) -> Segment:
        words = (
            [Word(w.start + offset, w.end + offset, w.word, w.probability, w.speaker) for w in self.words]
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
    # The previous window's own tokens, timestamps included, to condition this one on (taken
    # before ``initial_prompt``), as faster-whisper's seek loop carries them from window to
    # window: carried as plain text instead, Whisper (tiny.en and base) often stops emitting
    # timestamps and returns a 20-30 s window as one segment (docs/BENCHMARKS.md). Sequential
    # decodes only: the batched pipeline takes a text prompt.
    previous_tokens: tuple[int, ...] = ()
    hotwords: str | None = None
    word_timestamps: bool = False
    without_timestamps: bool = False
    condition_on_previous_text: bool = True
    vad_filter: bool = False
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    batch_size: int = 1
    # Token ids never to emit, added to Whisper's usual set (e.g. every token with a digit,
    # so numbers come out spelled); None: faster-whisper's default.
    suppress_tokens: tuple[int, ...] | None = None
    # Most seconds of speech merged into one VAD chunk for the batched pipeline, and the
    # longest piece a long file is cut into otherwise; None: Whisper's 30 s window.
    chunk_length: int | None = None
    # Encode only the audio plus a margin instead of a padded 30 s window (streaming
    # utterances); see ``decode_fitted``.
    fit_window: bool = False
    # Each text token's log probability on its segment (needs word_timestamps: they are read
    # in the word-timing pass, which computes them anyway).
    token_logprobs: bool = False
    # Decode again, one window at a time, VAD speech the sequential decode left without text
    # (``decoding.uncovered_speech``): Whisper's timestamp-driven seek can jump over seconds of
    # speech. Whole-file uploads ask for it; streams re-decode their buffer anyway. The
    # batched pipeline always does it.
    cover_speech: bool = False


@dataclass
class DecodeResult:
    segments: list[Segment]
    language: str
    language_probability: float
    duration: float

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()
