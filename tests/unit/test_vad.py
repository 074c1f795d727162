"""The streaming Silero VAD against faster-whisper's whole-array VAD."""

from __future__ import annotations

import numpy as np

from whisper_live.engine.vad import StreamingVad


def test_streaming_vad_matches_whole_array_vad(speech):
    from faster_whisper.vad import get_vad_model

    n = len(speech) // 512 * 512
    whole = get_vad_model()(speech[:n]).reshape(-1)
    vad = StreamingVad()
    rng = np.random.default_rng(2)
    got, pos = [], 0
    while pos < n:
        size = int(rng.integers(1, 3000))
        got.append(vad(speech[pos : min(pos + size, n)]))
        pos += size
    assert np.allclose(np.concatenate(got), whole, atol=1e-5)
    assert whole.max() > 0.9 and whole[:3].max() < 0.5
