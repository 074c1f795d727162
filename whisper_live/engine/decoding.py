"""The faster-whisper calls: the only module that runs the model.

Streams and files describe work as ``core.decodes.DecodeOptions`` plus an array and read
``DecodeResult``; ``run_decodes`` turns that into padded (faster-whisper's own) or fitted
(encoder on the utterance's own length) decodes.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import threading
from dataclasses import replace

import numpy as np

from ..core.decodes import DecodeOptions, DecodeResult, Segment, TokenLogprob, Word


def run_decode(model, audio: np.ndarray, options: DecodeOptions) -> DecodeResult:
    """Decode ``audio`` (16 kHz float32) with a loaded ``WhisperModel``; blocking."""
    return run_decodes(model, [audio], [options])[0]


def _decode_padded(model, audio: np.ndarray, options: DecodeOptions) -> DecodeResult:
    """faster-whisper's own transcription: padded 30 s windows, temperature fallback."""
    kwargs = dict(
        language=options.language,
        task=options.task,
        beam_size=options.beam_size,
        best_of=options.best_of,
        temperature=options.temperature,
        initial_prompt=list(options.previous_tokens) or options.initial_prompt or None,
        hotwords=options.hotwords or None,
        word_timestamps=options.word_timestamps,
        without_timestamps=options.without_timestamps,
        condition_on_previous_text=options.condition_on_previous_text,
        vad_filter=options.vad_filter,
        no_speech_threshold=options.no_speech_threshold,
        log_prob_threshold=options.log_prob_threshold,
        compression_ratio_threshold=options.compression_ratio_threshold,
        suppress_tokens=[-1, *options.suppress_tokens] if options.suppress_tokens else [-1],
    )
    logprobs = options.token_logprobs and options.word_timestamps
    with _recording(model) if logprobs else contextlib.nullcontext([]) as aligned:
        if options.batch_size > 1:
            from faster_whisper import BatchedInferencePipeline

            pipeline = BatchedInferencePipeline(model)
            kwargs.pop("condition_on_previous_text")
            kwargs["initial_prompt"] = options.initial_prompt or None  # text only
            kwargs["vad_filter"] = True
            segments_iter, info = pipeline.transcribe(
                audio, batch_size=options.batch_size, chunk_length=options.chunk_length, **kwargs
            )
            result = _cover(
                model, audio, options, _unloop(model, audio, options, _result(segments_iter, info))
            )
        else:
            result = _result(*model.transcribe(audio, **kwargs))
            if options.cover_speech:
                result = _cover(model, audio, options, result)
    return _with_token_logprobs(model, result, aligned) if logprobs else result


# ----------------------------------------------------------------------------- token logprobs
#
# faster-whisper reports one probability per word: the mean of its tokens' probabilities,
# which its word-timing pass reads from CTranslate2's ``align`` (the decoder run on the
# decoded text: each text token's probability given the audio and the tokens before it).
# Token-level logprobs, as OpenAI returns them, are those same numbers before averaging; a
# thin proxy around the CTranslate2 model records them for the thread that asked, so they
# cost nothing beyond the word timings the request needs anyway.

_RECORD = threading.local()
_INSTALL = threading.Lock()


