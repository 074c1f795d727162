"""PCM frames: int16/float32 sniffing and decoding across any framing."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_live.core.pcm import PcmDecoder, sniff_sample_format
from whisper_live.media import decode_audio


def test_sniffer_tells_int16_from_float32_on_real_speech(speech):
    i16 = (speech * 32767).astype("<i2").tobytes()
    f32 = speech.astype("<f4").tobytes()
    windows = range(0, len(speech) - 4096, 3000)
    assert all(sniff_sample_format(i16[o * 2 : o * 2 + 4096]) == "int16" for o in windows)
    assert all(sniff_sample_format(f32[o * 4 : o * 4 + 4096]) == "float32" for o in windows)
    assert sniff_sample_format(bytes(4096)) is None


@pytest.mark.parametrize("sample_format", ["int16", "float32"])
def test_sniffing_every_clip_after_leading_silence(librispeech, sample_format):
    """A stream that opens with digital silence is judged by its speech: zeros once outvoted
    the first 4 KiB of a quiet onset and an int16 stream was decoded as float32 noise."""
    from harness import evaluation

    for utt in librispeech:
        audio = np.concatenate([np.zeros(16000, np.float32), decode_audio(str(utt.path))])
        pcm = evaluation.to_pcm(audio, sample_format)
        decoder = PcmDecoder()
        for pos in range(0, len(pcm), 3200):
            decoder.feed(pcm[pos : pos + 3200])
            if decoder.sample_format:
                break
        assert decoder.sample_format == sample_format, utt.id


@pytest.mark.parametrize("fmt", [None, "int16", "float32"])
def test_pcm_decoder_survives_any_framing(speech, fmt):
    width = 4 if fmt == "float32" else 2
    data = speech.astype("<f4").tobytes() if fmt == "float32" else (speech * 32767).astype("<i2").tobytes()
    if fmt is None:  # undeclared int16 behind a second of digital silence
        data = bytes(32000) + data
    decoder = PcmDecoder(fmt)
    rng = np.random.default_rng(5)
    out, pos = [], 0
    while pos < len(data):
        size = int(rng.integers(1, 7000))
        out.append(decoder.feed(data[pos : pos + size]))
        pos += size
    out.append(decoder.flush())
    samples = np.concatenate(out)
    assert len(samples) == len(data) // width
    tail = samples[-len(speech) :]
    assert np.abs(tail - speech).max() < 1e-3
