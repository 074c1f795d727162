"""The torch-free tensor reader on the shared fixtures, a real checkpoint, and hostile files;
and the WhisperX output helpers (Audacity labels, highlighted cues)."""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from harness import evaluation

from whisper_live import tensors
from whisper_live.core.decodes import Segment, Word
from whisper_live.formats import highlighted_cues, to_audacity, to_srt, to_vtt

TENSORS = evaluation.audio_root() / "tensors"


def test_fixtures_match_the_numpy_copy():
    reference = np.load(TENSORS / "jfk_16k_float32.npy")
    flat = tensors.load_tensor((TENSORS / "jfk_16k_float32.pt").read_bytes())
    assert flat.dtype == np.float32 and np.array_equal(flat, reference)
    ints = tensors.load_tensor((TENSORS / "jfk_16k_int16.pt").read_bytes())
    assert ints.dtype == np.int16 and ints.shape == reference.shape
    # the int16 copy wraps where the float clip exceeds 1.0; elsewhere it is the same signal
    close = np.abs(ints / 32768.0 - reference) < 1e-3
    assert close.mean() > 0.99
    wide = tensors.load_tensor((TENSORS / "jfk_44k1_float32_1xN.pt").read_bytes())
    assert wide.shape == (1, 485100) and wide.dtype == np.float32
    assert tensors.is_tensor_file((TENSORS / "jfk_16k_int16.pt").read_bytes())
    assert not tensors.is_tensor_file((TENSORS / "jfk_16k_float32.npy").read_bytes())


@pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None, reason="resemblyzer not installed")
def test_legacy_checkpoint_state_dict():
    """resemblyzer's pretrained.pt: the legacy (pre-zip) layout, a checkpoint dict."""
    path = Path(importlib.util.find_spec("resemblyzer").origin).parent / "pretrained.pt"
    state = tensors.load_state_dict(path.read_bytes(), key="model_state")
    assert state["lstm.weight_ih_l0"].shape == (1024, 40) and state["linear.weight"].shape == (256, 256)
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in state.values())
    assert tensors.load(path.read_bytes())["step"] > 0


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _zip(pickled: bytes, storages: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("t/data.pkl", pickled)
        for key, data in (storages or {}).items():
            archive.writestr(f"t/data/{key}", data)
    return buffer.getvalue()


def test_code_in_the_pickle_is_refused(monkeypatch):
    exploit = pickle.dumps(_Exploit(), protocol=2)
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    with pytest.raises(tensors.TensorFileError, match="refused"):
        tensors.load(_zip(exploit))
    legacy = b"".join(pickle.dumps(x, protocol=2) for x in (tensors.LEGACY_MAGIC, 1001, {}))
    with pytest.raises(tensors.TensorFileError, match="refused"):
        tensors.load(legacy + exploit)
    with pytest.raises(tensors.TensorFileError, match=r"\.eval,"):
        tensors.load(_zip(pickle.dumps(eval, protocol=2)))
    assert calls == []


def _tensor_pickle(numel: int, offset: int, size: tuple, stride: tuple) -> bytes:
    """The pickle torch.save writes for one float tensor, written opcode by opcode (torch
    is not installed, so pickle cannot name its functions)."""

    def text(value: str) -> bytes:
        return b"X" + struct.pack("<I", len(value)) + value.encode()

    def ints(*values: int) -> bytes:
        return b"(" + b"".join(b"J" + struct.pack("<i", v) for v in values) + b"t"

    storage = (
        b"("
        + text("storage")
        + b"ctorch\nFloatStorage\n"
        + text("0")
        + text("cpu")
        + ints(numel)[1:-1]
        + b"t"
    )
    arguments = b"(" + storage + b"Q" + ints(offset)[1:-1] + ints(*size) + ints(*stride) + b"\x89N" + b"t"
    return b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n" + arguments + b"R."


def test_views_are_read_and_bounds_checked():
    data = np.arange(12, dtype="<f4").tobytes()
    view = tensors.load_tensor(_zip(_tensor_pickle(12, 2, (2, 3), (4, 1)), {"0": data}))
    assert view.tolist() == [[2, 3, 4], [6, 7, 8]]
    with pytest.raises(tensors.TensorFileError, match="past the end"):
        tensors.load(_zip(_tensor_pickle(12, 2, (3, 4), (4, 1)), {"0": data}))
    with pytest.raises(tensors.TensorFileError, match="truncated"):
        tensors.load(_zip(_tensor_pickle(100, 0, (100,), (1,)), {"0": data}))
    with pytest.raises(tensors.TensorFileError, match="no t/data/0"):
        tensors.load(_zip(_tensor_pickle(12, 0, (12,), (1,))))
    with pytest.raises(tensors.TensorFileError):
        tensors.load(b"PK\x03\x04 not really a zip")
    with pytest.raises(tensors.TensorFileError, match="not a torch.save"):
        tensors.load(b"RIFF....WAVE")


# ----------------------------------------------------------------------------- formats


def _segments() -> list[Segment]:
    words = [Word(0.5, 0.9, " Ask", 0.9), Word(1.0, 1.2, " not", 0.9), Word(1.6, 2.0, " why.", 0.9)]
    return [Segment(0.4, 2.1, " Ask not why.", words=words), Segment(3.0, 4.0, " No words\nhere.")]


def test_audacity_labels():
    assert (
        to_audacity(_segments()) == "0.400000\t2.100000\tAsk not why.\n3.000000\t4.000000\tNo words here.\n"
    )


def test_highlighted_cues():
    cues = highlighted_cues(_segments())
    assert [(c["start"], c["end"], c["text"]) for c in cues] == [
        (0.4, 0.5, " Ask not why."),
        (0.5, 0.9, " <u>Ask</u> not why."),
        (0.9, 1.0, " Ask not why."),
        (1.0, 1.2, " Ask <u>not</u> why."),
        (1.2, 1.6, " Ask not why."),
        (1.6, 2.0, " Ask not <u>why.</u>"),
        (3.0, 4.0, " No words\nhere."),
    ]


def test_highlighted_vtt_is_cue_markup_and_the_words_are_escaped():
    """WebVTT reads ``<u>`` as markup: highlighted cues keep it, while a literal ``<`` or
    ``&`` in what was said is escaped; SRT shows both as they are."""
    import webvtt

    words = [Word(0.0, 0.5, " Q&A", 0.9), Word(0.5, 1.0, " <3", 0.9)]
    cues = highlighted_cues([Segment(0.0, 1.0, " Q&A <3", words=words)])
    vtt = to_vtt(cues)
    assert "<u>Q&amp;A</u> &lt;3" in vtt and "Q&amp;A <u>&lt;3</u>" in vtt and "&lt;u&gt;" not in vtt
    captions = webvtt.from_string(vtt).captions
    # webvtt-py strips the markup (it is markup) and leaves the entities as written.
    assert [c.text for c in captions] == ["Q&amp;A &lt;3"] * 2
    assert [c.raw_text.count("<u>") for c in captions] == [1, 1]
    assert "<u>Q&A</u> <3" in to_srt(cues)
    assert to_vtt([Segment(0.0, 1.0, " <u>not markup</u>")]).endswith("&lt;u&gt;not markup&lt;/u&gt;\n")
