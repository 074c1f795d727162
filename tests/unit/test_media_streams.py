"""media: headerless PCM (G.711 too), channels kept apart, and containers decoded as they arrive."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from harness import evaluation

from whisper_live.core.pcm import SAMPLE_RATE, g711_table
from whisper_live.errors import InvalidAudio
from whisper_live.media import PcmIntake, StreamDecoder, decode_audio, load_channels, pcm_frames

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


@pytest.mark.parametrize("encoding", ["int16", "float32", "mulaw", "alaw", None])
def test_the_pcm_intake_keeps_samples_split_between_messages(speech, encoding):
    """One intake for every live face: bytes cut anywhere (inside a sample) come out as the
    same 16 kHz mono samples, whatever the encoding; undeclared int16 is sniffed behind a
    second of digital silence and nothing held back is lost at the end."""
    if encoding in ("mulaw", "alaw"):
        table = g711_table(encoding)
        codes = np.abs(table[None, :] - speech[:, None]).argmin(axis=1).astype(np.uint8)
        data, want = codes.tobytes(), table[codes]
    elif encoding == "float32":
        data, want = speech.astype("<f4").tobytes(), speech
    else:
        pcm = (speech * 32767).astype("<i2")
        data, want = pcm.tobytes(), pcm / 32768.0
        if encoding is None:
            data, want = bytes(32000) + data, np.concatenate([np.zeros(16000), want])
    intake = PcmIntake(encoding)
    rng = np.random.default_rng(7)
    out, pos = [], 0
    while pos < len(data):
        size = int(rng.integers(1, 5000))
        out.append(intake.feed(data[pos : pos + size]))
        pos += size
    out.append(intake.flush())
    got = np.concatenate(out)
    assert len(got) == len(want) and np.abs(got - want).max() < 1e-4


def test_the_pcm_intake_downmixes_and_resamples_in_one_place():
    tone = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000).astype(np.float32) * 0.5
    stereo = np.stack([tone, tone], axis=1).reshape(-1)
    data = (stereo * 32767).astype("<i2").tobytes()
    intake = PcmIntake("int16", 48000, 2)
    got = np.concatenate(
        [intake.feed(data[i : i + 999]) for i in range(0, len(data), 999)] + [intake.flush()]
    )
    assert abs(len(got) - 16000) <= 16
    assert 0.45 < np.abs(got[1000:15000]).max() < 0.75  # PyAV's downmix, as a stereo file gets


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


@pytest.mark.parametrize("encoding", ["int16", "float32", "mulaw", None])
def test_bytes_that_are_no_audio_are_told_apart_from_speech_and_silence(speech, encoding):
    rng = np.random.default_rng(3)
    garbage = PcmIntake(encoding)
    garbage.feed(rng.bytes(200_000))
    assert garbage.not_audio is not None and "do not read as" in garbage.not_audio
    for audio in (speech, np.zeros(48_000, np.float32), speech * 3.0):  # speech, silence, loud speech
        intake = PcmIntake("float32")
        intake.feed(np.clip(audio, -1, 1).astype("<f4").tobytes())
        assert intake.not_audio is None
