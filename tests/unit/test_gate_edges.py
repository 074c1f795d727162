"""The origin rule, JSON log lines and the scheduler's decode observers, without a server."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from whisper_live.engine.scheduler import Priority, Scheduler
from whisper_live.errors import OriginNotAllowed
from whisper_live.gate.gate import Gate
from whisper_live.gate.origins import origin_allowed
from whisper_live.logs import JsonFormatter, event


@pytest.mark.parametrize(
    "origin,host,allowed,expected",
    [
        (None, "h:9090", set(), True),  # not a browser
        ("http://h:8001", "h:9090", set(), True),  # the server's own page on its HTTP port
        ("https://h", "h", set(), True),  # same origin behind a proxy
        ("http://h:7000", "h:9090", set(), False),  # another port of the same host
        ("http://evil.example", "h:9090", set(), False),
        ("http://evil.example", "h:9090", {"*"}, True),
        ("https://app.example/", "h:9090", {"https://app.example"}, True),
        ("null", "h:9090", {"null"}, True),
        ("null", "h:9090", set(), False),
        ("http://h.evil.example:8001", "h:9090", set(), False),
    ],
)
def test_origin_rule(origin, host, allowed, expected):
    assert origin_allowed(origin, host, allowed, {8001, 9090}) is expected


def test_the_gate_applies_the_origin_rule_with_the_ports_it_learns():
    """Both ports ask the gate, which holds the allowed origins and the ports once bound."""
    gate = Gate(origins=lambda: {"https://app.example"})
    gate.check_origin(None, "h:9090")
    gate.check_origin("https://app.example", "h:9090")
    with pytest.raises(OriginNotAllowed, match="evil.example"):
        gate.check_origin("http://evil.example", "h:9090")
    with pytest.raises(OriginNotAllowed):
        gate.check_origin("http://h:8001", "h:9090")  # not yet known as this server's port
    gate.own_ports.add(8001)
    gate.check_origin("http://h:8001", "h:9090")


def test_event_lines_in_text_and_json():
    logger = logging.getLogger("test.events")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    try:
        event(logger, "stream ended", uid="u 1", seconds=1.23456, key=None, finals=2)
        handler.setFormatter(JsonFormatter())
        event(logger, "stream ended", uid="u 1", seconds=1.5, key=None, finals=2)
        event(logger, "hidden", logging.DEBUG, uid="x")
    finally:
        logger.removeHandler(handler)
    text, line = out.getvalue().splitlines()
    assert text == 'stream ended uid="u 1" seconds=1.235 finals=2'
    body = json.loads(line)
    assert body["message"] == "stream ended" and body["uid"] == "u 1" and body["finals"] == 2
    assert body["level"] == "info" and body["time"].endswith("+00:00")


def test_scheduler_tells_observers_about_each_call():
    seen = []

    async def run():
        scheduler = Scheduler(2, max_batch=1)
        scheduler.observers.append(lambda *args: seen.append(args))
        scheduler.observers.append(lambda *args: 1 / 0)  # a broken observer answers nobody less
        try:
            return await scheduler.run(lambda: 42, Priority.FINAL)
        finally:
            scheduler.shutdown()

    assert asyncio.run(run()) == 42
    ((priority, seconds, jobs),) = seen
    assert priority == Priority.FINAL and seconds >= 0 and jobs == 1