class _AlignRecorder:
    """The CTranslate2 Whisper model, with ``align`` noting (token, probability) pairs for
    the calling thread while it records; everything else passes through."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)

    def align(self, features, start_sequence, text_tokens, num_frames, **kwargs):
        results = self._model.align(features, start_sequence, text_tokens, num_frames, **kwargs)
        pairs = getattr(_RECORD, "pairs", None)
        if pairs is not None:
            for tokens, result in zip(text_tokens, results):
                pairs.extend(zip(tokens, result.text_token_probs))
        return results


class _recording:
    """``with _recording(model) as pairs``: the align calls of this thread's decode."""

    def __init__(self, model):
        with _INSTALL:
            if not isinstance(model.model, _AlignRecorder):
                model.model = _AlignRecorder(model.model)
        self.pairs: list[tuple[int, float]] = []

    def __enter__(self) -> list[tuple[int, float]]:
        _RECORD.pairs = self.pairs
        return self.pairs

    def __exit__(self, *exc) -> None:
        _RECORD.pairs = None


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet (Whisper's tokenizer) back to bytes."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes)}


def _token_bytes(tokenizer, token_id: int) -> bytes:
    piece = tokenizer.id_to_token(token_id) or ""
    table = _byte_decoder()
    return bytes(table[ch] for ch in piece if ch in table)


def _with_token_logprobs(model, result: DecodeResult, pairs: list[tuple[int, float]]) -> DecodeResult:
    """Give each segment its text tokens' log probabilities from the recorded pairs, matched
    by token id in order (a segment the decode dropped after aligning is skipped over)."""
    tokenizer = model.hf_tokenizer
    eot = tokenizer.token_to_id("<|endoftext|>")
    ids = [token for token, _ in pairs]
    position = 0
    for segment in result.segments:
        text_tokens = [t for t in segment.tokens if t < eot]
        found = _find(ids, text_tokens, position)
        if found is None:
            continue  # not aligned (no words): no logprobs rather than wrong ones
        position = found + len(text_tokens)
        segment.logprobs = []
        for token, probability in pairs[found:position]:
            raw = _token_bytes(tokenizer, token)
            logprob = math.log(max(float(probability), 1e-12))
            segment.logprobs.append(TokenLogprob(raw.decode("utf-8", "replace"), logprob, raw))
    return result


def _find(ids: list[int], wanted: list[int], start: int) -> int | None:
    if not wanted:
        return None
    for i in range(start, len(ids) - len(wanted) + 1):
        if ids[i : i + len(wanted)] == wanted:
            return i
    return None


def _unloop(model, audio: np.ndarray, options: DecodeOptions, result: DecodeResult) -> DecodeResult:
    """Re-decode, one window at a time, what the batched pipeline turned into a loop.

    The batched pipeline has no temperature fallback, so a window that falls into a
    repetition ("of the holes of the holes ...", compression ratio 13) stays that way;
    faster-whisper's own loop retries it at higher temperatures. A looping segment is
    decoded again unbatched, with the silence around it.
    """
    fine = options.compression_ratio_threshold
    good = [s.compression_ratio <= fine for s in result.segments]
    if all(good):
        return result
    rate = model.feature_extractor.sampling_rate
    unbatched = replace(options, batch_size=1, language=options.language or result.language)
    segments: list[Segment] = []
    i = 0
    while i < len(good):
        if good[i]:
            segments.append(result.segments[i])
            i += 1
            continue
        # A run of looping segments, redone at once from the end of the good segment before
        # it to the start of the next: a loop's own timestamps are not to be trusted, and
        # VAD needs the speech's edges.
        last = next((j for j in range(i, len(good)) if good[j]), len(good))
        start = segments[-1].end if segments else 0.0
        end = result.segments[last].start if last < len(good) else result.duration
        redone = _decode_padded(model, audio[int(start * rate) : int(end * rate)], unbatched)
        segments += [s.shifted(start) for s in redone.segments]
        i = last
    for i, segment in enumerate(segments):
        segment.id = i
    return replace(result, segments=segments)


# Speech whose VAD region's text stops this long before the region ends is decoded again.
# The batched pipeline decodes each chunk once, with no seek to go on from where its text
# ended, so a decode that ends early (an end-of-text the sequential loop would have
# continued after) loses the chunk's rest; the sequential loop's timestamp-driven seek can
# jump over whole regions or the start of one (14 s of one generated three-speaker mix).
# Normal results leave the region's padding (0.4 s) and a trailing breath uncovered.
BATCHED_MAX_UNCOVERED = 2.0


def uncovered_speech(
    audio: np.ndarray, rate: int, segments: list[Segment], chunk_length: float | None = None
) -> list[tuple[float, float]]:
    """Spans (seconds) of VAD speech regions that no segment covers, longer than
    ``BATCHED_MAX_UNCOVERED``: before a region's first text, between two texts, after its
    last (the whole region when it has none). The regions are the batched pipeline's own
    (its VAD options, cut at ``chunk_length``), before it merges them into chunks; they
    hold no silence of 2 s or more, so text missing that long inside one is speech skipped
    (the region's padding, 0.4 s at each edge, is not counted)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    vad = VadOptions(max_speech_duration_s=chunk_length or FULL_WINDOW)
    pad = vad.speech_pad_ms / 1000.0
    spans = []
    for region in get_speech_timestamps(audio, vad):
        start, end = region["start"] / rate, region["end"] / rate
        inside = sorted((seg.start, seg.end) for seg in segments if seg.start < end and seg.end > start)
        covered = start  # where the text so far ends
        for seg_start, seg_end in inside:
            if seg_start - max(covered, start + pad) > BATCHED_MAX_UNCOVERED:
                spans.append((covered, seg_start))
            covered = max(covered, seg_end)
        if (end - pad) - covered > BATCHED_MAX_UNCOVERED:
            spans.append((covered, end))
    return spans


# Speech can also be skipped inside a segment: with word timings, a stretch this long without
# a word (between two words, or under one "word" that lasts longer: Whisper stretches the word
# after a skip over it), holding at least WORD_GAP_SPEECH seconds of speech (Silero, pauses of
# 250 ms), is decoded again, the segment around it split there and a stretched word dropped
# (the redo decodes it again). Whisper's words run across pauses rather than leave gaps, so
# this is rare: LJ Speech joined (238 s, tiny.en, as an upload) had one, 46.6-53.2 s inside
# a 14.7 s segment, 5.8 s of speech ("the Gutenberg, or forty-two line Bible ..." missing).
WORD_GAP_SECONDS = 1.5
WORD_GAP_SPEECH = 1.0
# No spoken word lasts this long (read speech's longest are ~1 s): a word that does is a
# timestamp stretched over speech that has no word.
STRETCHED_WORD_SECONDS = 2.0


def unworded_speech(
    audio: np.ndarray, rate: int, segments: list[Segment], skip: list[tuple[float, float]] = ()
) -> list[tuple[float, float]]:
    """Stretches (seconds) longer than ``WORD_GAP_SECONDS`` that no word covers (a word
    over ``STRETCHED_WORD_SECONDS`` covers nothing), between the first word's start and the
    last word's end, holding ``WORD_GAP_SPEECH`` of speech and not overlapping the spans in
    ``skip`` (those ``uncovered_speech`` found). Segments without words have none."""
    words = sorted((w for s in segments for w in s.words or []), key=lambda w: w.start)
    if not words:
        return []
    gaps = []
    covered = words[0].start  # the end of the text so far
    for word in words:
        if word.end - word.start > STRETCHED_WORD_SECONDS:
            continue
        if word.start - covered > WORD_GAP_SECONDS:
            gaps.append((covered, word.start))
        covered = max(covered, word.end)
    if words[-1].end - covered > WORD_GAP_SECONDS:  # the last words stretched
        gaps.append((covered, max(w.end for w in words)))
    gaps = [(a, b) for a, b in gaps if not any(c < b and d > a for c, d in skip)]
    if not gaps:
        return []
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    vad = VadOptions(min_silence_duration_ms=250, speech_pad_ms=0)
    out = []
    for start, end in gaps:
        found = get_speech_timestamps(audio[int(start * rate) : int(end * rate)], vad, sampling_rate=rate)
        if sum(r["end"] - r["start"] for r in found) / rate >= WORD_GAP_SPEECH:
            out.append((start, end))
    return out


def split_at_gaps(segments: list[Segment], gaps: list[tuple[float, float]]) -> list[Segment]:
    """``segments`` without the words that lie inside ``gaps`` (``unworded_speech``'s
    stretched words), each cut where a gap lies between two of its words: the first piece
    keeps the segment's tokens (a word does not carry its own), each piece its words,
    their text and their span; a segment left without words is dropped."""

    def inside(word: Word) -> bool:
        return any(a - 1e-6 <= word.start and word.end <= b + 1e-6 for a, b in gaps)

    out = []
    for segment in segments:
        if not segment.words or not gaps:
            out.append(segment)
            continue
        words = [w for w in segment.words if not inside(w)]
        cuts = [
            i
            for i in range(1, len(words))
            if any(words[i - 1].end <= a and words[i].start >= b for a, b in gaps)
        ]
        if words == segment.words and not cuts:
            out.append(segment)
            continue
        for index, (first, last) in enumerate(zip([0, *cuts], [*cuts, len(words)], strict=True)):
            own = words[first:last]
            if not own:
                continue
            out.append(
                replace(
                    segment,
                    start=segment.start if own[0] is segment.words[0] else own[0].start,
                    end=segment.end if own[-1] is segment.words[-1] else own[-1].end,
                    text="".join(w.word for w in own),
                    tokens=segment.tokens if index == 0 else [],
                    words=own,
                )
            )
    return out


def _cover(model, audio: np.ndarray, options: DecodeOptions, result: DecodeResult) -> DecodeResult:
    """Decode again, one window at a time, speech a decode left without text
    (``uncovered_speech``; with word timings also ``unworded_speech``, the segment around it
    split there), and put what it says in its place, in time order. The redo itself is not
    covered again (``cover_speech`` off), so a span that stays silent ends it."""
    rate = model.feature_extractor.sampling_rate
    spans = uncovered_speech(audio, rate, result.segments, options.chunk_length)
    gaps = unworded_speech(audio, rate, result.segments, spans)
    if not spans and not gaps:
        return result
    unbatched = replace(
        options,
        batch_size=1,
        vad_filter=True,
        cover_speech=False,
        language=options.language or result.language,
    )
    segments = split_at_gaps(list(result.segments), gaps)
    for start, end in [*spans, *gaps]:
        redone = _decode_padded(model, audio[int(start * rate) : int(end * rate)], unbatched)
        segments += [s.shifted(start) for s in redone.segments if s.text.strip()]
    segments.sort(key=lambda s: s.start)
    for i, segment in enumerate(segments):
        segment.id = i
    return replace(result, segments=segments)


def _result(segments_iter, info) -> DecodeResult:
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
# Text that stops this long before the audio does means Whisper took the end of its speech
# for the end of the window (on the same 53 clips: normal results leave <= 0.9 s, the one
# truncation 3.4 s).
FIT_MAX_UNCOVERED = 1.5
FULL_WINDOW = 30.0
# Windows are grouped for batching in steps of this many seconds; a batch is encoded at its
# longest member's window, so a step bounds the padding one member pays for another.
FIT_BATCH_STEP = 5.0
# Previous text a fitted decode is conditioned on, in tokens. CTranslate2 batches only
# prompts of one length, and a stream's 200 characters of history are 40-50 tokens, so a
# fixed cut lets nearly every running stream share a batch.
FIT_PROMPT_TOKENS = 40
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"


def fitted_window(model, audio: np.ndarray, options: DecodeOptions) -> float | None:
    """The window ``decode_fitted`` would encode ``audio`` in, or None if it would decline
    before trying (too long, or the language still to detect)."""
    duration = len(audio) / model.feature_extractor.sampling_rate
    window = max(FIT_MIN_WINDOW, duration + FIT_MARGIN)
    detect = options.language is None and model.model.is_multilingual
    if window > FULL_WINDOW or detect or options.batch_size > 1 or options.suppress_tokens:
        return None
    return window


def batch_key(model, audio: np.ndarray, options: DecodeOptions) -> tuple | None:
    """Decodes with equal keys can share one ``generate`` call (``decode_fitted_batch``):
    the search, the timestamp mode and the prompt's length are per call, the rest per item."""
    window = fitted_window(model, audio, options) if options.fit_window else None
    if window is None:
        return None
    _, prompt = _fitted_prompt(model, options)
    return (int(np.ceil(window / FIT_BATCH_STEP)), options.beam_size, options.without_timestamps, len(prompt))


def _fitted_prompt(model, options: DecodeOptions) -> tuple:
    from faster_whisper.tokenizer import Tokenizer

    tokenizer = Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task=options.task, language=options.language or "en"
    )
    previous = tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
    prompt = model.get_prompt(
        tokenizer,
        previous[-FIT_PROMPT_TOKENS:],
        without_timestamps=options.without_timestamps,
        hotwords=options.hotwords,
    )
    return tokenizer, prompt


