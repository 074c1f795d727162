"""One-off check of harness.diarization_metrics.der against pyannote.metrics.

Not part of the test suite (pyannote.metrics pulls pandas, scipy and scikit-learn). In a
throwaway venv with ``pip install pyannote.metrics``:

    PYTHONPATH=. /tmp/refvenv/bin/python scripts/compare_der_pyannote.py

Scores 20 perturbed hypotheses per shared conversation (every turn shifted by up to 0.4 s
and split at a random point between random speakers, overlaps included), with no collar
and md-eval's 0.25 s collar (pyannote's ``collar`` is the total width: 0.5), and prints the
largest difference. Measured: 0.0018 (our 10 ms frames against pyannote's exact segments).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.diarization_metrics import der, read_rttm  # noqa: E402
from harness.evaluation import audio_root  # noqa: E402

CONVERSATIONS = audio_root() / "conversations"


def annotation(turns) -> Annotation:
    out = Annotation()
    for i, (start, end, speaker) in enumerate(turns):
        out[Segment(start, end), i] = speaker
    return out


def main() -> None:
    rng = random.Random(0)
    worst = 0.0
    for name in ("two_speakers", "three_speakers"):
        reference = read_rttm(CONVERSATIONS / f"{name}.rttm")
        for _ in range(20):
            hypothesis = []
            for start, end, _speaker in reference:
                start, end = max(0.0, start + rng.uniform(-0.4, 0.4)), end + rng.uniform(-0.4, 0.4)
                cut = rng.uniform(start, end)
                hypothesis += [(start, cut, rng.choice("xyz")), (cut, end, rng.choice("xyz"))]
            for collar in (0.0, 0.25):
                ours = der(reference, hypothesis, collar).der
                metric = DiarizationErrorRate(collar=2 * collar, skip_overlap=False)
                theirs = metric(annotation(reference), annotation(hypothesis))
                worst = max(worst, abs(ours - theirs))
    print(f"largest |DER ours - DER pyannote.metrics|: {worst:.4f}")


if __name__ == "__main__":
    main()
