"""Diarization scored over the generated mixes (``harness.mixes``), in process.

Per mix: the transcript (tiny.en, word timings, as the REST faces decode an upload) and the
windows' d-vectors are computed once and cached (they do not depend on the clustering), then
``diarization.diarize_windows`` labels and splits the segments, so a clustering setting can be
tried over every mix in seconds. Scores: speaker count right, DER (0.25 s collar, md-eval's)
of the engine's turns, of the labelled words and of the labelled segments as a face returns them (a
speaker's consecutive items less than 0.5 s apart joined into a turn, as a client would
join them; also without joining), and whether a one-speaker recording came back split; and
two floors: the segments' DER with the reference's own labels (what Whisper's transcript and
its timings leave, whatever the clustering), and the reference's own DER one speaker at a
time (what the ~0.3 s overlaps cost a labelling that gives each moment one speaker).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from whisper_live.core.decodes import DecodeOptions, Segment, Word
from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.engine import diarization
from whisper_live.engine.diarization import split_at_turns  # kept when --unsplit swaps it

from .diarization_metrics import der, labelled_spans
from .mixes import Mix

COLLAR = 0.25
# A speaker's consecutive words or segments less than this apart are one turn, as a client
# showing who speaks would join them: the pause between two sentences of one reader is
# speech in the reference (``harness.mixes.PAUSE``), and not a speaker error.
BRIDGE = 0.5


@dataclass
class Prepared:
    mix: Mix
    segments: list[Segment]
    regions: list[tuple[float, float]]
    spans: list[tuple[float, float]]
    embeddings: np.ndarray
    transcribe_seconds: float  # wall time of the plain transcription (when computed here)
    embed_seconds: float  # wall time of VAD + d-vectors
    cover_seconds: float = 0.0  # of it, re-decoding skipped speech (``decoding._cover``)
    covered_spans: int = 0  # how many spans were decoded again


# Bumped when the transcription changes, so cached transcripts of an older decode are not
# scored as this one's: 2 = speech the sequential decode skipped is decoded again
# (``decoding._cover``, as ``engine.files`` asks for every upload piece); 3 = also gaps
# before and between texts inside a VAD region; 5 = also speech without a word inside a
# segment (``decoding.unworded_speech``: a gap between words, or a stretched word).
TRANSCRIPT_VERSION = 5
# The same for the upload path alone (``decode_as_upload``): 2 = each piece carries the
# previous piece's tokens, timestamps included, instead of its text (``files.carried_prompt``);
# 3 = a prompted piece that fell back to a higher temperature is decoded again without it.
UPLOAD_VERSION = 3


def _key(mix: Mix, cover: bool = True, upload: bool = False) -> str:
    digest = hashlib.sha1(mix.audio.tobytes()).hexdigest()[:12]
    if upload:
        return f"{mix.name}-{digest}-v{TRANSCRIPT_VERSION}-upload{UPLOAD_VERSION}"
    return f"{mix.name}-{digest}-v{TRANSCRIPT_VERSION}" if cover else f"{mix.name}-{digest}"


def decode_as_upload(audio: np.ndarray, options: DecodeOptions, model_name: str = "tiny.en"):
    """``audio`` transcribed the way every REST face transcribes an upload
    (``engine.files.transcribe``: VAD-cut pieces of at most 30 s, the previous piece's tokens
    as the next one's prompt, skipped speech decoded again in each piece), on a pool of one
    worker; the DecodeResult."""
    import asyncio

    from whisper_live.engine import files
    from whisper_live.engine.pool import ModelPool

    global _UPLOAD_POOL
    if _UPLOAD_POOL is None:
        _UPLOAD_POOL = ModelPool(default_model=model_name, workers=1)
    pool = _UPLOAD_POOL
    loaded = pool.get(model_name)
    jobs = files.UploadJobs()
    job = jobs.open(model_name, "transcribe", len(audio) / SAMPLE_RATE)
    try:
        return asyncio.run(files.transcribe(pool, loaded, audio, options, job, jobs))
    finally:
        jobs.close(job)


_UPLOAD_POOL = None


def _segments_from_json(items: list[dict]) -> list[Segment]:
    out = []
    for item in items:
        words = [Word(**w) for w in item.pop("words")] if item.get("words") is not None else None
        out.append(Segment(**item, words=words))
    return out


def prepare(
    mixes: list[Mix], cache: Path, model_name: str = "tiny.en", cover: bool = True, upload: bool = False
) -> list[Prepared]:
    """Transcripts and window d-vectors of every mix, from ``cache`` when there. ``cover``:
    skipped speech decoded again, as an upload's pieces are (off: the plain decode, as
    before it was; its transcripts are cached under the older key). ``upload``: each mix
    decoded through ``engine.files.transcribe``, the REST faces' own path (30 s pieces),
    instead of whole."""
    cache.mkdir(parents=True, exist_ok=True)
    model = None
    out = []
    for mix in mixes:
        stem = cache / _key(mix, cover, upload)
        if not stem.with_suffix(".json").is_file():
            options = DecodeOptions(language="en", word_timestamps=True)
            extra: dict = {}
            if upload:
                started = time.perf_counter()
                result = decode_as_upload(mix.audio, options, model_name)
                transcribe = time.perf_counter() - started
            else:
                if model is None:
                    from faster_whisper import WhisperModel

                    from whisper_live.engine.models import resolve

                    model = WhisperModel(resolve(model_name).path, device="cpu", compute_type="int8")
                from whisper_live.engine.decoding import _cover, run_decode, uncovered_speech

                started = time.perf_counter()
                result = run_decode(model, mix.audio, options)
                plain = time.perf_counter() - started
                covered_spans, cover_seconds = 0, 0.0
                if cover:  # timed apart from the plain decode, to report what the guard costs
                    covered_spans = len(uncovered_speech(mix.audio, SAMPLE_RATE, result.segments))
                    started = time.perf_counter()
                    result = _cover(model, mix.audio, options, result)
                    cover_seconds = time.perf_counter() - started
                transcribe = plain + cover_seconds
                extra = {"cover_seconds": cover_seconds, "covered_spans": covered_spans}
            started = time.perf_counter()
            regions, spans, embeddings = diarization.window_embeddings(mix.audio, result.segments)
            embed = time.perf_counter() - started
            np.save(stem.with_suffix(".npy"), embeddings)
            stem.with_suffix(".json").write_text(
                json.dumps(
                    {
                        "segments": [asdict(s) for s in result.segments],
                        "regions": regions,
                        "spans": spans,
                        "transcribe_seconds": transcribe,
                        "embed_seconds": embed,
                        **extra,
                    }
                )
            )
        data = json.loads(stem.with_suffix(".json").read_text())
        out.append(
            Prepared(
                mix,
                _segments_from_json(data["segments"]),
                [tuple(r) for r in data["regions"]],
                [tuple(s) for s in data["spans"]],
                np.load(stem.with_suffix(".npy")),
                data["transcribe_seconds"],
                data["embed_seconds"],
                data.get("cover_seconds", 0.0),
                data.get("covered_spans", 0),
            )
        )
    return out


def one_at_a_time(turns: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The reference with its overlaps given to the speaker already talking: the best a
    labelling of one speaker at a time (a segment, a word) can do."""
    out: list[tuple[float, float, str]] = []
    for start, end, speaker in sorted(turns):
        start = max(start, out[-1][1]) if out else start
        if end > start:
            out.append((start, end, speaker))
    return out


