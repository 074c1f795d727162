"""Diarization logic without a Whisper model: the safe torch.save reader, the speaker
encoder's weights, clustering, turn building and assignment, and the DER/cpWER scorers
against hand-computed cases."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from harness import evaluation
from harness.diarization_metrics import best_mapping, cp_wer, der

from whisper_live import tensors
from whisper_live.core.decodes import Segment, Word
from whisper_live.engine import diarization as d
from whisper_live.engine.speaker_encoder import SpeakerEncoder, mel_frames, weights_path
from whisper_live.errors import InvalidRequest

TENSORS = evaluation.audio_root() / "tensors"


# ----------------------------------------------------------------------------- torch.save reader


def _zip_pickle(payload: bytes, name: str = "archive") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/data.pkl", payload)
        archive.writestr(f"{name}/version", "3\n")
    return buffer.getvalue()


class _Exploit:
    """Unpickling this would call os.system: the reader must refuse it before any call."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_torch_fixtures_read_as_numpy():
    float32 = tensors.load_tensor((TENSORS / "jfk_16k_float32.pt").read_bytes())
    assert float32.dtype == np.float32 and float32.shape == (176000,)
    np.testing.assert_array_equal(float32, np.load(TENSORS / "jfk_16k_float32.npy"))
    int16 = tensors.load_tensor((TENSORS / "jfk_16k_int16.pt").read_bytes())
    assert int16.dtype == np.int16 and int16.shape == (176000,)
    in_range = np.abs(float32) < 0.99  # the float clip peaks at 1.1: its int16 twin wraps there
    assert np.abs(int16.astype(np.float32) / 32768 - float32)[in_range].max() < 1e-3
    wide = tensors.load_tensor((TENSORS / "jfk_44k1_float32_1xN.pt").read_bytes())
    assert wide.shape == (1, 485100)


@pytest.mark.parametrize("container", ["zip", "legacy", "plain"])
def test_malicious_pickle_is_refused_and_not_executed(tmp_path, container):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"weights": _Exploit(marker)}, protocol=2)
    if container == "zip":
        data = _zip_pickle(payload)
    elif container == "legacy":
        header = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {}))
        data = header + payload + pickle.dumps([], protocol=2)
    else:
        data = payload
    with pytest.raises(tensors.TensorFileError):
        tensors.load(data)
    assert not marker.exists()


def test_garbage_and_out_of_range_tensors_are_clear_errors():
    with pytest.raises(tensors.TensorFileError):
        tensors.load(b"not a tensor file at all")
    # A tensor that claims more elements than its storage holds must not read past it.
    payload = (TENSORS / "jfk_16k_float32.pt").read_bytes()
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        names = {n: archive.read(n) for n in archive.namelist()}
    root = next(n for n in names if n.endswith("data.pkl")).rsplit("/", 1)[0]
    names[f"{root}/data/0"] = names[f"{root}/data/0"][:400]  # truncated storage
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in names.items():
            archive.writestr(name, content)
    with pytest.raises(tensors.TensorFileError):
        tensors.load(buffer.getvalue())
    with pytest.raises(tensors.TensorFileError, match="not a single tensor"):
        tensors.load_tensor(_zip_pickle(pickle.dumps(OrderedDict(a=1), protocol=2)))


