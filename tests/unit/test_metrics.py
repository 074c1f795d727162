"""Metrics render in Prometheus' text format and parse with its own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from whisper_live.gate.metrics import Metrics


def _samples(metrics: Metrics) -> dict[tuple, float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_events_and_live_state_are_scraped():
    metrics = Metrics()
    open_streams = {"whisperlive": 2}
    metrics.watch(
        lambda: {
            "whisper_live_streams_open": (
                "Streams open",
                ["face"],
                {(face,): n for face, n in open_streams.items()},
            )
        }
    )
    metrics.streams_admitted.labels("whisperlive").inc()
    metrics.streams_refused.labels("whisperlive", "wait").inc(3)
    metrics.final_latency.labels("whisperlive").observe(0.4)
    metrics.decode_seconds.labels("final").observe(0.02)
    samples = _samples(metrics)
    assert samples[("whisper_live_streams_admitted_total", (("face", "whisperlive"),))] == 1
    assert samples[("whisper_live_streams_refused_total", (("face", "whisperlive"), ("reason", "wait")))] == 3
    assert samples[("whisper_live_final_latency_seconds_count", (("face", "whisperlive"),))] == 1
    assert (
        samples[("whisper_live_final_latency_seconds_bucket", (("face", "whisperlive"), ("le", "0.5")))] == 1
    )
    assert samples[("whisper_live_streams_open", (("face", "whisperlive"),))] == 2
    open_streams["whisperlive"] = 0  # read at scrape time, never stale
    assert _samples(metrics)[("whisper_live_streams_open", (("face", "whisperlive"),))] == 0


def test_each_server_has_its_own_registry():
    first, second = Metrics(), Metrics()
    first.streams_admitted.labels("x").inc()
    assert ("whisper_live_streams_admitted_total", (("face", "x"),)) not in _samples(second)
