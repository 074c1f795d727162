"""Prometheus metrics, one registry per server.

Events (a stream admitted or refused, a final sent, a decode finished, a REST request
answered) are counted as they happen by whoever sees them; live state (streams open, queue
depth, decodes running, models loaded, the capacity estimate) is read at scrape time from
the objects that own it, so no gauge can drift from the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Seconds from the end of speech to the final text on the wire; decode times.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
DECODE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _LiveState(Collector):
    """Gauges computed at scrape time from ``state()``: {name: (help, {labels tuple: value})}."""

    def __init__(self, state: Callable[[], dict[str, tuple[str, list[str], dict[tuple, float]]]]):
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (help_text, labels, values) in self._state().items():
            family = GaugeMetricFamily(name, help_text, labels=labels)
            for label_values, value in values.items():
                family.add_metric(list(label_values), value)
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.streams_admitted = Counter(
            "whisper_live_streams_admitted", "Streams admitted", ["face"], registry=r
        )
        self.streams_refused = Counter(
            "whisper_live_streams_refused", "Streams refused before any audio", ["face", "reason"], registry=r
        )
        self.streams_ended = Counter(
            "whisper_live_streams_ended", "Streams ended, by how they ended", ["face", "how"], registry=r
        )
        self.final_latency = Histogram(
            "whisper_live_final_latency_seconds",
            "End of speech to the final text sent",
            ["face"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decode_seconds = Histogram(
            "whisper_live_decode_seconds", "Model call time", ["priority"], buckets=DECODE_BUCKETS, registry=r
        )
        self.audio_seconds = Counter(
            "whisper_live_audio_seconds", "Audio received and processed, in seconds", ["face"], registry=r
        )
        self.http_requests = Counter(
            "whisper_live_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )

    def watch(self, state: Callable[[], dict[str, tuple[str, list[str], dict[tuple, Any]]]]) -> None:
        """Publish live gauges: ``state()`` is called at every scrape."""
        self.registry.register(_LiveState(state))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
