"""media: headerless PCM (G.711 too), channels kept apart, and containers decoded as they arrive."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from harness import evaluation

from whisper_live.core.pcm import SAMPLE_RATE
from whisper_live.errors import InvalidAudio
from whisper_live.media import PcmReader, StreamDecoder, decode_audio, load_channels, pcm_frames

JFK = evaluation.audio_root() / "jfk" / "jfk.flac"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_g711_decodes_exactly_as_ffmpeg(tmp_path: Path, law: str):
    coded, reference = tmp_path / f"jfk.{law}", tmp_path / "ref.s16"
    ffmpeg("-i", str(JFK), "-ac", "1", "-ar", "8000", "-f", law, str(coded))
    ffmpeg("-f", law, "-ar", "8000", "-ac", "1", "-i", str(coded), "-f", "s16le", str(reference))
    mine = pcm_frames(coded.read_bytes(), law)[:, 0]
    theirs = np.frombuffer(reference.read_bytes(), "<i2") / 32768.0
    assert len(mine) == len(theirs) > 80_000
    assert np.array_equal(mine, theirs.astype(np.float32))


def test_pcm_reader_keeps_frames_split_between_messages():
    frames = (np.arange(-500, 500, dtype="<i2").reshape(-1, 2) * 30).astype("<i2")
    data = frames.tobytes()
    reader = PcmReader("int16", channels=2)
    pieces = [reader.feed(data[i : i + 7]) for i in range(0, len(data), 7)]
    got = np.concatenate(pieces)
    assert got.shape == frames.shape
    assert np.allclose(got * 32768.0, frames)


def test_load_channels_keeps_channels_apart(tmp_path: Path):
    # Left: JFK; right: silence. A downmix would mix them; channels must stay apart.
    stereo = tmp_path / "stereo.wav"
    ffmpeg(
        "-i", str(JFK), "-filter_complex", "[0:a]pan=stereo|c0=c0|c1=0*c0[a]", "-map", "[a]", "-ar", "22050",
        str(stereo),
    )  # fmt: skip
    channels = load_channels(stereo.read_bytes())
    assert channels.shape[0] == 2 and abs(channels.shape[1] / SAMPLE_RATE - 11.0) < 0.1
    assert np.abs(channels[0]).max() > 0.1 and np.abs(channels[1]).max() < 1e-3
    raw = (np.stack([channels[1], channels[0]], axis=1) * 32767).astype("<i2").tobytes()
    swapped = load_channels(raw, encoding="int16", sample_rate=SAMPLE_RATE, channels=2)
    assert np.abs(swapped[0]).max() < 1e-3 and np.abs(swapped[1]).max() > 0.1
    with pytest.raises(InvalidAudio):
        load_channels(b"not audio at all" * 100)


@pytest.mark.parametrize("codec", [("webm", "libopus"), ("ogg", "libopus"), ("wav", "pcm_s16le")])
def test_stream_decoder_decodes_a_container_as_it_arrives(tmp_path: Path, codec):
    suffix, encoder = codec
    path = tmp_path / f"jfk.{suffix}"
    ffmpeg("-i", str(JFK), "-c:a", encoder, str(path))
    data = path.read_bytes()
    blocks: list[np.ndarray] = []
    ended = threading.Event()
    errors: list = []
    decoder = StreamDecoder(blocks.append, lambda error: (errors.append(error), ended.set()))
    step = len(data) // 20
    decoded_half = 0
    for i in range(0, len(data), step):
        decoder.feed(data[i : i + step])
        if i >= len(data) // 2 and not decoded_half:
            deadline = time.monotonic() + 10
            while not decoder.idle and time.monotonic() < deadline:
                time.sleep(0.01)
            decoded_half = sum(map(len, blocks))
    decoder.close()
    assert ended.wait(10) and errors == [None]
    total = np.concatenate(blocks)
    assert decoded_half > 4 * SAMPLE_RATE, "samples come out before the end of the input"
    reference = decode_audio(str(path))
    assert len(total) == len(reference) and np.allclose(total, reference, atol=1e-5)


def test_stream_decoder_reports_garbage():
    ended = threading.Event()
    errors: list = []
    decoder = StreamDecoder(lambda block: None, lambda error: (errors.append(error), ended.set()))
    decoder.feed(b"\x01\x02 this is no container " * 500)
    decoder.close()
    assert ended.wait(10) and errors[0] is not None