def score(prepared: Prepared, **settings) -> dict:
    """One mix diarized from its cached windows with ``settings`` (diarize_windows' keyword
    arguments), and its figures."""
    from whisper_live.engine.speaker_encoder import shared_encoder

    started = time.perf_counter()
    levelled = diarization.at_speech_level(prepared.mix.audio, prepared.regions)
    result = diarization.diarize_windows(
        prepared.regions,
        prepared.spans,
        prepared.embeddings,
        prepared.segments,
        embed=lambda spans, length=diarization.WINDOW_SECONDS: diarization.embed_spans(
            shared_encoder(), levelled, spans, length
        ),  # as diarize()
        **settings,
    )
    cluster_seconds = time.perf_counter() - started
    truth = prepared.mix.turns
    turns = [(t.start, t.end, t.speaker) for t in result.turns]
    words = [
        {"start": w.start, "end": w.end, "speaker": w.speaker, "word": w.word}
        for s in result.segments
        for w in s.words or []
    ]
    segments = [
        {"start": s.start, "end": s.end, "speaker": s.speaker, "text": s.text} for s in result.segments
    ]
    found = len(result.speakers)
    segment_der = der(truth, labelled_spans(segments, bridge=BRIDGE)[0], collar=COLLAR)
    # The floor of the segments' DER with this transcript: the same fitting and split at
    # turns with the reference's own turns as labels (one speaker at a time, as a segment
    # holds one): what is left is speech Whisper skipped and its words' timings.
    oracle = split_at_turns(
        diarization.label_segments(
            diarization.split_at_pauses(
                diarization.fit_to_speech(prepared.segments, prepared.regions), prepared.regions
            ),
            [diarization.SpeakerTurn(*t) for t in one_at_a_time(truth)],
        )
    )
    floor = der(
        truth,
        labelled_spans(
            [{"start": s.start, "end": s.end, "speaker": s.speaker} for s in oracle], bridge=BRIDGE
        )[0],
        collar=COLLAR,
    )
    true = len(prepared.mix.speakers)
    return {
        "mix": prepared.mix.name,
        "split": prepared.mix.split,
        "kind": prepared.mix.kind,
        "seconds": round(prepared.mix.seconds, 1),
        "speakers_true": true,
        "speakers_found": found,
        "labels_found": len({s["speaker"] for s in segments} | {w["speaker"] for w in words}),
        "der_turns": der(truth, turns, collar=COLLAR).der,
        "der_words": der(truth, labelled_spans(words, bridge=BRIDGE)[0], collar=COLLAR).der,
        "der_segments_unbridged": der(truth, labelled_spans(segments)[0], collar=COLLAR).der,
        "der_segments": segment_der.der,
        "speech_seconds": segment_der.total,
        "segments_missed_fa_confusion_s": [
            round(segment_der.missed, 2),
            round(segment_der.false_alarm, 2),
            round(segment_der.confusion, 2),
        ],
        "segments_floor_missed_fa_confusion_s": [
            round(floor.missed, 2),
            round(floor.false_alarm, 2),
            round(floor.confusion, 2),
        ],
        "der_one_label_reference": der(truth, one_at_a_time(truth), collar=COLLAR).der,
        "segments": len(result.segments),
        "segments_over_12s": sum(1 for s in result.segments if s.end - s.start > 12.0),
        "mixed_segments": sum(1 for s in result.segments if len({w.speaker for w in s.words or []}) > 1),
        "transcribe_seconds": prepared.transcribe_seconds,
        "cover_seconds": prepared.cover_seconds,
        "covered_spans": prepared.covered_spans,
        "diarize_seconds": prepared.embed_seconds + cluster_seconds,
    }


