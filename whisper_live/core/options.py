"""How a client wants its stream transcribed, and the knobs of the streaming policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from .vad import VadParameters

# ``commit_after`` of a diarized stream: a completed segment is labelled with its speaker the
# moment it is sent, and word-by-word commits (a second or two of one speaker's audio) came
# before the live speaker model knew the voices (two speakers labelled as one, three as
# five); an utterance's first seconds wait for its final, as before LocalAgreement-2.
DIARIZED_COMMIT_AFTER = 10.0


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
    # Long speech (LocalAgreement): committed words stay in the window as context until a
    # sentence ends, or until the window is ``cut_after`` seconds long; a window that
    # reaches ``max_window`` with nothing agreed commits its older half regardless.
    cut_after: float = 12.0
    # Seconds an utterance must have lasted before LocalAgreement commits any of it (0: word
    # by word, from the first agreement; more: until then only its beam final completes
    # text). Word by word is the default since beam confirms of doubted words: on utterances
    # between pauses it reads as the final-only policy does (simulated on 47 utterances and
    # measured at 1-32 streams, docs/BENCHMARKS.md "Word by word by default"), and on
    # continuous speech it completes words 1.4 s after they are spoken instead of at the
    # next pause, with a tenth of the rewriting. A client that wants whole utterances
    # decoded by the beam asks for e.g. 8 (WhisperLive config ``commit_after``).
    commit_after: float = 0.0
    max_window: float = 24.0
    # Words greedy partials agree on but Whisper doubts are settled by one beam decode of
    # the window (``StreamingSession._confirm``) instead of waiting and committing the
    # greedy reading.
    confirm_doubtful: bool = True
    prompt_chars: int = 200
    condition_on_previous_text: bool = True
    # Seconds of finals whose detections settle the stream's one language (language=None).
    language_detect_seconds: float = 3.0
    # Only when the client asks (a stream that changes language, e.g. an interpreter): every
    # final detects its own language, and a change is announced; partials follow the last.
    redetect_language: bool = False
    fit_window: bool = True  # encode at the utterance's own length (decoding.decode_fitted_batch)
