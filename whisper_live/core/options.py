"""How a client wants its stream transcribed, and the knobs of the streaming policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from .vad import VadParameters

# ``commit_after`` of a diarized stream: a completed segment is labelled with its speaker the
# moment it is sent, and word-by-word commits (a second or two of one speaker's audio) came
# before the live speaker model knew the voices (two speakers labelled as one, three as
# five); an utterance's first seconds wait for its final, as before LocalAgreement-2.
DIARIZED_COMMIT_AFTER = 10.0
# The longest ``commit_after`` a client may ask for (an hour: longer means "never").
MAX_COMMIT_AFTER = 3600.0


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
    # Seconds an utterance must have lasted before LocalAgreement commits any of it: until
    # then only its beam final completes text (0: commit from the first agreement, word by
    # word). Committing greedy partials' words cost 1.1-1.7 WER points on utterances between
    # pauses (one stream and 16-32 streams, docs/BENCHMARKS.md "Long-form streaming" and
    # "Twice the streams per core"); at 8 s they are decoded whole by the beam final as
    # before, and only long speech without a pause is committed while it goes on. A client
    # that wants word-by-word captions asks for 0 (WhisperLive config ``commit_after``).
    # With beam confirms, 0 reads as 8 s does on short utterances too (docs/BENCHMARKS.md
    # "Word by word as the default: measured, not yet"), but over WhisperLive's protocol
    # every commit is a completed segment of its own, and upstream's clients show a segment
    # per line. Our page asks for 0 and joins the pieces into lines (client/transcript.js).
    commit_after: float = 8.0
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
