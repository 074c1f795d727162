"""The live-stream lifecycle as a unit (``engine/live.py``): what every live face gets from
it without writing it again. No socket, no model: a scheduler stand-in for admission, the
real gate, keys and metrics."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from whisper_live import errors
from whisper_live.engine import live as ends
from whisper_live.engine.admission import Admission
from whisper_live.engine.live import LiveStreams
from whisper_live.engine.scheduler import Priority
from whisper_live.gate.gate import Gate
from whisper_live.gate.keys import KeyStore
from whisper_live.gate.metrics import Metrics
from whisper_live.settings import ServerSettings


def streams(tmp_path=None, **settings) -> LiveStreams:
    scheduler = SimpleNamespace(workers=1, busy_by_priority=dict.fromkeys(Priority, 0.0))
    config = ServerSettings(capacity_admission=False, **settings)
    gate = Gate(KeyStore(tmp_path / "keys.json")) if tmp_path is not None else Gate()
    return LiveStreams(Admission(scheduler, config, cores=1), config, gate, Metrics())


def sample(live: LiveStreams, name: str, **labels) -> float:
    return live.metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_stream_is_admitted_counted_and_logged_once_however_it_ends(caplog):
    caplog.set_level(logging.INFO, logger="whisper_live")
    live = streams(max_clients=1)
    assert live.full() is None
    stream = live.open("deepgram", "127.0.0.1", None, "u1", "tiny.en")
    assert live.full() is not None, "one stream fills max_clients=1: the next one WAITs"
    stream.audio(2.5)
    stream.end(ends.END_OF_AUDIO)
    stream.end(ends.CLIENT_GONE)  # the first word on how it ended stands
    stream.close()
    stream.close()  # idempotent
    assert live.full() is None and not live.streams
    assert sample(live, "whisper_live_streams_admitted_total", face="deepgram") == 1
    assert sample(live, "whisper_live_streams_ended_total", face="deepgram", how="end of audio") == 1
    assert sample(live, "whisper_live_audio_seconds_total", face="deepgram") == 2.5
    (line,) = [r.fields for r in caplog.records if getattr(r, "event", None) == "stream ended"]
    assert line["face"] == "deepgram" and line["how"] == "end of audio" and line["audio_seconds"] == 2.5


def test_a_stream_closed_without_a_word_on_how_ended_by_its_client_going():
    live = streams()
    live.open("whisperlive", "p", None, "u").close()
    assert sample(live, "whisper_live_streams_ended_total", face="whisperlive", how="client gone") == 1


def test_the_keys_stream_slot_is_held_until_close(tmp_path):
    live = streams(tmp_path)
    store = live.gate.keys
    store.create("one", max_streams=1)
    key = next(k for k in store.entries() if k.name == "one")
    first = live.open("whisperlive", "p", key, "a")
    with pytest.raises(errors.LimitReached):
        live.open("deepgram", "p", key, "b")
    first.close()
    live.open("deepgram", "p", key, "c").close()


def test_interruptions_time_limit_idle_and_drain():
    async def go():
        live = streams(max_connection_time=0.2)
        stream = live.open("deepgram", "p", None, "u")
        assert stream.interruption() is None
        assert await asyncio.wait_for(stream.interrupted(), 5) == ends.TIME_LIMIT
        stream.close()
        live.settings.max_connection_time = 600
        idle = live.open("deepgram", "p", None, "v")
        assert await asyncio.wait_for(idle.interrupted(idle_timeout=0.1), 5) == ends.IDLE
        waiting = asyncio.create_task(idle.interrupted())
        await asyncio.sleep(0.05)
        live.finish_all()  # SIGTERM: every stream hears it at once, and no new one starts
        assert await asyncio.wait_for(waiting, 1) == ends.SHUTDOWN
        assert live.full() is not None and live.admission.draining
        finished = asyncio.create_task(live.finished())
        await asyncio.sleep(0.1)
        assert not finished.done(), "a drain waits for the streams still open"
        idle.close()
        await asyncio.wait_for(finished, 1)

    asyncio.run(go())


def test_the_keepalive_is_the_servers_ping_interval():
    assert streams(ping_interval=7.0).keepalive == 7.0