def run_decodes(model, audios: list[np.ndarray], options: list[DecodeOptions]) -> list[DecodeResult]:
    """Several decodes on one worker: fitted ones in one batch, the rest (and any the fitted
    window declines) one by one on the padded window."""
    fitted_at = [
        i for i, (a, o) in enumerate(zip(audios, options)) if o.fit_window and fitted_window(model, a, o)
    ]
    results: list[DecodeResult | None] = [None] * len(audios)
    if fitted_at:
        batch = decode_fitted_batch(model, [audios[i] for i in fitted_at], [options[i] for i in fitted_at])
        for i, result in zip(fitted_at, batch):
            results[i] = result
    return [r if r is not None else _decode_padded(model, a, o) for r, a, o in zip(results, audios, options)]


def decode_fitted(model, audio: np.ndarray, options: DecodeOptions) -> DecodeResult | None:
    """One utterance on a fitted window: a batch of one (None: decode it padded instead)."""
    return decode_fitted_batch(model, [audio], [options])[0]


def decode_fitted_batch(
    model, audios: list[np.ndarray], options: list[DecodeOptions]
) -> list[DecodeResult | None]:
    """Decode short utterances with the encoder run on their own length, in one batch.

    CTranslate2 encodes whatever length it is given, and the encoder is most of a decode's
    cost: for tiny.en on one core a 30 s window takes ~0.4-0.7 s and a 10 s one ~0.05-0.1 s.
    Whisper was trained on 30 s windows only, so on a shorter one it does not know where
    the audio ends: it may run on past it, repeat itself, or stop early. Guards keep that
    out: timestamps past the audio are suppressed, output is capped near what the duration
    can hold, and a result that still looks like a loop, leaves the end of the audio without
    text, or scores below the log-prob threshold is None, so the caller decodes the padded
    window, with temperature fallback, as usual. None also where ``fitted_window`` is.

    A batch shares the window (its longest member's), the beam size and the timestamp mode;
    each member is encoded on its own (batched encoding is slower on a CPU) and the
    outputs are stacked for one ``generate``, where batching pays: 8 greedy decodes of 10 s
    windows take 0.30 s together and 0.72 s one by one on one core (bench_model_calls.py).
    """
    import ctranslate2
    from faster_whisper.transcribe import get_suppressed_tokens

    out: list[DecodeResult | None] = [None] * len(audios)
    members = [i for i, (a, o) in enumerate(zip(audios, options)) if fitted_window(model, a, o)]
    if not members:
        return out
    first = options[members[0]]
    tokenizers, prompts = zip(*(_fitted_prompt(model, options[i]) for i in members))
    shared = {(options[i].beam_size, options[i].without_timestamps, len(p)) for i, p in zip(members, prompts)}
    if len(shared) > 1:
        raise ValueError("a fitted batch shares its beam size, timestamp mode and prompt length")
    sample_rate = model.feature_extractor.sampling_rate
    window = max(fitted_window(model, audios[i], options[i]) for i in members)
    features = []
    for i in members:
        padded = np.zeros(int(window * sample_rate), np.float32)
        padded[: len(audios[i])] = audios[i]
        features.append(
            model.feature_extractor(padded, padding=0)[:, : model.feature_extractor.nb_max_frames]
        )
    if model.model.device == "cpu":
        encoded = [model.encode(f) for f in features]
        encoder_output = (
            encoded[0]
            if len(encoded) == 1
            else ctranslate2.StorageView.from_array(np.concatenate([np.asarray(e) for e in encoded]))
        )
    else:  # a GPU encodes a batch at once; word alignment needs a member's own output
        encoder_output = model.encode(np.stack(features))
        encoded = [model.encode(f) if options[i].word_timestamps else None for i, f in zip(members, features)]

    durations = [len(audios[i]) / sample_rate for i in members]
    caps = [min(model.max_length, len(p) + int(10 + 8 * d)) for p, d in zip(prompts, durations)]
    suppress = get_suppressed_tokens(tokenizers[0], [-1])
    if not first.without_timestamps:  # no timestamp past the longest member's audio
        begin = tokenizers[0].timestamp_begin
        last = int(np.ceil(max(durations) / model.time_precision))
        suppress = [*suppress, *range(begin + last + 1, begin + int(FULL_WINDOW / model.time_precision) + 1)]
    generated = model.model.generate(
        encoder_output,
        list(prompts),
        beam_size=first.beam_size,
        max_length=max(caps),
        suppress_blank=True,
        suppress_tokens=suppress,
        max_initial_timestamp_index=int(round(1.0 / model.time_precision)),
        return_scores=True,
        return_no_speech_prob=True,
    )
    for k, i in enumerate(members):
        out[i] = _fitted_result(
            model, options[i], tokenizers[k], prompts[k], caps[k], durations[k], encoded[k], generated[k]
        )
    return out


def _fitted_result(
    model, options, tokenizer, prompt, cap, duration, encoder_output, result
) -> DecodeResult | None:
    """One member of a fitted batch, judged by the guards (None: decode it padded instead)."""
    from faster_whisper.transcribe import get_compression_ratio

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
    content_frames = int(round(duration * model.frames_per_second))
    pieces, _, _ = model._split_segments_by_timestamps(
        tokenizer=tokenizer,
        tokens=tokens,
        time_offset=0.0,
        segment_size=content_frames,
        segment_duration=duration,
        seek=0,
    )
    # In a batch the timestamps allowed reach the longest member's end: past this one's
    # end there is only padding.
    pieces = [p for p in pieces if any(t < tokenizer.eot for t in p["tokens"]) and p["start"] < duration]
    uncovered = duration - min(pieces[-1]["end"], duration) if pieces else 0.0
    if not silent and not options.without_timestamps and uncovered > FIT_MAX_UNCOVERED:
        return None
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
    return DecodeResult(segments, options.language or "en", 1.0, duration)


def _repeats(text: str, n: int = 4) -> bool:
    """Does any run of ``n`` words occur twice? The usual shape of a decoding loop."""
    words = re.sub(r"[^\w' ]+", " ", text.lower()).split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))
