"""Forced finals on real speech: what a stream cut short (Finalize, CloseStream,
END_OF_AUDIO, the time limit, a shutdown) adds to the transcript that was not said.

Each case streams the first ``cut`` seconds of a recording through a ``StreamingSession``
(100 ms frames, every decode it asks for run at once with the real model, as an idle
server would) and then ends the stream, which forces the final of the open utterance.
Cuts fall mid-word, mid-sentence and after silence. Counted per case:

- ``inserted``: words of the transcript that the reference of the whole recording does not
  hold in that order (hypothesis words outside the longest common subsequence with the
  reference): words not in the audio (or misheard);
- ``forced_inserted``: the same for the forced final's own words only;
- ``forced_words``: how many words the forced final kept (what was said is not dropped);
- ``repeated``: completed segments that restate the one before them (the same words again,
  or its words then more), the "1." / "1. From fairest creatures" failure;
- ``tail_words``: for a cut after silence, words the forced final added at all (should be 0).

    python scripts/bench_forced_finals.py --model tiny.en [--json out.json]

Run it on two checkouts (``PYTHONPATH=<checkout>``) to compare before and after.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faster_whisper import WhisperModel  # noqa: E402
from harness import evaluation as ev  # noqa: E402
from harness.transcripts import inserted_words as inserted  # noqa: E402
from harness.transcripts import repeated_segments as repeated  # noqa: E402

from whisper_live.core.options import SessionOptions  # noqa: E402
from whisper_live.core.pcm import SAMPLE_RATE  # noqa: E402
from whisper_live.core.session import StreamingSession  # noqa: E402
from whisper_live.engine import models  # noqa: E402
from whisper_live.engine.decoding import run_decode  # noqa: E402
from whisper_live.media import decode_audio  # noqa: E402

FRAME = SAMPLE_RATE // 10


@dataclass
class Case:
    name: str
    kind: str  # "mid-word", "mid-sentence", "after silence"
    audio: np.ndarray
    reference: str
    cut: float


@dataclass
class Outcome:
    name: str
    kind: str
    cut: float
    transcript: str
    forced: str  # what the forced final added
    inserted: int
    forced_inserted: int
    forced_words: int
    repeated: int
    tail_words: int
    forced_seconds: float  # decoding after the end of the stream (the forced final), this machine
    forced_decodes: int  # model calls for it (temperature fallbacks and padded retries count)


def cases() -> list[Case]:
    out = []
    sonnet = ev.manifest("longform")[0]
    audio = decode_audio(str(sonnet.path))
    for cut in (5.0, 7.3, 12.0, 20.5, 31.7):
        out.append(Case(f"sonnet@{cut}", "mid-sentence", audio, sonnet.reference, cut))
    jfk = ev.manifest("jfk")[0]
    audio = decode_audio(str(jfk.path))
    for cut in (3.0, 6.4):
        out.append(Case(f"jfk@{cut}", "mid-word", audio, jfk.reference, cut))
    for utt in ev.manifest("librispeech_dev_clean")[:4]:
        audio = decode_audio(str(utt.path))
        out.append(Case(f"{utt.id}@3.0", "mid-word", audio, utt.reference, 3.0))
    for utt in ev.manifest("ljspeech")[:4]:
        audio = decode_audio(str(utt.path))
        out.append(Case(f"{utt.id}@2.7", "mid-word", audio, utt.reference, 2.7))
    conv = ev.conversation(ev.manifest("librispeech_dev_clean")[4:7], gap=2.0)
    reference = " ".join(u.reference for u in conv.utterances)
    for i in range(2):
        cut = conv.ends[i] + 1.2  # after the endpoint's silence, before the next speaker
        out.append(Case(f"conversation@{cut:.1f}", "after silence", conv.audio, reference, cut))
    return out


def run(model, case: Case, language: str | None) -> Outcome:
    try:
        from whisper_live.engine.vad import StreamingVad
    except ImportError:  # a checkout from before the VAD moved to the engine
        from whisper_live.core.vad import StreamingVad
    session = StreamingSession(SessionOptions(language=language, word_timestamps=True), vad=StreamingVad())

    def decode_all() -> None:
        while requests := session.take_requests():
            for request in requests:
                session.decode_done(request, run_decode(model, request.audio, request.options))

    audio = case.audio[: int(case.cut * SAMPLE_RATE)]
    for pos in range(0, len(audio), FRAME):
        session.feed(audio[pos : pos + FRAME])
        decode_all()
    before = len(session.completed)
    calls = _count_calls(model)
    started = time.perf_counter()
    session.end_of_audio()
    decode_all()
    forced_seconds = time.perf_counter() - started
    forced_decodes = calls()
    texts = [s.text for s in session.completed]
    forced = "".join(texts[before:])
    return Outcome(
        case.name,
        case.kind,
        case.cut,
        "".join(texts),
        forced,
        inserted(case.reference, "".join(texts)),
        inserted(case.reference, forced),
        len(ev.normalize(forced).split()),
        repeated(texts),
        len(ev.normalize(forced).split()) if case.kind == "after silence" else 0,
        round(forced_seconds, 3),
        forced_decodes,
    )


def _count_calls(model):
    """Count ``generate`` calls on the model from now on; returns the reader."""
    inner = model.model
    count = [0]

    class Counting:
        def __getattr__(self, name):
            return getattr(inner, name)

        def generate(self, *args, **kwargs):
            count[0] += 1
            return inner.generate(*args, **kwargs)

    model.model = Counting()

    def read() -> int:
        model.model = inner
        return count[0]

    return read


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--language", default="en")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    info = models.resolve(args.model)
    model = WhisperModel(info.path, device="cpu", compute_type="int8", cpu_threads=1)
    outcomes = [run(model, case, args.language) for case in cases()]
    for o in outcomes:
        print(
            f"{o.name:24} {o.kind:14} ins={o.inserted} forced_ins={o.forced_inserted}"
            f" rep={o.repeated} tail={o.tail_words} calls={o.forced_decodes} {o.forced_seconds:.2f}s"
            f"  forced={o.forced!r}"
        )
    keys = ("inserted", "forced_inserted", "forced_words", "repeated", "tail_words", "forced_decodes")
    total = {k: sum(getattr(o, k) for o in outcomes) for k in keys}
    print(f"cases={len(outcomes)} " + " ".join(f"{k}={v}" for k, v in total.items()))
    if args.json:
        args.json.write_text(json.dumps({"totals": total, "cases": [asdict(o) for o in outcomes]}, indent=1))


if __name__ == "__main__":
    main()
