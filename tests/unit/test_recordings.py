"""The recordings the suite needs travel with the code (tests/audio), and the harness finds
them with nothing beside the checkout."""

from __future__ import annotations

import csv

from harness import evaluation

SETS_WITH_MANIFESTS = ["librispeech_dev_clean", "jfk", "ljspeech", "longform", "multilingual"]


def test_the_harness_reads_the_repository_by_default_and_the_environment_when_set(monkeypatch, tmp_path):
    monkeypatch.delenv("WHISPER_LIVE_AUDIO", raising=False)
    assert evaluation.audio_root() == evaluation.REPO_AUDIO
    assert evaluation.manifest("jfk")[0].path == evaluation.REPO_AUDIO / "jfk" / "jfk.flac"
    monkeypatch.setenv("WHISPER_LIVE_AUDIO", str(tmp_path))
    assert evaluation.audio_root() == tmp_path


def test_every_kept_file_has_its_manifest_row_source_and_licence():
    root = evaluation.REPO_AUDIO
    for name in SETS_WITH_MANIFESTS:
        with open(root / name / "manifest.tsv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        assert rows, name
        for row in rows:
            assert (root / name / row["file"]).stat().st_size > 1000, row["file"]
            assert row["source"] and row["license_note"] and row["reference_transcript"], row["id"]
        listed = {r["file"] for r in rows} | {"manifest.tsv"}
        assert {p.name for p in (root / name).iterdir()} == listed, f"{name}: a file without its manifest row"
    for name in ("two_speakers", "three_speakers"):
        for suffix in (".wav", ".rttm", ".tsv"):
            assert (root / "conversations" / f"{name}{suffix}").exists()
    assert len(list((root / "tensors").iterdir())) == 4


def test_a_set_left_out_of_the_repository_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("WHISPER_LIVE_AUDIO", raising=False)
    try:
        evaluation.manifest("english_misc")
    except FileNotFoundError as error:
        assert "WHISPER_LIVE_AUDIO" in str(error)
    else:
        raise AssertionError("english_misc is not kept in tests/audio")