def test_legacy_format_with_shared_storage_and_offsets():
    """The legacy stream resemblyzer's weights use: two tensors viewing one storage."""
    values = np.arange(10, dtype="<f4")
    header = b"".join(
        pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True})
    )
    keys = pickle.dumps(["k1"], protocol=2)
    storage = struct.pack("<q", 10) + values.tobytes()
    state = tensors.load(header + _legacy_pickle() + keys + storage)
    np.testing.assert_array_equal(state["a"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(state["b"], [7, 9])  # offset 7, stride 2
    with pytest.raises(tensors.TensorFileError):
        tensors.load(header + _legacy_pickle() + keys + storage[:20])


def _legacy_pickle() -> bytes:
    """{'a': tensor(storage k1, offset 0, size (2, 3), stride (3, 1)),
    'b': tensor(storage k1, offset 7, size (2,), stride (2,))}, in pickle protocol 2 opcodes."""

    def glob(module: str, name: str) -> bytes:
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    def text(value: str) -> bytes:
        raw = value.encode()
        return b"X" + struct.pack("<I", len(raw)) + raw

    def small(n: int) -> bytes:
        return b"K" + bytes([n])

    storage = (
        b"("
        + text("storage")
        + glob("torch", "FloatStorage")
        + text("k1")
        + text("cpu")
        + small(10)
        + b"Nt"
        + b"Q"
    )

    def tensor(offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
        as_tuple = lambda xs: b"(" + b"".join(small(x) for x in xs) + b"t"  # noqa: E731
        hooks = glob("collections", "OrderedDict") + b")R"
        return (
            glob("torch._utils", "_rebuild_tensor_v2")
            + b"("
            + storage
            + small(offset)
            + as_tuple(size)
            + as_tuple(stride)
            + b"\x89"
            + hooks
            + b"tR"
        )

    return b"\x80\x02}(" + text("a") + tensor(0, (2, 3), (3, 1)) + text("b") + tensor(7, (2,), (2,)) + b"u."


# ----------------------------------------------------------------------------- the encoder


def test_encoder_weights_come_from_the_installed_wheel():
    state = tensors.load(weights_path().read_bytes())["model_state"]
    assert state["lstm.weight_ih_l0"].shape == (1024, 40)
    assert state["linear.weight"].shape == (256, 256)
    encoder = SpeakerEncoder(state)
    rng = np.random.default_rng(0)
    embeddings = encoder.embed_mels(rng.random((3, 160, 40), np.float32))
    assert embeddings.shape == (3, 256)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    assert (embeddings >= 0).all()  # ReLU before the normalisation


def test_mel_frames_match_librosa_layout():
    """A 1 kHz tone lands in the mel band around 1 kHz; frames are centred every 10 ms."""
    t = np.arange(16000) / 16000
    mels = mel_frames(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    assert mels.shape == (101, 40)
    assert 13 <= int(np.argmax(mels[50])) <= 17


# ----------------------------------------------------------------------------- clustering


def _blobs(sizes: list[int], spread: float = 0.05, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(len(sizes), 16)
    points, truth = [], []
    for k, n in enumerate(sizes):
        points.append(centres[k] + spread * rng.standard_normal((n, 16)))
        truth += [k] * n
    return np.concatenate(points), np.array(truth)


def test_average_linkage_matches_a_brute_force_merge():
    points, _ = _blobs([4, 3, 5], spread=0.3)
    distances = d.cosine_distances(points)
    heights = [h for _, _, h in d.average_linkage(distances)]
    # brute force: repeatedly merge the two clusters with the smallest mean pairwise distance
    clusters = [[i] for i in range(len(points))]
    expected = []
    while len(clusters) > 1:
        best = min(
            (
                (distances[np.ix_(a, b)].mean(), i, j)
                for i, a in enumerate(clusters)
                for j, b in enumerate(clusters)
                if i < j
            )
        )
        expected.append(best[0])
        merged = clusters[best[1]] + clusters[best[2]]
        clusters = [c for k, c in enumerate(clusters) if k not in (best[1], best[2])] + [merged]
    np.testing.assert_allclose(heights, sorted(expected), atol=1e-9)


def test_cluster_by_threshold_and_by_speaker_bounds():
    points, truth = _blobs([6, 5, 4])
    labels = d.cluster(points, threshold=0.35)
    assert len(set(labels)) == 3
    assert all(len(set(truth[labels == k])) == 1 for k in set(labels))
    assert labels[0] == 0  # numbered by first appearance
    assert len(set(d.cluster(points, threshold=0.35, max_speakers=2))) == 2
    assert len(set(d.cluster(points, threshold=0.35, min_speakers=5))) == 5
    assert len(set(d.cluster(points, threshold=1.5))) == 1
    assert d.cluster(np.zeros((0, 16))).shape == (0,)
    assert list(d.cluster(points[:1])) == [0]


def test_single_window_clusters_join_their_nearest_speaker():
    points, truth = _blobs([6, 5])
    outlier = points[0] * 0.4 + np.eye(16)[5]  # far from everything, nearest to speaker 0
    labels = d.cluster(np.vstack([points, outlier]), threshold=0.35)
    assert len(set(labels)) == 2 and labels[-1] == labels[0]
    # unless the caller says there are more speakers
    assert len(set(d.cluster(np.vstack([points, outlier]), threshold=0.35, min_speakers=3))) == 3


def test_one_voice_with_stray_windows_is_one_speaker():
    """One voice drifts along a recording: a few windows far from the rest (under
    MIN_CLUSTER_SHARE of them) are not a second speaker; the same stray windows as a
    real share of the speech are."""
    points, _ = _blobs([40], spread=0.05)
    stray = np.roll(points[:3], 1, axis=1)  # 3 of 43 windows, far from the voice
    assert len(set(d.cluster(np.vstack([points, stray])))) == 1
    other = np.roll(points[:12], 1, axis=1)  # 12 of 52: another speaker
    labels = d.cluster(np.vstack([points, other]))
    assert len(set(labels)) == 2 and len(set(labels[40:])) == 1 and labels[40] != labels[0]
    # min_speakers still asks for more clusters than the speech supports
    assert len(set(d.cluster(np.vstack([points, stray]), min_speakers=2))) == 2


def test_windows_spread_far_apart_hold_two_voices_at_least(monkeypatch):
    """Two voices whose clusters the count rule merges (here: SEPARATION_DISTANCE set above
    their distance, as similar voices in short overlapping turns are merged) are kept apart
    when the recording's windows lie on average farther apart than SPREAD_DISTANCE; one
    voice, a short recording and max_speakers=1 stay one."""
    monkeypatch.setattr(d, "SEPARATION_DISTANCE", 1.5)
    two, truth = _blobs([15, 15])
    spread = d.cosine_distances(two)[np.triu_indices(30, 1)].mean()
    monkeypatch.setattr(d, "SPREAD_DISTANCE", 0.0)
    assert len(set(d.cluster(two))) == 1
    monkeypatch.setattr(d, "SPREAD_DISTANCE", float(spread) - 0.05)
    labels = d.cluster(two)
    assert len(set(labels)) == 2 and all(len(set(truth[labels == k])) == 1 for k in set(labels))
    one, _ = _blobs([30])
    assert len(set(d.cluster(one))) == 1
    assert len(set(d.cluster(two, max_speakers=1))) == 1
    few, _ = _blobs([d.SPREAD_MIN_WINDOWS // 2 - 1] * 2)
    assert len(set(d.cluster(few))) == 1


def test_a_voice_fragmented_at_the_threshold_is_found_higher_up_the_tree(monkeypatch):
    """A third voice whose windows lie in four small clusters at the threshold (3 windows
    each, 6 needed: as a voice in short overlapping turns whose windows hold some of the
    others) comes together higher up: with FULLEST_CUT it is a speaker, without it its
    windows went to the other two."""
    rng = np.random.default_rng(3)
    two, truth = _blobs([20, 20], spread=0.02)
    fragments = [
        np.eye(16)[2] + 0.8 * np.eye(16)[3 + k] + 0.02 * rng.standard_normal((3, 16)) for k in range(4)
    ]
    points = np.vstack([two, *fragments])
    truth = np.concatenate([truth, [2] * 12])
    monkeypatch.setattr(d, "FULLEST_CUT", False)
    assert len(set(d.cluster(points))) == 2
    monkeypatch.setattr(d, "FULLEST_CUT", True)
    labels = d.cluster(points)
    assert len(set(labels)) == 3 and all(len(set(truth[labels == k])) == 1 for k in set(labels))
    one, _ = _blobs([40], spread=0.05)  # one voice stays one
    assert len(set(d.cluster(one))) == 1


def test_short_flips_are_smoothed_unless_the_voice_is_far():
    a, b = np.eye(4)[0], np.eye(4)[1]
    near_a = (a * 0.9 + b * 0.1) / np.linalg.norm(a * 0.9 + b * 0.1)
    turns = [
        d.SpeakerTurn(0.0, 3.0, "SPEAKER_00"),
        d.SpeakerTurn(3.0, 3.4, "SPEAKER_01"),  # a 0.4 s flip inside speaker 0's speech
        d.SpeakerTurn(3.4, 6.0, "SPEAKER_00"),
        d.SpeakerTurn(6.2, 9.0, "SPEAKER_01"),  # a real turn: long
    ]
    spans = [(2.5, 4.1)]  # one window centred in the flip
    centroids = {"SPEAKER_00": a, "SPEAKER_01": b}
    smoothed = d.smooth_flips(turns, spans, np.array([near_a]), centroids)
    assert [(t.start, t.end, t.speaker) for t in smoothed] == [
        (0.0, 6.0, "SPEAKER_00"),
        (6.2, 9.0, "SPEAKER_01"),
    ]
    # the same flip sounding like speaker 1 (far from speaker 0) stays a turn
    kept = d.smooth_flips(turns, spans, np.array([b]), centroids)
    assert [t.speaker for t in kept] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00", "SPEAKER_01"]
    # a 0.6 s turn between two of the other speaker's is a turn (FLIP_SECONDS)
    longer = [turns[0], d.SpeakerTurn(3.0, 3.6, "SPEAKER_01"), d.SpeakerTurn(3.6, 6.0, "SPEAKER_00")]
    assert [t.speaker for t in d.smooth_flips(longer, spans, np.array([near_a]), centroids)] == [
        "SPEAKER_00",
        "SPEAKER_01",
        "SPEAKER_00",
    ]
    # and so does a flip after a pause (an answer, not a flip)
    paused = [turns[0], d.SpeakerTurn(3.8, 4.2, "SPEAKER_01"), d.SpeakerTurn(5.2, 6.0, "SPEAKER_00")]
    assert [t.speaker for t in d.smooth_flips(paused, spans, np.array([near_a]), centroids)] == [
        "SPEAKER_00",
        "SPEAKER_01",
        "SPEAKER_00",
    ]


def _words(*spec) -> list[Word]:
    return [Word(start, end, text, 0.9, speaker) for start, end, text, speaker in spec]


def test_segments_split_at_the_word_where_the_speaker_changes():
    words = _words(
        (0.0, 0.4, " Hello", "SPEAKER_00"),
        (0.5, 0.9, " there.", "SPEAKER_00"),
        (1.2, 1.5, " Hi,", "SPEAKER_01"),
        (1.6, 2.0, " you.", "SPEAKER_01"),
        (2.2, 2.6, " Bye.", "SPEAKER_00"),
    )
    segments = [
        Segment(
            0.0, 2.8, " Hello there. Hi, you. Bye.", id=0, tokens=[1, 2, 3], words=words, speaker="SPEAKER_00"
        ),
        Segment(
            3.0, 4.0, " Alone.", id=1, words=_words((3.1, 3.9, " Alone.", "SPEAKER_01")), speaker="SPEAKER_01"
        ),
        Segment(4.0, 5.0, " No words.", id=2, speaker="SPEAKER_01"),
    ]
    out = d.split_at_turns(segments)
    assert [(s.id, s.start, s.end, s.text, s.speaker) for s in out] == [
        (0, 0.0, 0.9, " Hello there.", "SPEAKER_00"),
        (1, 1.2, 2.0, " Hi, you.", "SPEAKER_01"),
        (2, 2.2, 2.8, " Bye.", "SPEAKER_00"),
        (3, 3.0, 4.0, " Alone.", "SPEAKER_01"),
        (4, 4.0, 5.0, " No words.", "SPEAKER_01"),
    ]
    assert all({w.speaker for w in s.words or []} <= {s.speaker} for s in out)
    assert out[0].tokens == [1, 2, 3] and out[1].tokens == []
    assert "".join(s.text for s in out) == "".join(s.text for s in segments)
    # an unlabelled word stays with the run before it
    runs = d.speaker_runs(_words((0, 1, " a", "SPEAKER_00"), (1, 2, " b", None), (2, 3, " c", "SPEAKER_01")))
    assert [[w.word for w in run] for run in runs] == [[" a", " b"], [" c"]]
    assert d.speaker_runs([]) == []


def test_words_and_segments_are_fitted_to_the_speech_regions():
    """Whisper's first word after a pause starts where the last one ended; fitted, it
    starts in the speech region (stretched back by at most FIT_STRETCH), the region's
    last word reaches towards the region's end, and segments span their words."""
    regions = [(0.0, 2.0), (3.0, 5.0)]
    segments = [
        Segment(
            0.0, 2.1, " One two.", id=0, words=_words((0.5, 1.0, " One", None), (1.0, 1.5, " two.", None))
        ),
        Segment(
            2.1,
            4.8,
            " Three four.",
            id=1,
            words=_words((2.1, 3.6, " Three", None), (3.6, 4.2, " four.", None)),
        ),
        Segment(6.0, 7.0, " Outside.", id=2, words=_words((6.0, 7.0, " Outside.", None))),
        Segment(7.0, 8.0, " No words.", id=3),
    ]
    out = d.fit_to_speech(segments, regions)
    stretch = d.FIT_STRETCH
    words = [(w.word, w.start, w.end) for s in out for w in s.words or []]
    assert words == [
        (" One", 0.5 - stretch, 1.0),
        (" two.", 1.0, 1.5 + stretch),
        (" Three", 3.0, 3.6),  # clamped into the region it overlaps most, already at its edge
        (" four.", 3.6, 4.2 + stretch),
        (" Outside.", 6.0, 7.0),  # overlaps no region: as Whisper timed it
    ]
    assert [(s.start, s.end) for s in out] == [
        (0.5 - stretch, 1.5 + stretch),
        (3.0, 4.2 + stretch),
        (6.0, 7.0),
        (7.0, 8.0),
    ]
    assert [s.text for s in out] == [s.text for s in segments]
    assert segments[1].words[0].start == 2.1  # the input is not changed
    assert d.fit_to_speech(segments, []) == segments
    # the stretch never leaves the region
    near_edge = [Segment(0.1, 1.9, " a", words=_words((0.1, 1.9, " a", None)))]
    assert [(w.start, w.end) for w in d.fit_to_speech(near_edge, regions)[0].words] == [(0.0, 2.0)]


def test_a_gap_between_words_of_one_speech_region_goes_to_the_word_before():
    """Silero's region has no pause in it, so the 1.5 s Whisper's times leave between two
    segments there is speech: the earlier segment runs on to the next one's first word.
    Words in different regions keep the pause between them."""
    regions = [(0.0, 5.0), (6.0, 8.0)]
    segments = [
        Segment(
            0.5,
            2.0,
            " bear his memory.",
            words=_words((0.5, 1.0, " bear", None), (1.0, 2.0, " memory.", None)),
        ),
        Segment(3.5, 4.0, " But now", words=_words((3.5, 3.7, " But", None), (3.7, 4.0, " now", None))),
        Segment(6.5, 7.5, " Then.", words=_words((6.5, 7.5, " Then.", None))),
    ]
    out = d.fit_to_speech(segments, regions)
    assert [(s.start, s.end) for s in out] == [
        (0.5 - d.FIT_STRETCH, 3.5),
        (3.5, 4.0 + d.FIT_STRETCH),
        (6.5 - d.FIT_STRETCH, 7.5 + d.FIT_STRETCH),
    ]
    assert out[0].words[1].end == 3.5 and out[0].words[0].end == 1.0


def test_segments_are_cut_where_a_pause_lies_between_two_words():
    """A segment running across a pause of PAUSE_SPLIT_SECONDS or more outside every
    speech region is cut there (each piece spans its words and takes their text); a gap
    inside a region, or a shorter pause, is not a cut, and no word is split or lost."""
    regions = [(0.0, 2.0), (2.2, 3.0), (4.0, 6.0)]
    words = _words(
        (0.5, 1.0, " One.", None),
        (1.0, 1.9, " From", None),  # 0.3 s to the next word, 0.2 s of it outside the regions
        (2.2, 2.9, " fairest", None),  # 1.1 s to the next, 1.0 s outside: a pause
        (4.0, 4.5, " creatures", None),
        (4.9, 5.5, " we", None),  # 0.4 s gap inside one region: speech
    )
    segment = Segment(0.5, 5.5, "".join(w.word for w in words), words=words, tokens=[1, 2, 3])
    assert d.silent_gaps([segment], regions) == [(2.9, 4.0)]
    out = d.split_at_pauses([segment], regions)
    assert [(s.start, s.end, s.text) for s in out] == [
        (0.5, 2.9, " One. From fairest"),
        (4.0, 5.5, " creatures we"),
    ]
    assert [w for s in out for w in s.words] == words
    assert out[0].tokens == [1, 2, 3] and out[1].tokens == []
    # a longer threshold, or no regions, leaves it whole
    assert d.split_at_pauses([segment], []) == [segment]
    assert d.silent_gaps([segment], regions, seconds=1.5) == []


def test_diarized_segments_do_not_span_a_pause(monkeypatch):
    """Through ``diarize_windows``: a one-speaker recording whose single Whisper segment
    spans a 1.5 s silence between two regions comes back as two segments, one each side."""
    regions = [(0.0, 3.0), (4.5, 7.0)]
    spans = d.windows(regions)
    embeddings, _ = _blobs([len(spans)])
    words = _words((0.2, 1.5, " Ask", None), (1.5, 2.8, " not.", None), (3.0, 6.8, " What", None))
    segment = Segment(0.2, 6.8, " Ask not. What", words=words)
    out = d.diarize_windows(regions, spans, embeddings, [segment]).segments
    assert [s.text for s in out] == [" Ask not.", " What"]
    assert out[0].end <= 3.0 and out[1].start >= 4.5 and [s.id for s in out] == [0, 1]
    monkeypatch.setattr(d, "PAUSE_SPLIT_SECONDS", 0)  # off: one segment across the pause
    assert len(d.diarize_windows(regions, spans, embeddings, [segment]).segments) == 1


def test_a_short_recording_needs_three_windows_for_a_second_speaker():
    """Five windows of one voice, two of them nearly the same window (a region just over
    1.6 s) and far from the rest: one observation, not a second speaker (as the 5.7 s
    ``deepspeech_ru_sample`` was); three such windows are one; min_speakers still splits."""
    points, _ = _blobs([3], spread=0.05)
    other = np.roll(points[:1], 1, axis=1)
    pair = np.vstack([other, other + 0.01])
    assert len(set(d.cluster(np.vstack([points, pair])))) == 1
    assert len(set(d.cluster(np.vstack([points, pair]), min_speakers=2))) == 2
    three = np.vstack([other, other + 0.01, other - 0.01])
    assert len(set(d.cluster(np.vstack([points, three])))) == 2


def test_subtitles_carry_speakers_as_whisperx_writes_them():
    from whisper_live.formats import highlighted_cues, to_srt, to_text, to_vtt

    segments = [
        Segment(
            0.0, 1.0, " Hi <there>.", speaker="SPEAKER_00", words=_words((0.1, 0.9, " Hi", "SPEAKER_00"))
        ),
        Segment(1.0, 2.0, " Yes.", speaker="SPEAKER_01"),
        Segment(2.0, 3.0, " Plain."),
    ]
    assert "\n[SPEAKER_00]: Hi <there>.\n" in to_srt(segments)
    assert "\n[SPEAKER_01]: Yes.\n" in to_srt(segments) and "\nPlain.\n" in to_srt(segments)
    assert "\n[SPEAKER_00]: Hi &lt;there&gt;.\n" in to_vtt(segments)
    assert to_text(segments) == "[SPEAKER_00]: Hi <there>. [SPEAKER_01]: Yes. Plain.\n"
    assert "[SPEAKER_00]: <u>Hi</u>" in to_srt(highlighted_cues(segments[:1]))


def test_deepgram_utterances_and_paragraphs_hold_one_speaker():
    from whisper_live.faces.deepgram import protocol

    words = _words(
        (0.0, 0.4, "Hello", "SPEAKER_00"),
        (0.5, 0.9, "there.", "SPEAKER_00"),
        (1.0, 1.4, "Hi,", "SPEAKER_01"),  # no pause: only the speaker change splits here
        (1.5, 1.9, "you.", "SPEAKER_01"),
        (2.0, 2.4, "Right.", "SPEAKER_00"),
    )
    body = protocol.paragraphs_json(words, 0.0)
    assert [(p["speaker"], p["num_words"]) for p in body["paragraphs"]] == [(0, 2), (1, 2), (0, 1)]
    assert body["transcript"] == "\nSpeaker 0: Hello there.\n\nSpeaker 1: Hi, you.\n\nSpeaker 0: Right."
    options = protocol.ListenOptions(punctuate=True)
    utterances = protocol.utterances_json([words], options, 0.0)
    assert [(u["speaker"], u["transcript"]) for u in utterances] == [
        (0, "Hello there."),
        (1, "Hi, you."),
        (0, "Right."),
    ]
    # without speakers: one paragraph and one utterance, no "Speaker" anywhere
    plain = [Word(w.start, w.end, w.word, w.probability) for w in words]
    assert len(protocol.paragraphs_json(plain, 0.0)["paragraphs"]) == 1
    assert "Speaker" not in protocol.paragraphs_json(plain, 0.0)["transcript"]
    assert len(protocol.utterances_json([plain], options, 0.0)) == 1


def test_speaker_bounds_are_validated():
    with pytest.raises(InvalidRequest, match="min_speakers must not exceed"):
        d.check_speaker_bounds(3, 2)
    with pytest.raises(InvalidRequest, match="max_speakers"):
        d.check_speaker_bounds(None, 0)


# ----------------------------------------------------------------------------- turns and assignment


def test_windows_cover_regions_and_short_regions_get_one():
    spans = d.windows([(0.0, 1.0), (2.0, 5.0)])
    assert spans[0] == (0.0, 1.0)
    assert spans[1][0] == 2.0 and abs(spans[-1][1] - 5.0) < 1e-9
    assert all(abs((e - s) - d.WINDOW_SECONDS) < 1e-9 for s, e in spans[1:])
    steps = np.diff([s for s, _ in spans[1:]])
    assert (steps <= d.STEP_SECONDS + 1e-9).all()


def test_turns_follow_the_nearest_window_and_label_segments_and_words():
    regions = [(0.0, 4.0), (5.0, 6.0)]
    spans = [(0.0, 1.6), (0.8, 2.4), (1.6, 3.2), (2.4, 4.0), (5.0, 6.0)]
    turns = d.turns_from_windows(regions, spans, [0, 0, 1, 1, 0])
    assert [(t.speaker, round(t.start, 2), round(t.end, 2)) for t in turns] == [
        ("SPEAKER_00", 0.0, 2.0),
        ("SPEAKER_01", 2.0, 4.0),
        ("SPEAKER_00", 5.0, 6.0),
    ]
    words = [Word(0.2, 0.6, " one"), Word(2.5, 3.0, " two"), Word(4.3, 4.4, " gap")]
    labelled = d.label_segments(
        [Segment(0.0, 3.5, " one two", words=words), Segment(5.1, 5.9, " three")], turns
    )
    assert labelled[0].speaker == "SPEAKER_00"  # 2.0 s of speaker 0 vs 1.5 s of speaker 1
    assert [w.speaker for w in labelled[0].words] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_01"]
    assert labelled[1].speaker == "SPEAKER_00" and labelled[1].words is None
    assert d.speaker_at([], 0, 1) is None


def test_turn_edges_are_placed_by_windows_embedded_between_two_speakers(monkeypatch):
    """Between neighbouring windows of different speakers, BOUNDARY_WINDOWS more are
    embedded (inside the region) and each takes the nearer of the two; the turn's edge
    moves with them, and windows of one speaker get none."""
    regions = [(0.0, 4.0), (5.0, 6.0)]
    spans = [(0.0, 1.6), (0.8, 2.4), (1.6, 3.2), (2.4, 4.0), (5.0, 6.0)]
    labels = np.array([0, 0, 1, 1, 0])
    embeddings = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    monkeypatch.setattr(d, "BOUNDARY_WINDOWS", 3)
    extra = d.boundary_spans(regions, spans, labels)
    assert [(round(s, 2), round(e, 2), a, b) for (s, e), a, b in extra] == [
        (1.0, 2.6, 0, 1),
        (1.2, 2.8, 0, 1),
        (1.4, 3.0, 0, 1),
    ]
    edge = d.boundary_spans([(0.0, 2.0)], [(0.0, 1.6), (0.4, 2.0)], [0, 1])
    assert [(round(s, 2), round(e, 2)) for (s, e), _, _ in edge] == [(0.1, 1.7), (0.2, 1.8), (0.3, 1.9)]
    monkeypatch.setattr(d, "BOUNDARY_WINDOWS", 1)
    extra = d.boundary_spans(regions, spans, labels)
    assert [(round(s, 2), round(e, 2)) for (s, e), _, _ in extra] == [(1.2, 2.8)]
    asked = []

    def embed(more):  # the speaker of labels 0 holds on past the old edge (2.0 s)
        asked.extend(more)
        return np.array([[1.0, 0.1] for _ in more])

    spans2, embeddings2, labels2 = d.refine_boundaries(regions, spans, embeddings, labels, embed)
    assert asked == [span for span, _, _ in extra]
    assert len(spans2) == len(embeddings2) == len(labels2) == len(spans) + len(extra)
    assert list(labels2[len(spans) :]) == [0] * len(extra)
    turns = d.turns_from_windows(regions, spans2, labels2)
    assert turns[0].speaker == "SPEAKER_00" and turns[0].end > 2.0  # the edge moved later
    assert turns[1].speaker == "SPEAKER_01" and turns[1].end == 4.0
    # one speaker throughout: nothing to embed
    assert d.boundary_spans(regions, spans, [0, 0, 0, 0, 1]) == []
    same = d.refine_boundaries(regions, spans, embeddings, np.zeros(5, int), embed)
    assert same[0] == spans and len(same[1]) == 5


def test_viterbi_pays_for_each_change_of_speaker():
    scores = np.array([[1.0, 0.0], [0.45, 0.55], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert list(d._viterbi(scores, 0.0)) == [0, 1, 0, 1, 1]  # free changes: the best each time
    assert list(d._viterbi(scores, 0.2)) == [0, 0, 0, 1, 1]  # a 0.1 gain does not pay two changes
    assert list(d._viterbi(scores, 5.0)) == [1, 1, 1, 1, 1]  # one speaker: the best sum (2.55)


def test_resegmentation_relabels_short_windows_by_their_own_centroids(monkeypatch):
    """The short windows start from the nearest clustered window's label, each speaker's
    centroid is taken over its short windows, and a Viterbi pass per region relabels them:
    a speaker change inside a long window moves to where the short windows put it, one
    stray short window does not flip the label, and no speaker is lost."""
    regions = [(0.0, 4.0), (5.0, 6.0)]
    spans = [(0.0, 1.6), (0.8, 2.4), (1.6, 3.2), (2.4, 4.0), (5.0, 6.0)]
    labels = np.array([0, 0, 1, 1, 0])
    short = d.windows(regions, 0.8, 0.4)
    assert short[0] == (0.0, 0.8) and short[-1] == (5.2, 6.0) and len(short) == 11
    # the voice of labels 0 until 2.8 s (its windows' centres < 2.8), a stray at 0.8-1.6
    # nearer the other voice by less than two changes cost
    vectors = np.array([[1.0, 0.0] if (s + e) / 2 < 2.8 or s >= 5.0 else [0.0, 1.0] for s, e in short])
    vectors[2] = [0.9, 1.0]
    monkeypatch.setattr(d, "SWITCH_PENALTY", 0.1)
    out = d.resegment(regions, spans, labels, short, vectors)
    assert list(out) == [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    monkeypatch.setattr(d, "SWITCH_PENALTY", 0.0)  # free changes: the stray flips
    assert list(d.resegment(regions, spans, labels, short, vectors))[:4] == [0, 0, 1, 0]
    turns = d.turns_from_windows(regions, short, out)
    assert [(t.speaker, t.start, t.end) for t in turns][1:] == [
        ("SPEAKER_01", 2.6, 4.0),
        ("SPEAKER_00", 5.0, 6.0),
    ]
    # a speaker whose short windows all go elsewhere keeps the ones it started with
    lost = d.resegment(regions, spans, labels, short, np.array([[1.0, 0.0]] * len(short)))
    assert set(lost) == {0, 1}


class _FixedEncoder:
    """Each 'segment' embeds to the unit vector its audio's constant value names."""

    def embed_utterance(self, audio: np.ndarray) -> np.ndarray:
        vector = np.zeros(8)
        vector[int(round(float(audio[0]) * 10))] = 1.0
        return vector


def test_streaming_labels_are_stable_and_respect_max_speakers():
    diarizer = d.StreamingDiarizer(encoder=_FixedEncoder(), max_speakers=2)
    plan = [(0.1, 2.0), (0.2, 2.0), (0.1, 2.0), (0.3, 2.0), (0.2, 0.5)]  # (speaker value, seconds)
    position, labels = 0.0, []
    for value, seconds in plan:
        diarizer.feed(np.full(int(seconds * 16000), value, np.float32))
        labels.append(diarizer.label(position, position + seconds))
        position += seconds
    assert labels[:3] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_00"]
    assert labels[3] in ("SPEAKER_00", "SPEAKER_01")  # a third voice, but max_speakers=2
    assert diarizer.speakers == 2
    assert diarizer.label(position, position + 0.1) is None  # too short to embed


def test_live_segment_two_speakers_share_is_split_per_turn():
    import asyncio

    from whisper_live.core.transcript import StreamSegment

    class _Pool:
        class scheduler:  # noqa: N801 - stands in for the pool's attribute
            @staticmethod
            async def run(job, priority):
                return job()

    speakers = d.LiveSpeakers(_Pool(), "float32")
    speakers.diarizer = d.StreamingDiarizer(encoder=_FixedEncoder())
    for value in (0.1, 0.2, 0.1, 0.2):  # A 0-2 s, B 2-4 s, then A 4-6 s and B 6-8 s
        speakers.diarizer.feed(np.full(32000, value, np.float32))

    def words(start, end):
        return [Word(t, t + 0.4, f" w{t:g}", 0.9) for t in np.arange(start, end, 0.5)]

    def segment(start, end):
        ws = words(start, end)
        return StreamSegment(start, end, "".join(w.word for w in ws), True, ws)

    first, second, shared = segment(0.0, 2.0), segment(2.0, 4.0), segment(4.0, 8.0)
    partial = StreamSegment(8.0, 9.0, " still", False)
    asyncio.run(speakers.label([first, second, shared, partial]))
    out = speakers.split([first, second, shared, partial])
    assert [(s.start, s.end, speakers.speaker_of(s)) for s in out[:4]] == [
        (0.0, 2.0, "SPEAKER_00"),
        (2.0, 4.0, "SPEAKER_01"),
        (4.0, 5.9, "SPEAKER_00"),
        (6.0, 8.0, "SPEAKER_01"),
    ]
    assert out[2].text + out[3].text == shared.text and out[2].text == " w4 w4.5 w5 w5.5"
    assert out[-1] is partial and speakers.speaker_of(partial) is None
    # a segment of one voice stays whole, and so does one without word timings
    alone = segment(0.0, 4.0)
    alone_words = StreamSegment(alone.start, alone.end, alone.text, True, alone.words[:4])
    bare = StreamSegment(4.0, 8.0, " no words", True)
    asyncio.run(speakers.label([alone_words, bare]))
    assert speakers.split([alone_words, bare]) == [alone_words, bare]
    assert speakers.speaker_of(bare) in ("SPEAKER_00", "SPEAKER_01")
    # an utterance's last segment (a pause follows) ends LIVE_END_STRETCH later, whole or
    # split, its label found by its new times; the same copy every time it is sent
    last = StreamSegment(0.0, 2.0, " last one", True, words(0.0, 2.0), ends_utterance=True)
    shared_last = dataclasses.replace(segment(4.0, 8.0), text=" shared end", ends_utterance=True)
    asyncio.run(speakers.label([last, shared_last]))
    out = speakers.split([last, shared_last])
    assert [(s.start, s.end, s.ends_utterance, speakers.speaker_of(s)) for s in out] == [
        (0.0, 2.0 + d.LIVE_END_STRETCH, True, "SPEAKER_00"),
        (4.0, 5.9, False, "SPEAKER_00"),
        (6.0, 8.0 + d.LIVE_END_STRETCH, True, "SPEAKER_01"),
    ]
    assert speakers.split([last, shared_last]) == out


def test_streaming_keeps_only_recent_audio():
    diarizer = d.StreamingDiarizer(encoder=_FixedEncoder(), keep_seconds=1.0)
    diarizer.feed(np.full(32000, 0.1, np.float32))
    diarizer.feed(np.full(16000, 0.2, np.float32))
    assert diarizer.label(2.0, 3.0) == "SPEAKER_00"
    assert diarizer.label(0.0, 1.0) is None  # long gone


# ----------------------------------------------------------------------------- scorers


def test_der_hand_computed():
    reference = [(0.0, 10.0, "A"), (10.0, 20.0, "B")]
    assert der(reference, [(0.0, 10.0, "x"), (10.0, 20.0, "y")]).der == 0.0
    # 2 s of B given to x (confusion), 1 s missed at the end, 1 s false alarm after it
    result = der(reference, [(0.0, 12.0, "x"), (12.0, 19.0, "y"), (20.0, 21.0, "y")])
    assert abs(result.confusion - 2.0) < 0.02 and abs(result.missed - 1.0) < 0.02
    assert abs(result.false_alarm - 1.0) < 0.02 and abs(result.der - 0.2) < 0.002
    assert result.mapping == {"x": "A", "y": "B"}
    # everything one speaker: half the speech is confused
    assert abs(der(reference, [(0.0, 20.0, "x")]).der - 0.5) < 0.002
    # a collar of 0.5 s around the boundaries at 0, 10 and 20 removes what the boundary shift costs
    shifted = [(0.0, 10.4, "x"), (10.4, 20.0, "y")]
    assert der(reference, shifted).der > 0.015 and der(reference, shifted, collar=0.5).der == 0.0


def test_best_mapping_is_optimal_not_greedy():
    agreement = np.array([[10.0, 9.0], [9.0, 0.0]])  # greedy takes (0,0) then (1,1) = 10
    assert sorted(best_mapping(agreement)) == [(0, 1), (1, 0)]  # 18


def test_cp_wer_hand_computed():
    reference = {"A": "the cat sat", "B": "on the mat"}
    assert cp_wer(reference, {"1": "on the mat", "2": "the cat sat"})[0] == 0.0
    # one word attributed to the wrong speaker: one deletion and one insertion of 6 words
    rate, mapping = cp_wer(reference, {"1": "the cat", "2": "sat on the mat"})
    assert abs(rate - 2 / 6) < 1e-9 and mapping == {"1": "A", "2": "B"}
    # a missing speaker costs all its words; one speaker for everything costs them twice
    assert abs(cp_wer(reference, {"1": "the cat sat"})[0] - 3 / 6) < 1e-9
    assert cp_wer(reference, {"1": "the cat sat on the mat"})[0] == 1.0


# ----------------------------------------------------------------------------- the WebSocket protocol


def test_stream_config_and_messages_carry_speakers():
    from whisper_live.core.session import SegmentsChanged, StreamSegment
    from whisper_live.faces.whisperlive import protocol

    config = protocol.parse_config('{"uid": "u", "enable_diarization": true, "max_speakers": 3}')
    assert config.diarize and config.max_speakers == 3
    assert protocol.parse_config('{"uid": "u", "diarize": "true"}').diarize
    # WhisperLive's client always sends both keys; without diarization max_speakers is moot
    plain = protocol.parse_config('{"uid": "u", "enable_diarization": false, "max_speakers": null}')
    assert not plain.diarize and plain.max_speakers is None
    with pytest.raises(protocol.ProtocolError, match="max_speakers"):
        protocol.parse_config('{"uid": "u", "enable_diarization": true, "max_speakers": 0}')
    done, partial = StreamSegment(0.0, 1.0, " Hi", True), StreamSegment(1.0, 2.0, " there", False)
    message = protocol.event_message("u", SegmentsChanged([done, partial]), lambda s: "SPEAKER_01")
    assert message["segments"][0]["speaker"] == "SPEAKER_01"
    assert "speaker" not in message["segments"][1]  # partials are not labelled
    assert "speaker" not in protocol.event_message("u", SegmentsChanged([done]))["segments"][0]


def test_diarize_end_to_end_on_a_conversation():
    """The engine alone on the two-speaker file: two speakers, the right turns, labels on
    segments by overlap and one centroid per speaker (no Whisper model needed)."""
    from harness.diarization_metrics import conversation_truth

    from whisper_live.media import decode_audio

    truth = conversation_truth("two_speakers")
    audio = decode_audio(str(truth.wav))
    segments = [Segment(start, end, " x") for start, end, _ in truth.turns]
    result = d.diarize(audio, segments)
    assert result.speakers == ["SPEAKER_00", "SPEAKER_01"]
    hypothesis = [(t.start, t.end, t.speaker) for t in result.turns]
    assert der(truth.turns, hypothesis, collar=0.25).der < 0.05
    by_truth = {}
    for segment, (_, _, speaker) in zip(result.segments, truth.turns, strict=True):
        by_truth.setdefault(speaker, set()).add(segment.speaker)
    assert all(len(labels) == 1 for labels in by_truth.values()) and len(by_truth) == 2
    assert set(result.embeddings) == set(result.speakers)
    assert all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in result.embeddings.values())
    assert len(set(d.diarize(audio, segments, max_speakers=1).speakers)) == 1


def test_generated_mixes_have_true_references(tmp_path):
    """The evaluation's mixes (scripts/harness/mixes.py), built from the LibriSpeech readers
    and JFK: every listed speaker speaks, the RTTM turns lie on speech (far louder than what
    they leave out), overlaps exist only where asked, and both splits hold every kind."""
    from harness import mixes
    from harness.diarization_metrics import read_rttm

    files: dict[str, list] = {}
    for utterance in evaluation.manifest("librispeech_dev_clean"):
        files.setdefault("ls" + utterance.id.split("-")[0], []).append(utterance.path)
    files["jfk"] = [u.path for u in evaluation.manifest("jfk")]
    built = mixes.build_mixes(seed=5, repeats=1, readers=mixes.reader_audio(files))
    assert len(built) == 6 + 28
    assert {m.split for m in built} == {"tune", "test"}
    assert {m.kind for m in built if m.split == "tune"} >= {m.kind for m in built if m.split == "test"}
    for mix in built:
        count = int(mix.kind[0])
        assert len(mix.speakers) == count and {t[2] for t in mix.turns} == set(mix.speakers), mix.name
        assert all(0 <= s < e <= mix.seconds for s, e, _ in mix.turns), mix.name
        inside = np.zeros(len(mix.audio), bool)
        for start, end, _ in mix.turns:
            inside[int(start * 16000) : int(end * 16000)] = True
        if (~inside).sum() > 16000:
            assert np.sqrt(np.mean(mix.audio[inside] ** 2)) > 5 * np.sqrt(np.mean(mix.audio[~inside] ** 2))
        # the noise-aware reference is the same speech less what lies near the reader's noise
        quiet = np.zeros(len(mix.audio), bool)
        for start, end, _ in mix.quiet_turns:
            quiet[int(start * 16000) : int(end * 16000)] = True
        assert not (quiet & ~inside).any(), mix.name
        if "jfk" in mix.speakers:  # JFK's pauses (his hall's noise is above -40 dB of his peak)
            jfk = sum(e - s for s, e, k in mix.turns if k == "jfk")
            assert sum(e - s for s, e, k in mix.quiet_turns if k == "jfk") < 0.9 * jfk, mix.name
        overlaps = sum(1 for a, b in zip(mix.turns, mix.turns[1:]) if a[2] != b[2] and b[0] < a[1] - 0.1)
        assert (overlaps > 0) == ("overlap" in mix.kind), mix.name
        rttm = mix.rttm()
        assert len(rttm.splitlines()) == len(mix.turns)
        path = tmp_path / f"{mix.name}.rttm"
        path.write_text(rttm)
        assert [(round(s, 3), round(e, 3), k) for s, e, k in read_rttm(path)] == [
            (round(s, 3), round(e, 3), k) for s, e, k in mix.turns
        ]
