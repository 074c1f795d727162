"""The benchmark and soak scripts, run end to end at their smallest: one stream, one or two
real utterances, a real child server. Their figures are measured by hand on a quiet machine
(docs/BENCHMARKS.md, docs/RELIABILITY.md); these runs only show that each script still
drives the server it measures and writes the report the docs read. A change in the harness
once left ``bench_listen.py`` calling ``run_clients`` without its new ``frame`` argument,
and nothing noticed until the next measurement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, timeout: float = 300) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def test_bench_streaming_reports_one_paced_stream(tmp_path):
    out = tmp_path / "streaming.json"
    _run(
        "bench_streaming.py",
        *("--clients", "1", "--utterances", "2", "--frame", "4096", "--silence-seconds", "0"),
        *("--json", str(out)),
    )
    report = json.loads(out.read_text())
    assert report["frame_samples"] == 4096
    (result,) = report["results"]
    aggregate = result["aggregate"]
    assert aggregate["wer_mean"] < 0.15, aggregate
    assert aggregate["final_p90"] is not None, aggregate
    assert result["rss_peak_mb"] > 50
    assert report["offline_baseline"]["wer"] < 0.15


def test_bench_listen_compares_both_faces(tmp_path):
    out = tmp_path / "listen.json"
    _run("bench_listen.py", "--streams", "1", "--utterances", "2", "--output", str(out))
    (row,) = json.loads(out.read_text())["rounds"]
    for face in ("whisperlive", "deepgram"):
        assert row[face]["missing_finals"] == 0, row
        assert row[face]["wer"] < 0.15, row
    assert row["p50_difference_s"] is not None


def test_soak_passes_a_short_run(tmp_path):
    out = tmp_path / "soak.json"
    _run(
        "soak.py",
        *("--streams", "2", "--minutes", "0.4", "--upload-every", "8", "--rss-window", "0.2"),
        *("--workdir", str(tmp_path), "--json", str(out), "--", "--no-capacity-admission"),
    )
    report = json.loads(out.read_text())
    totals, criteria = report["totals"], report["criteria"]
    assert totals["conversations"] >= 2 and totals["uploads"] >= 1, totals
    assert criteria["lost_finals"] == 0, criteria
    assert totals["upload_errors"] == 0, totals
    assert report["server_log_errors"] == 0, report["server_log_tail"]
    assert report["idle_after"]["asyncio_tasks"] <= report["idle_before"]["asyncio_tasks"], report


def test_bench_models_compares_the_models_here(tmp_path):
    """tiny.en measured; ``small`` measured too where its wheels are installed, else a row
    that says why not (the benchmark must not stop at a missing optional model)."""
    out = tmp_path / "models.json"
    _run("bench_models.py", "--models", "tiny.en,small", "--repeat", "1", "--json", str(out))
    tiny, small = json.loads(out.read_text())["rows"]
    assert tiny["model"] == "tiny.en" and tiny["dev_clean_wer"] < 0.15, tiny
    assert tiny["ljspeech_joined_wer"] < 0.2 and tiny["sonnet_wer"] < 0.3, tiny
    assert 0 < tiny["encode_fitted_10s"] < 5 and 0 < tiny["generate_beam5"] < 5, tiny
    assert tiny["rss_added_mb"] > 20, tiny
    assert "optional" in small["skipped"] if "skipped" in small else small["dev_clean_wer"] < 0.15, small


def test_bench_longform_simulates_a_reading_word_by_word(tmp_path):
    out = tmp_path / "longform.json"
    _run(
        "bench_longform.py",
        "--simulate",
        "0.15",
        "--cases",
        "sonnet",
        "--commit-after",
        "0",
        "--json",
        str(out),
    )
    (case,) = json.loads(out.read_text())["cases"]
    (run,) = case["runs"]
    # measured: WER 0.114 (offline 0.114), committed p50 1.49 s, erasure 0.148
    assert run["wer"] < case["offline_wer"] + 0.1, run["transcript"]
    assert run["committed_p50"] < 3.0 and run["normalized_erasure"] < 0.3, run
    assert run["model_calls"]["partial"] > 20, "partials refresh about once a second of speech"