def summary(rows: list[dict]) -> dict:
    """The issue's figures over ``rows``: count accuracy, DER (the mean over mixes, pooled
    over all their speech, and the worst), the speaker-confusion part of the segments' DER
    (pooled), the floors (segments labelled from the reference; the reference itself one
    speaker at a time), one-speaker recordings split, and diarization's wall time as a share of the
    plain transcription's (in process, tiny.en)."""
    if not rows:
        return {}
    single = [r for r in rows if r["speakers_true"] == 1]
    return {
        "mixes": len(rows),
        "count_right": round(float(np.mean([r["speakers_found"] == r["speakers_true"] for r in rows])), 3),
        "der_segments_mean": round(float(np.mean([r["der_segments"] for r in rows])), 4),
        "der_segments_pooled": round(
            sum(sum(r["segments_missed_fa_confusion_s"]) for r in rows)
            / max(sum(r["speech_seconds"] for r in rows), 1e-9),
            4,
        ),
        "segments_missed_pooled": round(
            sum(r["segments_missed_fa_confusion_s"][0] for r in rows)
            / max(sum(r["speech_seconds"] for r in rows), 1e-9),
            4,
        ),
        "covered_spans": sum(r.get("covered_spans", 0) for r in rows),
        "cover_share_of_transcription": round(
            sum(r.get("cover_seconds", 0.0) for r in rows)
            / max(sum(r["transcribe_seconds"] for r in rows), 1e-9),
            3,
        ),
        "der_words_mean": round(float(np.mean([r["der_words"] for r in rows])), 4),
        "der_turns_mean": round(float(np.mean([r["der_turns"] for r in rows])), 4),
        "der_segments_unbridged_mean": round(float(np.mean([r["der_segments_unbridged"] for r in rows])), 4),
        "confusion_of_segments": round(
            sum(r["segments_missed_fa_confusion_s"][2] for r in rows)
            / max(sum(r["speech_seconds"] for r in rows), 1e-9),
            4,
        ),
        "der_segments_floor_pooled": round(
            sum(sum(r["segments_floor_missed_fa_confusion_s"]) for r in rows)
            / max(sum(r["speech_seconds"] for r in rows), 1e-9),
            4,
        ),
        "der_one_label_reference_mean": round(
            float(np.mean([r["der_one_label_reference"] for r in rows])), 4
        ),
        "der_segments_worst": round(float(max(r["der_segments"] for r in rows)), 4),
        "single_speaker_split": f"{sum(r['labels_found'] > 1 for r in single)} of {len(single)}",
        "segments_with_two_speakers": sum(r["mixed_segments"] for r in rows),
        "segments": sum(r.get("segments", 0) for r in rows),
        "segments_over_12s": sum(r.get("segments_over_12s", 0) for r in rows),
        "diarization_share_of_transcription": round(
            sum(r["diarize_seconds"] for r in rows) / max(sum(r["transcribe_seconds"] for r in rows), 1e-9), 3
        ),
    }
